"""Generation speed: frames/s of the generator with the identity cached.

Runs s2v_jax (XLA) and, if torch is installed, the PyTorch peer of the same v201
generator in the same process, float32 and bfloat16, at the same batch size,
so the ratio is measured under identical conditions. Prints one JSON line per
measurement.

    python benchmarks/bench_generate.py --config configs/v201.py --batch 64
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _time(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def bench_jax(config_path, batch, dtype, iters):
    import jax
    import jax.numpy as jnp

    from s2v_jax.config_utils import load_config
    from s2v_jax.inference.generator import FrameGenerator
    from s2v_jax.models import build_model, input_shapes

    config = load_config(config_path)
    model = build_model(config)
    shapes = input_shapes(config)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1,) + shapes["mfcc"]),
                                    jnp.zeros((1,) + shapes["identity"]))
    gen = FrameGenerator(config, variables, batch_size=batch, dtype=dtype)
    k = config.model.num_identity_images
    ident = gen.encode_identity(np.random.default_rng(0).integers(0, 255, (k, 112, 112, 3), dtype=np.uint8))
    windows = jnp.asarray(np.random.default_rng(1).normal(size=(batch, 12, 35)).astype(np.float32) * 10)
    fn = lambda: gen._decode(gen.variables, windows, ident).block_until_ready()  # noqa: E731
    sec = _time(fn, 2, iters)
    return {"impl": "s2v_jax", "jax": jax.__version__, "backend": jax.default_backend(), "dtype": dtype,
            "batch": batch, "frames_per_s": batch / sec, "ms_per_batch": sec * 1e3}


def bench_torch(batch, dtype, iters, tuned: bool = False):
    """The PyTorch peer as ported (`tuned=False`), or at its best here (`tuned`): channels-last tensors
    (oneDNN's faster layout on this CPU, benchmarks/profile_layers.py) and the identity skips' share of
    each conv computed once per face, as s2v_jax's decoder does (`torch_v201.Decoder(split_skips=True)`)."""
    import torch
    from torch_v201 import V201

    torch.manual_seed(0)
    model = V201().eval()
    fmt = torch.channels_last if tuned else torch.contiguous_format
    model = model.to(memory_format=fmt)
    with torch.inference_mode():
        ident = model.identity(torch.rand(1, 15, 112, 112).contiguous(memory_format=fmt))
        mfcc = torch.randn(batch, 1, 12, 35) * 10

        def fn():
            if dtype == "bfloat16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = model.generate_from_identity(mfcc, ident, split_skips=tuned)
            else:
                out = model.generate_from_identity(mfcc, ident, split_skips=tuned)
            (out.float() * 255).to(torch.uint8)  # same uint8 output as s2v_jax

        sec = _time(fn, 2, iters)
    return {"impl": "pytorch", "variant": "tuned" if tuned else "port", "torch": torch.__version__, "dtype": dtype,
            "batch": batch, "threads": torch.get_num_threads(), "frames_per_s": batch / sec, "ms_per_batch": sec * 1e3}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/v201.py")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args()
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "config": args.config}
    best = {}
    for dtype in args.dtypes.split(","):
        rows = [bench_jax(args.config, args.batch, dtype, args.iters)]
        if not args.no_torch:
            try:
                rows += [bench_torch(args.batch, dtype, args.iters, tuned=t) for t in (False, True)]
            except ImportError:
                print(json.dumps({"note": "torch not installed; peer skipped"}))
        for r in rows:
            print(json.dumps({**meta, **r}), flush=True)
        for r in rows[1:]:
            print(json.dumps({"dtype": dtype, "pytorch_variant": r["variant"],
                              "s2v_jax_over_pytorch": rows[0]["frames_per_s"] / r["frames_per_s"]}), flush=True)
        best[dtype] = rows
    if not args.no_torch and all(len(r) > 1 for r in best.values()):
        jax_best = max(r[0]["frames_per_s"] for r in best.values())
        torch_best = max(x["frames_per_s"] for r in best.values() for x in r[1:])
        print(json.dumps({"best_against_best": True, "s2v_jax_frames_per_s": jax_best,
                          "pytorch_frames_per_s": torch_best, "s2v_jax_over_pytorch": jax_best / torch_best}),
              flush=True)


if __name__ == "__main__":
    main()
