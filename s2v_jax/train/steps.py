"""The pure train and eval steps of every task (jit/pmap-able: state in, state out).

    p_train = dp.compile_train_step(make_train_step(config, axis_name=dp.axis_name))
    state, metrics = p_train(state, batch)

The task (`s2v_jax.train.tasks`) supplies the loss and the validation sums;
these steps add what all tasks share: per-step randomness from
`fold_in(seed, step)`, gradients and metrics averaged over the pmap axis (the
model's BatchNorm, built with the same `axis_name`, uses the statistics of
the global batch, so the update equals one device's on the whole batch), the
gradient norm and the learning rate, and eval sums summed over the axis.
"""

import functools
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from s2v_jax.train.optimizer import create_learning_rate_fn
from s2v_jax.train.state import TrainState
from s2v_jax.train.tasks import get_task
from s2v_jax.train.tasks.base import Batch, Task
from s2v_jax.train.tasks.generator import GeneratorTask

# optax >= 0.2.5 has optax.tree.norm (global_norm warns on every step there); older releases only the latter
_global_norm = optax.tree.norm if hasattr(getattr(optax, "tree", None), "norm") else optax.global_norm

EVAL_STREAM = 1 << 30  # fold_in value of the eval randomness; train folds in the step (< 2^30)


def train_step(state: TrainState, batch: Batch, *, task: Task = GeneratorTask(), lr_fn: Optional[optax.Schedule] = None,
               seed: int = 0, axis_name: Optional[str] = None):
    """One optimizer step on a batch; returns (new state, {'loss', <task metrics>, 'grad_norm'[, 'learning_rate']})."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), state.step)

    def loss_fn(params):
        return task.loss(state, params, batch, key=key, axis_name=axis_name)

    (loss, (metrics, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, **metrics}
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.pmean(metrics, axis_name)
    metrics["grad_norm"] = _global_norm(grads)
    if lr_fn is not None:
        metrics["learning_rate"] = lr_fn(state.step)
    return state.apply_gradients(grads=grads, batch_stats=new_stats), metrics


def eval_step(state: TrainState, batch: Batch, *, task: Task = GeneratorTask(), seed: int = 0,
              axis_name: Optional[str] = None) -> Dict[str, jnp.ndarray]:
    """The task's validation sums of a batch plus 'count', summed over the pmap axis; divide by the
    summed count after the last batch (`loop.evaluate`)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_STREAM)
    out = task.eval_sums(state, batch, key=key, axis_name=axis_name)
    if axis_name is not None:
        out = jax.lax.psum(out, axis_name)
    return out


def make_train_step(config: ml_collections.ConfigDict, task: Optional[Task] = None, *,
                    axis_name: Optional[str] = None) -> Callable:
    """`train_step` with the config's task, schedule and seed bound."""
    return functools.partial(train_step, task=task or get_task(config), lr_fn=create_learning_rate_fn(config),
                             seed=int(config.train.seed), axis_name=axis_name)


def make_eval_step(config: ml_collections.ConfigDict, task: Optional[Task] = None, *,
                   axis_name: Optional[str] = None) -> Callable:
    """`eval_step` with the config's task and seed bound."""
    return functools.partial(eval_step, task=task or get_task(config), seed=int(config.train.seed),
                             axis_name=axis_name)
