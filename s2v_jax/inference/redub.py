"""Re-dubbing: a source video + new speech -> the video with the lower face lip-synced to the speech.

Two streaming passes over the source, so memory does not grow with its length:

1. Tracking (`track_video`): faces.FaceTracker follows every face; per frame
   only the registration transform (smoothed over the track with the same
   Gaussian as preprocess, sigma 2 frames), the box and a quality score are
   kept, plus a few candidate identity crops per track (below). The frame
   buffer is one frame; the tracker's own landmark history is released as it
   goes.
2. Compositing (`redub_frames`): frames are streamed again. With a warp-only
   generator (the shipped one; `identity='frame'`, what 'auto' picks) each
   frame is its own still: the flow predicted from its registered crop and the
   new speech moves the frame's own lips at full resolution
   (`compositing.warp_frame`), so nothing is pasted, the head, light and
   detail stay the source's, and pixels the flow does not reach are exact.
   Otherwise (`identity='track'`) the face of the new speech is generated in
   batches for the owning track's identity, aligned to each frame with that
   frame's smoothed transform, and the lower half of the face
   (`registration.lower_face_mask`: from just below the eyes) is
   Poisson-blended in. Frames without a face pass through unchanged.

Which face: in each frame the tracks present are ranked by their median box
area (0 = largest); `face_index` picks the rank (default the largest face). A
frame with fewer faces than `face_index + 1` passes through unchanged.
Each track is re-dubbed with its own identity, so shots of different people
stay themselves.

Identity frames: for a k-image model (k = 1 or 5) each track's k identity
crops are its most frontal frames spread over the track. "Frontal" is the
registration residual: the mean distance (crop px) of the eye/nose points
from the template after the similarity fit; turning the head raises it.
During tracking a track keeps at most 4k candidates, each the lowest-residual
frame of a stretch of the track; when full, neighbouring stretches merge
(the better frame kept), so the candidates cover the whole track at bounded
memory. At the end the candidates are split into k consecutive groups and the
best of each group is taken (k = 1: the most frontal frame of the track).
Crops are cut with the frame's own (unsmoothed) transform.

Length (`length`): 'audio' (default) makes the output as long as the new
speech. A video longer than the speech is truncated; a shorter one is
extended by playing the source back and forth (ping-pong: 0, 1, ..., N-1,
N-2, ..., 1, 0, 1, ...), which has no jump cut (looping would) and keeps the
body moving (holding the last frame would not). The frames needed after the
first forward pass are spilled to a temporary raw file on disk (not memory)
during that pass.
'video' keeps the source's length (the speech is cut, or padded with silence,
during which the mouth is generated closed); 'shortest' takes the shorter of
the two. The sound track is the new speech, cut or padded the same way.
"""

import dataclasses
import os
import tempfile
import time
import warnings
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from s2v_jax import faces
from s2v_jax.errors import MediaError, NoFaceError, S2VError
from s2v_jax.faces import registration
from s2v_jax.faces.compositing import face_mask, paste_face, to_crop_size, warp_frame
from s2v_jax.inference.generate import ProgressCallback, report_frames, report_progress
from s2v_jax.inference.generator import FrameGenerator
from s2v_jax.media import audio as audio_lib
from s2v_jax.media import video
from s2v_jax.media.paths import refuse_overwriting_inputs
from s2v_jax.media.speech import iter_audio_windows, load_speech
from s2v_jax.media.video import VideoWriter, probe

LENGTH_POLICIES = ("audio", "video", "shortest")
SMOOTHING_SIGMA = 2.0  # frames, as preprocess.SMOOTHING_SIGMA
CANDIDATES_PER_IMAGE = 4


# ---------------------------------------------------------------- pass 1: tracking

@dataclasses.dataclass
class TrackInfo:
    """One face track: frames [start, end), median box area (px^2), the
    identity frames chosen (source frame indices) and their crops uint8 [k, 112, 112, 3]."""

    track_id: int
    start: int
    end: int
    median_area: float
    identity_frames: List[int]
    identity_crops: np.ndarray


@dataclasses.dataclass
class VideoFaces:
    """Pass 1's result. owner: int32 [N], the track re-dubbed in each source
    frame (-1: none); transforms: float32 [N, 2, 3] frame -> crop (smoothed)
    for the owner; tracks: by track id (only those owning frames)."""

    path: str
    num_frames: int
    width: int
    height: int
    owner: np.ndarray
    transforms: np.ndarray
    tracks: Dict[int, TrackInfo]
    warnings: List[str]


class _TrackRecord:
    """Per-frame raw transforms/boxes of one track and its identity candidates."""

    def __init__(self, track_id: int, start: int, capacity: int):
        self.track_id, self.start, self.capacity = track_id, start, capacity
        self.transforms: List[np.ndarray] = []
        self.areas: List[float] = []
        self.stretch = 1  # frames per candidate stretch
        self.candidates: List[list] = []  # [stretch index, residual, frame index, crop]

    def add(self, frame: np.ndarray, landmarks: np.ndarray, box: np.ndarray) -> None:

        t = len(self.transforms)
        m = registration.registration_transform(landmarks)
        self.transforms.append(m)
        self.areas.append(float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])))
        pts = registration.transform_points(m, registration.registration_points(landmarks))
        residual = float(np.linalg.norm(pts - registration.template(), axis=1).mean())
        slot = t // self.stretch
        last = self.candidates[-1] if self.candidates else None
        if last is not None and last[0] == slot:
            if residual >= last[1]:
                return
            self.candidates.pop()
        self.candidates.append([slot, residual, self.start + t, registration.warp_face(frame, m)])
        if len(self.candidates) > self.capacity:  # merge neighbouring stretches, keep the better frame
            self.stretch *= 2
            merged: Dict[int, list] = {}
            for c in self.candidates:
                c[0] = (c[2] - self.start) // self.stretch
                if c[0] not in merged or c[1] < merged[c[0]][1]:
                    merged[c[0]] = c
            self.candidates = [merged[k] for k in sorted(merged)]

    def identity(self, k: int) -> Tuple[List[int], np.ndarray]:
        """k identity frames: the best candidate of each of k consecutive groups."""
        groups = np.array_split(np.arange(len(self.candidates)), min(k, len(self.candidates)))
        chosen = [min((self.candidates[i] for i in g), key=lambda c: c[1]) for g in groups]
        crops = np.stack([c[3] for c in chosen])
        if len(crops) < k:
            crops = np.concatenate([crops, np.repeat(crops[-1:], k - len(crops), axis=0)])
        return [c[2] for c in chosen], crops

    def smoothed(self) -> np.ndarray:
        return registration.smooth_transforms(np.stack(self.transforms), SMOOTHING_SIGMA).astype(np.float32)


def track_video(video_path, num_identity_images: int = 1, face_index: int = 0, progress: bool = False,
                max_frames: Optional[int] = None, on_progress: Optional[ProgressCallback] = None,
                **tracker_kwargs) -> VideoFaces:
    """Pass 1: follow the faces of a video and pick, per frame, the face to re-dub.

    Raises MediaError for an unreadable video, NoFaceError when no frame has
    a (trackable) face, S2VError when no frame has `face_index + 1` faces.
    tracker_kwargs go to faces.FaceTracker (min_track_frames, detect_every, ...). on_progress:
    optional ('face tracking', done, total) callback every 10 frames (total: the probed estimate).
    """

    if face_index is None:
        face_index = 0
    if face_index < 0:
        raise S2VError(f"face index must be >= 0 (0 = largest face), got {face_index}")
    info = video.probe(video_path)
    tracker = faces.FaceTracker(**tracker_kwargs)
    capacity = CANDIDATES_PER_IMAGE * num_identity_images
    records: Dict[int, _TrackRecord] = {}
    done: List[Tuple[_TrackRecord, np.ndarray]] = []
    frames = video.iter_frames(video_path, max_frames=max_frames)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=max_frames or info.num_frames, unit="frame", desc="pass 1/2: tracking faces")
    n = 0
    try:
        for t, frame in enumerate(frames):
            n = t + 1
            ended = {tr.track_id for tr in tracker.update(frame)}
            active = {tr.track_id: tr for tr in tracker.active}
            for tid in [tid for tid in records if tid not in active]:
                rec = records.pop(tid)
                if tid in ended:  # long enough; otherwise the tracker dropped it
                    done.append((rec, rec.smoothed()))
            for tid, tr in active.items():
                rec = records.setdefault(tid, _TrackRecord(tid, tr.start_frame, capacity))
                rec.add(frame, tr.landmarks[-1], tr.boxes[-1])
                if len(tr.landmarks) > 1:
                    tr.landmarks[-2] = None  # the tracker reads only the last; keeps memory flat
            if bar is not None:
                bar.update(1)
            if on_progress is not None and n % 10 == 0:
                report_progress(on_progress, "face tracking", n, max(n, max_frames or info.num_frames))
    finally:
        if bar is not None:
            bar.close()
    report_progress(on_progress, "face tracking", n, n)
    final = {tr.track_id for tr in tracker.finish()}
    done += [(rec, rec.smoothed()) for tid, rec in records.items() if tid in final]
    if n == 0:
        raise MediaError(f"no frames could be decoded from {video_path}; the file may be corrupt")
    if not done:
        why = ("no face found in any" if tracker.detections == 0
               else "faces found, but none could be followed for long enough in any")
        raise NoFaceError(f"{why} of the {n} frames of {video_path}; re-dubbing needs a visible face")

    owner = np.full(n, -1, np.int32)
    transforms = np.zeros((n, 2, 3), np.float32)
    rank = np.zeros(n, np.int32)
    by_area = sorted(done, key=lambda d: -float(np.median(d[0].areas)))
    for rec, ms in by_area:
        sl = slice(rec.start, rec.start + len(ms))
        hit = rank[sl] == face_index
        owner[sl][hit] = rec.track_id
        transforms[sl][hit] = ms[hit]
        rank[sl] += 1
    if not (owner >= 0).any():
        raise S2VError(f"face index {face_index} out of range: no frame of {video_path} shows more than "
                       f"{int(rank.max())} face(s) (0 = largest)")
    tracks = {}
    for rec, ms in by_area:
        if (owner == rec.track_id).any():
            frames_idx, crops = rec.identity(num_identity_images)
            tracks[rec.track_id] = TrackInfo(rec.track_id, rec.start, rec.start + len(ms),
                                             float(np.median(rec.areas)), frames_idx, crops)
    notes = []
    if len(tracks) > 1:
        notes.append(f"{video_path}: {len(tracks)} face tracks are re-dubbed, each with its own identity frames")
    return VideoFaces(path=str(video_path), num_frames=n, width=info.width, height=info.height, owner=owner,
                      transforms=transforms, tracks=tracks, warnings=notes)


# ---------------------------------------------------------------- length policy

def output_length(num_video_frames: int, num_audio_frames: int, length: str = "audio") -> int:
    """Frames of the output under a length policy ('audio', 'video' or 'shortest')."""
    if length == "audio":
        return num_audio_frames
    if length == "video":
        return num_video_frames
    if length == "shortest":
        return min(num_video_frames, num_audio_frames)
    raise S2VError(f"length must be one of {', '.join(LENGTH_POLICIES)}, not {length!r}")


def source_indices(out_frames: np.ndarray, num_source_frames: int) -> np.ndarray:
    """Source frame of each output frame: identity up to N-1, then ping-pong (N-2, ..., 1, 0, 1, ...)."""
    o = np.asarray(out_frames, np.int64)
    n = int(num_source_frames)
    if n <= 1:
        return np.zeros_like(o)
    r = o % (2 * n - 2)
    return np.where(r < n, r, 2 * n - 2 - r)


def fit_audio(wav: np.ndarray, num_frames: int) -> np.ndarray:
    """The sound track for `num_frames` frames: `wav` cut, or padded with silence."""
    want = int(round(num_frames * audio_lib.SAMPLE_RATE / audio_lib.VIDEO_FPS))
    if audio_lib.num_video_frames(len(wav)) == num_frames:
        return wav
    if len(wav) >= want:
        return wav[:want]
    return np.concatenate([wav, np.zeros(want - len(wav), np.float32)])


def iter_source_frames(path, num_source_frames: int, num_out: int) -> Iterator[Tuple[int, np.ndarray]]:
    """(source index, frame) for output frames 0..num_out-1 in order (see `source_indices`).

    One forward decoding pass; if the output outlasts the source, the frames
    the later (ping-pong) outputs use are written to a temporary file during
    that pass and read back from it, so memory holds one frame.
    """

    src = source_indices(np.arange(num_out), num_source_frames)
    first = min(num_out, num_source_frames)
    spill_from = int(src[first:].min()) if num_out > first else num_source_frames
    stream = video.iter_frames(path, max_frames=first)
    spill = tempfile.TemporaryFile(prefix="s2v_redub_") if num_out > first else None
    try:
        frame = None
        for o in range(first):
            nxt = next(stream, None)
            if nxt is None:  # the decoder gave fewer frames than pass 1: hold the last
                if frame is None:
                    raise MediaError(f"no frames could be decoded from {path} on the second pass")
            else:
                frame = nxt
            if spill is not None and o >= spill_from:
                spill.write(np.ascontiguousarray(frame).tobytes())
            yield o, frame
        if spill is None:
            return
        shape = frame.shape
        size = int(np.prod(shape))
        for o in range(first, num_out):
            spill.seek((int(src[o]) - spill_from) * size)
            yield int(src[o]), np.frombuffer(spill.read(size), np.uint8).reshape(shape)
    finally:
        stream.close()
        if spill is not None:
            spill.close()


# ---------------------------------------------------------------- pass 2: compositing

IDENTITY_MODES = ("auto", "track", "frame")


def identity_mode(generator: FrameGenerator, identity: str = "auto") -> str:
    """'track' or 'frame' for `identity` ('auto': 'frame' for a warp-only generator without a
    deblurring net, else 'track')."""
    if identity not in IDENTITY_MODES:
        raise S2VError(f"identity must be one of {', '.join(IDENTITY_MODES)}, not {identity!r}")
    if identity == "auto":
        return "frame" if generator.moves_pixels else "track"
    if identity == "frame" and not generator.warps_only:
        raise S2VError("--identity frame moves each frame's own lips and needs a warp-only generator (the shipped "
                       "one, configs/real_small_warp.py); this one paints its output: use --identity track")
    if identity == "frame" and generator.deblur is not None:
        raise S2VError("--deblur sharpens painted faces; with --identity frame (a warp-only generator's "
                       "default) the frame's own pixels are moved and nothing is painted: drop --deblur, "
                       "or pass --identity track")
    return identity


def redub_frames(generator: FrameGenerator, faces: VideoFaces, wav: np.ndarray, *, length: str = "audio",
                 progress: bool = False, chunk_frames: int = 256, identity: str = "auto") -> Iterator[np.ndarray]:
    """Pass 2: the output frames in order (uint8 [H, W, 3], the source's size).

    identity 'track': each owned frame is the source frame (ping-pong extended per `length`) with
    the lower face generated from its track's identity stills Poisson-blended in. 'frame' (a
    warp-only generator; 'auto' picks it for one): each frame is its own still, and the flow the
    model predicts from it and the new speech moves that frame's own pixels at full resolution
    (`compositing.warp_frame`): head motion, lighting and detail stay the source's, nothing is
    pasted, and pixels the flow does not reach are the source's exactly. Frames no track owns
    pass through unchanged.
    """
    mode = identity_mode(generator, identity)
    n_audio = audio_lib.num_video_frames(len(wav))
    n_out = output_length(faces.num_frames, n_audio, length)
    identities = ({tid: generator.encode_identity(tr.identity_crops) for tid, tr in faces.tracks.items()}
                  if mode == "track" else {})
    mask = face_mask("lower")
    source = iter_source_frames(faces.path, faces.num_frames, n_out)
    chunk = generator.batch_size * max(1, chunk_frames // generator.batch_size)
    if mode == "frame":
        chunk = generator.batch_size  # the chunk's source frames are held until they are warped
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_out, unit="frame", desc="pass 2/2: re-dubbing")
    try:
        for c0, windows in zip(range(0, n_out, chunk), iter_audio_windows(wav, n_out, chunk)):
            m = len(windows)
            src = source_indices(np.arange(c0, c0 + m), faces.num_frames)
            owners = faces.owner[src]
            if mode == "frame":
                frames = [next(source)[1] for _ in range(m)]
                sel = np.nonzero(owners >= 0)[0]
                if len(sel):
                    stills = np.stack([registration.warp_face(frames[i], faces.transforms[src[i]]) for i in sel])
                    for i, flow in zip(sel.tolist(), generator.flows(windows[sel], stills)):
                        frames[i] = warp_frame(frames[i], flow, faces.transforms[src[i]])
                yield from frames
            else:
                generated = {}
                for tid in np.unique(owners[owners >= 0]):
                    sel = np.nonzero(owners == tid)[0]
                    out = generator.generate(windows[sel], identities[int(tid)])
                    generated.update(zip(sel.tolist(), out))
                for i in range(m):
                    s, frame = next(source)
                    if owners[i] >= 0:
                        frame = paste_face(frame, to_crop_size(generated[i]), faces.transforms[s], mask)
                    yield frame
            if bar is not None:
                bar.update(m)
    finally:
        source.close()
        if bar is not None:
            bar.close()


@dataclasses.dataclass
class RedubResult:
    """What `redub_video` wrote, and how the source was used."""

    path: str
    num_frames: int
    num_source_frames: int
    frames_redubbed: int
    identity_frames: Dict[int, List[int]]
    warnings: List[str]
    seconds: float
    identity: str = "track"  # 'track' (stills pasted) or 'frame' (each frame's own lips moved)


def redub_video(checkpoint, video_path, audio_path, out_path, *, face_index: int = 0, length: str = "audio",
                deblur=None, batch_size: int = 64, progress: bool = True, preset: str = "medium",
                crf: int = 18, identity: str = "auto", on_progress: Optional[ProgressCallback] = None,
                **tracker_kwargs) -> RedubResult:
    """Source video + new speech -> 25 fps H.264 mp4 re-dubbed to the speech (see the module docstring).

    checkpoint: a work directory, a checkpoint step directory or a loaded
    FrameGenerator. Cheap checks (speech, output folder, checkpoint) run
    before the tracking pass. on_progress: optional `(stage, done, total)` callback
    (`generate.report_progress`: 'face tracking', 'generation', 'encoding').
    """

    t0 = time.time()
    output_length(1, 1, length)  # validates the policy
    refuse_overwriting_inputs(out_path, {"--video": video_path, "--audio": audio_path})
    wav = load_speech(audio_path)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        raise MediaError(f"cannot write {out_path}: folder {out_dir} does not exist; create it first")
    probe(video_path)  # unreadable or truncated files fail here, before the checkpoint loads
    generator = checkpoint if isinstance(checkpoint, FrameGenerator) else FrameGenerator.from_checkpoint(
        None if checkpoint is None else os.fspath(checkpoint), deblur_checkpoint=deblur, batch_size=batch_size)
    mode = identity_mode(generator, identity)  # before the tracking pass: a wrong choice fails at once
    faces = track_video(video_path, generator.num_identity_images, face_index, progress,
                        on_progress=on_progress, **tracker_kwargs)
    for note in faces.warnings:
        warnings.warn(note, stacklevel=2)
    n_out = output_length(faces.num_frames, audio_lib.num_video_frames(len(wav)), length)
    with VideoWriter(out_path, audio=fit_audio(wav, n_out), preset=preset, crf=crf) as writer:
        report_progress(on_progress, "generation", 0, n_out)  # the first batch takes a while
        for frame in redub_frames(generator, faces, wav, length=length, progress=progress, identity=mode):
            writer.write(frame)
            report_frames(on_progress, writer.num_frames, n_out, generator.batch_size)
        report_progress(on_progress, "encoding", 0, 1)
    report_progress(on_progress, "encoding", 1, 1)
    owned = faces.owner[source_indices(np.arange(n_out), faces.num_frames)] >= 0
    return RedubResult(path=str(writer.path), num_frames=writer.num_frames, num_source_frames=faces.num_frames,
                       frames_redubbed=int(owned.sum()),
                       identity_frames={tid: tr.identity_frames for tid, tr in faces.tracks.items()},
                       warnings=list(faces.warnings), seconds=time.time() - t0, identity=mode)
