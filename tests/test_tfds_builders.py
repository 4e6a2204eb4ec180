"""TFDS builders: layouts and splits, reports of skipped inputs, record order,
the Beam build, the CLI, and real builds on ../shared clips."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import tfds_builders  # noqa: E402
from s2v_jax.errors import DataError  # noqa: E402
from tfds_builders import common  # noqa: E402
from tfds_builders.registered_faces import layouts  # noqa: E402
from fakes import fake_corpus, fake_preprocess, touch  # noqa: E402

LRS2 = "corpus/lrs2/6046013437125640989"


# ------------------------------------------------------------------ fakes

@pytest.fixture
def fake_registration(monkeypatch):
    monkeypatch.setattr(common, "preprocess_video", fake_preprocess)


# ------------------------------------------------------------ layouts/splits

def test_layouts_map_paths_to_identities(tmp_path):
    touch(tmp_path / "lrs2", "v1/00001.mp4", "v1/00002.mp4", "v2/00001.mp4", "loose.mp4", "v1/notes.txt")
    clips, skipped = layouts.list_clips(str(tmp_path / "lrs2"), "lrs2", 10)
    assert [(c.source, c.group_id) for c in clips] == [
        ("v1/00001.mp4", "v1"), ("v1/00002.mp4", "v1"), ("v2/00001.mp4", "v2")]
    assert skipped == [{"source": "loose.mp4", "reason": common.LAYOUT, "detail": "layout 'lrs2'"}]

    touch(tmp_path / "vox", "id001/vidA/00001.mp4", "id001/vidB/00002.mp4", "id002/vidC/00001.mp4")
    clips, _ = layouts.list_clips(str(tmp_path / "vox"), "voxceleb2", 10)
    assert [c.group_id for c in clips] == ["id001", "id001", "id002"]

    touch(tmp_path / "lrw", "ABOUT/train/ABOUT_00001.mp4", "ABOUT/val/ABOUT_00001.mp4", "ABOUT/test/ABOUT_00001.mp4")
    clips, _ = layouts.list_clips(str(tmp_path / "lrw"), "lrw", 10)
    assert sorted(c.split for c in clips) == ["test", "train", "validation"]

    touch(tmp_path / "any", "a.mpg", "b/c.avi", "b/d/e.mkv", "f.mov", "g.txt")
    clips, skipped = layouts.list_clips(str(tmp_path / "any"), "folder", 10)
    assert [(c.source, c.group_id) for c in clips] == [("a.mpg", "a"), ("b/c.avi", "b"), ("b/d/e.mkv", "b"),
                                                       ("f.mov", "f")]
    assert skipped == []


def test_real_corpus_layout_groups_each_source_and_holds_out_per_source(tmp_path):
    touch(tmp_path, "lrs2/vid1/00001.mp4", "lrs2/vid1/00001.txt", "lrs2_b/demo/00002.mp4",
          "grid_s1/bbaf3s.mp4", "grid_s1/bbaf3s.align", "grid_s1/bbaf4p.mp4", "tedx_ro/clip01.mp4",
          "styletalk/Obama_clip1.mp4", "styletalk/Obama_clip2.mp4", "styletalk/KristiNoem.mp4",
          "lrc_ar/00139.mp4", "lrc_ar/00146.mp4", "lrc_ar/add_15770.mp4", "grid/bbaf2n.mpg",
          "voxceleb2_style/00002.mp4", "stray.mp4")
    clips, skipped = layouts.list_clips(str(tmp_path), "real", 10)
    groups = {c.source: c.group_id for c in clips}
    assert groups == {"lrs2/vid1/00001.mp4": "lrs2/vid1", "lrs2_b/demo/00002.mp4": "lrs2_b/demo",
                      "grid_s1/bbaf3s.mp4": "grid_s1", "grid_s1/bbaf4p.mp4": "grid_s1", "tedx_ro/clip01.mp4": "tedx_ro",
                      "styletalk/Obama_clip1.mp4": "styletalk/obama", "styletalk/Obama_clip2.mp4": "styletalk/obama",
                      "styletalk/KristiNoem.mp4": "styletalk/kristinoem", "lrc_ar/00139.mp4": "lrc_ar/2",
                      "lrc_ar/00146.mp4": "lrc_ar/2", "lrc_ar/add_15770.mp4": "lrc_ar/315",
                      "grid/bbaf2n.mpg": "grid/bbaf2n", "voxceleb2_style/00002.mp4": "voxceleb2_style/00002"}
    assert [r["source"] for r in skipped] == ["stray.mp4"]  # not in a source folder: reported, not dropped
    for source in ("styletalk", "lrc_ar"):  # a source with >= 2 identities holds one out
        assert {c.split for c in clips if c.source.startswith(source + "/")} == {"train", "validation"}
    by_group = {}
    for c in clips:
        by_group.setdefault(c.group_id, set()).add(c.split)
    assert all(len(s) == 1 for s in by_group.values())  # no identity in two splits


def test_split_is_a_function_of_the_identity_only():
    ids = [f"spk{i}" for i in range(200)]
    splits = [common.hash_split(i, 10) for i in ids]
    assert splits == [common.hash_split(i, 10) for i in ids]  # deterministic
    assert 0.03 < splits.count("validation") / len(ids) < 0.2  # ~10 %
    clips = [common.Clip(f"/{g}/{k}.mp4", f"{g}/{k}.mp4", g, "train") for g in ("a", "b", "c") for k in range(3)]
    moved = common.ensure_validation(clips)  # small corpus, empty validation: one identity moves
    val = {c.group_id for c in moved if c.split == "validation"}
    assert len(val) == 1 and not val & {c.group_id for c in moved if c.split == "train"}
    all_val = [common.Clip(c.path, c.source, c.group_id, "validation") for c in clips]
    assert common.ensure_validation(all_val) == moved  # the same identity forms validation either way


# ---------------------------------------------------------- fake builds

def check_fake_build(builder):
    meta = builder.info.metadata
    rep = tfds_builders.report(builder)
    assert set(rep["splits"]) == {"train", "validation"}
    assert rep["splits"]["train"] == {"clips": 4, "examples": 3, "frames": 150, "hours": round(150 / 25 / 3600, 6)}
    assert rep["splits"]["validation"]["examples"] == 1
    reasons = sorted((r.get("source"), r["reason"]) for r in rep["skipped"])
    assert reasons == sorted([
        ("loose.mp4", common.LAYOUT),
        ("spk1/00001.mp4", common.TOO_SHORT), ("spk1/00002.mp4", common.TOO_SHORT),
        ("spk2/00001.mp4", common.TOO_SHORT), ("spk11/00001.mp4", common.TOO_SHORT),
        ("spk2/corrupt.mp4", common.CORRUPT), ("spk11/noaudio.mp4", common.NO_AUDIO),
        ("spk17/noface.mp4", common.NO_FACE)])
    groups = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split)
        keys = sorted(k for k, _ in meta["tracks"][split])
        assert [source[i]["key"].decode() for i in range(len(source))] == keys  # records sorted by key
        for i in range(len(source)):
            groups.setdefault(source[i]["group_id"].decode(), set()).add(split)
    assert all(len(s) == 1 for s in groups.values())  # no identity in two splits
    return rep


def test_fake_build_reports_every_skip_and_stores_tracks(tmp_path, fake_registration):
    manual = fake_corpus(tmp_path / "manual")
    builder = tfds_builders.build("registered_faces/lrs2", str(tmp_path / "data"), manual_dir=str(manual))
    check_fake_build(builder)
    ex = builder.as_data_source("train")[0]
    assert ex["num_frames"] == 50 and ex["start_frame"] == 2 and ex["end_frame"] == 52
    assert ex["mfcc"].shape == (50, 12, 35) and ex["mfcc"].dtype == np.float32
    assert ex["landmarks"].shape == (50, 478, 2) and ex["landmarks"].dtype == np.float16
    assert ex["frames"].shape == (50,) and abs(ex["fps"] - 29.97) < 1e-3
    # Frame i of the track is video frame start + i, in both the image and the MFCC window.
    for i in (0, 17, 49):
        frame = common.decode_frame(ex["frames"][i])
        assert frame.shape == (112, 112, 3) and abs(int(frame.mean()) - (2 + i)) <= 1
        assert ex["mfcc"][i, 0, 0] == 2 + i
    # Already built: reused, not rebuilt.
    assert tfds_builders.build("registered_faces/lrs2", str(tmp_path / "data"), manual_dir=None).is_prepared()


def test_a_rebuild_reuses_the_per_video_cache_and_redoes_a_changed_video(tmp_path, monkeypatch, fake_registration):
    manual = fake_corpus(tmp_path / "manual")
    data = str(tmp_path / "data")
    first = check_fake_build(tfds_builders.build("registered_faces/lrs2", data, manual_dir=str(manual)))
    calls = []

    def counting(path):
        calls.append(os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path))
        return fake_preprocess(path)

    monkeypatch.setattr(common, "preprocess_video", counting)
    again = tfds_builders.build("registered_faces/lrs2", data, manual_dir=str(manual), overwrite=True)
    assert calls == []  # every video came from the cache (a crashed build resumes the same way)
    assert check_fake_build(again)["splits"] == first["splits"]
    (manual / "spk2/00001.mp4").write_bytes(b"edited")  # new size and mtime: processed again
    tfds_builders.build("registered_faces/lrs2", data, manual_dir=str(manual), overwrite=True)
    assert calls == ["spk2/00001.mp4"]


def test_a_split_over_the_in_memory_sort_limit_builds_without_tensorflow(tmp_path, monkeypatch, fake_registration):
    """TFDS spills a split of over 1 GB to bucket files through tf.io.gfile, which needs TensorFlow;
    the limit is lowered here so the tiny fake corpus crosses it."""
    from tensorflow_datasets.core import shuffle

    pytest.importorskip("tensorflow_datasets")
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: TFDS spills to disk itself")
    monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 1000)
    manual = fake_corpus(tmp_path / "manual")
    check_fake_build(tfds_builders.build("registered_faces/lrs2", str(tmp_path / "data"), manual_dir=str(manual)))
    assert shuffle.MAX_MEM_BUFFER_SIZE == 1000  # restored after the build


def test_beam_build_gives_the_same_records(tmp_path, fake_registration):
    pytest.importorskip("apache_beam")
    manual = fake_corpus(tmp_path / "manual")
    builder = tfds_builders.build("registered_faces/lrs2", str(tmp_path / "beam"), manual_dir=str(manual),
                                  use_beam=True, beam_options=["--runner=DirectRunner"])
    check_fake_build(builder)
    plain = tfds_builders.build("registered_faces/lrs2", str(tmp_path / "plain"), manual_dir=str(manual))
    for split in ("train", "validation"):
        a, b = builder.as_data_source(split), plain.as_data_source(split)
        assert [a[i]["key"] for i in range(len(a))] == [b[i]["key"] for i in range(len(b))]


def test_build_errors_are_one_line(tmp_path, fake_registration):
    with pytest.raises(DataError, match="needs the source videos"):
        tfds_builders.build("registered_faces/lrs2", str(tmp_path / "d"))
    with pytest.raises(DataError, match="does not exist"):
        tfds_builders.build("registered_faces/lrs2", str(tmp_path / "d"), manual_dir=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no config 'nope'"):
        tfds_builders.build("registered_faces/nope", str(tmp_path / "d"))
    with pytest.raises(DataError, match="disagree"):
        tfds_builders.parse_name("registered_faces/lrs2", "lrw")
    touch(tmp_path / "bad", "v1/corrupt.mp4", "v1/noface.mp4")
    with pytest.raises(DataError, match="no usable face track"):
        tfds_builders.build("registered_faces/lrs2", str(tmp_path / "d"), manual_dir=str(tmp_path / "bad"))
    assert not (tmp_path / "d" / "registered_faces" / "lrs2" / "1.0.0").exists()  # nothing half-built


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "s2v_jax.cli", "build-dataset", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_missing_manual_dir_is_one_line_error(tmp_path):
    proc = run_cli("registered_faces", "--config", "lrs2", "--data-dir", str(tmp_path), "--manual-dir",
                   str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"s2v build-dataset: error: manual dir '{tmp_path / 'missing'}' does not exist")
    assert proc.stdout == ""


# ------------------------------------------------------- synthetic corpus

@pytest.fixture(scope="module")
def synthetic_tiny(tmp_path_factory):
    """synthetic_talking_faces/tiny, built once per session (real registration)."""
    return tfds_builders.build("synthetic_talking_faces/tiny", str(tmp_path_factory.getbasetemp() / "synthetic_tiny"))


def test_synthetic_build_splits_by_speaker_and_keeps_ground_truth(synthetic_tiny):
    builder = synthetic_tiny
    rep = tfds_builders.report(builder)
    assert sum(s["clips"] for s in rep["splits"].values()) == 6  # the tiny config's clips
    assert rep["total"]["examples"] >= 5
    corpus = pathlib.Path(builder.data_dir).parents[2] / "downloads" / "synthetic" / "tiny-seed0"
    speakers = {}
    for split in ("train", "validation"):
        source = builder.as_data_source(split)
        for i in range(len(source)):
            ex = source[i]
            speakers.setdefault(ex["group_id"].decode(), set()).add(split)
            gt = np.load(corpus / ex["source"].decode().replace(".mp4", ".npz"))
            s, n = int(ex["start_frame"]), int(ex["num_frames"])
            assert ex["gt_mouth_open"].shape == (n,) and ex["frames"].shape == (n,)
            np.testing.assert_array_equal(ex["gt_mouth_open"], gt["mouth_open"][s:s + n])
            np.testing.assert_array_equal(ex["gt_phoneme"], gt["phoneme"][s:s + n])
    assert speakers == {"spk000": {"train"}, "spk001": {"train"}, "spk002": {"validation"}}


# ------------------------------------------------------------ real builds

def link(manual: pathlib.Path, rel: str, target: pathlib.Path):
    (manual / rel).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, manual / rel)


def real_build(name, manual, data_dir):
    proc = run_cli(name, "--data-dir", str(data_dir), "--manual-dir", str(manual))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[train " in proc.stderr or "[validation " in proc.stderr  # progress per video
    return json.loads(proc.stdout)


def assert_counts_match(rep, num_clips):
    """Every clip was processed (tracks or a skip record), nothing dropped."""
    assert sum(s["clips"] for s in rep["splits"].values()) == num_clips
    assert rep["total"]["examples"] == sum(s["examples"] for s in rep["splits"].values()) >= 1
    assert rep["total"]["frames"] == sum(s["frames"] for s in rep["splits"].values()) > 0


def test_real_lrs2_subset(real_data, tmp_path):
    clips = ["00001.mp4", "00002.mp4", "00004.mp4"]
    for c in clips:
        link(tmp_path / "manual", f"6046013437125640989/{c}", real_data / LRS2 / c)
    rep = real_build("registered_faces/lrs2", tmp_path / "manual", tmp_path / "data")
    assert list(rep["splits"]) == ["train"]  # one video id: one split
    assert_counts_match(rep, 3)


def test_real_voxceleb2_layout(real_data, tmp_path):
    vox = real_data / "corpus" / "voxceleb2_style"
    clips = ["00002.mp4", "00010.mp4"]
    for i, c in enumerate(clips):  # two speakers -> one moves to validation
        link(tmp_path / "manual", f"id{i:05d}/video{i}/{c}", vox / c)
    rep = real_build("registered_faces/voxceleb2", tmp_path / "manual", tmp_path / "data")
    assert sorted(rep["splits"]) == ["train", "validation"]
    assert all(s["clips"] == 1 and s["examples"] >= 1 for s in rep["splits"].values())
    assert rep["total"]["frames"] > 100
    # Only short tracks (e.g. a face detected for a frame or two) may be left out here.
    assert {r["reason"] for r in rep["skipped"]} <= {common.TOO_SHORT}


def test_real_edge_cases_are_skipped_with_reasons(real_data, tmp_path):
    manual = tmp_path / "manual"
    link(manual, "speaker/00001.mp4", real_data / LRS2 / "00001.mp4")
    link(manual, "broken/truncated.mp4", real_data / "edge_cases" / "truncated.mp4")
    link(manual, "anime/no_audio.mp4", real_data / "edge_cases" / "no_audio_track_anime.mp4")
    from s2v_jax.media import audio

    noface = manual / "wall" / "noface.mp4"  # 1 s grey frames with a tone: no face
    noface.parent.mkdir(parents=True)
    subprocess.run([audio.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=160x160:r=25:d=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1",
                    "-shortest", "-pix_fmt", "yuv420p", str(noface)], check=True, timeout=60)
    rep = real_build("registered_faces/folder", manual, tmp_path / "data")
    reasons = {r["source"]: r["reason"] for r in rep["skipped"] if "source" in r and "track_index" not in r}
    assert reasons == {"broken/truncated.mp4": common.CORRUPT, "anime/no_audio.mp4": common.NO_AUDIO,
                       "wall/noface.mp4": common.NO_FACE}
    assert rep["total"]["examples"] >= 1


@pytest.mark.slow
def test_real_lrs2_full(real_data, tmp_path):
    rep = real_build("registered_faces/lrs2", real_data / "corpus" / "lrs2", tmp_path / "data")
    assert_counts_match(rep, len(list((real_data / LRS2).glob("*.mp4"))))


@pytest.mark.slow
def test_real_voxceleb2_style_full(real_data, tmp_path):
    files = sorted((real_data / "corpus" / "voxceleb2_style").glob("*.mp4"))
    rep = real_build("registered_faces/folder", real_data / "corpus" / "voxceleb2_style", tmp_path / "data")
    assert_counts_match(rep, len(files))
