"""Image decoders: the 512-d (audio fc7 ++ identity fc7) code -> a face image.

Two layouts, chosen by `config.model.decoder`:
- `transposed` (paper default, Fig. 6): transposed convolutions up to
  112x112x3, skips B (pool1) and C (conv2) by default.
- `bilinear` (the released v201): x2 bilinear up-sampling with aligned corners
  followed by 3x3 convs, skips A, B and C, output 109x109x3.
Neither uses BatchNorm (v201 has none in its decoder); ReLU after every layer
but the last. Decoders return pre-sigmoid logits; the generator applies the
sigmoid (optionally on top of the still's own logits, see `identity_residual`).
"""

from typing import Any, Dict, Sequence

import flax.linen as nn
import jax.numpy as jnp

from s2v_jax.models.layers import resize_bilinear_align_corners, scaled

SKIP_NAMES = ("A", "B", "C")


def _check_skips(skips: Sequence[str]):
    bad = [s for s in skips if s not in SKIP_NAMES]
    if bad:
        raise ValueError(f"unknown skip(s) {bad}; choose from {SKIP_NAMES}")


def _concat_skip(x, skips: Dict[str, jnp.ndarray], name: str, enabled: Sequence[str]):
    """Concatenates the identity activation `name` onto `x` if that skip is enabled.

    Identity features cached for one face (batch 1) broadcast to the frame batch.
    """
    if name not in enabled:
        return x
    s = skips[name].astype(x.dtype)
    if s.shape[0] != x.shape[0]:
        s = jnp.broadcast_to(s, (x.shape[0],) + s.shape[1:])
    return jnp.concatenate([x, s], axis=-1)


class TransposedDecoder(nn.Module):
    """Paper decoder. Stages (width 1): fc 1x1x128 -> tconv 6x6 -> 6x6x512 ->
    tconv4/2 -> 12x12x256 (+C) -> tconv4/2 -> 26x26x256 -> conv -> 96 (+B) ->
    tconv3/2 -> 53x53x96 (+A if enabled) -> tconv8/2 -> 112x112x64 -> conv 32 -> conv 3.
    """

    skips: Sequence[str] = ("B", "C")
    width: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, skips: Dict[str, jnp.ndarray]):
        _check_skips(self.skips)
        w = lambda c: scaled(c, self.width)  # noqa: E731
        kw = dict(dtype=self.dtype, param_dtype=jnp.float32)
        same = ((1, 1), (1, 1))
        x = z.astype(self.dtype)[:, None, None, :]
        x = nn.relu(nn.Conv(w(128), (1, 1), name="fc", **kw)(x))
        x = nn.relu(nn.ConvTranspose(w(512), (6, 6), padding="VALID", name="up6", **kw)(x))
        x = nn.relu(nn.ConvTranspose(w(256), (4, 4), (2, 2), padding="SAME", name="up12", **kw)(x))
        x = _concat_skip(x, skips, "C", self.skips)
        x = nn.relu(nn.ConvTranspose(w(256), (4, 4), (2, 2), padding="VALID", name="up26", **kw)(x))
        x = nn.relu(nn.Conv(w(96), (3, 3), padding=same, name="conv26", **kw)(x))
        x = _concat_skip(x, skips, "B", self.skips)
        x = nn.relu(nn.ConvTranspose(w(96), (3, 3), (2, 2), padding="VALID", name="up53", **kw)(x))
        x = _concat_skip(x, skips, "A", self.skips)
        x = nn.relu(nn.ConvTranspose(w(64), (8, 8), (2, 2), padding="VALID", name="up112", **kw)(x))
        x = nn.relu(nn.Conv(w(32), (3, 3), padding=same, name="conv112", **kw)(x))
        return nn.Conv(3, (3, 3), padding=same, name="out", **kw)(x).astype(jnp.float32)


class BilinearDecoder(nn.Module):
    """v201 decoder. Each stage resizes (bilinear, aligned corners) then applies
    3x3 convs: 128 (1x1) -> 256 (3x3) -> 512 (6x6) -> 256 (12x12, +C) ->
    256 -> 96 (26x26, +B) -> 96 (53x53, +A) -> 64 -> 32 -> 3 (109x109).
    """

    skips: Sequence[str] = ("A", "B", "C")
    width: float = 1.0
    dtype: Any = jnp.float32
    output_size: int = 109

    @nn.compact
    def __call__(self, z, skips: Dict[str, jnp.ndarray]):
        _check_skips(self.skips)
        w = lambda c: scaled(c, self.width)  # noqa: E731
        kw = dict(dtype=self.dtype, param_dtype=jnp.float32, padding=((1, 1), (1, 1)))
        up = lambda x, n: resize_bilinear_align_corners(x, (n, n))  # noqa: E731
        x = z.astype(self.dtype)[:, None, None, :]
        x = nn.relu(nn.Conv(w(128), (1, 1), dtype=self.dtype, param_dtype=jnp.float32, name="fc")(x))
        x = nn.relu(nn.Conv(w(256), (3, 3), name="conv3", **kw)(up(x, 3)))
        x = nn.relu(nn.Conv(w(512), (3, 3), name="conv6", **kw)(up(x, 6)))
        x = nn.relu(nn.Conv(w(256), (3, 3), name="conv12", **kw)(up(x, 12)))
        x = _concat_skip(x, skips, "C", self.skips)
        x = nn.relu(nn.Conv(w(256), (3, 3), name="conv26a", **kw)(up(x, 26)))
        x = nn.relu(nn.Conv(w(96), (3, 3), name="conv26b", **kw)(x))
        x = _concat_skip(x, skips, "B", self.skips)
        x = nn.relu(nn.Conv(w(96), (3, 3), name="conv53", **kw)(up(x, 53)))
        x = _concat_skip(x, skips, "A", self.skips)
        n = self.output_size
        x = nn.relu(nn.Conv(w(64), (3, 3), name="conv109a", **kw)(up(x, n)))
        x = nn.relu(nn.Conv(w(32), (3, 3), name="conv109b", **kw)(x))
        return nn.Conv(3, (3, 3), name="out", **kw)(x).astype(jnp.float32)
