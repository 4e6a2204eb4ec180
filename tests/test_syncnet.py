"""The sync expert: layer shapes, input windows, the sampler's pairs (in memory
and on synthetic_talking_faces/tiny), and a short training run on toy tracks
whose mouth follows the "speech": the loss falls, in-sync pairs end closer
than shifted ones, resume is exact, and LSE's AV offset follows a known audio
shift on held-out toy tracks. The training runs once, in a subprocess (fast
XLA compile flags, as tests/test_train.py), and reports JSON.
"""

import json
import os
import sys

import ckpt_fixture
from fakes import damage_step, toy_config, toy_tracks, truncate_largest
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ---------------------------------------------------------------- model and inputs (no compile)

def test_layer_shapes_at_full_width():
    import jax
    import jax.numpy as jnp

    from s2v_jax.models import syncnet

    config = toy_config(["model.width=1.0", "model.embed_dim=256"])
    model = syncnet.build_syncnet(config)
    shapes = syncnet.input_shapes(config)
    assert shapes == {"video": (56, 112, 5), "audio": (12, 20, 1)}
    video = jnp.zeros((2,) + shapes["video"], jnp.uint8)
    audio = jnp.zeros((2,) + shapes["audio"], jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), video, audio))
    p = variables["params"]
    assert p["audio_stream"]["fc6"]["conv"]["kernel"].shape == (5, 4, 256, 512)  # SyncNet's 5x4 fc6
    assert p["video_stream"]["fc6"]["conv"]["kernel"].shape == (3, 6, 512, 512)
    assert p["video_stream"]["conv1"]["conv"]["kernel"].shape == (5, 5, 5, 96)
    v, a = jax.eval_shape(model.apply, variables, video, audio)
    assert v.shape == a.shape == (2, 256)


def test_input_windows():
    from s2v_jax.data import sync_inputs

    window = np.tile(np.arange(35, dtype=np.float32), (12, 1))  # column j holds j
    audio = sync_inputs.audio_input(window)
    assert audio.shape == (12, 20, 1)
    assert audio[0, :, 0].tolist() == list(range(7, 27))  # steps centre-10 .. centre+9
    assert sync_inputs.frame_indices(0, 10).tolist() == [0, 0, 0, 1, 2]
    assert sync_inputs.frame_indices(9, 10).tolist() == [7, 8, 9, 9, 9]
    frames = np.zeros((5, 112, 112, 3), np.uint8)
    for i in range(5):
        frames[i] = 10 * i
    grey = sync_inputs.video_input(frames, 56, True)
    assert grey.shape == (56, 112, 5) and grey[0, 0].tolist() == [0, 10, 20, 30, 40]
    assert sync_inputs.video_input(frames, 56, False).shape == (56, 112, 15)


def test_sampler_pairs_in_memory():
    from s2v_jax.data import sync_inputs
    from s2v_jax.data import sync_samples

    config = toy_config(["data.min_offset=3", "data.max_offset=15"])
    tracks = toy_tracks(2, 30, 0)
    loader = sync_samples.make_loader(sync_samples.ArrayTracks(tracks), config, batch_size=8, seed=0, augment=False,
                                    debug=True)
    for _ in range(3):
        b = next(loader)
        assert b["video"].shape == (8, 56, 112, 5) and b["video"].dtype == np.uint8
        assert b["audio"].shape == b["audio_shifted"].shape == (8, 12, 20, 1)
        assert np.all((np.abs(b["offset"]) >= 3) & (np.abs(b["offset"]) <= 15))
        for i in range(8):
            tr, k, d = tracks[b["record"][i]], int(b["centre"][i]), int(b["offset"][i])
            np.testing.assert_array_equal(b["audio"][i], sync_inputs.audio_input(tr["mfcc"][k]))
            np.testing.assert_array_equal(b["audio_shifted"][i], sync_inputs.audio_input(tr["mfcc"][k - d]))
            expect = sync_inputs.video_input(tr["frames"][sync_inputs.frame_indices(k, 30)], 56, True)
            np.testing.assert_array_equal(b["video"][i], expect)
    state = loader.get_state()
    after = next(loader)
    loader.set_state(state)
    np.testing.assert_array_equal(next(loader)["offset"], after["offset"])  # resumable order


def test_sampler_gives_k_distinct_hard_negatives():
    from s2v_jax.data import sync_inputs
    from s2v_jax.data import sync_samples

    config = toy_config(["data.min_offset=2", "data.max_offset=15", "data.num_negatives=4"])
    tracks = toy_tracks(2, 40, 0)
    loader = sync_samples.make_loader(sync_samples.ArrayTracks(tracks), config, batch_size=8, seed=0, augment=False,
                                      debug=True)
    b = next(loader)
    assert b["audio_shifted"].shape == (8, 4, 12, 20, 1) and b["offset"].shape == (8, 4)
    for i in range(8):
        tr, k = tracks[b["record"][i]], int(b["centre"][i])
        d = b["offset"][i]
        assert len(set(d.tolist())) == 4 and np.all((np.abs(d) >= 2) & (np.abs(d) <= 15)), d
        for j in range(4):
            np.testing.assert_array_equal(b["audio_shifted"][i, j], sync_inputs.audio_input(tr["mfcc"][k - d[j]]))


def test_real_video_augmentation_moves_and_recompresses_all_five_frames_alike():
    from s2v_jax.data import sync_samples

    tracks = toy_tracks(1, 30, 0)
    kw = dict(lower_face_top=56, grayscale=True, min_offset=2, max_offset=15)
    plain = sync_samples.sync_sample(np.random.default_rng(3), tracks[0]["frames"], tracks[0]["mfcc"], 30, 12,
                                     augment=False, **kw)
    crops = tracks[0]["frames"][10:15]
    moved = sync_samples._translate(np.random.default_rng(0), crops, 4)
    shifts = set()
    for i in range(5):  # one translation for the five frames: the mouth bar moves by the same rows
        rows = np.where(moved[i, :, 56, 0] < 90)[0]
        orig = np.where(crops[i, :, 56, 0] < 90)[0]
        shifts.add(int(rows.min() - orig.min()))
    assert len(shifts) == 1 and abs(shifts.pop()) <= 4
    squeezed = sync_samples._recompress(np.random.default_rng(1), crops)
    assert squeezed.shape == crops.shape and squeezed.dtype == np.uint8
    assert 0 < np.abs(squeezed.astype(int) - crops).mean() < 12
    aug = sync_samples.sync_sample(np.random.default_rng(3), tracks[0]["frames"], tracks[0]["mfcc"], 30, 12,
                                   augment=True, shift_px=4, jpeg_prob=1.0, **kw)
    assert aug["video"].shape == plain["video"].shape and not np.array_equal(aug["video"], plain["video"])
    np.testing.assert_array_equal(aug["audio"], plain["audio"])  # the audio is never touched


def test_rotation_and_scale_augmentation_turn_all_five_frames_alike():
    from s2v_jax.data import sync_samples

    crops = np.full((5, 112, 112, 3), 200, np.uint8)
    crops[:, 50:62, 20:92] = 40  # a horizontal mouth bar, the same on every frame
    turned = sync_samples._translate(np.random.default_rng(0), crops, 0, max_deg=10.0, max_scale=0.1)
    assert turned.shape == crops.shape and turned.dtype == np.uint8
    for i in range(1, 5):  # one transform for the five frames
        np.testing.assert_array_equal(turned[i], turned[0])
    assert not np.array_equal(turned[0], crops[0])
    dark = np.argwhere(turned[0, :, :, 0] < 120)
    ys, xs = dark[:, 0], dark[:, 1]
    slope = np.polyfit(xs, ys, 1)[0]  # the bar is tilted by the drawn angle (at most 10 degrees)
    assert 0.005 < abs(slope) < np.tan(np.radians(10.5))
    width = xs.max() - xs.min() + 1  # and scaled by at most 10%
    assert 0.85 * 72 < width < 1.15 * 72
    # off: the shift-only transform of before (same draw, same pixels)
    a = sync_samples._translate(np.random.default_rng(5), crops, 4)
    b = sync_samples._translate(np.random.default_rng(5), crops, 4, 0.0, 0.0)
    np.testing.assert_array_equal(a, b)


def test_nway_loss_by_hand():
    import jax.numpy as jnp

    from s2v_jax.train.tasks.sync import SyncTask

    task = SyncTask(loss_type="nway", temperature=1.0)
    loss = task.per_window_loss(jnp.array([0.0, 1.0]), jnp.array([[1.0, 1.0], [0.0, 2.0]]))
    np.testing.assert_allclose(loss, [np.log(1 + 2 / np.e), 1 + np.log(1 + np.e ** -1 + np.e ** -2)], rtol=1e-6)
    pair = SyncTask(loss_type="contrastive", margin=1.0).per_window_loss(jnp.array([0.5]), jnp.array([[0.25]]))
    np.testing.assert_allclose(pair, [0.5 * (0.25 + 0.5625)], rtol=1e-6)  # SyncNet's pair loss, as before


def test_shift_candidates():
    from s2v_jax.data.sync_samples import shift_candidates

    assert set(shift_candidates(0, 40, 3, 15)) == set(range(3, 16))
    assert set(shift_candidates(20, 25, 3, 15)) == set(range(-15, -2)) | {3, 4}
    assert set(shift_candidates(1, 3, 3, 15)) == {-1, 1}  # short track: any non-zero shift


@pytest.mark.timeout(300)
def test_tfds_sampler_on_synthetic_tiny(tmp_path_factory):
    import tfds_builders
    from s2v_jax.data import sync_inputs
    from s2v_jax.data import sync_samples
    from tfds_builders.common import decode_frame

    data_dir = str(tmp_path_factory.getbasetemp() / "synthetic_tiny")  # shared with the pipeline tests
    builder = tfds_builders.build("synthetic_talking_faces/tiny", data_dir)
    config = toy_config([f"data.data_dir={data_dir}", "data.dataset=synthetic_talking_faces/tiny",
                         "data.frame_stride=3", "train.batch_size=4"])
    loader = sync_samples.create_train_loader(config, debug=True)
    source = builder.as_data_source("train")
    b = next(loader)
    for i in range(4):
        ex = source[int(b["record"][i])]
        k, d, n = int(b["centre"][i]), int(b["offset"][i]), int(ex["num_frames"])
        assert k % 3 == 0 and 0 <= k - d < n
        np.testing.assert_array_equal(b["audio"][i], sync_inputs.audio_input(ex["mfcc"][k]))
        np.testing.assert_array_equal(b["audio_shifted"][i], sync_inputs.audio_input(ex["mfcc"][k - d]))
        crops = np.stack([decode_frame(ex["frames"][j]) for j in sync_inputs.frame_indices(k, n)])
        np.testing.assert_array_equal(b["video"][i], sync_inputs.video_input(crops, 56, True))
    loader.close()
    batches = sync_samples.create_eval_batches(config, num_batches=2)
    again = sync_samples.create_eval_batches(config, num_batches=2)
    np.testing.assert_array_equal(batches[1]["video"], again[1]["video"])  # fixed validation batches


@pytest.mark.timeout(300)
def test_tfds_sampler_holds_out_and_repeats_sources(tmp_path_factory):
    """data.exclude (the generator's setting, one for both trainers) gives a source no training
    sample, as a pattern or as a prefix; data.repeat multiplies a source's samples in training only;
    a pattern that matches nothing is a DataError; the judge's tracks are the generator's."""
    import tfds_builders
    from s2v_jax.data import sync_samples
    from s2v_jax.data.track_selection import record_sources
    from s2v_jax.errors import DataError

    data_dir = str(tmp_path_factory.getbasetemp() / "synthetic_tiny")  # shared with the pipeline tests
    builder = tfds_builders.build("synthetic_talking_faces/tiny", data_dir)
    sources = record_sources(builder, "train")
    a, b = sources[0], sources[-1]
    assert a != b
    base = [f"data.data_dir={data_dir}", "data.dataset=synthetic_talking_faces/tiny", "data.frame_stride=3"]
    count = lambda s, src: int(np.isin(s.records, [r for r in range(len(sources)) if sources[r] == src]).sum())  # noqa: E731
    full = sync_samples._tfds_source(toy_config(base), "train")
    both = sync_samples._tfds_source(toy_config(base + [f"data.exclude={a}", f"data.repeat={b}:3"]),
                                     "train")
    assert count(full, a) > 0 and count(both, a) == 0
    prefix = sync_samples._tfds_source(toy_config(base + [f"data.exclude={a[:-2]}"]), "train")  # a prefix of a's name
    assert count(prefix, a) == 0 and len(prefix) < len(full)
    from s2v_jax.data import input_pipeline, track_selection
    import ml_collections

    gen = ml_collections.ConfigDict({"data": {"exclude": a, "repeat": f"{b}:3"}})
    frames, repeats = track_selection.select(gen, builder, "train", input_pipeline.split_tracks(builder, "train"))
    records, _ = input_pipeline.sample_index(frames, 3, 0, repeats)
    np.testing.assert_array_equal(records, both.records)  # one selection for the generator and the judge
    assert count(both, b) == 3 * count(full, b) > 0
    others = [s for s in set(sources) if s not in (a, b)]
    assert sum(count(both, s) for s in others) == sum(count(full, s) for s in others)
    val = sync_samples._tfds_source(toy_config(base + [f"data.repeat={b}:3"]), "validation")
    assert len(val) == len(sync_samples._tfds_source(toy_config(base), "validation"))
    with pytest.raises(DataError, match=r"data.repeat pattern 'nope/\*' matches no train track"):
        sync_samples._tfds_source(toy_config(base + ["data.repeat=nope/*:2"]), "train")
    with pytest.raises(DataError, match=r"data.exclude pattern 'nope/\*' matches no track"):
        sync_samples._tfds_source(toy_config(base + ["data.exclude=nope/"]), "train")


def test_train_sync_command_reports_a_bad_config(tmp_path, capsys):
    from s2v_jax.cli import main

    rc = main(["train-sync", "--config", os.path.join(REPO, "configs/syncnet.py"), "--workdir", str(tmp_path),
               "model.num_frames=7"])
    assert rc == 2
    assert "model.num_frames" in capsys.readouterr().err


# ---------------------------------------------------------------- training (subprocess)

def _run_scenario(out_dir):
    import jax

    from s2v_jax.data import sync_samples
    from s2v_jax.errors import TrainingError
    from s2v_jax.train import train_and_evaluate
    from s2v_jax.train.checkpointing import load_checkpoint
    from s2v_jax.evaluation.sync_expert import SyncExpert
    from s2v_jax.train.metrics import read_jsonl

    train = toy_tracks(6, 40, 0)
    workdir = os.path.join(out_dir, "expert")
    fns = sync_samples.array_data_fns(train, train)  # validation on the training tracks
    summary = train_and_evaluate(toy_config(), workdir, train_loader_fn=fns[0], eval_batches_fn=fns[1])
    rows = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
    resumed = train_and_evaluate(toy_config(), workdir, train_loader_fn=fns[0], eval_batches_fn=fns[1])
    # 20 steps, then a second call to 40: the same parameters as 40 uninterrupted steps (a constant
    # rate, so that the schedule does not depend on num_steps).
    const = ["train.schedule='constant'", "train.checkpoint_every=20", "train.eval_every=0"]
    whole, split = os.path.join(out_dir, "expert_whole"), os.path.join(out_dir, "expert_resumed")
    train_and_evaluate(toy_config(const + ["train.num_steps=40"]), whole, train_loader_fn=fns[0],
                       eval_batches_fn=fns[1])
    for n in (20, 40):
        train_and_evaluate(toy_config(const + [f"train.num_steps={n}"]), split, train_loader_fn=fns[0],
                           eval_batches_fn=fns[1])
    _, v1 = load_checkpoint(os.path.join(whole, "checkpoints"))
    _, v2 = load_checkpoint(os.path.join(split, "checkpoints"))
    resume_diff = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), v1, v2)))
    # The latest checkpoint truncated on disk: training warns, moves it aside, resumes from the one before
    # it and ends with the uninterrupted run's parameters; loading it for inference is one line.
    faulty = os.path.join(out_dir, "expert_faulty")
    every10 = const + ["train.checkpoint_every=10", "train.keep_checkpoints=5"]
    train_and_evaluate(toy_config(every10 + ["train.num_steps=20"]), faulty, train_loader_fn=fns[0],
                       eval_batches_fn=fns[1])
    damage_step(os.path.join(faulty, "checkpoints", "20"))
    try:
        load_checkpoint(os.path.join(faulty, "checkpoints", "20"))
        damaged_error = None
    except TrainingError as e:
        damaged_error = str(e)
    train_and_evaluate(toy_config(every10 + ["train.num_steps=40"]), faulty, train_loader_fn=fns[0],
                       eval_batches_fn=fns[1])
    _, v3 = load_checkpoint(os.path.join(faulty, "checkpoints"))
    fallback_diff = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), v1, v3)))
    faulty_listing = sorted(os.listdir(os.path.join(faulty, "checkpoints")))
    # the same with the latest step's largest file cut to 100 bytes (a half-copied checkpoint, which
    # Orbax 0.12 reports wrapped in a bare Exception): the same fallback, the same parameters
    cut = os.path.join(out_dir, "expert_cut")
    train_and_evaluate(toy_config(every10 + ["train.num_steps=20"]), cut, train_loader_fn=fns[0],
                       eval_batches_fn=fns[1])
    truncate_largest(os.path.join(cut, "checkpoints", "20"))
    train_and_evaluate(toy_config(every10 + ["train.num_steps=40"]), cut, train_loader_fn=fns[0],
                       eval_batches_fn=fns[1])
    _, v4 = load_checkpoint(os.path.join(cut, "checkpoints"))
    cut_diff = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), v1, v4)))
    cut_listing = sorted(os.listdir(os.path.join(cut, "checkpoints")))
    # Tracks whose audio is NaN: the first logged step's loss is NaN and the run stops naming step 1.
    broken = [dict(t, mfcc=np.full_like(t["mfcc"], np.nan)) for t in train]
    nan_fns = sync_samples.array_data_fns(broken, train)
    try:
        train_and_evaluate(toy_config(["train.num_steps=10"]), os.path.join(out_dir, "nan"),
                           train_loader_fn=nan_fns[0], eval_batches_fn=nan_fns[1])
        nan_error = None
    except TrainingError as e:
        nan_error = str(e)
    # The n-way loss over 4 shifted audios, then exported to float16 and scored from the export.
    from s2v_jax.train.export import export_model

    nway = os.path.join(out_dir, "expert_nway")
    nway_summary = train_and_evaluate(toy_config(["train.loss='nway'", "data.num_negatives=4", "data.min_offset=2"]),
                                      nway, train_loader_fn=fns[0], eval_batches_fn=fns[1])
    nway_rows = read_jsonl(os.path.join(nway, "metrics.jsonl"))
    exported = os.path.join(out_dir, "exported")
    export_info = export_model(*load_checkpoint(nway), exported)
    with np.load(os.path.join(exported, "variables.npz")) as z:
        export_dtypes = sorted({str(z[k].dtype) for k in z.files if k.startswith("params/")})
    full, small = SyncExpert.from_checkpoint(nway, batch_size=32), SyncExpert.from_checkpoint(exported, batch_size=32)
    e_full = np.concatenate(full.clip_embeddings(train[0]["frames"], train[0]["mfcc"]))
    e_small = np.concatenate(small.clip_embeddings(train[0]["frames"], train[0]["mfcc"]))
    nway_shifts = {}
    for i, tr in enumerate(toy_tracks(3, 50, 1)):
        t = len(tr["mfcc"])
        for k in (0, 3, 6, -4):
            nway_shifts[f"{i}:{k}"] = small.sync_scores(tr["frames"], tr["mfcc"][np.clip(np.arange(t) - k, 0, t - 1)]
                                                        )["av_offset"]
    expert = SyncExpert.from_checkpoint(workdir, batch_size=32)
    v, a = expert.clip_embeddings(train[0]["frames"], train[0]["mfcc"])
    norms = np.linalg.norm(np.concatenate([v, a]), axis=-1)
    shifts = {}
    for i, tr in enumerate(toy_tracks(3, 50, 1)):  # held-out tracks, audio delayed by k frames
        t = len(tr["mfcc"])
        for k in (0, 3, 6, -4):
            scores = expert.sync_scores(tr["frames"], tr["mfcc"][np.clip(np.arange(t) - k, 0, t - 1)])
            shifts[f"{i}:{k}"] = [scores["av_offset"], scores["lse_d"], scores["lse_c"]]
    return {"summary": summary, "losses": [r["train/loss"] for r in rows if "train/loss" in r],
            "resume_max_abs_diff": resume_diff, "nan_error": nan_error,
            "resumed_step": resumed["step"], "damaged_error": damaged_error, "fallback_max_abs_diff": fallback_diff,
            "cut_max_abs_diff": cut_diff, "cut_listing": cut_listing,
            "faulty_listing": faulty_listing, "checkpoints": sorted(os.listdir(os.path.join(workdir, "checkpoints"))),
            "shifts": shifts, "embedding_shape": list(v.shape),
            "nway_losses": [r["train/loss"] for r in nway_rows if "train/loss" in r],
            "nway_accuracy": nway_summary["last_eval"]["accuracy"], "nway_shifts": nway_shifts,
            "export_bytes": export_info["bytes"], "export_dtypes": export_dtypes,
            "export_max_abs_diff": float(np.max(np.abs(e_full - e_small))),
            "norm_range": [float(norms.min()), float(norms.max())]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return ckpt_fixture.run_script(__file__, tmp_path_factory.mktemp("sync_runs"))


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_loss_falls_and_in_sync_pairs_are_closer(report):
    losses = report["losses"]
    assert len(losses) == 12 and np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:2]), losses
    val = report["summary"]["last_eval"]  # on the training tracks
    assert val["d_pos"] < val["d_neg"], val
    assert val["accuracy"] >= 0.8, val
    assert report["checkpoints"] == ["30", "60"]


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_embeddings_are_unit_length(report):
    assert report["embedding_shape"] == [40, 32]  # one per frame, model.embed_dim
    assert report["norm_range"] == pytest.approx([1.0, 1.0], abs=1e-5)


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_resume_from_the_workdir(report):
    assert report["resumed_step"] == 60  # restored, nothing left to train
    assert report["resume_max_abs_diff"] <= 1e-6, report["resume_max_abs_diff"]  # 20 + 20 == 40


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_a_damaged_latest_checkpoint_is_skipped_with_a_warning_and_resume_is_exact(report):
    err = report["damaged_error"]
    assert err is not None and "checkpoints/20 is damaged" in err and "\n" not in err and len(err) < 400, err
    assert "Traceback" not in err and "tensorstore_spec" not in err
    assert report["faulty_listing"] == ["10", "20", "20.damaged", "30", "40"], report["faulty_listing"]  # kept aside
    assert report["fallback_max_abs_diff"] <= 1e-6, report["fallback_max_abs_diff"]
    assert report["cut_listing"] == ["10", "20", "20.damaged", "30", "40"], report["cut_listing"]
    assert report["cut_max_abs_diff"] <= 1e-6, report["cut_max_abs_diff"]


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_non_finite_sync_loss_stops_naming_the_step(report):
    assert report["nan_error"] is not None and "non-finite loss" in report["nan_error"], report["nan_error"]
    assert "step 1" in report["nan_error"]


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_lse_offset_follows_an_audio_shift_on_held_out_tracks(report):
    for key, (offset, lse_d, lse_c) in report["shifts"].items():
        k = int(key.split(":")[1])
        assert abs(offset - k) <= 1, (key, offset)
        assert lse_c > 0.1, (key, lse_c)


@pytest.mark.slow  # the training scenario: ~2 min of the 2-core box
def test_nway_loss_trains_and_its_float16_export_scores_alike(report):
    losses = report["nway_losses"]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:2]), losses
    assert report["nway_accuracy"] >= 0.6, report["nway_accuracy"]  # in-sync closest of 5: chance 0.2
    assert report["export_dtypes"] == ["float16"]
    assert report["export_max_abs_diff"] < 0.02, report["export_max_abs_diff"]  # unit-length embeddings
    for key, offset in report["nway_shifts"].items():
        assert abs(offset - int(key.split(":")[1])) <= 1, (key, offset)


# ---------------------------------------------------------------- the real synthetic corpus (slow)

@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_expert_on_the_synthetic_corpus(tmp_path_factory):
    """configs/syncnet.py on synthetic_talking_faces/small (rendered faces, synthesised speech, real
    registration and MFCC): ~2 min to build and ~12 min to train on 2 CPU cores. Held-out speakers:
    in-sync pairs closer than shifted ones, and LSE's AV offset follows a known audio shift."""
    import tfds_builders
    from s2v_jax.config_utils import load_config
    from s2v_jax.evaluation.sync_expert import SyncExpert
    from s2v_jax.train import train_and_evaluate
    from tfds_builders.common import decode_frame

    data_dir = str(tmp_path_factory.getbasetemp() / "synthetic_small")
    builder = tfds_builders.build("synthetic_talking_faces/small", data_dir)
    config = load_config(os.path.join(REPO, "configs/syncnet.py"),
                         [f"data.data_dir={data_dir}", "train.num_steps=2000", "train.progress_bar=False"])
    workdir = str(tmp_path_factory.mktemp("expert_small"))
    summary = train_and_evaluate(config, workdir)
    assert summary["last_eval"]["accuracy"] >= 0.75, summary
    expert = SyncExpert.from_checkpoint(workdir)
    source = builder.as_data_source("validation")
    hits, total = 0, 0
    for i in range(len(source)):
        ex = source[i]
        crops = np.stack([decode_frame(f) for f in ex["frames"]])
        mfcc = np.asarray(ex["mfcc"])
        t = len(mfcc)
        for k in (0, 3, 6, -4):
            offset = expert.sync_scores(crops, mfcc[np.clip(np.arange(t) - k, 0, t - 1)])["av_offset"]  # k late
            hits += abs(offset - k) <= 1
            total += 1
    assert hits >= 0.75 * total, (hits, total)


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    result = _run_scenario(sys.argv[1])
    with open(os.path.join(sys.argv[1], "report.json"), "w") as f:
        json.dump(result, f, indent=1)
