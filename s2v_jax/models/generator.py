"""The Speech2Vid generator: audio encoder + identity encoder + decoder.

Identity encoding is its own method so inference encodes the still(s) once and
reuses the features for every frame:

    ident = model.apply(variables, stills, method=Speech2Vid.encode_identity)
    frames = model.apply(variables, mfcc, ident, method=Speech2Vid.generate_from_identity)
"""

from typing import Any, Callable, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from s2v_jax.models.audio_encoder import AudioEncoder
from s2v_jax.models.decoder import BilinearDecoder, TransposedDecoder
from s2v_jax.models.identity_encoder import IdentityEncoder

IdentityFeatures = Dict[str, jnp.ndarray]  # "embedding" [B, 256] and the enabled skips


def region_mask(size, region, ramp: float = 4.0) -> np.ndarray:
    """A soft box [H, W, 1] in [0, 1]: 1 inside `region` (top, bottom, left, right in 112x112 crop
    pixels, scaled to `size`), exactly 0 beyond `ramp` / 2 px outside it, linear in between."""
    if len(region) != 4:
        raise ValueError(f"model.residual_region must be (top, bottom, left, right), not {tuple(region)}")
    h, w = size
    top, bottom, left, right = (float(v) * s / 112.0 for v, s in zip(region, (h, h, w, w)))
    edge = lambda d: np.clip(d / ramp + 0.5, 0.0, 1.0)  # noqa: E731  d: signed distance inside the edge
    y, x = np.arange(h) + 0.5, np.arange(w) + 0.5
    rows = np.minimum(edge(y - top), edge(bottom - y))
    cols = np.minimum(edge(x - left), edge(right - x))
    return (rows[:, None] * cols[None, :])[..., None].astype(np.float32)


def warp_image(images, flow):
    """Backward warp: out[y, x] = images[y + flow[y, x, 0], x + flow[y, x, 1]], bilinear, the border
    pixels repeated beyond the edge. images [B, H, W, C], flow [B, H, W, 2] in pixels -> [B, H, W, C]."""
    b, h, w, c = images.shape
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    points = jnp.stack([xx[None] + flow[..., 1], yy[None] + flow[..., 0]], axis=-1) + 0.5  # pixel centres, (x, y)
    return sample_points(images, points.reshape(b, h * w, 2)).reshape(b, h, w, c)


WARP_POINT_ITERATIONS = 8  # fixed-point steps that find where the backward warp puts a still point


def warped_points(flow, points, iterations: int = WARP_POINT_ITERATIONS):
    """Where `warp_image` puts the still's points: flow (dy, dx) [N, S, S, 2], points (x, y)
    [N, P, 2] -> [N, P, 2]. Output pixel q shows the still at q + flow(q), so still point p shows
    at the q with q + flow(q) = p: q = p - flow(q), solved by fixed-point steps from q = p (they
    converge while the flow's gradient stays below 1, as a fold-free warp's does)."""
    q = points
    for _ in range(iterations):
        q = points - sample_points(flow, q)[..., ::-1]
    return q


def sample_points(maps, points):
    """Bilinear values of maps [B, H, W, C] at points [B, N, 2] given as (x, y) in continuous pixel
    coordinates (pixel i spans [i, i + 1), as landmarks are stored) -> [B, N, C]; edges clamped."""
    b, h, w, c = maps.shape
    x = jnp.clip(points[..., 0] - 0.5, 0.0, w - 1.0)
    y = jnp.clip(points[..., 1] - 0.5, 0.0, h - 1.0)
    y0, x0 = jnp.floor(y), jnp.floor(x)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
    y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
    flat = maps.reshape(b, h * w, c)

    def at(yi, xi):
        return jnp.take_along_axis(flat, (yi * w + xi)[..., None], axis=1)

    return (at(y0, x0) * (1 - wx) + at(y0, x1) * wx) * (1 - wy) + (at(y1, x0) * (1 - wx) + at(y1, x1) * wx) * wy


class Speech2Vid(nn.Module):
    """MFCC window `[B, 12, 35, 1]` + still(s) `[B, 112, 112, 3 * num_identity_images]`
    (both float, images in [0, 1]) -> frame `[B, S, S, 3]` in [0, 1], S = 112
    (transposed decoder) or 109 (v201 bilinear decoder).
    """

    decoder: str = "transposed"
    skips: Sequence[str] = ("B", "C")
    num_identity_images: int = 1
    width: float = 1.0
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    axis_name: Optional[str] = None
    # Not in the paper: predict a change to the first still, sigmoid(logit(still) + decoder),
    # instead of the whole face. Small CPU configs use it to get past the static baseline in minutes.
    identity_residual: bool = False
    # With identity_residual: (top, bottom, left, right) of the registered 112x112 crop, the only
    # part the model may change (4 px linear edges); beyond 2 px outside it the output is the still. () = all.
    residual_region: Sequence[int] = ()
    # Not in the paper: with identity_residual, > 0 also warps the still before the residual change:
    # the decoder predicts a smooth flow (pixels, at most `warp` px each way, inside residual_region)
    # that moves the still's own lips and jaw; the output is sigmoid(logit(warped still) + decoder).
    warp: float = 0.0
    # With warp: the output is the warped still alone (the decoder's image logits are not used), so
    # every change is the person's own pixels moved: no painted colour at all.
    warp_only: bool = False
    # Not in the paper: with warp_only, the mouth's interior painted where the speech opens it. The decoder
    # also predicts an occlusion mask m (sigmoid of a logit, times the soft box `interior_region` of the
    # 112x112 crop: exactly 0 beyond 2 px outside it) and the output is the warped still w blended with
    # painted pixels p = sigmoid(logits + logit(w)) (a change to the warped still: its colours to start from):
    # w + m * (p - w). Outside the box every pixel is the warped still's, exactly.
    interior: bool = False
    interior_region: Sequence[int] = ()
    # Not in the paper: the channel multiplier of the audio CNN's hidden layers (conv1-fc6); 0 = width.
    audio_width: float = 0.0
    # The transposed decoder's layer class (models.conv_transpose: nn.ConvTranspose or the CPU phase form).
    conv_transpose: Callable[..., nn.Module] = nn.ConvTranspose

    def setup(self):
        common = dict(width=self.width, dtype=self.dtype, bn_momentum=self.bn_momentum,
                      bn_epsilon=self.bn_epsilon, axis_name=self.axis_name)
        self.audio_encoder = AudioEncoder(**common, hidden_width=self.audio_width or None)
        self.identity_encoder = IdentityEncoder(**common)
        decoders = {"transposed": TransposedDecoder, "bilinear": BilinearDecoder}
        if self.decoder not in decoders:
            raise ValueError(f"model.decoder must be 'transposed' or 'bilinear', not {self.decoder!r}")
        extra = {"conv_transpose": self.conv_transpose} if self.decoder == "transposed" else {}
        if self.warp > 0:
            if self.decoder != "transposed" or not self.identity_residual:
                raise ValueError("model.warp needs the transposed decoder and model.identity_residual=True")
            extra["flow_output"] = True
        if self.interior:
            if self.warp <= 0 or not self.warp_only or len(self.interior_region) != 4:
                raise ValueError("model.interior needs model.warp > 0, model.warp_only=True and "
                                 "model.interior_region=(top, bottom, left, right)")
            extra["occlusion_output"] = True
        self.image_decoder = decoders[self.decoder](skips=tuple(self.skips), width=self.width, dtype=self.dtype,
                                                    zero_init_output=self.identity_residual, **extra)

    def encode_identity(self, identity, train: bool = False) -> IdentityFeatures:
        """`[B, 112, 112, 3k]` -> {"embedding": [B, 256], plus the skip maps the decoder uses}."""
        expected = 3 * self.num_identity_images
        if identity.shape[-1] != expected:
            raise ValueError(f"identity input has {identity.shape[-1]} channels; this model takes "
                             f"{self.num_identity_images} image(s) = {expected} channels")
        emb, skips = self.identity_encoder(identity, train)
        out = {"embedding": emb}
        if self.identity_residual:
            out["still"] = identity[..., :3].astype(jnp.float32)
        out.update({k: v for k, v in skips.items() if k in self.skips})
        return out

    def encode_audio(self, mfcc, train: bool = False):
        """`[B, 12, 35, 1]` -> `[B, 256]`."""
        return self.audio_encoder(mfcc, train)

    def decode(self, audio_embedding, identity: IdentityFeatures):
        """Decodes `[B, 256]` audio codes with identity features of batch B or 1."""
        return self.decode_with_flow(audio_embedding, identity)[0]

    def _decoder_output(self, audio_embedding, identity: IdentityFeatures):
        """The image decoder's raw output for `[B, 256]` audio codes and identity features of batch B or 1."""
        emb = identity["embedding"].astype(audio_embedding.dtype)
        if emb.shape[0] != audio_embedding.shape[0]:
            emb = jnp.broadcast_to(emb, (audio_embedding.shape[0],) + emb.shape[1:])
        return self.image_decoder(jnp.concatenate([audio_embedding, emb], axis=-1), identity)

    def decode_with_flow(self, audio_embedding, identity: IdentityFeatures):
        """(frames [B, S, S, 3], flow [B, S, S, 2] in pixels (dy, dx) or None without model.warp)."""
        return self.decode_parts(audio_embedding, identity)[:2]

    def decode_parts(self, audio_embedding, identity: IdentityFeatures):
        """(frames, flow, occlusion mask [B, S, S, 1] of an interior model, else None)."""
        logits = self._decoder_output(audio_embedding, identity)
        if self.interior:
            painted, mask, flow, warped = self._interior_parts(logits, identity)
            return warped + mask * (painted - warped), flow, mask
        return self._plain_frames(logits, identity) + (None,)

    def _plain_frames(self, logits, identity: IdentityFeatures):
        """(frames, flow or None) of a model without model.interior."""
        flow = None
        if self.warp > 0:
            logits, flow = logits[..., :3], logits[..., 3:]
        if self.identity_residual:
            still = identity["still"]
            if still.shape[1:3] != logits.shape[1:3]:  # v201's 109x109 output
                still = jax.image.resize(still, still.shape[:1] + logits.shape[1:3] + (3,), "linear")
            mask = region_mask(logits.shape[1:3], self.residual_region) if self.residual_region else None
            if flow is not None:
                flow, still = self._warp_still(flow, still)
            eps = 1e-3
            still = jnp.clip(still, eps, 1.0 - eps)
            if flow is not None and self.warp_only:
                return still, flow
            if mask is not None:
                logits = logits * mask.astype(logits.dtype)
            logits = logits + jnp.log(still) - jnp.log1p(-still)
        return nn.sigmoid(logits), flow

    def _warp_still(self, raw_flow, still):
        """(flow, warped still): the decoder's raw flow bounded by `warp` (~identity for small flows) and
        held inside `residual_region`, and the still (batch B or 1) moved by it."""
        flow = self.warp * jnp.tanh(raw_flow / self.warp)
        if self.residual_region:
            flow = flow * region_mask(flow.shape[1:3], self.residual_region)
        # one still per flow (inference caches the identity for batch 1)
        return flow, warp_image(jnp.broadcast_to(still, flow.shape[:3] + still.shape[3:]), flow)

    def interior_mask(self, occlusion):
        """The occlusion mask in [0, 1], [B, S, S, 1]: sigmoid(logit) inside `interior_region`, 0 beyond it."""
        box = region_mask(occlusion.shape[1:3], self.interior_region)
        return nn.sigmoid(occlusion.astype(jnp.float32)) * box

    def _interior_parts(self, out, identity: IdentityFeatures):
        """The decoder's output [B, S, S, 6] -> (painted, mask, flow, warped still) of an interior model."""
        logits, flow, occlusion = out[..., :3], out[..., 3:5], out[..., 5:]
        flow, warped = self._warp_still(flow, identity["still"])
        warped = jnp.clip(warped, 1e-3, 1.0 - 1e-3)
        painted = nn.sigmoid(logits + jnp.log(warped) - jnp.log1p(-warped))
        return painted, self.interior_mask(occlusion), flow, warped

    def decode_interior(self, audio_embedding, identity: IdentityFeatures):
        """An interior model's parts for full-resolution compositing: (change logits [B, S, S, 3], mask
        [B, S, S, 1], flow [B, S, S, 2]); with warped = warp_image(still, flow) at any resolution, the frame
        is warped + mask * (sigmoid(change + logit(warped)) - warped) (compositing.warp_frame)."""
        out = self._decoder_output(audio_embedding, identity)
        _, mask, flow, _ = self._interior_parts(out, identity)
        return out[..., :3].astype(jnp.float32), mask, flow

    def generate_from_identity(self, mfcc, identity: IdentityFeatures, train: bool = False):
        """Frames for a batch of MFCC windows given cached identity features."""
        return self.decode(self.encode_audio(mfcc, train), identity)

    def generate_windows(self, mfcc, identity, train: bool = False):
        """w consecutive frames per identity: MFCC `[B, w, 12, 35, 1]` + still(s) `[B, 112, 112, 3k]`
        -> `[B, w, S, S, 3]`. The identity is encoded once per sample, not once per frame."""
        return self.generate_windows_with_flow(mfcc, identity, train)[0]

    def generate_windows_with_flow(self, mfcc, identity, train: bool = False):
        """(`generate_windows`' frames, the warp's flow `[B, w, S, S, 2]` or None without model.warp)."""
        return self.generate_windows_parts(mfcc, identity, train)[:2]

    def generate_windows_parts(self, mfcc, identity, train: bool = False):
        """(frames, flow, occlusion mask `[B, w, S, S, 1]`), flow None without model.warp, mask None
        without model.interior."""
        b, w = mfcc.shape[:2]
        ident = self.encode_identity(identity, train)
        ident = jax.tree_util.tree_map(lambda x: jnp.repeat(x, w, axis=0), ident)
        parts = self.decode_parts(self.encode_audio(mfcc.reshape((b * w,) + mfcc.shape[2:]), train), ident)
        return tuple(None if x is None else x.reshape((b, w) + x.shape[1:]) for x in parts)

    def __call__(self, mfcc, identity, train: bool = False):
        return self.generate_from_identity(mfcc, self.encode_identity(identity, train), train)
