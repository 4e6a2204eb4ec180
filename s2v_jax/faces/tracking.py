"""Following faces through a video: HSV shot boundaries (the paper's first
data-preparation stage) and `FaceTracker`, which follows every face from shot
to shot frame by frame, with bounded memory (see `s2v_jax.faces.preprocess`)."""

import dataclasses
from typing import Iterable, List, Optional, Sequence

import cv2
import numpy as np

from s2v_jax.faces.detection import FaceDetection, box_area, detect_faces, iou
from s2v_jax.faces.landmarks import LandmarkDetector, box_from_landmarks, square_roi, to_rgb


def color_histogram(frame: np.ndarray, size: int = 64) -> np.ndarray:
    """Normalised hue-saturation-value histogram [16 * 8 * 4] of a downscaled frame."""
    small = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(hist.sum(), 1.0)


class ShotDetector:
    """Flags shot cuts from the Bhattacharyya distance of consecutive HSV histograms.

    `update(frame)` is True when `frame` starts a new shot (never for the first
    frame). A distance above `threshold` is a cut; gradual lighting changes and
    head motion stay well below it.
    """

    def __init__(self, threshold: float = 0.35):
        self.threshold = threshold
        self._prev: Optional[np.ndarray] = None
        self.last_distance = 0.0

    def update(self, frame: np.ndarray) -> bool:
        hist = color_histogram(frame).astype(np.float32)
        cut = False
        if self._prev is not None:
            self.last_distance = float(cv2.compareHist(self._prev, hist, cv2.HISTCMP_BHATTACHARYYA))
            cut = self.last_distance > self.threshold
        self._prev = hist
        return cut


def detect_shot_boundaries(frames: Iterable[np.ndarray], threshold: float = 0.35) -> List[int]:
    """Indices of the frames that start a new shot (frame 0 excluded)."""
    detector = ShotDetector(threshold)
    return [i for i, frame in enumerate(frames) if detector.update(frame)]

# Region around a face handed to the mesh, as a multiple of the face box's longer
# side: landmark boxes span forehead to chin, detector boxes are tighter.
ROI_SCALE_LANDMARKS = 1.6
ROI_SCALE_DETECTION = 2.0


@dataclasses.dataclass
class Track:
    """One face followed through consecutive frames of one shot.

    landmarks: per frame [478, 2] float32 pixels; boxes: per frame [4] (tight
    landmark box). Frames `start_frame` to `end_frame` (exclusive).
    """

    track_id: int
    start_frame: int
    landmarks: List[np.ndarray] = dataclasses.field(default_factory=list)
    boxes: List[np.ndarray] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.landmarks)

    @property
    def end_frame(self) -> int:
        return self.start_frame + len(self.landmarks)

    @property
    def median_area(self) -> float:
        return float(np.median([box_area(b) for b in self.boxes])) if self.boxes else 0.0


def largest_track(tracks: Sequence) -> Optional[object]:
    """The track whose face is largest (median box area), or None for no tracks.

    Works for `Track` and anything with a `boxes` sequence (e.g. preprocess.FaceTrack).
    """
    return max(tracks, key=lambda t: float(np.median([box_area(b) for b in t.boxes])), default=None)


class FaceTracker:
    """Incremental multi-face tracker: call `update(frame)` once per frame, then `finish()`.

    A face track starts where the detector finds a face no track covers (IoU
    below `iou_threshold`), on the first frame of every shot and every
    `detect_every` frames; it then follows the face with a tracking-mode mesh
    on a region re-centred each frame, and ends when the mesh loses the face,
    at a shot cut, or when it runs into an older track. Tracks shorter than
    `min_track_frames` are dropped. Counters (`frames_seen`, `detections`,
    `short_tracks`, `shot_boundaries`) let callers explain an empty result.
    """

    def __init__(self, min_track_frames: int = 12, detect_every: int = 5, max_faces: int = 4,
                 iou_threshold: float = 0.3, min_face_size: float = 20.0,
                 shot_threshold: float = 0.35, refine_landmarks: bool = True):
        self.min_track_frames = min_track_frames
        self.detect_every = max(1, detect_every)
        self.max_faces = max_faces
        self.iou_threshold = iou_threshold
        self.min_face_size = min_face_size
        self.refine_landmarks = refine_landmarks
        self.shot_detector = ShotDetector(shot_threshold)
        self.active: List[Track] = []
        self.shot_boundaries: List[int] = []
        self.frames_seen = 0
        self.detections = 0
        self.short_tracks = 0
        self._meshes = {}
        self._next_id = 0
        self._last_detection = None
        self._rounds = 0

    def _end(self, track: Track) -> List[Track]:
        self.active.remove(track)
        self._meshes.pop(track.track_id).close()
        if len(track) >= self.min_track_frames:
            return [track]
        self.short_tracks += 1
        return []

    def update(self, frame: np.ndarray) -> List[Track]:
        """Process the next frame (RGB); returns the tracks that ended before it."""
        rgb = to_rgb(frame)
        t = self.frames_seen
        self.frames_seen += 1
        finished: List[Track] = []
        new_shot = self.shot_detector.update(rgb)
        if new_shot:
            self.shot_boundaries.append(t)
            for track in list(self.active):
                finished += self._end(track)

        for track in list(self.active):
            lm = self._meshes[track.track_id](rgb, square_roi(track.boxes[-1], ROI_SCALE_LANDMARKS))
            box = None if lm is None else box_from_landmarks(lm)
            if box is None or max(box[2] - box[0], box[3] - box[1]) < self.min_face_size / 2:
                finished += self._end(track)
                continue
            track.landmarks.append(lm)
            track.boxes.append(box)
        # Two tracks on one face: the mesh of the younger one drifted; end it.
        for track in sorted(self.active, key=lambda tr: -tr.track_id):
            if any(o is not track and o.track_id < track.track_id
                   and iou(o.boxes[-1], track.boxes[-1]) > 0.5 for o in self.active):
                finished += self._end(track)

        due = self._last_detection is None or t - self._last_detection >= self.detect_every
        if (new_shot or due) and len(self.active) < self.max_faces:
            self._last_detection = t
            # Alternate the short- and full-range detectors between rounds: half the
            # cost of running both, and a far face is still picked up a round later.
            model = self._rounds % 2
            self._rounds += 1
            for det in detect_faces(rgb, models=(model,), tiles=False):
                if len(self.active) >= self.max_faces:
                    break
                size = max(det.box[2] - det.box[0], det.box[3] - det.box[1])
                if size < self.min_face_size or any(
                        iou(det.box, tr.boxes[-1]) >= self.iou_threshold for tr in self.active):
                    continue
                self.detections += 1
                self._start(rgb, det, t)
        return finished

    def _start(self, rgb: np.ndarray, det: FaceDetection, t: int) -> None:
        mesh = LandmarkDetector(static_image_mode=False, refine_landmarks=self.refine_landmarks)
        lm = mesh(rgb, square_roi(det.box, ROI_SCALE_DETECTION))
        if lm is None:
            mesh.close()
            return
        box = box_from_landmarks(lm)
        if iou(box, det.box) < 0.2:  # the mesh settled on another face than the detector's
            mesh.close()
            return
        track = Track(track_id=self._next_id, start_frame=t, landmarks=[lm], boxes=[box])
        self._next_id += 1
        self.active.append(track)
        self._meshes[track.track_id] = mesh

    def finish(self) -> List[Track]:
        """End all tracks (end of video); returns those long enough."""
        finished: List[Track] = []
        for track in list(self.active):
            finished += self._end(track)
        return finished


def track_faces(frames: Iterable[np.ndarray], **tracker_kwargs) -> List[Track]:
    """All face tracks (long enough) in a sequence of RGB frames, by start frame."""
    tracker = FaceTracker(**tracker_kwargs)
    tracks: List[Track] = []
    for frame in frames:
        tracks += tracker.update(frame)
    tracks += tracker.finish()
    return sorted(tracks, key=lambda tr: (tr.start_frame, tr.track_id))
