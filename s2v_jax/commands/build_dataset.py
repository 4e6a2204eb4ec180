"""Build a TFDS dataset (registered face tracks or the synthetic corpus) and
print a JSON report: examples, frames and hours per split, and every skipped
input with its reason.

    s2v build-dataset registered_faces --config lrs2 --manual-dir videos/ --data-dir data/tfds
    s2v build-dataset synthetic_talking_faces/small --data-dir data/tfds
    s2v build-dataset registered_faces/real --sync-correct --manual-dir M --data-dir data/tfds  # real_synced

--sync-correct measures each track's audio-visual offset with the shipped
sync judge (or --sync-judge J) and shifts its audio to match, as the paper
prepares its data with SyncNet; the report gives the offsets per source
(tfds_builders/sync_correct.py). It reuses the plain build's registrations.

Progress goes to stderr, the report to stdout. A dataset already built in
--data-dir is reported, not rebuilt (--overwrite rebuilds it).
"""

import contextlib
import json
import logging
import shlex
import sys
import time


def add_arguments(parser):
    parser.add_argument("name", help="registered_faces or synthetic_talking_faces, optionally /CONFIG")
    parser.add_argument("--config", default=None,
                        help="builder config: lrs2, voxceleb2, lrw, folder, real, or one of those (not lrw) with _synced "
                             "(registered_faces; see --sync-correct); tiny, small, medium (synthetic)")
    parser.add_argument("--data-dir", required=True, help="TFDS data directory to build into")
    parser.add_argument("--manual-dir", default=None, help="folder of source videos (registered_faces)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild even if the dataset is already there")
    parser.add_argument("--beam", action="store_true", help="build with Apache Beam (pip install -e '.[beam]')")
    parser.add_argument("--sync-correct", action="store_true",
                        help="registered_faces: measure each track's audio-visual offset with the sync judge and "
                             "shift its audio to match (builds CONFIG_synced, e.g. registered_faces/real_synced; "
                             "offsets of +-1 frame and tracks under 2 s are left as they are)")
    parser.add_argument("--sync-judge", default=None,
                        help="with --sync-correct: the sync expert to measure with (default: the shipped judge)")
    parser.add_argument("--beam-options", default="--runner=DirectRunner",
                        help="Beam pipeline options, e.g. '--runner=DirectRunner --direct_num_workers=2 "
                             "--direct_running_mode=multi_processing'")


def run(args) -> int:
    import tfds_builders

    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(message)s")
    logging.getLogger("s2v_jax.build").setLevel(logging.INFO)  # one line per video
    name = tfds_builders.parse_name(args.name, args.config)
    if "/" not in name:
        raise_missing_config(name)
    name, judge = sync_settings(name, args)
    start = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints progress to stdout; keep stdout JSON only
        builder = tfds_builders.build(name, args.data_dir, manual_dir=args.manual_dir, use_beam=args.beam,
                                      beam_options=shlex.split(args.beam_options), overwrite=args.overwrite,
                                      sync_judge=judge)
    print(json.dumps(tfds_builders.report(builder, time.time() - start), indent=1))
    return 0


def sync_settings(name: str, args):
    """(dataset name, judge or None): --sync-correct turns registered_faces/X into X_synced and loads
    the judge; naming an X_synced config loads it too."""
    from s2v_jax.errors import DataError
    from tfds_builders.sync_correct import SUFFIX

    base, _, config = name.partition("/")
    if args.sync_judge and not args.sync_correct and not config.endswith(SUFFIX):
        raise DataError("--sync-judge is for --sync-correct builds; add --sync-correct")
    if not (args.sync_correct or config.endswith(SUFFIX)):
        return name, None
    if base != "registered_faces":
        raise DataError(f"--sync-correct is for registered_faces corpora, not {base!r}")
    if args.beam:
        raise DataError("--sync-correct builds without Beam (the judge runs in this process): leave out --beam")
    if not config.endswith(SUFFIX):
        name = f"{base}/{config}{SUFFIX}"
        logging.getLogger("s2v_jax.build").info("--sync-correct: building %s", name)
    from s2v_jax.evaluation.sync_expert import SyncExpert

    return name, SyncExpert.from_checkpoint(args.sync_judge)


def raise_missing_config(name: str):
    from s2v_jax.errors import DataError

    hint = "lrs2, voxceleb2, lrw, folder or real" if name == "registered_faces" else "tiny, small or medium"
    raise DataError(f"{name} needs a config: give {name}/CONFIG or --config ({hint})")
