"""The lip warp (configs/real_small_warp.py): the warp and point sampling, the
flow head starting at the first stage's output exactly, the lip landmarks of
a sample (mirrored with the images), the lip-warp distance and loss, and
`train.init_from`."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from s2v_jax.config_utils import load_config
from s2v_jax.data import input_pipeline
from s2v_jax.errors import ConfigError, DataError, TrainingError
from s2v_jax.evaluation import metrics
from s2v_jax.models import build_model
from s2v_jax.models.generator import Speech2Vid, sample_points, warp_image
from s2v_jax.train import state as state_lib
from s2v_jax.train.init_from import overlay_variables
from s2v_jax.train.tasks import get_task
from s2v_jax.train.tasks.lips import lip_distances
from fakes import lip_config, lip_tracks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _batch(cfg, tracks, augment=False):
    source = input_pipeline.ArrayTrackSamples(tracks, stride=5, min_distance=12)
    make = input_pipeline.make_sample(cfg, augment=augment, debug=True)
    rows = [make.random_map(source[i], np.random.default_rng(i)) for i in range(4)]
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def test_warp_moves_content_by_the_flow_and_points_sample_where_landmarks_sit():
    rng = np.random.default_rng(0)
    img = jnp.asarray(rng.uniform(size=(2, 16, 16, 3)), jnp.float32)
    np.testing.assert_allclose(warp_image(img, jnp.zeros((2, 16, 16, 2))), img, atol=1e-6)
    flow = jnp.zeros((2, 16, 16, 2)).at[..., 0].set(2.0).at[..., 1].set(-1.0)  # out[y, x] = img[y + 2, x - 1]
    out = np.asarray(warp_image(img, flow))
    np.testing.assert_allclose(out[:, :14, 1:], np.asarray(img)[:, 2:, :15], atol=1e-6)
    half = np.asarray(warp_image(img, jnp.full((2, 16, 16, 2), 0.5)))  # bilinear: the mean of 4 pixels
    np.testing.assert_allclose(half[:, 3, 4], np.asarray(img)[:, 3:5, 4:6].mean(axis=(1, 2)), atol=1e-6)
    grid = jnp.arange(256, dtype=jnp.float32).reshape(1, 16, 16, 1)
    pts = jnp.asarray([[[4.5, 7.5], [4.0, 7.5], [0.1, 0.1]]])  # (x, y): the centre of pixel (7, 4), between 3 and 4, edge
    np.testing.assert_allclose(np.asarray(sample_points(grid, pts))[0, :, 0], [7 * 16 + 4, 7 * 16 + 3.5, 0], atol=1e-5)


def test_the_flow_head_starts_at_zero_so_the_warp_model_reproduces_the_first_stage():
    plain_cfg, warp_cfg = lip_config("real_small.py"), lip_config(**{"model.warp_only": False})
    plain, warped = build_model(plain_cfg), build_model(warp_cfg)
    rng = np.random.default_rng(1)
    mfcc = jnp.asarray(rng.normal(size=(2, 12, 35, 1)), jnp.float32)
    still = jnp.asarray(rng.uniform(0.05, 0.95, size=(2, 112, 112, 3)), jnp.float32)
    v_plain = jax.tree_util.tree_map(lambda x: x + 0.03, plain.init(jax.random.PRNGKey(0), mfcc, still))
    v_warp = warped.init(jax.random.PRNGKey(1), mfcc, still)
    merged = overlay_like(v_warp, v_plain)
    np.testing.assert_allclose(warped.apply(merged, mfcc, still), plain.apply(v_plain, mfcc, still), atol=1e-6)
    # a non-zero flow head moves pixels, only inside the lower-face region
    merged["params"]["image_decoder"]["flow"]["bias"] = jnp.asarray([3.0, 0.0])
    frames, flow = warped.apply(merged, plain.apply(v_plain, mfcc, method=Speech2Vid.encode_audio),
                                warped.apply(merged, still, method=Speech2Vid.encode_identity),
                                method=Speech2Vid.decode_with_flow)
    top, bottom, left, right = warp_cfg.model.residual_region
    flow = np.asarray(flow)
    assert 2.5 < flow[:, (top + bottom) // 2, (left + right) // 2, 0].min() <= warp_cfg.model.warp
    assert np.abs(flow[:, :top - 4]).max() == 0 and np.abs(flow[:, :, right + 4:]).max() == 0


def overlay_like(fresh, source):
    """fresh's variables with every leaf that `source` has at the same path and shape."""
    from flax import traverse_util

    out = {}
    for col, tree in fresh.items():
        flat, src = traverse_util.flatten_dict(tree), traverse_util.flatten_dict(source.get(col, {}))
        out[col] = traverse_util.unflatten_dict({k: src.get(k, v) if np.shape(src.get(k, v)) == np.shape(v) else v
                                                 for k, v in flat.items()})
    return out


def test_samples_carry_the_lip_landmarks_mirrored_with_the_images():
    cfg = lip_config()
    tracks = lip_tracks()
    plain = _batch(cfg, tracks)
    lips = list(metrics.MOUTH_POINTS)
    for b in range(4):
        rec, t, ident = int(plain["record"][b]), int(plain["target_frame"][b]), int(plain["identity_frames"][b][0])
        lm = tracks[rec]["landmarks"]
        np.testing.assert_allclose(plain["identity_lips"][b], lm[ident][lips])
        np.testing.assert_allclose(plain["target_lips"][b, 2], lm[t][lips])
        np.testing.assert_allclose(plain["target_iod"][b], 37.0, rtol=1e-5)
    aug = _batch(cfg, tracks, augment=True)  # the same identity draws, then a jitter and maybe a mirror
    seen = set()
    for b in range(4):
        a, p = aug["target"][b, 2].astype(float).ravel(), plain["target"][b, 2].astype(float)
        image_flipped = np.corrcoef(a, p[:, ::-1].ravel())[0, 1] > np.corrcoef(a, p.ravel())[0, 1]
        want = 112 - plain["target_lips"][b][..., 0] if image_flipped else plain["target_lips"][b][..., 0]
        np.testing.assert_allclose(aug["target_lips"][b][..., 0], want, atol=1e-4)
        want = 112 - plain["identity_lips"][b][..., 0] if image_flipped else plain["identity_lips"][b][..., 0]
        np.testing.assert_allclose(aug["identity_lips"][b][..., 0], want, atol=1e-4)
        np.testing.assert_allclose(aug["target_lips"][b][..., 1], plain["target_lips"][b][..., 1])
        seen.add(bool(image_flipped))
    assert seen == {True, False}  # seeds 0-3 mirror some samples, not all
    with pytest.raises(DataError, match="landmarks"):
        _batch(cfg, [{k: v for k, v in t.items() if k != "landmarks"} for t in tracks])


def test_lip_distance_is_zero_when_the_flow_carries_the_still_lips_onto_the_real_ones():
    rng = np.random.default_rng(2)
    real = rng.uniform(40, 80, size=(2, 5, 40, 2)).astype(np.float32)
    shift = np.asarray([1.5, -2.0], np.float32)  # (dx, dy): the still's lips sit here relative to the real ones
    batch = {"target_lips": real, "identity_lips": real[:, 0] + shift, "target_iod": np.full((2, 5), 40.0, np.float32)}
    same = {**batch, "target_lips": np.repeat(real[:, :1], 5, axis=1)}  # every frame's real lips = the first's
    flow = jnp.zeros((2, 5, 112, 112, 2)).at[..., 0].set(shift[1]).at[..., 1].set(shift[0])
    model, static = lip_distances(flow, same)
    np.testing.assert_allclose(model, 0.0, atol=1e-4)
    np.testing.assert_allclose(static, np.linalg.norm(shift) / 40.0, rtol=1e-5)
    model0, static0 = lip_distances(jnp.zeros_like(flow), batch)
    np.testing.assert_allclose(model0, static0, rtol=1e-5)  # no flow: the still's own LMD


def test_lip_distance_measures_where_the_warp_really_puts_the_still_lips():
    """A non-uniform flow (a squeeze around the mouth plus a shift): the still's lip point must be
    scored where warp_image shows it (a small blob's centroid), not where the flow sampled at the
    real point says (the old measure, which a steep flow could lower without moving the lips)."""
    s = 112
    yy, xx = np.meshgrid(np.arange(s) + 0.5, np.arange(s) + 0.5, indexing="ij")
    g = np.exp(-((xx - 56) ** 2 + (yy - 70) ** 2) / (2 * 15.0 ** 2))
    flow = np.stack([0.4 * (yy - 70) * g + 1.0, 0.4 * (xx - 56) * g - 2.0], axis=-1).astype(np.float32)
    still = np.asarray([[50.0, 66.0], [62.0, 74.0], [56.0, 80.0]], np.float32)  # (x, y)
    shown = []
    for x, y in still:
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 2.0)[None, ..., None].astype(np.float32)
        out = np.asarray(warp_image(jnp.asarray(blob), jnp.asarray(flow[None])))[0, ..., 0]
        w = out / out.sum()
        shown.append([(w * xx).sum(), (w * yy).sum()])
    shown = np.asarray(shown)
    assert np.abs(shown - still).max() > 1.5  # the warp moves them
    real = still + np.asarray([[0.5, 1.0]], np.float32)  # the real lips
    batch = {"target_lips": real[None, None], "identity_lips": still[None], "target_iod": np.full((1, 1), 40.0, np.float32)}
    model, static = lip_distances(jnp.asarray(flow[None, None]), batch)
    want = np.linalg.norm(shown - real, axis=-1).mean() / 40.0
    np.testing.assert_allclose(float(model[0]), want, rtol=0.02)
    np.testing.assert_allclose(float(static[0]), np.linalg.norm([0.5, 1.0]) / 40.0, rtol=1e-5)
    old = np.linalg.norm(np.asarray(sample_points(jnp.asarray(flow[None]), jnp.asarray(real[None])))[0, :, ::-1]
                         - (still - real), axis=-1).mean() / 40.0
    assert abs(old - want) > 0.1 * want  # the flow sampled at the real point tells another story here


@pytest.mark.slow  # ~45 s: compiles of the warp model's loss and gradient
def test_the_lip_loss_enters_the_loss_and_trains_the_flow_head_and_audio_encoder():
    cfg = lip_config(**{"train.sync_weight": 0.0, "data.sync_negatives": 0})
    task = get_task(cfg)
    assert task.lip_weight == cfg.train.lip_weight > 0 and task.best_metric == "lip_lmd"
    model = build_model(cfg)
    state = state_lib.create_train_state(cfg, model, jax.random.PRNGKey(0), task)
    state = state.replace(params=jax.tree_util.tree_map(lambda x: x + 0.01, state.params))
    batch = {k: v for k, v in _batch(cfg, lip_tracks()).items() if k not in ("record", "target_frame", "identity_frames")}
    key = jax.random.PRNGKey(0)
    lip_of = lambda p: task.loss(state, p, batch, key=key, axis_name=None)[1][0]["lip_lmd"]  # noqa: E731
    (loss, (m, _)), g = jax.jit(lambda p: (task.loss(state, p, batch, key=key, axis_name=None),
                                           jax.grad(lip_of)(p)))(state.params)  # one compile
    plain = get_task(lip_config(**{"train.sync_weight": 0.0, "data.sync_negatives": 0, "train.lip_weight": 0.0,
                                "train.best_metric": "mouth_l1"}))
    base = jax.jit(lambda p: plain.loss(state, p, batch, key=key, axis_name=None)[0])(state.params)
    np.testing.assert_allclose(float(loss), float(base) + cfg.train.lip_weight * float(m["lip_lmd"]), rtol=1e-5)
    assert float(jnp.abs(g["image_decoder"]["flow"]["kernel"]).max()) > 0
    assert max(float(jnp.abs(x).max()) for x in jax.tree_util.tree_leaves(g["audio_encoder"])) > 0
    sums = jax.jit(lambda st: task.eval_sums(st, batch, key=key, axis_name=None))(state)
    assert np.isfinite(float(sums["lip_lmd"])) and float(sums["static_lip_lmd"]) > 0


def test_lip_loss_config_errors_are_specific():
    with pytest.raises(ConfigError, match="model.warp"):
        get_task(lip_config(**{"model.warp": 0.0}))
    with pytest.raises(ConfigError, match="lip_lmd"):
        get_task(lip_config("real_small.py", **{"train.best_metric": "lip_lmd"}))


def test_init_from_copies_matching_weights_and_keeps_the_new_ones(tmp_path):
    from s2v_jax.train.export import export_model

    plain_cfg, warp_cfg = lip_config("real_small.py"), lip_config()
    plain_task = get_task(plain_cfg)
    v_plain = jax.device_get(plain_task.init_variables(plain_cfg, build_model(plain_cfg), jax.random.PRNGKey(3)))
    export_model(plain_cfg, v_plain, str(tmp_path / "base"))
    warp_task = get_task(warp_cfg)
    fresh = jax.device_get(warp_task.init_variables(warp_cfg, build_model(warp_cfg), jax.random.PRNGKey(4)))
    out = overlay_variables(fresh, str(tmp_path / "base"), "generator")
    dec = out["params"]["image_decoder"]
    np.testing.assert_allclose(dec["out"]["kernel"], np.asarray(v_plain["params"]["image_decoder"]["out"]["kernel"],
                                                                np.float32), atol=1e-3)  # float16 export
    np.testing.assert_array_equal(dec["flow"]["kernel"], fresh["params"]["image_decoder"]["flow"]["kernel"])
    sync_cfg = load_config(os.path.join(REPO, "configs", "syncnet_real.py"))
    sync_task = get_task(sync_cfg)
    v_sync = jax.device_get(sync_task.init_variables(sync_cfg, sync_task.build_model(sync_cfg), jax.random.PRNGKey(0)))
    with pytest.raises(TrainingError):
        overlay_variables(v_sync, str(tmp_path / "base"), "sync")


def test_warp_only_output_is_the_still_moved_by_the_flow():
    cfg = lip_config()
    assert cfg.model.warp_only
    model = build_model(cfg)
    rng = np.random.default_rng(5)
    mfcc = jnp.asarray(rng.normal(size=(2, 12, 35, 1)), jnp.float32)
    still = jnp.asarray(rng.uniform(0.05, 0.95, size=(2, 112, 112, 3)), jnp.float32)
    v = jax.tree_util.tree_map(lambda x: x + 0.05, model.init(jax.random.PRNGKey(0), mfcc, still))
    audio = model.apply(v, mfcc, method=Speech2Vid.encode_audio)
    frames, flow = model.apply(v, audio, model.apply(v, still, method=Speech2Vid.encode_identity),
                               method=Speech2Vid.decode_with_flow)
    assert float(jnp.abs(flow).max()) > 0.5  # the head moves pixels
    np.testing.assert_allclose(frames, warp_image(still, flow), atol=1e-5)  # and nothing paints on top
    np.testing.assert_allclose(model.apply(v, mfcc, still), frames, atol=1e-6)


def test_a_wider_audio_cnn_initialised_by_widening_computes_what_the_narrow_one_did_then_trains():
    from s2v_jax.train.init_from import _widened, overlay_arrays

    narrow_cfg, wide_cfg = lip_config(), lip_config(**{"model.audio_width": 0.5})
    narrow, wide = build_model(narrow_cfg), build_model(wide_cfg)
    rng = np.random.default_rng(2)
    mfcc = jnp.asarray(rng.normal(size=(3, 12, 35, 1)), jnp.float32)
    still = jnp.asarray(rng.uniform(0.05, 0.95, size=(3, 112, 112, 3)), jnp.float32)
    v_narrow = jax.device_get(narrow.init(jax.random.PRNGKey(0), mfcc, still))
    v_narrow["params"] = jax.tree_util.tree_map(lambda x: x + 0.05, v_narrow["params"])  # no zero flow head
    v_wide = jax.device_get(wide.init(jax.random.PRNGKey(1), mfcc, still))
    enc = v_wide["params"]["audio_encoder"]
    assert enc["conv1"]["conv"]["kernel"].shape[-1] == 4 * v_narrow["params"]["audio_encoder"]["conv1"]["conv"][
        "kernel"].shape[-1]
    assert enc["fc7"]["conv"]["kernel"].shape[-1] == v_narrow["params"]["audio_encoder"]["fc7"]["conv"][
        "kernel"].shape[-1]  # the audio code keeps its size: the decoder is the narrow one's
    _, copied, kept, widened = overlay_arrays(v_wide, v_narrow, widen=False)
    assert not widened and any("audio_encoder/conv1" in k for k in kept)
    merged, copied, kept, widened = overlay_arrays(v_wide, v_narrow, widen=True)
    assert not kept and any("audio_encoder/conv3" in k for k in widened)
    a_narrow = narrow.apply(v_narrow, mfcc, method=Speech2Vid.encode_audio)
    a_wide = wide.apply(merged, mfcc, method=Speech2Vid.encode_audio)
    np.testing.assert_allclose(a_wide, a_narrow, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(wide.apply(merged, mfcc, still), narrow.apply(v_narrow, mfcc, still),
                               rtol=1e-5, atol=1e-5)
    # the added channels can learn: the gradient reaches the zeroed rows of the next layer
    def code_sum(p):
        return wide.apply({**merged, "params": p}, mfcc, method=Speech2Vid.encode_audio).sum()
    g = jax.grad(code_sum)(merged["params"])["audio_encoder"]["conv2"]["conv"]["kernel"]
    n_in = v_narrow["params"]["audio_encoder"]["conv1"]["conv"]["kernel"].shape[-1]
    assert np.abs(np.asarray(g)[:, :, n_in:, :]).max() > 0
    # shapes that do not nest are left alone
    assert _widened(np.zeros((3, 4)), np.zeros((2, 8)), "kernel") is None


def test_five_stills_widened_from_one_start_as_the_one_still_model_and_learn_from_the_others(tmp_path):
    """The five-still comparison of issue #31 starts from the one-still model (`train.init_from` with
    `train.init_widen`): conv1's rows for stills 2-5 are zero, so before training the five-still model
    draws what the one-still model draws from the first still whatever the others are; the training
    step the loop runs (`build_training`) then moves those rows."""
    from s2v_jax.train import build_training, initial_state
    from s2v_jax.train.export import export_model

    one_cfg = lip_config("real_small_interior.py", **{"train.init_from": "''", "train.batch_size": 2,
                                                      "train.sync_weight": 0.0, "train.parallel": "'mesh'"})
    one = build_model(one_cfg)
    v_one = jax.device_get(get_task(one_cfg).init_variables(one_cfg, one, jax.random.PRNGKey(3)))
    v_one["params"] = jax.tree_util.tree_map(lambda x: x + 0.02, v_one["params"])  # flow and mask heads not at zero
    export_model(one_cfg, v_one, str(tmp_path / "one"))
    five_cfg = lip_config("real_small_interior.py", **{
        "train.init_from": f"'{tmp_path / 'one'}'", "train.init_widen": True, "model.num_identity_images": 5,
        "train.batch_size": 2, "train.sync_weight": 0.0, "train.parallel": "'mesh'", "train.warmup_steps": 0})
    training = build_training(five_cfg)
    state = initial_state(five_cfg, training)
    kernel = np.asarray(state.params["identity_encoder"]["conv1"]["conv"]["kernel"])
    assert kernel.shape[2] == 15 and not kernel[:, :, 3:].any()
    rng = np.random.default_rng(0)
    mfcc = jnp.asarray(rng.normal(size=(2, 12, 35, 1)), jnp.float32)
    first = rng.uniform(0.05, 0.95, size=(2, 112, 112, 3)).astype(np.float32)
    others = rng.uniform(0.05, 0.95, size=(2, 112, 112, 12)).astype(np.float32)
    v_one16 = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float16).astype(np.float32), v_one)  # as exported
    want = one.apply(v_one16, mfcc, jnp.asarray(first))
    got = training.model.apply({"params": state.params, "batch_stats": state.batch_stats}, mfcc,
                               jnp.asarray(np.concatenate([first, others], -1)))
    np.testing.assert_allclose(got, want, atol=2e-3)
    tracks = lip_tracks()
    batch = _batch(five_cfg, tracks)
    batch = {k: batch[k] for k in ("mfcc", "identity", "target", "identity_lips", "target_lips", "target_iod")}
    assert batch["identity"].shape[-1] == 15
    dp = training.dp
    new_state, m = training.train_step(dp.put_state(state), dp.shard_batch(batch))
    moved = np.asarray(dp.state_for_checkpoint(new_state).params["identity_encoder"]["conv1"]["conv"]["kernel"])
    assert np.isfinite(float(dp.fetch(m)["loss"])) and np.abs(moved[:, :, 3:]).max() > 0


def test_polygon_mask_covers_the_inside_and_the_dilated_edge():
    from s2v_jax.train.tasks.lips import polygon_mask

    square = jnp.asarray([[[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]]])  # (x, y), pixel units
    m = np.asarray(polygon_mask(square, 32))[0]
    assert m[15, 15] == 1 and m[5, 15] == 0 and m[15, 25] == 0  # rows are y, columns x
    assert m[10:20, 10:20].sum() == 100 and m.sum() == 100  # centres 10.5..19.5 inside, none beyond
    grown = np.asarray(polygon_mask(square, 32, dilate=2.0))[0]
    assert grown[8, 15] == 1 and grown[7, 15] == 0 and grown[15, 21] == 1 and grown[15, 22] == 0


def test_paint_outside_counts_only_paint_beyond_the_warped_inner_lips():
    """No paint (the frame is the warped still): 0. A dark dot inside the inner-lip contour: 0. The same
    dot below the lower lip: counted, and only in the mouth box (a dot above it is not the term's)."""
    from s2v_jax.train.tasks.lips import INNER_LIPS, paint_outside

    b, w, s = 1, 2, 112
    rng = np.random.default_rng(0)
    still = jnp.asarray(rng.uniform(0.2, 0.8, (b, w, s, s, 3)), jnp.float32)
    flow = jnp.zeros((b, w, s, s, 2), jnp.float32)
    lips = np.zeros((b, 40, 2), np.float32)
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lips[0, INNER_LIPS] = np.stack([56 + 12 * np.cos(angle), 74 + 4 * np.sin(angle)], -1)  # an open mouth at row 74
    batch = {"identity_lips": jnp.asarray(lips)}
    warped = np.clip(np.asarray(still), 1e-3, 1 - 1e-3)
    assert float(paint_outside(jnp.asarray(warped), still, flow, batch).max()) < 1e-6

    def dot(row):
        x = warped.copy()
        x[:, :, row - 2:row + 2, 54:58] = 0.0
        return float(paint_outside(jnp.asarray(x), still, flow, batch).max())

    assert dot(74) < 1e-6          # inside the opening: the interior, free to paint
    assert dot(88) > 1e-3          # under the lower lip (rows 70-78 open, +2 px): counted
    assert dot(30) < 1e-6          # outside the mouth box: not this term's (the model cannot paint there)


def test_paint_region_real_bounds_the_paint_by_the_real_lips_not_the_still_s():
    """A closed still (its inner lips a line: no inside) and a real frame whose mouth is open. 'warped'
    counts a dark cavity painted where the real mouth opens (the warp did not part the still's lips);
    'real' does not, yet still counts a dot under the real lower lip. An unknown region is refused."""
    from s2v_jax.train.tasks.lips import INNER_LIPS, paint_outside

    b, w, s = 1, 2, 112
    rng = np.random.default_rng(1)
    still = jnp.asarray(rng.uniform(0.2, 0.8, (b, w, s, s, 3)), jnp.float32)
    flow = jnp.zeros((b, w, s, s, 2), jnp.float32)
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    closed = np.zeros((b, 40, 2), np.float32)
    closed[0, INNER_LIPS] = np.stack([56 + 12 * np.cos(angle), 74 + 0.01 * np.sin(angle)], -1)
    real = np.zeros((b, w, 40, 2), np.float32)
    real[0, :, INNER_LIPS] = np.stack([56 + 12 * np.cos(angle), 74 + 8 * np.sin(angle)], -1)  # rows 66-82
    batch = {"identity_lips": jnp.asarray(closed), "target_lips": jnp.asarray(real)}
    warped = np.clip(np.asarray(still), 1e-3, 1 - 1e-3)

    def dot(row, region):
        x = warped.copy()
        x[:, :, row - 2:row + 2, 54:58] = 0.0
        return float(paint_outside(jnp.asarray(x), still, flow, batch, region).max())

    assert dot(80, "warped") > 1e-3   # the cavity where the real mouth opens: beyond the still's closed lips (+2 px)
    assert dot(80, "real") < 1e-6     # ... and inside the real opening
    assert dot(90, "real") > 1e-3     # under the real lower lip (rows 66-82, +2 px): counted either way
    with pytest.raises(ValueError, match="paint region"):
        paint_outside(jnp.asarray(warped), still, flow, batch, "target")
    over = {"train.sync_weight": 0.0, "data.sync_negatives": 0, "model.interior": True, "model.warp_only": True,
            "model.interior_region": (60, 92, 36, 76), "train.paint_weight": 1.0}
    assert get_task(lip_config(**over, **{"train.paint_region": "real"})).paint_region == "real"
    with pytest.raises(ConfigError, match="train.paint_region"):
        get_task(lip_config(**over, **{"train.paint_region": "target"}))


def test_mask_error_is_zero_for_the_real_opening_and_counts_paint_elsewhere():
    """The mask equal to the real inner-lip polygon: 0. Shut where the real mouth is open, or open under
    the lower lip: counted. A mask beyond the mouth box is not this term's."""
    from s2v_jax.train.tasks.lips import INNER_LIPS, mask_error, polygon_mask

    b, w, s = 1, 2, 112
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    real = np.zeros((b, w, 40, 2), np.float32)
    real[0, :, INNER_LIPS] = np.stack([56 + 12 * np.cos(angle), 74 + 6 * np.sin(angle)], -1)
    batch = {"target_lips": jnp.asarray(real)}
    exact = np.asarray(polygon_mask(jnp.asarray(real[0, :, INNER_LIPS]), s)).reshape(b, w, s, s, 1)
    assert exact.sum() > 100
    assert float(mask_error(jnp.asarray(exact), batch).max()) < 1e-7
    shut = float(mask_error(jnp.zeros_like(jnp.asarray(exact)), batch).min())
    assert shut > 0.03                       # the opening (~220 px) over the 42 x 64 mouth box
    below = exact.copy()
    below[:, :, 86:90, 50:62] = 1.0          # paint under the lower lip (rows 68-80 open)
    assert float(mask_error(jnp.asarray(below), batch).min()) > 0.01
    far = exact.copy()
    far[:, :, 10:20, 10:20] = 1.0            # outside the mouth box
    assert float(mask_error(jnp.asarray(far), batch).max()) < 1e-7


def test_opening_l1_counts_only_error_inside_the_real_opening():
    """A frame equal to the real one: 0. A wrong colour inside the real inner lips: counted; the same error
    under the lower lip or beyond the mouth box: not this term's."""
    from s2v_jax.train.tasks.lips import INNER_LIPS, opening_l1

    b, w, s = 1, 2, 112
    rng = np.random.default_rng(2)
    real = jnp.asarray(rng.uniform(0.2, 0.8, (b, w, s, s, 3)), jnp.float32)
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lips = np.zeros((b, w, 40, 2), np.float32)
    lips[0, :, INNER_LIPS] = np.stack([56 + 12 * np.cos(angle), 74 + 6 * np.sin(angle)], -1)  # rows 68-80
    batch = {"target_lips": jnp.asarray(lips)}
    assert float(opening_l1(real, real, batch).max()) < 1e-7

    def patch(row):
        x = np.asarray(real).copy()
        x[:, :, row - 2:row + 2, 52:60] = 1.0
        return float(opening_l1(jnp.asarray(x), real, batch).min())

    assert patch(74) > 1e-4      # inside the opening
    assert patch(90) < 1e-7      # under the lower lip
    assert patch(20) < 1e-7      # beyond the mouth box


def test_the_mask_term_enters_the_loss_of_an_interior_model_and_needs_one():
    over = {"train.sync_weight": 0.0, "data.sync_negatives": 0, "model.interior": True, "model.warp_only": True,
            "model.interior_region": (60, 92, 36, 76)}
    cfg = lip_config(**over, **{"train.mask_weight": 5.0, "train.opening_weight": 20.0})
    task = get_task(cfg)
    model = build_model(cfg)
    state = state_lib.create_train_state(cfg, model, jax.random.PRNGKey(0), task)
    batch = {k: v for k, v in _batch(cfg, lip_tracks()).items() if k not in ("record", "target_frame", "identity_frames")}
    key = jax.random.PRNGKey(0)
    loss, (m, _) = jax.jit(lambda p: task.loss(state, p, batch, key=key, axis_name=None))(state.params)
    base = jax.jit(lambda p: get_task(lip_config(**over)).loss(state, p, batch, key=key, axis_name=None)[0])(state.params)
    assert float(m["mask_error"]) > 0 and float(m["opening_l1"]) > 0
    np.testing.assert_allclose(float(loss), float(base) + 5.0 * float(m["mask_error"]) + 20.0 * float(m["opening_l1"]),
                               rtol=1e-5)
    grads = jax.grad(lambda p: task.loss(state, p, batch, key=key, axis_name=None)[0])(state.params)
    assert float(jnp.abs(grads["image_decoder"]["occlusion"]["kernel"]).sum()) > 0  # the mask learns from it
    sums = jax.jit(lambda st: task.eval_sums(st, batch, key=key, axis_name=None))(state)
    assert np.isfinite(float(sums["mask_error"])) and np.isfinite(float(sums["opening_l1"]))
    with pytest.raises(ConfigError, match="train.mask_weight .* needs an interior model"):
        get_task(lip_config(**{"train.mask_weight": 5.0}))
    with pytest.raises(ConfigError, match="train.opening_weight .* needs an interior model"):
        get_task(lip_config(**{"train.opening_weight": 20.0}))


def test_the_paint_term_enters_the_loss_of_an_interior_model_and_needs_one():
    over = {"train.sync_weight": 0.0, "data.sync_negatives": 0, "model.interior": True, "model.warp_only": True,
            "model.interior_region": (60, 92, 36, 76)}
    cfg = lip_config(**over, **{"train.paint_weight": 10.0})
    task = get_task(cfg)
    assert task.paint_weight == 10.0 and task.interior
    model = build_model(cfg)
    state = state_lib.create_train_state(cfg, model, jax.random.PRNGKey(0), task)
    params = jax.tree_util.tree_map(lambda x: x + 0.01, state.params)
    params["image_decoder"]["occlusion"]["bias"] = jnp.zeros_like(params["image_decoder"]["occlusion"]["bias"])  # paint
    batch = {k: v for k, v in _batch(cfg, lip_tracks()).items() if k not in ("record", "target_frame", "identity_frames")}
    key = jax.random.PRNGKey(0)
    loss, (m, _) = jax.jit(lambda p: task.loss(state, p, batch, key=key, axis_name=None))(params)
    base = jax.jit(lambda p: get_task(lip_config(**over)).loss(state, p, batch, key=key, axis_name=None)[0])(params)
    assert float(m["paint_outside"]) > 0
    np.testing.assert_allclose(float(loss), float(base) + 10.0 * float(m["paint_outside"]), rtol=1e-5)
    sums = jax.jit(lambda st: task.eval_sums(st, batch, key=key, axis_name=None))(state)
    assert np.isfinite(float(sums["paint_outside"]))
    with pytest.raises(ConfigError, match="train.paint_weight .* needs an interior model"):
        get_task(lip_config(**{"train.paint_weight": 10.0}))
