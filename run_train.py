"""Trains Speech2Vid (or the deblurring net) as a config describes.

    python run_train.py --config configs/tiny.py --workdir workdirs/tiny
    python run_train.py --config configs/default.py --config.train.num_steps=1000 --workdir W

Re-running with the same --workdir resumes from its latest checkpoint. Errors
the user can fix are printed on one line (exit status 2).
"""

import logging as std_logging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from s2v_jax.errors import S2VError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the config (resumed if present).")
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_orbax(record) -> bool:
    """Keeps Orbax's warnings but drops its INFO chatter (several lines per save)."""
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.get_absl_logger().addFilter(_quiet_orbax)
    try:
        config = FLAGS.config
        config.get("train")  # config_flags reports a missing or broken file only on first use
    except (OSError, AttributeError) as e:
        print(f"run_train: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    from s2v_jax.config_utils import require_fields

    try:  # every field the code reads is declared in the schema; none is read with a hidden default
        require_fields(config)
    except S2VError as e:
        print(f"run_train: error: {e}", file=sys.stderr)
        sys.exit(2)
    try:
        from s2v_jax.train import parallel
        distributed = parallel.initialize_distributed()  # before anything touches a device

        import jax

        from s2v_jax.train import train_and_evaluate

        logging.info("JAX %s: process %d of %d, %d local / %d global devices (%s)", jax.__version__,
                     jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
                     jax.devices()[0].platform)
        if jax.process_index() != 0:  # logs and metrics come from process 0; the others speak up only to warn
            logging.set_verbosity(logging.WARNING)
        summary = train_and_evaluate(config, FLAGS.workdir)
        if distributed:  # every process done before any leaves: the coordinator (process 0) is needed to the end
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("run_train done")
            jax.distributed.shutdown()
    except S2VError as e:
        print(f"run_train: error: {e}", file=sys.stderr)
        sys.exit(2)
    logging.info("done: %s", summary)


def parse_flags(argv):
    """absl flag parsing; a bad flag or `--config.x=...` override is reported on one line (exit 2)."""
    try:
        return FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:  # config_flags raises the latter
        print(f"run_train: error: bad flag: {e} (see --helpfull)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
