"""The one way a training starts: `run_train.py` and `s2v train-sync` parse the same flags with
the same parser (ml_collections' config_flags: `--config FILE --workdir W --config.FIELD=VALUE`),
check the config against its schema, start the distributed runtime, set the logs, train, and
end every process together; `s2v finetune` trains through the same `train` with its own loaders.

    python run_train.py --config configs/tiny.py --workdir W --config.train.num_steps=100
    s2v train-sync --config configs/syncnet.py --workdir W train.num_steps=100   # the same override

Errors the user can fix are S2VErrors (a missing or broken config file, an unknown field, a value
of the wrong type): one line, exit status 2.
"""

import logging as std_logging
import sys
from typing import Any, Dict, Optional, Sequence

from absl import flags, logging
from ml_collections import config_flags

from s2v_jax.errors import ConfigError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the config (resumed if present).")


def own_info_only(record) -> bool:
    """Log filter: warnings from everyone, INFO lines only from s2v_jax (Orbax, TFDS and grain chatter dropped)."""
    return record.levelno >= std_logging.WARNING or "s2v_jax" in record.pathname


def set_logging() -> None:
    """INFO from s2v_jax, warnings from the libraries (`own_info_only`), once per process."""
    if FLAGS.is_parsed():  # run_train / train-sync: what absl's app.run does (absl's format, to stderr)
        logging.use_absl_handler()
    logging.set_verbosity(logging.INFO)
    std_logging.getLogger("absl").setLevel(std_logging.INFO)
    absl_logger = logging.get_absl_logger()
    if own_info_only not in absl_logger.filters:
        absl_logger.addFilter(own_info_only)


def parse(argv: Sequence[str]):
    """absl flag parsing of [prog, --config F, --workdir W, --config.FIELD=VALUE ...] -> the config,
    or a ConfigError naming what was wrong (a bad flag, an unknown field, a missing or broken file)."""
    for name in [n for n in FLAGS if n.startswith("config.")]:  # a second parse in one process (tests, the
        delattr(FLAGS, name)                                      # app): config_flags defines them anew
    saved, sys.argv = sys.argv, list(argv)  # config_flags finds the --config.FIELD overrides in sys.argv
    try:
        rest = FLAGS(list(argv))
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:  # config_flags raises the latter
        unknown = _unknown_field(argv)
        if unknown:
            raise ConfigError(f"unknown config field {unknown!r} in --config.{unknown}=...: the config does not "
                              "declare it (the schema: configs/default.py, configs/syncnet.py)") from e
        raise ConfigError(f"bad flag: {' '.join(str(e).split())} (see --helpfull)") from e
    finally:
        sys.argv = saved
    if len(rest) > 1:
        raise ConfigError(f"unexpected arguments: {' '.join(rest[1:])}")
    if FLAGS.config is None or FLAGS.workdir is None:
        raise ConfigError("--config and --workdir are required")
    try:
        config = FLAGS.config
        _ = config.train  # config_flags reports a missing or broken file only on first use
    except (OSError, AttributeError) as e:
        raise ConfigError(" ".join(str(e).split())) from e
    return config


def _unknown_field(argv: Sequence[str]) -> Optional[str]:
    """The first `--config.FIELD=` override naming a field the config file does not declare, or None."""
    from s2v_jax.config_utils import load_config

    argv = list(argv)
    path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if path is None and "--config" in argv[:-1]:
        path = argv[argv.index("--config") + 1]
    try:
        config = load_config(path)
    except Exception:  # the file itself is what is wrong: reported as such
        return None
    for a in argv:
        if not a.startswith("--config."):
            continue
        field, node = a[len("--config."):].split("=", 1)[0], config
        for part in field.split("."):
            if not hasattr(node, "keys") or part not in node:
                return field
            node = node[part]
    return None


def train(config, workdir: str, expect_task: Optional[str] = None, **loop_args) -> Dict[str, Any]:
    """Trains `config` in `workdir` (resumed if present): schema check, distributed start-up (before
    anything touches a device), process 0 logs and the others only warn, every process ends together.
    `loop_args` go to `train_and_evaluate` (`s2v finetune`'s loaders of one speaker's tracks and its
    base model's weights)."""
    from s2v_jax.config_utils import require_fields

    require_fields(config)  # every field the code reads is declared in the schema
    from s2v_jax.train import parallel

    distributed = parallel.initialize_distributed()
    import jax

    from s2v_jax.train import train_and_evaluate
    from s2v_jax.train.tasks import task_name

    if expect_task is not None and task_name(config) != expect_task:
        raise ConfigError(f"the config describes the {task_name(config)!r} task, not {expect_task!r} "
                          "(run_train.py trains any task)")
    logging.info("JAX %s: process %d of %d, %d local / %d global devices (%s)", jax.__version__,
                 jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
                 jax.devices()[0].platform)
    if jax.process_index() != 0:  # logs and metrics come from process 0; the others speak up only to warn
        logging.set_verbosity(logging.WARNING)
    summary = train_and_evaluate(config, workdir, **loop_args)
    if distributed:  # every process done before any leaves: the coordinator (process 0) is needed to the end
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("training done")
        jax.distributed.shutdown()
    return summary


def run(argv: Sequence[str], expect_task: Optional[str] = None) -> Dict[str, Any]:
    """parse + set_logging + train: what run_train.py and `s2v train-sync` run."""
    config = parse(argv)
    set_logging()
    summary = train(config, FLAGS.workdir, expect_task)
    logging.info("done: %s", summary)
    return summary


def override_flags(overrides: Sequence[str]) -> list:
    """`FIELD=VALUE` (or `config.FIELD=VALUE`, `--config.FIELD=VALUE`) -> `--config.FIELD=VALUE` flags."""
    out = []
    for item in overrides:
        item = item[2:] if item.startswith("--") else item
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form field=value")
        out.append("--" + (item if item.startswith("config.") else "config." + item))
    return out
