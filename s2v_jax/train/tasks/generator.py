"""The Speech2Vid generator's task: generator(mfcc, identity) vs the target frame.

Batches arrive as the input pipeline yields them (`'mfcc'` float32
`[b, 12, 35, 1]`, `'identity'` uint8 `[b, 112, 112, 3k]`, `'target'` uint8
`[b, 112, 112, 3]`) and become float in [0, 1] on device, so host-to-device
copies stay uint8. Loss: L1 (the paper), optionally squared error for the
first `train.mse_warmup_steps`. If the model's output side (109 for the v201
bilinear decoder) differs from the target's (112), the target is resized on
device to the output side (bilinear, antialiased: the 109x109 frame covers
the same registered face crop). Baseline: the first still itself ('static').
"""

import dataclasses
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from s2v_jax.errors import ConfigError
from s2v_jax.models import build_model, input_shapes
from s2v_jax.train import metrics as metrics_lib
from s2v_jax.train.tasks.base import Task, apply_model


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


@dataclasses.dataclass(frozen=True)
class GeneratorTask(ImageTask):
    """`mse_warmup_steps`: while `state.step` is below it the loss is squared error, then L1.
    Why: an identity-residual model starts exactly at the still, and there L1's kink pins it
    (most pixels already match, and any change costs on all of them at once), whereas squared
    error is flat near zero error and lets the mouth pathway form; L1 then takes over."""

    mse_warmup_steps: int = 0
    name: str = dataclasses.field(default="generator", init=False)
    title = "the generator"  # how messages name it
    baseline: Optional[str] = dataclasses.field(default="static", init=False)

    @classmethod
    def from_config(cls, config):
        warmup = int(config.train.get("mse_warmup_steps", 0))
        if warmup < 0:
            raise ConfigError(f"train.mse_warmup_steps must be >= 0 (0 = the paper's L1 throughout), not {warmup}")
        return cls(mse_warmup_steps=warmup)

    def forward(self, state, params, batch, *, train: bool):
        """(prediction, target, static baseline, new batch_stats); images float32 `[b, S, S, 3]`,
        S the model's output side."""
        target = to_float_image(batch["target"])
        identity = to_float_image(batch["identity"])
        pred, stats = apply_model(state, params, (batch["mfcc"].astype(jnp.float32), identity), train=train)
        pred = pred.astype(jnp.float32)
        size = pred.shape[1:3]
        return pred, resize_to(target, size), resize_to(identity[..., :3], size), stats

    def loss(self, state, params, batch, *, key, axis_name):
        pred, target, _, stats = self.forward(state, params, batch, train=True)
        loss = l1_loss(pred, target)
        if self.mse_warmup_steps > 0:
            loss = jnp.where(state.step < self.mse_warmup_steps, mse_loss(pred, target), loss)
        return loss, ({}, stats)

    def eval_sums(self, state, batch, *, key, axis_name):
        pred, target, baseline, _ = self.forward(state, state.params, batch, train=False)
        return image_eval_sums(pred, target, baseline, self.baseline)
