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
    # The transposed decoder's layer class (models.conv_transpose: nn.ConvTranspose or the CPU phase form).
    conv_transpose: Callable[..., nn.Module] = nn.ConvTranspose

    def setup(self):
        common = dict(width=self.width, dtype=self.dtype, bn_momentum=self.bn_momentum,
                      bn_epsilon=self.bn_epsilon, axis_name=self.axis_name)
        self.audio_encoder = AudioEncoder(**common)
        self.identity_encoder = IdentityEncoder(**common)
        decoders = {"transposed": TransposedDecoder, "bilinear": BilinearDecoder}
        if self.decoder not in decoders:
            raise ValueError(f"model.decoder must be 'transposed' or 'bilinear', not {self.decoder!r}")
        extra = {"conv_transpose": self.conv_transpose} if self.decoder == "transposed" else {}
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
        emb = identity["embedding"].astype(audio_embedding.dtype)
        if emb.shape[0] != audio_embedding.shape[0]:
            emb = jnp.broadcast_to(emb, (audio_embedding.shape[0],) + emb.shape[1:])
        z = jnp.concatenate([audio_embedding, emb], axis=-1)
        logits = self.image_decoder(z, identity)
        if self.identity_residual:
            still = identity["still"]
            if still.shape[1:3] != logits.shape[1:3]:  # v201's 109x109 output
                still = jax.image.resize(still, still.shape[:1] + logits.shape[1:3] + (3,), "linear")
            eps = 1e-3
            still = jnp.clip(still, eps, 1.0 - eps)
            if self.residual_region:
                logits = logits * region_mask(logits.shape[1:3], self.residual_region).astype(logits.dtype)
            logits = logits + jnp.log(still) - jnp.log1p(-still)
        return nn.sigmoid(logits)

    def generate_from_identity(self, mfcc, identity: IdentityFeatures, train: bool = False):
        """Frames for a batch of MFCC windows given cached identity features."""
        return self.decode(self.encode_audio(mfcc, train), identity)

    def generate_windows(self, mfcc, identity, train: bool = False):
        """w consecutive frames per identity: MFCC `[B, w, 12, 35, 1]` + still(s) `[B, 112, 112, 3k]`
        -> `[B, w, S, S, 3]`. The identity is encoded once per sample, not once per frame."""
        b, w = mfcc.shape[:2]
        ident = self.encode_identity(identity, train)
        ident = jax.tree_util.tree_map(lambda x: jnp.repeat(x, w, axis=0), ident)
        frames = self.generate_from_identity(mfcc.reshape((b * w,) + mfcc.shape[2:]), ident, train)
        return frames.reshape((b, w) + frames.shape[1:])

    def __call__(self, mfcc, identity, train: bool = False):
        return self.generate_from_identity(mfcc, self.encode_identity(identity, train), train)
