"""Putting a generated 112x112 face back into a frame: the crop grid, the
paste masks and a face-sized Poisson (or feathered) blend whose cost does not
grow with the frame size."""

import cv2
import numpy as np

from s2v_jax.errors import S2VError
from s2v_jax.faces import registration


def to_crop_size(face: np.ndarray, size: int = 112) -> np.ndarray:
    """A generated face [S, S, 3] on the registered crop grid [size, size, 3].

    The v201 109x109 output covers the same region as the 112 crop, so a
    bilinear resize (pixel-centre aligned, as cv2 does) puts it on that grid.
    """
    if face.shape[0] == size:
        return face
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)


def face_mask(kind: str = "face"):
    """The crop-space paste mask [112, 112]: 'face' (the whole generated crop
    less a 4 px border) or 'lower' (from just below the eyes down, as re-dubbing)."""
    if kind == "face":
        return registration.full_face_mask()
    if kind == "lower":
        return registration.lower_face_mask()
    raise S2VError(f"mask must be 'face' or 'lower', not {kind!r}")


def image_region(region: np.ndarray, m: np.ndarray, margin: int, shape):
    """((x0, y0, x1, y1), m_roi): the image box around where crop pixels `region` (bool [S, S], not
    empty) land under the image -> crop similarity `m`, grown by `margin` px and clipped to the
    image `shape`; m_roi maps that box's pixels to crop pixels."""
    ys, xs = np.nonzero(region)
    corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.min()], [xs.min(), ys.max() + 1],
                        [xs.max() + 1, ys.max() + 1]], np.float64)
    pts = registration.transform_points(registration.invert_similarity(m), corners)
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + margin, [shape[1], shape[0]])
    m_roi = m.copy()
    m_roi[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # box pixel -> crop pixel
    return (int(x0), int(y0), int(x1), int(y1)), m_roi


def paste_face(image: np.ndarray, face: np.ndarray, m: np.ndarray, mask: np.ndarray,
               blend: str = "poisson", pad: int = 8, max_scale: float = 1.5) -> np.ndarray:
    """`registration.paste_back` on the region around the face: a new uint8
    [H, W, 3] image, equal to `image` wherever the warped mask is 0.

    Only a face-sized region is warped and blended, so the cost does not grow
    with the frame size. Where the face is drawn larger than `max_scale` image
    px per crop px (a 112 px face pasted over 700 px of a portrait), the
    Poisson blend runs on the region downscaled to `max_scale` (it holds no
    more detail than that: the face is 112 px) and is upscaled back, mixed in
    with the warped feathered mask; otherwise the cost grows with the face's
    area (0.7 s per frame for a 980 px portrait instead of 0.03 s).
    """
    if not (mask > 0).any():
        return image.copy()
    m = np.asarray(m, np.float64)
    (x0, y0, x1, y1), m_roi = image_region(mask > 0, m, pad, image.shape)
    out = image.copy()
    if x1 - x0 < 4 or y1 - y0 < 4:  # the face lies outside the frame
        return out
    roi = np.ascontiguousarray(image[y0:y1, x0:x1])
    scale = 1.0 / np.sqrt(abs(np.linalg.det(m[:, :2])))  # image px per crop px
    if scale <= max_scale:
        out[y0:y1, x0:x1] = registration.paste_back(roi, face, m_roi, mask, blend=blend)
        return out
    f = max_scale / scale
    rh, rw = roi.shape[:2]
    sw, sh = max(4, round(rw * f)), max(4, round(rh * f))
    small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = rw / sw, rh / sh  # small pixel centre p -> ROI (p + 0.5) * f - 0.5
    to_roi = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5]])
    m_small = np.concatenate([m_roi[:, :2] @ to_roi[:, :2], (m_roi[:, :2] @ to_roi[:, 2] + m_roi[:, 2])[:, None]],
                             axis=1)
    blended = registration.paste_back(small, face, m_small, mask, blend=blend)
    up = cv2.resize(blended, (rw, rh), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(np.asarray(mask, np.float32), registration.invert_similarity(m_roi), (rw, rh),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    out[y0:y1, x0:x1] = cv2.blendLinear(up, roi, alpha, 1.0 - alpha)  # exactly roi where alpha is 0
    return out


def warp_frame(image: np.ndarray, flow: np.ndarray, m: np.ndarray, pad: int = 8) -> np.ndarray:
    """Moves `image`'s own pixels by a crop-space flow, at the image's full resolution: a new uint8
    [H, W, 3] image. flow [S, S, 2] is (dy, dx) in crop pixels (output crop pixel p = crop at p +
    flow[p], as a warp model predicts it); m the image -> crop similarity. Image pixel q takes the
    image at q + A^-1 flow(m q) (A: m's linear part), so nothing is resampled to the crop's
    resolution and every pixel where the flow is zero is returned exactly.
    An interior model's parts [S, S, 6] (flow, change logits, mask: FrameGenerator.flow_batches) also
    paint the mouth's interior after the warp (`paint_interior`)."""
    if flow.shape[-1] == 6:
        return paint_interior(warp_frame(image, flow[..., :2], m, pad), flow[..., 2:5], flow[..., 5], m, pad)
    moved = np.abs(flow).max(axis=-1) > 1e-3
    out = image.copy()
    if not moved.any():
        return out
    m = np.asarray(m, np.float64)
    step = float(np.abs(flow).max()) + 1.0  # how far a moved pixel can read from
    scale = 1.0 / np.sqrt(abs(np.linalg.det(m[:, :2])))  # image px per crop px
    (x0, y0, x1, y1), m_roi = image_region(moved, m, int(np.ceil(step * scale)) + pad, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the face lies outside the frame
        return out
    fxy = np.ascontiguousarray(np.asarray(flow, np.float32)[..., ::-1])  # (dx, dy)
    f = cv2.warpAffine(fxy, registration.invert_similarity(m_roi), (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a_inv = np.linalg.inv(m[:, :2]).astype(np.float32)
    d = f @ a_inv.T  # crop displacement -> image displacement
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    warped = cv2.remap(image, gx + d[..., 0], gy + d[..., 1], interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    still = np.abs(d).max(axis=-1) < 1e-4  # exactly the image where nothing moves
    roi = out[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = np.where(still[..., None], roi, warped)
    return out


def paint_interior(image: np.ndarray, change: np.ndarray, mask: np.ndarray, m: np.ndarray, pad: int = 8) -> np.ndarray:
    """The mouth's interior painted into a warped frame at its full resolution: a new uint8 [H, W, 3]
    image, image + a * (sigmoid(c + logit(image)) - image) with the crop-space change logits c [S, S, 3]
    and mask a [S, S] carried to the image (bilinear); every pixel where the mask is 0 is returned exactly."""
    out = image.copy()
    inside = np.asarray(mask) > 1e-4
    if not inside.any():
        return out
    m = np.asarray(m, np.float64)
    (x0, y0, x1, y1), m_roi = image_region(inside, m, pad, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    to_roi = registration.invert_similarity(m_roi)
    size = (x1 - x0, y1 - y0)
    a = cv2.warpAffine(np.asarray(mask, np.float32), to_roi, size, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    c = cv2.warpAffine(np.asarray(change, np.float32), to_roi, size, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    w = np.clip(out[y0:y1, x0:x1].astype(np.float32) / 255.0, 1e-3, 1.0 - 1e-3)
    painted = 1.0 / (1.0 + np.exp(-(c + np.log(w) - np.log1p(-w))))
    new = np.clip(np.rint((w + a * (painted - w)) * 255.0), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(a > 0, new, out[y0:y1, x0:x1])
    return out
