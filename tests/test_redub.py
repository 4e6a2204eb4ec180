"""Re-dubbing: the length policy (ping-pong extension, truncation), identity
frame selection, composited frames equal to the source above the eyes and on
frames without a face (checked on the in-memory frames before encoding), the
`s2v redub` command end to end, and clear errors; with the real data, an LRS2
clip re-dubbed with 48 kHz stereo speech and the truncated mp4 edge case.
"""

import re

import ckpt_fixture
import numpy as np
import pytest

from s2v_jax import cli
from s2v_jax.errors import MediaError, NoFaceError, S2VError
from s2v_jax.faces import registration
from s2v_jax.inference.redub import (
    fit_audio,
    iter_source_frames,
    output_length,
    redub_frames,
    source_indices,
    track_video,
)
from s2v_jax.media import audio, video
from s2v_jax.media.speech import load_speech


@pytest.fixture
def cached(monkeypatch):
    """Load each checkpoint once across CLI calls (for tests about inputs, not loading)."""
    ckpt_fixture.cache_loading(monkeypatch)


@pytest.fixture(scope="module")
def talk_faces(media):
    return track_video(media["talk"], num_identity_images=1)


@pytest.fixture(scope="module")
def source(media):
    return video.read_frames(media["talk"])


# ---------------------------------------------------------------- length policy

def test_ping_pong_and_length_policies():
    np.testing.assert_array_equal(source_indices(np.arange(12), 4), [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(source_indices(np.arange(3), 1), [0, 0, 0])
    np.testing.assert_array_equal(source_indices(np.arange(5), 10), np.arange(5))
    assert output_length(100, 60, "audio") == 60 and output_length(100, 160, "audio") == 160
    assert output_length(100, 160, "video") == 100 and output_length(100, 160, "shortest") == 100
    with pytest.raises(S2VError, match="length must be"):
        output_length(1, 1, "longest")
    wav = np.ones(16000, np.float32)  # 25 frames
    assert len(fit_audio(wav, 25)) == 16000
    assert len(fit_audio(wav, 10)) == 6400
    padded = fit_audio(wav, 30)
    assert len(padded) == 19200 and not padded[16000:].any()


def test_source_frames_ping_pong_from_disk(media, source):
    n = len(source)
    got = list(iter_source_frames(media["talk"], n, 2 * n + 5))
    assert [s for s, _ in got] == list(source_indices(np.arange(2 * n + 5), n))
    for s, frame in got[::7]:
        np.testing.assert_array_equal(frame, source[s])
    short = list(iter_source_frames(media["talk"], n, 10))
    assert [s for s, _ in short] == list(range(10))


# ---------------------------------------------------------------- tracking and identity

def test_tracking_owner_and_identity_frames(talk_faces, source):
    f = talk_faces
    assert f.num_frames == len(source) == 38
    assert (f.owner[:30] >= 0).mean() > 0.9  # the talking face
    assert (f.owner[30:] == -1).all()  # the black frames
    assert len(f.tracks) == 1
    tr = next(iter(f.tracks.values()))
    assert tr.identity_crops.shape == (1, 112, 112, 3) and len(tr.identity_frames) == 1
    assert tr.start <= tr.identity_frames[0] < tr.end


def test_five_identity_frames_are_spread(media):
    f = track_video(media["talk"], num_identity_images=5)
    tr = next(iter(f.tracks.values()))
    assert tr.identity_crops.shape == (5, 112, 112, 3)
    frames = tr.identity_frames
    assert frames == sorted(frames) and len(set(frames)) == 5
    assert frames[-1] - frames[0] >= (tr.end - tr.start) // 2


# ---------------------------------------------------------------- compositing

def upper_and_outside(m, shape):
    """bool [H, W]: pixels whose crop position is above the re-dub mask (with a
    2 px margin) or off the crop: what re-dubbing must leave unchanged."""
    import cv2
    keep = (registration.lower_face_mask() == 0).astype(np.uint8)
    keep = cv2.erode(keep, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)
    inv = registration.invert_similarity(m)
    return cv2.warpAffine(keep, inv, (shape[1], shape[0]), flags=cv2.INTER_NEAREST, borderValue=1) > 0


def test_redubbed_frames_keep_source_above_the_eyes(ckpts, media, talk_faces, source):
    gen = ckpt_fixture.generator(ckpts)
    wav = load_speech(media["long_speech"])  # 2.5 s = 63 frames > 38 source frames: ping-pong
    frames = list(redub_frames(gen, talk_faces, wav))
    assert len(frames) == audio.num_video_frames(len(wav)) == 63
    src = source_indices(np.arange(63), len(source))
    changed = owned = 0
    for o, frame in enumerate(frames):
        s = src[o]
        ref = source[s]
        if talk_faces.owner[s] < 0:
            np.testing.assert_array_equal(frame, ref)  # no face: passes through
            continue
        m = talk_faces.transforms[s]
        keep = upper_and_outside(m, ref.shape)
        np.testing.assert_array_equal(frame[keep], ref[keep])
        eyes = registration.transform_points(registration.invert_similarity(m), np.array([[56.0, 36.0]]))[0]
        assert keep[int(eyes[1]), int(eyes[0])]  # the eyes are in the kept region
        changed += (frame != ref).any()
        owned += 1
    assert owned >= 40 and changed == owned


def test_length_video_and_shortest(ckpts, media, talk_faces):
    gen = ckpt_fixture.generator(ckpts)
    wav = load_speech(media["speech"])  # 31 frames < 38
    assert len(list(redub_frames(gen, talk_faces, wav, length="video"))) == 38
    assert len(list(redub_frames(gen, talk_faces, wav, length="shortest"))) == 31


# ---------------------------------------------------------------- command and errors

def redub(ckpt, video_path, speech, out, *extra):
    return cli.main(["redub", "--checkpoint", ckpt, "--video", str(video_path), "--audio", str(speech),
                     "--out", str(out), "--no-progress", "--batch-size", "16", "--preset", "veryfast", *extra])


def test_redub_command(ckpts, media, tmp_path, capsys):
    out = tmp_path / "r.mp4"
    assert redub(ckpts["v201"], media["talk"], media["speech"], out) == 0
    info = video.probe(out)
    assert info.has_audio and (info.width, info.height) == (192, 192)
    assert len(video.read_frames(out)) == 31
    assert abs(len(audio.load_audio(out)) / 16000 - 31 / 25) <= 1 / 25
    out2 = tmp_path / "r2.mp4"
    assert redub(ckpts["gen"], media["talk"], media["speech"], out2, "--length", "video") == 0
    assert len(video.read_frames(out2)) == 38
    assert abs(len(audio.load_audio(out2)) / 16000 - 38 / 25) <= 1 / 25


@pytest.mark.parametrize("case,pattern", [
    ("noface_video", "no face found in any of the 20 frames"),
    ("silent", "is silent"),
    ("empty", "is empty"),
    ("face_index", "face index 1 out of range"),
])
def test_redub_errors(ckpts, media, tmp_path, capsys, cached, case, pattern):
    vid, speech, extra = media["talk"], media["speech"], []
    if case == "noface_video":
        vid = media["noface_video"]
    elif case in ("silent", "empty"):
        speech = media[case]
    elif case == "face_index":
        extra = ["--face-index", "1"]
    out = tmp_path / "o.mp4"
    assert redub(ckpts["gen"], vid, speech, out, *extra) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("s2v redub: error:") and re.search(pattern, last), last
    assert not out.exists()


def test_truncated_video_gives_video_or_clear_error(ckpts, media, tmp_path, capsys, cached):
    out = tmp_path / "t.mp4"
    rc = redub(ckpts["gen"], media["truncated"], media["speech"], out)
    err = capsys.readouterr().err.strip().splitlines()
    if rc == 0:
        assert len(video.read_frames(out)) == 31
    else:
        assert rc == 2 and err[-1].startswith("s2v redub: error:"), err


def test_library_errors(media):
    with pytest.raises(NoFaceError):
        track_video(media["noface_video"])
    with pytest.raises(MediaError):
        track_video(media["empty"])


# ---------------------------------------------------------------- real data

@pytest.mark.shared_data
def test_real_clip_with_48k_stereo_speech(ckpts, real_data, tmp_path, cached):
    clip = real_data / "corpus" / "lrs2" / "6046013437125640989" / "00001.mp4"
    speech = real_data / "audio" / "zh_news_8s_48k_stereo.wav"
    out = tmp_path / "real.mp4"
    assert redub(ckpts["gen"], clip, speech, out) == 0
    n = audio.num_video_frames(len(audio.load_audio(speech)))
    assert len(video.read_frames(out)) == n and video.probe(out).has_audio


@pytest.mark.shared_data
@pytest.mark.parametrize("name,pattern", [
    ("truncated.mp4", "moov atom not found"),
    ("no_face_coffee.png", None),
])
def test_real_edge_case_videos(ckpts, real_data, tmp_path, capsys, cached, name, pattern):
    out = tmp_path / "e.mp4"
    rc = redub(ckpts["gen"], real_data / "edge_cases" / name, real_data / "edge_cases" / "short_speech.mp3", out)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and last.startswith("s2v redub: error:"), last
    if pattern:
        assert re.search(pattern, last), last


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_no_audio_track_video_as_source(ckpts, real_data, tmp_path, capsys, cached):
    """An anime clip without sound: its drawn face may not be trackable (a clear error) or it is re-dubbed."""
    out = tmp_path / "anime.mp4"
    rc = redub(ckpts["gen"], real_data / "edge_cases" / "no_audio_track_anime.mp4",
               real_data / "edge_cases" / "short_speech.mp3", out)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0 or (rc == 2 and err[-1].startswith("s2v redub: error:")), err
