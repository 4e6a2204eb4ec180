"""VGG-M identity encoder: 1 face (112x112x3) or 5 faces (112x112x15) -> 256-d,
plus the skip activations the decoder concatenates.
"""

from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from s2v_jax.models.layers import ConvBNReLU, max_pool, scaled


class IdentityEncoder(nn.Module):
    """VGG-M trunk. Only conv1's kernel depends on the number of stills
    (7x7x3x96 for one, 7x7x15x96 for five, stacked channel-wise).

    Returns `(embedding [B, 256*width], skips)` with skips
    `A` = conv1 `[B, 53, 53, 96]`, `B` = pool1 `[B, 26, 26, 96]`,
    `C` = conv2 `[B, 12, 12, 256]` (width 1).
    """

    width: float = 1.0
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, x, train: bool = False) -> Tuple[jnp.ndarray, Dict[str, jnp.ndarray]]:
        cbr = lambda f, k, s, pad, name: ConvBNReLU(  # noqa: E731
            scaled(f, self.width), k, s, padding=pad, dtype=self.dtype, bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon, axis_name=self.axis_name, name=name)
        x = x.astype(self.dtype)
        a = cbr(96, (7, 7), (2, 2), "VALID", "conv1")(x, train)
        b = max_pool(a, 3, (2, 2))
        c = cbr(256, (5, 5), (2, 2), ((1, 1), (1, 1)), "conv2")(b, train)
        x = max_pool(c, 3, (2, 2), ((0, 1), (0, 1)))
        x = cbr(512, (3, 3), (1, 1), ((1, 1), (1, 1)), "conv3")(x, train)
        x = cbr(512, (3, 3), (1, 1), ((1, 1), (1, 1)), "conv4")(x, train)
        x = cbr(512, (3, 3), (1, 1), ((1, 1), (1, 1)), "conv5")(x, train)
        x = cbr(512, (6, 6), (1, 1), "VALID", "fc6")(x, train)
        x = cbr(256, (1, 1), (1, 1), "VALID", "fc7")(x, train)
        return x.reshape(x.shape[0], -1), {"A": a, "B": b, "C": c}
