"""Face detection, 478-point landmarks, face tracking and shot boundaries.

Built on MediaPipe (`face_detection` for boxes, `face_mesh` for landmarks) and
OpenCV. Images are RGB uint8 `[H, W, 3]` (`to_rgb` converts grey, RGBA, 16-bit
and float input); boxes are `[4]` float pixels `(x0, y0, x1, y1)`; landmarks are
`[478, 2]` float32 pixels `(x, y)` (468 mesh points + 10 iris points).

"Right" and "left" are the subject's: in a frontal photo the subject's right
eye is on the image's left.

The video side is incremental so a caller can stream frames with bounded
memory: `ShotDetector.update(frame)` flags cuts from HSV colour histograms
(the paper's first data-preparation stage), and `FaceTracker.update(frame)`
follows every face from shot to shot (see `s2v_jax.preprocess`).
"""

import contextlib
import dataclasses
import functools
import os
import sys
import tempfile
from typing import Iterable, List, Optional, Sequence

import cv2
import numpy as np

from s2v_jax.errors import MediaError

# Landmark index groups of the MediaPipe face mesh topology.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (362, 263)  # inner, outer
RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre first; needs refine_landmarks
LEFT_IRIS = (473, 474, 475, 476, 477)
NOSE_BRIDGE = (168, 6, 197, 195)  # top (between the eyes) downwards
NOSE_WINGS = (98, 327)  # right, left alar base
NOSE_TIP = 1
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
MOUTH_CORNERS = (61, 291)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHIN = 152
FOREHEAD = 10
NUM_LANDMARKS = 478

# Registration uses eye corners, the nose bridge and the nostril wings: points
# that do not move with speech. Eyelids (blinks), irises (gaze) and the nose tip
# (it swings sideways with head yaw) are left out; the mouth never takes part.
REGISTRATION_POINTS = RIGHT_EYE_CORNERS + LEFT_EYE_CORNERS + NOSE_BRIDGE + NOSE_WINGS


@contextlib.contextmanager
def quiet_native_logs():
    """Hide what MediaPipe's C++ side prints to stderr (TFLite and absl set-up
    notices, which no environment variable turns off) for the commands' sake.
    Python exceptions still propagate; the hidden text is dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@dataclasses.dataclass
class FaceDetection:
    """One detected face. box: [4] x0,y0,x1,y1 pixels; keypoints: [6, 2] pixels
    (right eye, left eye, nose tip, mouth centre, right ear, left ear)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def area(self) -> float:
        return box_area(self.box)


def box_area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [4] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def to_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any image array -> contiguous RGB uint8 [H, W, 3].

    Accepts [H, W] or [H, W, 1] grey, [H, W, 3] RGB, [H, W, 4] RGBA (alpha
    dropped), uint8 / uint16 (top 8 bits kept) / float in [0, 1].
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)) or min(img.shape[:2]) < 2:
        raise MediaError(f"{name}: expected an image [H, W], [H, W, 3] or [H, W, 4], got shape "
                         f"{img.shape}; pass a decoded picture")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = np.clip(np.nan_to_num(img) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise MediaError(f"{name}: unsupported pixel type {img.dtype}; use uint8, uint16 or float")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(img)


@functools.lru_cache(maxsize=None)
def _face_detection(model_selection: int, min_score: float):
    """One MediaPipe detector per (model, threshold), built on first use and reused."""
    import mediapipe as mp

    return mp.solutions.face_detection.FaceDetection(
        model_selection=model_selection, min_detection_confidence=min_score)


def _run_detector(rgb: np.ndarray, model_selection: int, min_score: float,
                  offset=(0.0, 0.0), scale: float = 1.0) -> List[FaceDetection]:
    h, w = rgb.shape[:2]
    result = _face_detection(model_selection, min_score).process(rgb)
    out = []
    for det in result.detections or []:
        rb = det.location_data.relative_bounding_box
        box = np.array([rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h])
        kps = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints])
        shift = np.asarray(offset, np.float64)
        out.append(FaceDetection(box=box * scale + np.tile(shift, 2), score=float(det.score[0]),
                                 keypoints=kps * scale + shift))
    return out


def _nms(dets: List[FaceDetection], threshold: float = 0.3) -> List[FaceDetection]:
    """Best-first suppression of overlapping boxes. Overlap is intersection over
    the smaller box, so a loose box around a face and its tight box count as one."""
    def overlap(a: FaceDetection, b: FaceDetection) -> float:
        inter = box_area(np.r_[np.maximum(a.box[:2], b.box[:2]), np.minimum(a.box[2:], b.box[2:])])
        return inter / max(min(a.area, b.area), 1e-9)

    keep: List[FaceDetection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(overlap(d, k) <= threshold for k in keep):
            keep.append(d)
    return keep


def detect_faces(image: np.ndarray, min_score: float = 0.5, max_side: int = 1280,
                 models: Sequence[int] = (0, 1), tiles: bool = True) -> List[FaceDetection]:
    """Detect faces in one image; returns detections sorted largest first.

    `models` are MediaPipe's short-range (0: faces filling much of the picture)
    and full-range (1: far faces) detectors; their detections are pooled and
    overlaps suppressed, best score first. Images larger than `max_side` are
    detected on a downscaled copy (the models see 128-192 px anyway). With
    `tiles`, when nothing is found, the full-range model also runs on four
    overlapping 60% tiles, which finds faces too small for a whole-image pass.
    """
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    scale = 1.0
    if max(h, w) > max_side:
        scale = max(h, w) / max_side
        rgb = cv2.resize(rgb, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA)
    sh, sw = rgb.shape[:2]
    dets: List[FaceDetection] = []
    for model in models:
        dets += _run_detector(rgb, model, min_score, scale=scale)
    if not dets and tiles and min(sh, sw) >= 256:
        th, tw = int(sh * 0.6), int(sw * 0.6)
        for y0 in (0, sh - th):
            for x0 in (0, sw - tw):
                tile = np.ascontiguousarray(rgb[y0:y0 + th, x0:x0 + tw])
                dets += _run_detector(tile, 1, min_score, offset=(x0 * scale, y0 * scale), scale=scale)
    return sorted(_nms(dets), key=lambda d: -d.area)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Tight [4] box around [N, 2] landmarks."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    return np.array([lo[0], lo[1], hi[0], hi[1]], np.float64)


def square_roi(box: np.ndarray, scale: float) -> np.ndarray:
    """Square [4] region centred on `box`, side = scale * its longer side."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = scale * max(box[2] - box[0], box[3] - box[1]) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float64)


class LandmarkDetector:
    """MediaPipe face mesh for one face: `[478, 2]` float32 pixel landmarks or None.

    `static_image_mode=True` detects afresh on every call (photos);
    `False` tracks from call to call (video, one instance per face track: feed
    it consecutive frames of the same face). With `roi`, the mesh runs on that
    square region resampled to `roi_size` pixels, so small or off-centre faces
    are seen at a good size and a multi-face picture is reduced to one face;
    the tracker re-centres the region on the face every frame, which keeps the
    mesh's own tracking state valid in region coordinates.
    """

    def __init__(self, static_image_mode: bool = True, refine_landmarks: bool = True,
                 roi_size: int = 256, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        import mediapipe as mp

        self.roi_size = roi_size
        self.num_points = NUM_LANDMARKS if refine_landmarks else 468
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image_mode, max_num_faces=1,
            refine_landmarks=refine_landmarks,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)

    def __call__(self, image: np.ndarray, roi: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        rgb = to_rgb(image)
        origin, scale = np.zeros(2), 1.0
        if roi is not None:
            rgb, origin, scale = self._crop(rgb, roi)
        result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        pts = np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark])
        return (origin + pts * scale).astype(np.float32)

    def _crop(self, rgb: np.ndarray, roi: np.ndarray):
        """The square region (zero-padded past the image edges) at roi_size px, its
        top-left corner and image px per region px. INTER_AREA when shrinking, so
        a face in a 4000 px photo does not alias."""
        x0, y0 = int(np.floor(roi[0])), int(np.floor(roi[1]))
        side = max(2, int(np.ceil(roi[2] - roi[0])))
        h, w = rgb.shape[:2]
        sub = rgb[max(y0, 0):max(0, min(y0 + side, h)), max(x0, 0):max(0, min(x0 + side, w))]
        if sub.size == 0:
            sub = np.zeros((side, side, 3), np.uint8)
        else:
            top, left = max(0, -y0), max(0, -x0)
            sub = cv2.copyMakeBorder(sub, top, side - top - sub.shape[0], left, side - left - sub.shape[1],
                                     cv2.BORDER_CONSTANT, value=0)
        interp = cv2.INTER_AREA if side > self.roi_size else cv2.INTER_LINEAR
        view = cv2.resize(sub, (self.roi_size, self.roi_size), interpolation=interp)
        return view, np.array([x0, y0], np.float64), side / self.roi_size

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
