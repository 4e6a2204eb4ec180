"""Training tasks, picked by `config.task` (`get_task`).

| task | model | inputs | loss | baseline |
|---|---|---|---|---|
| `generator` | Speech2Vid | MFCC window + still(s) | L1 (optional MSE warm-up) | the still ('static') |
| `deblur` | DeblurNet | a crop blurred on device | L1 | the blurred input |
| `sync` | SyncNet expert | 5 lower-face frames + 0.2 s MFCC | contrastive | none (chance 0.5 accuracy) |

Configs written before `config.task` existed (and checkpoints holding them)
name their task through `model.name` ('speech2vid', 'deblur', 'syncnet').
"""

import ml_collections

from s2v_jax.errors import ConfigError
from s2v_jax.train.tasks.base import Task
from s2v_jax.train.tasks.deblur import DeblurTask
from s2v_jax.train.tasks.generator import GeneratorTask
from s2v_jax.train.tasks.sync import SyncTask

TASKS = {"generator": GeneratorTask, "deblur": DeblurTask, "sync": SyncTask}
_BY_MODEL = {"speech2vid": "generator", "deblur": "deblur", "syncnet": "sync"}
_MODEL_OF = {task: model for model, task in _BY_MODEL.items()}


def task_name(config: ml_collections.ConfigDict) -> str:
    """`config.task`, or the task `model.name` implies (older configs); the two must agree."""
    implied = _BY_MODEL.get(config.model.name)
    name = (config.task if "task" in config else None) or implied  # configs from before config.task: the model's
    if name not in TASKS:
        raise ConfigError(f"config.task must be one of {sorted(TASKS)}, not {name!r} "
                          f"(model.name {config.model.get('name')!r})")
    if implied is not None and implied != name:
        raise ConfigError(f"config.task {name!r} trains a {_MODEL_OF[name]!r} model, but model.name is "
                          f"{config.model.get('name')!r}; set model.name={_MODEL_OF[name]!r} (or config.task={implied!r})")
    return name


def get_task(config: ml_collections.ConfigDict) -> Task:
    """The task object a config describes, its settings taken from the config."""
    return TASKS[task_name(config)].from_config(config)


__all__ = ["Task", "TASKS", "GeneratorTask", "DeblurTask", "SyncTask", "get_task", "task_name"]
