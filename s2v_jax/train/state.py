"""The TrainState of every task, created from a config or shaped for a restore."""

from typing import Any

import flax
import jax
import ml_collections
from flax.training import train_state

from s2v_jax.train.optimizer import create_learning_rate_fn, create_optimizer

# The one-off init is mostly random-number generation, whose LLVM optimisation
# costs more time on CPU than it saves (default config: 27 s -> 8 s compile, +4 s run).
CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


class TrainState(train_state.TrainState):
    """Flax TrainState plus BatchNorm running statistics (`{}` for models without BatchNorm)."""

    batch_stats: Any = flax.core.FrozenDict()


def state_from_variables(config: ml_collections.ConfigDict, model, variables) -> TrainState:
    """A fresh TrainState (step 0, the config's optimizer) around initialised variables."""
    tx = create_optimizer(config, create_learning_rate_fn(config))
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                             batch_stats=variables.get("batch_stats", {}))


def create_train_state(config: ml_collections.ConfigDict, model, rng, task) -> TrainState:
    """Initialises parameters (float32) and BatchNorm statistics of `task`'s model (`tasks.get_task(config)`)."""
    options = CPU_INIT_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    variables = jax.jit(lambda r: task.init_variables(config, model, r), compiler_options=options)(rng)
    return state_from_variables(config, model, variables)


def abstract_variables(config: ml_collections.ConfigDict, model, task):
    """The model's variables as `jax.ShapeDtypeStruct` leaves (nothing is computed)."""
    return jax.eval_shape(lambda r: task.init_variables(config, model, r), jax.random.PRNGKey(0))


def abstract_train_state(config: ml_collections.ConfigDict, model, task) -> TrainState:
    """The TrainState's structure with `jax.ShapeDtypeStruct` leaves (a restore target)."""
    return jax.eval_shape(lambda v: state_from_variables(config, model, v), abstract_variables(config, model, task))
