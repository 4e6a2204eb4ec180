"""The measures of the field, with exact definitions (all per clip, 25 fps).

Landmarks are MediaPipe face-mesh points `[T, 478, 2]` in pixels of the
registered crop (NaN rows where no face was found); a frame without
landmarks is left out of every landmark measure.

Inter-ocular distance (IOD) of a frame: the distance between the two eye
centres, each the midpoint of that eye's outer and inner corner (landmarks
33/133 for the subject's right eye, 362/263 for the left).

LMD (landmark distance, Chen et al. 2018, normalised here): for frame t,
    LMD_t = mean over the 40 lip points i (faces.LIPS_OUTER + faces.LIPS_INNER)
            of || g_t,i - r_t,i ||_2 / IOD(r_t),
g the generated frame's landmarks, r the real frame's, both in the same
registered crop (no further alignment: registration already put both faces
on the canonical template). LMD of a clip = mean of LMD_t over frames where
both faces were found. Identical landmarks give exactly 0. Unitless: 0.05
means the lips are off by 5% of the eye distance on average.

Mouth opening of a frame: the mean vertical-ish gap between three pairs of
inner-lip points (82/87, 13/14, 312/317: left of centre, centre, right of
centre), divided by the frame's IOD.

Audio envelope: for video frame k (time k / fps), the RMS of the 16 kHz
waveform over the 40 ms (640 samples) centred on k / fps, zero outside the
clip: the same centring as the frame's MFCC window (s2v_jax.media.audio).

Landmark sync: the correlation between the audio envelope and the mouth
opening at offsets d = -15..15 frames, pairing mouth frame k with envelope
frame k - d. Both series are high-passed first (minus their 9-frame centred
moving average) and z-scored; c(d) = sum over the overlap of
z_env[k - d] z_mouth[k] / N, N the frames with a face (c(0) is their Pearson
correlation). Sign convention: positive d = audio leads (the sound comes d
frames before the mouth movement it belongs to); advancing the audio track
by d frames (dropping its first d * 640 samples) adds d to the offset. The
landmark AV offset is the d of highest correlation. A mouth whose
high-passed opening varies by less than 0.005 IOD (std) counts as still and
has no sync value.

SyncNet measures (Chung & Zisserman 2016; LSE-D/LSE-C as Wav2Lip reports
them): with per-frame video embeddings v_k and audio embeddings a_k of a sync
expert, D(d) = mean over frames k of || v_k - a_(k-d) ||_2 for d = -15..15
(same sign convention as above); LSE-D = min_d D(d), LSE-C = median_d D(d) -
min_d D(d), AV offset = argmin_d D(d). `edge='valid'` (default) averages over
the frames where k - d is inside the clip; `edge='zeros'` reproduces
syncnet_python's `calc_pdist`, which pads the audio embeddings with zero
vectors and averages over all frames.
"""

from typing import Dict, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from s2v_jax import faces
from s2v_jax.train import metrics as image_metrics

MAX_OFFSET = 15  # frames, both directions (SyncNet's +-15 search)
MOUTH_POINTS = tuple(faces.LIPS)  # 40 lip landmarks
INNER_LIP_PAIRS = faces.INNER_LIP_PAIRS  # (upper, lower) inner-lip points
RIGHT_EYE_CORNERS = tuple(faces.RIGHT_EYE_CORNERS)  # outer, inner
LEFT_EYE_CORNERS = tuple(faces.LEFT_EYE_CORNERS)  # inner, outer
ENVELOPE_WINDOW_S = 0.04  # one 25 fps frame
MIN_FRAMES = 10  # frames with a face needed for a correlation
MIN_MOUTH_MOTION = 0.005  # std of the high-passed opening below which the mouth counts as still
DETREND_FRAMES = 9  # high-pass: minus the 0.36 s moving average (chosen on the real clips, see tests)


# ---------------------------------------------------------------- landmarks

inter_ocular_distance = faces.inter_ocular_distance  # the eye-centre distance (the module docstring)


def lmd_per_frame(generated, real) -> np.ndarray:
    """Normalised mouth-landmark distance of each frame: [T, 478, 2] x2 -> [T] (NaN where either face is missing)."""
    g = np.asarray(generated, np.float64)
    r = np.asarray(real, np.float64)
    if g.shape != r.shape or g.ndim != 3:
        raise ValueError(f"lmd needs landmarks of one shape [T, 478, 2], got {g.shape} and {r.shape}")
    idx = list(MOUTH_POINTS)
    dist = np.linalg.norm(g[:, idx] - r[:, idx], axis=-1).mean(axis=-1)
    return dist / inter_ocular_distance(r)


def lmd(generated, real) -> float:
    """Mean of `lmd_per_frame` over frames where both faces were found (NaN if there is none)."""
    per_frame = lmd_per_frame(generated, real)
    ok = np.isfinite(per_frame)
    return float(per_frame[ok].mean()) if ok.any() else float("nan")


mouth_opening = faces.mouth_opening  # inner-lip gap / IOD per frame: [T, 478, 2] -> [T]


def stack_landmarks(per_frame: Sequence[Optional[np.ndarray]], num_points: int = faces.NUM_LANDMARKS) -> np.ndarray:
    """List of [478, 2] arrays or None -> [T, 478, 2] float32 with NaN rows for None."""
    out = np.full((len(per_frame), num_points, 2), np.nan, np.float32)
    for t, lm in enumerate(per_frame):
        if lm is not None:
            out[t] = lm
    return out


def mouth_colour(frames, landmarks) -> np.ndarray:
    """Mean CIE L*a*b* colour (L 0-100, a/b about -128..127) of the pixels inside each frame's outer-lip
    polygon (lips and whatever the open mouth shows): [T, S, S, 3] RGB uint8 + [T, 478, 2] -> [T, 3]
    (NaN rows where no face was found). A painted mouth in foreign colours (the magenta of a model
    that drifted) moves a* and b* away from the real mouth's; `mouth_colour_difference` reads that."""
    import cv2

    frames = np.asarray(frames)
    lm = np.asarray(landmarks, np.float64)
    out = np.full((len(frames), 3), np.nan, np.float64)
    for t, (f, p) in enumerate(zip(frames, lm)):
        pts = p[list(faces.LIPS_OUTER)]
        if not np.all(np.isfinite(pts)):
            continue
        mask = np.zeros(f.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        if not mask.any():
            continue
        lab = cv2.cvtColor(f.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        out[t] = lab[mask.astype(bool)].mean(axis=0)
    return out


def mouth_colour_difference(lab, real_lab) -> float:
    """CIE76 colour difference (Delta E) between the mean mouth colours of two videos ([T, 3] each from
    `mouth_colour`, frames without a face left out); about 2.3 is a just-noticeable difference. NaN
    where either has no face."""
    a, b = np.asarray(lab, np.float64), np.asarray(real_lab, np.float64)
    a, b = a[np.isfinite(a).all(axis=1)], b[np.isfinite(b).all(axis=1)]
    if not len(a) or not len(b):
        return float("nan")
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))


# ---------------------------------------------------------------- audio-visual sync from landmarks

def audio_envelope(wav, num_frames: int, sample_rate: int = 16000, fps: float = 25.0,
                   window_s: float = ENVELOPE_WINDOW_S) -> np.ndarray:
    """RMS of the waveform over `window_s` centred on each frame time k / fps: [N] -> [num_frames] float64."""
    x = np.asarray(wav, np.float64).reshape(-1)
    half = int(round(window_s * sample_rate / 2))
    centres = np.floor(np.arange(num_frames) * sample_rate / fps + 0.5).astype(np.int64)
    padded = np.concatenate([np.zeros(half), x, np.zeros(half)])
    csum = np.concatenate([[0.0], np.cumsum(padded ** 2)])
    lo = np.clip(centres, 0, len(padded))  # window [c - half, c + half) in padded coordinates [c, c + 2 half)
    hi = np.clip(centres + 2 * half, 0, len(padded))
    energy = csum[hi] - csum[lo]
    return np.sqrt(np.maximum(energy, 0.0) / (2 * half))


def highpass(x, frames: int = DETREND_FRAMES) -> np.ndarray:
    """x minus its centred moving average over `frames` frames (NaN-aware: the
    average runs over the finite values in the window, shrinking at the ends)."""
    x = np.asarray(x, np.float64)
    if frames <= 1:
        return x.copy()
    ok = np.isfinite(x)
    kernel = np.ones(int(frames))
    num = np.convolve(np.where(ok, x, 0.0), kernel, mode="same")
    den = np.convolve(ok.astype(np.float64), kernel, mode="same")
    return np.where(ok, x - num / np.maximum(den, 1.0), np.nan)


def lagged_correlation(audio_signal, video_signal, max_offset: int = MAX_OFFSET,
                       detrend_frames: int = DETREND_FRAMES, min_frames: int = MIN_FRAMES) -> np.ndarray:
    """Normalised cross-correlation of video_signal[k] with audio_signal[k - d], d = -max_offset..max_offset.

    Both signals are high-passed (`highpass`, removing slow level changes that
    would correlate at every offset), then z-scored over their finite frames:
    c(d) = sum over overlapping frames of z_a[k - d] z_v[k] / N, N the number
    of finite video frames (the biased estimator: c(0) is the Pearson
    correlation, and offsets with little overlap are not favoured by chance).
    Returns [2 * max_offset + 1] (index d + max_offset), all NaN when fewer
    than `min_frames` video frames are finite or either signal is constant.
    """
    a = highpass(audio_signal, detrend_frames)
    v = highpass(video_signal, detrend_frames)
    if a.shape != v.shape or a.ndim != 1:
        raise ValueError(f"lagged_correlation needs two [T] signals, got {a.shape} and {v.shape}")
    out = np.full(2 * max_offset + 1, np.nan)
    ok_a, ok_v = np.isfinite(a), np.isfinite(v)
    if ok_v.sum() < min_frames or ok_a.sum() < min_frames:
        return out
    sa, sv = a[ok_a].std(), v[ok_v].std()
    if sa < 1e-12 or sv < 1e-12 * max(1.0, float(np.abs(v[ok_v]).max())):
        return out
    za = np.where(ok_a, (a - a[ok_a].mean()) / max(sa, 1e-300), 0.0)
    zv = np.where(ok_v, (v - v[ok_v].mean()) / sv, 0.0)
    n, count = len(a), float(ok_v.sum())
    for i, d in enumerate(range(-max_offset, max_offset + 1)):
        k = np.arange(max(0, d), min(n, n + d))
        out[i] = float((za[k - d] * zv[k]).sum() / count) if len(k) else 0.0
    return out


def landmark_sync(envelope, opening, max_offset: int = MAX_OFFSET, detrend_frames: int = DETREND_FRAMES,
                  min_motion: float = MIN_MOUTH_MOTION) -> Dict[str, object]:
    """AV offset and correlation of an audio envelope and a mouth-opening series (both [T]).

    Returns {'offset': the AV offset of highest correlation (frames, positive =
    audio late: the sound comes that many frames after the picture; -d of
    `lagged_correlation`) or None, 'correlation': its correlation, 'correlation_at_zero': at d = 0,
    'mouth_motion': std of the high-passed opening (NaN without faces), 'offsets': [-M..M],
    'correlations': per offset (NaN -> None)}. A mouth that does not move
    (mouth_motion < `min_motion`: detector jitter on a still face is ~0.003)
    has no sync: offset and correlations are None.
    """
    hp = highpass(opening, detrend_frames)
    motion = float(np.nanstd(hp)) if np.isfinite(hp).any() else float("nan")
    corr = lagged_correlation(envelope, opening, max_offset, detrend_frames)[::-1]  # index: offset -d + M
    if not motion >= min_motion:  # also when no frame has a face (NaN)
        corr = np.full_like(corr, np.nan)
    offsets = list(range(-max_offset, max_offset + 1))
    finite = np.isfinite(corr)
    best = int(np.nanargmax(corr)) if finite.any() else None
    return {
        "offset": offsets[best] if best is not None else None,
        "correlation": float(corr[best]) if best is not None else None,
        "correlation_at_zero": float(corr[max_offset]) if finite[max_offset] else None,
        "mouth_motion": motion,
        "offsets": offsets,
        "correlations": [float(c) if np.isfinite(c) else None for c in corr],
    }


# ---------------------------------------------------------------- SyncNet-style LSE-D / LSE-C

def sync_distances(video_emb, audio_emb, max_offset: int = MAX_OFFSET, edge: str = "valid") -> np.ndarray:
    """D(d) = mean_k || v_k - a_(k-d) || for d = -max_offset..max_offset: [T, D] x2 -> [2M + 1].

    edge='valid': mean over k with 0 <= k - d < T (NaN if none); edge='zeros':
    a_j = 0 outside the clip and the mean runs over all T frames (syncnet_python).
    """
    v = np.asarray(video_emb, np.float64)
    a = np.asarray(audio_emb, np.float64)
    if v.shape != a.shape or v.ndim != 2:
        raise ValueError(f"sync_distances needs embeddings of one shape [T, D], got {v.shape} and {a.shape}")
    if edge not in ("valid", "zeros"):
        raise ValueError(f"edge must be 'valid' or 'zeros', not {edge!r}")
    n = len(v)
    out = np.full(2 * max_offset + 1, np.nan)
    for i, d in enumerate(range(-max_offset, max_offset + 1)):
        k = np.arange(n)
        j = k - d
        inside = (j >= 0) & (j < n)
        if edge == "zeros":
            partner = np.where(inside[:, None], a[np.clip(j, 0, max(n - 1, 0))], 0.0)
            out[i] = np.linalg.norm(v - partner, axis=-1).mean() if n else np.nan
        elif inside.any():
            out[i] = np.linalg.norm(v[k[inside]] - a[j[inside]], axis=-1).mean()
    return out


def lse_scores(distances, max_offset: Optional[int] = None) -> Dict[str, object]:
    """LSE-D (min), LSE-C (median - min) and AV offset of D(d): -argmin d, in frames, positive = audio
    late (sound comes k frames after the picture -> +k; D pairs video k with audio k - d)."""
    dist = np.asarray(distances, np.float64)
    m = (len(dist) - 1) // 2 if max_offset is None else max_offset
    if not np.isfinite(dist).any():
        return {"lse_d": None, "lse_c": None, "av_offset": None}
    best = int(np.nanargmin(dist))
    lo = float(dist[best])
    return {"lse_d": lo, "lse_c": float(np.nanmedian(dist) - lo), "av_offset": m - best}


# ---------------------------------------------------------------- image quality

def image_quality(pred, real, batch_size: int = 64) -> Dict[str, float]:
    """Mean PSNR (dB) and SSIM over frames of two uint8 videos [T, S, S, 3] (s2v_jax.train.metrics, max_val 1)."""


    pred, real = np.asarray(pred), np.asarray(real)
    if pred.shape != real.shape:
        raise ValueError(f"image_quality needs videos of one shape, got {pred.shape} and {real.shape}")
    psnr, ssim = [], []
    for s in range(0, len(pred), batch_size):
        p = jnp.asarray(pred[s:s + batch_size], jnp.float32) / 255.0
        r = jnp.asarray(real[s:s + batch_size], jnp.float32) / 255.0
        psnr.append(np.asarray(image_metrics.psnr(p, r)))
        ssim.append(np.asarray(image_metrics.ssim(p, r)))
    if not psnr:
        return {"psnr": float("nan"), "ssim": float("nan")}
    return {"psnr": float(np.concatenate(psnr).mean()), "ssim": float(np.concatenate(ssim).mean())}


# The lower face of a 112x112 registered crop (top, bottom, left, right): the region the real-face
# generator may change (configs/real_small.py residual_region), fixed here so the measure does not
# move with a config.
LOWER_FACE_REGION_112 = (54, 106, 18, 94)


def sharpness(frames, region=LOWER_FACE_REGION_112) -> float:
    """Mean over frames of the variance of the Laplacian of the grey image inside `region`
    (top, bottom, left, right of a 112x112 crop, scaled to the frames' size), on [0, 255]
    intensities: the usual focus measure. Blur lowers it; noise and sharpening raise it, so read
    it beside PSNR and the real video's value."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"sharpness needs a video [T, S, S, 3], got {frames.shape}")
    k = frames.shape[1] / 112.0
    top, bottom, left, right = (int(round(v * k)) for v in region)
    out = []
    for f in frames:
        grey = cv2.cvtColor(np.ascontiguousarray(f.astype(np.uint8)), cv2.COLOR_RGB2GRAY).astype(np.float64)
        out.append(cv2.Laplacian(grey, cv2.CV_64F, ksize=1)[top:bottom, left:right].var())
    return float(np.mean(out))
