"""Transposed convolutions for the decoder, chosen by `model.conv_transpose`.

XLA:CPU runs `lax.conv_transpose` as a convolution over the zero-dilated
input, a slow generic path (the paper decoder's last 8x8 stride-2 layer takes
60% of the frame time at 15 GFLOP/s). The same result comes from one stride-1
convolution of the undilated input that produces all s*s output phases as
channels, then depth-to-space (`phase_conv_transpose`). `PhaseConvTranspose`
uses it where every phase has the same input offset (VALID padding, kernel a
multiple of the stride: the 8x8 and 4x4 VALID layers), measured 2.1x faster
for the 8x8 layer; elsewhere the phase kernels would need zero padding and
the gain vanishes, so it falls back to `nn.ConvTranspose`. Both have the same
parameters ('kernel', 'bias'), so checkpoints do not depend on the choice.

    model.conv_transpose = 'auto'   # 'phase' on CPU, 'lax' elsewhere (default)
    model.conv_transpose = 'lax'    # flax's nn.ConvTranspose everywhere
    model.conv_transpose = 'phase'  # the phase form where it pays
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from s2v_jax.errors import ConfigError

CHOICES = ("auto", "lax", "phase")


def _tconv_padding(k: int, s: int, padding: str):
    """(before, after) padding of the dilated input, as lax.conv_transpose computes it."""
    if padding == "SAME":
        pad_len = k + s - 2
        pad_a = k - 1 if s > k - 1 else -(-pad_len // 2)
    else:
        pad_len = k + s - 2 + max(k - s, 0)
        pad_a = k - 1
    return pad_a, pad_len - pad_a


def _tconv_phases(n: int, k: int, s: int, padding: str):
    """Output length, per-phase (first tap, input offset, taps) and the union window [start, end]."""
    pa, pb = _tconv_padding(k, s, padding)
    out = s * (n - 1) + 1 + pa + pb - k + 1
    phases = []
    for r in range(s):
        t0 = (pa - r) % s
        phases.append((t0, (r + t0 - pa) // s, len(range(t0, k, s))))
    return out, phases, min(c for _, c, _ in phases), max(c + m - 1 for _, c, m in phases)


def phase_conv_transpose(x, kernel, strides, padding: str):
    """lax.conv_transpose(x, kernel, strides, padding) for NHWC x, HWIO kernel
    (transpose_kernel=False) as one stride-1 conv with s*s*C outputs + depth-to-space."""
    b, h, w, _ = x.shape
    kh, kw, _, co = kernel.shape
    sy, sx = strides
    oy, phy, y0, y1 = _tconv_phases(h, kh, sy, padding)
    ox, phx, x0, x1 = _tconv_phases(w, kw, sx, padding)
    my, mx = y1 - y0 + 1, x1 - x0 + 1
    ly, lx = -(-oy // sy), -(-ox // sx)
    blocks = []
    for ty, cy, ny in phy:
        for tx, cx, nx in phx:
            sub = kernel[ty::sy, tx::sx]
            blocks.append(jnp.pad(sub, ((cy - y0, my - ny - (cy - y0)), (cx - x0, mx - nx - (cx - x0)), (0, 0), (0, 0))))
    wk = jnp.concatenate(blocks, axis=-1)  # [my, mx, Ci, sy * sx * Co]
    lo_y, hi_y = max(0, -y0), max(0, ly - 1 + y1 - (h - 1))
    lo_x, hi_x = max(0, -x0), max(0, lx - 1 + x1 - (w - 1))
    xp = jnp.pad(x, ((0, 0), (lo_y, hi_y), (lo_x, hi_x), (0, 0)))
    xp = xp[:, y0 + lo_y:y0 + lo_y + ly + my - 1, x0 + lo_x:x0 + lo_x + lx + mx - 1]
    y = jax.lax.conv_general_dilated(xp, wk, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(b, ly, lx, sy, sx, co).transpose(0, 1, 3, 2, 4, 5).reshape(b, ly * sy, lx * sx, co)
    return y[:, :oy, :ox]


def _phase_form_pays(k: int, s: int, padding: str) -> bool:
    if s == 1:
        return False
    _, phases, _, _ = _tconv_phases(1, k, s, padding)
    return len({(c, m) for _, c, m in phases}) == 1


class PhaseConvTranspose(nn.ConvTranspose):
    """`nn.ConvTranspose` computed as `phase_conv_transpose` where that pays (same parameters, same output)."""

    @nn.compact
    def __call__(self, inputs):
        k = tuple(self.kernel_size)
        strides = tuple(self.strides) if self.strides is not None else (1,) * len(k)
        if (len(k) != 2 or self.transpose_kernel or self.mask is not None or self.padding not in ("SAME", "VALID")
                or self.kernel_dilation not in (None, 1, (1, 1)) or inputs.ndim != 4
                or not all(_phase_form_pays(kk, ss, self.padding) for kk, ss in zip(k, strides))):
            return super().__call__(inputs)
        kernel = self.param("kernel", self.kernel_init, k + (inputs.shape[-1], self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        x, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = phase_conv_transpose(x, kernel, strides, self.padding)
        return y if bias is None else y + bias


def conv_transpose_class(choice: str = "auto", backend: str = None):
    """The transposed-conv module class for `model.conv_transpose` ('auto' picks by the JAX backend)."""
    if choice not in CHOICES:
        raise ConfigError(f"model.conv_transpose must be one of {CHOICES}, not {choice!r}")
    if choice == "auto":
        choice = "phase" if (backend or jax.default_backend()) == "cpu" else "lax"
    return PhaseConvTranspose if choice == "phase" else nn.ConvTranspose
