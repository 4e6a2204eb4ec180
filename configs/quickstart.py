"""The `s2v quickstart` tour: the tiny model on the synthetic corpus, sized to
finish (corpus, dataset, training, demo, report) in 10-12 minutes on 2 CPU
cores.

Three departures from the paper, each because a few CPU minutes are not the
paper's GPU days (measured in BENCHMARKS.md, "Why the quickstart recipe"):
- identity-residual output: the decoder predicts a change to the first
  still, so the model starts at the static baseline instead of a grey face;
- squared error for the first 300 steps, then the paper's L1: from the still,
  L1 never moves (its kink at zero error holds every already-matching pixel);
- Adam instead of SGD with momentum: the residual's output conv starts at
  zero, so SGD's first steps reach no other layer and it needs thousands of
  steps where Adam needs a few hundred.

    s2v quickstart --workdir workdirs/quickstart [train.num_steps=N]
    python run_train.py --config configs/quickstart.py --workdir W   # training only
"""

from configs import tiny


def get_config():
    config = tiny.get_config()
    config.model.identity_residual = True  # start from the still; learn the mouth change
    config.train.optimizer = "adam"        # not the paper's SGD: see above
    config.train.learning_rate = 1e-3      # Adam's usual rate
    config.train.schedule = "cosine"       # decays to 0: L1's constant-size gradient keeps a fixed rate hopping
    config.train.weight_decay = 0.0        # none: a few hundred steps do not overfit
    config.train.mse_warmup_steps = 300    # squared error first, then L1
    config.train.num_steps = 900           # ~8 minutes of a 2-core CPU
    config.train.eval_every = 150          # validation (model vs static baseline) every 150 steps
    config.train.checkpoint_every = 150    # periodic checkpoints (resume points)
    config.train.eval_batches = 16         # 256 validation samples (4 held-out speakers)
    config.train.progress_bar = True       # show a progress bar
    return config
