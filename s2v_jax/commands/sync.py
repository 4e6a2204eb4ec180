"""Score the lip sync of a video with the sync expert (SyncNet's measures):
the audio-visual offset of the speaking face in frames, LSE-D and LSE-C.
Every face track of 1 s or more is scored and the one the judge finds most
in sync is reported (active-speaker detection, as SyncNet is used for LRS2);
--track largest scores the largest face instead.

    s2v sync --video talk.mp4
    s2v sync --video dub.mp4 --audio speech.wav --json
    s2v sync --video talk.mp4 --checkpoint workdirs/syncnet_real

Offsets are searched within +-15 frames (--max-offset). Sign: if the sound
comes k frames late (audio delayed by k frames against the picture), the
offset is +k. LSE-D is the smallest mean embedding distance over offsets,
LSE-C the median minus that minimum (higher: more confident sync). Without
--checkpoint the judge shipped in the package is used (its model card:
s2v_jax/assets/sync_expert/MODEL_CARD.md).
"""

import json
import sys


def add_arguments(parser):
    parser.add_argument("--video", required=True, help="video with a visible face (its own sound unless --audio)")
    parser.add_argument("--audio", default=None, help="speech to score against the video instead of its own sound")
    parser.add_argument("--checkpoint", default=None,
                        help="sync expert: training work directory, step directory or exported model "
                             "(default: the judge shipped in the package)")
    parser.add_argument("--max-offset", type=int, default=15, help="offsets searched, in frames (default 15)")
    parser.add_argument("--track", choices=("speaker", "largest"), default="speaker",
                        help="which face: 'speaker' (default), the track of 1 s or more the judge finds most in "
                             "sync (active-speaker detection); 'largest', the largest face")
    parser.add_argument("--json", action="store_true", help="print one JSON object (offset, lse_d, lse_c, ...)")
    parser.add_argument("--distances", action="store_true", help="with --json: include D per offset")


def run(args) -> int:
    from s2v_jax.commands.generate import show_warnings_as_lines
    from s2v_jax.errors import S2VError

    if not 1 <= args.max_offset <= 50:
        raise S2VError(f"--max-offset must be between 1 and 50 frames, got {args.max_offset}")
    show_warnings_as_lines("sync")
    from s2v_jax.evaluation.sync_expert import SyncExpert, score_video

    expert = SyncExpert.from_checkpoint(args.checkpoint)
    scores = score_video(expert, args.video, args.audio, args.max_offset, track=args.track)
    out = {"video": args.video, "audio": args.audio or args.video, "judge": args.checkpoint or "shipped",
           "offset": scores["offset"], "lse_d": scores["lse_d"], "lse_c": scores["lse_c"],
           "max_offset": scores["max_offset"], "track": scores["track"], "frames": scores["frames"]}
    if args.json:
        if args.distances:
            out["distances"] = scores["distances"]
        print(json.dumps(out))
        return 0
    off = out["offset"]
    if off is None:
        print(f"{args.video}: the face track is too short to score", file=sys.stderr)
        return 1
    late = "in sync" if off == 0 else (f"sound {abs(off)} frame(s) ({abs(off) / 25:.2f} s) "
                                       f"{'late' if off > 0 else 'early'}")
    t = out["track"]
    print(f"AV offset {off:+d} frames ({late}); LSE-D {out['lse_d']:.3f}; LSE-C {out['lse_c']:.3f} "
          f"(face track: frames {t['start_frame']}-{t['end_frame']} of {out['frames']}"
          + (f", the most in sync of {len(t['candidates'])} tracks" if len(t["candidates"]) > 1 else "") + ")")
    return 0
