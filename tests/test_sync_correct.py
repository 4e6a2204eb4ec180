"""AV-offset correction in data prep (`s2v build-dataset --sync-correct`,
registered_faces/*_synced): which way a track's sound is shifted, when an
offset is applied, the build through TFDS with the plain build's cache, and
a real GRID sentence with its sound delayed by 6 frames, found and undone by
the shipped judge."""

import os
import subprocess

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import tfds_builders  # noqa: E402
from s2v_jax.errors import DataError  # noqa: E402
from tfds_builders import common  # noqa: E402
from tfds_builders.sync_correct import SyncCorrector, SyncPolicy, shift_example  # noqa: E402

from fakes import fake_corpus, fake_preprocess  # noqa: E402


def marked_example(n=60, start=10):
    """Frame i and MFCC window i both carry the video frame index start + i."""
    idx = np.arange(start, start + n)
    frames = [common.encode_frame(np.full((112, 112, 3), i % 256, np.uint8)) for i in idx]
    return {"key": "ab" * 16, "frames": frames, "num_frames": n,
            "mfcc": np.broadcast_to(idx[:, None, None].astype(np.float32), (n, 12, 35)).copy(),
            "landmarks": idx[:, None, None] + np.zeros((n, 478, 2)), "transforms": np.zeros((n, 2, 3)),
            "start_frame": start, "end_frame": start + n, "source": "s/a.mp4", "track_index": 0}


def test_a_late_sound_is_pulled_forward_and_an_early_one_pushed_back():
    ex = marked_example()
    late = shift_example(ex, 4)   # the sound comes 4 frames late: frame i is spoken at window i + 4
    assert late["num_frames"] == 56 and late["av_offset"] == 4
    assert late["start_frame"] == 10 and late["end_frame"] == 66
    assert late["frames"][0] == ex["frames"][0] and late["mfcc"][0, 0, 0] == 14
    assert all(late["mfcc"][j, 0, 0] == late["landmarks"][j, 0, 0] + 4 for j in range(56))
    early = shift_example(ex, -3)  # 3 frames early: the first 3 frames' sound came before the track
    assert early["num_frames"] == 57 and early["start_frame"] == 13 and early["end_frame"] == 70
    assert early["frames"][0] == ex["frames"][3] and early["mfcc"][0, 0, 0] == 10
    assert all(early["mfcc"][j, 0, 0] == early["landmarks"][j, 0, 0] - 3 for j in range(57))
    assert shift_example(ex, 0)["mfcc"].tolist() == ex["mfcc"].tolist()
    with pytest.raises(ValueError, match="leaves nothing"):
        shift_example(ex, 60)


class FixedJudge:
    """Answers the offset and LSE-C it is given; counts the frames it saw."""

    def __init__(self, offset, lse_c=0.3):
        self.offset, self.lse_c, self.calls = offset, lse_c, []

    def sync_scores(self, crops, mfcc_windows, max_offset):
        assert len(crops) == len(mfcc_windows) and crops.shape[1:] == (112, 112, 3)
        self.calls.append(len(crops))
        return {"av_offset": self.offset, "lse_c": self.lse_c, "lse_d": 1.0}


@pytest.mark.parametrize("offset,lse_c,shifted", [(5, 0.3, True), (-2, 0.3, True), (1, 0.3, False),
                                                  (-1, 0.9, False), (6, 0.01, False), (None, None, False),
                                                  (0, 0.5, False)])
def test_only_confident_offsets_of_two_frames_or_more_are_applied(offset, lse_c, shifted):
    judge = FixedJudge(offset, lse_c)
    fix = SyncCorrector(judge, SyncPolicy(), min_frames=25)
    long_ex, short_ex = marked_example(60), marked_example(40, start=100)
    short_ex["key"] = "cd" * 16
    result = fix(common.ClipResult([(1, long_ex), (2, short_ex)], [], [{"reason": "kept"}]))
    assert judge.calls == [60]  # the 40-frame (1.6 s) track is not measured
    (_, a), (_, b) = result.examples
    assert a["av_offset"] == (offset if shifted else 0) and b["av_offset"] == 0
    assert a["num_frames"] == 60 - (abs(offset) if shifted else 0) and b["num_frames"] == 40
    assert result.tracks == [[a["key"], a["num_frames"]], ["cd" * 16, 40]] and result.skipped == [{"reason": "kept"}]
    meta = fix.metadata()
    assert meta["unmeasured_short_tracks"] == 1 and meta["tracks"][0]["shifted"] is shifted
    assert meta["summary"] == {"s": {"measured": 1, "shifted": int(shifted), "offsets": {str(offset): 1}}}


def test_a_synced_build_shifts_each_track_and_reuses_the_plain_builds_registrations(tmp_path, monkeypatch):
    calls = []

    def counting(path):
        calls.append(path)
        return fake_preprocess(path)

    monkeypatch.setattr(common, "preprocess_video", counting)
    manual, data = fake_corpus(tmp_path / "manual"), str(tmp_path / "data")
    plain = tfds_builders.build("registered_faces/lrs2", data, manual_dir=str(manual))
    registered = len(calls)
    with pytest.raises(DataError, match="--sync-correct"):  # no judge: a clear error, nothing built
        tfds_builders.build("registered_faces/lrs2_synced", data, manual_dir=str(manual))
    judge = FixedJudge(4)
    synced = tfds_builders.build("registered_faces/lrs2_synced", data, manual_dir=str(manual), sync_judge=judge)
    assert len(calls) == registered  # every video came from the plain build's cache
    assert judge.calls == [50, 50, 50, 50]  # the four 50-frame tracks (2 s) of the fake corpus
    ex, ref = synced.as_data_source("train")[0], plain.as_data_source("train")[0]
    assert ex["key"] == ref["key"] and ex["av_offset"] == 4 and ex["num_frames"] == 46
    for j in (0, 20, 45):  # frame j is still video frame 2 + j; its sound is now window 2 + j + 4
        assert abs(int(common.decode_frame(ex["frames"][j]).mean()) - (2 + j)) <= 1
        assert ex["mfcc"][j, 0, 0] == 2 + j + 4
    rep = tfds_builders.report(synced)
    assert rep["splits"]["train"]["frames"] == 150 - 3 * 4
    sc = rep["sync_correction"]
    assert sc["summary"]["spk1"] == {"measured": 2, "shifted": 2, "offsets": {"4": 2}}  # spk1/00001, 00002
    assert sc["policy"]["min_offset"] == 2 and len(synced.info.metadata["sync_correction"]["tracks"]) == 4
    assert "av_offset" not in plain.as_data_source("train")[0]  # the plain config is unchanged


def test_the_shipped_judge_finds_and_undoes_a_six_frame_delay_on_a_real_sentence(real_data, tmp_path):
    from s2v_jax.evaluation.sync_expert import SyncExpert
    from s2v_jax.media.video import ffmpeg_exe

    src = real_data / "corpus" / "grid_s1" / "bbaf3s.mp4"
    if not src.exists():
        pytest.skip(f"{src} is absent")
    manual = tmp_path / "manual" / "s1"
    manual.mkdir(parents=True)
    os.symlink(src, manual / "a_original.mp4")
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(src), "-af", "adelay=240|240", "-c:v", "copy",
                    str(manual / "b_delayed.mp4")], check=True)  # the sound 0.24 s = 6 frames late
    builder = tfds_builders.build("registered_faces/folder_synced", str(tmp_path / "data"),
                                  manual_dir=str(tmp_path / "manual"), sync_judge=SyncExpert.default())
    (split,) = builder.info.splits
    source = builder.as_data_source(split)
    by_name = {common.decode_text(source[i]["source"]).split("/")[-1]: source[i] for i in range(len(source))}
    orig, fixed = by_name["a_original.mp4"], by_name["b_delayed.mp4"]
    records = {r["source"].split("/")[-1]: r for r in builder.info.metadata["sync_correction"]["tracks"]}
    assert abs(records["b_delayed.mp4"]["offset"] - 6) <= 1 and records["b_delayed.mp4"]["shifted"]
    assert abs(records["a_original.mp4"]["offset"]) <= 1 and orig["av_offset"] == 0
    k = int(fixed["av_offset"])
    assert abs(k - 6) <= 1
    # after the shift, each frame of the delayed copy has (nearly) the original's sound for that frame
    a0 = int(fixed["start_frame"]) - int(orig["start_frame"])
    n = min(int(fixed["num_frames"]), int(orig["num_frames"]) - a0)
    o = np.asarray(orig["mfcc"])[a0:a0 + n].reshape(n, -1)
    f = np.asarray(fixed["mfcc"])[:n].reshape(n, -1)
    err_fixed = float(np.abs(f - o).mean())
    err_unshifted = float(np.abs(f[:n - k] - o[k:]).mean())  # the delayed copy's own pairing, 6 frames off
    assert err_fixed < 0.5 * err_unshifted, (err_fixed, err_unshifted)
    # `s2v evaluate` reads a synced track's sound (its loudness envelope) from start_frame + av_offset
    from s2v_jax.evaluation import metrics
    from s2v_jax.evaluation.evaluate import clips_from_tfds
    from s2v_jax.media import audio

    clips = {c.source.split("/")[-1]: c for c in clips_from_tfds(
        f"registered_faces/folder_synced:{split}", str(tmp_path / "data"), manual_dir=str(tmp_path / "manual"))}
    env_o, env_f = clips["a_original.mp4"].envelope[a0:a0 + n], clips["b_delayed.mp4"].envelope[:n]
    wav = audio.load_audio(str(manual / "b_delayed.mp4"))
    s0 = int(fixed["start_frame"])
    env_raw = metrics.audio_envelope(wav, audio.num_video_frames(len(wav)))[s0:s0 + n]  # without the offset
    assert np.abs(env_f - env_o).mean() < 0.5 * np.abs(env_raw - env_o).mean()


def test_the_command_builds_the_synced_config_with_the_shipped_judge_and_refuses_what_cannot_work():
    import argparse

    from s2v_jax.commands import build_dataset

    def args(**kw):
        return argparse.Namespace(**{"sync_correct": False, "sync_judge": None, "beam": False, **kw})

    assert build_dataset.sync_settings("registered_faces/real", args()) == ("registered_faces/real", None)
    name, judge = build_dataset.sync_settings("registered_faces/real", args(sync_correct=True))
    assert name == "registered_faces/real_synced" and hasattr(judge, "sync_scores")
    assert build_dataset.sync_settings("registered_faces/lrs2_synced", args())[0] == "registered_faces/lrs2_synced"
    with pytest.raises(DataError, match="registered_faces corpora"):
        build_dataset.sync_settings("synthetic_talking_faces/tiny", args(sync_correct=True))
    with pytest.raises(DataError, match="without Beam"):
        build_dataset.sync_settings("registered_faces/real", args(sync_correct=True, beam=True))
    with pytest.raises(DataError, match="add --sync-correct"):
        build_dataset.sync_settings("registered_faces/real", args(sync_judge="W"))
    with pytest.raises(DataError, match="no config 'lrw_synced'"):
        tfds_builders.get_builder("registered_faces/lrw_synced", "/tmp/unused")
