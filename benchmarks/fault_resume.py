"""Fault run: kill -9 a short training at random moments, N times, resume it each time, and check
that the final parameters equal an uninterrupted run's (the toy sync-expert task of
tests/test_syncnet.py: in-memory tracks, a few seconds per start besides compilation).

    python benchmarks/fault_resume.py --kills 10 --out reports/fault_resume.json
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 300
OVERRIDES = [f"train.num_steps={STEPS}", "train.checkpoint_every=10", "train.keep_checkpoints=3",
             "train.schedule='constant'", "train.eval_every=0", "train.log_every=1"]


def worker(workdir: str) -> None:
    sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
    from test_syncnet import toy_config, toy_tracks

    from s2v_jax.data import sync_samples
    from s2v_jax.train import train_and_evaluate

    tracks = toy_tracks(6, 40, 0)
    fns = sync_samples.array_data_fns(tracks, tracks)
    train_and_evaluate(toy_config(OVERRIDES), workdir, train_loader_fn=fns[0], eval_batches_fn=fns[1])


def _latest(workdir: str) -> int:
    d = os.path.join(workdir, "checkpoints")
    steps = [int(n) for n in os.listdir(d) if n.isdigit()] if os.path.isdir(d) else []
    return max(steps) if steps else 0


def _logged_step(workdir: str) -> int:
    try:
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            lines = f.read().strip().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


def params(workdir: str):
    sys.path.insert(0, REPO)
    from s2v_jax.train.checkpointing import load_checkpoint

    return load_checkpoint(os.path.join(workdir, "checkpoints"))[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker)
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="s2v_fault_")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"]
    t0 = time.time()
    subprocess.run(cmd + [os.path.join(root, "whole")], check=True, capture_output=True)
    first = time.time() - t0
    faulty = os.path.join(root, "faulty")
    kills = []
    for i in range(args.kills):
        # Each kill lands mid-training: once the run has logged a step past a random target drawn
        # beyond its last checkpoint (so kills fall between, and during, checkpoint writes), plus
        # a random 0-1.5 s.
        done = _latest(faulty)
        if done >= STEPS:
            break
        target = min(STEPS - 1, (done or 0) + rng.randint(3, 25))
        proc = subprocess.Popen(cmd + [faulty], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.time()
        while proc.poll() is None and _logged_step(faulty) < target:
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            kills.append({"kill": i, "note": "finished before the kill"})
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append({"kill": i, "after_s": round(time.time() - start, 1), "target_step": target,
                      "logged_step": _logged_step(faulty), "latest_checkpoint": _latest(faulty)})
    subprocess.run(cmd + [faulty], check=True, capture_output=True)
    import jax
    import numpy as np

    a, b = params(os.path.join(root, "whole")), params(faulty)
    diff = max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))),
                                            a, b)))
    report = {"steps": STEPS, "kills": kills, "max_abs_param_diff": diff, "equal": diff <= 1e-6,
              "uninterrupted_run_s": round(first, 1), "total_s": round(time.time() - t0, 1)}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
