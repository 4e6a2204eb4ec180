"""Evaluate a generator checkpoint on held-out clips: regenerate each clip
from its own identity frame and audio, and score model, static baseline
(identity frame repeated) and real video side by side: PSNR, SSIM, LMD,
SyncNet LSE-D/LSE-C by the shipped judge (or --sync-expert) with "sync
recovered" = (model - static) / (real - static) on LSE-C, and landmark lip
sync as a diagnostic. Writes
OUT/report.json and OUT/index.html (plots, frame strips); prints the per-row
means as JSON.

    s2v evaluate --checkpoint workdirs/tiny --videos ../shared/data/real/corpus/lrs2 --out reports/tiny
    s2v evaluate --checkpoint workdirs/tiny --videos synthetic_talking_faces/small:validation \\
        --data-dir data/tfds --sync-expert workdirs/syncnet_real --out reports/tiny_val
"""

import json


def add_arguments(parser):
    parser.add_argument("--checkpoint", default=None, help="generator work directory, checkpoint step directory or "
                        "exported model; default: the real-face generator shipped in the package")
    parser.add_argument("--videos", required=True,
                        help="a video, a folder of videos, or a TFDS split NAME/CONFIG:SPLIT "
                             "(e.g. synthetic_talking_faces/small:validation)")
    parser.add_argument("--out", required=True, help="report folder (created; report.json, index.html, images)")
    parser.add_argument("--sync-expert", default="shipped",
                        help="judge of LSE-D/LSE-C and sync recovered: 'shipped' (default, the package's), a "
                             "sync-expert work directory or export, or 'none'")
    parser.add_argument("--max-clips", type=int, default=None, help="evaluate at most N clips (in sorted order)")
    parser.add_argument("--min-seconds", type=float, default=0.0,
                        help="TFDS splits: pass over tracks shorter than this (e.g. 2 for LSE-C over +-15 frames)")
    parser.add_argument("--data-dir", default="data/tfds", help="TFDS data directory for a split (default data/tfds)")
    parser.add_argument("--manual-dir", default=None,
                        help="source videos of a registered_faces split (for its audio envelope)")
    parser.add_argument("--identity-index", type=int, default=0,
                        help="track frame used as the identity still (default 0, the first; -1 = the last)")
    parser.add_argument("--still", choices=("first", "closed"), default="first",
                        help="identity still: 'first' (the --identity-index frame, default) or 'closed' (each clip's "
                             "frame with the most closed mouth: the hardest case, and most user photos)")
    parser.add_argument("--deblur", default=None, help="deblurring net checkpoint applied to generated frames")
    parser.add_argument("--batch-size", type=int, default=32, help="frames per inference batch (default 32)")
    parser.add_argument("--strip-frames", type=int, default=8, help="frames per clip in the frame strips (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no per-clip progress lines")


def run(args) -> int:
    import sys

    from s2v_jax.evaluation.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(
        args.checkpoint, args.videos, args.out,
        sync_expert=None if args.sync_expert.lower() == "none" else args.sync_expert, max_clips=args.max_clips,
        min_seconds=args.min_seconds,
        data_dir=args.data_dir, manual_dir=args.manual_dir, identity_index=args.identity_index,
        still=args.still,
        batch_size=args.batch_size, deblur_checkpoint=args.deblur, strip_frames=args.strip_frames,
        progress=not args.quiet)
    print(f"report: {args.out}/index.html ({len(report['clips'])} clips, {len(report['skipped'])} skipped)",
          file=sys.stderr)
    print(json.dumps({"out": args.out, "clips": len(report["clips"]), "skipped": len(report["skipped"]),
                      "rows": report["rows"]}))
    return 0
