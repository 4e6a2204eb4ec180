"""Generate a procedural talking-face corpus (no downloads): rendered faces
whose mouths follow synthetic speech, written as <out>/<speaker>/<clip>.mp4
(H.264 + AAC) with per-frame ground truth in <clip>.npz and a manifest.json.
Deterministic per --seed; re-running skips clips that are already complete."""

import json


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--num-clips", type=int, required=True, help="number of clips to generate")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument("--num-speakers", type=int, default=None,
                        help="number of identities; clip j belongs to speaker j %% K (default: one per 5 clips)")
    parser.add_argument("--seconds", type=float, nargs=2, default=(2.0, 4.0), metavar=("MIN", "MAX"),
                        help="clip length range in seconds (default 2 4)")
    parser.add_argument("--size", type=int, default=160, help="frame size in pixels, square (default 160)")
    parser.add_argument("--motion", type=float, default=1.0, help="head motion amount, 0 = still (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    import time

    from s2v_jax.synth.corpus import generate_corpus

    t0 = time.time()
    manifest = generate_corpus(args.out, args.num_clips, seed=args.seed, num_speakers=args.num_speakers,
                               clip_seconds=tuple(args.seconds), size=args.size, motion=args.motion,
                               progress=not args.no_progress)
    frames = sum(c["num_frames"] for c in manifest["clips"])
    print(json.dumps({
        "out": str(args.out), "manifest": f"{args.out}/manifest.json", "clips": manifest["num_clips"],
        "speakers": manifest["num_speakers"], "frames": frames,
        "seconds_of_video": round(frames / manifest["fps"], 2), "size": manifest["size"],
        "skipped_existing": manifest["skipped_existing"], "elapsed_s": round(time.time() - t0, 2),
    }))
    return 0
