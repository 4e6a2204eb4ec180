"""Streaming demo: feed a speech file to a StreamingSession in small chunks,
as a live microphone would, and write the frames as they come out. Reports the
audio look-ahead (how far past a frame's time the audio had to reach before
the frame came out: 0.1825 s by the window arithmetic, rounded up to a whole
chunk), the model's time per chunk and the compositing's per frame, the first
frame's latency (its look-ahead + its chunk's model time + its compositing) and
the steady rate (frames per second of processing; 25 keeps up with live speech).
The frames equal offline generation (`s2v generate`)."""

import json


def add_arguments(parser):
    parser.add_argument("--checkpoint", default=None, help="generator work directory, checkpoint step directory or "
                        "exported model; default: the real-face generator shipped in the package")
    parser.add_argument("--image", action="append", required=True, metavar="FACE", help="face photo (1 or 5)")
    parser.add_argument("--audio", required=True, help="speech file standing in for live audio")
    parser.add_argument("--out", required=True, help="output .mp4 of the streamed frames")
    parser.add_argument("--chunk-ms", type=float, default=40.0, help="audio per feed() call (default 40 ms)")
    parser.add_argument("--bare", action="store_true", help="write the face crop, not the pasted photo")
    parser.add_argument("--deblur", default=None, metavar="CKPT", help="deblurring-net checkpoint to apply")
    parser.add_argument("--face-index", type=int, default=None, help="face in photos with several (0 = largest)")


def run(args) -> int:
    import time

    import numpy as np

    from s2v_jax.commands.generate import show_warnings_as_lines
    from s2v_jax.errors import S2VError
    from s2v_jax.faces.compositing import face_mask, paste_face, to_crop_size, warp_frame
    from s2v_jax.inference.generator import FrameGenerator
    from s2v_jax.inference.stills import register_stills
    from s2v_jax.inference.streaming import StreamingSession
    from s2v_jax.media.audio import compute_mfcc
    from s2v_jax.media.paths import refuse_overwriting_inputs
    from s2v_jax.media.speech import load_speech
    from s2v_jax.media.video import VideoWriter

    if args.chunk_ms <= 0:
        raise S2VError(f"--chunk-ms must be positive, got {args.chunk_ms}")
    show_warnings_as_lines("stream")
    for role, path in [("--audio", args.audio)] + [("--image", im) for im in args.image]:
        refuse_overwriting_inputs(args.out, {role: path})
    wav = load_speech(args.audio)
    step = max(1, int(round(args.chunk_ms * 16)))  # samples per chunk at 16 kHz
    with VideoWriter(args.out, audio=wav) as writer:
        gen = FrameGenerator.from_checkpoint(args.checkpoint, args.deblur, batch_size=max(1, -(-step // 640)))
        stills = register_stills(args.image, gen.num_identity_images, args.face_index)
        identity = gen.encode_identity(stills.crops)
        full_res = not args.bare and gen.moves_pixels  # move the photo's own pixels
        if full_res:
            next(gen.flow_batches(np.zeros((1, 12, 35), np.float32), identity))  # compile before the clock starts
        else:
            gen.generate(np.zeros((1, 12, 35), np.float32), identity)
        compute_mfcc(np.zeros(16000, np.float32))
        session = StreamingSession(gen, identity, flows=full_res)
        mask, m = face_mask("face"), stills.faces[0].M
        lookahead, compute, compose = [], [], []
        fed, first_frame_s = 0, None

        def emit(frames, chunk_s):
            nonlocal first_frame_s
            for face in frames:
                k = writer.num_frames
                lookahead.append(fed / 16000 - k / 25)
                t0 = time.perf_counter()
                if full_res:
                    frame = warp_frame(stills.photo, face, m)  # `face` is the frame's flow
                else:
                    frame = face if args.bare else paste_face(stills.photo, to_crop_size(face), m, mask)
                compose.append(time.perf_counter() - t0)
                if first_frame_s is None:  # the audio it waited for, its chunk's model time, its own compositing
                    first_frame_s = lookahead[0] + chunk_s + compose[0]
                writer.write(frame)

        for start in range(0, len(wav), step):
            chunk = wav[start:start + step]
            t0 = time.perf_counter()
            frames = session.feed(chunk)
            compute.append(time.perf_counter() - t0)
            fed += len(chunk)
            emit(frames, compute[-1])
        tail = len(lookahead)
        t0 = time.perf_counter()
        frames = session.flush()
        emit(frames, time.perf_counter() - t0)
    print(json.dumps(stream_summary(str(writer.path), writer.num_frames, args.chunk_ms, lookahead[:tail], compute,
                                    compose, first_frame_s)))
    return 0


def stream_summary(out, frames, chunk_ms, lookahead, compute, compose, first_frame_s) -> dict:
    """The JSON line of `s2v stream`: look-ahead (audio past a frame's time when it came out), model time per
    chunk, compositing time per frame, the first frame's latency (its look-ahead + its chunk's model time +
    its compositing) and the steady rate: frames per second of processing (model + compositing; >= 25 keeps
    up with live speech), `realtime_factor` = that rate / 25."""
    import numpy as np

    steady, compute, compose = np.asarray(lookahead), np.asarray(compute), np.asarray(compose)
    busy = float(compute.sum() + compose.sum())
    fps = frames / busy if busy > 0 else None
    r = lambda x, n=2: None if x is None else round(float(x), n)  # noqa: E731
    return {"out": out, "frames": frames, "chunk_ms": chunk_ms,
            "lookahead_s_min": r(steady.min(), 4) if steady.size else None,
            "lookahead_s_max": r(steady.max(), 4) if steady.size else None,
            "compute_ms_per_chunk_median": r(1e3 * np.median(compute)) if compute.size else None,
            "compute_ms_per_chunk_max": r(1e3 * compute.max()) if compute.size else None,
            "compose_ms_per_frame_median": r(1e3 * np.median(compose)) if compose.size else None,
            "first_frame_latency_s": r(first_frame_s, 4),
            "steady_frames_per_s": r(fps), "realtime_factor": r(None if fps is None else fps / 25.0)}
