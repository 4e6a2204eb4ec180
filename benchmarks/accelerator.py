"""One command for the accelerator figures: generation frames/s against batch size, train-step
samples/s and model FLOPs utilisation, loader samples/s, and a short real-data training run, written
to one JSON file. Runs on a GPU with that machine's own jax (no mediapipe needed: the data is a
TFDS dataset built beforehand and carried over), and on CPU at tiny sizes (`--tiny`), which is how
it is tested before GPU time is spent.

    python benchmarks/accelerator.py --out reports/accelerator.json --data-dir data/tfds_small \\
        --dataset registered_faces/folder
    python benchmarks/accelerator.py --tiny --out /tmp/acc.json          # CPU check, about 2 minutes

The carried dataset (built here, with the face tools; 55 MB of records, under the device tool's 64 MB):
four small sources of the real corpus, 14 MB of video (`../shared/data/real/corpus/{lrs2,styletalk,
voxceleb2_style,grid}`, licences in its README: LRS2 research-only), as `registered_faces/folder` (a top-level folder is one identity; md5 split), 70 s to
build on the 2-core CPU (2026-12-07):

    mkdir -p data/acc_videos && for s in lrs2 styletalk voxceleb2_style grid; do \\
        ln -sfn "$(realpath ../shared/data/real/corpus/$s)" data/acc_videos/$s; done
    s2v build-dataset registered_faces/folder --manual-dir data/acc_videos --data-dir data/tfds_small
    # carry data/tfds_small/registered_faces (not data/tfds_small/downloads, a 77 MB cache)

Checked on CPU with it: `--tiny --data-dir data/tfds_small --skip generation,train`: the loader at
553 / 690 samples/s (0 / 2 workers) and a 20-step real-data run whose loss falls, in 21 s.

Model FLOPs utilisation = 3 x forward FLOPs per sample (XLA's count of the model's forward pass,
as `s2v model-summary` reports it; backward ~ 2 x forward) x samples/s / the device's peak (bf16
dense peak for bf16 rows, the fp32 peak for fp32; --peak-tflops overrides, else a table by device
kind). Every section is timed after a warm-up call, with block_until_ready.
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, HERE]

from bench_generate import _time as _timed  # noqa: E402  (warm-up calls, then the mean of timed calls)

# Dense peak TFLOP/s by device kind (vendor figures, without sparsity): (bf16, fp32 / tf32 off).
PEAKS = {"H200": (989.0, 67.0), "H100": (989.0, 67.0), "A100": (312.0, 19.5), "L4": (121.0, 30.0)}


def peak_tflops(dtype: str, override: float = 0.0):
    import jax

    if override:
        return override
    kind = jax.devices()[0].device_kind
    for name, (bf16, fp32) in PEAKS.items():
        if name in kind:
            return bf16 if dtype == "bfloat16" else fp32
    return None  # CPU or unknown: no MFU


def load(config_path: str, overrides):
    from s2v_jax.config_utils import load_config

    return load_config(os.path.join(REPO, config_path), list(overrides))


def generation(config_path, overrides, batches, dtypes, iters):
    import jax
    import jax.numpy as jnp

    from s2v_jax.inference.generator import FrameGenerator
    from s2v_jax.models import build_model, input_shapes

    config = load(config_path, overrides)
    model = build_model(config)
    shapes = input_shapes(config)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1,) + shapes["mfcc"]),
                                    jnp.zeros((1,) + shapes["identity"]))
    rows = []
    for dtype in dtypes:
        for batch in batches:
            gen = FrameGenerator(config, variables, batch_size=batch, dtype=dtype)
            k = config.model.num_identity_images
            ident = gen.encode_identity(np.random.default_rng(0).integers(0, 255, (k, 112, 112, 3), np.uint8))
            windows = jax.device_put(np.random.default_rng(1).normal(size=(batch, 12, 35)).astype(np.float32))
            sec = _timed(lambda: gen._decode(gen.variables, windows, ident).block_until_ready(), 2, iters)
            rows.append({"config": config_path, "dtype": dtype, "batch": batch, "frames_per_s": batch / sec,
                         "ms_per_batch": sec * 1e3})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def forward_gflops_per_sample(config) -> float:
    from s2v_jax.summary import model_summary

    return float(model_summary(config)["gflops_per_frame"])


def train_steps(config_path, overrides, batches, dtypes, modes, iters, peak_override):
    import jax

    from s2v_jax.train import build_training, initial_state
    from s2v_jax.train.parallel import DataParallel

    rows = []
    for dtype in dtypes:
        config = load(config_path, list(overrides) + [f"model.dtype='{dtype}'"])
        gflops = forward_gflops_per_sample(config)
        k = int(config.model.num_identity_images)
        for mode in modes:
            for batch in batches:
                config.train.batch_size, config.train.parallel, config.train.seed = batch, mode, 0
                if batch % (DataParallel(mode).num_local_devices * jax.process_count()):
                    continue
                training = build_training(config)  # what run_train.py trains with
                dp, step = training.dp, training.train_step
                state = dp.put_state(initial_state(config, training))
                rng = np.random.default_rng(0)
                host = {"mfcc": rng.normal(size=(batch, 12, 35, 1)).astype(np.float32),
                        "identity": rng.integers(0, 255, (batch, 112, 112, 3 * k), np.uint8),
                        "target": rng.integers(0, 255, (batch, 112, 112, 3), np.uint8)}
                data = dp.shard_batch(host)  # uint8 until it is on the device
                holder = {"state": state}

                def run():
                    holder["state"], m = step(holder["state"], data)
                    jax.block_until_ready(m)

                sec = _timed(run, 2, iters)
                sps = batch / sec
                peak = peak_tflops(dtype, peak_override)
                row = {"config": config_path, "dtype": dtype, "parallel": mode, "batch": batch,
                       "devices": dp.num_local_devices, "samples_per_s": sps, "ms_per_step": sec * 1e3,
                       "forward_gflops_per_sample": gflops,
                       "model_tflops_per_s": 3 * gflops * sps / 1e3,
                       "mfu": (3 * gflops * sps / 1e3 / peak) if peak else None, "peak_tflops": peak}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def loader(config_path, overrides, workers_list, batches):
    from bench_loader import bench_loader

    rows = []
    for workers in workers_list:
        config = load(config_path, overrides)
        rows.append(bench_loader(config, workers, batches, warmup=3))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def real_training(config_path, overrides, workdir):
    from s2v_jax.train import train_and_evaluate
    from s2v_jax.train.metrics import read_jsonl

    config = load(config_path, overrides)
    t0 = time.time()
    summary = train_and_evaluate(config, workdir)
    losses = [r["train/loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "train/loss" in r]
    n = max(1, len(losses) // 5)
    return {"config": config_path, "steps": int(config.train.num_steps), "seconds": round(time.time() - t0, 1),
            "loss_first": float(np.mean(losses[:n])), "loss_last": float(np.mean(losses[-n:])),
            "loss_falls": bool(np.mean(losses[-n:]) < np.mean(losses[:n])), "last_eval": summary.get("last_eval")}


def section(report, name, fn):
    t0 = time.time()
    try:
        report[name] = fn()
    except Exception as e:  # noqa: BLE001 - one failed section must not lose the others' numbers
        report[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    report.setdefault("section_seconds", {})[name] = round(time.time() - t0, 1)
    with open(report["_out"], "w") as f:  # written after every section: a timeout keeps what is done
        json.dump({k: v for k, v in report.items() if k != "_out"}, f, indent=1, default=str)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--tiny", action="store_true", help="CPU check: tiny widths, batches and step counts")
    p.add_argument("--data-dir", default=None, help="TFDS data dir with the carried dataset (loader, real run)")
    p.add_argument("--dataset", default="registered_faces/folder")
    p.add_argument("--peak-tflops", type=float, default=0.0)
    p.add_argument("--workdir", default=None, help="real-data training work directory (default: next to --out)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: generation,train,loader,real")
    args = p.parse_args(argv)
    import jax

    skip = set(filter(None, args.skip.split(",")))
    tiny = ["model.width=0.0625"] if args.tiny else []
    gen_batches = [4, 8] if args.tiny else [64, 256, 1024, 4096]
    train_batches = [4] if args.tiny else [64, 256]
    iters = 2 if args.tiny else 10
    report = {"_out": args.out, "date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
              "python": platform.python_version(), "jax": jax.__version__, "backend": jax.default_backend(),
              "devices": [d.device_kind for d in jax.devices()], "cpus": os.cpu_count(), "tiny": args.tiny}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if "generation" not in skip:
        section(report, "generation", lambda: [r for c in ("configs/default.py", "configs/v201.py")
                                               for r in generation(c, tiny, gen_batches,
                                                                   ("float32", "bfloat16"), iters)])
    if "train" not in skip:
        section(report, "train", lambda: [r for c in ("configs/default.py", "configs/v201.py")
                                          for r in train_steps(c, tiny, train_batches, ("float32", "bfloat16"),
                                                               ("pmap", "mesh"), iters, args.peak_tflops)])
    data = [f"data.data_dir={args.data_dir}", f"data.dataset={args.dataset}"] if args.data_dir else []
    if "loader" not in skip and args.data_dir:
        workers = [0, 2] if args.tiny else [0, min(16, os.cpu_count() or 1)]
        section(report, "loader", lambda: loader("configs/tiny.py", data + ["train.batch_size=64"], workers,
                                                 10 if args.tiny else 60))
    if "real" not in skip and args.data_dir:
        steps = 20 if args.tiny else 1500
        workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.out)), "accelerator_run")
        extra = ["train.eval_every=0", f"train.num_steps={steps}", "train.progress_bar=False",
                 "train.log_every=10", f"train.checkpoint_every={steps}"]
        section(report, "real_training", lambda: real_training(
            "configs/tiny.py" if args.tiny else "configs/default.py",
            data + tiny + extra + ([] if args.tiny else ["train.batch_size=256", "model.dtype='bfloat16'"]),
            workdir))
    print(json.dumps({k: v for k, v in report.items() if k not in ("_out",)}, default=str)[:2000])


if __name__ == "__main__":
    main()
