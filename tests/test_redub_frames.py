"""Re-dubbing with a warp-only generator: each frame is its own still and its own pixels are moved at
full resolution (`compositing.warp_frame`, `FrameGenerator.flows`, `redub_frames(identity='frame')`)."""

import os

import ckpt_fixture
import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from s2v_jax.config_utils import load_config
from s2v_jax.errors import S2VError
from s2v_jax.faces import registration
from s2v_jax.faces.compositing import warp_frame
from s2v_jax.inference.generator import FrameGenerator
from s2v_jax.inference.redub import identity_mode, redub_frames, redub_video, source_indices, track_video
from s2v_jax.media import audio, video
from s2v_jax.media.speech import load_speech
from s2v_jax.models import build_model
from s2v_jax.models.generator import Speech2Vid, warp_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smooth_image(h=300, w=400, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), (0, 0), 3).astype(np.float32)
    return np.clip(img * 3 - 250, 0, 255).astype(np.uint8)


def _similarity(scale=0.5, degrees=10.0, tx=-40.0, ty=-20.0):
    th = np.deg2rad(degrees)
    return np.array([[scale * np.cos(th), -scale * np.sin(th), tx], [scale * np.sin(th), scale * np.cos(th), ty]])


def test_warp_frame_moves_the_frames_own_pixels_as_the_crop_flow_says():
    img, m = _smooth_image(), _similarity()
    assert np.array_equal(warp_frame(img, np.zeros((112, 112, 2), np.float32), m), img)
    yy, xx = np.mgrid[0:112, 0:112]
    bump = np.exp(-((yy - 80) ** 2 + (xx - 56) ** 2) / (2 * 8.0 ** 2))
    flow = np.stack([3 * bump, -2 * bump], -1).astype(np.float32)  # (dy, dx) in crop px
    flow[np.abs(flow).max(-1) < 1e-2] = 0
    out = warp_frame(img, flow, m)
    crop = cv2.warpAffine(img, m, (112, 112), flags=cv2.INTER_LINEAR)
    moved = np.asarray(warp_image(jnp.asarray(crop[None], jnp.float32), jnp.asarray(flow[None])))[0]
    got = cv2.warpAffine(out, m, (112, 112), flags=cv2.INTER_LINEAR).astype(np.float32)
    inner = (slice(62, 98), slice(38, 74))
    err, before = np.abs(got[inner] - moved[inner]).mean(), np.abs(crop[inner] - moved[inner]).mean()
    assert err < 1.5 and before > 4 * err, (err, before)  # the same motion as the crop-space warp
    # pixels whose crop position the flow does not reach are the image's own, exactly
    reach = cv2.warpAffine((np.abs(flow).max(-1) > 0).astype(np.uint8), registration.invert_similarity(m),
                           (img.shape[1], img.shape[0]), flags=cv2.INTER_NEAREST)
    reach = cv2.dilate(reach, np.ones((5, 5), np.uint8)) > 0
    assert np.array_equal(out[~reach], img[~reach]) and (out[reach] != img[reach]).any()


@pytest.fixture(scope="module")
def warp_generator():
    """A warp-only generator (configs/real_small_warp.py) whose flow head pushes pixels down."""
    cfg = load_config(os.path.join(REPO, "configs/real_small_warp.py"), [])
    model = build_model(cfg)
    mfcc, still = jnp.zeros((1, 12, 35, 1)), jnp.zeros((1, 112, 112, 3))
    v = jax.device_get(model.init(jax.random.PRNGKey(0), mfcc, still))
    v["params"]["image_decoder"]["flow"]["bias"] = np.asarray([3.0, 0.0], np.float32)
    return FrameGenerator(cfg, v, batch_size=8)


def test_flows_are_the_models_and_need_a_warp_model(warp_generator, ckpts):
    gen = warp_generator
    rng = np.random.default_rng(2)
    windows = rng.normal(size=(10, 12, 35)).astype(np.float32)
    stills = rng.integers(0, 255, (10, 112, 112, 3)).astype(np.uint8)
    flows = gen.flows(windows, stills)  # 10 = a batch of 8 and one padded
    assert flows.shape == (10, 112, 112, 2) and flows.dtype == np.float32
    model, v = gen.model, gen.variables
    ident = model.apply(v, jnp.asarray(stills[7:9], jnp.float32) / 255, method=Speech2Vid.encode_identity)
    want = model.apply(v, model.apply(v, jnp.asarray(windows[7:9, ..., None]), method=Speech2Vid.encode_audio),
                       ident, method=Speech2Vid.decode_with_flow)[1]
    np.testing.assert_allclose(flows[7:9], np.asarray(want), atol=1e-4)
    top = gen.config.model.residual_region[0]
    assert flows[:, top + 10:top + 30, 40:70, 0].min() > 1.0 and np.abs(flows[:, :top - 4]).max() == 0
    with pytest.raises(S2VError, match="one registered 112x112 still per window"):
        gen.flows(windows, stills[:3])
    painter = ckpt_fixture.generator(ckpts)
    with pytest.raises(S2VError, match="predicts no flow"):
        painter.flows(windows, stills)
    assert gen.warps_only and not painter.warps_only
    assert identity_mode(gen) == "frame" and identity_mode(painter) == "track"
    with pytest.raises(S2VError, match="needs a warp-only generator"):
        identity_mode(painter, "frame")
    with pytest.raises(S2VError, match="identity must be one of"):
        identity_mode(gen, "still")


def test_frame_mode_redub_moves_each_frames_own_lips_and_nothing_else(warp_generator, media):
    faces = track_video(media["talk"], num_identity_images=1)
    source = video.read_frames(media["talk"])
    wav = load_speech(media["long_speech"])
    frames = list(redub_frames(warp_generator, faces, wav, identity="frame"))
    n = audio.num_video_frames(len(wav))
    assert len(frames) == n
    src = source_indices(np.arange(n), len(source))
    owned = changed = 0
    for o, frame in enumerate(frames):
        s = src[o]
        ref = source[s]
        if faces.owner[s] < 0:
            np.testing.assert_array_equal(frame, ref)
            continue
        owned += 1
        m = faces.transforms[s]
        # only pixels whose crop position lies in the flow's region (the lower face) may change
        top, bottom, left, right = warp_generator.config.model.residual_region
        region = np.zeros((112, 112), np.uint8)
        region[top - 14:bottom + 14, left - 14:right + 14] = 1
        inside = cv2.warpAffine(region, registration.invert_similarity(m), (ref.shape[1], ref.shape[0]),
                                flags=cv2.INTER_NEAREST) > 0
        np.testing.assert_array_equal(frame[~inside], ref[~inside])
        changed += (frame[inside] != ref[inside]).any()
    assert owned >= 40 and changed == owned


def test_frame_mode_and_a_deblur_net(warp_generator, media, tmp_path):
    gen = FrameGenerator(warp_generator.config, warp_generator.variables, batch_size=8)
    gen.deblur = object()  # a deblurring net is attached
    with pytest.raises(S2VError, match="drop --deblur"):
        redub_video(gen, media["talk"], media["long_speech"], str(tmp_path / "out.mp4"), progress=False,
                    identity="frame")
    assert not os.path.exists(tmp_path / "out.mp4")
    assert identity_mode(gen) == "track"  # auto: the deblurring net asks for painted, pasted faces


def test_generate_with_a_warp_only_model_moves_the_photos_own_pixels(warp_generator, media):
    from s2v_jax.inference.generate import still_frames
    from s2v_jax.inference.stills import register_stills

    stills = register_stills([media["photo"]], 1, None)
    wav = load_speech(media["speech"])
    frames = list(still_frames(warp_generator, stills, wav))
    photo, m = stills.photo, stills.faces[0].M
    assert len(frames) == audio.num_video_frames(len(wav)) and frames[0].shape == photo.shape
    ident = warp_generator.encode_identity(stills.crops)
    first = next(warp_generator.flow_batches(np.asarray(audio_windows(wav))[:1], ident))[0]
    np.testing.assert_array_equal(frames[0], warp_frame(photo, first, m))  # the photo warped at full size
    top = warp_generator.config.model.residual_region[0]
    above = cv2.warpAffine(np.pad(np.ones((top - 4, 112), np.uint8), ((0, 116 - top), (0, 0))),
                           registration.invert_similarity(m), (photo.shape[1], photo.shape[0]),
                           flags=cv2.INTER_NEAREST) > 0
    for f in frames:
        np.testing.assert_array_equal(f[above], photo[above])  # eyes and forehead are the photo's pixels
        assert (f != photo).any()
    bare = next(still_frames(warp_generator, stills, wav, paste_back=False))
    assert bare.shape == (112, 112, 3)  # the bare face is still the model's crop


def audio_windows(wav):
    from s2v_jax.media.speech import iter_audio_windows

    return np.concatenate(list(iter_audio_windows(wav, audio.num_video_frames(len(wav)), 64)))


def test_streaming_flows_equal_offline(warp_generator, media):
    from s2v_jax.inference.streaming import StreamingSession

    wav = load_speech(media["speech"])
    ident = warp_generator.encode_identity(np.zeros((112, 112, 3), np.uint8) + 128)
    offline = np.concatenate(list(warp_generator.flow_batches(audio_windows(wav), ident)))
    session = StreamingSession(warp_generator, ident, flows=True)
    got = [session.feed(wav[i:i + 3000]) for i in range(0, len(wav), 3000)] + [session.flush()]
    assert all(g.shape[1:] == (112, 112, 2) for g in got)
    np.testing.assert_allclose(np.concatenate(got), offline, atol=1e-5)
