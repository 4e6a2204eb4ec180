"""Training: one loop (`loop.train_and_evaluate`) for every task (`tasks`), one
optimizer factory (`optimizer`), one TrainState (`state`), the pure steps
(`steps`), data parallelism (`parallel`), Orbax checkpoints (`checkpointing`)
and metric logging (`metrics`)."""

from s2v_jax.train.loop import data_functions, train_and_evaluate  # noqa: F401
