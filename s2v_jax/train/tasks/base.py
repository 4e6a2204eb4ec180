"""What a training task is: its model, inputs, loss, eval metrics and baseline.

The one loop (`s2v_jax.train.loop.train_and_evaluate`) and the one pair of
steps (`s2v_jax.train.steps`) run any `Task`; `config.task` picks one by name
(`s2v_jax.train.tasks.get_task`). A task is a small frozen object built from
the config (`from_config`), so binding it into a jitted step with
`functools.partial` fixes its settings at trace time.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax.numpy as jnp
import ml_collections

Batch = Dict[str, Any]
LoaderFn = Callable[..., Any]          # (config, *, process_index, process_count) -> loader
EvalBatchesFn = Callable[..., List[Batch]]  # (config, *, num_batches, process_index, process_count) -> batches


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class. Subclasses set `name`, `best_metric` and `baseline` and implement the methods."""

    name: str = dataclasses.field(default="", init=False)
    title = "a model"  # how messages name the task's model ("the generator")
    # Validation metric that picks the best checkpoint and drives early stopping (lower is better).
    best_metric: str = dataclasses.field(default="loss", init=False)
    # Prefix of the baseline's validation metrics ('static', 'blurred'), or None if the task has none.
    baseline: Optional[str] = dataclasses.field(default=None, init=False)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "Task":
        return cls()

    # ------------------------------------------------------------ model
    def build_model(self, config: ml_collections.ConfigDict, axis_name: Optional[str] = None):
        raise NotImplementedError

    def dummy_inputs(self, config: ml_collections.ConfigDict) -> Tuple[jnp.ndarray, ...]:
        """Batch-1 zero inputs of the model, for initialisation."""
        raise NotImplementedError

    def init_variables(self, config: ml_collections.ConfigDict, model, rng) -> Dict[str, Any]:
        """{'params'[, 'batch_stats']} of a freshly initialised model (traced: no side effects)."""
        return dict(model.init(rng, *self.dummy_inputs(config), train=False))

    # ------------------------------------------------------------ steps (pure, jit/pmap-able)
    def loss(self, state, params, batch: Batch, *, key, axis_name: Optional[str]):
        """(scalar loss, (metrics dict of scalars, new batch_stats)) of one training batch, on this device."""
        raise NotImplementedError

    def eval_sums(self, state, batch: Batch, *, key, axis_name: Optional[str]) -> Dict[str, jnp.ndarray]:
        """Sums over the batch of every validation metric, plus 'count' (examples), on this device."""
        raise NotImplementedError

    # ------------------------------------------------------------ data
    def data_functions(self, config: ml_collections.ConfigDict) -> Tuple[LoaderFn, EvalBatchesFn]:
        """(train_loader_fn, eval_batches_fn) of the config's dataset (built first if needed)."""
        raise NotImplementedError

    # ------------------------------------------------------------ reporting
    def describe(self, val: Dict[str, float]) -> str:
        """One log line of validation metrics."""
        return " ".join(f"{k} {v:.4g}" for k, v in sorted(val.items()))


def apply_model(state, params, inputs: Tuple, *, train: bool, method=None):
    """(outputs, new batch_stats) of `state.apply_fn` (or of the model's `method`, e.g.
    Speech2Vid.generate_windows_with_flow); BatchNorm statistics update only when training."""
    variables = {"params": params, "batch_stats": state.batch_stats}
    kw = {} if method is None else {"method": method}
    if train:
        out, updates = state.apply_fn(variables, *inputs, train=True, mutable=["batch_stats"], **kw)
        return out, updates["batch_stats"]
    return state.apply_fn(variables, *inputs, train=False, **kw), state.batch_stats
