"""Re-dub a video with new speech: track the face through the video, generate
the face for the new speech from identity frames of the track, align it to
each source frame and Poisson-blend the lower half of the face (from just
below the eyes) into it. Frames without a face pass through unchanged. Two
streaming passes over the video: memory does not grow with its length.
--length audio (default): as long as the speech; a shorter video plays back
and forth (ping-pong), a longer one is cut. video: the video's length (speech
cut or padded with silence). shortest: the shorter of the two."""

import json


def add_arguments(parser):
    parser.add_argument("--checkpoint", default=None,
                        help="generator training work directory (best, else latest checkpoint), one step directory "
                             "or an exported model; default: the real-face generator shipped in the package")
    parser.add_argument("--video", required=True, help="source video with a visible face")
    parser.add_argument("--audio", required=True, help="new speech: any audio or video file ffmpeg decodes")
    parser.add_argument("--out", required=True, help="output .mp4")
    parser.add_argument("--face-index", type=int, default=0,
                        help="face to re-dub where several are visible: 0 = largest (default), 1 = next, ...")
    parser.add_argument("--length", choices=("audio", "video", "shortest"), default="audio",
                        help="output length policy (default audio; see above)")
    parser.add_argument("--identity", choices=("auto", "track", "frame"), default="auto",
                        help="frame: move each frame's own lips at full resolution (warp-only generators, such as "
                             "the shipped one); track: paste the lower face generated from the track's most frontal "
                             "frame; auto (default): frame where the generator allows it")
    parser.add_argument("--deblur", default=None, metavar="CKPT", help="deblurring-net checkpoint to apply")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per generator call (default 64)")
    parser.add_argument("--preset", default="medium", help="libx264 preset (default medium; veryfast is quicker)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args) -> int:
    from s2v_jax.commands.generate import show_warnings_as_lines
    from s2v_jax.errors import S2VError
    from s2v_jax.inference.redub import redub_video

    if args.batch_size < 1:
        raise S2VError(f"--batch-size must be >= 1, got {args.batch_size}")
    show_warnings_as_lines("redub")
    r = redub_video(args.checkpoint, args.video, args.audio, args.out, face_index=args.face_index,
                    length=args.length, deblur=args.deblur, batch_size=args.batch_size,
                    progress=not args.no_progress, preset=args.preset, identity=args.identity)
    print(json.dumps({"out": r.path, "frames": r.num_frames, "source_frames": r.num_source_frames,
                      "frames_redubbed": r.frames_redubbed, "identity": r.identity,
                      "identity_frames": {str(k): v for k, v in r.identity_frames.items()},
                      "elapsed_s": round(r.seconds, 2)}))
    return 0
