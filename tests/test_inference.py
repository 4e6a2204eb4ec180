"""Inference API: chunked MFCC windows, checkpoint loading and its errors,
still registration policy, frames pasted back into the photo (checked on the
in-memory frames, before any video encoding), the v201 and deblurring paths,
batch-size invariance, the phase-decomposed transposed convs (equal to
lax.conv_transpose), and streaming (frames equal offline; latency arithmetic). Uses tiny checkpoints trained in the session (tests/ckpt_fixture.py).
"""

import ckpt_fixture
import numpy as np
import pytest

from s2v_jax.errors import MediaError, NoFaceError, S2VError
from s2v_jax.faces import registration
from s2v_jax.faces.compositing import face_mask, paste_face
from s2v_jax.inference.generate import still_frames
from s2v_jax.inference.stills import register_stills
from s2v_jax.inference.streaming import StreamingSession
from s2v_jax.media import audio
from s2v_jax.media.speech import iter_audio_windows, load_speech


@pytest.fixture(scope="module")
def stills(media):
    return register_stills([media["photo"]], 1)


def outside_region(m, shape, pad=3):
    """bool [H, W]: pixels farther than `pad` px from the warped 112 crop (where nothing may change)."""
    import cv2
    inv = registration.invert_similarity(m)
    cover = cv2.warpAffine(np.ones((112, 112), np.uint8), inv, (shape[1], shape[0]), flags=cv2.INTER_NEAREST)
    return cv2.dilate(cover, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) == 0


# ---------------------------------------------------------------- audio windows

@pytest.mark.parametrize("num_frames,chunk", [(None, 7), (None, 1024), (80, 16)])
def test_chunked_windows_equal_whole_clip_windows(num_frames, chunk):
    rng = np.random.default_rng(0)
    wav = (rng.normal(size=int(1.37 * 16000)) * 0.1).astype(np.float32)
    whole = audio.audio_windows(wav, num_frames)
    chunks = list(iter_audio_windows(wav, num_frames, chunk))
    assert all(len(c) <= chunk for c in chunks)
    got = np.concatenate(chunks)
    assert got.shape == whole.shape
    np.testing.assert_allclose(got, whole, atol=1e-4)
    if num_frames:  # frames past the audio's end see silence
        assert not got[-5:].any()


def test_load_speech_errors(media):
    with pytest.raises(MediaError, match="silent"):
        load_speech(media["silent"])
    with pytest.raises(MediaError, match="empty"):
        load_speech(media["empty"])
    with pytest.raises(MediaError, match="does not exist"):
        load_speech(media["empty"] + ".missing")


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_errors(ckpts, tmp_path):
    from s2v_jax.inference.generator import FrameGenerator

    with pytest.raises(S2VError, match="does not exist"):
        FrameGenerator.from_checkpoint(str(tmp_path / "nope"))
    with pytest.raises(S2VError, match="no checkpoint found"):
        FrameGenerator.from_checkpoint(str(tmp_path))
    with pytest.raises(S2VError, match="'deblur' model, not the generator"):
        FrameGenerator.from_checkpoint(ckpts["deblur"])
    with pytest.raises(S2VError, match="not the deblurring net"):
        FrameGenerator.from_checkpoint(ckpts["gen"], deblur_checkpoint=ckpts["gen"])


# ---------------------------------------------------------------- stills

def test_still_count_policy(media):
    one = register_stills([media["photo"]], 5)
    assert one.crops.shape == (5, 112, 112, 3) and any("repeated 5 times" in w for w in one.warnings)
    np.testing.assert_array_equal(one.crops[0], one.crops[4])
    five = register_stills([media["photo"]] * 5, 5)
    assert five.crops.shape == (5, 112, 112, 3) and len(five.faces) == 5 and not five.warnings
    with pytest.raises(S2VError, match="takes 1 identity image"):
        register_stills([media["photo"]] * 5, 1)
    with pytest.raises(S2VError, match="takes 5 identity image"):
        register_stills([media["photo"]] * 2, 5)
    with pytest.raises(NoFaceError, match="noface.png"):
        register_stills([media["noface"]], 1)


def test_pasted_frames_keep_the_photo_outside_the_face(ckpts, media, stills):
    gen = ckpt_fixture.generator(ckpts)
    wav = load_speech(media["speech"])
    frames = list(still_frames(gen, stills, wav))
    assert len(frames) == audio.num_video_frames(len(wav)) == 31  # 1.23 s -> round(30.75)
    photo = stills.photo
    outside = outside_region(stills.faces[0].M, photo.shape)
    assert outside.mean() > 0.3
    for f in frames[::10]:
        assert f.shape == photo.shape and f.dtype == np.uint8
        np.testing.assert_array_equal(f[outside], photo[outside])
        assert (f != photo).any()  # the face was replaced
    bare = list(still_frames(gen, stills, wav, paste_back=False))
    assert len(bare) == 31 and bare[0].shape == (112, 112, 3)


def test_batch_size_does_not_change_frames(ckpts, media, stills):
    wav = load_speech(media["speech"])
    a = np.stack(list(still_frames(ckpt_fixture.generator(ckpts, batch_size=16), stills, wav, paste_back=False)))
    b = np.stack(list(still_frames(ckpt_fixture.generator(ckpts, batch_size=8), stills, wav, paste_back=False)))
    assert np.abs(a.astype(int) - b).max() <= 1


def test_v201_and_deblur(ckpts, media, stills):
    wav = load_speech(media["speech"])
    v201 = ckpt_fixture.generator(ckpts, "v201")
    assert v201.output_size == 109 and v201.num_identity_images == 5
    five = register_stills([media["photo"]], 5)
    bare = list(still_frames(v201, five, wav, paste_back=False))
    assert len(bare) == 31 and bare[0].shape == (109, 109, 3)
    pasted = next(iter(still_frames(v201, five, wav)))
    outside = outside_region(five.faces[0].M, five.photo.shape)
    np.testing.assert_array_equal(pasted[outside], five.photo[outside])
    plain = np.stack(list(still_frames(ckpt_fixture.generator(ckpts), stills, wav, paste_back=False)))
    deblurred = np.stack(list(still_frames(ckpt_fixture.generator(ckpts, deblur=True), stills, wav,
                                           paste_back=False)))
    assert deblurred.shape == plain.shape and (deblurred != plain).any()


def test_paste_face_touches_only_the_mask():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    face = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    for scale, kind in ((1.2, "face"), (2.5, "lower"), (0.6, "face")):  # 2.5 > max_scale: downscaled blend
        m = np.array([[1 / scale, 0, -150 / scale], [0, 1 / scale, -60 / scale]])
        out = paste_face(image, face, m, face_mask(kind))
        outside = outside_region(m, image.shape)
        np.testing.assert_array_equal(out[outside], image[outside])
        assert (out != image).any()
    with pytest.raises(S2VError):
        face_mask("eyes")


# ---------------------------------------------------------------- fast transposed convs

@pytest.mark.parametrize("n,k,s,padding", [(53, 8, 2, "VALID"), (12, 4, 2, "VALID"), (26, 3, 2, "VALID"),
                                           (6, 4, 2, "SAME"), (7, 5, 3, "SAME"), (1, 6, 1, "VALID")])
def test_phase_conv_transpose_equals_lax(n, k, s, padding):
    import jax.numpy as jnp
    from jax import lax

    from s2v_jax.models.conv_transpose import phase_conv_transpose

    rng = np.random.default_rng(n * k)
    x = jnp.asarray(rng.normal(size=(2, n, n + 1, 3)).astype(np.float32))
    kernel = jnp.asarray(rng.normal(size=(k, k, 3, 4)).astype(np.float32))
    ref = lax.conv_transpose(x, kernel, (s, s), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    got = phase_conv_transpose(x, kernel, (s, s), padding)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_phase_conv_transpose_frames_equal_lax(ckpts, media, stills):
    from s2v_jax.inference.generator import FrameGenerator

    from s2v_jax.models.conv_transpose import PhaseConvTranspose

    gen = ckpt_fixture.generator(ckpts)
    assert gen.model.conv_transpose is PhaseConvTranspose  # model.conv_transpose='auto' on CPU
    plain = FrameGenerator(gen.config, gen.variables, batch_size=16, conv_transpose="lax")
    assert plain.model.conv_transpose is not PhaseConvTranspose
    windows = audio.audio_windows(load_speech(media["speech"]))[:16]
    a = gen.generate(windows, gen.encode_identity(stills.crops))
    b = plain.generate(windows, plain.encode_identity(stills.crops))
    assert np.abs(a.astype(int) - b).max() <= 1


# ---------------------------------------------------------------- streaming

def test_streaming_equals_offline_and_latency(ckpts, media, stills):
    gen = ckpt_fixture.generator(ckpts)
    wav = load_speech(media["speech"])
    ident = gen.encode_identity(stills.crops)
    offline = gen.generate(audio.audio_windows(wav), ident)
    session = StreamingSession(gen, ident)
    got, fed = [], 0
    for chunk in np.array_split(wav, np.arange(640, len(wav), 640)):  # 40 ms chunks
        got.append(session.feed(chunk))
        fed += len(chunk)
        emitted = sum(len(g) for g in got)
        # Frame k needs k/25 s + 0.1825 s (+1 sample) of audio: the 0.35 s window's
        # last step is 0.17 s after the frame, its 25 ms analysis window half 12.5 ms more.
        expect = 0 if fed < 2921 else min((fed - 2921) // 640 + 1, audio.num_video_frames(fed))
        assert emitted == expect, (fed, emitted, expect)
    got.append(session.flush())
    streamed = np.concatenate(got)
    assert streamed.shape == offline.shape
    np.testing.assert_array_equal(streamed, offline)
