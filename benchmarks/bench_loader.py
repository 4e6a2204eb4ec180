"""Input-pipeline throughput: samples/s of `create_train_loader` with 0 and N
grain workers, plus the per-sample cost of one random record read and of
decoding + augmenting a sample. One JSON line per measurement.

    python benchmarks/bench_loader.py --config configs/tiny.py --data-dir /tmp/s2v_tfds

Builds config.data.dataset first if absent (synthetic_talking_faces/small for
configs/tiny.py: about 1-2 min on 2 cores) and reports how long that took.
"""

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from s2v_jax.config_utils import load_config  # noqa: E402
from s2v_jax.data import input_pipeline  # noqa: E402


def emit(**row):
    row.update(machine=f"{platform.machine()} {os.cpu_count()} cpus", python=platform.python_version(),
               load_avg_1min=round(os.getloadavg()[0], 1))  # the 2 cores are shared: read rates with it
    print(json.dumps(row), flush=True)


def bench_loader(config, workers: int, batches: int, warmup: int) -> dict:
    config.data.num_workers = workers
    loader = input_pipeline.create_train_loader(config)
    start = time.perf_counter()
    for _ in range(warmup):  # worker start-up and first reads
        next(loader)
    first = time.perf_counter() - start
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += len(next(loader)["target"])
    seconds = time.perf_counter() - start
    loader.close()
    return {"num_workers": workers, "samples_per_s": round(n / seconds, 1), "batches": batches,
            "warmup_s": round(first, 2)}


def bench_parts(config, n: int = 200) -> dict:
    """Single-thread cost of one sample: the record read, then decode + augment."""
    source = input_pipeline._samples(config, "train")
    make = input_pipeline.MakeSample(int(config.model.num_identity_images),
                                     int(config.data.min_identity_distance), bool(config.data.augment))
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(source), n)
    source[int(idx[0])]
    start = time.perf_counter()
    elements = [source[int(i)] for i in idx]
    read = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for e in elements:
        make.random_map(e, rng)
    decode = (time.perf_counter() - start) / n
    return {"read_ms": round(read * 1e3, 2), "decode_augment_ms": round(decode * 1e3, 2),
            "num_samples": len(source)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/tiny.py")
    parser.add_argument("--data-dir", default=None, help="overrides config.data.data_dir")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("overrides", nargs="*", metavar="FIELD=VALUE")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    if args.data_dir:
        config.data.data_dir = args.data_dir
    start = time.perf_counter()
    builder = input_pipeline.ensure_dataset(config)
    common = {"bench": "loader", "dataset": config.data.dataset, "batch_size": int(config.train.batch_size),
              "num_identity_images": int(config.model.num_identity_images), "augment": bool(config.data.augment)}
    meta = builder.info.metadata or {}
    emit(**common, what="ensure_dataset", seconds=round(time.perf_counter() - start, 1),
         summary=meta.get("summary"))
    emit(**common, what="per_sample_single_thread", **bench_parts(config))
    for w in args.workers:
        emit(**common, what="train_loader", **bench_loader(config, w, args.batches, args.warmup))


if __name__ == "__main__":  # grain workers re-import this module
    main()
