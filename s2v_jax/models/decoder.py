"""Image decoders: the 512-d (audio fc7 ++ identity fc7) code -> a face image.

Two layouts, chosen by `config.model.decoder`:
- `transposed` (paper default, Fig. 6): transposed convolutions up to
  112x112x3, skips B (pool1) and C (conv2) by default.
- `bilinear` (the released v201): x2 bilinear up-sampling with aligned corners
  followed by 3x3 convs, skips A, B and C, output 109x109x3.
Neither uses BatchNorm (v201 has none in its decoder); ReLU after every layer
but the last, He-initialised with the transposed-conv fan-in corrected (`_he`)
so that the audio code still reaches the full-resolution layers. Decoders
return pre-sigmoid logits; the generator applies the sigmoid (optionally on
top of the still's own logits, see `identity_residual`).
"""

from typing import Any, Callable, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from s2v_jax.models.layers import resize_bilinear_align_corners, scaled

SKIP_NAMES = ("A", "B", "C")


def _check_skips(skips: Sequence[str]):
    bad = [s for s in skips if s not in SKIP_NAMES]
    if bad:
        raise ValueError(f"unknown skip(s) {bad}; choose from {SKIP_NAMES}")


def _he(taps_per_output: float = 1.0, kernel_area: float = 1.0) -> Dict[str, Any]:
    """He (fan-in, gain 2) initialiser for a ReLU layer, as MatConvNet's default
    ('xavierimproved') that the paper used. Flax counts a transposed conv's fan-in
    as the whole kernel, but each output of a stride-s layer only sees about
    1/s^2 of it (one tap per input channel for the 1x1 -> 6x6 layer), so the
    scale is corrected by kernel_area / taps_per_output. Without the correction
    the audio code reaching the 112x112 layers shrinks about 3000-fold at
    initialisation and the identity skips drown it."""
    return {"kernel_init": nn.initializers.variance_scaling(2.0 * kernel_area / taps_per_output, "fan_in",
                                                            "truncated_normal")}


def _out_init(zero: bool) -> Dict[str, Any]:
    """Initialiser of the output conv: zeros when asked, so that the logits
    start at exactly 0 (the still itself, for an identity-residual generator)."""
    return {"kernel_init": nn.initializers.zeros} if zero else {}


def _concat_skip(x, skips: Dict[str, jnp.ndarray], name: str, enabled: Sequence[str]):
    """Concatenates the identity activation `name` onto `x` if that skip is enabled.

    Identity features cached for one face (batch 1) broadcast to the frame batch.
    """
    if name not in enabled:
        return x
    return _concat_broadcast(x, skips[name])


def _concat_broadcast(x, s):
    """concat([x, s]) on channels, `s` (batch B or 1) broadcast to x's batch."""
    s = s.astype(x.dtype)
    if s.shape[0] != x.shape[0]:
        s = jnp.broadcast_to(s, (x.shape[0],) + s.shape[1:])
    return jnp.concatenate([x, s], axis=-1)


class SkipConv(nn.Module):
    """A 3x3 conv (stride 1, padding 1, bias) of `x` with an identity skip concatenated: the parameters of
    `nn.Conv` over concat([x, skip]) (same names, shapes and initialisers), and its output to float rounding.
    When the skip is one face's (batch 1: the identity cached at inference) and `x` a batch of frames, the
    skip's share conv(skip, kernel[:, :, cx:]) is computed once, not once per frame, and broadcast onto
    conv(x, kernel[:, :, :cx]): for v201 half of the FLOPs of conv26a, conv53 and conv109a (issue #34).
    Otherwise (training: a skip per sample) the one conv of the concatenation, as before."""

    features: int
    dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x, skip=None):
        cin = x.shape[-1] + (0 if skip is None else skip.shape[-1])
        kernel = self.param("kernel", self.kernel_init, (3, 3, cin, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        kernel, bias = kernel.astype(self.dtype), bias.astype(self.dtype)

        def conv(inputs, k):
            return jax.lax.conv_general_dilated(inputs.astype(self.dtype), k, (1, 1), ((1, 1), (1, 1)),
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))

        if skip is None:
            return conv(x, kernel) + bias
        if skip.shape[0] == 1 and x.shape[0] > 1:
            cx = x.shape[-1]
            return conv(x, kernel[:, :, :cx]) + conv(skip, kernel[:, :, cx:]) + bias
        return conv(_concat_broadcast(x, skip), kernel) + bias


OCCLUSION_START = -8.0  # the occlusion logit's initial bias: sigmoid 3e-4, the warp alone to start with


class TransposedDecoder(nn.Module):
    """Paper decoder. Stages (width 1): fc 1x1x128 -> tconv 6x6 -> 6x6x512 ->
    tconv4/2 -> 12x12x256 (+C) -> tconv4/2 -> 26x26x256 -> conv -> 96 (+B) ->
    tconv3/2 -> 53x53x96 (+A if enabled) -> tconv8/2 -> 112x112x64 -> conv 32 -> conv 3.
    """

    skips: Sequence[str] = ("B", "C")
    width: float = 1.0
    dtype: Any = jnp.float32
    zero_init_output: bool = False  # start the output conv at zero (identity-residual models start at the still)
    conv_transpose: Callable[..., nn.Module] = nn.ConvTranspose  # layer class (see models.conv_transpose)
    # Also a 2-channel flow map (dy, dx, raw), from the 53x53 stage resized to the output: a smooth field.
    # Its conv starts at zero (no motion). The output is then [B, 112, 112, 5]: 3 image logits + 2 flow.
    flow_output: bool = False
    # Also a 1-channel occlusion logit at full resolution (after the flow, last), where the model paints the
    # mouth's interior instead of showing the warped still; it starts far below 0 (nothing painted).
    occlusion_output: bool = False

    @nn.compact
    def __call__(self, z, skips: Dict[str, jnp.ndarray]):
        _check_skips(self.skips)
        w = lambda c: scaled(c, self.width)  # noqa: E731
        kw = dict(dtype=self.dtype, param_dtype=jnp.float32)
        tconv = self.conv_transpose
        same = ((1, 1), (1, 1))
        x = z.astype(self.dtype)[:, None, None, :]
        x = nn.relu(nn.Conv(w(128), (1, 1), name="fc", **_he(), **kw)(x))
        x = nn.relu(tconv(w(512), (6, 6), padding="VALID", name="up6", **_he(1, 36), **kw)(x))
        x = nn.relu(tconv(w(256), (4, 4), (2, 2), padding="SAME", name="up12", **_he(4, 16), **kw)(x))
        x = _concat_skip(x, skips, "C", self.skips)
        x = nn.relu(tconv(w(256), (4, 4), (2, 2), padding="VALID", name="up26", **_he(4, 16), **kw)(x))
        x = nn.relu(nn.Conv(w(96), (3, 3), padding=same, name="conv26", **_he(), **kw)(x))
        x = _concat_skip(x, skips, "B", self.skips)
        x = nn.relu(tconv(w(96), (3, 3), (2, 2), padding="VALID", name="up53", **_he(2.25, 9), **kw)(x))
        flow = None
        if self.flow_output:
            flow = nn.Conv(2, (3, 3), padding=same, name="flow", kernel_init=nn.initializers.zeros, **kw)(x)
        x = _concat_skip(x, skips, "A", self.skips)
        x = nn.relu(tconv(w(64), (8, 8), (2, 2), padding="VALID", name="up112", **_he(16, 64), **kw)(x))
        x = nn.relu(nn.Conv(w(32), (3, 3), padding=same, name="conv112", **_he(), **kw)(x))
        out = nn.Conv(3, (3, 3), padding=same, name="out", **_out_init(self.zero_init_output), **kw)
        out = out(x).astype(jnp.float32)
        if flow is not None:
            flow = jax.image.resize(flow.astype(jnp.float32), flow.shape[:1] + out.shape[1:3] + (2,), "linear")
            out = jnp.concatenate([out, flow], axis=-1)
        if self.occlusion_output:
            occ = nn.Conv(1, (3, 3), padding=same, name="occlusion", kernel_init=nn.initializers.zeros,
                          bias_init=nn.initializers.constant(OCCLUSION_START), **kw)(x)
            out = jnp.concatenate([out, occ.astype(jnp.float32)], axis=-1)
        return out


class BilinearDecoder(nn.Module):
    """v201 decoder. Each stage resizes (bilinear, aligned corners) then applies
    3x3 convs: 128 (1x1) -> 256 (3x3) -> 512 (6x6) -> 256 (12x12, +C) ->
    256 -> 96 (26x26, +B) -> 96 (53x53, +A) -> 64 -> 32 -> 3 (109x109).
    """

    skips: Sequence[str] = ("A", "B", "C")
    width: float = 1.0
    dtype: Any = jnp.float32
    output_size: int = 109
    zero_init_output: bool = False  # start the output conv at zero (identity-residual models start at the still)

    @nn.compact
    def __call__(self, z, skips: Dict[str, jnp.ndarray]):
        _check_skips(self.skips)
        w = lambda c: scaled(c, self.width)  # noqa: E731
        kw = dict(dtype=self.dtype, param_dtype=jnp.float32, padding=((1, 1), (1, 1)))
        up = lambda x, n: resize_bilinear_align_corners(x, (n, n))  # noqa: E731
        x = z.astype(self.dtype)[:, None, None, :]
        he = _he()
        x = nn.relu(nn.Conv(w(128), (1, 1), dtype=self.dtype, param_dtype=jnp.float32, name="fc", **he)(x))
        x = nn.relu(nn.Conv(w(256), (3, 3), name="conv3", **he, **kw)(up(x, 3)))
        x = nn.relu(nn.Conv(w(512), (3, 3), name="conv6", **he, **kw)(up(x, 6)))
        x = nn.relu(nn.Conv(w(256), (3, 3), name="conv12", **he, **kw)(up(x, 12)))

        def skip_up(name, n):  # the skip resized alone: up(concat(x, s)) = concat(up(x), up(s)), channel-wise
            return up(skips[name].astype(self.dtype), n) if name in self.skips else None

        conv = lambda c, name: SkipConv(w(c), dtype=self.dtype, name=name, **he)  # noqa: E731
        x = nn.relu(conv(256, "conv26a")(up(x, 26), skip_up("C", 26)))
        x = nn.relu(nn.Conv(w(96), (3, 3), name="conv26b", **he, **kw)(x))
        x = nn.relu(conv(96, "conv53")(up(x, 53), skip_up("B", 53)))
        n = self.output_size
        x = nn.relu(conv(64, "conv109a")(up(x, n), skip_up("A", n)))
        x = nn.relu(nn.Conv(w(32), (3, 3), name="conv109b", **he, **kw)(x))
        return nn.Conv(3, (3, 3), name="out", **_out_init(self.zero_init_output), **kw)(x).astype(jnp.float32)
