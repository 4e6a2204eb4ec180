"""The whole journey on a fresh CPU machine with no data: generate a synthetic
talking-face corpus, build its TFDS dataset, train a small model, generate a
demo video with audio, and write the evaluation report (model vs static
baseline vs real video). Resumable: run it again to continue."""


def add_arguments(parser):
    parser.add_argument("--workdir", default="workdirs/quickstart", help="where everything is written")
    parser.add_argument("--config", default=None, help="training config (default: configs/quickstart.py)")
    parser.add_argument("--max-eval-clips", type=int, default=5, help="validation clips in the report")
    parser.add_argument("overrides", nargs="*", metavar="FIELD=VALUE", help="config overrides, e.g. train.num_steps=50")


def run(args) -> int:
    from s2v_jax.quickstart import QUICKSTART_CONFIG, run_quickstart

    run_quickstart(args.workdir, args.config or QUICKSTART_CONFIG, args.overrides, args.max_eval_clips)
    return 0
