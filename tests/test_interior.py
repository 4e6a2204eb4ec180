"""The mouth interior (model.interior): the warp-only generator plus painted pixels where an
occlusion mask opens, the mask held inside `interior_region`. Every pixel outside that region is
the warped still's, exactly, whatever the decoder paints; the new head starts as the warp alone;
the parts for full-resolution compositing rebuild the frame."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from s2v_jax.config_utils import load_config
from s2v_jax.models import build_model
from s2v_jax.models.generator import region_mask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = (66, 96, 34, 78)


def _models(**extra):
    base = load_config(os.path.join(REPO, "configs", "real_small_warp.py"), ["model.width=0.0625"])
    inner = load_config(os.path.join(REPO, "configs", "real_small_warp.py"),
                        ["model.width=0.0625", "model.interior=True", f"model.interior_region={REGION}"]
                        + [f"{k}={v}" for k, v in extra.items()])
    return build_model(base), build_model(inner)


def _inputs(seed=0, b=3):
    rng = np.random.default_rng(seed)
    mfcc = jnp.asarray(rng.normal(size=(b, 12, 35, 1)), jnp.float32)
    still = jnp.asarray(rng.uniform(0.05, 0.95, size=(b, 112, 112, 3)), jnp.float32)
    return mfcc, still


def _loud(params, rng, heads=("out", "occlusion", "flow"), scale=0.5):
    """The decoder's image and occlusion (and flow) heads made loud: a painted interior everywhere it may
    go (scale 0: the same change and mask at every pixel)."""
    dec = dict(params["image_decoder"])
    for name in heads:
        layer = dict(dec[name])
        layer["kernel"] = jnp.asarray(rng.normal(scale=scale, size=layer["kernel"].shape), jnp.float32)
        layer["bias"] = jnp.full(layer["bias"].shape, 2.0 if name == "occlusion" else 0.5, jnp.float32)
        dec[name] = layer
    return {**params, "image_decoder": dec}


def test_the_interior_changes_only_pixels_inside_its_region():
    warp_only, interior = _models()
    mfcc, still = _inputs()
    v = interior.init(jax.random.PRNGKey(0), mfcc, still)
    params = _loud(v["params"], np.random.default_rng(1))
    variables = {"params": params, "batch_stats": v["batch_stats"]}
    frames, flow = interior.apply(variables, method=lambda m: m.decode_with_flow(m.encode_audio(mfcc),
                                                                                  m.encode_identity(still)))
    # the same network without the occlusion head: the warp-only generator's output
    base_params = {**params, "image_decoder": {k: w for k, w in params["image_decoder"].items()
                                               if k != "occlusion"}}
    plain, plain_flow = warp_only.apply({"params": base_params, "batch_stats": v["batch_stats"]},
                                        method=lambda m: m.decode_with_flow(m.encode_audio(mfcc),
                                                                            m.encode_identity(still)))
    np.testing.assert_allclose(flow, plain_flow, atol=1e-6)
    outside = np.asarray(region_mask((112, 112), REGION))[..., 0] == 0
    diff = np.abs(np.asarray(frames) - np.asarray(plain)).max(axis=-1)  # [b, 112, 112]
    assert diff[:, outside].max() < 1e-6, diff[:, outside].max()
    assert diff[:, ~outside].max() > 0.05  # and inside it paints
    # the parts for full-resolution compositing give the same frame
    change, mask, flow2 = interior.apply(variables, method=lambda m: m.decode_interior(
        m.encode_audio(mfcc), m.encode_identity(still)))
    assert mask.shape == (3, 112, 112, 1) and float(mask[:, outside].max()) == 0.0
    np.testing.assert_allclose(flow2, flow, atol=1e-6)
    warped = np.clip(np.asarray(plain), 1e-3, 1 - 1e-3)
    painted = 1 / (1 + np.exp(-(np.asarray(change) + np.log(warped) - np.log1p(-warped))))
    np.testing.assert_allclose(warped + np.asarray(mask) * (painted - warped), frames, atol=1e-5)


def test_the_interior_head_starts_as_the_warp_alone():
    warp_only, interior = _models()
    mfcc, still = _inputs(1)
    v = interior.init(jax.random.PRNGKey(0), mfcc, still)
    out = interior.apply(v, mfcc, still)
    base = {"params": {**v["params"], "image_decoder": {k: w for k, w in v["params"]["image_decoder"].items()
                                                        if k != "occlusion"}}, "batch_stats": v["batch_stats"]}
    np.testing.assert_allclose(out, warp_only.apply(base, mfcc, still), atol=2e-3)


def test_the_interior_needs_the_warp_and_a_region():
    cfg = load_config(os.path.join(REPO, "configs", "real_small.py"), ["model.interior=True"])
    with pytest.raises(ValueError, match="model.interior"):
        build_model(cfg).init(jax.random.PRNGKey(0), *_inputs(b=1))


def test_full_resolution_compositing_paints_what_the_model_paints():
    from s2v_jax.faces.compositing import paint_interior, warp_frame

    _, interior = _models()
    mfcc, _ = _inputs(2, b=1)
    rng = np.random.default_rng(3)
    import cv2

    photo = cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3)).astype(np.uint8), (0, 0), 1.5)
    still = jnp.asarray(photo[None], jnp.float32) / 255.0
    v = interior.init(jax.random.PRNGKey(0), mfcc, still)
    variables = {"params": _loud(v["params"], rng, ("out", "occlusion"), scale=0.0), "batch_stats": v["batch_stats"]}
    run = lambda m: (m.decode_with_flow(m.encode_audio(mfcc), m.encode_identity(still))[0],  # noqa: E731
                     m.decode_interior(m.encode_audio(mfcc), m.encode_identity(still)))
    frame, (change, mask, flow) = interior.apply(variables, method=run)
    parts = np.concatenate([np.asarray(flow[0]), np.asarray(change[0]), np.asarray(mask[0])], axis=-1)
    m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # the photo is the crop
    full = warp_frame(photo, parts, m)
    want = np.asarray(frame[0]) * 255.0
    inside = np.asarray(mask[0, ..., 0]) > 0.05
    assert np.abs(full.astype(np.float32) - want)[inside].mean() < 3.0
    # the mask alone decides where painting happens: nothing changes where it is 0
    np.testing.assert_array_equal(paint_interior(photo, parts[..., 2:5], np.zeros((112, 112)), m), photo)
    big = cv2.resize(photo, (448, 448), interpolation=cv2.INTER_CUBIC)  # a 4x photo: the same painting, larger
    m4 = np.array([[0.25, 0.0, -0.375], [0.0, 0.25, -0.375]])
    full4 = warp_frame(big, parts, m4)
    small = cv2.resize(full4, (112, 112), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(np.float32) - want)[inside].mean() < 3.0


def test_identity_closed_draws_the_most_closed_mouth():
    from s2v_jax.data import input_pipeline
    from s2v_jax.faces import mouth_opening

    from fakes import lip_config as _config, lip_tracks as _tracks

    tracks = _tracks(1, 60, seed=4)
    opening = mouth_opening(tracks[0]["landmarks"])
    cfg = _config(**{"data.identity_closed": 8})
    source = input_pipeline.ArrayTrackSamples(tracks, stride=5, min_distance=12)
    closed = input_pipeline.make_sample(cfg, augment=False, debug=True)
    plain = input_pipeline.make_sample(_config(), augment=False, debug=True)
    picked, drawn = [], []
    for i in range(len(source)):
        picked.append(opening[int(closed.random_map(source[i], np.random.default_rng(i))["identity_frames"][0])])
        drawn.append(opening[int(plain.random_map(source[i], np.random.default_rng(i))["identity_frames"][0])])
    assert np.mean(picked) < np.mean(drawn) - 0.5 * np.std(opening), (np.mean(picked), np.mean(drawn))
    # the most closed of the drawn frames, never one within min_distance of the target
    out = closed.random_map(source[3], np.random.default_rng(0))
    assert abs(int(out["identity_frames"][0]) - int(out["target_frame"])) >= 12
    # data.identity_closed_prob: that fraction of samples takes the closed still, the rest the plain draw
    half = input_pipeline.make_sample(_config(**{"data.identity_closed": 8, "data.identity_closed_prob": 0.5}),
                                       augment=False, debug=True)
    same_plain, picks = 0, []
    for i in range(len(source)):
        for k in range(4):
            f = [int(m.random_map(source[i], np.random.default_rng(100 * i + k))["identity_frames"][0])
                 for m in (half, plain)]
            same_plain += f[0] == f[1]
            picks.append(opening[f[0]])
    n = 4 * len(source)
    assert 0.25 * n < same_plain < 0.85 * n, (same_plain, n)  # the plain draw on about half (and by chance)
    assert np.mean(picked) < np.mean(picks) < np.mean(drawn), (np.mean(picked), np.mean(picks), np.mean(drawn))
