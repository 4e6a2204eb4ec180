"""Tests for s2v_jax.media.audio: decoding, MFCC, per-frame windows and their timing.

The click tests are the guard against the classic off-by-a-few-frames lag: a
short burst at time t must show up in the window of frame round(25 t), in
that window's centre column.
"""

import numpy as np
import pytest
import soundfile as sf

from s2v_jax.errors import MediaError
from s2v_jax.media import audio as A

SR = 16000


def _tone(freq=440.0, seconds=1.0, sr=SR, amp=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _with_click(base, t):
    """`base` plus a 2 ms, 2 kHz Hann-shaped burst centred on time t (clipped at the ends).

    A plain impulse would not do: its flat spectrum differs from a flat noise
    floor only in level, i.e. only in c0, which the MFCC drops.
    """
    n = np.arange(-16, 16)
    burst = 0.5 * np.hanning(32) * np.sin(2 * np.pi * 2000 * n / SR)
    idx = int(round(t * SR)) + n
    ok = (idx >= 0) & (idx < len(base))
    out = base.copy()
    out[idx[ok]] += burst[ok]
    return out


@pytest.fixture(scope="module")
def noise_floor():
    """2.5 s of -60 dB white noise and its windows (63 frames)."""
    base = (np.random.RandomState(0).randn(40000) * 1e-3).astype(np.float32)
    return base, A.audio_windows(base)


@pytest.mark.parametrize("t", [0.0, 0.04, 0.12, 1.0, 2.44, 2.48])
def test_click_peaks_at_centre_of_its_frame(noise_floor, t):
    base, w0 = noise_floor
    diff = np.linalg.norm(A.audio_windows(_with_click(base, t)) - w0, axis=1)  # [F, 35]
    k = int(np.floor(25 * t + 0.5))
    assert int(np.argmax(diff[k])) == A.WINDOW_STEPS // 2 == 17
    # and of all frames, frame k is the one whose centre column moved most
    assert int(np.argmax(diff[:, 17])) == k


@pytest.mark.parametrize("t", [1.01, 1.5])
def test_click_between_frames_is_offset_by_its_lag(noise_floor, t):
    """Off the 25 fps grid, the burst sits (100 t - centre) steps from the centre column."""
    base, w0 = noise_floor
    diff = np.linalg.norm(A.audio_windows(_with_click(base, t)) - w0, axis=1)
    k = int(np.floor(25 * t + 0.5))
    assert int(np.argmax(diff[k])) == 17 + int(round(100 * t)) - 4 * k


def _reference_mfcc_column(wav, t):
    """Plain-numpy HTK pipeline for MFCC step t, written independently of librosa."""
    x = wav.astype(np.float64) * 32768.0
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    x = np.pad(x, 200)
    frame = x[160 * t : 160 * t + 400] * np.hamming(400)  # centred on sample 160 t
    mag = np.abs(np.fft.rfft(frame, 512))
    freqs = np.arange(257) * SR / 512
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges = 700.0 * (10 ** (np.linspace(mel(300.0), mel(3700.0), 42) / 2595.0) - 1.0)
    fb = np.zeros((40, 257))
    for m in range(40):
        lo, c, hi = edges[m : m + 3]
        fb[m] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    logmel = np.log(np.maximum(fb @ mag, 1.0))
    j = np.arange(40)
    cep = np.array([np.sqrt(2 / 40) * np.sum(logmel * np.cos(np.pi * i * (j + 0.5) / 40)) for i in range(1, 13)])
    return cep * (1 + 11 * np.sin(np.pi * np.arange(1, 13) / 22))


def test_mfcc_matches_plain_htk_reference():
    wav = (np.random.RandomState(1).randn(8000) * 0.1).astype(np.float32) + _tone(300, 0.5) + _tone(1200, 0.5, amp=0.2)
    mfcc = A.compute_mfcc(wav)
    for t in (0, 1, 17, 49):
        np.testing.assert_allclose(mfcc[:, t], _reference_mfcc_column(wav, t), rtol=1e-3, atol=1e-2)


def test_shapes_and_frame_count():
    wav = _tone(seconds=2.5)
    mfcc = A.compute_mfcc(wav)
    assert mfcc.shape == (12, 1 + 40000 // 160) and mfcc.dtype == np.float32
    assert A.mfcc_windows(mfcc, 63).shape == (63, 12, 35)
    assert A.audio_windows(wav).shape == (63, 12, 35)
    assert A.audio_windows(wav, num_frames=10).shape == (10, 12, 35)
    assert [A.num_video_frames(n) for n in (0, 1, 640, 25600, 40000, 40319, 40320)] == [0, 1, 1, 40, 63, 63, 63]
    assert A.num_video_frames(44100, 44100) == 25 and A.num_video_frames(16000, fps=30.0) == 30


def test_silence_pads_as_zero_mfcc():
    assert np.all(A.compute_mfcc(np.zeros(3200, np.float32)) == 0)
    win = A.mfcc_windows(A.compute_mfcc(_tone(seconds=0.2)), 3)
    assert np.all(win[0, :, :17] == 0) and np.any(win[0, :, 17:] != 0)
    # a frame far past the end of the audio sees silence only
    assert np.all(A.mfcc_windows(A.compute_mfcc(_tone(seconds=0.2)), 20)[-1] == 0)


def test_resampling_and_downmix(tmp_path):
    ref = _tone(seconds=1.0)
    t48 = np.arange(48000) / 48000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t48)] * 2, axis=1)
    sf.write(tmp_path / "s48.wav", stereo, 48000)
    sf.write(tmp_path / "m8.wav", 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000), 8000)
    for name in ("s48.wav", "m8.wav"):
        wav = A.load_audio(tmp_path / name)
        assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) == 16000
        # same tone, same level (channels are averaged, not summed at -3 dB)
        np.testing.assert_allclose(wav[500:-500], ref[500:-500], atol=0.01)
    lr = np.stack([np.full(16000, 0.5), np.zeros(16000)], axis=1)
    sf.write(tmp_path / "lr.wav", lr, SR)
    np.testing.assert_allclose(A.load_audio(tmp_path / "lr.wav")[100:-100], 0.25, atol=1e-3)


def test_24bit_wav(tmp_path):
    ref = _tone(seconds=0.5, amp=0.3)
    sf.write(tmp_path / "p24.wav", ref, SR, subtype="PCM_24")
    np.testing.assert_allclose(A.load_audio(tmp_path / "p24.wav"), ref, atol=1e-6)


def test_errors(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        A.load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty\.wav is empty"):
        A.load_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(np.random.RandomState(0).bytes(3000))
    with pytest.raises(MediaError, match=r"could not decode audio from .*junk\.wav"):
        A.load_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "full.wav", _tone(seconds=0.5), SR)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:44])  # header only
    with pytest.raises(MediaError, match=r"cut\.wav"):
        A.load_audio(tmp_path / "cut.wav")
    with pytest.raises(MediaError, match="is a directory"):
        A.load_audio(tmp_path)


def test_video_without_audio_track(tmp_path):
    from s2v_jax.media.video import write_video

    path = write_video(tmp_path / "mute.mp4", np.zeros((3, 16, 16, 3), np.uint8))
    with pytest.raises(MediaError, match="has no audio track; give a separate --audio file"):
        A.load_audio(path)


def test_silence_detection():
    assert A.is_silent(np.zeros(100, np.float32)) and A.is_silent(np.zeros(0, np.float32))
    assert A.is_silent(np.full(100, 1e-4, np.float32))  # -80 dBFS
    assert not A.is_silent(_tone())
    with pytest.raises(MediaError, match=r"quiet\.wav is silent \(peak -inf dBFS"):
        A.check_not_silent(np.zeros(100, np.float32), "quiet.wav")
    A.check_not_silent(_tone(), "tone.wav")


# ---- real clips in ../shared/data/real (skipped where absent) ----


def test_real_audio_files_load(real_data):
    files = sorted((real_data / "audio").iterdir())
    assert files
    for f in files:
        wav = A.load_audio(f)
        info = sf.info(str(f))
        assert wav.dtype == np.float32 and wav.ndim == 1
        assert abs(len(wav) - info.frames * SR / info.samplerate) <= 2, f
        assert not A.is_silent(wav) and np.abs(wav).max() <= 1.0


def test_real_edge_cases(real_data):
    edge = real_data / "edge_cases"
    with pytest.raises(MediaError, match=r"empty\.wav is empty"):
        A.load_audio(edge / "empty.wav")
    short = A.load_audio(edge / "short_speech.mp3")
    assert 5.5 < len(short) / SR < 6.5 and not A.is_silent(short)
    with pytest.raises(MediaError, match=r"no_audio_track_anime\.mp4 has no audio track"):
        A.load_audio(edge / "no_audio_track_anime.mp4")


def test_real_lrs2_clip_audio(real_data):
    clip = sorted((real_data / "corpus" / "lrs2").glob("*/*.mp4"))[0]
    wav = A.load_audio(clip)
    from s2v_jax.media.video import probe

    assert abs(len(wav) / SR - probe(clip).duration) < 0.05
    assert A.audio_windows(wav).shape == (A.num_video_frames(len(wav)), 12, 35)


@pytest.mark.parametrize("n", [100, 16000, 16001, 45678])
def test_numpy_mel_spectrogram_is_librosas(n):
    """compute_mfcc's STFT and mel filters (numpy, no librosa import at run time) give
    librosa.feature.melspectrogram's numbers with the same settings, at any length."""
    import warnings

    import librosa
    import scipy.signal

    x = np.random.default_rng(n).standard_normal(n) * 3000.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns that n_fft exceeds a 100-sample signal
        ref = librosa.feature.melspectrogram(
            y=x, sr=A.SAMPLE_RATE, n_fft=512, hop_length=160, win_length=400,
            window=scipy.signal.windows.hamming(400, sym=True), center=True, pad_mode="constant", power=1.0,
            n_mels=40, fmin=300.0, fmax=3700.0, htk=True, norm=None)
    got = A.mel_filters() @ A.stft_magnitude(x)
    assert got.shape == ref.shape == (40, 1 + n // 160)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
