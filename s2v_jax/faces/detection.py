"""Face boxes: MediaPipe face detection (short- and full-range models, tiled
for small faces), with non-maximum suppression across models and tiles."""

import dataclasses
import functools
from typing import List, Sequence

import cv2
import numpy as np

from s2v_jax.faces.backend import mediapipe
from s2v_jax.faces.landmarks import quiet_native_logs, to_rgb


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


@functools.lru_cache(maxsize=None)
def _face_detection(model_selection: int, min_score: float):
    """One MediaPipe detector per (model, threshold), built on first use and reused."""
    mp = mediapipe()
    with quiet_native_logs():
        return mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=min_score)


def _run_detector(rgb: np.ndarray, model_selection: int, min_score: float,
                  offset=(0.0, 0.0), scale: float = 1.0) -> List[FaceDetection]:
    h, w = rgb.shape[:2]
    detector = _face_detection(model_selection, min_score)
    with quiet_native_logs():
        result = detector.process(rgb)
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
