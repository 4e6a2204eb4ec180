"""Audio input: decoding any common file to mono 16 kHz, HTK-style MFCCs, and
the 12x35 MFCC windows the audio encoder sees for each 25 fps video frame.

Decoding. Every file (wav of any bit depth and rate, mp3, aac/m4a, and the
audio track of mp4/mpg/avi videos) goes through the ffmpeg binary shipped with
`imageio_ffmpeg`, one route for all formats, so resampling and downmixing are
the same everywhere. ffmpeg resamples with soxr and writes 32-bit float WAV to
a pipe with the source's channel count; the channels are then averaged here.
(ffmpeg's own `-ac 1` downmix uses a -3 dB pan law, (L+R)*0.707, which can clip
a loud stereo file and makes mono and stereo copies of a clip differ in level.)
The first audio track is used; AAC/MP3 encoder delay is removed by ffmpeg.

MFCC (`compute_mfcc`), following HTK's defaults as SPEC.md asks:
- the float signal is scaled to 16-bit integer units (x 32768), because HTK
  works on integer samples and floors every mel energy at 1.0 before the log;
  with that scale the floor means "quieter than one LSB" and digital silence
  maps to an all-zero MFCC (log 1 = 0), which the window padding relies on;
- pre-emphasis y[n] = x[n] - 0.97 x[n-1] over the whole signal, x[-1] = 0
  (HTK does it per frame; the two differ only at each frame's first sample,
  where the Hamming window weight is 0.08);
- 25 ms (400 sample) symmetric Hamming window, as HTK's (librosa's 'hamming'
  string would give the periodic variant), zero-padded to a 512-point FFT;
  magnitude spectrum (librosa `power=1`), HTK's USEPOWER=F; computed in numpy
  (`stft_magnitude`, `mel_filters`) with librosa.feature.melspectrogram's numbers
  (tested), because librosa's first call costs 3-5 s of imports and numba
  compilation in every process (a third of a short `s2v generate`);
- 40 triangular mel filters from 300 to 3700 Hz on the HTK mel scale
  (`htk=True`), peak height 1 (`norm=None`) as in HTK; librosa interpolates
  the triangles linearly in Hz where HTK does so in mel, a sub-1% difference;
- natural log with the floor above, DCT-II with orthonormal scaling (equal to
  HTK's sqrt(2/N) for every coefficient but c0), 13 coefficients;
- sine lifter 22 applied as HTK does, c_i *= 1 + 11 sin(pi i / 22) for
  i = 1..12 (librosa's `mfcc(lifter=)` indexes from c0 and so is shifted by
  one coefficient; it is not used), c0 dropped, no mean/variance normalisation.

Timing. The STFT is centred (`center=True`, zero padding of 256 samples each
side), so step t is the 400-sample window centred on sample 160 t, i.e. on time
t / 100 s, and a signal of N samples has T = 1 + N // 160 steps (times 0 to
N / 16000 s). Video frame k of a 25 fps video is shown at time k / 25 s, so
its window is centred on step round(4 k): steps centre-17 .. centre+17, 35
steps = 0.35 s. (The authors' demo started the window at step 4k of audio
padded with 1 s of silence, a 0.35 s look-ahead / lag asymmetry avoided here.)

Padding. Steps before 0 or past T-1 take the MFCC of digital silence, an
all-zero column: before the clip starts and after it ends nothing is said, so
a closed, still mouth is the right target; replicating the edge column would
instead hold the first or last phoneme. It equals computing the MFCC on audio
padded with silence, except for up to 200 samples at the very end.

Length. `num_video_frames` is the one rule for how many video frames an audio
clip gets: round(duration * fps), half up, so the video lasts as long as the
audio to within half a frame.
"""

import functools
import math
import os
import pathlib
import struct
import subprocess
from fractions import Fraction

import numpy as np

from s2v_jax.errors import MediaError

SAMPLE_RATE = 16000
VIDEO_FPS = 25.0
MFCC_RATE = 100  # MFCC steps per second (10 ms hop)
WINDOW_STEPS = 35  # 0.35 s of MFCC per video frame
NUM_COEFFS = 12  # c1..c12

_HOP = 160  # 10 ms at 16 kHz
_WIN = 400  # 25 ms at 16 kHz
_N_FFT = 512
_N_MELS = 40
_FMIN, _FMAX = 300.0, 3700.0
_PREEMPH = 0.97
_LIFTER = 22
_INT16_SCALE = 32768.0
_MEL_FLOOR = 1.0
_DECODE_TIMEOUT_S = 600


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio_ffmpeg (no system ffmpeg needed)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # no binary for this platform, or a broken install
        raise MediaError(
            f"cannot find the ffmpeg binary from imageio_ffmpeg ({e}); reinstall it with 'pip install imageio-ffmpeg'"
        ) from None


def check_media_file(path, kind: str = "media") -> pathlib.Path:
    """Raise MediaError unless `path` is an existing, non-empty regular file.

    Shared with video.py so missing and empty files give the same messages.
    """
    p = pathlib.Path(path)
    if not p.exists():
        raise MediaError(f"{kind} file {p} does not exist; check the path")
    if p.is_dir():
        raise MediaError(f"{kind} file {p} is a directory, not a file; give the path of a file")
    if p.stat().st_size == 0:
        raise MediaError(f"{kind} file {p} is empty (0 bytes); give a non-empty file")
    return p


def ffmpeg_error_line(stderr: str) -> str:
    """The most telling line of ffmpeg's stderr, for an error message."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:  # ffmpeg's first error is the cause; later lines are consequences
        if "Invalid data" in ln or "moov atom not found" in ln or "No such file" in ln or "Permission denied" in ln:
            return ln.split("] ", 1)[-1]
    return lines[0].split("] ", 1)[-1] if lines else "no message from ffmpeg"


def _parse_float_wav(buf: bytes, path) -> np.ndarray:
    """Parse the float32 WAV ffmpeg wrote to a pipe -> [samples, channels].

    Sizes in the header are placeholders (a pipe cannot be rewound), so the
    data chunk is taken to run to the end of the buffer.
    """
    if len(buf) < 12 or buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise MediaError(f"could not decode audio from {path}: ffmpeg produced no WAV output; the file may be corrupt")
    pos, channels = 12, None
    while pos + 8 <= len(buf):
        cid, size = buf[pos : pos + 4], struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            channels = struct.unpack("<H", buf[pos + 10 : pos + 12])[0]
        elif cid == b"data":
            if not channels:
                break
            data = buf[pos + 8 :]
            data = data[: len(data) - len(data) % (4 * channels)]
            return np.frombuffer(data, dtype="<f4").reshape(-1, channels)
        pos += 8 + size + (size & 1)
    raise MediaError(f"could not decode audio from {path}: unexpected WAV layout from ffmpeg")


def load_audio(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio track of any audio or video file.

    Returns float32 [N] mono in [-1, 1] at `sample_rate` (channels averaged,
    resampled with soxr). Raises MediaError for a missing, empty, corrupt or
    truncated file, a video without an audio track, or zero decoded samples.
    """
    p = check_media_file(path, "audio")
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(p),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-fflags", "+bitexact",
        "-af", f"aresample={int(sample_rate)}:resampler=soxr",
        "-c:a", "pcm_f32le", "-f", "wav", "-",
    ]  # fmt: skip
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=_DECODE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise MediaError(f"decoding audio from {p} took over {_DECODE_TIMEOUT_S} s; the file may be damaged") from None
    err = res.stderr.decode("utf-8", "replace")
    if res.returncode != 0:
        if "matches no streams" in err:
            raise MediaError(f"{p} has no audio track; give a separate --audio file")
        raise MediaError(
            f"could not decode audio from {p} ({ffmpeg_error_line(err)}); the file is corrupt, truncated "
            "or not an audio/video file: re-export it as wav/mp3/mp4"
        )
    frames = _parse_float_wav(res.stdout, p)
    if frames.shape[0] == 0:
        raise MediaError(f"no audio samples could be decoded from {p}; the file is truncated or its audio track is empty")
    wav = frames.mean(axis=1) if frames.shape[1] > 1 else frames[:, 0]
    wav = np.nan_to_num(wav, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def peak_dbfs(wav: np.ndarray) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence or no samples)."""
    wav = np.asarray(wav)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def is_silent(wav: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True if the peak level is below `threshold_db` dBFS (-60: about 30 LSB in 16 bit)."""
    return peak_dbfs(wav) < threshold_db


def check_not_silent(wav: np.ndarray, path, threshold_db: float = -60.0) -> None:
    """Raise MediaError if `wav` (decoded from `path`) is silent: no speech to lip-sync to."""
    if is_silent(wav, threshold_db):
        raise MediaError(
            f"{path} is silent (peak {peak_dbfs(wav):.1f} dBFS, below {threshold_db:.0f} dBFS); "
            "give a speech recording with audible sound"
        )


def compute_mfcc(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """HTK-style MFCC of a mono signal (see the module docstring for every choice).

    wav: float [N] in [-1, 1] at 16 kHz. Returns float32 [12, T], T = 1 + N // 160;
    column t is centred on time t / 100 s.
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1:
        raise ValueError(f"compute_mfcc expects mono audio of shape [N], got shape {wav.shape}")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"compute_mfcc expects {SAMPLE_RATE} Hz audio (got {sample_rate}); load it with load_audio()")
    if wav.size == 0:
        raise MediaError("the audio has no samples, so it has no MFCC; give a longer clip")
    x = wav * _INT16_SCALE
    x = np.append(x[0], x[1:] - _PREEMPH * x[:-1])  # pre-emphasis with x[-1] = 0
    mel = mel_filters() @ stft_magnitude(x)
    logmel = np.log(np.maximum(mel, _MEL_FLOOR))
    cep = _dct_rows() @ logmel  # c1..c12 of the orthonormal DCT-II (scipy.fft.dct(type=2, norm='ortho'))
    i = np.arange(1, NUM_COEFFS + 1)[:, None]
    cep *= 1.0 + (_LIFTER / 2.0) * np.sin(np.pi * i / _LIFTER)
    return cep.astype(np.float32)


def stft_magnitude(x: np.ndarray) -> np.ndarray:
    """|STFT| [257, 1 + N // 160] of a float64 signal: centred frames (256 zeros each side), the symmetric
    400-point Hamming window centred in 512 points, hop 160; librosa.stft(center=True,
    pad_mode='constant')'s numbers (tests/test_audio.py), without its import and numba compilation
    (3-5 s in each new process)."""
    pad = _N_FFT // 2
    xp = np.pad(np.asarray(x, np.float64), (pad, pad), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(xp, _N_FFT)[::_HOP][: 1 + len(x) // _HOP]
    window = np.zeros(_N_FFT)
    left = (_N_FFT - _WIN) // 2
    window[left:left + _WIN] = np.hamming(_WIN)  # symmetric, as scipy.signal.windows.hamming(sym=True)
    return np.abs(np.fft.rfft(frames * window, axis=-1)).T


@functools.lru_cache(maxsize=None)
def _dct_rows() -> np.ndarray:
    """Rows 1..12 of the orthonormal DCT-II matrix over the 40 mel bands: [12, 40] float64."""
    n = np.arange(_N_MELS)
    k = np.arange(1, NUM_COEFFS + 1)[:, None]
    return np.sqrt(2.0 / _N_MELS) * np.cos(np.pi * k * (2 * n + 1) / (2 * _N_MELS))


@functools.lru_cache(maxsize=None)
def mel_filters() -> np.ndarray:
    """The 40 triangular filters [40, 257] (float32): HTK mel scale 300-3700 Hz, peak 1, triangles linear in
    Hz, as librosa.filters.mel(htk=True, norm=None) makes them (tests/test_audio.py)."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2.0, 1 + _N_FFT // 2)
    to_mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    edges = 700.0 * (10.0 ** (np.linspace(to_mel(_FMIN), to_mel(_FMAX), _N_MELS + 2) / 2595.0) - 1.0)
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    out = np.empty((_N_MELS, len(fft_hz)), np.float32)
    for i in range(_N_MELS):
        out[i] = np.maximum(0.0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    return out


def frame_centre_steps(num_frames: int, fps: float = VIDEO_FPS) -> np.ndarray:
    """MFCC step on which video frame k's window is centred: round(k * 100 / fps), half up. int64 [F]."""
    k = np.arange(num_frames, dtype=np.float64)
    return np.floor(k * MFCC_RATE / fps + 0.5 + 1e-9).astype(np.int64)


def mfcc_windows(mfcc: np.ndarray, num_frames: int, fps: float = VIDEO_FPS) -> np.ndarray:
    """Cut one 12x35 MFCC window per video frame.

    mfcc: [12, T] from compute_mfcc. Window k covers steps centre-17 .. centre+17,
    centre = round(k * 100 / fps), so its column 17 is the frame's own time.
    Steps outside [0, T) are the MFCC of digital silence (zeros).
    Returns float32 [num_frames, 12, 35].
    """
    mfcc = np.asarray(mfcc, dtype=np.float32)
    if mfcc.ndim != 2 or mfcc.shape[0] != NUM_COEFFS:
        raise ValueError(f"mfcc_windows expects an MFCC of shape [{NUM_COEFFS}, T], got {mfcc.shape}")
    if num_frames < 0 or fps <= 0:
        raise ValueError(f"mfcc_windows needs num_frames >= 0 and fps > 0 (got {num_frames}, {fps})")
    half = WINDOW_STEPS // 2
    idx = frame_centre_steps(num_frames, fps)[:, None] + np.arange(-half, half + 1)[None, :]  # [F, 35]
    valid = (idx >= 0) & (idx < mfcc.shape[1])
    if mfcc.shape[1] == 0:
        return np.zeros((num_frames, NUM_COEFFS, WINDOW_STEPS), np.float32)
    win = mfcc[:, np.clip(idx, 0, mfcc.shape[1] - 1)]  # [12, F, 35]
    win = np.where(valid[None], win, np.float32(0.0))
    return np.ascontiguousarray(win.transpose(1, 0, 2))


def num_video_frames(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: float = VIDEO_FPS) -> int:
    """Frames of a video as long as `num_samples` of audio: round(duration * fps), half up.

    Exact rational arithmetic, so 2.5 s at 25 fps is 63 frames on every machine;
    at least 1 frame for any non-empty audio.
    """
    if num_samples <= 0:
        return 0
    frames = Fraction(int(num_samples)) * Fraction(fps) / int(sample_rate)
    return max(1, math.floor(frames + Fraction(1, 2)))


def audio_windows(wav_or_path, num_frames=None, sample_rate: int = SAMPLE_RATE, fps: float = VIDEO_FPS) -> np.ndarray:
    """MFCC windows for every video frame of a clip: [F, 12, 35] float32.

    wav_or_path: a float mono array at `sample_rate` or a path for load_audio.
    F = num_frames if given, else num_video_frames(len(wav)) = round(duration * fps).
    Audio at another rate than 16 kHz is resampled (the MFCC is defined at 16 kHz).
    """
    if isinstance(wav_or_path, (str, os.PathLike)):
        wav = load_audio(wav_or_path, SAMPLE_RATE)
    else:
        wav = np.asarray(wav_or_path, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            import librosa

            wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    if num_frames is None:
        num_frames = num_video_frames(len(wav), SAMPLE_RATE, fps)
    return mfcc_windows(compute_mfcc(wav, SAMPLE_RATE), num_frames, fps)
