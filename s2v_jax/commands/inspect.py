"""Draw the face tracks of a video for a person to check the preprocessing.

Each output frame shows, per face track: its id and box, the 478 landmarks
(lips highlighted), the eye and nose points the registration uses, and an
inset of the registered 112x112 crop with the canonical template points; shot
cuts are flagged. Small videos are upscaled so the drawing stays readable. The
source's sound is kept. Example:

    s2v inspect clip.mp4 --out overlay.mp4 --max-frames 250
"""

import argparse

# Track colours (RGB), cycled by track id.
_COLOURS = [(255, 80, 80), (80, 200, 255), (255, 200, 0), (200, 120, 255), (120, 255, 120)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file to inspect")
    parser.add_argument("--out", default="overlay.mp4", help="output mp4 (default overlay.mp4)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="only the first N frames (25 fps); default: the whole video")
    parser.add_argument("--min-track-frames", type=int, default=None,
                        help="drop face tracks shorter than this (default: preprocess's 12, "
                             "or --max-frames if fewer)")


def _draw_frame(frame, t, tracks, lms, zoom, cut):
    """One overlay frame: RGB uint8 [H*zoom, W*zoom, 3]."""
    import cv2
    import numpy as np

    from s2v_jax import faces
    from s2v_jax.faces import registration

    h, w = frame.shape[:2]
    canvas = cv2.resize(frame, (w * zoom, h * zoom), interpolation=cv2.INTER_CUBIC) if zoom > 1 else frame.copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    inset_x = 0
    for track, frame_lms in zip(tracks, lms):
        if not track.start_frame <= t < track.end_frame:
            continue
        i = t - track.start_frame
        colour = _COLOURS[track.track_id % len(_COLOURS)]
        box = np.round(track.boxes[i] * zoom).astype(int)
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:]), colour, 1, cv2.LINE_AA)
        cv2.putText(canvas, f"#{track.track_id}", (box[0], max(12, box[1] - 4)), font, 0.45, colour, 1,
                    cv2.LINE_AA)
        pts = frame_lms[i] * zoom
        for x, y in pts[:468]:
            canvas[min(int(y), canvas.shape[0] - 1), min(int(x), canvas.shape[1] - 1)] = (200, 200, 200)
        for idx in (faces.LIPS_OUTER, faces.LIPS_INNER):
            cv2.polylines(canvas, [np.round(pts[list(idx)]).astype(np.int32)], True, (255, 60, 160), 1,
                          cv2.LINE_AA)
        for x, y in pts[list(faces.REGISTRATION_POINTS)]:
            cv2.circle(canvas, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1, cv2.LINE_AA)
        # Inset: the registered crop with the template points it was fitted to.
        crop = track.crops[i].copy()
        for x, y in registration.template(crop.shape[0]):
            cv2.circle(crop, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
        if min(canvas.shape[:2]) >= 4 * crop.shape[0]:  # big frame: show the crop at 2x
            crop = cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.rectangle(crop, (0, 0), (crop.shape[1] - 1, crop.shape[0] - 1), colour, 1)
        ch, cw = crop.shape[:2]
        if inset_x + cw <= canvas.shape[1] and ch <= canvas.shape[0]:
            canvas[canvas.shape[0] - ch:, inset_x:inset_x + cw] = crop
            cv2.putText(canvas, f"#{track.track_id} {track.residuals[i]:.1f}px", (inset_x + 2, canvas.shape[0] - ch + 11),
                        font, 0.35, colour, 1, cv2.LINE_AA)
            inset_x += cw + 2
    label = f"frame {t}" + ("  CUT" if cut else "")
    cv2.putText(canvas, label, (5, 14), font, 0.45, (255, 255, 0) if cut else (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def run(args: argparse.Namespace) -> int:
    import math
    import os

    from s2v_jax.faces import preprocess
    from s2v_jax.errors import MediaError
    from s2v_jax.media import audio, video
    from s2v_jax.media.paths import refuse_overwriting_inputs

    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise MediaError(f"cannot write {args.out}: folder {out_dir} does not exist; create it first")
    refuse_overwriting_inputs(args.out, {"VIDEO": args.video})
    info = video.probe(args.video)
    min_frames = args.min_track_frames
    if min_frames is None:  # preprocess's default, but a short --max-frames still shows its track
        min_frames = min(preprocess.MIN_TRACK_FRAMES, args.max_frames or preprocess.MIN_TRACK_FRAMES)
    extractor = preprocess.TrackExtractor(args.video, min_track_frames=max(1, min_frames),
                                          max_frames=args.max_frames, progress=True)
    tracks = extractor.run()
    cuts = set(extractor.shot_boundaries)
    n = extractor.num_frames
    sound = None
    if info.has_audio:
        sound = audio.load_audio(args.video)[: int(round(n * audio.SAMPLE_RATE / audio.VIDEO_FPS))]
    zoom = max(1, math.ceil(360 / max(1, min(info.width, info.height))))
    lms = [track.frame_landmarks() for track in tracks]
    with video.VideoWriter(args.out, audio=sound, preset="veryfast") as writer:
        for t, frame in enumerate(video.iter_frames(args.video, max_frames=n)):
            writer.write(_draw_frame(frame, t, tracks, lms, zoom, t in cuts))
    print(f"{args.video}: {n} frames, {len(tracks)} face track(s), shot cuts at {sorted(cuts) or 'none'}")
    for track in tracks:
        print(f"  track #{track.track_id}: frames {track.start_frame}-{track.end_frame - 1}, "
              f"registration residual {track.residuals.mean():.2f} px (mean)")
    if not tracks:
        print(f"  {extractor.no_face_reason()}")
    print(f"wrote {args.out}" + ("" if sound is not None else " (the source has no sound)"))
    return 0
