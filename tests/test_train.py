"""train_and_evaluate on a fake loader: loss falls, checkpoints and metrics appear,
resume continues params and data order exactly, a NaN loss stops the run, the
deblurring net trains through the same loop.

The runs happen once, in a subprocess (this file run as a script), so the XLA
flags that make CPU compilation fast here (optimisation level 0) do not leak
into other tests; the tests below check its JSON report.
"""

import json
import os
import sys

import ckpt_fixture
from fakes import FakeLoader, fake_eval_batches
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_OVERRIDES = ["model.width=0.0625", "train.batch_size=4", "train.learning_rate=0.1",
                  "train.log_every=1", "train.eval_every=4", "train.checkpoint_every=4",
                  "train.keep_checkpoints=2", "train.eval_batches=2", "train.progress_bar=False"]


# ---------------------------------------------------------------- the fake data: tests/fakes.py

# ---------------------------------------------------------------- the scenario (subprocess)

def _run_scenario(out_dir: str) -> dict:
    import jax
    jax.config.update("jax_compilation_cache_dir", os.path.join(out_dir, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    from s2v_jax.config_utils import load_config
    from s2v_jax.errors import TrainingError
    from s2v_jax.train import train_and_evaluate
    from s2v_jax.train.checkpointing import load_checkpoint
    from s2v_jax.train.metrics import read_jsonl

    def run(name, num_steps, nan_at=None, extra=()):
        config = load_config(os.path.join(REPO, "configs/tiny.py"),
                             TINY_OVERRIDES + [f"train.num_steps={num_steps}", *extra])
        loaders = []

        def loader_fn(cfg, **kw):
            loaders.append(FakeLoader(cfg, nan_at=nan_at, **kw))
            return loaders[-1]

        summary = train_and_evaluate(config, os.path.join(out_dir, name), train_loader_fn=loader_fn,
                                     eval_batches_fn=fake_eval_batches)
        return summary, loaders[0].served

    report = {}
    # A: 8 uninterrupted steps.
    summary, served = run("A", 8)
    wd = os.path.join(out_dir, "A")
    rows = read_jsonl(os.path.join(wd, "metrics.jsonl"))
    report["A"] = {"summary": summary, "served": served,
                   "losses": [r["train/loss"] for r in rows if "train/loss" in r],
                   "val_rows": [r for r in rows if "val/l1" in r],
                   "checkpoints": sorted(os.listdir(os.path.join(wd, "checkpoints"))),
                   "best": sorted(os.listdir(os.path.join(wd, "best"))),
                   "tensorboard": os.listdir(os.path.join(wd, "tensorboard")),
                   "config_json": os.path.isfile(os.path.join(wd, "config.json"))}
    # B: 4 steps, then a second call to 8 resumes. Between them, rows of steps 5-6 as a run killed
    # after its step-4 checkpoint would have left: the resumed run drops them, no step is logged twice.
    _, served_1 = run("B", 4)
    with open(os.path.join(out_dir, "B", "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"step": 5, "train/loss": 99.0}) + "\n" + json.dumps({"step": 6, "train/loss": 99.0}) + "\n")
    summary_2, served_2 = run("B", 8)
    b_rows = read_jsonl(os.path.join(out_dir, "B", "metrics.jsonl"))
    report["B"] = {"served_1": served_1, "served_2": served_2, "summary": summary_2,
                   "train_steps": [r["step"] for r in b_rows if "train/loss" in r],
                   "train_losses": [r["train/loss"] for r in b_rows if "train/loss" in r]}
    _, var_a = load_checkpoint(os.path.join(out_dir, "A", "checkpoints"))
    cfg_b, var_b = load_checkpoint(os.path.join(out_dir, "B", "checkpoints"))
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), var_a, var_b)
    report["resume_max_abs_diff"] = max(jax.tree.leaves(diffs))
    report["resume_num_leaves"] = len(jax.tree.leaves(diffs))
    report["inference_config_width"] = cfg_b.model.width
    report["inference_keys"] = sorted(var_b)
    # E: the deblurring net through the same loop (no BatchNorm), resumed once.
    deblur = ["model.features=8", "train.batch_size=2", "train.eval_every=2", "train.checkpoint_every=2",
              "train.eval_batches=1", "train.progress_bar=False", "train.learning_rate=0.05", "train.log_every=1"]
    for n in (2, 3):
        config = load_config(os.path.join(REPO, "configs/deblur.py"), deblur + [f"train.num_steps={n}"])
        summary = train_and_evaluate(config, os.path.join(out_dir, "E"), train_loader_fn=FakeLoader,
                                     eval_batches_fn=fake_eval_batches)
    cfg_e, var_e = load_checkpoint(os.path.join(out_dir, "E"))
    report["E"] = {"summary": summary, "model": cfg_e.model.name, "keys": sorted(var_e)}
    # F: the deblurring net on one repeated batch and a fixed blur (so its loss must fall), 8 steps
    # uninterrupted vs 4 + 4 resumed; then a NaN batch.
    deblur_cfg = lambda n, *extra: load_config(os.path.join(REPO, "configs/deblur.py"),  # noqa: E731
                                               deblur + [f"train.num_steps={n}", "train.checkpoint_every=4",
                                                         "train.blur_sigma=(1.5, 1.5)", *extra])
    same = lambda cfg, **kw: FakeLoader(cfg, same_batch=True, **kw)  # noqa: E731
    train_and_evaluate(deblur_cfg(8), os.path.join(out_dir, "F1"), train_loader_fn=same,
                       eval_batches_fn=fake_eval_batches)
    for n in (4, 8):
        train_and_evaluate(deblur_cfg(n), os.path.join(out_dir, "F2"), train_loader_fn=same,
                           eval_batches_fn=fake_eval_batches)
    rows = read_jsonl(os.path.join(out_dir, "F1", "metrics.jsonl"))
    _, v1 = load_checkpoint(os.path.join(out_dir, "F1", "checkpoints"))
    _, v2 = load_checkpoint(os.path.join(out_dir, "F2", "checkpoints"))
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), v1, v2)
    try:
        train_and_evaluate(deblur_cfg(6), os.path.join(out_dir, "F3"),
                           train_loader_fn=lambda cfg, **kw: FakeLoader(cfg, nan_at=2, **kw),
                           eval_batches_fn=fake_eval_batches)
        nan_error = None
    except TrainingError as e:
        nan_error = str(e)
    report["F"] = {"losses": [r["train/loss"] for r in rows if "train/loss" in r],
                   "resume_max_abs_diff": max(jax.tree.leaves(diffs)), "nan_error": nan_error}
    # G: train.eval_at_start from A's weights on inverted targets (training can only hurt): the
    # starting weights are validated as step 0 and stay the best; a resumed run does not repeat it.
    class Inverted(FakeLoader):
        def __next__(self):
            b = super().__next__()
            return {**b, "target": (255 - b["target"]).astype(np.uint8)}

    _, var_a_best = load_checkpoint(os.path.join(out_dir, "A"))
    for n in (4, 6):
        config = load_config(os.path.join(REPO, "configs/tiny.py"),
                             TINY_OVERRIDES + [f"train.num_steps={n}", "train.eval_at_start=True",
                                               "train.eval_every=2", "train.checkpoint_every=2"])
        summary_g = train_and_evaluate(config, os.path.join(out_dir, "G"), train_loader_fn=Inverted,
                                       eval_batches_fn=fake_eval_batches, initial_variables=var_a_best)
    _, var_g = load_checkpoint(os.path.join(out_dir, "G"))  # its best
    g_rows = [r for r in read_jsonl(os.path.join(out_dir, "G", "metrics.jsonl")) if "val/l1" in r]
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))),
                         var_g["params"], var_a_best["params"])
    report["G"] = {"best_step": summary_g["best_step"], "val_steps": [r["step"] for r in g_rows],
                   "val_l1": [r["val/l1"] for r in g_rows], "best_vs_start": max(jax.tree.leaves(diffs))}
    # D: a NaN input at batch index 2 makes step 3's loss NaN.
    try:
        run("D", 6, nan_at=2, extra=["train.log_every=4"])
        report["nan_error"] = None
    except TrainingError as e:
        report["nan_error"] = str(e)
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return ckpt_fixture.run_script(__file__, tmp_path_factory.mktemp("train_runs"))


def test_loss_falls_and_outputs_appear(report):
    a = report["A"]
    losses = a["losses"]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    assert a["summary"]["step"] == 8
    assert a["checkpoints"] == ["4", "8"]  # keep_checkpoints=2, checkpoint_every=4
    assert len(a["best"]) == 1
    assert a["config_json"] and a["tensorboard"]
    assert [r["step"] for r in a["val_rows"]] == [4, 8]
    for row in a["val_rows"]:
        for k in ("l1", "psnr", "ssim", "static_l1", "static_psnr", "static_ssim", "l1_to_static"):
            assert np.isfinite(row[f"val/{k}"]), (k, row)
    assert a["summary"]["best_eval"]["l1"] == min(r["val/l1"] for r in a["val_rows"])


def test_resume_continues_params_and_data_order(report):
    b = report["B"]
    assert b["train_steps"] == list(range(1, 9)), b["train_steps"]  # the dead run's rows 5-6 are gone
    assert 99.0 not in b["train_losses"]
    assert b["served_1"] == [0, 1, 2, 3]
    assert b["served_2"] == [4, 5, 6, 7]  # the loader state came back from the checkpoint
    assert b["summary"]["step"] == 8
    assert report["resume_num_leaves"] > 10
    assert report["resume_max_abs_diff"] <= 1e-6, report["resume_max_abs_diff"]
    assert report["inference_config_width"] == 0.0625
    assert report["inference_keys"] == ["batch_stats", "params"]


def test_deblur_net_trains_through_the_same_loop(report):
    e = report["E"]
    assert e["summary"]["step"] == 3 and e["model"] == "deblur" and e["keys"] == ["params"]
    val = e["summary"]["last_eval"]
    assert {"l1", "psnr", "ssim", "blurred_l1", "blurred_psnr", "blurred_ssim", "l1_to_blurred"} == set(val)
    assert all(np.isfinite(v) for v in val.values())


def test_deblur_loss_falls_resumes_exactly_and_stops_on_nan(report):
    f = report["F"]
    assert len(f["losses"]) == 8 and np.mean(f["losses"][-3:]) < np.mean(f["losses"][:3]), f["losses"]
    assert f["resume_max_abs_diff"] <= 1e-6, f["resume_max_abs_diff"]
    assert f["nan_error"] is not None and "non-finite loss" in f["nan_error"] and "step 3" in f["nan_error"]


def test_non_finite_loss_stops_with_training_error(report):
    assert report["nan_error"] is not None, "a NaN loss did not stop the run"
    assert "non-finite loss" in report["nan_error"] and "step 3" in report["nan_error"]


def test_eval_at_start_lets_the_starting_weights_stay_the_best(report):
    g = report["G"]
    assert g["val_steps"] == [0, 2, 4, 6]  # step 0 once, though the run was resumed at step 4
    assert g["val_l1"][0] < min(g["val_l1"][1:])  # inverted targets: every trained step is worse
    assert g["best_step"] == 0 and g["best_vs_start"] == 0.0  # the best checkpoint is the start itself


def test_a_second_run_on_a_locked_workdir_stops_at_once(tmp_path):
    """While one process holds the work directory, train_and_evaluate stops in well under 5 s naming it;
    once that process is dead (killed), its lock file is simply taken over."""
    import signal
    import subprocess
    import time

    from s2v_jax.config_utils import load_config
    from s2v_jax.errors import TrainingError
    from s2v_jax.train import train_and_evaluate
    from s2v_jax.train.workdir_lock import WorkdirLock

    workdir = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from s2v_jax.train.workdir_lock import WorkdirLock; "
                               "WorkdirLock(sys.argv[2]).acquire(); print('held', flush=True); time.sleep(60)",
                               REPO, workdir], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        config = load_config(os.path.join(REPO, "configs/tiny.py"), TINY_OVERRIDES + ["train.num_steps=2"])
        t0 = time.time()
        with pytest.raises(TrainingError, match=f"in use by another training run \\(process {holder.pid} "):
            train_and_evaluate(config, workdir, train_loader_fn=FakeLoader, eval_batches_fn=fake_eval_batches)
        assert time.time() - t0 < 5
        assert not os.path.exists(os.path.join(workdir, "checkpoints"))  # nothing of the first run touched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with WorkdirLock(workdir):  # the dead holder's lock file is taken over
        assert open(os.path.join(workdir, ".s2v_train.lock")).read().startswith(f"process {os.getpid()} ")


def test_real_pipeline_is_built_then_used(monkeypatch):
    """Without injected loaders the task's own are used, after its dataset is built."""
    from s2v_jax.config_utils import load_config
    from s2v_jax.data import input_pipeline
    from s2v_jax.train import data_functions

    calls = []
    monkeypatch.setattr(input_pipeline, "ensure_dataset", lambda config: calls.append(config.data.dataset))
    monkeypatch.setattr(input_pipeline, "create_train_loader", FakeLoader)
    monkeypatch.setattr(input_pipeline, "create_eval_batches", fake_eval_batches)
    config = load_config(os.path.join(REPO, "configs/tiny.py"))
    assert data_functions(config) == (FakeLoader, fake_eval_batches)
    assert calls == ["synthetic_talking_faces/small"]  # the dataset is built (if needed) first
    calls.clear()
    assert data_functions(config, FakeLoader, fake_eval_batches) == (FakeLoader, fake_eval_batches)
    assert calls == []  # injected loaders: no dataset build


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    result = _run_scenario(sys.argv[1])
    with open(os.path.join(sys.argv[1], "report.json"), "w") as f:
        json.dump(result, f, indent=1)


def test_config_task_and_model_name_must_agree():
    from s2v_jax.config_utils import load_config
    from s2v_jax.errors import ConfigError
    from s2v_jax.train.tasks import get_task, task_name

    cfg = load_config(os.path.join(REPO, "configs", "tiny.py"), ["model.name=deblur"])
    with pytest.raises(ConfigError, match="config.task 'generator' trains a 'speech2vid' model"):
        get_task(cfg)
    assert task_name(load_config(os.path.join(REPO, "configs", "deblur.py"))) == "deblur"
    older = load_config(os.path.join(REPO, "configs", "syncnet.py"))
    del older["task"]  # a config written before config.task: its model names the task
    assert task_name(older) == "sync"
