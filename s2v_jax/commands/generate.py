"""Generate a talking-face video from one (or five) face photos and a speech
clip: 25 fps H.264 mp4 with the speech as its sound track, as long as the
speech to within one frame. By default the generated face is pasted back into
the first photo (inverse of the registration, Poisson blending); --bare writes
the model's face crop alone (112x112; 109x109 for the v201 decoder, stored
110x110). A 5-image model given one photo repeats it five times; a 1-image
model takes exactly one photo."""

import json
import sys
import warnings


def add_arguments(parser):
    parser.add_argument("--checkpoint", default=None,
                        help="generator training work directory (best, else latest checkpoint), one step directory "
                             "or an exported model; default: the real-face generator shipped in the package")
    parser.add_argument("--image", action="append", required=True, metavar="FACE",
                        help="face photo; repeat for five stills (the first is the one pasted into)")
    parser.add_argument("--audio", required=True, help="speech: any audio or video file ffmpeg decodes")
    parser.add_argument("--out", required=True, help="output .mp4")
    parser.add_argument("--deblur", default=None, metavar="CKPT", help="deblurring-net checkpoint to apply")
    parser.add_argument("--bare", action="store_true", help="write the generated face crop, not the pasted photo")
    parser.add_argument("--mask", choices=("face", "lower"), default="face",
                        help="region pasted back: the whole generated face (default) or the lower face only")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per generator call (default 64)")
    parser.add_argument("--face-index", type=int, default=None,
                        help="face to use in photos with several (0 = largest; default: largest, with a warning)")
    parser.add_argument("--preset", default="medium", help="libx264 preset (default medium; veryfast is quicker)")
    parser.add_argument("--max-size", type=int, default=1920,
                        help="photos larger than this on their longest side are downscaled first, and the video "
                             "is at most this size (default 1920 px; 0 keeps the full size)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def show_warnings_as_lines(command: str) -> None:
    """Print library warnings as one 's2v <command>: warning: ...' line each, and
    silence absl's INFO/WARNING chatter (Orbax notes on read-only checkpoint folders)."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"s2v {command}: warning: {message}", file=sys.stderr)
    warnings.showwarning = show


def run(args) -> int:
    from s2v_jax.errors import S2VError
    from s2v_jax.inference.generate import generate_video

    if args.batch_size < 1:
        raise S2VError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_size < 0 or 0 < args.max_size < 112:
        raise S2VError(f"--max-size must be 0 (no limit) or at least 112 pixels, got {args.max_size}")
    show_warnings_as_lines("generate")
    result = generate_video(args.checkpoint, args.image, args.audio, args.out, paste_back=not args.bare,
                            deblur=args.deblur, batch_size=args.batch_size, progress=not args.no_progress,
                            face_index=args.face_index, mask=args.mask, preset=args.preset,
                            max_size=args.max_size)
    print(json.dumps({"out": result.path, "frames": result.num_frames, "seconds_of_video": result.num_frames / 25.0,
                      "width": result.width, "height": result.height, "elapsed_s": round(result.seconds, 2)}))
    return 0
