"""Registration of faces onto the canonical 112x112 face, and back.

A similarity transform (scale, rotation, translation) is fitted from the eye
corners, nose bridge and nostril wings of a face (`faces.REGISTRATION_POINTS`)
to `TEMPLATE_112`, never from the mouth: mouth motion is what the model must
learn (paper, section 2). Transforms `M` are [2, 3] and map image pixels to
crop pixels; `invert_similarity` gives the way back, which `paste_back` uses to
blend a generated face into a frame (re-dubbing).
"""

import dataclasses
import os
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np

from s2v_jax import faces
from s2v_jax.errors import MediaError, NoFaceError

CROP_SIZE = 112

# Positions of faces.REGISTRATION_POINTS in a 112x112 crop: the mean shape of
# face-mesh landmarks over frontal faces (stills + clips in shared/data/real),
# Procrustes-aligned on these points, made left-right symmetric, then placed
# with the outer eye corners 44 px apart and their midpoint at (56, 36). That
# puts the forehead (landmark 10) near y=10 and the chin near y=95, leaving
# ~15 px below the chin for an open jaw; the lower face, which the model
# generates, is never cut. Points: R outer/inner eye corner, L inner/outer,
# nose bridge top to bottom (168, 6, 197, 195), R/L nostril wing.
TEMPLATE_112 = np.array([
    [34.00, 35.56], [47.37, 36.44], [64.63, 36.44], [78.00, 35.56],
    [56.00, 34.09], [56.00, 38.34], [56.00, 42.26], [56.00, 45.91],
    [47.35, 59.64], [64.65, 59.64],
], np.float64)

# Top of the re-dubbing region in template coordinates: just below the lower
# eyelids (eye corners sit at y~36, lower lids at ~40).
LOWER_FACE_TOP_112 = 46.0


def template(size: int = CROP_SIZE) -> np.ndarray:
    """TEMPLATE_112 scaled to a size x size crop: [10, 2]."""
    return TEMPLATE_112 * (size / CROP_SIZE)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity [2, 3] taking src [N, 2] onto dst [N, 2] (Umeyama 1991).

    Closed form, so exact for noise-free points and deterministic; reflections
    are excluded. Needs N >= 2 distinct points.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"fit_similarity needs two [N, 2] arrays, N >= 2; got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s ** 2).sum() / len(src)
    if var < 1e-12:
        raise ValueError("fit_similarity: source points coincide")
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply [2, 3] (or [T, 2, 3]) transforms to [..., N, 2] points."""
    m = np.asarray(m)
    return points @ np.swapaxes(m[..., :, :2], -1, -2) + m[..., None, :, 2]


def invert_similarity(m: np.ndarray) -> np.ndarray:
    """Inverse of a [2, 3] similarity (crop -> image for a registration transform)."""
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def registration_points(landmarks: np.ndarray) -> np.ndarray:
    """[10, 2] registration points from [478, 2] (or [468, 2]) landmarks, or passed through."""
    landmarks = np.asarray(landmarks, np.float64)
    if len(landmarks) == len(faces.REGISTRATION_POINTS):
        return landmarks
    return landmarks[list(faces.REGISTRATION_POINTS)]


def registration_transform(landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """[2, 3] image -> crop similarity from eye and nose landmarks only."""
    return fit_similarity(registration_points(landmarks), template(size))


def warp_image(image: np.ndarray, m: np.ndarray, dsize, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """cv2.warpAffine with anti-aliasing: [H, W, C] -> [dsize[1], dsize[0], C].

    A plain bilinear warp that shrinks more than 2x aliases (a 4000 px
    photo's face squeezed to 112 px). There the source region that feeds the
    output is first halved with cv2.pyrDown (Gaussian 5x5) until the remaining
    shrink is under 2x, a mipmap: cheap, and pixel centres stay aligned
    (half-size pixel i sits on full-size pixel 2i).
    """
    m = np.asarray(m, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale >= 0.5:
        return cv2.warpAffine(image, m, tuple(dsize), flags=cv2.INTER_LINEAR, borderMode=border)
    inv = cv2.invertAffineTransform(m)
    w, h = dsize
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ inv[:, :2].T + inv[:, 2]
    h_img, w_img = image.shape[:2]
    pad = int(np.ceil(4 / scale))
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - pad, 0, [w_img - 1, h_img - 1]) // 2 * 2
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + pad, 1, [w_img, h_img])
    x1, y1 = max(x1, x0 + 2), max(y1, y0 + 2)
    sub = np.ascontiguousarray(image[y0:y1, x0:x1])
    shifted = m.copy()
    shifted[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    while scale < 0.5 and min(sub.shape[:2]) >= 4:
        sub = cv2.pyrDown(sub)
        shifted[:, :2] *= 2.0
        scale *= 2.0
    return cv2.warpAffine(sub, shifted, tuple(dsize), flags=cv2.INTER_LINEAR, borderMode=border)


def warp_face(image: np.ndarray, m: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Registered crop [size, size, 3] of `image` under the image -> crop transform `m`."""
    return warp_image(faces.to_rgb(image), m, (size, size))


def register_face(image: np.ndarray, landmarks: np.ndarray,
                  size: int = CROP_SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """(crop uint8 [size, size, 3], M [2, 3]) for one face given its landmarks [478, 2]."""
    m = registration_transform(landmarks, size)
    return warp_face(image, m, size), m


# --- temporal smoothing --------------------------------------------------------

def similarity_params(m: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """[..., 2, 3] image -> crop transforms -> [..., 4] (log scale, angle, cx, cy).

    (cx, cy) is the image point that lands on the crop centre, i.e. the face
    centre in the frame, and the scale is image px per crop px. Smoothing these
    rather than the matrix entries keeps a jittery scale from dragging the
    translation around (matrix translations mix in scale x distance to the origin).
    """
    m = np.asarray(m, np.float64)
    a, b = m[..., 0, 0], m[..., 1, 0]
    scale = np.hypot(a, b)
    angle = np.arctan2(b, a)
    lin = m[..., :, :2]
    centre = np.full(m.shape[:-2] + (2,), size / 2.0) - m[..., :, 2]
    cx_cy = np.linalg.solve(lin, centre[..., None])[..., 0]
    return np.stack([-np.log(scale), angle, cx_cy[..., 0], cx_cy[..., 1]], axis=-1)


def similarity_from_params(p: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Inverse of `similarity_params`: [..., 4] -> [..., 2, 3]."""
    p = np.asarray(p, np.float64)
    scale = np.exp(-p[..., 0])
    c, s = np.cos(p[..., 1]) * scale, np.sin(p[..., 1]) * scale
    m = np.empty(p.shape[:-1] + (2, 3))
    m[..., 0, 0], m[..., 0, 1] = c, -s
    m[..., 1, 0], m[..., 1, 1] = s, c
    m[..., 0, 2] = size / 2.0 - (c * p[..., 2] - s * p[..., 3])
    m[..., 1, 2] = size / 2.0 - (s * p[..., 2] + c * p[..., 3])
    return m


def gaussian_weights(sigma: float) -> np.ndarray:
    """Kernel [2r + 1], r = ceil(3 sigma), centre at index r (unnormalised)."""
    r = int(np.ceil(3 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    return np.exp(-0.5 * (x / sigma) ** 2)


def smooth_params_at(params: np.ndarray, i: int, sigma: float) -> np.ndarray:
    """Smoothed value at index i of a [T, P] series; reads only params[i-r : i+r+1].

    The kernel is cut at the series ends and renormalised, so a streaming
    caller that has r frames of look-ahead (or the end of the track) gets the
    same result as `smooth_transforms` on the whole track.
    """
    w = gaussian_weights(sigma)
    r = len(w) // 2
    lo, hi = max(0, i - r), min(len(params), i + r + 1)
    w = w[lo - i + r: hi - i + r]
    return (w[:, None] * params[lo:hi]).sum(0) / w.sum()


def smooth_transforms(ms: np.ndarray, sigma: float = 2.0, size: int = CROP_SIZE) -> np.ndarray:
    """Temporal Gaussian smoothing of [T, 2, 3] similarities (sigma in frames) -> [T, 2, 3].

    Smooths log scale, unwrapped angle and face centre (`similarity_params`)
    so registered crops do not jitter; sigma <= 0 returns the input.
    """
    ms = np.asarray(ms, np.float64)
    if sigma <= 0 or len(ms) < 2:
        return ms.copy()
    p = similarity_params(ms, size)
    p[:, 1] = np.unwrap(p[:, 1])
    smooth = np.stack([smooth_params_at(p, i, sigma) for i in range(len(p))])
    return similarity_from_params(smooth, size)


# --- paste back ------------------------------------------------------------------

def lower_face_mask(size: int = CROP_SIZE, feather: float = 3.0) -> np.ndarray:
    """Float mask [size, size] in [0, 1] in crop coordinates: the lower face
    from just below the eyes to below the chin (what re-dubbing replaces).

    Half an ellipse spanning the cheeks, its flat top at LOWER_FACE_TOP_112,
    feathered by `feather` px so alpha blends have no seam.
    """
    k = size / CROP_SIZE
    mask = np.zeros((size, size), np.float32)
    top = LOWER_FACE_TOP_112 * k
    centre = (int(round(56 * k)), int(round(top)))
    axes = (int(round(38 * k)), int(round((106 - LOWER_FACE_TOP_112) * k)))
    cv2.ellipse(mask, centre, axes, 0, 0, 180, 1.0, thickness=-1)
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), feather * k) * (mask > 0)
    return mask


def full_face_mask(size: int = CROP_SIZE, margin: float = 4.0, feather: float = 3.0) -> np.ndarray:
    """Float mask [size, size]: the whole crop less a `margin` px border, feathered."""
    mask = np.zeros((size, size), np.float32)
    b = int(round(margin * size / CROP_SIZE))
    mask[b:size - b, b:size - b] = 1.0
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), feather) * (mask > 0)
    return mask


def paste_back(image: np.ndarray, face: np.ndarray, m: np.ndarray, mask: Optional[np.ndarray] = None,
               blend: str = "poisson") -> np.ndarray:
    """Blend a registered crop `face` [S, S, 3] back into `image` [H, W, 3] (RGB uint8).

    m: the image -> crop transform used to cut the crop. mask: [S, S] float in
    [0, 1] in crop coordinates (default `full_face_mask`; `lower_face_mask` for
    re-dubbing). blend 'poisson' uses cv2.seamlessClone (matches colours at the
    seam), 'alpha' a feathered linear mix. Pixels outside the warped mask are
    returned unchanged.
    """
    image = faces.to_rgb(image)
    face = faces.to_rgb(face)
    size = face.shape[0]
    if mask is None:
        mask = full_face_mask(size)
    h, w = image.shape[:2]
    inv = invert_similarity(m)
    warped = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(np.asarray(mask, np.float32), inv, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    if blend == "alpha":
        a = alpha[..., None]
        out = image.astype(np.float32) * (1 - a) + warped.astype(np.float32) * a
        out = np.where(a > 0, np.clip(out + 0.5, 0, 255), image).astype(np.uint8)
        return out
    if blend != "poisson":
        raise ValueError(f"paste_back: blend must be 'poisson' or 'alpha', got {blend!r}")
    binary = (alpha > 0.5).astype(np.uint8) * 255
    # seamlessClone needs the region off the image border (it reads a 1-px ring).
    binary[:2], binary[-2:], binary[:, :2], binary[:, -2:] = 0, 0, 0, 0
    if not binary.any():
        return image.copy()
    x, y, bw, bh = cv2.boundingRect(binary)
    # The clone is placed with the mask's bounding box centred on `center`;
    # cropping src and mask to that box makes the placement exact (no 1-px shift).
    src = np.ascontiguousarray(warped[y:y + bh, x:x + bw])
    sub_mask = np.ascontiguousarray(binary[y:y + bh, x:x + bw])
    center = (x + bw // 2, y + bh // 2)
    cloned = cv2.seamlessClone(src, image, sub_mask, center, cv2.NORMAL_CLONE)
    # OpenCV solves over the whole bounding box, nudging pixels outside the mask
    # by a level or two; keep those exactly as they were (the solution meets the
    # original at the mask edge, so this leaves no seam).
    return np.where(binary[..., None] > 0, cloned, image)


# --- stills ------------------------------------------------------------------------

@dataclasses.dataclass
class AlignedFace:
    """A registered still. crop: uint8 [S, S, 3] RGB; M: [2, 3] image -> crop;
    landmarks: [478, 2] float32 image pixels; box: [4] detector box in image
    pixels; warnings: notes for a person (several faces, small face)."""

    crop: np.ndarray
    M: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray
    warnings: List[str]
    num_faces: int = 1


# A face narrower than this (detector box, px) is upsampled into the 112 crop.
SMALL_FACE_PX = 56


def load_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Any image file OpenCV reads -> RGB uint8 [H, W, 3] (grey, RGBA, 16-bit all work)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"image {path} does not exist; check the path")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise MediaError(f"cannot read image {path}: empty, corrupt or not an image format OpenCV "
                         f"decodes; use a JPEG or PNG photo")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return faces.to_rgb(image, name=path)


def align_image(image: Union[str, os.PathLike, np.ndarray], size: int = CROP_SIZE,
                face_index: Optional[int] = None, name: Optional[str] = None) -> AlignedFace:
    """Detect, landmark and register the face of a still (path or RGB array).

    With several faces the largest is used (and a warning says so) unless
    `face_index` picks another (0 = largest). Raises NoFaceError when no face
    (or no landmarks on it) is found, MediaError for unreadable files.
    """
    if isinstance(image, (str, os.PathLike)):
        name = name or os.fspath(image)
        rgb = load_image(image)
    else:
        name = name or "the image array"
        rgb = faces.to_rgb(image, name=name)
    dets = faces.detect_faces(rgb)
    if not dets:
        raise NoFaceError(f"no face found in {name}; use a photo with a clearly visible frontal face "
                          f"(at least ~40 px across)")
    warnings = []
    if face_index is None:
        face_index = 0
        if len(dets) > 1:
            warnings.append(f"found {len(dets)} faces in {name}; using the largest "
                            f"(pass face_index / --face-index to pick another, 0 = largest)")
    elif not 0 <= face_index < len(dets):
        raise MediaError(f"face index {face_index} out of range: {name} has {len(dets)} face(s) "
                         f"(0 = largest)")
    det = dets[face_index]
    landmarks = None
    with faces.LandmarkDetector(static_image_mode=True) as detector:
        for scale in (faces.ROI_SCALE_DETECTION, 1.5, 3.0):
            landmarks = detector(rgb, faces.square_roi(det.box, scale))
            if landmarks is not None:
                break
    if landmarks is None:
        raise NoFaceError(f"a face was detected in {name} but its landmarks could not be placed "
                          f"(too small, turned away or covered); use a photo with a clearly "
                          f"visible frontal face")
    width = det.box[2] - det.box[0]
    if width < SMALL_FACE_PX:
        warnings.append(f"the face in {name} is only {width:.0f} px wide; its {size}x{size} crop "
                        f"is upsampled and will look blurry")
    crop, m = register_face(rgb, landmarks, size)
    return AlignedFace(crop=crop, M=m, landmarks=landmarks, box=det.box, warnings=warnings,
                       num_faces=len(dets))
