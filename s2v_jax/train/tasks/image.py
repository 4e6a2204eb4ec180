"""What the image tasks (generator, deblur) share: float images on device,
resizing to the model's output side, a per-image Gaussian blur, L1 / squared
error, image metrics beside a baseline, the input pipeline's loaders, and the
`ImageTask` base."""

import dataclasses
import math
from typing import Tuple

import jax
import jax.numpy as jnp
import ml_collections

from s2v_jax.models import build_model, input_shapes
from s2v_jax.train import metrics as metrics_lib
from s2v_jax.train.tasks.base import Task


def to_float_image(x):
    """uint8 `[..., C]` in 0..255 -> float32 in [0, 1]; float input is passed through as float32."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    return x.astype(jnp.float32)


def resize_to(images, size: Tuple[int, int]):
    """`[B, H, W, C]` -> `[B, *size, C]` (bilinear, antialiased); a no-op when the size already matches."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    return jax.image.resize(images, (images.shape[0],) + tuple(size) + images.shape[3:], "linear",
                            antialias=True)


def gaussian_blur(images, sigmas, max_sigma: float):
    """Separable Gaussian blur with a per-image sigma: `[B, H, W, C]`, `[B]` -> `[B, H, W, C]`.

    The kernel has radius ceil(3 * max_sigma) taps, normalised per image; the
    borders are reflected. Applied as a sum of shifted, weighted copies (a conv).
    """
    radius = max(1, int(math.ceil(3.0 * max_sigma)))
    offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    taps = jnp.exp(-0.5 * jnp.square(offsets[None, :] / jnp.maximum(sigmas[:, None], 1e-3)))
    taps = taps / taps.sum(axis=1, keepdims=True)  # [B, 2r+1]

    def blur_axis(x, axis):
        n = x.shape[axis]
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        xp = jnp.pad(x, pad, mode="reflect")
        out = jnp.zeros_like(x)
        for k in range(2 * radius + 1):
            window = jax.lax.slice_in_dim(xp, k, k + n, axis=axis)
            out = out + taps[:, k, None, None, None] * window
        return out

    return blur_axis(blur_axis(images, 1), 2)


def l1_loss(pred, target):
    """Mean absolute error over all pixels and channels of the batch (a scalar)."""
    return jnp.mean(jnp.abs(pred - target))


def mse_loss(pred, target):
    """Mean squared error over all pixels and channels of the batch (a scalar)."""
    return jnp.mean(jnp.square(pred - target))


def image_eval_sums(pred, target, baseline, prefix: str):
    """Sums over the batch of L1, PSNR, SSIM of the model and of its baseline, the output's
    distance from the baseline itself ('l1_to_<prefix>': near 0 means the model just copies
    it, whatever its L1 to the target) and 'count'."""
    out = {k: v.sum() for k, v in metrics_lib.image_metrics(pred, target).items()}
    out.update({f"{prefix}_{k}": v.sum() for k, v in metrics_lib.image_metrics(baseline, target).items()})
    out[f"l1_to_{prefix}"] = jnp.abs(pred - baseline).mean(axis=(1, 2, 3)).sum()
    out["count"] = jnp.asarray(pred.shape[0], jnp.float32)
    return out


def describe_image_eval(val, prefix: str) -> str:
    return (f"val L1 {val['l1']:.4f} PSNR {val['psnr']:.2f} SSIM {val['ssim']:.3f} ({prefix} baseline: "
            f"L1 {val[f'{prefix}_l1']:.4f} PSNR {val[f'{prefix}_psnr']:.2f} SSIM {val[f'{prefix}_ssim']:.3f}; "
            f"output to baseline L1 {val[f'l1_to_{prefix}']:.4f})")


def pipeline_data_functions(config: ml_collections.ConfigDict):
    """`s2v_jax.data.input_pipeline`'s loader factories, after building the dataset if needed."""
    # Deferred for start-up: grain and TFDS are needed to train, not to load a checkpoint for generation.
    from s2v_jax.data import input_pipeline

    input_pipeline.ensure_dataset(config)
    return input_pipeline.create_train_loader, input_pipeline.create_eval_batches


@dataclasses.dataclass(frozen=True)
class ImageTask(Task):
    """What the image tasks (generator, deblur) share: `build_model`'s networks, the
    input pipeline's data, image metrics beside a baseline image."""

    best_metric: str = dataclasses.field(default="l1", init=False)

    def build_model(self, config, axis_name=None):
        return build_model(config, axis_name=axis_name)

    def dummy_inputs(self, config):
        return tuple(jnp.zeros((1,) + s, jnp.float32) for s in input_shapes(config).values())

    def data_functions(self, config):
        return pipeline_data_functions(config)

    def describe(self, val):
        return describe_image_eval(val, self.baseline)
