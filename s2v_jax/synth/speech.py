"""Source-filter speech synthesiser at 16 kHz.

Voiced sounds: a Rosenberg glottal pulse train at the speaker's pitch (with
declination, slow intonation and per-period jitter), differentiated for lip
radiation, through a cascade of four time-varying formant resonators whose
frequencies glide between phoneme targets (articulation.py). Fricatives and
stop bursts: white noise through fixed band-pass filters chosen per phoneme.
Each source is envelope-normalised and then scaled by the phoneme loudness
track, so the audio envelope follows articulation exactly (open vowels are
loud, closures are silent) regardless of how the resonators colour the
spectrum. A faint noise floor keeps silences spectrally well defined.
"""

from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np
from scipy import signal

from s2v_jax.errors import S2VError
from s2v_jax.synth import articulation as art

SAMPLE_RATE = 16000
BLOCK = 80  # resonator coefficients are updated every 5 ms block
# (low, high) Hz of the noise bands indexed by Phoneme.band:
# 0 labial burst, 1 velar burst, 2 'sh', 3 's'/'t', 4 'f'/'v' (flat, weak).
NOISE_BANDS: Tuple[Tuple[float, float], ...] = (
    (400, 2000), (1500, 3200), (2000, 5000), (4200, 7600), (800, 7600))
OUTPUT_GAIN = 0.25  # waveform RMS of a loud 'a' (amp 1.0)
NOISE_FLOOR = 0.0015


@dataclass(frozen=True)
class VoiceParams:
    """A speaker's voice.

    f0: mean pitch (Hz). tract: formant scale (shorter tracts -> higher
    formants). intonation: depth of slow pitch movement (fraction of f0).
    open_quotient: glottal open phase (bigger -> softer, darker voice).
    breathiness: aspiration noise mixed into voicing. rate: speaking rate.
    """

    f0: float
    tract: float
    intonation: float
    open_quotient: float
    breathiness: float
    rate: float

    def to_dict(self) -> Dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def sample_voice(rng: np.random.Generator) -> VoiceParams:
    """A random voice: f0 90-250 Hz; tract scale grows with pitch, as in people."""
    f0 = float(np.exp(rng.uniform(np.log(90.0), np.log(250.0))))
    tract = 0.93 + 0.22 * (f0 - 90.0) / 160.0 + rng.normal(0.0, 0.03)
    return VoiceParams(f0=f0, tract=float(tract), intonation=float(rng.uniform(0.04, 0.12)),
                       open_quotient=float(rng.uniform(0.45, 0.65)),
                       breathiness=float(rng.uniform(0.0, 0.06)), rate=float(rng.uniform(0.85, 1.2)))


def _slow_noise(rng: np.random.Generator, num: int, period_ms: float) -> np.ndarray:
    """Smooth zero-mean unit-ish noise on the 1 ms grid (knots every period)."""
    knots = rng.normal(0.0, 1.0, num // int(period_ms) + 3)
    x = np.arange(num) / period_ms
    return np.interp(x, np.arange(len(knots)), knots)


def pitch_track(voice: VoiceParams, num: int, rng: np.random.Generator) -> np.ndarray:
    """f0 on the 1 ms grid [num]: declination, slow intonation, small wobble."""
    t = np.arange(num) / art.CONTROL_RATE
    decl = 1.0 + 0.08 - 0.16 * t / max(t[-1], 1e-3)  # falls ~16% over the clip
    inton = 1.0 + voice.intonation * _slow_noise(rng, num, 350.0)
    wobble = 1.0 + 0.01 * _slow_noise(rng, num, 40.0)
    return (voice.f0 * decl * inton * wobble).astype(np.float64)


def glottal_source(f0_ms: np.ndarray, num_samples: int, voice: VoiceParams,
                   rng: np.random.Generator) -> np.ndarray:
    """Differentiated Rosenberg pulse train [num_samples] at the given pitch."""
    t_ms = np.arange(num_samples) * (art.CONTROL_RATE / SAMPLE_RATE)
    f0 = np.interp(t_ms, np.arange(len(f0_ms)), f0_ms)
    # Small random-walk drift on top of the control-rate track (no two periods alike).
    f0 *= 1.0 + 0.004 * rng.standard_normal(num_samples).cumsum() / np.sqrt(num_samples)
    phase = np.cumsum(f0 / SAMPLE_RATE) % 1.0
    tp, tn = voice.open_quotient * 0.7, voice.open_quotient * 0.3
    g = np.where(phase < tp, 0.5 * (1.0 - np.cos(np.pi * phase / tp)),
                 np.where(phase < tp + tn, np.cos(0.5 * np.pi * (phase - tp) / tn), 0.0))
    return np.diff(g, prepend=0.0)


def _resonator(freq: float, bw: float) -> Tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator with unity gain at DC (Klatt style): (b, a)."""
    r = np.exp(-np.pi * bw / SAMPLE_RATE)
    a1, a2 = -2.0 * r * np.cos(2.0 * np.pi * freq / SAMPLE_RATE), r * r
    return np.array([1.0 + a1 + a2]), np.array([1.0, a1, a2])


def formant_filter(x: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Cascade of time-varying resonators, updated every BLOCK samples.

    x: [N] source. formants: [N // BLOCK + 1, 3] (F1, F2, F3) per block; a
    fixed F4 at 3500 Hz completes the cascade. Filter states carry across
    blocks so glides are click-free. Returns [N].
    """
    y = x.copy()
    bws = (80.0, 100.0, 140.0, 250.0)
    for j in range(4):
        zi = np.zeros(2)
        out = np.empty_like(y)
        for i, s in enumerate(range(0, len(y), BLOCK)):
            f = formants[i, j] if j < 3 else 3500.0
            b, a = _resonator(f, bws[j] * (1.0 + f / 4000.0))
            out[s:s + BLOCK], zi = signal.lfilter(b, a, y[s:s + BLOCK], zi=zi)
        y = out
    return y


def _envelope(x: np.ndarray, win: int = 480) -> np.ndarray:
    """Smoothed RMS envelope [N] (30 ms Hann window, zero-phase; spans 2+ pitch periods)."""
    k = np.hanning(win)
    k /= k.sum()
    return np.sqrt(np.convolve(x * x, k, mode="same"))


def _band_noise(rng: np.random.Generator, n: int) -> List[np.ndarray]:
    """One unit-RMS noise signal per NOISE_BANDS entry, each [n]."""
    out = []
    for lo, hi in NOISE_BANDS:
        sos = signal.butter(4, (lo, hi), btype="bandpass", fs=SAMPLE_RATE, output="sos")
        y = signal.sosfilt(sos, rng.standard_normal(n + 512))[512:]
        out.append(y / (np.sqrt(np.mean(y * y)) + 1e-9))
    return out


def synthesize(timeline: art.Timeline, voice: VoiceParams, rng: np.random.Generator,
               duration_s: float) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Render a phoneme timeline as speech.

    Returns (wav [round(duration_s * 16000)] float32 in [-1, 1], tracks) where
    tracks are the 1 ms-grid articulation tracks (articulation_tracks) plus f0.
    """
    if duration_s <= 0:
        raise S2VError(f"speech duration must be positive, got {duration_s}")
    n = int(round(duration_s * SAMPLE_RATE))
    tracks = art.articulation_tracks(timeline, duration_s)
    num = len(tracks["amp"])
    f0 = pitch_track(voice, num, rng)
    tracks["f0"] = f0.astype(np.float32)
    grid = np.arange(n) * (art.CONTROL_RATE / SAMPLE_RATE)  # sample times on the 1 ms grid
    at = lambda k: np.interp(grid, np.arange(num), tracks[k])  # noqa: E731

    # Voiced part: pulses -> formant cascade -> unit envelope -> loudness track.
    src = glottal_source(f0, n, voice, rng)
    src = src + voice.breathiness * 0.02 * rng.standard_normal(n)
    block_ms = (np.arange(n // BLOCK + 1) * BLOCK + BLOCK / 2) * (art.CONTROL_RATE / SAMPLE_RATE)
    formants = np.stack([np.interp(block_ms, np.arange(num), tracks[k]) for k in ("f1", "f2", "f3")], 1)
    voiced = formant_filter(src, formants * voice.tract)
    voiced /= _envelope(voiced) + 1e-6
    voiced *= at("amp") * np.minimum(at("voiced") * 1.5, 1.0)

    # Noise part: the phoneme's band (fricative hiss and stop release bursts).
    bands = _band_noise(rng, n)
    band_idx = np.round(at("band")).astype(int)
    burst = at("burst")
    noise = np.zeros(n)
    for j, b in enumerate(bands):
        sel = band_idx == j
        noise[sel] = b[sel]
    noise_amp = at("noise") + 0.12 * burst
    wav = OUTPUT_GAIN * (voiced + noise_amp * noise) + NOISE_FLOOR * rng.standard_normal(n)
    return np.clip(wav, -1.0, 1.0).astype(np.float32), tracks
