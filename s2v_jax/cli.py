"""The `s2v` command line: one subcommand per task.

Each subcommand lives in `s2v_jax/commands/<name>.py` and exposes
`add_arguments(parser)` and `run(args) -> int`. Modules import their heavy
dependencies (jax, mediapipe, tfds) inside `run`, so `s2v --help` stays fast.
A user-facing `S2VError` is printed on one line (no traceback) with exit code 2.
"""

import argparse
import importlib
import os
import signal
import sys
import threading

from s2v_jax import native_logs
from s2v_jax.errors import S2VError

# (subcommand, module under s2v_jax.commands, one-line help). Later work adds rows.
COMMANDS = [
    ("quickstart", "quickstart", "the whole journey on synthetic data: corpus, dataset, training, demo video, report"),
    ("model-summary", "model_summary", "parameter counts, layer shapes and GFLOPs of a config's model"),
    ("align", "align", "register the face of a still photo onto the canonical 112x112 face"),
    ("inspect", "inspect", "overlay face tracks, landmarks and registered crops on a video, for a person to check"),
    ("synth", "synth", "generate a procedural talking-face corpus (mp4 + ground truth), no downloads"),
    ("train-sync", "train_sync", "train the SyncNet-style sync expert that scores lip sync (LSE-D/LSE-C)"),
    ("sync", "sync", "score the lip sync of a video: AV offset (frames), LSE-D and LSE-C, by the sync expert"),
    ("export", "export", "export a checkpoint as a small float16 model (the format the package ships)"),
    ("evaluate", "evaluate", "score a checkpoint on held-out clips beside the static baseline and real video"),
    ("build-dataset", "build_dataset", "build a TFDS dataset of registered face tracks and report what was skipped"),
    ("generate", "generate", "talking-face video from one or five face photos and a speech clip"),
    ("redub", "redub", "re-dub a video with new speech (lower face generated and blended in)"),
    ("finetune", "finetune", "fine-tune a generator on one speaker's video (last 10% held out, best kept, resumable)"),
    ("stream", "stream", "streaming demo: feed speech in small chunks and write frames as they come out"),
    ("app", "app", "local web page (127.0.0.1): photo + speech -> video, re-dub, with the judge's scores"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2v", description="Speech2Vid in JAX/Flax: talking faces from stills and speech."
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show MediaPipe/TFLite native logging (hidden by default; also S2V_VERBOSE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(f"s2v_jax.commands.{module_name}")
        # argparse %-formats help strings ("10%" of a help broke `s2v --help`): escape them here.
        p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=(module.__doc__ or help_text).strip())
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, kill, a container stop), raised where the program is, so that the clean-up
    that Ctrl-C runs (partial outputs, temporary audio, open writers) runs for it too."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _exit_now(code: int) -> None:
    """Exit at once, after the message is out: nothing of this run is left to clean up (the with-blocks
    have unwound), and the normal shutdown would only print other threads' tracebacks."""
    sys.stdout.flush()
    sys.stderr.flush()
    native_logs.uninstall()
    os._exit(code)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ["S2V_VERBOSE"] = "1"
    elif sys.stderr is sys.__stderr__:  # a real terminal or pipe, not a test's capture
        native_logs.install()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(args._run(args) or 0)
    except S2VError as e:
        print(f"s2v {args.command}: error: {e}", file=sys.stderr)
        if getattr(e, "exit_at_once", False):
            _exit_now(2)  # e.g. a failed restore, whose callbacks would print pages at shutdown
        return 2
    except Terminated:
        print(f"s2v {args.command}: terminated (SIGTERM); partial outputs removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"s2v {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
