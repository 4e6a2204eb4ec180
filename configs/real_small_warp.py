"""The shipped real-face generator's second stage: configs/real_small.py's model
taught to move the still's own lips (2,000 steps, about 30-40 minutes on the
2-core CPU, started from the first stage's weights).

Why (numbers in BENCHMARKS.md, "Real faces"): the first stage alone (L1,
mouth-weighted L1, the judge's loss) learned the judge's taste more than the
speech: sync recovered 1.15, but mouth landmarks no closer to the real ones
than the still's (LMD 0.0701 vs 0.0689) and mouths moving a third as much as
real ones. Pixel losses reward the average mouth; a painted mouth is what a
pixel decoder of this size can make. Here the model also predicts a smooth
flow (`model.warp`, at most 10 px, inside the lower-face region) that warps
the still before the residual change, and a landmark loss (`train.lip_weight`)
asks that the flow carry the still's 40 lip landmarks onto the real frame's
(LMD's own points and normalisation; the landmarks come with every track of
the dataset). A warp keeps the person's own lips, teeth and skin, so it can
open a mouth without painting one. The new flow head starts at zero, so the
first step reproduces the first stage exactly (`train.init_from`).

    python run_train.py --config configs/real_small.py --workdir workdirs/real_small
    python run_train.py --config configs/real_small_warp.py --workdir workdirs/real_small_warp \\
        --config.train.init_from=workdirs/real_small
"""

from configs import real_small


def get_config():
    config = real_small.get_config()
    m, t = config.model, config.train
    m.warp = 10.0                  # the flow's bound, px of the 112x112 crop
    t.lip_weight = 2.0             # + 2.0 * mean lip-landmark error of the warp / inter-ocular distance
    t.init_from = "shipped"        # the first stage; pass --config.train.init_from=W for your own
    t.num_steps = 2000
    t.learning_rate = 5e-4
    t.warmup_steps = 50
    t.mse_warmup_steps = 0         # the first stage is past it
    t.eval_every = 250
    t.checkpoint_every = 250
    t.best_metric = "lip_lmd"      # keep the checkpoint whose warped lips are closest to the real ones
    return config
