"""Phoneme inventory, random utterances and smooth articulation tracks.

The synthetic corpus ties sound and mouth together through one shared
description: every phoneme has articulatory targets (mouth openness, mouth
width, loudness, voicing, formants, noise band). A timeline of phonemes becomes
step-wise target tracks on a 1 ms control grid, which a symmetric (zero-phase)
Gaussian kernel smooths into coarticulated trajectories. The speech synthesiser
reads loudness/formants/noise from these tracks and the face renderer reads
openness/width from them at the video frame times, so the mouth and the audio
envelope are aligned with no lag by construction (frame k <-> time k / fps).
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

CONTROL_RATE = 1000  # control-track samples per second (1 ms grid)


@dataclass(frozen=True)
class Phoneme:
    """Articulatory targets of one phoneme.

    open/width: mouth openness and width targets in [0, 1] (viseme).
    amp: RMS loudness target of the voiced part (open vowels loudest).
    voiced: glottal source on. noise: RMS of the noise source.
    formants: (F1, F2, F3) in Hz for a reference (scale 1.0) vocal tract.
    band: index of the noise band (see speech.NOISE_BANDS), -1 for none.
    """

    kind: str
    open: float
    width: float
    amp: float
    voiced: bool
    noise: float
    formants: Tuple[float, float, float]
    band: int = -1


# Vowel targets follow classic formant tables; openness follows jaw opening
# (a > o ~ e > i ~ u) and loudness follows openness, as in natural speech.
# Width: spread vowels (i, e) wide, rounded ones (o, u, sh) narrow.
PHONEMES: Dict[str, Phoneme] = {
    "a": Phoneme("vowel", 1.00, 0.60, 1.00, True, 0.0, (760, 1250, 2500)),
    "e": Phoneme("vowel", 0.55, 0.85, 0.70, True, 0.0, (500, 1850, 2550)),
    "i": Phoneme("vowel", 0.30, 1.00, 0.45, True, 0.0, (290, 2250, 3000)),
    "o": Phoneme("vowel", 0.62, 0.22, 0.72, True, 0.0, (520, 860, 2450)),
    "u": Phoneme("vowel", 0.30, 0.00, 0.42, True, 0.0, (320, 780, 2250)),
    "m": Phoneme("nasal", 0.00, 0.45, 0.10, True, 0.0, (250, 1100, 2300)),
    "n": Phoneme("nasal", 0.12, 0.50, 0.12, True, 0.0, (280, 1500, 2500)),
    "l": Phoneme("liquid", 0.22, 0.50, 0.22, True, 0.0, (360, 1300, 2700)),
    "b": Phoneme("stop", 0.00, 0.45, 0.03, True, 0.0, (250, 900, 2300), 0),
    "p": Phoneme("stop", 0.00, 0.45, 0.00, False, 0.0, (250, 900, 2300), 0),
    "t": Phoneme("stop", 0.10, 0.55, 0.00, False, 0.0, (300, 1700, 2600), 3),
    "k": Phoneme("stop", 0.12, 0.45, 0.00, False, 0.0, (300, 1900, 2500), 1),
    "f": Phoneme("fricative", 0.06, 0.55, 0.00, False, 0.07, (300, 1400, 2500), 4),
    "v": Phoneme("fricative", 0.06, 0.55, 0.06, True, 0.05, (300, 1400, 2500), 4),
    "s": Phoneme("fricative", 0.10, 0.70, 0.00, False, 0.10, (300, 1700, 2600), 3),
    "sh": Phoneme("fricative", 0.14, 0.15, 0.00, False, 0.10, (300, 1800, 2500), 2),
    "sil": Phoneme("sil", 0.00, 0.45, 0.00, False, 0.0, (500, 1500, 2500)),
}
VOWELS = ("a", "e", "i", "o", "u")
CONSONANTS = ("m", "n", "l", "b", "p", "t", "k", "f", "v", "s", "sh")
PHONEME_NAMES = tuple(PHONEMES)  # label index order stored in the ground truth
STOP_BURST_S = 0.015  # a stop's release burst: the last 15 ms of its segment

Timeline = List[Tuple[str, float, float]]  # (phoneme, start s, end s)


def random_utterance(rng: np.random.Generator, duration_s: float, rate: float = 1.0) -> Timeline:
    """A random phoneme timeline filling exactly `duration_s` seconds.

    Words of 1-4 CV/CVC syllables separated by pauses, with silence at both
    ends. `rate` > 1 speaks faster. Returns [(phoneme, start, end)], contiguous,
    covering [0, duration_s].
    """
    segs: List[Tuple[str, float]] = [("sil", rng.uniform(0.10, 0.30))]
    total = segs[0][1]
    while True:
        word: List[Tuple[str, float]] = []
        for _ in range(int(rng.integers(1, 5))):
            if rng.random() < 0.85:
                word.append(_consonant(rng, rate))
            v = VOWELS[int(rng.integers(len(VOWELS)))]
            # Open vowels are a bit longer, which also makes them prominent.
            word.append((v, rng.uniform(0.10, 0.20) * (1.0 + 0.3 * PHONEMES[v].open) / rate))
            if rng.random() < 0.25:
                word.append(_consonant(rng, rate))
        pause = ("sil", rng.uniform(0.08, 0.35))
        length = sum(d for _, d in word) + pause[1]
        if total + length > duration_s - 0.05:
            break
        segs += word + [pause]
        total += length
    # The final silence absorbs the remainder so the timeline ends exactly.
    segs.append(("sil", max(duration_s - total, 0.0)))
    timeline, t = [], 0.0
    for name, d in segs:
        if timeline and timeline[-1][0] == name == "sil":
            timeline[-1] = ("sil", timeline[-1][1], t + d)
        elif d > 0:
            timeline.append((name, t, t + d))
        t += d
    timeline[-1] = (timeline[-1][0], timeline[-1][1], float(duration_s))
    return [(n, float(s), float(e)) for n, s, e in timeline]


def _consonant(rng: np.random.Generator, rate: float) -> Tuple[str, float]:
    c = CONSONANTS[int(rng.integers(len(CONSONANTS)))]
    lo, hi = (0.05, 0.09) if PHONEMES[c].kind == "stop" else (0.06, 0.12)
    return c, rng.uniform(lo, hi) / rate


def step_tracks(timeline: Timeline, num: int) -> Dict[str, np.ndarray]:
    """Piecewise-constant target tracks on the 1 ms grid: each [num] float32.

    Keys: open, width, amp, voiced, noise, band (int), f1, f2, f3, burst
    (1 during a stop's release burst).
    """
    keys = ("open", "width", "amp", "voiced", "noise", "band", "f1", "f2", "f3", "burst")
    out = {k: np.zeros(num, np.float32) for k in keys}
    for name, start, end in timeline:
        p = PHONEMES[name]
        a, b = int(round(start * CONTROL_RATE)), min(int(round(end * CONTROL_RATE)), num)
        if b <= a:
            continue
        vals = dict(open=p.open, width=p.width, amp=p.amp, voiced=float(p.voiced), noise=p.noise,
                    band=p.band, f1=p.formants[0], f2=p.formants[1], f3=p.formants[2], burst=0.0)
        for k, v in vals.items():
            out[k][a:b] = v
        if p.kind == "stop":
            r = max(a, b - int(STOP_BURST_S * CONTROL_RATE))
            out["burst"][r:b] = 1.0
    return out


def gaussian_smooth(x: np.ndarray, sigma_ms: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing of a 1 ms-grid track (edges held)."""
    if sigma_ms <= 0:
        return x.astype(np.float32)
    half = int(3 * sigma_ms)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_ms) ** 2)
    k /= k.sum()
    padded = np.pad(x.astype(np.float64), half, mode="edge")
    return np.convolve(padded, k, mode="valid").astype(np.float32)


# Smoothing widths (ms). The mouth is slower than the source amplitude, but
# both kernels are symmetric, so neither track leads or lags the other.
MOUTH_SIGMA_MS = 22.0
AMP_SIGMA_MS = 12.0
FORMANT_SIGMA_MS = 18.0


def articulation_tracks(timeline: Timeline, duration_s: float) -> Dict[str, np.ndarray]:
    """Coarticulated control tracks on the 1 ms grid, each [N] float32.

    N = ceil(duration_s * 1000) + 1. Keys as step_tracks; open/width are
    smoothed with MOUTH_SIGMA_MS, amp/voiced/noise with AMP_SIGMA_MS and the
    formants with FORMANT_SIGMA_MS; band and burst stay step-wise.
    """
    num = int(np.ceil(duration_s * CONTROL_RATE)) + 1
    steps = step_tracks(timeline, num)
    out = dict(steps)
    for k in ("open", "width"):
        out[k] = gaussian_smooth(steps[k], MOUTH_SIGMA_MS)
    for k in ("amp", "voiced", "noise"):
        out[k] = gaussian_smooth(steps[k], AMP_SIGMA_MS)
    for k in ("f1", "f2", "f3"):
        out[k] = gaussian_smooth(steps[k], FORMANT_SIGMA_MS)
    return out


def sample_at(track: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Linear interpolation of a 1 ms-grid track at `times_s` ([T] seconds)."""
    grid = np.arange(len(track)) / CONTROL_RATE
    return np.interp(times_s, grid, track).astype(np.float32)


def frame_labels(timeline: Timeline, times_s: Sequence[float]) -> np.ndarray:
    """Index into PHONEME_NAMES of the phoneme sounding at each time: [T] int16."""
    starts = np.array([s for _, s, _ in timeline])
    idx = np.clip(np.searchsorted(starts, np.asarray(times_s), side="right") - 1, 0, len(timeline) - 1)
    return np.array([PHONEME_NAMES.index(timeline[i][0]) for i in idx], np.int16)
