"""Pure train and eval steps, the TrainState, and the optimizer a config describes.

Everything here is jit/pmap-able: state in, state out, settings bound with
`functools.partial` (see `make_train_step`, `make_eval_step`). Batches arrive
as the input pipeline yields them (`'mfcc'` float32 `[b, 12, 35, 1]`,
`'identity'` uint8 `[b, 112, 112, 3k]`, `'target'` uint8 `[b, 112, 112, 3]`)
and are converted to float in [0, 1] on device, so host-to-device copies stay
uint8.

Two tasks, chosen by `config.model.name`:
- `speech2vid`: generator(mfcc, identity) vs target, L1. If the model's output
  side (109 for the v201 bilinear decoder) differs from the target's (112),
  the target is resized on device to the output side (bilinear, antialiased:
  the 109x109 frame covers the same registered face crop). The static
  baseline (the first still's RGB, resized the same way) is scored beside it.
- `deblur`: the target crops are blurred on device with a Gaussian of random
  sigma in `config.train.blur_sigma`; the net predicts the sharp crop, L1. Its
  baseline is the blurred input itself.
"""

import functools
import math
from typing import Any, Callable, Dict, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from s2v_jax import metrics as metrics_lib
from s2v_jax.errors import ConfigError
from s2v_jax.models import input_shapes

Batch = Dict[str, jnp.ndarray]
DEFAULT_BLUR_SIGMA = (0.5, 2.5)
_EVAL_STREAM = 1 << 30  # fold_in value of the eval blur stream; train folds in the step (< 2^30)


class TrainState(train_state.TrainState):
    """Flax TrainState plus BatchNorm running statistics (`{}` for the deblurring net)."""

    batch_stats: Any = flax.core.FrozenDict()


# ---------------------------------------------------------------- optimizer

def create_learning_rate_fn(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Linear warm-up from 0 over `train.warmup_steps`, then 'constant' or 'cosine' (to 0 at num_steps)."""
    t = config.train
    lr, warmup = float(t.learning_rate), int(t.warmup_steps)
    if t.schedule == "constant":
        if warmup <= 0:
            return optax.constant_schedule(lr)
        return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)],
                                    [warmup])
    if t.schedule == "cosine":
        decay_steps = max(int(t.num_steps), warmup + 1)
        return optax.warmup_cosine_decay_schedule(0.0 if warmup > 0 else lr, lr, warmup, decay_steps, 0.0)
    raise ConfigError(f"train.schedule must be 'constant' or 'cosine', not {t.schedule!r}")


def _kernel_mask(params):
    """True for conv kernels: weight decay skips biases and BatchNorm scale/shift."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


OPTIMIZERS = ("sgd", "adam")


def create_optimizer(config: ml_collections.ConfigDict, lr_fn: optax.Schedule) -> optax.GradientTransformation:
    """L2 weight decay added to the gradient (kernels only), then the optimizer.

    `train.optimizer`: 'sgd' (the paper: SGD with (Nesterov) momentum) or
    'adam' (not the paper; Adam's per-parameter step sizes start an
    identity-residual model, whose output conv is zero at first, far faster
    on small CPU runs: see configs/quickstart.py).
    """
    t = config.train
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer must be one of {OPTIMIZERS} ('sgd' with momentum is the paper's), "
                          f"not {t.optimizer!r}")
    parts = []
    if float(t.weight_decay) > 0:
        parts.append(optax.add_decayed_weights(float(t.weight_decay), mask=_kernel_mask))
    if t.optimizer == "adam":
        parts.append(optax.adam(lr_fn))
    else:
        parts.append(optax.sgd(lr_fn, momentum=float(t.momentum) or None, nesterov=bool(t.nesterov)))
    return optax.chain(*parts)


def task_of(config: ml_collections.ConfigDict) -> str:
    return "deblur" if config.model.name == "deblur" else "speech2vid"


def dummy_inputs(config: ml_collections.ConfigDict, batch_size: int = 1):
    """Zero inputs of the config's model: `(mfcc, identity)` or `(image,)`."""
    return tuple(jnp.zeros((batch_size,) + s, jnp.float32) for s in input_shapes(config).values())


# The one-off init is mostly random-number generation, whose LLVM optimisation
# costs more time on CPU than it saves (default config: 27 s -> 8 s compile, +4 s run).
_CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _init_fn(config: ml_collections.ConfigDict, model):
    return model.init if task_of(config) == "deblur" else functools.partial(model.init, train=False)


def _state_from_variables(config: ml_collections.ConfigDict, model, variables) -> TrainState:
    tx = create_optimizer(config, create_learning_rate_fn(config))
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                             batch_stats=variables.get("batch_stats", {}))


def create_train_state(config: ml_collections.ConfigDict, model, rng) -> TrainState:
    """Initialises parameters (float32) and BatchNorm statistics; the optimizer comes from the config."""
    options = _CPU_INIT_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    variables = jax.jit(_init_fn(config, model), compiler_options=options)(rng, *dummy_inputs(config))
    return _state_from_variables(config, model, variables)


def abstract_train_state(config: ml_collections.ConfigDict, model) -> TrainState:
    """The TrainState's structure with `jax.ShapeDtypeStruct` leaves (a restore target; nothing is computed)."""
    def make(rng):
        return _state_from_variables(config, model, _init_fn(config, model)(rng, *dummy_inputs(config)))
    return jax.eval_shape(make, jax.random.PRNGKey(0))


# ---------------------------------------------------------------- on-device data preparation

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


# ---------------------------------------------------------------- forward passes

def _forward(state: TrainState, params, batch: Batch, *, task: str, train: bool, key,
             blur_sigma, axis_name: Optional[str]):
    """Runs the model on a batch; returns (prediction, target, baseline, new BatchNorm stats).

    Prediction, target and baseline are float32 `[b, S, S, 3]` at the model's output side S.
    """
    target = to_float_image(batch["target"])
    if task == "deblur":
        ids = example_ids(target.shape[0], axis_name)
        sigmas = blur_sigmas(key, ids, blur_sigma)
        blurred = gaussian_blur(target, sigmas, max(blur_sigma))
        pred = state.apply_fn({"params": params}, blurred).astype(jnp.float32)
        return pred, target, blurred, state.batch_stats
    variables = {"params": params, "batch_stats": state.batch_stats}
    mfcc = batch["mfcc"].astype(jnp.float32)
    identity = to_float_image(batch["identity"])
    if train:
        pred, updates = state.apply_fn(variables, mfcc, identity, train=True, mutable=["batch_stats"])
        new_stats = updates["batch_stats"]
    else:
        pred, new_stats = state.apply_fn(variables, mfcc, identity, train=False), state.batch_stats
    pred = pred.astype(jnp.float32)
    size = pred.shape[1:3]
    return pred, resize_to(target, size), resize_to(identity[..., :3], size), new_stats


def l1_loss(pred, target):
    """Mean absolute error over all pixels and channels of the batch (a scalar)."""
    return jnp.mean(jnp.abs(pred - target))


def mse_loss(pred, target):
    """Mean squared error over all pixels and channels of the batch (a scalar)."""
    return jnp.mean(jnp.square(pred - target))


def train_step(state: TrainState, batch: Batch, *, task: str = "speech2vid",
               loss_fn: Callable = l1_loss, lr_fn: Optional[optax.Schedule] = None, seed: int = 0,
               blur_sigma=DEFAULT_BLUR_SIGMA, axis_name: Optional[str] = None, mse_warmup_steps: int = 0):
    """One optimizer step on a batch; returns (new state, {'loss', 'grad_norm'[, 'learning_rate']}).

    While `state.step < mse_warmup_steps` the loss is `mse_loss` instead of
    `loss_fn` (L1). Why: an identity-residual model starts exactly at the
    still, and there L1's kink pins it (most pixels already match, and any
    change costs on all of them at once), whereas squared error is flat
    near zero error and lets the mouth pathway form; L1 then takes over.

    Under pmap (`axis_name` set) gradients and the loss are averaged over the
    axis, and the model's BatchNorm (built with the same `axis_name`) uses the
    statistics of the global batch, so the update equals one device's on the
    whole batch.
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), state.step)

    def loss_and_stats(params):
        pred, target, _, new_stats = _forward(state, params, batch, task=task, train=True, key=key,
                                              blur_sigma=blur_sigma, axis_name=axis_name)
        loss = loss_fn(pred, target)
        if mse_warmup_steps > 0:
            loss = jnp.where(state.step < mse_warmup_steps, mse_loss(pred, target), loss)
        return loss, new_stats

    (loss, new_stats), grads = jax.value_and_grad(loss_and_stats, has_aux=True)(state.params)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        loss = jax.lax.pmean(loss, axis_name)
    grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
    metrics = {"loss": loss, "grad_norm": grad_norm}
    if lr_fn is not None:
        metrics["learning_rate"] = lr_fn(state.step)
    return state.apply_gradients(grads=grads, batch_stats=new_stats), metrics


def baseline_name(task: str) -> str:
    """Prefix of the baseline's metrics: the repeated still ('static') or the blurred input."""
    return "blurred" if task == "deblur" else "static"


def eval_step(state: TrainState, batch: Batch, *, task: str = "speech2vid", seed: int = 0,
              blur_sigma=DEFAULT_BLUR_SIGMA, axis_name: Optional[str] = None) -> Dict[str, jnp.ndarray]:
    """Sums over the batch of L1, PSNR, SSIM for the model and its baseline, plus 'count'.

    Keys: 'l1', 'psnr', 'ssim', '<baseline>_l1', ..., 'l1_to_<baseline>' (how far
    the output is from the baseline itself: near 0 means the model just copies
    the still, whatever its L1 to the target) and 'count' (examples); divide by
    the summed count after the last batch. Summed over the pmap axis. The
    deblur eval blur is a fixed function of the example's position.
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_STREAM)
    pred, target, baseline, _ = _forward(state, state.params, batch, task=task, train=False, key=key,
                                         blur_sigma=blur_sigma, axis_name=axis_name)
    out = {k: v.sum() for k, v in metrics_lib.image_metrics(pred, target).items()}
    prefix = baseline_name(task)
    out.update({f"{prefix}_{k}": v.sum() for k, v in metrics_lib.image_metrics(baseline, target).items()})
    out[f"l1_to_{prefix}"] = jnp.abs(pred - baseline).mean(axis=(1, 2, 3)).sum()
    out["count"] = jnp.asarray(pred.shape[0], jnp.float32)
    if axis_name is not None:
        out = jax.lax.psum(out, axis_name)
    return out


def _blur_sigma(config: ml_collections.ConfigDict):
    sigma = tuple(config.train.get("blur_sigma", DEFAULT_BLUR_SIGMA))
    if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
        raise ConfigError(f"train.blur_sigma must be (low, high) with 0 < low <= high, not {sigma!r}")
    return sigma


def make_train_step(config: ml_collections.ConfigDict, *, axis_name: Optional[str] = None) -> Callable:
    """`train_step` with the config's task, schedule, seed, blur range and MSE warm-up bound."""
    warmup = int(config.train.get("mse_warmup_steps", 0))
    if warmup < 0:
        raise ConfigError(f"train.mse_warmup_steps must be >= 0 (0 = the paper's L1 throughout), not {warmup}")
    return functools.partial(train_step, task=task_of(config), lr_fn=create_learning_rate_fn(config),
                             seed=int(config.train.seed), blur_sigma=_blur_sigma(config), axis_name=axis_name,
                             mse_warmup_steps=warmup)


def make_eval_step(config: ml_collections.ConfigDict, *, axis_name: Optional[str] = None) -> Callable:
    """`eval_step` with the config's task, seed and blur range bound."""
    return functools.partial(eval_step, task=task_of(config), seed=int(config.train.seed),
                             blur_sigma=_blur_sigma(config), axis_name=axis_name)
