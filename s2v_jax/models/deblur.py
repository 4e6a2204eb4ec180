"""Deblurring CNN (paper Sec. 3.3, released v114): VDSR-style residual net."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class DeblurNet(nn.Module):
    """10 convs 3x3 pad 1 (3->64, 8 x 64->64, 64->3), ReLU after the first nine,
    no BatchNorm; the output is a residual added to the input.

    `[B, H, W, 3]` in [0, 1] -> `[B, H, W, 3]` (not clipped; inference clips).
    """

    features: int = 64
    num_layers: int = 10
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        kw = dict(padding=((1, 1), (1, 1)), dtype=self.dtype, param_dtype=jnp.float32)
        h = x.astype(self.dtype)
        for i in range(self.num_layers - 1):
            h = nn.relu(nn.Conv(self.features, (3, 3), name=f"conv{i + 1}", **kw)(h))
        h = nn.Conv(x.shape[-1], (3, 3), name=f"conv{self.num_layers}", **kw)(h)
        return x + h.astype(x.dtype)
