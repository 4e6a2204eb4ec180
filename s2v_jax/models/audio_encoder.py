"""Audio encoder: a 12x35 MFCC window -> a 256-d speech embedding (SPEC table)."""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from s2v_jax.models.layers import ConvBNReLU, max_pool, scaled


class AudioEncoder(nn.Module):
    """VGG-M-like CNN over MFCC maps.

    Input `[B, 12, 35, 1]` (12 cepstral coefficients x 35 steps of 10 ms);
    output `[B, 256 * width]` (fc7). Layer outputs (width 1): conv1 12x35x64,
    conv2 12x35x128, pool2 11x17x128, conv3-5 11x17x256, pool5 5x8x256,
    fc6 1x1x512, fc7 1x1x256.

    `hidden_width` (not in the paper; None = `width`) scales conv1-fc6 alone, so a small
    generator can have a wider audio CNN while its audio code (fc7) keeps `width`.
    """

    width: float = 1.0
    hidden_width: Optional[float] = None
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim == 3:
            x = x[..., None]
        hidden = self.width if self.hidden_width is None else self.hidden_width
        cbr = lambda f, k, name, pad, w=hidden: ConvBNReLU(  # noqa: E731
            scaled(f, w), k, padding=pad, dtype=self.dtype, bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon, axis_name=self.axis_name, name=name)
        x = x.astype(self.dtype)
        x = cbr(64, (3, 3), "conv1", ((1, 1), (1, 1)))(x, train)
        x = cbr(128, (3, 3), "conv2", ((1, 1), (1, 1)))(x, train)
        # 3x3 max pool, stride 1 in frequency and 2 in time, one row of padding on top.
        x = max_pool(x, 3, (1, 2), ((1, 0), (0, 0)))
        x = cbr(256, (3, 3), "conv3", ((1, 1), (1, 1)))(x, train)
        x = cbr(256, (3, 3), "conv4", ((1, 1), (1, 1)))(x, train)
        x = cbr(256, (3, 3), "conv5", ((1, 1), (1, 1)))(x, train)
        x = max_pool(x, 3, (2, 2))
        x = cbr(512, (5, 8), "fc6", "VALID")(x, train)
        x = cbr(256, (1, 1), "fc7", "VALID", self.width)(x, train)
        return x.reshape(x.shape[0], -1)
