"""`s2v generate` end to end: frame count and duration of the mp4, its sound
track, the photo unchanged far from the face (a loose check after H.264),
--bare, and one-line errors (exit 2) for bad inputs; the `s2v stream` demo; with the real data,
every still, every audio file and the edge cases give a video or a clear error.
"""

import json
import os

import ckpt_fixture
import numpy as np
import pytest

from s2v_jax import cli
from s2v_jax.faces import registration
from s2v_jax.media import audio, video

REAL_STILLS = ["bw_portrait.jpg", "crop_224_a.jpg", "crop_224_b.jpg", "painting.png", "portrait_a.jpg",
               "portrait_b_happy.png", "portrait_b_sad.png", "portrait_c.png"]
FAST_STILLS = ["crop_224_a.jpg", "portrait_c.png"]
REAL_AUDIO = ["en_12s_48k_stereo.wav", "en_commentary_60s.wav", "en_interview_14s.wav", "en_speech_8s_a.wav",
              "en_speech_8s_b.wav", "zh_news_8s_48k_stereo.wav"]


@pytest.fixture
def cached(monkeypatch):
    """Load each checkpoint once across CLI calls (for tests about inputs, not loading)."""
    ckpt_fixture.cache_loading(monkeypatch)


def generate(ckpt, images, audio_path, out, *extra):
    argv = ["generate", "--checkpoint", ckpt, "--audio", str(audio_path), "--out", str(out), "--no-progress",
            "--batch-size", "16", "--preset", "veryfast", *extra]
    for image in images:
        argv += ["--image", str(image)]
    return cli.main(argv)


def check_video(path, audio_path, size=None):
    """Frame count = num_video_frames(audio), duration within one frame, sound present."""
    info = video.probe(path)
    n = audio.num_video_frames(len(audio.load_audio(audio_path)))
    frames = video.read_frames(path)
    assert len(frames) == n, (len(frames), n)
    assert info.has_audio and info.fps == 25.0
    assert abs(len(audio.load_audio(path)) / 16000 - n / 25) <= 1 / 25
    if size is not None:
        assert frames.shape[1:3] == size
    return frames


def test_generate_pastes_into_photo(ckpts, media, tmp_path):
    out = tmp_path / "out.mp4"
    assert generate(ckpts["gen"], [media["photo"]], media["speech"], out) == 0
    frames = check_video(out, media["speech"], (192, 192))
    photo = registration.load_image(media["photo"])
    face = registration.align_image(photo)
    import cv2
    cover = cv2.warpAffine(np.ones((112, 112), np.uint8), registration.invert_similarity(face.M), (192, 192))
    far = cv2.dilate(cover, np.ones((15, 15), np.uint8)) == 0
    assert far.mean() > 0.2
    diff = np.abs(frames.astype(int) - photo)[:, far]
    assert diff.mean() < 6.0, diff.mean()  # H.264 (CRF 18, yuv420p): lossy, but close


def test_generate_bare_and_v201(ckpts, media, tmp_path, cached):
    out = tmp_path / "bare.mp4"
    assert generate(ckpts["gen"], [media["photo"]], media["long_speech"], out, "--bare") == 0
    check_video(out, media["long_speech"], (112, 112))
    out = tmp_path / "v201.mp4"
    assert generate(ckpts["v201"], [media["photo"]] * 5, media["speech"], out, "--bare") == 0
    check_video(out, media["speech"], (110, 110))  # 109x109, padded to even for H.264


@pytest.mark.parametrize("case,pattern", [
    ("noface", "no face found in .*noface.png"),
    ("silent", "silent.wav is silent"),
    ("empty", "empty.wav is empty"),
    ("missing_ckpt", "does not exist"),
    ("wrong_kind", "'deblur' model, not the generator"),
    ("five_for_one", "takes 1 identity image"),
    ("no_folder", "does not exist"),
])
def test_generate_errors_are_one_line(ckpts, media, tmp_path, capsys, cached, case, pattern):
    ckpt, images, speech, out = ckpts["gen"], [media["photo"]], media["speech"], tmp_path / "o.mp4"
    if case == "noface":
        images = [media["noface"]]
    elif case in ("silent", "empty"):
        speech = media[case]
    elif case == "missing_ckpt":
        ckpt = str(tmp_path / "no_such_workdir")
    elif case == "wrong_kind":
        ckpt = ckpts["deblur"]
    elif case == "five_for_one":
        images = images * 5
    elif case == "no_folder":
        out = tmp_path / "missing" / "o.mp4"
    assert generate(ckpt, images, speech, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    last = err[-1]
    assert last.startswith("s2v generate: error:"), err
    import re
    assert re.search(pattern, last), last
    assert not out.exists()


def test_stream_demo(ckpts, media, tmp_path, capsys):
    import json
    out = tmp_path / "stream.mp4"
    rc = cli.main(["stream", "--checkpoint", ckpts["gen"], "--image", media["photo"], "--audio", media["speech"],
                   "--out", str(out), "--bare", "--chunk-ms", "40"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["frames"] == 31 and len(video.read_frames(out)) == 31
    # A frame needs 0.1825 s (+1 sample) of audio past its time; fed in 40 ms chunks, it comes
    # out at most one chunk later (0.2 s for whole chunks; the last, shorter chunk gives less).
    assert 0.1825 <= report["lookahead_s_min"] and report["lookahead_s_max"] <= 0.1825 + 0.04
    # the first frame waits for its audio, then for the model and its compositing; the steady rate is
    # frames per second of that processing
    assert report["first_frame_latency_s"] > report["lookahead_s_min"]
    assert report["steady_frames_per_s"] > 0 and report["compose_ms_per_frame_median"] >= 0
    assert abs(report["realtime_factor"] - report["steady_frames_per_s"] / 25) < 0.01


def test_stream_summary_reads_the_times_it_is_given():
    from s2v_jax.commands.stream import stream_summary

    got = stream_summary("o.mp4", 50, 40.0, [0.2, 0.19], [0.02] * 50, [0.01] * 50, 0.2 + 0.02 + 0.01)
    assert got["steady_frames_per_s"] == round(50 / 1.5, 2) and got["realtime_factor"] == round(50 / 1.5 / 25, 2)
    assert got["first_frame_latency_s"] == 0.23 and got["compute_ms_per_chunk_median"] == 20.0
    assert got["lookahead_s_min"] == 0.19 and got["compose_ms_per_frame_median"] == 10.0


# ---------------------------------------------------------------- real data

def _real_generate(ckpts, image, speech, tmp_path):
    out = tmp_path / (os.path.basename(image) + ".mp4")
    assert generate(ckpts["gen"], [image], speech, out) == 0
    check_video(out, speech)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", FAST_STILLS)
def test_real_stills_fast_subset(ckpts, real_data, tmp_path, cached, name):
    _real_generate(ckpts, real_data / "stills" / name, real_data / "edge_cases" / "short_speech.mp3", tmp_path)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", [s for s in REAL_STILLS if s not in FAST_STILLS])
def test_real_stills_all(ckpts, real_data, tmp_path, cached, name):
    _real_generate(ckpts, real_data / "stills" / name, real_data / "edge_cases" / "short_speech.mp3", tmp_path)


@pytest.mark.shared_data
def test_real_48k_stereo_audio(ckpts, real_data, tmp_path, cached):
    out = tmp_path / "zh.mp4"
    speech = real_data / "audio" / "zh_news_8s_48k_stereo.wav"
    assert generate(ckpts["gen"], [real_data / "stills" / "crop_224_b.jpg"], speech, out, "--bare") == 0
    check_video(out, speech, (112, 112))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", REAL_AUDIO)
def test_real_audio_all(ckpts, real_data, tmp_path, cached, name):
    out = tmp_path / "a.mp4"
    speech = real_data / "audio" / name
    assert generate(ckpts["gen"], [real_data / "stills" / "crop_224_a.jpg"], speech, out) == 0
    check_video(out, speech)


@pytest.mark.shared_data
@pytest.mark.parametrize("image,speech,expect", [
    ("edge_cases/no_face_coffee.png", "edge_cases/short_speech.mp3", "no face found in .*no_face_coffee.png"),
    ("edge_cases/two_faces.jpg", "edge_cases/short_speech.mp3", "video"),
    ("edge_cases/small_face_full_body.png", "edge_cases/short_speech.mp3", "video"),
    ("stills/crop_224_a.jpg", "edge_cases/empty.wav", "empty.wav is empty"),
    ("stills/crop_224_a.jpg", "edge_cases/no_audio_track_anime.mp4", "has no audio track"),
    ("stills/crop_224_a.jpg", "edge_cases/truncated.mp4", "could not decode audio .*truncated.mp4"),
])
def test_real_edge_cases(ckpts, real_data, tmp_path, capsys, cached, image, speech, expect):
    out = tmp_path / "edge.mp4"
    rc = generate(ckpts["gen"], [real_data / image], real_data / speech, out)
    err = capsys.readouterr().err
    if expect == "video":
        assert rc == 0, err
        check_video(out, real_data / speech)
        if "two_faces" in image:
            assert "warning: found 2 faces" in err
    else:
        import re
        assert rc == 2
        last = err.strip().splitlines()[-1]
        assert last.startswith("s2v generate: error:") and re.search(expect, last), last


# ---------------------------------------------------------------- inputs are never overwritten

def _md5(path):
    import hashlib

    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("case", ["redub_video", "generate_audio", "generate_image", "symlink", "align"])
def test_an_output_that_is_an_input_is_refused_before_any_work(ckpts, media, tmp_path, capsys, cached, case):
    """`--out` naming an input (directly or through a link) exits 2 with one line; the input is unchanged."""
    import shutil

    talk = tmp_path / "talk.mp4"
    shutil.copy(media["talk"], talk)
    photo = tmp_path / ("photo" + os.path.splitext(str(media["photo"]))[1])
    shutil.copy(media["photo"], photo)
    speech = tmp_path / "speech.wav"
    shutil.copy(media["speech"], speech)
    common = ["--checkpoint", ckpts["gen"], "--no-progress", "--batch-size", "16", "--preset", "veryfast"]
    if case == "redub_video":
        victim, argv = talk, ["redub", *common, "--video", str(talk), "--audio", str(speech), "--out", str(talk)]
    elif case == "generate_audio":
        victim, argv = talk, ["generate", *common, "--image", str(photo), "--audio", str(talk), "--out", str(talk)]
    elif case == "generate_image":
        victim, argv = photo, ["generate", *common, "--image", str(photo), "--audio", str(speech),
                               "--out", str(photo)]
    elif case == "symlink":
        link = tmp_path / "link.mp4"
        os.symlink(talk, link)
        victim, argv = talk, ["redub", *common, "--video", str(talk), "--audio", str(speech), "--out", str(link)]
    else:
        victim, argv = photo, ["align", "--image", str(photo), "--out", str(photo)]
    before, listing = _md5(victim), sorted(os.listdir(tmp_path))
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would destroy the input" in err[0], err
    assert _md5(victim) == before
    assert sorted(os.listdir(tmp_path)) == listing  # nothing written beside it (no partial file)


def test_an_unwritable_output_folder_is_refused_before_any_work(ckpts, media, tmp_path, capsys, cached, monkeypatch):
    """A folder the process cannot write (read-only mount, no permission) is found up front, in one line."""
    out_dir = tmp_path / "readonly"
    out_dir.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(out_dir)
                        else real_access(p, mode, **kw))
    calls = []
    monkeypatch.setattr("s2v_jax.inference.generate.load_speech", lambda *a, **k: calls.append(a))
    capsys.readouterr()
    rc = cli.main(["generate", "--checkpoint", ckpts["gen"], "--image", str(media["photo"]),
                   "--audio", str(media["speech"]), "--out", str(out_dir / "out.mp4"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not writable" in err[0], err
    assert calls == [] and os.listdir(out_dir) == []  # nothing read, nothing written


def test_sigterm_mid_run_leaves_no_partial_output_and_no_temporary_audio(ckpts, media, tmp_path):
    """SIGTERM (what timeout, kill and container stops send) cleans up as Ctrl-C does; stale
    temporaries of earlier killed runs are removed, a live process's are left alone."""
    import signal
    import subprocess
    import sys
    import time

    import soundfile

    wav, sr = soundfile.read(str(media["speech"]), dtype="float32")
    long_speech = tmp_path / "long.wav"
    soundfile.write(str(long_speech), np.tile(wav, 60), sr, subtype="PCM_16")  # ~74 s
    out_dir, tmp_dir = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp_dir.mkdir()
    stale = [out_dir / ".old.partial999999999.mp4", out_dir / ".old.audio999999999.wav"]
    live = out_dir / f".other.partial{os.getppid()}.mp4"
    for p in stale + [live]:
        p.write_bytes(b"x")
    env = dict(os.environ, TMPDIR=str(tmp_dir))
    proc = subprocess.Popen([sys.executable, "-m", "s2v_jax.cli", "generate", "--checkpoint", ckpts["gen"],
                             "--image", str(media["photo"]), "--audio", str(long_speech),
                             "--out", str(out_dir / "talk.mp4"), "--no-progress", "--preset", "veryslow"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not any(".partial" in n and str(proc.pid) in n for n in os.listdir(out_dir)):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    time.sleep(1.0)  # mid-run: frames are being encoded
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err, err
    assert sorted(os.listdir(out_dir)) == [live.name], os.listdir(out_dir)  # no partial, no wav, stale gone
    assert os.listdir(tmp_dir) == [], os.listdir(tmp_dir)


@pytest.mark.parametrize("damage", ["half_of_every_data_file", "largest_file_to_100_bytes"])
def test_a_damaged_checkpoint_is_one_line_at_inference(ckpts, media, tmp_path, damage):
    """A truncated file inside the checkpoint `generate` loads: one line naming the step and what to
    do, exit 2, no traceback (it used to print 440-870 lines of tensorstore and asyncio errors).
    Two ways a copy goes wrong: every data file cut to half, or the largest file of each step cut to
    100 bytes (a half-copied checkpoint: Orbax 0.12 wraps that error, its cause the reader's)."""
    import shutil
    import subprocess
    import sys

    from fakes import DAMAGES

    damage_step = DAMAGES[damage]

    workdir = tmp_path / "gen"
    shutil.copytree(ckpts["gen"], workdir)
    for sub in ("best", "checkpoints"):
        for step in os.listdir(workdir / sub) if (workdir / sub).is_dir() else []:
            if step.isdigit():
                damage_step(str(workdir / sub / step))
    proc = subprocess.run([sys.executable, "-m", "s2v_jax.cli", "generate", "--checkpoint", str(workdir),
                           "--image", str(media["photo"]), "--audio", str(media["speech"]),
                           "--out", str(tmp_path / "out.mp4"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "is damaged" in lines[0] and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "out.mp4").exists()


def _real_photo_argv(ckpts, real_data, media, out, *flags):
    """`s2v [flags] generate` of the tiny checkpoint on a real photo, as a subprocess argv."""
    import sys

    return [sys.executable, "-m", "s2v_jax.cli", *flags, "generate", "--checkpoint", ckpts["gen"],
            "--image", str(real_data / "stills" / "portrait_a.jpg"), "--audio", str(media["speech"]),
            "--out", str(out), "--no-progress", "--preset", "veryfast"]


@pytest.mark.shared_data
def test_generate_on_a_real_photo_prints_no_native_mediapipe_logging(ckpts, real_data, media, tmp_path):
    import re
    import subprocess

    proc = subprocess.run(_real_photo_argv(ckpts, real_data, media, tmp_path / "out.mp4"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    native = [line for line in proc.stderr.splitlines() if re.match(r"^[WIEF]\d{4} ", line)]
    assert native == [], native[:5]


@pytest.mark.slow  # a second real-photo generate run, ~10 s
@pytest.mark.shared_data
def test_verbose_shows_the_native_mediapipe_logging(ckpts, real_data, media, tmp_path):
    import re
    import subprocess

    verbose = subprocess.run(_real_photo_argv(ckpts, real_data, media, tmp_path / "v.mp4", "--verbose"),
                             capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert any(re.match(r"^[WIEF]\d{4} ", line) for line in verbose.stderr.splitlines())  # --verbose shows it


def test_a_one_pixel_image_says_it_is_too_small(ckpts, media, tmp_path, capsys, cached):
    import cv2

    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    capsys.readouterr()
    rc = cli.main(["generate", "--checkpoint", ckpts["gen"], "--image", str(tiny), "--audio", str(media["speech"]),
                   "--out", str(tmp_path / "out.mp4"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "1x1 pixels" in err[0] and "too small" in err[0], err


def test_a_large_photo_is_downscaled_to_max_size_and_says_so(ckpts, media, tmp_path, capsys, cached):
    import cv2

    big = tmp_path / "big.png"
    photo = cv2.imread(str(media["photo"]))
    cv2.imwrite(str(big), cv2.resize(photo, (photo.shape[1] * 8, photo.shape[0] * 8)))  # 1536 px
    capsys.readouterr()
    rc = cli.main(["generate", "--checkpoint", ckpts["gen"], "--image", str(big), "--audio", str(media["speech"]),
                   "--out", str(tmp_path / "out.mp4"), "--no-progress", "--preset", "veryfast",
                   "--max-size", "400"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert max(out["width"], out["height"]) <= 400, out
    assert "downscaled to 400x400" in captured.err, captured.err
    info = video.probe(str(tmp_path / "out.mp4"))
    assert max(info.width, info.height) <= 400


def test_damage_is_read_from_the_whole_exception_chain_and_the_files(tmp_path):
    from s2v_jax.train.checkpointing import damage_cause, damaged_files, is_damage

    storage = ValueError('OUT_OF_RANGE: Error reading "params.x/0.0" in OCDBT database: Requested byte range '
                         '[7, 9) is not valid for value of size 100')
    try:
        try:
            raise storage
        except ValueError as inner:
            raise Exception("Encountered error while reading array index: (slice(0, 3, 1),)") from inner
    except Exception as wrapped:  # noqa: BLE001 - Orbax 0.12's form
        assert is_damage(wrapped) and damage_cause(wrapped).startswith("OUT_OF_RANGE")
    assert not is_damage(ValueError("User-provided restore item and on-disk value metadata tree structures "
                                    "do not match"))
    step = tmp_path / "7"
    (step / "state").mkdir(parents=True)
    (step / "state" / "_METADATA").write_text('{"tree": {}}')
    mismatch = ValueError("shapes differ")
    assert damaged_files(str(step)) is None and not is_damage(mismatch, str(step))
    (step / "state" / "_METADATA").write_text('{"tree": {')  # cut short
    assert "not readable JSON" in damaged_files(str(step)) and is_damage(mismatch, str(step))
    (step / "state" / "_METADATA").write_text('{}')
    (step / "state" / "d").mkdir()
    (step / "state" / "d" / "abc").write_bytes(b"")
    assert "is empty" in damaged_files(str(step))
