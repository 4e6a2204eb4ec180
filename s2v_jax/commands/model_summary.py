"""Print a config's model: per-module parameter counts, every layer's output
shape, the output shape and forward GFLOPs per generated frame (with and
without the identity encoder, which inference runs once per video)."""

import json


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="ml_collections config file, e.g. configs/default.py")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("overrides", nargs="*", metavar="FIELD=VALUE",
                        help="config overrides, e.g. model.width=0.5 model.dtype=bfloat16")


def run(args) -> int:
    from s2v_jax.config_utils import load_config
    from s2v_jax.summary import format_summary, model_summary

    config = load_config(args.config, args.overrides)
    summary = model_summary(config)
    summary["config"] = args.config
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
