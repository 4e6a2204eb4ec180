"""Faces: detection, 478-point landmarks, tracking (this package's namespace),
registration onto the 112x112 template and compositing back into frames
(`s2v_jax.faces.registration`, `s2v_jax.faces.compositing`).

    from s2v_jax import faces
    dets = faces.detect_faces(rgb)          # from faces.detection
    lm = faces.LandmarkDetector()(rgb)      # from faces.landmarks
"""

from s2v_jax.faces.detection import FaceDetection, box_area, detect_faces, iou  # noqa: F401
from s2v_jax.faces.landmarks import (  # noqa: F401
    CHIN,
    FACE_OVAL,
    FOREHEAD,
    INNER_LIP_PAIRS,
    LEFT_EYE,
    LEFT_EYE_CORNERS,
    LEFT_IRIS,
    LIPS,
    LIPS_INNER,
    LIPS_OUTER,
    MOUTH_CORNERS,
    NOSE,
    NOSE_BRIDGE,
    NOSE_TIP,
    NOSE_WINGS,
    NUM_LANDMARKS,
    REGISTRATION_POINTS,
    RIGHT_EYE,
    RIGHT_EYE_CORNERS,
    RIGHT_IRIS,
    LandmarkDetector,
    box_from_landmarks,
    inter_ocular_distance,
    mouth_opening,
    quiet_native_logs,
    square_roi,
    to_rgb,
)
from s2v_jax.faces.tracking import (  # noqa: F401
    ROI_SCALE_DETECTION,
    ROI_SCALE_LANDMARKS,
    FaceTracker,
    ShotDetector,
    Track,
    color_histogram,
    detect_shot_boundaries,
    largest_track,
    track_faces,
)
