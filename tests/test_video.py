"""Tests for s2v_jax.media.video: probe, streamed decoding with frame-rate change,
the mp4 writer (sound, odd sizes, errors) and clean-up of ffmpeg processes."""

import os
import pathlib

import numpy as np
import pytest

from s2v_jax.errors import MediaError
from s2v_jax.media import audio as A
from s2v_jax.media import video as V

SR = 16000


def _square_frames(n=40, h=48, w=64):
    """Grey background with a white 12x12 square moving 1 px per frame to the right."""
    frames = np.full((n, h, w, 3), 60, np.uint8)
    for k in range(n):
        frames[k, 18:30, 4 + k : 16 + k] = 255
    return frames


def _level_frames(n, h=32, w=32, step=5):
    """Frame i is a flat grey of level step * i, so a decoded frame names its source."""
    return np.stack([np.full((h, w, 3), step * i, np.uint8) for i in range(n)])


def _children():
    """PIDs of this process's live or zombie children (read from /proc)."""
    me, kids = os.getpid(), []
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                kids.append(int(d.name))
    return kids


@pytest.fixture(scope="module")
def square_clip(tmp_path_factory):
    """40 frames 64x48 at 25 fps with a 1.6 s 440 Hz tone."""
    path = tmp_path_factory.mktemp("vid") / "square.mp4"
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(25600) / SR)).astype(np.float32)
    V.write_video(path, _square_frames(), fps=25.0, audio=tone)
    return path, tone


def test_write_probe_and_read_back(square_clip):
    path, tone = square_clip
    info = V.probe(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (64, 48, 25.0, True)
    assert abs(info.duration - 1.6) <= 0.04 and abs(info.num_frames - 40) <= 1
    frames = V.read_frames(path)
    assert frames.shape == (40, 48, 64, 3) and frames.dtype == np.uint8
    ref = _square_frames()
    assert np.abs(frames.astype(int) - ref).mean() < 3
    for k in (0, 20, 39):  # the square is where it was drawn
        cols = np.where(frames[k, 24, :, 0] > 160)[0]
        assert abs(cols.min() - (4 + k)) <= 1 and abs(cols.max() - (15 + k)) <= 1
    wav = V.extract_audio(path)
    assert abs(len(wav) - len(tone)) <= SR * 0.04  # as long as the audio to within one frame
    spectrum = np.abs(np.fft.rfft(wav[2000:18000]))
    assert abs(np.argmax(spectrum) * SR / 16000 - 440) <= 2


def test_start_frame_and_max_frames(square_clip):
    path, _ = square_clip
    full = V.read_frames(path)
    part = V.read_frames(path, start_frame=5, max_frames=3)
    assert part.shape[0] == 3
    np.testing.assert_array_equal(part, full[5:8])
    assert V.read_frames(path, max_frames=0).shape == (0, 48, 64, 3)


@pytest.mark.parametrize("src_fps,n_src", [(50.0, 50), (30.0, 30)])
def test_resample_to_25fps(tmp_path, src_fps, n_src):
    path = V.write_video(tmp_path / f"src{int(src_fps)}.mp4", _level_frames(n_src), fps=src_fps)
    info = V.probe(path)
    assert info.fps == src_fps and info.num_frames == n_src
    frames = V.read_frames(path, fps=25.0)
    assert frames.shape[0] == 25
    # frame k is the source picture shown at time k / 25
    levels = frames[:, 16, 16, 0].astype(int)
    expected = 5 * np.floor(np.arange(25) * src_fps / 25 + 0.5).astype(int)
    assert np.abs(levels - expected).max() <= 3


def test_early_stop_leaves_no_ffmpeg_process(square_clip):
    path, _ = square_clip
    before = set(_children())
    it = V.iter_frames(path)
    next(it), next(it)
    assert len(set(_children()) - before) == 1  # ffmpeg is running
    it.close()
    assert set(_children()) - before == set()
    for _ in V.iter_frames(path):  # break out of a for loop, generator dropped
        break
    assert set(_children()) - before == set()


def test_odd_frame_size_is_padded_by_edge_repeat(tmp_path):
    frames = np.random.RandomState(0).randint(0, 255, (3, 49, 65, 3)).astype(np.uint8)
    frames[:] = np.clip(frames, 80, 170)  # low contrast keeps the H.264 round-trip close
    frames[:, :, -1] = 200
    path = V.write_video(tmp_path / "odd.mp4", frames)
    info = V.probe(path)
    assert (info.width, info.height) == (66, 50)
    back = V.read_frames(path)
    assert back.shape == (3, 50, 66, 3)
    assert np.abs(back[:, 2:-2, -1].astype(int) - 200).mean() < 8  # repeated last column, not black


def test_writer_errors(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        V.VideoWriter(tmp_path / "no" / "dir.mp4")
    with pytest.raises(MediaError, match="no frames were written"):
        with V.VideoWriter(tmp_path / "none.mp4"):
            pass
    with V.VideoWriter(tmp_path / "bad.mp4") as w:
        with pytest.raises(MediaError, match="must be uint8 RGB"):
            w.write(np.zeros((16, 16, 3), np.float32))
        w.write(np.zeros((16, 16, 3), np.uint8))
        with pytest.raises(MediaError, match="all frames must have one size"):
            w.write(np.zeros((16, 18, 3), np.uint8))
    assert V.probe(tmp_path / "bad.mp4").num_frames == 1
    with pytest.raises(RuntimeError):  # an exception in the block discards the partial file
        with V.VideoWriter(tmp_path / "aborted.mp4") as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("stop")
    assert not (tmp_path / "aborted.mp4").exists() and not list(tmp_path.glob(".aborted*"))


def test_probe_errors(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        V.probe(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(np.random.RandomState(0).bytes(5000))
    with pytest.raises(MediaError, match=r"junk\.mp4"):
        V.probe(tmp_path / "junk.mp4")
    with pytest.raises(MediaError, match=r"junk\.mp4"):
        V.iter_frames(tmp_path / "junk.mp4")  # raised at the call, not at the first next()


# ---- real clips in ../shared/data/real (skipped where absent) ----


@pytest.mark.parametrize("folder", ["corpus/lrs2", "corpus/voxceleb2_style", "corpus/grid", "single_speaker"])
def test_real_clips_probe_and_stream(real_data, folder):
    clips = sorted((real_data / folder).rglob("*.mp4")) + sorted((real_data / folder).rglob("*.mpg"))
    assert clips
    for clip in clips:
        info = V.probe(clip)
        assert info.has_audio and info.fps == 25.0 and info.duration > 0.5, clip
        frames = V.read_frames(clip, max_frames=10)
        assert frames.shape == (10, info.height, info.width, 3), clip
        assert frames.std() > 5, clip  # real pictures, not blank


def test_real_edge_case_videos(real_data):
    edge = real_data / "edge_cases"
    with pytest.raises(MediaError, match=r"truncated\.mp4"):
        V.probe(edge / "truncated.mp4")
    with pytest.raises(MediaError, match=r"truncated\.mp4"):
        V.read_frames(edge / "truncated.mp4")
    info = V.probe(edge / "no_audio_track_anime.mp4")
    assert info.has_audio is False and (info.width, info.height) == (704, 1216)
