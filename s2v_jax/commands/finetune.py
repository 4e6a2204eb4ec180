"""Fine-tune a generator on one speaker's video: track and register the face,
hold out the last 10% of the video, train from the base model (the one
shipped in the package unless --checkpoint is given) with a progress bar and
checkpoints, keep the best on the held-out part (the base model is validated
first and competes: if no step beats it there, the base itself is kept, and
the printed best_step is 0). Run it again with the same
--workdir to resume; the face tracks are cached there. The work directory is
then a checkpoint for `s2v generate`, `redub`, `evaluate` and `stream`.

    s2v finetune --video speaker.mp4 --workdir workdirs/me
    s2v redub --checkpoint workdirs/me --video speaker.mp4 --audio new_speech.wav --out dubbed.mp4
"""

import json


def add_arguments(parser):
    parser.add_argument("--video", action="append", required=True,
                        help="a video of the speaker with sound (repeat for several)")
    parser.add_argument("--workdir", required=True, help="work directory (tracks, checkpoints; resumed if present)")
    parser.add_argument("--checkpoint", default=None,
                        help="base generator (work directory, step directory or export); default: the shipped one")
    parser.add_argument("--steps", type=int, default=600, help="training steps (default 600: ~7 min on 2 CPU cores)")
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per step (default: the base model's)")
    parser.add_argument("--eval-every", type=int, default=100,
                        help="steps between held-out validations and checkpoints (default 100)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args) -> int:
    from s2v_jax.finetune import finetune
    from s2v_jax.train.entry import set_logging

    set_logging()
    summary = finetune(args.video, args.workdir, checkpoint=args.checkpoint, steps=args.steps, learning_rate=args.lr,
                       batch_size=args.batch_size, eval_every=args.eval_every, progress=not args.no_progress)
    print(json.dumps({k: summary[k] for k in ("workdir", "base", "step", "best_step", "best_eval", "data")}))
    return 0
