"""Training speed: steps/s and samples/s of one training step of the v201 generator.

The s2v_jax step is the one `run_train.py` runs, built with the library's own
objects `s2v_jax.train.loop` trains with (`build_training(config)`: the task, the
`DataParallel` of `train.parallel`, the model and the step compiled by
`dp.compile_train_step`, state donated; `initial_state`), and each step fed a
host batch through `dp.shard_batch`. The
batch is random, of the pipeline's shapes and dtypes (`'mfcc'` float32
`[b, 12, 35, 1]`, `'identity'` uint8 `[b, 112, 112, 3k]`, `'target'` uint8
`[b, 112, 112, 3]`); the step converts the images to float, runs the whole
generator in training mode (identity encoder on every sample's stills, audio
encoder, decoder; BatchNorm on batch statistics), resizes the target to the
output side (109 for v201), takes the L1 loss and applies the config's optimizer
(v201: SGD, momentum 0.9, lr 1e-5, weight decay 5e-4 on kernels). Compilation is
done ahead of time and reported apart as `compile_s`; the timed steps follow
`--warmup` untimed ones, each ended by `block_until_ready` on state and metrics.
`model.dtype` (the compute dtype; parameters stay float32) is set per `--dtypes`.

If torch is installed, its peer runs in the same process: the same v201 network
(`torch_v201.V201`, full forward incl. the identity encoder on the 15-channel
stills), train mode, the same uint8 -> float conversion and antialiased
bilinear resize of the target, L1 loss, `torch.optim.SGD` with the config's lr,
momentum and weight decay (on conv kernels only, as s2v_jax), float32 and
bfloat16 autocast, at the same batch size. The peer is v201 at full width, so it
runs only for a config of that shape. Prints one JSON line per measurement,
the ratio of samples/s per dtype, and the best s2v_jax over the best PyTorch.

    python benchmarks/bench_train_step.py --iters 3                 # configs/v201.py at its batch (64)
    python benchmarks/bench_train_step.py --batch 16 --dtypes float32
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from bench_generate import _time as _timed_steps  # noqa: E402  (warm-up calls, then the mean of timed calls)


def load(config_path, batch=None, dtype=None, overrides=()):
    """The config with `model.dtype`, `train.batch_size` (if given) and `overrides` applied."""
    from s2v_jax.config_utils import load_config

    items = list(overrides)
    if dtype is not None:
        items.append(f"model.dtype='{dtype}'")
    if batch is not None:
        items.append(f"train.batch_size={int(batch)}")
    return load_config(config_path, items)


def random_batch(config, batch: int, seed: int = 0):
    """A host batch of the generator task's keys, shapes and dtypes, random values."""
    from s2v_jax.models import input_shapes

    rng = np.random.default_rng(seed)
    shapes = input_shapes(config)
    return {"mfcc": (rng.normal(size=(batch,) + shapes["mfcc"]) * 10).astype(np.float32),
            "identity": rng.integers(0, 256, (batch,) + shapes["identity"], dtype=np.uint8),
            "target": rng.integers(0, 256, (batch, 112, 112, 3), dtype=np.uint8)}


def _max_abs_delta(before, after) -> float:
    import jax

    deltas = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))),
                          before, after)
    return max(jax.tree.leaves(deltas))


def bench_jax(config_path, batch, dtype, iters, warmup=1, overrides=()):
    import jax

    from s2v_jax.train import build_training, initial_state

    config = load(config_path, batch, dtype, overrides)
    batch = int(config.train.batch_size)
    training = build_training(config)  # the task, parallelism, model and compiled step the loop trains with
    dp = training.dp
    if training.task.name != "generator":
        raise SystemExit(f"bench_train_step times the generator task, not {training.task.name!r}")
    t0 = time.perf_counter()
    host_state = initial_state(config, training)
    params_before = jax.device_get(host_state.params)
    state = dp.put_state(host_state)
    del host_state
    init_s = time.perf_counter() - t0
    p_train = training.train_step
    host_batch = random_batch(config, batch)

    t0 = time.perf_counter()
    compiled = p_train.lower(state, dp.shard_batch(host_batch)).compile()
    compile_s = time.perf_counter() - t0

    metrics = None

    def step():
        nonlocal state, metrics
        state, metrics = compiled(state, dp.shard_batch(host_batch))
        jax.block_until_ready((state, metrics))

    sec = _timed_steps(step, warmup, iters)
    m = dp.fetch(metrics)
    params_after = dp.state_for_checkpoint(state).params
    return {"impl": "s2v_jax", "jax": jax.__version__, "backend": jax.default_backend(),
            "devices": jax.local_device_count(), "parallel": config.train.parallel, "dtype": dtype,
            "batch": batch, "steps_per_s": 1.0 / sec, "samples_per_s": batch / sec, "ms_per_step": sec * 1e3,
            "compile_s": compile_s, "init_s": init_s, "steps": warmup + iters, "loss": float(m["loss"]),
            "param_delta": _max_abs_delta(params_before, jax.device_get(params_after))}


def is_v201_shaped(config) -> bool:
    """Whether the config's generator is the network torch_v201.V201 ports (v201 at full width)."""
    m = config.model
    return (m.name == "speech2vid" and m.decoder == "bilinear" and tuple(m.skips) == ("A", "B", "C")
            and int(m.num_identity_images) == 5 and float(m.width) == 1.0 and not float(m.audio_width or 0.0)
            and not m.identity_residual and not float(m.warp or 0.0))


def bench_torch(config, batch, dtype, iters, warmup=1):
    import torch
    import torch.nn.functional as F
    from torch_v201 import V201

    t = config.train
    torch.manual_seed(0)
    model = V201().train()
    # s2v_jax's weight decay reaches conv/dense kernels only, never biases or BatchNorm
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": float(t.weight_decay)},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=float(t.learning_rate), momentum=float(t.momentum), nesterov=bool(t.nesterov))
    host = random_batch(config, batch)  # the s2v_jax batch, channels first
    mfcc = torch.from_numpy(host["mfcc"]).permute(0, 3, 1, 2).contiguous()          # [b, 1, 12, 35]
    identity = torch.from_numpy(host["identity"]).permute(0, 3, 1, 2).contiguous()  # uint8 [b, 15, 112, 112]
    target = torch.from_numpy(host["target"]).permute(0, 3, 1, 2).contiguous()      # uint8 [b, 3, 112, 112]
    params_before = [p.detach().clone() for p in model.parameters()]
    loss_value = [None]

    def step():
        ident = identity.float() / 255.0
        if dtype == "bfloat16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(mfcc, ident)
        else:
            out = model(mfcc, ident)
        out = out.float()
        tgt = F.interpolate(target.float() / 255.0, size=out.shape[2:], mode="bilinear", antialias=True,
                            align_corners=False)
        loss = (out - tgt).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_value[0] = loss.detach()

    sec = _timed_steps(step, warmup, iters)
    delta = max(float((p.detach() - q).abs().max()) for p, q in zip(model.parameters(), params_before))
    return {"impl": "pytorch", "torch": torch.__version__, "dtype": dtype, "batch": batch,
            "threads": torch.get_num_threads(), "steps_per_s": 1.0 / sec, "samples_per_s": batch / sec,
            "ms_per_step": sec * 1e3, "steps": warmup + iters, "loss": float(loss_value[0]), "param_delta": delta}


def main(argv=None):
    """Runs the benchmark, prints its JSON lines and returns them as dicts."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=os.path.join(REPO, "configs", "v201.py"))
    p.add_argument("--batch", type=int, default=None, help="global batch (default: the config's train.batch_size)")
    p.add_argument("--iters", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps after compilation")
    p.add_argument("--dtypes", default="float32,bfloat16", help="model.dtype values (compute dtype)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="config override, e.g. model.width=0.25 (repeatable)")
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)
    config = load(args.config, args.batch, None, args.set)
    batch = int(config.train.batch_size)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "config": os.path.relpath(args.config, REPO)}
    if args.set:
        meta["overrides"] = args.set
    lines = []

    def emit(row):
        lines.append(row)
        print(json.dumps(row), flush=True)

    use_torch = not args.no_torch
    if use_torch and not is_v201_shaped(config):
        emit({"note": "the PyTorch peer is v201 at full width and this config's generator is not; peer skipped"})
        use_torch = False
    if use_torch and config.train.optimizer != "sgd":
        emit({"note": f"the PyTorch peer trains with SGD, the config with {config.train.optimizer!r}; peer skipped"})
        use_torch = False
    best = {}
    for dtype in args.dtypes.split(","):
        rows = [bench_jax(args.config, batch, dtype, args.iters, args.warmup, args.set)]
        if use_torch:
            try:
                rows.append(bench_torch(config, batch, dtype, args.iters, args.warmup))
            except ImportError:
                emit({"note": "torch not installed; peer skipped"})
                use_torch = False
        for r in rows:
            emit({**meta, **r})
            if r["samples_per_s"] > best.get(r["impl"], {}).get("samples_per_s", 0.0):
                best[r["impl"]] = r
        if len(rows) == 2:
            emit({"dtype": dtype, "s2v_jax_over_pytorch": rows[0]["samples_per_s"] / rows[1]["samples_per_s"]})
    if len(best) == 2:
        jx, pt = best["s2v_jax"], best["pytorch"]
        emit({"best_s2v_jax": jx["dtype"], "best_pytorch": pt["dtype"],
              "best_s2v_jax_over_best_pytorch": jx["samples_per_s"] / pt["samples_per_s"]})
    return lines


if __name__ == "__main__":
    main()
