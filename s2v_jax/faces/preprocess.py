"""Video -> face tracks of registered 112x112 crops (+ the audio's MFCC windows).

The paper's data preparation (section 2) minus active-speaker detection:
shot boundaries from colour histograms, face detection and tracking, 478
landmarks per frame, registration of each frame onto the canonical face by a
similarity fitted on eye and nose landmarks, smoothed over time.

Frames are streamed from `video.iter_frames` at 25 fps and only the last few
are kept: registration transforms are smoothed with a Gaussian of
`smoothing_sigma` frames, so frame i is cut once frame i + 3 sigma has been
tracked (or its track has ended). Memory is that short frame buffer plus the
output (37 kB of crop per track frame).
"""

import collections
import dataclasses
from typing import Dict, List, Optional

import numpy as np

from s2v_jax import faces
from s2v_jax.errors import MediaError
from s2v_jax.faces import registration

# Shortest face track kept, in 25 fps frames (0.48 s: more than one 0.35 s audio window).
MIN_TRACK_FRAMES = 12
SMOOTHING_SIGMA = 2.0  # frames


@dataclasses.dataclass
class FaceTrack:
    """One face through frames [start_frame, end_frame) (25 fps indices).

    crops: uint8 [T, S, S, 3] registered RGB crops; landmarks: float32
    [T, 478, 2] in crop pixels; transforms: float32 [T, 2, 3] frame -> crop
    (smoothed); boxes: float32 [T, 4] tight landmark boxes in frame pixels;
    residuals: float32 [T] mean distance (crop px) of the registration points
    from the template, a per-frame quality measure (pose away from frontal
    raises it).
    """

    track_id: int
    start_frame: int
    end_frame: int
    crops: np.ndarray
    landmarks: np.ndarray
    transforms: np.ndarray
    boxes: np.ndarray
    residuals: np.ndarray

    def __len__(self) -> int:
        return self.end_frame - self.start_frame

    def frame_landmarks(self) -> np.ndarray:
        """Landmarks in frame pixels: float32 [T, 478, 2]."""
        inv = np.stack([registration.invert_similarity(m) for m in self.transforms])
        return registration.transform_points(inv, self.landmarks).astype(np.float32)


@dataclasses.dataclass
class PreprocessedVideo:
    """Face tracks of a video with the MFCC window of each of its 25 fps frames.

    mfcc_windows: float32 [F, 12, 35], window k centred on time k / 25 s
    (audio.mfcc_windows); num_frames: F, the frames decoded; no_face_reason:
    why `tracks` is empty (None when it is not).
    """

    tracks: List[FaceTrack]
    mfcc_windows: np.ndarray
    info: object  # video.VideoInfo
    num_frames: int
    shot_boundaries: List[int]
    no_face_reason: Optional[str] = None


class _TrackBuilder:
    """Registers the frames of one face track, `radius` frames behind the tracker."""

    def __init__(self, track_id: int, start: int, size: int, sigma: float):
        self.track_id, self.start, self.size, self.sigma = track_id, start, size, sigma
        self.radius = int(np.ceil(3 * sigma)) if sigma > 0 else 0
        self.params: List[np.ndarray] = []  # raw (log scale, angle, cx, cy) per frame
        self.frame_landmarks: List[Optional[np.ndarray]] = []
        self.boxes: List[np.ndarray] = []
        self.done = 0  # frames registered so far
        self.crops, self.landmarks, self.transforms, self.residuals = [], [], [], []

    def add(self, landmarks: np.ndarray, box: np.ndarray) -> None:
        p = registration.similarity_params(registration.registration_transform(landmarks, self.size),
                                           self.size)
        if self.params:  # keep the angle continuous so smoothing never averages across +-pi
            p[1] = self.params[-1][1] + (p[1] - self.params[-1][1] + np.pi) % (2 * np.pi) - np.pi
        self.params.append(p)
        self.frame_landmarks.append(landmarks)
        self.boxes.append(box)

    def register(self, frames: Dict[int, np.ndarray], ended: bool) -> None:
        """Cut every frame whose smoothing window is complete (all of them once ended)."""
        n = len(self.params)
        last = n - 1 if ended else n - 1 - self.radius
        while self.done <= last:
            i = self.done
            lo, hi = max(0, i - self.radius), min(n, i + self.radius + 1)
            window = np.asarray(self.params[lo:hi])
            p = registration.smooth_params_at(window, i - lo, self.sigma) if self.sigma > 0 else window[i - lo]
            m = registration.similarity_from_params(p, self.size)
            lm = registration.transform_points(m, self.frame_landmarks[i])
            self.crops.append(registration.warp_face(frames[self.start + i], m, self.size))
            self.landmarks.append(lm.astype(np.float32))
            self.transforms.append(m.astype(np.float32))
            err = registration.registration_points(lm) - registration.template(self.size)
            self.residuals.append(np.float32(np.linalg.norm(err, axis=1).mean()))
            self.frame_landmarks[i] = None  # no longer needed
            self.done += 1

    def result(self) -> FaceTrack:
        n = len(self.crops)
        return FaceTrack(
            track_id=self.track_id, start_frame=self.start, end_frame=self.start + n,
            crops=np.stack(self.crops), landmarks=np.stack(self.landmarks),
            transforms=np.stack(self.transforms), boxes=np.asarray(self.boxes, np.float32),
            residuals=np.asarray(self.residuals, np.float32))


class TrackExtractor:
    """Streams a video through faces.FaceTracker and registers each track.

    `run()` returns the tracks; afterwards `num_frames`, `shot_boundaries` and
    `no_face_reason()` describe what was seen.
    """

    def __init__(self, video_path, min_track_frames: int = MIN_TRACK_FRAMES,
                 max_frames: Optional[int] = None, progress: bool = False,
                 smoothing_sigma: float = SMOOTHING_SIGMA, size: int = registration.CROP_SIZE,
                 **tracker_kwargs):
        self.video_path = str(video_path)
        self.max_frames = max_frames
        self.progress = progress
        self.size = size
        self.sigma = smoothing_sigma
        self.tracker = faces.FaceTracker(min_track_frames=min_track_frames, **tracker_kwargs)
        self.num_frames = 0

    @property
    def shot_boundaries(self) -> List[int]:
        return list(self.tracker.shot_boundaries)

    def run(self) -> List[FaceTrack]:
        from s2v_jax.media import video

        frames_iter = video.iter_frames(self.video_path, max_frames=self.max_frames)
        if self.progress:
            from tqdm import tqdm

            total = self.max_frames or video.probe(self.video_path).num_frames
            frames_iter = tqdm(frames_iter, total=total, unit="frame", desc="faces")
        radius = int(np.ceil(3 * self.sigma)) if self.sigma > 0 else 0
        buffer = collections.OrderedDict()  # frame index -> frame, the last radius + 2
        builders: Dict[int, _TrackBuilder] = {}
        done: List[FaceTrack] = []
        for t, frame in enumerate(frames_iter):
            self.num_frames = t + 1
            ended = {tr.track_id for tr in self.tracker.update(frame)}
            buffer[t] = frame
            while len(buffer) > radius + 2:
                buffer.popitem(last=False)
            active = {tr.track_id: tr for tr in self.tracker.active}
            for tid in [tid for tid in builders if tid not in active]:
                builder = builders.pop(tid)
                if tid in ended:  # long enough: finish it; else the tracker dropped it
                    builder.register(buffer, ended=True)
                    done.append(builder.result())
            for tid, tr in active.items():
                builder = builders.setdefault(
                    tid, _TrackBuilder(tid, tr.start_frame, self.size, self.sigma))
                builder.add(tr.landmarks[-1], tr.boxes[-1])
                builder.register(buffer, ended=False)
        final = {tr.track_id for tr in self.tracker.finish()}
        for tid, builder in builders.items():
            if tid in final:
                builder.register(buffer, ended=True)
                done.append(builder.result())
        return sorted(done, key=lambda tr: (tr.start_frame, tr.track_id))

    def no_face_reason(self) -> str:
        """Why a run gave no track, for logs and skip records."""
        if self.num_frames == 0:
            return f"no frames could be decoded from {self.video_path}"
        if self.tracker.detections == 0:
            return f"no face found in any of the {self.num_frames} frames of {self.video_path}"
        return (f"{self.tracker.detections} face(s) found in {self.video_path} but no track reached "
                f"min_track_frames={self.tracker.min_track_frames} frames")


def extract_tracks(video_path, min_track_frames: int = MIN_TRACK_FRAMES,
                   max_frames: Optional[int] = None, progress: bool = False,
                   **kwargs) -> List[FaceTrack]:
    """Face tracks of a video, by start frame (empty when no face is found).

    kwargs: smoothing_sigma, size, and faces.FaceTracker's detect_every,
    max_faces, iou_threshold, min_face_size, shot_threshold.
    """
    return TrackExtractor(video_path, min_track_frames, max_frames, progress, **kwargs).run()


def preprocess_video(video_path, min_track_frames: int = MIN_TRACK_FRAMES,
                     max_frames: Optional[int] = None, progress: bool = False,
                     **kwargs) -> PreprocessedVideo:
    """Face tracks plus the MFCC window of every 25 fps frame of a video.

    Raises MediaError for an unreadable video or one without an audio track
    (checked before the slow face pass). A video with no usable face gives
    zero tracks and `no_face_reason`.
    """
    from s2v_jax.media import audio, video

    info = video.probe(video_path)
    if not info.has_audio:
        raise MediaError(f"{video_path} has no audio track; training and re-dubbing need the "
                         f"speech, so use a video with sound")
    wav = audio.load_audio(video_path)
    extractor = TrackExtractor(video_path, min_track_frames, max_frames, progress, **kwargs)
    tracks = extractor.run()
    windows = audio.mfcc_windows(audio.compute_mfcc(wav), extractor.num_frames)
    return PreprocessedVideo(
        tracks=tracks, mfcc_windows=windows, info=info, num_frames=extractor.num_frames,
        shot_boundaries=extractor.shot_boundaries,
        no_face_reason=None if tracks else extractor.no_face_reason())
