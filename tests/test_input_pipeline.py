"""The grain input pipeline on synthetic_talking_faces/tiny (built once per
session with the real registration): shapes, sampling rules, alignment of
target frame, MFCC window and ground truth, determinism, resume, sharding."""

import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("grain")

import tfds_builders  # noqa: E402
from configs import tiny  # noqa: E402
from s2v_jax.data import input_pipeline  # noqa: E402
from s2v_jax.data.loader import build_loader  # noqa: E402
from s2v_jax.errors import DataError  # noqa: E402
from s2v_jax.media import audio
from tfds_builders import common  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """synthetic_talking_faces/tiny in the session's temp dir (shared with the builder tests)."""
    path = str(tmp_path_factory.getbasetemp() / "synthetic_tiny")
    tfds_builders.build("synthetic_talking_faces/tiny", path)
    return path


def make_config(data_dir, **data):
    config = tiny.get_config()
    config.data.dataset = "synthetic_talking_faces/tiny"
    config.data.data_dir = data_dir
    config.data.min_identity_distance = 10  # tiny clips are 1.6-2.4 s
    config.train.batch_size = 8
    for k, v in data.items():
        section, field = k.split("__")
        config[section][field] = v
    return config


def take(loader, n):
    return [next(loader) for _ in range(n)]


def assert_same(batches_a, batches_b):
    assert len(batches_a) == len(batches_b)
    for a, b in zip(batches_a, batches_b):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_sample_index_every_stride_frame_with_a_distant_identity():
    records, frames = input_pipeline.sample_index([12, 40, 3], stride=5, min_distance=10)
    # 12 frames: 0, 5, 10 (5 has no frame >= 10 away: 5-10 < 0 and 5+10 > 11).
    assert list(zip(records, frames)) == [(0, 0), (0, 10)] + [(1, t) for t in range(0, 40, 5)]


@pytest.mark.parametrize("num_identity", [1, 5])
def test_batch_shapes_dtypes_and_identity_distance(data_dir, num_identity):
    config = make_config(data_dir, model__num_identity_images=num_identity, data__augment=False)
    loader = input_pipeline.create_train_loader(config, debug=True)
    source = input_pipeline.ensure_dataset(config).as_data_source("train")
    for batch in take(loader, 3):
        assert batch["mfcc"].shape == (8, 12, 35, 1) and batch["mfcc"].dtype == np.float32
        assert batch["identity"].shape == (8, 112, 112, 3 * num_identity) and batch["identity"].dtype == np.uint8
        assert batch["target"].shape == (8, 112, 112, 3) and batch["target"].dtype == np.uint8
        t, ids = batch["target_frame"], batch["identity_frames"]
        assert t.min() % 5 == 0 and np.all(t % 5 == 0)  # every frame_stride-th frame
        assert np.all(np.abs(ids - t[:, None]) >= 10)  # never near the target
        for i in range(2):  # pixels are those of the named frames of the record
            ex = source[int(batch["record"][i])]
            np.testing.assert_array_equal(batch["target"][i], common.decode_frame(ex["frames"][t[i]]))
            np.testing.assert_array_equal(batch["identity"][i, ..., :3], common.decode_frame(ex["frames"][ids[i, 0]]))
            np.testing.assert_array_equal(batch["mfcc"][i, ..., 0], ex["mfcc"][t[i]])
    loader.close()


def test_target_window_and_ground_truth_are_aligned(data_dir):
    """The ground-truth mouth opening of the target is that of its video frame,
    and its MFCC window matches the clean synthetic audio at lag 0, not +-1..3."""
    config = make_config(data_dir)
    batch = next(input_pipeline.create_train_loader(config, debug=True))
    builder = input_pipeline.ensure_dataset(config)
    source = builder.as_data_source("train")
    corpus = pathlib.Path(data_dir) / "downloads" / "synthetic" / "tiny-seed0"
    for i in range(8):
        ex = source[int(batch["record"][i])]
        frame = int(ex["start_frame"]) + int(batch["target_frame"][i])
        gt = np.load(corpus / ex["source"].decode().replace(".mp4", ".npz"))
        assert batch["gt_mouth_open"][i] == gt["mouth_open"][frame]
        clean = audio.mfcc_windows(audio.compute_mfcc(gt["audio"].astype(np.float32) / 32768.0), len(gt["mouth_open"]))
        lags = [lag for lag in range(-3, 4) if 0 <= frame + lag < len(clean)]
        dist = [np.abs(clean[frame + lag] - batch["mfcc"][i, ..., 0]).mean() for lag in lags]
        assert lags[int(np.argmin(dist))] == 0


def test_same_seed_same_batches_other_seed_other_batches(data_dir):
    config = make_config(data_dir)
    a = take(input_pipeline.create_train_loader(config, debug=True), 3)
    assert_same(a, take(input_pipeline.create_train_loader(config, debug=True), 3))
    config.data.shuffle_seed = 1
    c = take(input_pipeline.create_train_loader(config, debug=True), 3)
    assert not all(np.array_equal(x["record"], y["record"]) and np.array_equal(x["target_frame"], y["target_frame"])
                   for x, y in zip(a, c))


def test_resume_from_state_continues_exactly(data_dir):
    config = make_config(data_dir)
    loader = input_pipeline.create_train_loader(config, debug=True)
    take(loader, 2)
    state = json.loads(json.dumps(loader.get_state()))  # survives a JSON round trip
    expected = take(loader, 3)
    resumed = input_pipeline.create_train_loader(config, debug=True)
    resumed.set_state(state)
    assert_same(expected, take(resumed, 3))


@pytest.mark.timeout(300)  # a stuck worker pool fails the test instead of hanging the suite
@pytest.mark.slow  # spawns grain worker processes; on a loaded 2-core machine it has hung past 5 minutes
def test_worker_processes_resume_exactly(data_dir):
    """With workers each one batches its own share of the order, placed so that the stream is the one
    without workers (GlobalOrder); a saved state resumes it exactly."""
    config = make_config(data_dir, data__num_workers=2)
    loader = input_pipeline.create_train_loader(config, debug=True)
    first = take(loader, 2)
    assert_same(first, take(input_pipeline.create_train_loader(make_config(data_dir), debug=True), 2))
    state = loader.get_state()
    more = take(loader, 2)
    loader.close()
    resumed = input_pipeline.create_train_loader(config, debug=True)
    resumed.set_state(state)
    assert_same(more, take(resumed, 2))
    resumed.close()
    assert all(type(v) is np.ndarray for v in more[0].values())  # plain arrays, not shared-memory ones


def test_processes_get_disjoint_shards(data_dir):
    config = make_config(data_dir)
    seen = []
    for p in range(2):
        batches = take(input_pipeline.create_train_loader(config, process_index=p, process_count=2, debug=True), 2)
        assert batches[0]["target"].shape[0] == 4  # batch_size // process_count
        seen.append({(int(r), int(t)) for b in batches for r, t in zip(b["record"], b["target_frame"])})
    assert not seen[0] & seen[1]
    with pytest.raises(DataError, match="split evenly"):
        input_pipeline.create_train_loader(config, process_count=3)


class _Draw(__import__("grain.python", fromlist=["x"]).RandomMapTransform):
    """The element's source index and one random draw of its rng."""

    def random_map(self, element, rng):
        return {"i": np.int64(element["i"]), "u": np.float64(rng.random())}


class _Numbers:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"i": i}

    def __repr__(self):
        return f"_Numbers({self.n})"


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_draw_the_one_process_batches_row_for_row(processes):
    """P processes of batch b make, batch by batch, exactly the rows (and random draws) of one process of
    batch P b, in the same order: process p's rows are rows p b .. (p+1) b - 1; across epoch ends too."""
    source, b, steps = _Numbers(13), 2, 9  # 13 samples: batches cross epoch boundaries
    one = build_loader(source, _Draw(), batch_size=b * processes, seed=5)
    parts = [build_loader(source, _Draw(), batch_size=b, seed=5, process_index=p,
                                         process_count=processes) for p in range(processes)]
    seen = []
    for _ in range(steps):
        whole = next(one)
        rows = [next(part) for part in parts]
        for key in ("i", "u"):
            np.testing.assert_array_equal(whole[key], np.concatenate([r[key] for r in rows]))
        seen.extend(whole["i"].tolist())
    epochs = [sorted(seen[k:k + 13]) for k in range(0, len(seen) - 12, 13)]
    assert all(e == list(range(13)) for e in epochs)  # each epoch is every sample once
    assert seen[:13] != list(range(13))  # shuffled
    other = build_loader(source, _Draw(), batch_size=b * processes, seed=6)
    assert not np.array_equal(next(other)["i"], next(build_loader(source, _Draw(), batch_size=b * processes, seed=5))["i"])


def test_eval_batches_are_deterministic_validation_samples(data_dir):
    config = make_config(data_dir)
    a = input_pipeline.create_eval_batches(config, num_batches=2, debug=True)
    assert_same(a, input_pipeline.create_eval_batches(config, num_batches=2, debug=True))
    source = input_pipeline.ensure_dataset(config).as_data_source("validation")
    ex = source[int(a[0]["record"][0])]
    assert ex["group_id"].decode() == "spk002"  # the validation speaker
    np.testing.assert_array_equal(a[0]["target"][0], common.decode_frame(ex["frames"][a[0]["target_frame"][0]]))


def test_augmentation_is_shared_by_identity_and_target():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    for seed in range(6):
        target, identity = input_pipeline.augment_pair(np.random.default_rng(seed), frame, np.concatenate([frame] * 5, -1))
        for k in range(5):
            np.testing.assert_array_equal(identity[..., 3 * k:3 * k + 3], target)
    flipped = []
    for seed in range(10):  # brightness/contrast are one monotonic map, so a flip shows in the correlation
        out = input_pipeline.augment_pair(np.random.default_rng(seed), frame, frame)[0].astype(float).ravel()
        straight = np.corrcoef(out, frame.astype(float).ravel())[0, 1]
        mirror = np.corrcoef(out, frame[:, ::-1].astype(float).ravel())[0, 1]
        assert max(straight, mirror) > 0.95
        flipped.append(mirror > straight)
    assert 0 < sum(flipped) < 10


def test_frame_counts_come_from_metadata(data_dir):
    builder = input_pipeline.ensure_dataset(make_config(data_dir))
    source = builder.as_data_source("train")
    counts = input_pipeline.split_tracks(builder, "train")
    assert list(counts) == [int(source[i]["num_frames"]) for i in range(len(source))]
    with pytest.raises(DataError, match="no 'test' split"):
        input_pipeline.split_tracks(builder, "test")


def test_registered_faces_without_manual_dir_is_an_error(tmp_path):
    config = make_config(str(tmp_path))
    config.data.dataset = "registered_faces/lrs2"
    with pytest.raises(DataError, match="manual-dir"):
        input_pipeline.ensure_dataset(config)


def train_sources(data_dir):
    """The source path of every train record, in record order."""
    src = input_pipeline.ensure_dataset(make_config(data_dir)).as_data_source("train")
    return [src[i]["source"].decode() for i in range(len(src))]


def test_exclude_leaves_out_the_matching_tracks_only(data_dir):
    sources = train_sources(data_dir)
    victim = sources[0]
    full = input_pipeline._samples(make_config(data_dir), "train")
    kept = input_pipeline._samples(make_config(data_dir, data__exclude=f" {victim} ,"), "train")
    dropped = {r for r in range(len(sources)) if sources[r] == victim}
    assert set(kept.records.tolist()) == set(full.records.tolist()) - dropped
    assert len(kept) == len(full) - int(np.isin(full.records, list(dropped)).sum()) < len(full)
    # every other sample is the same (record, frame) pair: the record order is unchanged
    pairs = set(zip(full.records.tolist(), full.frames.tolist()))
    assert set(zip(kept.records.tolist(), kept.frames.tolist())) <= pairs
    batch = next(build_loader(kept, input_pipeline.make_sample(make_config(data_dir), False, True),
                                             batch_size=8, seed=0))
    assert not set(batch["record"].tolist()) & dropped


def test_exclude_pattern_that_matches_nothing_is_an_error(data_dir):
    with pytest.raises(DataError, match=r"data.exclude pattern 'nope/\*' matches no track"):
        input_pipeline._samples(make_config(data_dir, data__exclude="nope/*"), "train")
    # a pattern matching only validation tracks is fine for the train split
    builder = input_pipeline.ensure_dataset(make_config(data_dir))
    val = builder.as_data_source("validation")
    only_val = val[0]["source"].decode()
    train_sources = {r["source"].decode() for r in builder.as_data_source("train")}
    assert only_val not in train_sources  # split by speaker
    full = input_pipeline._samples(make_config(data_dir), "train")
    assert len(input_pipeline._samples(make_config(data_dir, data__exclude=only_val), "train")) == len(full)


def test_repeat_oversamples_the_matching_tracks_in_training_only(data_dir):
    sources = train_sources(data_dir)
    target = sources[0]
    full = input_pipeline._samples(make_config(data_dir), "train")
    more = input_pipeline._samples(make_config(data_dir, data__repeat=f" {target}:3 ,"), "train")
    hit = [r for r in range(len(sources)) if sources[r] == target]
    count = lambda s, recs: int(np.isin(s.records, recs).sum())  # noqa: E731
    assert count(more, hit) == 3 * count(full, hit) > 0
    others = [r for r in range(len(sources)) if r not in hit]
    assert count(more, others) == count(full, others)
    # the same (record, frame) pairs, the repeated ones three times each
    pairs = lambda s: sorted(zip(s.records.tolist(), s.frames.tolist()))  # noqa: E731
    hit_pairs = [p for p in pairs(full) if p[0] in hit]
    assert pairs(more) == sorted(pairs(full) + 2 * hit_pairs)
    # the first matching pattern gives the factor; validation is never reweighted
    first = input_pipeline._samples(make_config(data_dir, data__repeat=f"{target}:2,*:5"), "train")
    assert count(first, hit) == 2 * count(full, hit) and count(first, others) == 5 * count(full, others)
    val = input_pipeline._samples(make_config(data_dir), "validation")
    assert len(input_pipeline._samples(make_config(data_dir, data__repeat="*:4"), "validation")) == len(val)


@pytest.mark.parametrize("bad", ["styletalk/*", "styletalk/*:0", "styletalk/*:x", ":3"])
def test_repeat_item_malformed_is_an_error_that_shows_the_form(data_dir, bad):
    with pytest.raises(DataError, match=r"data.repeat item .*expected 'pattern:factor'"):
        input_pipeline._samples(make_config(data_dir, data__repeat=bad), "train")


def test_repeat_pattern_that_matches_nothing_is_an_error(data_dir):
    with pytest.raises(DataError, match=r"data.repeat pattern 'nope/\*' matches no train track"):
        input_pipeline._samples(make_config(data_dir, data__repeat="nope/*:2"), "train")


def test_the_deblurring_nets_config_loads_a_registered_corpus(data_dir):
    """configs/deblur.py's net takes no identity images (its schema declares the one still its samples
    carry, unused); its loader reads the corpus the generator's does."""
    from configs import deblur

    config = deblur.get_config()
    config.data.dataset = "synthetic_talking_faces/tiny"
    config.data.data_dir = data_dir
    config.data.min_identity_distance = 10
    config.data.num_workers = 0
    config.train.batch_size = 4
    assert config.model.num_identity_images == 1 and config.model.name == "deblur"
    batch = next(input_pipeline.create_train_loader(config))
    assert batch["target"].shape == (4, 112, 112, 3) and batch["target"].dtype == np.uint8
    assert batch["target"].std() > 0


def test_every_process_resumes_from_the_one_saved_loader_state():
    """A job writes one checkpoint, with process 0's loader state; every process restores that state
    (grain checks the source's repr against it) and goes on with exactly its own next rows."""
    source, b, processes = _Numbers(13), 2, 2
    parts = [build_loader(source, _Draw(), batch_size=b, seed=5, process_index=p, process_count=processes)
             for p in range(processes)]
    for part in parts:
        [next(part) for _ in range(3)]
    saved = json.loads(json.dumps(parts[0].get_state()))  # the checkpoint's copy: process 0's
    expected = [[next(part) for _ in range(4)] for part in parts]
    for p in range(processes):
        resumed = build_loader(source, _Draw(), batch_size=b, seed=5, process_index=p, process_count=processes)
        resumed.set_state(saved)
        for want in expected[p]:
            got = next(resumed)
            for key in ("i", "u"):
                np.testing.assert_array_equal(want[key], got[key])


def test_a_state_from_another_sample_order_is_one_clear_error():
    """A work directory written by another loader (an earlier s2v_jax's order, another dataset or batch)
    is refused by name, with what to do, not with grain's traceback."""
    old = build_loader(_Numbers(13), _Draw(), batch_size=2, seed=5)
    next(old)
    other = build_loader(_Numbers(14), _Draw(), batch_size=2, seed=5)
    with pytest.raises(DataError, match=r"another sample order \(GlobalOrder\(_Numbers\(13\).*init_from"):
        other.set_state(old.get_state())
