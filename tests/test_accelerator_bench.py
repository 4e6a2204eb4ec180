"""benchmarks/accelerator.py at tiny sizes on CPU (how it is checked before GPU time is spent):
every section writes its rows to the one JSON file, with the fields BENCHMARKS.md reports."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_accelerator_benchmark_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "acc.json"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "accelerator.py"), "--tiny",
                           "--out", str(out), "--skip", "loader,real"], capture_output=True, text=True, env=env,
                          timeout=1700)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    gen, train = report["generation"], report["train"]
    assert {(r["config"], r["dtype"]) for r in gen} == {(c, d) for c in ("configs/default.py", "configs/v201.py")
                                                        for d in ("float32", "bfloat16")}
    assert all(r["frames_per_s"] > 0 for r in gen)
    assert {r["parallel"] for r in train} == {"pmap", "mesh"} and all(r["devices"] == 2 for r in train)
    assert all(r["samples_per_s"] > 0 and r["forward_gflops_per_sample"] > 0 for r in train)
    assert all(r["mfu"] is None for r in train)  # CPU: no peak to divide by
