"""Lip geometry in the generator's loss: the mouth box of the registered crop
and where a warp takes the still's lips (`lip_distances`, LMD's own measure)."""

import jax.numpy as jnp

from s2v_jax.models.generator import warped_points

# The mouth box of the registered 112x112 crop (rows, columns): lips, teeth
# and chin, open or closed, for every template-registered face (most of what
# the sync expert sees below row 56).
MOUTH_BOX = (slice(58, 100), slice(24, 88))


def mouth(x):
    """The MOUTH_BOX of images [..., S, S, C] (scaled to the side S)."""
    s = x.shape[-3]
    rows, cols = (slice(round(b.start * s / 112), round(b.stop * s / 112)) for b in MOUTH_BOX)
    return x[..., rows, cols, :]


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
