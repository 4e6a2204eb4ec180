"""The shipped real-face generator's last stage: configs/real_small.py's model
taught to move the still's own lips (2,000 steps, 22 minutes on the 2-core
CPU alone, started from an earlier stage's weights, `train.init_from`).

Why (numbers in BENCHMARKS.md, "Real faces"): configs/real_small.py alone
(L1, mouth-weighted L1, the judge's loss) learned the judge's taste more than
the speech: sync recovered 1.15, but mouth landmarks no closer to the real
ones than the still's (LMD 0.0701 vs 0.0689), mouths moving a third as much
as real ones, magenta lips on some faces. Pixel losses reward the average
mouth, and a painted mouth is what a pixel decoder of this size makes. Here
the model predicts a smooth flow (`model.warp`: at most 10 px, inside the
lower-face region, from the decoder's 53x53 stage) that warps the still, and
a landmark loss (`train.lip_weight`) asks that the flow carry the still's 40
lip landmarks onto the real frame's (LMD's own points and normalisation; the
landmarks come with every track of the dataset). With `model.warp_only` the
output is the warped still alone: the person's own lips, teeth and skin
moved, nothing painted, so no colour can appear that the photo lacks. The
flow head starts at zero, so the first step reproduces the stage before it.

The shipped model is three stages (the middle one warps and keeps the
residual change on top, with a weaker landmark loss):

    python run_train.py --config configs/real_small.py --workdir W1
    python run_train.py --config configs/real_small_warp.py --workdir W2 --config.train.init_from=W1 \
        --config.model.warp_only=False --config.train.lip_weight=2 --config.train.learning_rate=5e-4
    python run_train.py --config configs/real_small_warp.py --workdir W3 --config.train.init_from=W2
"""

from configs import real_small


def get_config():
    config = real_small.get_config()
    m, t = config.model, config.train
    m.warp = 10.0                  # the flow's bound, px of the 112x112 crop
    m.warp_only = True             # the output is the warped still: nothing painted
    t.lip_weight = 5.0             # + 5.0 * mean lip-landmark error of the warp / inter-ocular distance
    t.init_from = ""               # the stage before (a work directory); '' = from scratch
    t.num_steps = 2000
    t.learning_rate = 1e-3
    t.warmup_steps = 50
    t.mse_warmup_steps = 0         # the first stage is past it
    t.eval_every = 250
    t.checkpoint_every = 250
    t.best_metric = "lip_lmd"      # keep the checkpoint whose warped lips are closest to the real ones
    return config
