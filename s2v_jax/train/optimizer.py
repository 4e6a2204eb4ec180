"""The one optimizer factory every task trains with, and its learning-rate schedule.

    lr_fn = create_learning_rate_fn(config)
    tx = create_optimizer(config, lr_fn)

`train.optimizer`:
- 'sgd': SGD with momentum (`train.momentum`, `train.nesterov`), the paper's;
- 'adam': Adam (not the paper; its per-parameter steps start an
  identity-residual model, whose output conv is zero at first, far faster on
  small CPU runs: see configs/quickstart.py);
- 'adamw': Adam with decoupled weight decay (Loshchilov & Hutter).
`train.weight_decay` (conv/dense kernels only, never biases or BatchNorm) is
L2 added to the gradient for 'sgd' and 'adam' (MatConvNet's weight decay,
which the paper used) and decoupled for 'adamw'.
"""

import jax
import ml_collections
import optax

from s2v_jax.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")


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
    raise ConfigError(f"train.schedule must be one of {SCHEDULES}, not {t.schedule!r}")


def kernel_mask(params):
    """True for conv and dense kernels: weight decay skips biases and BatchNorm scale/shift."""
    return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def create_optimizer(config: ml_collections.ConfigDict, lr_fn: optax.Schedule) -> optax.GradientTransformation:
    """`train.optimizer` with `train.weight_decay` as the module docstring says, as one optax chain."""
    t = config.train
    name, wd = t.optimizer, float(t.weight_decay)
    if name not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer must be one of {OPTIMIZERS} ('sgd' with momentum is the paper's), "
                          f"not {name!r}")
    if wd < 0:
        raise ConfigError(f"train.weight_decay must be >= 0, not {wd}")
    parts = []
    if wd > 0 and name != "adamw":
        parts.append(optax.add_decayed_weights(wd, mask=kernel_mask))
    if name == "adam":
        parts.append(optax.adam(lr_fn))
    elif name == "adamw":
        parts.append(optax.adamw(lr_fn, weight_decay=wd, mask=kernel_mask))
    else:
        parts.append(optax.sgd(lr_fn, momentum=float(t.momentum) or None,
                               nesterov=bool(t.nesterov)))
    return optax.chain(*parts)
