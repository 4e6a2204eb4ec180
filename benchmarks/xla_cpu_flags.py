"""Does any XLA:CPU flag of the installed jaxlib give a bfloat16 convolution or matrix product faster
than float32 (issue #34)? Each flag set runs in its own process (XLA reads XLA_FLAGS once), in turns,
`--rounds` times: one v201 decoder convolution (conv26a's shape: batch 64, 26x26, 512 -> 256, 3x3,
with its ReLU) and a 2048^3 matrix product, float32 and bfloat16, GFLOP/s, one JSON line a run.

The flag sets: none; oneDNN in XLA's CPU backend (`--xla_cpu_use_onednn`, and its library fusion of
dots); XNNPACK (`--xla_cpu_use_xnnpack`, and its greedy graph fusion). jaxlib 0.7.1 carries all of
them (`strings libjax_common.so`); what they change is measured here.

    python benchmarks/xla_cpu_flags.py --rounds 2
"""

import argparse
import json
import os
import subprocess
import sys
import time

FLAG_SETS = ["",
             "--xla_cpu_use_onednn=true",
             "--xla_cpu_experimental_onednn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
             "--xla_cpu_use_xnnpack=true",
             "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY"]


def probe(iters: int) -> dict:
    """GFLOP/s of the convolution and the matrix product in both dtypes, in this process."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def conv(x, k):
        return jax.nn.relu(jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                                        dimension_numbers=("NHWC", "HWIO", "NHWC")))

    def timed(f, *args):
        f(*args).block_until_ready()
        t = time.perf_counter()
        for _ in range(iters):
            f(*args).block_until_ready()
        return (time.perf_counter() - t) / iters

    rng = np.random.default_rng(0)
    out = {}
    for dt in ("float32", "bfloat16"):
        x = jnp.asarray(rng.standard_normal((64, 26, 26, 512)), dt)
        k = jnp.asarray(rng.standard_normal((3, 3, 512, 256)) * 0.02, dt)
        out[f"conv_{dt}_gflops"] = round(2 * 64 * 26 * 26 * 512 * 256 * 9 / 1e9 / timed(jax.jit(conv), x, k), 1)
        a = jnp.asarray(rng.standard_normal((2048, 2048)), dt)
        b = jnp.asarray(rng.standard_normal((2048, 2048)), dt)
        out[f"dot_{dt}_gflops"] = round(2 * 2048 ** 3 / 1e9 / timed(jax.jit(lambda p, q: jax.nn.relu(p @ q)), a, b), 1)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(probe(args.iters)))
        return
    import jax

    for r in range(args.rounds):
        for flags in FLAG_SETS:
            env = dict(os.environ, XLA_FLAGS=flags)
            res = subprocess.run([sys.executable, __file__, "--child", "--iters", str(args.iters)], env=env,
                                 capture_output=True, text=True, timeout=600)
            line = res.stdout.strip().splitlines()[-1] if res.returncode == 0 and res.stdout.strip() else "{}"
            print(json.dumps({"round": r, "flags": flags or "(none)", "jax": jax.__version__, **json.loads(line),
                              **({} if res.returncode == 0 else {"error": res.stderr.strip().splitlines()[-1:]})}),
                  flush=True)


if __name__ == "__main__":
    main()
