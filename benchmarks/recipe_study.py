"""Which training recipe gets the tiny identity-residual model off the still?

Trains the tiny model (configs/tiny.py + identity_residual) on a fixed set of
in-memory batches from the real loader, so recipes differ only in optimizer
and loss, and prints validation numbers every `--steps // 6` steps:
full-frame L1 vs the static baseline, L1 in the mouth box (rows 60-80,
columns 28-84 of the registered crop), the correlation between the model's
mouth change and the real one (mean darkening of the box relative to the
still, across validation samples), and the mean |output - still|.

    python benchmarks/recipe_study.py --data-dir D --steps 300 --optimizer sgd --loss l1 --lr 0.3
    python benchmarks/recipe_study.py --data-dir D --steps 600 --optimizer adam --loss l1 --mse-warmup 300 --lr 1e-3

`--oracle` replaces the MFCC input with the true mouth openness (synthetic
ground truth), to separate "cannot hear" from "cannot draw". D is a TFDS data
dir holding synthetic_talking_faces/small (built on first use). Results:
BENCHMARKS.md, "Why the quickstart recipe".
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

MOUTH = (slice(60, 80), slice(28, 84))


def load_batches(data_dir: str, train_batches: int, val_batches: int):
    from s2v_jax.config_utils import load_config
    from s2v_jax.data import input_pipeline

    cfg = load_config("configs/tiny.py", [f"data.data_dir={data_dir}"])
    input_pipeline.ensure_dataset(cfg)
    loader = input_pipeline.create_train_loader(cfg, debug=True)
    train = [next(loader) for _ in range(train_batches)]
    return train, input_pipeline.create_eval_batches(cfg, num_batches=val_batches, debug=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--loss", choices=("l1", "mse"), default="l1", help="loss after the warm-up")
    p.add_argument("--mse-warmup", type=int, default=0, help="first steps on squared error")
    p.add_argument("--lr", type=float, default=0.3)
    p.add_argument("--oracle", action="store_true", help="feed the true mouth openness instead of MFCCs")
    p.add_argument("--train-batches", type=int, default=75)
    p.add_argument("--val-batches", type=int, default=16)
    a = p.parse_args(argv)

    from s2v_jax.config_utils import load_config
    from s2v_jax.models import build_model
    from s2v_jax.train import steps
    from s2v_jax.train.state import create_train_state
    from s2v_jax.train.tasks import GeneratorTask, get_task

    cfg = load_config("configs/tiny.py", ["model.identity_residual=True", f"train.optimizer='{a.optimizer}'",
                                          f"train.learning_rate={a.lr}", "train.nesterov=True",
                                          "train.weight_decay=0.0", f"train.mse_warmup_steps={a.mse_warmup}"])
    train, val = load_batches(a.data_dir, a.train_batches, a.val_batches)
    if a.oracle:  # a constant "spectrogram" whose value is the openness (~zero-mean like MFCCs)
        for b in train + val:
            b["mfcc"] = np.broadcast_to(b["gt_mouth_open"][:, None, None, None] * 3 - 0.6,
                                        b["mfcc"].shape).astype(np.float32).copy()
    model = build_model(cfg)
    state = create_train_state(cfg, model, jax.random.PRNGKey(0), get_task(cfg))
    # --loss mse: squared error throughout (an MSE warm-up as long as the run)
    task = get_task(cfg) if a.loss == "l1" else GeneratorTask(mse_warmup_steps=1 << 30)
    step = jax.jit(steps.make_train_step(cfg, task))

    @jax.jit
    def predict(state, b):
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        return model.apply(variables, b["mfcc"], b["identity"].astype(jnp.float32) / 255)

    def validate(state):
        out, tgt, still = [], [], []
        for b in val:
            out.append(np.asarray(predict(state, b)))
            tgt.append(b["target"] / 255.0)
            still.append(b["identity"][..., :3] / 255.0)
        o, t, s = map(np.concatenate, (out, tgt, still))
        dm = (s - o)[:, MOUTH[0], MOUTH[1]].mean((1, 2, 3))
        dt = (s - t)[:, MOUTH[0], MOUTH[1]].mean((1, 2, 3))
        return {"l1": np.abs(o - t).mean(), "static_l1": np.abs(s - t).mean(),
                "mouth_l1": np.abs(o - t)[:, MOUTH[0], MOUTH[1]].mean(),
                "mouth_static_l1": np.abs(s - t)[:, MOUTH[0], MOUTH[1]].mean(),
                "mouth_change_corr": float(np.corrcoef(dm, dt)[0, 1]) if dm.std() > 0 else 0.0,
                "change": np.abs(o - s).mean()}

    t0 = time.time()
    for i in range(a.steps):
        b = train[i % len(train)]
        state, m = step(state, {k: b[k] for k in ("mfcc", "identity", "target")})
        if (i + 1) % max(1, a.steps // 6) == 0:
            v = {k: round(float(x), 5) for k, x in validate(state).items()}
            print(f"step {i + 1} ({time.time() - t0:.0f} s) loss {float(m['loss']):.5f} val {v}", flush=True)


if __name__ == "__main__":
    main()
