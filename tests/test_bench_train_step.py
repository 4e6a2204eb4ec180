"""benchmarks/bench_train_step.py at a tiny size: its JSON lines parse, the steps are timed and
actually train (the parameters move by more than weight decay alone could move them)."""

import importlib.util
import json
import math
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train_step",
                                                  os.path.join(REPO, "benchmarks", "bench_train_step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jax_train_step_bench_at_tiny_size(capsys):
    # v201's shape (five stills, bilinear decoder, 109 px output, target resized) at 1/16 width;
    # no weight decay and a large rate, so only the gradient step can move a parameter by 1e-4
    rows = _bench().main(["--config", os.path.join(REPO, "configs", "v201.py"), "--set", "model.width=0.0625",
                          "--set", "train.weight_decay=0.0", "--set", "train.learning_rate=0.05",
                          "--batch", "2", "--iters", "1", "--dtypes", "float32", "--no-torch"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert printed == rows
    (row,) = [r for r in rows if r.get("impl") == "s2v_jax"]
    assert row["batch"] == 2 and row["dtype"] == "float32" and row["steps"] == 2
    assert row["samples_per_s"] > 0 and math.isclose(row["samples_per_s"], 2 * row["steps_per_s"])
    assert row["compile_s"] > 0 and row["machine"] and row["config"] == os.path.join("configs", "v201.py")
    assert 0.0 < row["loss"] < 1.0
    assert row["param_delta"] > 1e-4, row


def test_torch_peer_step_trains():
    pytest.importorskip("torch")
    bench = _bench()
    config = bench.load(os.path.join(REPO, "configs", "v201.py"), 2, None,
                        ["train.weight_decay=0.0", "train.learning_rate=0.05"])
    assert bench.is_v201_shaped(config)
    assert not bench.is_v201_shaped(bench.load(os.path.join(REPO, "configs", "tiny.py")))
    row = bench.bench_torch(config, 2, "float32", iters=1, warmup=0)
    assert row["impl"] == "pytorch" and row["batch"] == 2 and row["samples_per_s"] > 0
    assert 0.0 < row["loss"] < 1.0
    assert row["param_delta"] > 1e-4, row
