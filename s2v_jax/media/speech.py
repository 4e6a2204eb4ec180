"""Speech as the generator hears it: a checked 16 kHz mono clip and its 12x35
MFCC windows (one per 25 fps frame), computed in chunks so that memory stays
bounded for hours of audio (equal to `audio.audio_windows`)."""

from typing import Iterator, Optional

import numpy as np

from s2v_jax.media import audio as audio_lib


def load_speech(path) -> np.ndarray:
    """Speech for generation: float32 mono 16 kHz [N]; MediaError if unreadable, empty or silent."""
    wav = audio_lib.load_audio(path)
    audio_lib.check_not_silent(wav, path)
    return wav


MFCC_MARGIN_STEPS = 3  # MFCC steps at a segment's start that see its cut (pre-emphasis, padding)


def cut_windows(mfcc: np.ndarray, step0: int, steps: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Windows [F, 12, 35] from the MFCC [12, T] of a segment whose column 0 is global
    step `step0`; `steps` [F, 35] are global steps, and invalid ones (outside the clip) are silence."""
    local = np.clip(steps - step0, 0, mfcc.shape[1] - 1)
    win = np.where(valid[None], mfcc[:, local], np.float32(0.0))
    return np.ascontiguousarray(win.transpose(1, 0, 2))


def iter_audio_windows(wav: np.ndarray, num_frames: Optional[int] = None,
                       chunk_frames: int = 1024) -> Iterator[np.ndarray]:
    """MFCC windows of 16 kHz mono audio, `chunk_frames` video frames at a time: [<=chunk, 12, 35].

    Concatenated, the chunks equal `audio.audio_windows(wav, num_frames)` (to
    float rounding): each chunk's MFCC is computed on an audio segment that
    starts on a 10 ms step boundary a few steps before its first window and
    ends after its last one, so memory stays bounded for any clip length.
    Frames past the end of the audio get silence windows (zeros), as there.
    """
    wav = np.asarray(wav, np.float32).reshape(-1)
    n = wav.size
    if num_frames is None:
        num_frames = audio_lib.num_video_frames(n)
    hop, half = 160, audio_lib.WINDOW_STEPS // 2
    total_steps = 1 + n // hop  # columns of compute_mfcc over the whole clip
    offsets = np.arange(-half, half + 1)
    for f0 in range(0, num_frames, chunk_frames):
        f1 = min(num_frames, f0 + chunk_frames)
        idx = audio_lib.frame_centre_steps(f1)[f0:, None] + offsets[None]  # global steps [m, 35]
        valid = (idx >= 0) & (idx < total_steps)
        if not valid.any():
            yield np.zeros((f1 - f0, audio_lib.NUM_COEFFS, audio_lib.WINDOW_STEPS), np.float32)
            continue
        lo, hi = int(idx[valid].min()), int(idx[valid].max())
        step0 = max(0, lo - MFCC_MARGIN_STEPS)
        a, b = step0 * hop, min(n, (hi + MFCC_MARGIN_STEPS) * hop + 201)
        yield cut_windows(audio_lib.compute_mfcc(wav[a:b]), step0, idx, valid)
