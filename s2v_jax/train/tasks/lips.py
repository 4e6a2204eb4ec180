"""Lip geometry in the generator's loss: the mouth box of the registered crop,
where a warp takes the still's lips (`lip_distances`, LMD's own measure), and the
paint an interior model puts outside the lips it opened (`paint_outside`), how far its
occlusion mask is from the real mouth's opening (`mask_error`) and its pixel error inside that
opening (`opening_l1`)."""

import jax
import jax.numpy as jnp

from s2v_jax.models.generator import warp_image, warped_points

INNER_LIPS = slice(20, 40)  # of the 40 lip points (faces.LIPS = LIPS_OUTER + LIPS_INNER): the inner contour, in order

# The mouth box of the registered 112x112 crop (rows, columns): lips, teeth
# and chin, open or closed, for every template-registered face (most of what
# the sync expert sees below row 56).
MOUTH_BOX = (slice(58, 100), slice(24, 88))


def mouth(x):
    """The MOUTH_BOX of images [..., S, S, C] (scaled to the side S)."""
    s = x.shape[-3]
    rows, cols = (slice(round(b.start * s / 112), round(b.stop * s / 112)) for b in MOUTH_BOX)
    return x[..., rows, cols, :]


def mouth_mean(per_pixel):
    """Per image, the mean of a per-pixel map [N, S, S] over the MOUTH_BOX: [N]."""
    return mouth(per_pixel[..., None]).reshape(per_pixel.shape[0], -1).mean(axis=-1)


def lip_distances(flow, batch):
    """Where the warp takes the still's lips, against the real lips: per frame [b*w] (model, static).

    The flow (dy, dx) [b, w, S, S, 2] is a backward warp (output pixel q shows the still at
    q + flow(q)); the still's lip point p shows at q = p - flow(q) (`warped_points`). Per frame:
    mean over the 40 lip points of ||q - r|| / IOD(r) against the real lip point r, LMD's own
    normalisation (evaluation.metrics.lmd), of the warp alone (the residual change on top of it
    is not counted); 'static' is ||p - r|| / IOD, the still's LMD on these landmarks.

    Before 2026-12-03 (the shipped model of a92febd) the model term was ||flow(r) - (p - r)||,
    the error measured in the still's coordinates. It is 0 exactly when this one is, but a flow
    with a steep gradient at the lips lowers it without moving the lips: on the 5 held-out
    tracks of 2 s or more (every 5th frame from frame 12) that model scored 0.0679 on it against
    the still's 0.0751 (-10%), and 0.0739 (-1.7%) on where its warp really puts the lips
    (benchmarks/lip_oracle.py --checkpoint)."""
    b, w, s = flow.shape[:3]
    scale = s / 112.0
    real = batch["target_lips"].astype(jnp.float32).reshape(b * w, -1, 2) * scale  # (x, y)
    still = jnp.repeat(batch["identity_lips"].astype(jnp.float32) * scale, w, axis=0)
    iod = batch["target_iod"].astype(jnp.float32).reshape(b * w) * scale
    moved = warped_points(flow.reshape((b * w,) + flow.shape[2:]), still)
    model = jnp.sqrt(jnp.sum(jnp.square(moved - real), axis=-1) + 1e-12).mean(axis=-1) / iod
    static = jnp.sqrt(jnp.sum(jnp.square(still - real), axis=-1)).mean(axis=-1) / iod
    return model, static


def polygon_mask(points, size: int, dilate: float = 0.0):
    """Pixels of an S x S image inside a closed polygon or within `dilate` px of its edges:
    points (x, y) [N, P, 2] in pixels (pixel (i, j)'s centre at x = j + 0.5, y = i + 0.5, the
    landmarks' convention) -> float32 {0, 1} [N, S, S]. Inside = odd crossing number."""
    c = jnp.arange(size, dtype=jnp.float32) + 0.5
    y, x = c[None, :, None, None], c[None, None, :, None]
    p, q = points[:, None, None], jnp.roll(points, -1, axis=1)[:, None, None]
    xi, yi, xj, yj = p[..., 0], p[..., 1], q[..., 0], q[..., 1]
    crosses = (yi > y) != (yj > y)
    dy = yj - yi
    x_at = xi + (y - yi) * (xj - xi) / jnp.where(dy == 0, 1e-9, dy)
    inside = jnp.sum(crosses & (x < x_at), axis=-1) % 2 == 1
    dx = xj - xi
    t = jnp.clip(((x - xi) * dx + (y - yi) * dy) / jnp.maximum(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    near = jnp.min(jnp.hypot(xi + t * dx - x, yi + t * dy - y), axis=-1) <= dilate
    return (inside | near).astype(jnp.float32)


PAINT_DILATE = 2.0  # px of the 112 crop around the warped inner lips where paint is not counted


PAINT_REGIONS = ("warped", "real")


def real_inner_lips(batch, frames: int, size: int):
    """The real frames' inner-lip contours (x, y) [frames, 20, 2], in pixels of an S x S output."""
    lips = batch["target_lips"].astype(jnp.float32).reshape(frames, -1, 2)[:, INNER_LIPS]
    return lips * (size / 112.0)


def paint_outside(pred, still, flow, batch, region: str = "warped"):
    """An interior model's painted change outside the mouth's opening, per frame [b*w]: the mean
    over the mouth box of |frame - warped still| (channel mean) where the pixel is neither inside the
    opening nor within PAINT_DILATE px of it. The opening ('region'): 'warped', the still's inner-lip
    contour as the warp moves it (`warped_points`, held fixed: this term moves the paint, not the
    lips); 'real', the real frame's inner-lip contour (`target_lips`): paint where the real mouth is
    open, whether or not the warp parted the still's lips (a closed still's contour has no inside, so
    'warped' forbids all paint there). pred, still [b, w, S, S, 3], flow [b, w, S, S, 2]. The dark dot
    under the lower lip and the blob beside the opening are such paint."""
    if region not in PAINT_REGIONS:
        raise ValueError(f"paint region must be one of {PAINT_REGIONS}, not {region!r}")
    b, w, s = flow.shape[:3]
    flat = lambda x: x.reshape((b * w,) + x.shape[2:])  # noqa: E731
    scale = s / 112.0
    if region == "real":
        opening = real_inner_lips(batch, b * w, s)
    else:
        inner = jnp.repeat(batch["identity_lips"].astype(jnp.float32)[:, INNER_LIPS] * scale, w, axis=0)
        opening = jax.lax.stop_gradient(warped_points(flat(flow), inner))
    allowed = polygon_mask(opening, s, PAINT_DILATE * scale)
    warped = jnp.clip(warp_image(flat(still), flat(flow)), 1e-3, 1.0 - 1e-3)
    change = jnp.abs(flat(pred) - warped).mean(axis=-1) * (1.0 - allowed)
    return mouth_mean(change)


def mask_error(mask, batch):
    """An interior model's occlusion mask against the real frame's opening, per frame [b*w]: the mean
    over the mouth box of |m - o|, o = 1 inside the real inner-lip contour (`target_lips`), else 0.
    mask [b, w, S, S, 1]. A target for where to paint that comes from the landmarks, not from a judge:
    the mask opens where the speaker's mouth is open and stays shut where it is closed."""
    b, w, s = mask.shape[:3]
    target = polygon_mask(real_inner_lips(batch, b * w, s), s)
    err = jnp.abs(mask.reshape(b * w, s, s).astype(jnp.float32) - target)
    return mouth_mean(err)


def opening_l1(pred, target, batch):
    """The pixel error inside the real frame's inner-lip opening, per frame [b*w]: the mean over the mouth
    box of |frame - real frame| (channel mean) where the pixel lies inside the real inner-lip contour
    (`target_lips`), else 0. pred, target [b, w, S, S, 3]. A colour target for the painted interior: the
    box-wide L1 spreads its pull over the whole lower face, this one over the cavity alone."""
    b, w, s = pred.shape[:3]
    inside = polygon_mask(real_inner_lips(batch, b * w, s), s)
    err = jnp.abs(pred - target).reshape(b * w, s, s, -1).mean(axis=-1) * inside
    return mouth_mean(err)
