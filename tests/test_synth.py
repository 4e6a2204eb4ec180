"""Tests of the procedural talking-face corpus (s2v_jax.synth).

Checks: determinism per seed; shapes; the mouth opening follows the audio
envelope with its peak at lag 0; the mouth is predictable from MFCC windows
for unseen speakers; speakers differ in pitch and looks; the REAL MediaPipe
face mesh finds 478 landmarks whose inner-lip gap agrees with the ground
truth; a written corpus round-trips through mp4 and resumes. About 30 s.
"""

import json

import numpy as np
import pytest

from s2v_jax.errors import S2VError
from s2v_jax.synth import articulation as art
from s2v_jax.synth import corpus, generate_clip, generate_corpus, make_speaker
from s2v_jax.synth.speech import SAMPLE_RATE

FPS = 25.0
HOP = int(SAMPLE_RATE / FPS)  # 640 samples per video frame


def frame_rms(wav: np.ndarray, num_frames: int) -> np.ndarray:
    """RMS of the 40 ms of audio centred on each frame time k / 25: [T]."""
    padded = np.pad(wav.astype(np.float64), HOP // 2)
    return np.array([np.sqrt(np.mean(padded[k * HOP:(k + 1) * HOP] ** 2)) for k in range(num_frames)])


def lagged_r(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Pearson r of a[k] with b[k + lag]."""
    n = len(a)
    if lag >= 0:
        return float(np.corrcoef(a[:n - lag], b[lag:])[0, 1])
    return float(np.corrcoef(a[-lag:], b[:n + lag])[0, 1])


def test_clip_shapes_and_determinism():
    a = generate_clip(11, num_frames=30, size=96)
    b = generate_clip(11, num_frames=30, size=96)
    assert a.frames.shape == (30, 96, 96, 3) and a.frames.dtype == np.uint8
    assert a.audio.shape == (30 * HOP,) and a.audio.dtype == np.float32
    assert np.abs(a.audio).max() <= 1.0
    for name in ("mouth_open", "mouth_width", "f0", "phoneme"):
        assert getattr(a, name).shape == (30,)
    assert a.head_pose.shape == (30, 4) and a.keypoints.shape == (30, 7, 2)
    assert 0.0 <= a.mouth_open.min() and a.mouth_open.max() <= 1.0
    np.testing.assert_array_equal(a.frames, b.frames)
    ga, gb = a.ground_truth(), b.ground_truth()
    assert ga.keys() == gb.keys()
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k], err_msg=k)
    c = generate_clip(12, num_frames=30, size=96)
    assert not np.array_equal(a.audio, c.audio) and not np.array_equal(a.frames, c.frames)
    # The timeline tiles the clip and the per-frame labels come from it.
    assert a.phonemes[0][1] == 0.0 and abs(a.phonemes[-1][2] - 30 / FPS) < 1e-9
    assert all(p[2] == q[1] for p, q in zip(a.phonemes, a.phonemes[1:]))


def test_mouth_follows_audio_envelope_at_lag_zero():
    for seed in range(4):
        spk = make_speaker(100 + seed)
        _, wav, tracks = corpus.clip_speech(seed, spk, 100)
        mouth = art.sample_at(tracks["open"], np.arange(100) / FPS)
        rms = frame_rms(wav, 100)
        rs = {lag: lagged_r(mouth, rms, lag) for lag in range(-3, 4)}
        assert rs[0] > 0.8, rs
        assert max(rs, key=rs.get) == 0, rs  # no lag between the mouth and the sound


def test_mouth_is_learnable_from_mfcc_on_unseen_speakers():
    """Ridge regression on 12x35 MFCC windows predicts the opening of new speakers."""
    from s2v_jax.media.audio import compute_mfcc, mfcc_windows

    xs, ys, spk_of = [], [], []
    for j in range(12):
        spk = make_speaker(j % 4)
        _, wav, tracks = corpus.clip_speech(500 + j, spk, 75)
        xs.append(mfcc_windows(compute_mfcc(wav), 75).reshape(75, -1))
        ys.append(art.sample_at(tracks["open"], np.arange(75) / FPS))
        spk_of.append(np.full(75, j % 4))
    x, y, s = np.concatenate(xs), np.concatenate(ys), np.concatenate(spk_of)
    train = s < 3
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    a = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(a[train].T @ a[train] + 30.0 * np.eye(a.shape[1]), a[train].T @ y[train])
    pred = a[~train] @ w
    assert np.corrcoef(pred, y[~train])[0, 1] > 0.8
    static_err = np.abs(y[~train] - np.median(y[train])).mean()
    assert np.abs(pred - y[~train]).mean() < 0.7 * static_err


def test_speakers_differ_in_pitch_and_face():
    import librosa

    speakers = [make_speaker(i) for i in range(6)]
    assert len({round(s.voice.f0, 3) for s in speakers}) == 6
    assert len({(s.face.skin, s.face.face_w, s.face.eye_spacing) for s in speakers}) == 6
    assert all(90 <= s.voice.f0 <= 250 for s in speakers)
    # The pitch heard in the audio is the speaker's: low vs high voice.
    lo = min(speakers, key=lambda s: s.voice.f0)
    hi = max(speakers, key=lambda s: s.voice.f0)
    assert hi.voice.f0 > 1.3 * lo.voice.f0
    heard = []
    for spk in (lo, hi):
        _, wav, tracks = corpus.clip_speech(7, spk, 75)
        f0 = librosa.yin(wav.astype(np.float64), fmin=60, fmax=400, sr=SAMPLE_RATE, frame_length=1024,
                         hop_length=160, center=True)
        voiced = art.sample_at(tracks["amp"], np.arange(len(f0)) / 100.0) > 0.4  # loud vowels
        est, truth = np.median(f0[voiced]), np.median(art.sample_at(tracks["f0"], np.arange(len(f0)) / 100.0)[voiced])
        assert abs(est / truth - 1) < 0.1, (est, truth)
        heard.append(est)
    assert heard[1] > 1.25 * heard[0]


def test_mediapipe_finds_faces_and_lips_follow_ground_truth():
    import mediapipe as mp

    det = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
    for seed in (1, 4, 9):
        clip = generate_clip(seed, num_frames=40, size=160)
        assert det.process(clip.frames[0]).detections, f"no face detected, seed {seed}"
        gt, lip = [], []
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                             refine_landmarks=True) as mesh:
            for k, frame in enumerate(clip.frames):
                res = mesh.process(frame)
                assert res.multi_face_landmarks, f"no face mesh on seed {seed} frame {k}"
                lm = res.multi_face_landmarks[0].landmark
                assert len(lm) == 478
                p = np.array([[q.x, q.y] for q in lm]) * 160
                face_h = np.linalg.norm(p[10] - p[152])  # forehead to chin
                gt.append(clip.mouth_open[k])
                lip.append(np.linalg.norm(p[13] - p[14]) / face_h)  # inner-lip gap
                # Ground-truth keypoints sit on MediaPipe's: iris centres and mouth corners.
                err = np.linalg.norm(p[[468, 473, 61, 291]] - clip.keypoints[k, [0, 1, 3, 4]], axis=1)
                assert err.max() < 0.06 * face_h
        assert np.std(gt) > 0.1
        assert np.corrcoef(gt, lip)[0, 1] > 0.8, seed
    det.close()


def test_corpus_roundtrip_resume_and_cli(tmp_path, capsys):
    from s2v_jax.cli import main
    from s2v_jax.media import video
    from s2v_jax.media.audio import load_audio

    out = tmp_path / "corpus"
    m = generate_corpus(out, 3, seed=5, num_speakers=2, clip_seconds=(1.0, 1.4), size=96, progress=False)
    disk = json.loads((out / "manifest.json").read_text())
    assert disk["clips"] == m["clips"] and len(disk["speakers"]) == 2
    assert [c["speaker"] for c in m["clips"]] == ["spk000", "spk001", "spk000"]
    c0 = m["clips"][0]
    mp4, npz = out / c0["video"], out / c0["ground_truth"]
    assert mp4 == out / "spk000" / "clip00000.mp4" and npz.is_file()
    info = video.probe(mp4)
    assert info.has_audio and (info.width, info.height) == (96, 96)
    frames = list(video.iter_frames(mp4))
    gt = dict(np.load(npz))
    t = c0["num_frames"]
    assert len(frames) == t == len(gt["mouth_open"]) and 25 <= t <= 35
    # Same seed, same clip: the file matches an in-memory regeneration.
    clip = generate_clip(c0["seed"], num_frames=t, size=96, speaker=make_speaker(disk["speakers"][0]["seed"]))
    np.testing.assert_array_equal(clip.mouth_open, gt["mouth_open"])
    assert np.abs(np.asarray(frames, np.float32) - clip.frames).mean() < 4.0  # H.264 loss only
    sound = load_audio(mp4)
    ref = gt["audio"].astype(np.float32) / 32767
    assert abs(len(sound) - len(ref)) <= 160
    n = min(len(sound), len(ref))
    assert np.corrcoef(sound[:n], ref[:n])[0, 1] > 0.9  # AAC round trip, no shift
    # Re-running skips complete clips; a missing ground truth is regenerated identically.
    mtime = mp4.stat().st_mtime_ns
    assert generate_corpus(out, 3, seed=5, num_speakers=2, clip_seconds=(1.0, 1.4), size=96,
                           progress=False)["skipped_existing"] == 3
    assert mp4.stat().st_mtime_ns == mtime
    npz.unlink()
    m2 = main(["synth", "--out", str(out), "--num-clips", "3", "--seed", "5", "--num-speakers", "2",
               "--seconds", "1.0", "1.4", "--size", "96", "--no-progress"])
    assert m2 == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["clips"] == 3 and summary["skipped_existing"] == 2
    np.testing.assert_array_equal(dict(np.load(npz))["audio"], gt["audio"])


def test_bad_arguments_raise_s2v_errors(tmp_path):
    with pytest.raises(S2VError):
        generate_clip(0, num_frames=2)
    with pytest.raises(S2VError):
        generate_corpus(tmp_path, 0, progress=False)
    with pytest.raises(S2VError):
        generate_corpus(tmp_path, 2, clip_seconds=(3.0, 1.0), progress=False)
    with pytest.raises(S2VError):
        generate_corpus(tmp_path, 2, size=32, progress=False)
