"""MediaPipe face-mesh landmarks: 478 points per face, their index groups,
and image/box helpers shared by detection, tracking and registration.

Images are RGB uint8 `[H, W, 3]` (`to_rgb` converts grey, RGBA, 16-bit and
float input); boxes are `[4]` float pixels `(x0, y0, x1, y1)`; landmarks are
`[478, 2]` float32 pixels `(x, y)` (468 mesh points + 10 iris points).
"Right" and "left" are the subject's: in a frontal photo the subject's right
eye is on the image's left.
"""

import contextlib
import os
import sys
from typing import Optional

import cv2
import numpy as np

from s2v_jax.errors import MediaError
from s2v_jax.faces.backend import mediapipe

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
LIPS = tuple(LIPS_OUTER) + tuple(LIPS_INNER)  # the 40 lip points of LMD (evaluation.metrics)
MOUTH_CORNERS = (61, 291)
INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))  # (upper, lower) inner-lip points: the mouth's opening
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHIN = 152
FOREHEAD = 10
NUM_LANDMARKS = 478

# Registration uses eye corners, the nose bridge and the nostril wings: points
# that do not move with speech. Eyelids (blinks), irises (gaze) and the nose tip
# (it swings sideways with head yaw) are left out; the mouth never takes part.
REGISTRATION_POINTS = RIGHT_EYE_CORNERS + LEFT_EYE_CORNERS + NOSE_BRIDGE + NOSE_WINGS


def inter_ocular_distance(landmarks) -> np.ndarray:
    """Distance between the eye centres (midpoints of each eye's two corners): [..., 478, 2] -> [...]."""
    lm = np.asarray(landmarks, np.float64)
    right = lm[..., list(RIGHT_EYE_CORNERS), :].mean(axis=-2)
    left = lm[..., list(LEFT_EYE_CORNERS), :].mean(axis=-2)
    return np.linalg.norm(right - left, axis=-1)


def mouth_opening(landmarks) -> np.ndarray:
    """Inner-lip gap / eye-centre distance per frame: [..., 478, 2] -> [...] (NaN where the face is missing)."""
    lm = np.asarray(landmarks, np.float64)
    upper = lm[..., [u for u, _ in INNER_LIP_PAIRS], :]
    lower = lm[..., [low for _, low in INNER_LIP_PAIRS], :]
    gap = np.linalg.norm(upper - lower, axis=-1).mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gap / inter_ocular_distance(lm)


def native_logs_shown() -> bool:
    """`s2v --verbose` (or S2V_VERBOSE=1): let MediaPipe/TFLite's native logging through."""
    return os.environ.get("S2V_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def quiet_native_logs():
    """Hide what MediaPipe's C++ side prints to stderr (TFLite and absl set-up
    notices such as `W0000 ... inference_feedback_manager`, which no
    environment variable turns off) by pointing file descriptor 2 at the null
    device for the duration. Every MediaPipe call of the library runs inside
    it; `native_logs_shown()` turns it off. Python exceptions still propagate."""
    if native_logs_shown():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


MIN_IMAGE_SIDE = 16  # pixels: below this no detector can find a face


def to_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any image array -> contiguous RGB uint8 [H, W, 3].

    Accepts [H, W] or [H, W, 1] grey, [H, W, 3] RGB, [H, W, 4] RGBA (alpha
    dropped), uint8 / uint16 (top 8 bits kept) / float in [0, 1].
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim in (2, 3) and (img.ndim == 2 or img.shape[2] in (3, 4)) and min(img.shape[:2]) < MIN_IMAGE_SIDE:
        raise MediaError(f"{name}: the picture is only {img.shape[1]}x{img.shape[0]} pixels, too small to hold a "
                         f"face; give a photo at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} (a face of 64 px or more)")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
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
        mp = mediapipe()
        self.roi_size = roi_size
        self.num_points = NUM_LANDMARKS if refine_landmarks else 468
        with quiet_native_logs():
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
        with quiet_native_logs():
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
            with quiet_native_logs():
                self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
