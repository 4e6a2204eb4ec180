"""The deblurring net's task (paper Sec. 3.3, released v114): target crops are
blurred on device with a Gaussian of random sigma in `train.blur_sigma`; the
net predicts the sharp crop, L1. Its baseline is the blurred input itself.
"""

import dataclasses
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from s2v_jax.errors import ConfigError
from s2v_jax.train.tasks.image import ImageTask, gaussian_blur, image_eval_sums, l1_loss, to_float_image

DEFAULT_BLUR_SIGMA = (0.5, 2.5)


def example_ids(batch_size: int, axis_name: Optional[str] = None):
    """Global indices of this device's examples, so per-example randomness does not
    depend on how the batch is split over devices."""
    ids = jnp.arange(batch_size, dtype=jnp.uint32)
    if axis_name is not None:
        ids = ids + jax.lax.axis_index(axis_name).astype(jnp.uint32) * batch_size
    return ids


def blur_sigmas(key, ids, sigma_range):
    """One sigma per example, uniform in `sigma_range`, drawn from `fold_in(key, id)`."""
    lo, hi = float(sigma_range[0]), float(sigma_range[1])
    return jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (), jnp.float32, lo, hi))(ids)


@dataclasses.dataclass(frozen=True)
class DeblurTask(ImageTask):
    blur_sigma: Tuple[float, float] = DEFAULT_BLUR_SIGMA
    name: str = dataclasses.field(default="deblur", init=False)
    title = "the deblurring net"  # how messages name it
    baseline: Optional[str] = dataclasses.field(default="blurred", init=False)

    @classmethod
    def from_config(cls, config):
        sigma = tuple(float(s) for s in config.train.blur_sigma)
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ConfigError(f"train.blur_sigma must be (low, high) with 0 < low <= high, not {sigma!r}")
        return cls(blur_sigma=sigma)

    def init_variables(self, config, model, rng):
        return dict(model.init(rng, *self.dummy_inputs(config)))

    def forward(self, params, apply_fn, batch, key, axis_name):
        """(prediction, sharp target, blurred input), float32 `[b, S, S, 3]`."""
        target = to_float_image(batch["target"])
        sigmas = blur_sigmas(key, example_ids(target.shape[0], axis_name), self.blur_sigma)
        blurred = gaussian_blur(target, sigmas, max(self.blur_sigma))
        return apply_fn({"params": params}, blurred).astype(jnp.float32), target, blurred

    def loss(self, state, params, batch, *, key, axis_name):
        pred, target, _ = self.forward(params, state.apply_fn, batch, key, axis_name)
        return l1_loss(pred, target), ({}, state.batch_stats)

    def eval_sums(self, state, batch, *, key, axis_name):
        # `key` is the steps' fixed eval stream: the eval blur is a function of the example's position.
        pred, target, blurred = self.forward(state.params, state.apply_fn, batch, key, axis_name)
        return image_eval_sums(pred, target, blurred, self.baseline)
