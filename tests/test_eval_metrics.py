"""Evaluation measures against hand-computed values on tiny inputs, LMD 0 for
identical frames, and the landmark AV offset following a known audio shift
on real clips (../shared/data/real, skipped where absent)."""

import numpy as np
import pytest

from s2v_jax.evaluation import metrics


def face_landmarks(num_frames=1):
    """[T, 478, 2] zeros with eye corners placed so the inter-ocular distance is 40:
    right eye corners (10, 50), (30, 50) -> centre (20, 50); left (50, 50), (70, 50) -> (60, 50)."""
    lm = np.zeros((num_frames, 478, 2), np.float32)
    lm[:, 33], lm[:, 133] = (10, 50), (30, 50)
    lm[:, 362], lm[:, 263] = (50, 50), (70, 50)
    for i, p in enumerate(metrics.MOUTH_POINTS):
        lm[:, p] = (30 + i, 80)
    return lm


# ---------------------------------------------------------------- landmarks

def test_inter_ocular_distance_is_between_eye_centres():
    assert metrics.inter_ocular_distance(face_landmarks(2)).tolist() == [40.0, 40.0]


def test_lmd_by_hand():
    real = face_landmarks(2)
    gen = real.copy()
    gen[0, list(metrics.MOUTH_POINTS)] += (4, 0)  # frame 0: every lip point 4 px off -> 4 / 40
    half = list(metrics.MOUTH_POINTS)[:20]
    gen[1, half] += (3, 4)  # frame 1: half the points 5 px off -> (20 * 5 / 40) / 40
    np.testing.assert_allclose(metrics.lmd_per_frame(gen, real), [0.1, 0.0625], rtol=1e-6)
    assert metrics.lmd(gen, real) == pytest.approx((0.1 + 0.0625) / 2)
    gen[0, 5] += 100  # a non-lip point does not count
    np.testing.assert_allclose(metrics.lmd_per_frame(gen, real), [0.1, 0.0625], rtol=1e-6)


def test_lmd_zero_for_identical_and_skips_missing_faces():
    real = face_landmarks(3)
    assert metrics.lmd(real, real.copy()) == 0.0
    gen = real.copy()
    gen[1] = np.nan  # no face found in generated frame 1
    gen[2, list(metrics.MOUTH_POINTS)] += (8, 0)
    assert np.isnan(metrics.lmd_per_frame(gen, real)[1])
    assert metrics.lmd(gen, real) == pytest.approx(0.1)  # mean of frames 0 (0.0) and 2 (0.2)
    assert np.isnan(metrics.lmd(np.full_like(real, np.nan), real))


def test_mouth_opening_by_hand():
    lm = face_landmarks(1)
    for (up, low), gap in zip(metrics.INNER_LIP_PAIRS, (6.0, 8.0, 10.0)):
        lm[0, up], lm[0, low] = (40, 70), (40, 70 + gap)
    assert metrics.mouth_opening(lm)[0] == pytest.approx(8.0 / 40.0)


def test_lmd_zero_for_identical_frames_through_the_detector():
    from s2v_jax.evaluation.evaluate import crop_landmarks
    from s2v_jax.synth import generate_clip

    frames = generate_clip(3, num_frames=6, size=112, motion=0.0).frames
    a, b = crop_landmarks(frames), crop_landmarks(frames.copy())
    assert np.isfinite(a).all(), "the face mesh should find the synthetic face in every frame"
    assert metrics.lmd(a, b) == 0.0
    assert np.isfinite(metrics.mouth_opening(a)).all()


# ---------------------------------------------------------------- audio envelope and landmark sync

def test_audio_envelope_by_hand():
    wav = np.full(16000, 0.5, np.float32)  # 1 s: frames 0..24
    env = metrics.audio_envelope(wav, 26)
    assert env[1:24] == pytest.approx(np.full(23, 0.5))
    assert env[0] == pytest.approx(0.5 * np.sqrt(0.5))  # half the 40 ms window lies before the clip
    assert env[25] == pytest.approx(0.5 * np.sqrt(0.5))  # ... and after it
    impulse = np.zeros(16000, np.float32)
    impulse[3 * 640] = 1.0  # time 3 / 25 s
    env = metrics.audio_envelope(impulse, 25)
    assert env[3] == pytest.approx(np.sqrt(1 / 640))
    assert np.count_nonzero(env) == 1


def test_lagged_correlation_by_hand():
    a = np.array([0.0, 1.0, 0.0, -1.0, 0.0])
    # z = a / sqrt(0.4); c(d) = sum z[k-d] z[k] / 5: c(0) = 1, c(+-1) = 0, c(+-2) = -2.5 / 5
    c = metrics.lagged_correlation(a, a, max_offset=2, detrend_frames=1, min_frames=3)
    np.testing.assert_allclose(c, [-0.5, 0.0, 1.0, 0.0, -0.5], atol=1e-12)
    assert np.isnan(metrics.lagged_correlation(a, np.ones(5), 2, 1, 3)).all()  # constant mouth


@pytest.mark.parametrize("delay", [4, -3, 0])
def test_landmark_offset_sign(delay):
    rng = np.random.default_rng(0)
    audio = np.convolve(rng.normal(size=140), np.ones(3) / 3, mode="same")
    mouth = np.roll(audio, -delay)[20:120]  # mouth[k] = audio[k + delay]: the sound comes `delay` frames late
    result = metrics.landmark_sync(audio[20:120], mouth)
    assert result["offset"] == delay
    assert result["correlation"] > 0.9
    assert len(result["correlations"]) == 31 and result["offsets"][0] == -15


# ---------------------------------------------------------------- SyncNet distances

def test_sync_distances_and_lse_by_hand():
    v = np.array([[0.0], [1.0], [2.0]])
    d = metrics.sync_distances(v, v.copy(), max_offset=2)
    np.testing.assert_allclose(d, [2.0, 1.0, 0.0, 1.0, 2.0])
    assert metrics.lse_scores(d) == {"lse_d": 0.0, "lse_c": 1.0, "av_offset": 0}
    # syncnet_python's zero padding: D(1) = (|0 - 0| + |1 - 0| + |2 - 1|) / 3
    z = metrics.sync_distances(v, v.copy(), max_offset=2, edge="zeros")
    assert z[3] == pytest.approx(2 / 3) and z[2] == 0.0


def test_lse_offset_follows_an_audio_shift():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 8))
    delayed = emb[np.clip(np.arange(40) - 5, 0, 39)]  # audio delayed 5 frames: the sound comes 5 frames late
    scores = metrics.lse_scores(metrics.sync_distances(emb, delayed))
    assert scores["av_offset"] == 5 and scores["lse_d"] == 0.0 and scores["lse_c"] > 1.0


# ---------------------------------------------------------------- image quality (s2v_jax.train.metrics)

def test_image_quality_by_hand():
    real = np.zeros((2, 16, 16, 3), np.uint8)
    pred = np.full_like(real, 26)
    q = metrics.image_quality(pred, real)
    assert q["psnr"] == pytest.approx(-20 * np.log10(26 / 255), rel=1e-5)
    same = metrics.image_quality(real + 7, real + 7)
    assert same["ssim"] == pytest.approx(1.0) and same["psnr"] == pytest.approx(100.0)


def test_sharpness_by_hand_blur_lowers_it_and_only_the_lower_face_counts():
    import cv2

    flat = np.full((1, 112, 112, 3), 90, np.uint8)
    assert metrics.sharpness(flat) == 0.0
    # one white pixel on grey 90 in the lower face: the 4-neighbour Laplacian is -4*165 there and
    # +165 at its 4 neighbours, 0 elsewhere in the 52x76 region
    dot = flat.copy()
    dot[0, 80, 50] = 255
    lap = np.zeros((52, 76))
    lap[80 - 54, 50 - 18] = -4 * 165.0
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        lap[80 - 54 + dy, 50 - 18 + dx] = 165.0
    assert metrics.sharpness(dot) == pytest.approx(lap.var())
    above = flat.copy()
    above[0, 20, 50] = 255  # the eyes' rows: outside the region
    assert metrics.sharpness(above) == 0.0
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (2, 112, 112, 3)).astype(np.uint8)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in noise])
    assert metrics.sharpness(blurred) < 0.2 * metrics.sharpness(noise)
    with pytest.raises(ValueError, match="sharpness needs a video"):
        metrics.sharpness(noise[0])


# ---------------------------------------------------------------- real clips: a known shift moves the offset

REAL_CLIPS = ("corpus/voxceleb2_style/00086.mp4", "corpus/voxceleb2_style/00010.mp4",
              "corpus/lrs2/6046013437125640989/00029.mp4")


def advance(wav, frames):
    """Audio advanced by `frames` 25 fps frames (it then leads the video by that much)."""
    n = frames * 640
    if n >= 0:
        return np.concatenate([wav[n:], np.zeros(n, wav.dtype)])
    return np.concatenate([np.zeros(-n, wav.dtype), wav[:n]])


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", REAL_CLIPS)
def test_landmark_offset_recovers_audio_shift_on_real_clips(real_data, clip):
    from s2v_jax import faces
    from s2v_jax.faces.preprocess import preprocess_video
    from s2v_jax.media import audio

    path = real_data / clip
    pv = preprocess_video(path)
    track = faces.largest_track(pv.tracks)
    wav = audio.load_audio(path)
    opening = metrics.mouth_opening(track.landmarks)
    offsets = {}
    for k in (0, 3, 6, -3):
        env = metrics.audio_envelope(advance(wav, k), pv.num_frames)[track.start_frame:track.end_frame]
        offsets[k] = metrics.landmark_sync(env, opening)["offset"]
    assert abs(offsets[0]) <= 2, offsets  # the original clip is in sync
    for k in (3, 6, -3):
        assert abs(offsets[k] - offsets[0] + k) <= 1, (k, offsets)  # advanced by k: the sound is k early


def test_mouth_colour_reads_inside_the_lips_and_a_magenta_mouth_differs():
    import cv2

    from s2v_jax import faces

    lm = np.full((2, 478, 2), np.nan, np.float32)
    angle = np.linspace(0, 2 * np.pi, len(faces.LIPS_OUTER), endpoint=False)
    lm[0, list(faces.LIPS_OUTER)] = np.stack([56 + 16 * np.cos(angle), 84 + 8 * np.sin(angle)], axis=1)
    frames = np.zeros((2, 112, 112, 3), np.uint8)
    frames[:] = (200, 150, 120)  # skin everywhere
    inside = np.zeros((112, 112), np.uint8)
    cv2.fillPoly(inside, [np.round(lm[0, list(faces.LIPS_OUTER)]).astype(np.int32)], 1)
    frames[0][inside.astype(bool)] = (60, 20, 20)  # a dark red mouth
    lab = metrics.mouth_colour(frames, lm)
    assert np.isnan(lab[1]).all()  # no face in frame 1
    want = cv2.cvtColor(np.array([[[60, 20, 20]]], np.float32) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]
    np.testing.assert_allclose(lab[0], want, atol=0.5)
    magenta = frames.copy()
    magenta[0][inside.astype(bool)] = (160, 30, 150)
    assert metrics.mouth_colour_difference(lab, lab) == 0.0
    assert metrics.mouth_colour_difference(metrics.mouth_colour(magenta, lm), lab) > 20
    assert np.isnan(metrics.mouth_colour_difference(lab[1:], lab))
