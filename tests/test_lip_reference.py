"""The pixel-free AV-offset reference (s2v_jax.evaluation.lip_reference): fitted on
synthetic tracks whose MFCC windows carry the mouth opening, it finds a known audio
delay on a track it never saw, with the sign `s2v sync` uses; a still mouth gives no
offset; bad input is refused."""

import numpy as np
import pytest

from s2v_jax.evaluation import lip_reference, metrics


def opening_landmarks(opening):
    """[T, 478, 2] with inter-ocular distance 40 and the inner lips apart by opening * 40."""
    lm = np.zeros((len(opening), 478, 2), np.float32)
    lm[:, 33], lm[:, 133] = (10, 50), (30, 50)
    lm[:, 362], lm[:, 263] = (50, 50), (70, 50)
    for upper, lower in metrics.INNER_LIP_PAIRS:
        lm[:, upper] = np.stack([np.full(len(opening), 40.0), np.full(len(opening), 80.0)], -1)
        lm[:, lower] = np.stack([np.full(len(opening), 40.0), 80.0 + 40.0 * np.asarray(opening)], -1)
    return lm


def synthetic_track(rng, n, mixing):
    """A smooth random mouth opening (0..0.3) and MFCC windows [n, 12, 35] that carry it, plus noise."""
    o = np.convolve(rng.normal(size=n + 8), np.hanning(7), "same")[4:4 + n]
    o = 0.3 * (o - o.min()) / (o.max() - o.min())
    mfcc = mixing[None] * o[:, None, None] + 0.3 * rng.normal(size=(n, 12, 35))
    return mfcc.astype(np.float32), o


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(12, 35))
    train = []
    for _ in range(6):
        mfcc, o = synthetic_track(rng, 200, mixing)
        train.append((mfcc, metrics.mouth_opening(opening_landmarks(o))))
    ref = lip_reference.fit(train, epochs=15, batch_size=64, hidden=(32,), ensemble=2)
    return ref, rng, mixing


@pytest.mark.parametrize("k", [-3, 0, 2])
def test_reference_finds_a_known_audio_delay_on_an_unseen_track(fitted, k):
    ref, rng, mixing = fitted
    mfcc, o = synthetic_track(np.random.default_rng(100 + k), 160, mixing)
    lm = opening_landmarks(o)
    # sound k frames late: frame t + k against audio t (as benchmarks/sync_judge.py's `delayed`)
    if k >= 0:
        lm, mfcc = lm[k:], mfcc[:len(mfcc) - k]
    else:
        lm, mfcc = lm[:len(lm) + k], mfcc[-k:]
    res = ref.offset(mfcc, metrics.mouth_opening(lm))
    assert res["offset"] == k
    assert res["correlation"] > 0.5


def test_reference_gives_no_offset_for_a_still_mouth(fitted):
    ref, rng, mixing = fitted
    mfcc, _ = synthetic_track(np.random.default_rng(7), 100, mixing)
    res = ref.offset(mfcc, metrics.mouth_opening(opening_landmarks(np.full(100, 0.1))))
    assert res["offset"] is None and res["correlation"] is None


def test_reference_refuses_mismatched_lengths_and_empty_training(fitted):
    ref, rng, mixing = fitted
    mfcc, o = synthetic_track(np.random.default_rng(3), 50, mixing)
    with pytest.raises(ValueError, match="one MFCC window per frame"):
        ref.offset(mfcc[:40], o)
    with pytest.raises(ValueError, match="at least one track"):
        lip_reference.fit([(mfcc[:5], o[:5])])  # shorter than 10 frames: nothing to fit
    with pytest.raises(ValueError, match="fitted on MFCC windows of 420 values"):
        ref.predict(np.zeros((5, 12, 20), np.float32))


def test_judge_benchmark_counts_hits_against_the_reference_offset(monkeypatch):
    """benchmarks/sync_judge.py --reference: a clip whose own sound is 2 frames late and a judge that
    says so agree with the reference, and its shifted answers (k + 2) are hits against k + reference."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "sync_judge.py"
    spec = importlib.util.spec_from_file_location("sync_judge_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    class FixedReference:
        def __init__(self, offsets):
            self.offsets = offsets

        def offset(self, mfcc, opening):
            return {"offset": self.offsets[len(mfcc)], "correlation": 0.4}

    lm = opening_landmarks(np.linspace(0.0, 0.2, 60))
    monkeypatch.setattr(bench, "LANDMARKS", {"late#0": ("late.mp4", 0, lm), "wrong#0": ("w.mp4", 0, lm[:59])})
    mfcc = {"late#0": np.zeros((60, 12, 35)), "wrong#0": np.zeros((59, 12, 35))}
    clips = [{"name": "late#0", "offsets": {"-4": -2, "0": 2, "4": 6}},   # tracks every shift, own offset +2
             {"name": "wrong#0", "offsets": {"-4": 9, "0": 9, "4": 9}},   # a lost judge
             {"name": "anchor@0", "offsets": {"-4": -4, "0": 0, "4": 4}}]  # no landmarks: no reference
    rows = {"row": {}}
    bench.add_reference(clips, rows, {"row": clips}, FixedReference({60: 2, 59: 0}), mfcc)
    assert clips[0]["reference_offset"] == 2 and "reference_offset" not in clips[2]
    assert rows["row"] == {"reference_clips": 2, "judge_agrees_reference": 0.5, "hits_vs_reference": 0.5}


def test_the_ensemble_predicts_its_members_mean(fitted):
    ref, rng, mixing = fitted
    assert len(ref.variables) == 2
    mfcc, _ = synthetic_track(np.random.default_rng(11), 40, mixing)
    a, b = (lip_reference.LipReference([v], ref.mean, ref.std, (32,)).predict(mfcc) for v in ref.variables)
    assert not np.allclose(a, b)  # two seeds, two different regressors
    np.testing.assert_allclose(ref.predict(mfcc), (a + b) / 2, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.shared_data
def test_reference_fitted_on_real_sentences_follows_a_known_delay(real_data):
    """Fitted on 30 GRID sentences of one speaker (grid_s1), it follows a delay of the sound by
    4 and -3 frames on 3 of his sentences it never saw."""
    from s2v_jax import faces
    from s2v_jax.faces.preprocess import preprocess_video
    from s2v_jax.media import audio

    videos = sorted((real_data / "corpus" / "grid_s1").glob("*.mp4"))
    if len(videos) < 33:
        pytest.skip("grid_s1 is absent or incomplete")

    def track(path):
        pv = preprocess_video(path)
        t = faces.largest_track(pv.tracks)
        windows = audio.mfcc_windows(audio.compute_mfcc(audio.load_audio(path)), pv.num_frames)
        return windows[t.start_frame:t.end_frame], metrics.mouth_opening(t.landmarks)

    ref = lip_reference.fit([track(v) for v in videos[:30]], epochs=20, batch_size=64, ensemble=2)
    for path in videos[30:33]:
        mfcc, opening = track(path)
        own = ref.offset(mfcc, opening)["offset"]
        assert own is not None and abs(own) <= 2, (path.name, own)
        for k in (4, -3):  # frames k.. against audio 0.. (k < 0: frames 0.. against audio -k..)
            m, o = (mfcc[:len(mfcc) - k], opening[k:]) if k > 0 else (mfcc[-k:], opening[:len(opening) + k])
            got = ref.offset(m, o)["offset"]
            assert got is not None and abs(got - own - k) <= 1, (path.name, k, own, got)
