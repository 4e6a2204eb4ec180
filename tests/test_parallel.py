"""8 simulated CPU devices: the pmap step and the mesh step equal one device's step
on the same global batch (params, BatchNorm statistics, loss, eval sums).

XLA_FLAGS must hold `--xla_force_host_platform_device_count=8` before JAX
starts, so the comparison runs in a subprocess (this file as a script) and the
tests check its JSON report; it also runs train_and_evaluate on the mesh and
resumes it. Host-side helpers are tested in-process. (The deblur blur draws one
sigma per global example index, so it does not depend on the split either:
tests/test_train_step.py checks those indices under a named axis.)
"""

import json
import os
import sys

import ckpt_fixture
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
XLA_FLAGS = ("--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0 "
             "--xla_llvm_disable_expensive_passes=true")
# One example per device: the global batch statistics then differ most from any device's own.
OVERRIDES = ["model.width=0.0625", "train.batch_size=8", "train.learning_rate=0.1",
             "train.progress_bar=False"]
NUM_STEPS = 2


def _max_abs_diff(a, b) -> float:
    import jax
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))),
                         a, b)
    return max(jax.tree.leaves(diffs))


def _compare(config_name: str, overrides) -> dict:
    """Runs NUM_STEPS train steps and one eval step on 1 device, under pmap and on the mesh."""
    import jax
    from fakes import fake_batch

    from s2v_jax.config_utils import load_config
    from s2v_jax.models import build_model
    from s2v_jax.train import parallel
    from s2v_jax.train.state import create_train_state
    from s2v_jax.train.steps import make_eval_step, make_train_step
    from s2v_jax.train.tasks import get_task

    config = load_config(os.path.join(REPO, "configs", config_name), overrides)
    batches = [fake_batch(config, i, config.train.batch_size) for i in range(NUM_STEPS)]
    host_state = create_train_state(config, build_model(config), jax.random.PRNGKey(0), get_task(config))
    results = {}

    # One device, global batch.
    step = jax.jit(make_train_step(config))
    state = jax.device_put(host_state, jax.devices()[0])
    losses = []
    for b in batches:
        state, m = step(state, b)
        losses.append(float(m["loss"]))
    ref = jax.device_get(state)
    ref_eval = jax.device_get(jax.jit(make_eval_step(config))(state, batches[0]))
    results["losses_1"] = losses

    for mode in ("pmap", "mesh"):
        dp = parallel.DataParallel(mode)
        p_step = dp.compile_train_step(make_train_step(config, axis_name=dp.axis_name))
        p_eval = dp.compile_eval_step(make_eval_step(config, axis_name=dp.axis_name))
        # pmap's model carries axis_name='batch' (sync BN); parameters are the same.
        mode_state = host_state.replace(apply_fn=build_model(config, axis_name=dp.axis_name).apply)
        state = dp.put_state(mode_state)
        losses = []
        for b in batches:
            state, m = p_step(state, dp.shard_batch(b))
            losses.append(float(dp.fetch(m)["loss"]))
        eval_sums = dp.fetch(p_eval(state, dp.shard_batch(batches[0])))
        if mode == "pmap":
            replicas = jax.device_get(state.params)
            results["pmap_replica_spread"] = _max_abs_diff(
                jax.tree.map(lambda x: x.max(0), replicas), jax.tree.map(lambda x: x.min(0), replicas))
        got = dp.state_for_checkpoint(state)
        results[mode] = {
            "params": _max_abs_diff(ref.params, got.params),
            "batch_stats": _max_abs_diff(ref.batch_stats, got.batch_stats) if ref.batch_stats else 0.0,
            "opt_state": _max_abs_diff(ref.opt_state, jax.device_get(got.opt_state)),
            "step": int(np.asarray(got.step)),
            "losses": losses,
            "eval_rel": max(abs(float(eval_sums[k]) - float(ref_eval[k])) / max(abs(float(ref_eval[k])), 1e-6)
                            for k in ref_eval),
            "num_devices": len(dp.devices),
        }
    results["param_scale"] = float(max(np.max(np.abs(x)) for x in jax.tree.leaves(ref.params)))
    results["momentum_scale"] = float(max(np.max(np.abs(x)) for x in jax.tree.leaves(ref.opt_state)))
    results["num_batch_stats"] = len(jax.tree.leaves(ref.batch_stats))
    return results


def _mesh_train_and_resume(out_dir: str) -> dict:
    """train_and_evaluate on the 8-device mesh: 2 steps, then a resumed call to 3."""
    from fakes import FakeLoader, fake_eval_batches

    from s2v_jax.config_utils import load_config
    from s2v_jax.train import train_and_evaluate

    served = []

    def loader_fn(cfg, **kw):
        loader = FakeLoader(cfg, **kw)
        served.append(loader.served)
        return loader

    summaries = []
    for n in (2, 3):
        config = load_config(os.path.join(REPO, "configs/tiny.py"), OVERRIDES + [
            "train.parallel='mesh'", f"train.num_steps={n}", "train.eval_every=2", "train.checkpoint_every=2",
            "train.eval_batches=1", "train.log_every=1"])
        summaries.append(train_and_evaluate(config, os.path.join(out_dir, "mesh_run"),
                                            train_loader_fn=loader_fn, eval_batches_fn=fake_eval_batches))
    return {"served": served, "steps": [s["step"] for s in summaries],
            "checkpoints": sorted(os.listdir(os.path.join(out_dir, "mesh_run", "checkpoints")))}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return ckpt_fixture.run_script(__file__, tmp_path_factory.mktemp("parallel"), xla_flags=XLA_FLAGS)


def test_pmap_and_mesh_match_one_device(report):
    r = report["speech2vid"]
    assert report["device_count"] == 8
    assert r["num_batch_stats"] > 0
    for mode in ("pmap", "mesh"):
        m = r[mode]
        assert m["num_devices"] == 8 and m["step"] == NUM_STEPS
        assert m["params"] < 1e-5, (mode, m)  # params are O(0.1-1); float32 summation order only
        assert m["batch_stats"] < 1e-5, (mode, m)  # sync BN: statistics of the global batch
        # Momentum buffers hold raw gradients. A kernel followed by BatchNorm gets its gradient as a
        # difference of nearly equal batch sums, so its float32 error scales with the largest
        # gradients in the net (~2 here), not with its own small value: compared at that scale.
        assert m["opt_state"] < 1e-4 * r["momentum_scale"], (mode, m["opt_state"], r["momentum_scale"])
        np.testing.assert_allclose(m["losses"], r["losses_1"], rtol=1e-5)
        assert m["eval_rel"] < 1e-4, (mode, m)
    assert r["pmap_replica_spread"] == 0.0  # every device holds the same state


def test_mesh_train_and_evaluate_resumes(report):
    m = report["mesh_run"]
    assert m["steps"] == [2, 3]
    assert m["served"] == [[0, 1], [2]]
    assert m["checkpoints"] == ["2", "3"]


def test_multihost_detection():
    from s2v_jax.train.parallel import _multihost_env, initialize_distributed

    assert _multihost_env({}) is None
    assert _multihost_env({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) is None
    assert _multihost_env({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "4"}) == "SLURM"
    assert _multihost_env({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}) == "JAX_COORDINATOR_ADDRESS"
    assert _multihost_env({"OMPI_COMM_WORLD_SIZE": "2"}) == "Open MPI"
    assert initialize_distributed({}) is False


def test_shard_for_pmap_shapes_and_errors():
    from s2v_jax.errors import TrainingError
    from s2v_jax.train.parallel import shard_for_pmap

    batch = {"x": np.arange(24).reshape(8, 3), "y": np.zeros((8, 2, 2), np.uint8)}
    out = shard_for_pmap(batch, 4)
    assert out["x"].shape == (4, 2, 3) and out["y"].shape == (4, 2, 2, 2)
    np.testing.assert_array_equal(out["x"][1], batch["x"][2:4])
    with pytest.raises(TrainingError, match="multiple of"):
        shard_for_pmap(batch, 3)


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    out_dir = sys.argv[1]
    import jax
    jax.config.update("jax_compilation_cache_dir", os.path.join(out_dir, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    result = {"device_count": jax.device_count(),
              "speech2vid": _compare("tiny.py", OVERRIDES),
              "mesh_run": _mesh_train_and_resume(out_dir)}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(result, f, indent=1)
