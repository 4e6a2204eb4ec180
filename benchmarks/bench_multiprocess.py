"""Multi-process training on one machine, as a pod or a SLURM job runs it: two processes on localhost
(`JAX_COORDINATOR_ADDRESS`, CPU collectives over gloo, 2 simulated devices each) against one process
with 4 devices, the tiny config on the synthetic tiny corpus, under pmap and mesh. Prints one JSON line
per run (wall time, samples/s from process 0's metrics) and per mode the pair's agreement with the
one-process run (largest training-loss and parameter difference).

    python benchmarks/bench_multiprocess.py --steps 48            # about 2 minutes on 2 idle cores

On 2 cores the two processes share the cores the one process has alone, and each step crosses
processes through gloo: the figure here is the cost of that exchange, not a cluster's speed.
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_argv(data_dir, workdir, parallel, steps, every=None, keep=None):
    """run_train.py on the tiny config and corpus, global batch 8, loss logged every 4 steps, validation and
    a checkpoint every `every` steps (default: at the end), `keep` checkpoints kept (default: the config's).
    tests/test_multiprocess.py starts its jobs with it too."""
    every = steps if every is None else every
    argv = [sys.executable, os.path.join(REPO, "run_train.py"), "--config", os.path.join(REPO, "configs", "tiny.py"),
            "--workdir", str(workdir), f"--config.data.data_dir={data_dir}",
            "--config.data.dataset=synthetic_talking_faces/tiny", "--config.data.num_workers=0",
            f"--config.train.num_steps={steps}", "--config.train.batch_size=8", "--config.train.log_every=4",
            f"--config.train.eval_every={every}", f"--config.train.checkpoint_every={every}",
            "--config.train.eval_batches=2"]
    if keep is not None:
        argv.append(f"--config.train.keep_checkpoints={keep}")
    return argv + ["--config.train.progress_bar=False", f"--config.train.parallel={parallel}",
                   "--config.train.early_stopping_patience=0"]


def job_env(devices, xla_flags="", **extra):
    """This environment with `devices` simulated CPU devices (and `xla_flags`) and `extra` set; the
    multi-process variables that `extra` does not set are removed."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {xla_flags}".strip(),
               **extra)
    for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        if k not in extra:
            env.pop(k, None)
    return env


def run(data_dir, workdir, parallel, steps, processes):
    """Trains once; (wall seconds, {step: loss}, samples/s of process 0's last logged step)."""
    t0 = time.perf_counter()
    if processes == 1:
        procs = [subprocess.Popen(train_argv(data_dir, workdir, parallel, steps), cwd=REPO, env=job_env(4),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)]
    else:
        port = free_port()
        procs = [subprocess.Popen(train_argv(data_dir, workdir, parallel, steps), cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=job_env(2, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                                           JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i)))
                 for i in range(processes)]
    errs = [p.communicate(timeout=1200)[1] for p in procs]
    wall = time.perf_counter() - t0
    for p, err in zip(procs, errs):
        if p.returncode != 0:
            raise SystemExit(f"{parallel}, {processes} process(es) failed:\n{err[-3000:]}")
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    losses = {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}
    rates = [r["train/samples_per_sec"] for r in rows if "train/samples_per_sec" in r]
    return wall, losses, (rates[-1] if rates else None)


def final_params(workdir):
    """The parameters of the work directory's latest checkpoint."""
    from s2v_jax.train.checkpointing import load_checkpoint

    return load_checkpoint(os.path.join(str(workdir), "checkpoints"))[1]


def max_diff(a, b) -> float:
    """The largest absolute difference between two parameter trees."""
    import jax

    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--modes", default="pmap,mesh")
    p.add_argument("--data-dir", default=None, help="where synthetic_talking_faces/tiny is (built if absent)")
    args = p.parse_args(argv)
    import tfds_builders

    tmp = tempfile.mkdtemp(prefix="s2v_mp_")
    data_dir = args.data_dir or os.path.join(tmp, "tfds")
    tfds_builders.build("synthetic_talking_faces/tiny", data_dir)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "steps": args.steps, "global_batch": 8,
            "date": time.strftime("%Y-%m-%d")}
    for mode in args.modes.split(","):
        out = {}
        for processes in (1, 2):
            workdir = os.path.join(tmp, f"{mode}_{processes}")
            wall, losses, rate = run(data_dir, workdir, mode, args.steps, processes)
            out[processes] = (workdir, losses)
            print(json.dumps({**meta, "parallel": mode, "processes": processes, "devices": 4, "wall_s": round(wall, 1),
                              "samples_per_s": rate}), flush=True)
        (w1, l1), (w2, l2) = out[1], out[2]
        print(json.dumps({"parallel": mode, "max_loss_diff": max(abs(l1[k] - l2[k]) for k in l1),
                          "max_param_diff": max_diff(final_params(w1), final_params(w2))}), flush=True)


if __name__ == "__main__":
    main()
