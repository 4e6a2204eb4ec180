"""Train the sync expert (a SyncNet-style two-stream net) on the registered
corpus: in-sync vs shifted audio pairs, contrastive loss. An alias of
`python run_train.py --config configs/syncnet.py --workdir W`: the same entry
(`s2v_jax.train.entry`: the same flag parser, so `train.num_steps=500` here is
`--config.train.num_steps=500` there), for configs of the 'sync' task.
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


def run(args) -> int:
    from s2v_jax.train import entry

    argv = ["s2v train-sync", "--config", args.config, "--workdir", args.workdir] + entry.override_flags(args.overrides)
    summary = entry.run(argv, expect_task="sync")
    print(json.dumps({"workdir": args.workdir, **summary}))
    return 0
