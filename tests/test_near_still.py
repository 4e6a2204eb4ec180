"""Near-still mouths for the hardened judge: the motion shrink itself (frozen at 0, the
frames at 1, between them in between, no cross-fade), the sampler's near-still copies
(same shape, less motion, augmented alike, off by default), the loss terms by hand, and
validation metrics averaged over the windows they describe."""

import numpy as np

from fakes import toy_config, toy_tracks


def _jaw(still, px):
    """`still` with its lower face pulled down by up to `px` rows (a smooth field, as a jaw opens)."""
    import cv2

    h, w = still.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    bump = px * np.exp(-0.5 * ((gy - 85) / 12.0) ** 2) * np.exp(-0.5 * ((gx - 56) / 25.0) ** 2)
    return cv2.remap(still, gx, gy - bump.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_shrink_motion_freezes_keeps_and_scales_the_motion():
    import cv2

    from s2v_jax.data.near_still import shrink_motion

    rng = np.random.default_rng(0)
    still = cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3)).astype(np.uint8), (0, 0), 2.0)
    window = np.stack([_jaw(still, px) for px in (2.0, 4.0, 6.0, 4.0, 2.0)])
    frozen = shrink_motion(window, still, 0.0)
    assert frozen.shape == window.shape and all(np.array_equal(f, still) for f in frozen)
    err = lambda a, b: np.abs(a.astype(np.float32) - b.astype(np.float32)).mean()  # noqa: E731
    full, half = shrink_motion(window, still, 1.0), shrink_motion(window, still, 0.5)
    halfway = np.stack([_jaw(still, px / 2) for px in (2.0, 4.0, 6.0, 4.0, 2.0)])
    for i in (1, 2):  # the moved frames: recovered at 1, halfway at 0.5 (a warp, not a blend)
        assert err(full[i], window[i]) < 0.35 * err(still, window[i]), (err(full[i], window[i]), err(still, window[i]))
        assert err(half[i], halfway[i]) < 0.5 * min(err(half[i], window[i]), err(half[i], still)) + 1e-3
        blend = (0.5 * still.astype(np.float32) + 0.5 * window[i]).astype(np.uint8)
        assert err(half[i], halfway[i]) < err(blend, halfway[i])
    lower = shrink_motion(window, still, 1.0, from_row=56)  # the judge's lower face only
    assert all(np.array_equal(f[:56], still[:56]) for f in lower)
    assert err(lower[2][56:], window[2][56:]) < 0.35 * err(still[56:], window[2][56:])


def test_shrink_motion_rejects_bad_input():
    import pytest

    from s2v_jax.data.near_still import shrink_motion

    frames = np.zeros((5, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="alpha"):
        shrink_motion(frames, frames[0], 1.5)
    with pytest.raises(ValueError, match="still"):
        shrink_motion(frames, frames[0, :16], 0.5)


def test_the_most_closed_candidate_is_the_still():
    from s2v_jax.data.near_still import closest_to_closed

    lm = np.zeros((6, 478, 2), np.float32)
    lm[:, 33], lm[:, 133], lm[:, 362], lm[:, 263] = (0, 0), (10, 0), (30, 0), (40, 0)  # eye centres 30 apart
    for t, gap in enumerate([6.0, 3.0, 0.5, 9.0, 1.0, 4.0]):
        for u, low in ((82, 87), (13, 14), (312, 317)):
            lm[t, u], lm[t, low] = (20, 50), (20, 50 + gap)
    assert closest_to_closed(lm, np.array([0, 1, 3, 5])) == 1
    assert closest_to_closed(lm, np.array([3, 2, 4])) == 2
    assert closest_to_closed(None, np.array([4, 2])) == 4


def test_sampler_gives_near_still_copies_with_less_motion():
    from s2v_jax.data import sync_samples

    tracks = toy_tracks(2, 40, 1)
    config = toy_config(["data.num_negatives=4", "data.near_still=1.0", "data.near_still_motion=0.3"])
    loader = sync_samples.make_loader(sync_samples.ArrayTracks(tracks), config, batch_size=16, seed=0,
                                      augment=False, debug=True)
    b = next(loader)
    assert b["video_still"].shape == b["video"].shape == (16, 56, 112, 5) and b["video_still"].dtype == np.uint8
    assert b["still"].shape == (16,) and np.all(b["still"] == 1.0)
    motion = lambda v: np.abs(np.diff(v.astype(np.float32), axis=-1)).mean()  # noqa: E731
    real = np.mean([motion(v) for v in b["video"]])
    shrunk = np.mean([motion(v) for v in b["video_still"]])
    assert shrunk < 0.5 * real, (shrunk, real)
    # augmented alike: the same flip, shift, brightness on the window and its copy
    aug = toy_config(["data.near_still=1.0", "data.near_still_motion=0.0", "data.augment_shift_px=4"])
    kw = sync_samples.MakeSyncSample(aug, augment=True).kw
    for seed in range(4):
        frames = np.repeat(tracks[0]["frames"][:1], 40, axis=0)  # no motion at all: the copy is the window
        out = sync_samples.sync_sample(np.random.default_rng(seed), frames, tracks[0]["mfcc"], 40, 20, **kw)
        np.testing.assert_array_equal(out["video_still"], out["video"])
    # a fraction of the windows count; off by default: no new keys, the old samples
    half = toy_config(["data.near_still=0.5"])
    counted = next(sync_samples.make_loader(sync_samples.ArrayTracks(tracks), half, batch_size=32, seed=0,
                                            augment=False))["still"]
    assert 0 < counted.sum() < 32
    plain = next(sync_samples.make_loader(sync_samples.ArrayTracks(tracks), toy_config(), batch_size=8, seed=0,
                                          augment=False))
    assert "video_still" not in plain and "still" not in plain


def test_near_still_terms_by_hand():
    import jax.numpy as jnp

    from s2v_jax.train.tasks.sync import SyncTask

    task = SyncTask(loss_type="nway", temperature=1.0, near_still_weight=2.0)
    flat, prefer = task.near_still_terms(jnp.array([0.5, 0.5]), jnp.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]))
    p = np.exp([0.0, -1.0, -1.0]) / np.exp([0.0, -1.0, -1.0]).sum()
    np.testing.assert_allclose(flat, [0.0, -np.mean(np.log(p)) - np.log(3)], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prefer, [np.log(1 + np.exp(-0.5)), np.log(1 + np.exp(0.5))], rtol=1e-5)
    # only windows marked 'still' add them, with the weight
    batch = {"still": jnp.array([1.0, 0.0])}
    d_pos, d_neg = jnp.array([0.5, 0.5]), jnp.array([[1.0, 1.0], [1.0, 1.0]])
    d_still = jnp.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    loss, sums, n = task._window_terms(batch, d_pos, d_neg, d_still)
    base = task.per_window_loss(d_pos, d_neg)
    f, pr = task.near_still_terms(d_pos, d_still)
    np.testing.assert_allclose(loss, [base[0] + 2.0 * (f[0] + pr[0]), base[1]], rtol=1e-6)
    assert float(n) == 1.0 and float(sums["still_real_closer"]) == 0.0  # 0.5 > 0.0: the still copy is closer


def test_validation_divides_a_subset_metric_by_its_own_count():
    import jax.numpy as jnp

    from s2v_jax.train import loop

    class OneDevice:
        def shard_batch(self, b):
            return b

        def fetch(self, x):
            return {k: np.asarray(v) for k, v in x.items()}

    batches = [{"loss": 4.0, "count": 4.0, "still_conf": 1.0, "still_count": 1.0},
               {"loss": 2.0, "count": 4.0, "still_conf": 2.0, "still_count": 3.0}]
    out = loop.evaluate(lambda s, b: {k: jnp.asarray(v) for k, v in b.items()}, None, batches, OneDevice())
    assert out == {"loss": 0.75, "still_conf": 0.75}


def test_generated_copies_replace_the_shrunk_copy_with_the_same_window(tmp_path):
    """A directory of generated tracks (what `python -m s2v_jax.inference.generated_negatives` writes) gives the
    sampler the generator's frames of the window's own positions; tracks without one keep the shrunk copy."""
    import json

    import pytest

    from s2v_jax.data import sync_samples
    from s2v_jax.data.generated_negatives import GeneratedCopies, GeneratedSets, choose_records
    from s2v_jax.data.sync_inputs import frame_indices, video_input
    from s2v_jax.errors import DataError

    tracks = toy_tracks(2, 40, 1)
    made = np.stack([np.full((112, 112, 3), 3 * t, np.uint8) for t in range(40)])  # frame t's value: 3t
    np.save(tmp_path / "r000000.npy", made)
    (tmp_path / "index.json").write_text(json.dumps({"dataset": "toy", "records": {"0": 40}}))
    copies = GeneratedCopies(str(tmp_path), dataset="toy")
    assert len(copies) == 1 and copies.get(1) is None and copies.get(0, 39) is None
    with pytest.raises(DataError, match="other tracks"):
        GeneratedCopies(str(tmp_path), dataset="registered_faces/real")
    (tmp_path / "index.json").write_text(json.dumps({"dataset": "toy/real/1.0.0", "records": {"0": 40}}))
    assert len(GeneratedCopies(str(tmp_path), dataset="toy/real")) == 1
    (tmp_path / "index.json").write_text(json.dumps({"dataset": "toy", "records": {"0": 40}}))
    with pytest.raises(DataError, match="index.json"):
        GeneratedCopies(str(tmp_path / "absent"))
    config = toy_config(["data.near_still=1.0", "data.generated_negatives_prob=1.0"])
    loader = sync_samples.make_loader(sync_samples.ArrayTracks(tracks), config, batch_size=16, seed=0,
                                      augment=False, debug=True, generated=GeneratedSets([str(tmp_path)], "toy"))
    b = next(loader)
    assert set(b["record"].tolist()) == {0, 1}
    for i in range(16):
        if b["record"][i] == 0:
            want = video_input(made[frame_indices(int(b["centre"][i]), 40)], 56, True)
            np.testing.assert_array_equal(b["video_still"][i], want)
        else:  # no generated copy: a shrunk real window (not constant per frame)
            assert b["video_still"][i].std() > 0
    # a second generator's copies (DIR1,DIR2): record 0 has two, drawn per window; record 1 has one
    other = tmp_path / "other"
    other.mkdir()
    made_b = {0: made + 1, 1: made + 2}
    for r, m in made_b.items():
        np.save(other / f"r{r:06d}.npy", m)
    (other / "index.json").write_text(json.dumps({"dataset": "toy", "records": {"0": 40, "1": 40}}))
    sets = GeneratedSets(f"{tmp_path},{other}", "toy")
    assert len(sets) == 2 and len(sets.choices(0)) == 2 and len(sets.choices(1)) == 1
    loader = sync_samples.make_loader(sync_samples.ArrayTracks(tracks), config, batch_size=32, seed=1,
                                      augment=False, debug=True, generated=sets)
    b = next(loader)
    drawn = set()
    for i in range(32):
        r, idx = int(b["record"][i]), frame_indices(int(b["centre"][i]), 40)
        options = {"a": made, "b": made_b[0]} if r == 0 else {"b": made_b[1]}
        hits = [k for k, m in options.items() if np.array_equal(b["video_still"][i], video_input(m[idx], 56, True))]
        assert len(hits) == 1, (r, hits)
        drawn.add((r, hits[0]))
    assert {(0, "a"), (0, "b"), (1, "b")} <= drawn
    picked = choose_records(["a/1", "a/2", "a/3", "b/1", "held/1"], 2, skip_prefixes=("held/",))
    assert len(picked) == 3 and sum(s.startswith("a/") for s in picked.values()) == 2 and picked[3] == "b/1"
