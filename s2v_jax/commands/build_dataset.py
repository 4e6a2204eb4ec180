"""Build a TFDS dataset (registered face tracks or the synthetic corpus) and
print a JSON report: examples, frames and hours per split, and every skipped
input with its reason.

    s2v build-dataset registered_faces --config lrs2 --manual-dir videos/ --data-dir data/tfds
    s2v build-dataset synthetic_talking_faces/small --data-dir data/tfds

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
                        help="builder config: lrs2, voxceleb2, lrw, folder (registered_faces); tiny, small, medium (synthetic)")
    parser.add_argument("--data-dir", required=True, help="TFDS data directory to build into")
    parser.add_argument("--manual-dir", default=None, help="folder of source videos (registered_faces)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild even if the dataset is already there")
    parser.add_argument("--beam", action="store_true", help="build with Apache Beam (pip install -e '.[beam]')")
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
    start = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints progress to stdout; keep stdout JSON only
        builder = tfds_builders.build(name, args.data_dir, manual_dir=args.manual_dir, use_beam=args.beam,
                                      beam_options=shlex.split(args.beam_options), overwrite=args.overwrite)
    print(json.dumps(tfds_builders.report(builder, time.time() - start), indent=1))
    return 0


def raise_missing_config(name: str):
    from s2v_jax.errors import DataError

    hint = "lrs2, voxceleb2, lrw or folder" if name == "registered_faces" else "tiny, small or medium"
    raise DataError(f"{name} needs a config: give {name}/CONFIG or --config ({hint})")
