"""Where generation time goes (issue #34): each layer of the v201 decoder timed alone, XLA against
PyTorch, float32 and bfloat16, at the batch `bench_generate.py` uses, as GFLOP/s beside this CPU's
peaks, in one process.

The decoder is what generation runs per frame (the identity is encoded once): a 1x1 fc, then
bilinear up-sampling (align_corners: the decoder's own `layers.resize_bilinear_align_corners`, two
lerps by static indices since 2026-12-07; two dense matrix products before) and 3x3 convolutions at 3, 6, 12, 26, 53 and 109 px
(`benchmarks/torch_v201.py` lists them). Each convolution is timed as XLA runs it (`lax.conv` in
NHWC, the layout the library uses), as a plain matrix product of the same FLOPs (im2col: what the
convolution would cost on the dot path; in bfloat16 also with a float32 result, XLA's faster bf16
dot), and as PyTorch runs it (oneDNN; NCHW and channels-last, bfloat16 tensors as autocast uses).
The peaks: the theoretical ones from the CPU's own numbers (cores x clock
x FLOP/cycle: `--flops-per-cycle` f32 and bf16, default Zen 4's 32 and 64: two 256-bit FMA pipes;
AVX-512 BF16 dot products do twice the float32 FMA's work) and the largest square matrix product
each library reaches here.

    python benchmarks/profile_layers.py --batch 64 --iters 3
"""

import argparse
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_generate import _time as timed  # noqa: E402  (warm-up calls, then the mean of timed calls)

# (name, spatial side, in channels, out channels) of the v201 decoder's 3x3 convolutions
DECODER_CONVS = [("conv3", 3, 128, 256), ("conv6", 6, 256, 512), ("conv12", 12, 512, 256),
                 ("conv26a", 26, 512, 256), ("conv26b", 26, 256, 96), ("conv53", 53, 192, 96),
                 ("conv109a", 109, 192, 64), ("conv109b", 109, 64, 32), ("out", 109, 32, 3)]
UPSAMPLES = [("up26", 12, 26, 512), ("up53", 26, 53, 192), ("up109", 53, 109, 192)]


def conv_gflop(batch, side, cin, cout, k=3):
    return 2.0 * batch * side * side * cin * cout * k * k / 1e9


def cpu_clock_ghz():
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.lower().startswith("cpu mhz")]
        return max(mhz) / 1e3 if mhz else None
    except OSError:
        return None


def jax_rows(batch, dtypes, warmup, iters):
    import jax
    import jax.numpy as jnp

    from s2v_jax.models.layers import resize_bilinear_align_corners

    rows = []
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        dt = jnp.dtype(dtype)
        n = 2048
        a, b = (jnp.asarray(rng.normal(size=(n, n)), dt) for _ in range(2))
        mm = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
        sec = timed(lambda: mm(a, b).block_until_ready(), warmup, iters)
        rows.append({"impl": "s2v_jax", "op": "matmul2048", "dtype": dtype, "gflop": 2 * n ** 3 / 1e9,
                     "ms": sec * 1e3, "gflop_per_s": 2 * n ** 3 / 1e9 / sec})
        for name, side, cin, cout in DECODER_CONVS:
            x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), dt)
            w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) * 0.05, dt)
            conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
                x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
            patches = jnp.asarray(rng.normal(size=(batch * side * side, 9 * cin)), dt)
            wm = w.reshape(9 * cin, cout)
            dot = jax.jit(lambda p, w: jnp.dot(p, w, preferred_element_type=dt))
            dot32 = jax.jit(lambda p, w: jnp.dot(p, w, preferred_element_type=jnp.float32))
            g = conv_gflop(batch, side, cin, cout)
            ops = [("conv", lambda: conv(x, w).block_until_ready()),
                   ("conv_as_matmul", lambda: dot(patches, wm).block_until_ready())]
            if dtype != "float32":  # the product accumulated and written in float32 (XLA's faster bf16 dot)
                ops.append(("conv_as_matmul_f32_out", lambda: dot32(patches, wm).block_until_ready()))
            for op, fn in ops:
                sec = timed(fn, warmup, iters)
                rows.append({"impl": "s2v_jax", "op": f"{name}:{op}", "dtype": dtype, "gflop": g, "ms": sec * 1e3,
                             "gflop_per_s": g / sec})
        for name, src, dst, c in UPSAMPLES:
            x = jnp.asarray(rng.normal(size=(batch, src, src, c)), dt)
            up = jax.jit(lambda x, dst=dst: resize_bilinear_align_corners(x, (dst, dst)))  # the decoder's own
            sec = timed(lambda: up(x).block_until_ready(), warmup, iters)
            rows.append({"impl": "s2v_jax", "op": name, "dtype": dtype, "ms": sec * 1e3,
                         "mbytes_out": batch * dst * dst * c * dt.itemsize / 1e6})
    return rows


def torch_rows(batch, dtypes, warmup, iters):
    import torch
    import torch.nn.functional as F

    rows = []
    torch.manual_seed(0)
    for dtype in dtypes:
        dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
        n = 2048
        a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
        with torch.inference_mode():
            sec = timed(lambda: a @ b, warmup, iters)
            rows.append({"impl": "pytorch", "op": "matmul2048", "dtype": dtype, "gflop": 2 * n ** 3 / 1e9,
                         "ms": sec * 1e3, "gflop_per_s": 2 * n ** 3 / 1e9 / sec})
            for name, side, cin, cout in DECODER_CONVS:
                g = conv_gflop(batch, side, cin, cout)
                for layout, fmt in (("nchw", torch.contiguous_format), ("nhwc", torch.channels_last)):
                    x = torch.randn(batch, cin, side, side, dtype=dt).contiguous(memory_format=fmt)
                    w = (torch.randn(cout, cin, 3, 3, dtype=dt) * 0.05).contiguous(memory_format=fmt)
                    sec = timed(lambda: F.conv2d(x, w, padding=1), warmup, iters)
                    rows.append({"impl": "pytorch", "op": f"{name}:conv_{layout}", "dtype": dtype, "gflop": g,
                                 "ms": sec * 1e3, "gflop_per_s": g / sec})
            for name, src, dst, c in UPSAMPLES:
                x = torch.randn(batch, c, src, src, dtype=dt)
                sec = timed(lambda: F.interpolate(x, size=(dst, dst), mode="bilinear", align_corners=True),
                            warmup, iters)
                rows.append({"impl": "pytorch", "op": name, "dtype": dtype, "ms": sec * 1e3,
                             "mbytes_out": batch * dst * dst * c * x.element_size() / 1e6})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--flops-per-cycle", default="32,64",
                   help="FLOP per cycle per core, float32 and bfloat16 (default Zen 4: 32, 64)")
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)
    dtypes = args.dtypes.split(",")
    ghz, cores = cpu_clock_ghz(), os.cpu_count()
    f32_fpc, bf16_fpc = (float(x) for x in args.flops_per_cycle.split(","))
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cores": cores, "clock_ghz": ghz,
                      "peak_gflop_per_s": None if ghz is None else {"float32": cores * ghz * f32_fpc,
                                                                     "bfloat16": cores * ghz * bf16_fpc},
                      "load_avg": os.getloadavg()}), flush=True)
    rows = jax_rows(args.batch, dtypes, args.warmup, args.iters)
    if not args.no_torch:
        try:
            rows += torch_rows(args.batch, dtypes, args.warmup, args.iters)
        except ImportError:
            print(json.dumps({"impl": "pytorch", "skipped": "torch is not installed"}))
    for r in rows:
        r["batch"] = args.batch
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    # per dtype: the decoder's convolutions and up-samplings summed, each library's best layout
    for dtype in dtypes:
        for impl, ops in (("s2v_jax", ("conv",)), ("pytorch", ("conv_nchw", "conv_nhwc"))):
            conv_ms = 0.0
            for name, *_ in DECODER_CONVS:
                got = [r["ms"] for r in rows if r["impl"] == impl and r["dtype"] == dtype
                       and r["op"] in {f"{name}:{o}" for o in ops}]
                conv_ms += min(got) if got else float("nan")
            up_ms = sum(r["ms"] for r in rows if r["impl"] == impl and r["dtype"] == dtype and r["op"].startswith("up"))
            gflop = sum(conv_gflop(args.batch, s, i, o) for _, s, i, o in DECODER_CONVS)
            print(json.dumps({"summary": impl, "dtype": dtype, "conv_ms": round(conv_ms, 1),
                              "conv_gflop_per_s": round(gflop / conv_ms * 1e3, 1) if conv_ms else None,
                              "upsample_ms": round(up_ms, 1)}), flush=True)


if __name__ == "__main__":
    main()
