"""Time to score a clip with the judge (`s2v sync`): the whole command in a fresh process, and its
parts in process (judge loading, face tracking, the judge itself: first call with compilation,
then again).

    python benchmarks/bench_sync.py --video clip_10s.mp4
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--video", required=True)
    p.add_argument("--checkpoint", default=None)
    args = p.parse_args()
    cmd = [sys.executable, "-m", "s2v_jax.cli", "sync", "--video", args.video, "--json"]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    command_s = time.time() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    from s2v_jax.evaluation.sync_expert import SyncExpert, score_video

    t0 = time.perf_counter()
    expert = SyncExpert.from_checkpoint(args.checkpoint)
    load_s = time.perf_counter() - t0
    first = score_video(expert, args.video)
    again = score_video(expert, args.video)
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpus", "video": args.video,
                      "frames": first["frames"], "command_s": round(command_s, 2), "judge_load_s": round(load_s, 2),
                      "first": first["seconds"], "again": again["seconds"],
                      "result": json.loads(proc.stdout)}, indent=1))


if __name__ == "__main__":
    main()
