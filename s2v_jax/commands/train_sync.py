"""Train the sync expert (a SyncNet-style two-stream net) on the registered
corpus: in-sync vs shifted audio pairs, contrastive loss. An alias of
`python run_train.py --config configs/syncnet.py --workdir W`: the same loop
(`s2v_jax.train.train_and_evaluate`), with the config's task set to 'sync'.
Resumes from the work directory's latest Orbax checkpoint. The expert scores
lip sync (LSE-D/LSE-C) in `s2v evaluate --sync-expert WORKDIR`.

    s2v train-sync --config configs/syncnet.py --workdir workdirs/syncnet
    s2v train-sync --config configs/syncnet.py --workdir W train.num_steps=500 model.width=0.25
"""

import json


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="ml_collections config file, e.g. configs/syncnet.py")
    parser.add_argument("--workdir", required=True, help="work directory (checkpoints, metrics; resumed if present)")
    parser.add_argument("overrides", nargs="*", metavar="FIELD=VALUE",
                        help="config overrides, e.g. train.num_steps=500 data.dataset=registered_faces/lrs2")


def _own_info_only(record) -> bool:
    """Keeps warnings from everyone but INFO lines only from s2v_jax (Orbax and TFDS chatter dropped)."""
    import logging as py_logging

    return record.levelno >= py_logging.WARNING or "s2v_jax" in record.pathname


def run(args) -> int:
    import logging as py_logging

    from absl import logging

    from s2v_jax.config_utils import load_config
    from s2v_jax.train.parallel import initialize_distributed

    config = load_config(args.config, args.overrides)
    initialize_distributed()  # before anything touches a device
    import jax

    from s2v_jax.errors import ConfigError
    from s2v_jax.train import train_and_evaluate
    from s2v_jax.train.tasks import task_name

    logging.set_verbosity(logging.INFO)
    py_logging.getLogger("absl").setLevel(py_logging.INFO)
    logging.get_absl_logger().addFilter(_own_info_only)
    logging.info("JAX %s: process %d of %d, %d local devices (%s)", jax.__version__, jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.devices()[0].platform)
    if task_name(config) != "sync":
        raise ConfigError(f"{args.config} describes the {task_name(config)!r} task; train-sync trains the sync "
                          "expert (configs/syncnet.py); use run_train.py for other tasks")
    summary = train_and_evaluate(config, args.workdir)
    print(json.dumps({"workdir": args.workdir, **summary}))
    return 0
