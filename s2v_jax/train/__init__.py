"""Training: one loop (`loop.train_and_evaluate`) for every task (`tasks`), one
optimizer factory (`optimizer`), one TrainState (`state`), the pure steps
(`steps`), data parallelism (`parallel`), Orbax checkpoints (`checkpointing`)
and metric logging (`metrics`)."""

from s2v_jax.train.loop import Training, build_training, data_functions, initial_state, train_and_evaluate  # noqa: F401
