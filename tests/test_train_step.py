"""The pure steps: schedules, optimizer, on-device blur/resize, eval metrics with a
fixed-output model, a bfloat16 step of the v201 generator, deblur training."""

import functools
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from s2v_jax.config_utils import load_config
from s2v_jax.errors import ConfigError
from s2v_jax.models import build_model
from s2v_jax.train import optimizer, state as state_lib, steps
from s2v_jax.train.tasks import deblur as deblur_task
from s2v_jax.train.tasks import generator as generator_task
from s2v_jax.train.tasks import get_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from fakes import fake_batch  # noqa: E402

# Fast XLA compilation for these few-step tests (run time matters little here).
FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
fast_jit = functools.partial(jax.jit, compiler_options=FAST)


def _config(name="tiny.py", *overrides):
    return load_config(os.path.join(REPO, "configs", name), list(overrides))


# ---------------------------------------------------------------- optimizer

def test_constant_schedule_with_warmup():
    lr = optimizer.create_learning_rate_fn(_config("tiny.py", "train.learning_rate=0.1", "train.warmup_steps=10"))
    np.testing.assert_allclose([lr(0), lr(5), lr(10), lr(1000)], [0.0, 0.05, 0.1, 0.1], atol=1e-7)


def test_cosine_schedule():
    cfg = _config("tiny.py", "train.learning_rate=0.1", "train.warmup_steps=10", "train.schedule='cosine'",
                  "train.num_steps=110")
    lr = optimizer.create_learning_rate_fn(cfg)
    np.testing.assert_allclose([lr(0), lr(10), lr(60), lr(110)], [0.0, 0.1, 0.05, 0.0], atol=1e-6)
    lr = optimizer.create_learning_rate_fn(_config("tiny.py", "train.learning_rate=0.1", "train.schedule='cosine'",
                                            "train.num_steps=100"))
    np.testing.assert_allclose([lr(0), lr(50), lr(100)], [0.1, 0.05, 0.0], atol=1e-6)
    with pytest.raises(ConfigError, match="schedule"):
        optimizer.create_learning_rate_fn(_config("tiny.py", "train.schedule='step'"))


def test_weight_decay_reaches_kernels_only():
    cfg = _config("tiny.py", "train.weight_decay=0.5", "train.momentum=0.0")
    tx = optimizer.create_optimizer(cfg, optax.constant_schedule(1.0))
    params = {"conv": {"kernel": jnp.ones((3, 3))}, "bn": {"scale": jnp.ones(3), "bias": jnp.ones(3)}}
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    np.testing.assert_allclose(updates["conv"]["kernel"], -0.5)  # -lr * wd * w
    np.testing.assert_allclose(updates["bn"]["scale"], 0.0)
    np.testing.assert_allclose(updates["bn"]["bias"], 0.0)


@pytest.mark.parametrize("nesterov, expected", [(False, [-0.1, -0.19]), (True, [-0.19, -0.271])])
def test_sgd_momentum_by_hand(nesterov, expected):
    # heavy ball: t1 = g, t2 = g + 0.9 t1; Nesterov uses g + 0.9 t instead of t
    cfg = _config("tiny.py", "train.weight_decay=0.0", "train.momentum=0.9", f"train.nesterov={nesterov}")
    tx = optimizer.create_optimizer(cfg, optax.constant_schedule(0.1))
    params = {"w": jnp.zeros(())}
    opt_state = tx.init(params)
    got = []
    for _ in range(2):
        updates, opt_state = tx.update({"w": jnp.ones(())}, opt_state, params)
        got.append(float(updates["w"]))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_optimizer_choice():
    with pytest.raises(ConfigError, match="sgd"):
        optimizer.create_optimizer(_config("tiny.py", "train.optimizer='rmsprop'"), optax.constant_schedule(0.1))
    # Adam's first step is -lr * g / |g| whatever the gradient's scale (SGD's would be -lr * g)
    cfg = _config("tiny.py", "train.optimizer='adam'", "train.weight_decay=0.0")
    tx = optimizer.create_optimizer(cfg, optax.constant_schedule(0.1))
    params = {"a": jnp.zeros(()), "b": jnp.zeros(())}
    updates, _ = tx.update({"a": jnp.ones(()), "b": jnp.full((), -4.0)}, tx.init(params), params)
    np.testing.assert_allclose([updates["a"], updates["b"]], [-0.1, 0.1], rtol=1e-5)


def _offset_model_state():
    """A model whose output is 0.5 + w everywhere (one parameter), learning rate 0."""
    def apply_fn(variables, mfcc, identity, train=False, mutable=False):
        out = jnp.full((mfcc.shape[0], 112, 112, 3), 0.5) + variables["params"]["w"]
        return (out, {"batch_stats": {}}) if mutable else out

    return state_lib.TrainState.create(apply_fn=apply_fn, params={"w": jnp.zeros(())}, tx=optax.sgd(0.0), batch_stats={})


def test_mse_warmup_then_l1():
    b = 2
    batch = {"mfcc": np.zeros((b, 12, 35, 1), np.float32),
             "identity": np.full((b, 112, 112, 3), 102, np.uint8),
             "target": np.full((b, 112, 112, 3), 153, np.uint8)}   # 0.6: error 0.1 everywhere
    step = jax.jit(functools.partial(steps.train_step, task=generator_task.GeneratorTask(mse_warmup_steps=2)))
    state, got = _offset_model_state(), []
    for _ in range(3):
        state, m = step(state, batch)
        got.append((float(m["loss"]), float(m["grad_norm"])))
    # steps 0, 1: squared error 0.01, d/dw = 2 * (-0.1); step 2: L1 0.1, d/dw = -1
    np.testing.assert_allclose(got, [(0.01, 0.2), (0.01, 0.2), (0.1, 1.0)], rtol=1e-4)
    with pytest.raises(ConfigError, match="mse_warmup_steps"):
        steps.make_train_step(_config("tiny.py", "train.mse_warmup_steps=-1"))


# ---------------------------------------------------------------- on-device data preparation

def test_gaussian_blur_matches_scipy():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, 20, 24, 3)).astype(np.float32)
    sigmas = np.array([2.5, 1.0], np.float32)
    got = np.asarray(deblur_task.gaussian_blur(jnp.asarray(images), jnp.asarray(sigmas), 2.5))
    for img, out, s in zip(images, got, sigmas):
        # radius ceil(3 * 2.5) = 8 for both; jnp.pad 'reflect' is scipy's 'mirror'
        ref = ndimage.gaussian_filter(img.astype(np.float64), (s, s, 0), mode="mirror", truncate=8.0 / s)
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_blur_keeps_constants_and_sigmas_in_range():
    const = jnp.full((3, 16, 16, 3), 0.3)
    np.testing.assert_allclose(deblur_task.gaussian_blur(const, jnp.array([0.5, 1.0, 2.0]), 2.0), 0.3, atol=1e-6)
    sig = deblur_task.blur_sigmas(jax.random.PRNGKey(0), deblur_task.example_ids(64), (0.5, 2.5))
    assert sig.shape == (64,) and float(sig.min()) >= 0.5 and float(sig.max()) <= 2.5
    assert float(sig.std()) > 0.3  # per-example, not one sigma for the batch


def test_example_ids_are_global_under_a_named_axis():
    ids = jax.vmap(lambda _: deblur_task.example_ids(3, "batch"), axis_name="batch")(jnp.zeros(2))
    np.testing.assert_array_equal(ids, [[0, 1, 2], [3, 4, 5]])


def test_resize_to_output_side():
    x = jnp.full((2, 112, 112, 3), 0.25)
    assert generator_task.resize_to(x, (112, 112)) is x
    y = generator_task.resize_to(x, (109, 109))
    assert y.shape == (2, 109, 109, 3)
    np.testing.assert_allclose(y, 0.25, atol=1e-6)


def test_uint8_to_float():
    np.testing.assert_allclose(generator_task.to_float_image(jnp.array([0, 51, 255], jnp.uint8)), [0.0, 0.2, 1.0], atol=1e-7)


# ---------------------------------------------------------------- eval with a fixed-output model

@pytest.mark.parametrize("side", [112, 109])
def test_eval_step_with_fixed_output_model(side):
    b = 2

    def apply_fn(variables, mfcc, identity, train=False, mutable=False):
        return jnp.full((mfcc.shape[0], side, side, 3), 0.5)

    state = state_lib.TrainState.create(apply_fn=apply_fn, params={"w": jnp.zeros(())}, tx=optax.sgd(0.1), batch_stats={})
    batch = {"mfcc": np.zeros((b, 12, 35, 1), np.float32),
             "identity": np.full((b, 112, 112, 3), 102, np.uint8),   # 0.4
             "target": np.full((b, 112, 112, 3), 153, np.uint8)}     # 0.6
    out = {k: float(v) for k, v in jax.jit(steps.eval_step)(state, batch).items()}
    c1 = 0.01 ** 2
    expected = {"count": b,
                "l1": 0.1 * b, "psnr": 20.0 * b, "ssim": b * (2 * 0.5 * 0.6 + c1) / (0.25 + 0.36 + c1),
                "static_l1": 0.2 * b, "static_psnr": b * 10 * math.log10(1 / 0.04),
                "static_ssim": b * (2 * 0.4 * 0.6 + c1) / (0.16 + 0.36 + c1),
                "l1_to_static": 0.1 * b,  # |0.5 - 0.4|: how far the output is from the still
                "mouth_l1": 0.1 * b, "static_mouth_l1": 0.2 * b}  # the same, in the mouth box
    assert sorted(out) == sorted(expected)
    for k, v in expected.items():
        np.testing.assert_allclose(out[k], v, rtol=1e-4, err_msg=k)  # float32 means over 37k pixels


# ---------------------------------------------------------------- real models

def test_bfloat16_v201_step_runs_and_stays_finite():
    """bf16 compute, five stills, 109x109 output (the target is resized on device)."""
    cfg = _config("v201.py", "model.width=0.0625", "model.dtype='bfloat16'", "train.batch_size=2",
                  "train.learning_rate=0.05")
    state = state_lib.create_train_state(cfg, build_model(cfg), jax.random.PRNGKey(0), get_task(cfg))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
    stats_before = jax.device_get(state.batch_stats)
    step = fast_jit(steps.make_train_step(cfg))
    losses = []
    for i in range(3):
        state, m = step(state, fake_batch(cfg, i, 2))
        losses.append(float(m["loss"]))
    assert np.all(np.isfinite(losses)) and 0.0 < losses[0] < 1.0, losses
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    moved = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), stats_before,
                         jax.device_get(state.batch_stats))
    assert max(jax.tree.leaves(moved)) > 0  # BatchNorm running statistics were updated
    out = {k: float(v) for k, v in fast_jit(steps.make_eval_step(cfg))(state, fake_batch(cfg, 99, 2)).items()}
    assert out["count"] == 2 and all(np.isfinite(v) for v in out.values())
    assert {"static_l1", "static_psnr", "static_ssim"} <= set(out)


def test_deblur_trains_and_beats_its_blurred_input():
    """On one batch and a fixed sigma, the loss falls below the blurred input's L1."""
    cfg = _config("deblur.py", "model.features=8", "train.batch_size=4", "train.learning_rate=0.05",
                  "train.blur_sigma=(1.5, 1.5)")
    state = state_lib.create_train_state(cfg, build_model(cfg), jax.random.PRNGKey(0), get_task(cfg))
    step = fast_jit(steps.make_train_step(cfg))
    batch = fake_batch(cfg, 0, 4)
    blurred_l1 = float(fast_jit(steps.make_eval_step(cfg))(state, batch)["blurred_l1"]) / 4
    losses = []
    for _ in range(15):
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0] * 0.995, losses
    assert losses[-1] < blurred_l1, (losses[-1], blurred_l1)
