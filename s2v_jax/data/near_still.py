"""Near-still mouths: real frames with their motion shrunk toward one still frame (numpy / OpenCV).

A lip-sync judge trained only on real video against shifted audio learns to read
*when* the mouth moves, not *how much*: a mouth that barely moves in time with
the sound (what a small generator warping a closed-mouth photo produces) can
score above real speech. The hardened judge (`configs/syncnet_real.py`,
`data.near_still`) is shown such mouths as windows that carry no sync:

    shrink_motion(frames, still, alpha)

warps `still` toward each frame along the dense optical flow between them,
scaled by `alpha` (0: the still frame itself, frozen; 1: the frame), as the
warp-only generator moves a photo's own pixels; no cross-fade, so no ghosting
tells a shrunk window from a real one. `closest_to_closed` picks the still as
the protocol of `s2v evaluate --still closed` does: the frame with the least
inner-lip gap.
"""

from typing import Optional

import cv2
import numpy as np

from s2v_jax.faces import mouth_opening

_DIS = []  # one DIS optical-flow object per process ('medium': 1.8 ms a 112x112 pair, Farneback's error at half its time)


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow f [H, W, 2] (dx, dy) with a(p) ~ b(p + f(p)), on grey images."""
    if not _DIS:
        _DIS.append(cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM))
    return _DIS[0].calc(a, b, None)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def shrink_motion(frames: np.ndarray, still: np.ndarray, alpha: float, from_row: int = 0) -> np.ndarray:
    """uint8 [n, S, S, 3] frames -> the still frame [S, S, 3] warped a fraction `alpha` of the way to
    each of them: out_i(p) = still(p + alpha * f_i(p)), f_i the flow with frames_i(p) ~ still(p + f_i(p)).
    alpha 0 returns n copies of `still` (a frozen mouth); alpha 1, the frames as the flow explains them.
    `from_row`: the flow is found and applied from this row down only (the judge's lower face), the
    rows above are the still's."""
    frames = np.asarray(frames)
    still = np.asarray(still)
    if frames.ndim != 4 or still.shape != frames.shape[1:]:
        raise ValueError(f"shrink_motion needs frames [n, S, S, 3] and a still [S, S, 3], got {frames.shape} "
                         f"and {still.shape}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"shrink_motion's alpha is a fraction of the motion in [0, 1], not {alpha}")
    if alpha == 0.0:
        return np.repeat(still[None], len(frames), axis=0)
    h, w = still.shape[:2]
    top = int(np.clip(from_row, 0, h - 8))
    gy, gx = np.mgrid[top:h, 0:w].astype(np.float32)
    s_grey = _grey(still[top:])
    out = np.repeat(still[None], len(frames), axis=0)
    for i, f in enumerate(frames):
        flow = _flow(_grey(f[top:]), s_grey)
        out[i, top:] = cv2.remap(still, gx + alpha * flow[..., 0], gy + alpha * flow[..., 1], cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    return out


def closest_to_closed(landmarks: Optional[np.ndarray], candidates: np.ndarray) -> int:
    """The candidate frame index with the least inner-lip gap (the first candidate without landmarks)."""
    candidates = np.asarray(candidates)
    if landmarks is None or len(candidates) == 1:
        return int(candidates[0])
    gap = mouth_opening(np.asarray(landmarks)[candidates])
    if not np.isfinite(gap).any():
        return int(candidates[0])
    return int(candidates[int(np.nanargmin(gap))])
