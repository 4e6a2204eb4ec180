"""The sync expert's inputs for one frame or a whole clip (numpy only).

For video frame k (25 fps), both covering 0.2 s centred on k / 25 s:
- video: frames k-2..k+2 of the registered 112x112 crop, lower face only
  (rows `lower_face_top`..111: nose tip to below the chin), grey (or RGB),
  stacked channel-wise: uint8 `[112 - top, 112, 5]` (`[.., 15]` RGB); frames
  before the track's first or after its last are the edge frame repeated;
- audio: the middle 20 of the 35 MFCC steps of frame k's window (columns
  7..26, steps centre-10..centre+9 of audio.mfcc_windows): `[12, 20, 1]`.
"""

import cv2
import numpy as np

from s2v_jax.errors import DataError

CROP = 112
WINDOW_STEPS = 35  # MFCC steps of a generator window (audio.WINDOW_STEPS)
AUDIO_STEPS = 20  # 0.2 s of MFCC

def audio_input(window: np.ndarray) -> np.ndarray:
    """The expert's audio of one frame or many: MFCC windows [..., 12, 35] -> [..., 12, 20, 1]."""
    w = np.asarray(window, np.float32)
    lo = WINDOW_STEPS // 2 - AUDIO_STEPS // 2  # column 7: step centre-10
    return w[..., lo:lo + AUDIO_STEPS][..., None]


def frame_indices(centre, num_frames: int, count: int = 5) -> np.ndarray:
    """Track frames centre-2..centre+2 (for count 5), clipped to [0, num_frames - 1]: [..., count]."""
    half = count // 2
    idx = np.asarray(centre)[..., None] + np.arange(-half, count - half)
    return np.clip(idx, 0, num_frames - 1)


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights of R, G, B (as OpenCV); they sum to 1


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [..., 3] -> uint8 luma [...] (LUMA's weights)."""
    y = rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


def video_input(frames: np.ndarray, lower_face_top: int, grayscale: bool) -> np.ndarray:
    """Five 112x112 RGB crops uint8 [5, 112, 112, 3] -> the stacked lower face [112 - top, 112, 5 (15)]."""
    lower = np.asarray(frames)[:, lower_face_top:]
    if grayscale:
        return np.ascontiguousarray(to_grey(lower).transpose(1, 2, 0))
    return np.ascontiguousarray(lower.transpose(1, 2, 0, 3).reshape(lower.shape[1], lower.shape[2], -1))


def resize_crops(frames: np.ndarray, size: int = CROP) -> np.ndarray:
    """uint8 [T, S, S, 3] -> [T, size, size, 3] (the v201 decoder's 109x109 frames cover the same crop)."""
    frames = np.asarray(frames)
    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames])


def shift_candidates(centre: int, num_frames: int, min_offset: int, max_offset: int) -> np.ndarray:
    """Shifts s with min_offset <= |s| <= max_offset and 0 <= centre + s < num_frames
    (falling back to any non-zero shift inside the track when the track is short)."""
    s = np.arange(-max_offset, max_offset + 1)
    s = s[(np.abs(s) >= max(1, min_offset)) & (centre + s >= 0) & (centre + s < num_frames)]
    if len(s) == 0:
        s = np.arange(-centre, num_frames - centre)
        s = s[s != 0]
    if len(s) == 0:
        raise DataError(f"a {num_frames}-frame track has no shifted audio for the sync expert (needs >= 2 frames)")
    return s
