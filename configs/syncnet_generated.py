"""Stage 2 of both shipped judges: their stage-1 weights shown the shipped generator's own video.

Stage 1 (configs/syncnet_real.py for the evaluation judge, configs/syncnet_loss.py for the
training judge) finds offsets and, for the training judge, scores motion-shrunk real windows
low; yet the shipped warp-only generator, driven from a closed-mouth frame, still fooled both
(real above it on 13 and 28 of 39 held-out clips, issue #32): its small, well-timed motion is
its own kind. Stage 2 continues each judge from its own stage-1 weights, at a lower learning
rate, with half the windows also given as a near-still copy, which is, where the track has one,
the same window of the generator's video of that track (`s2v_jax.data.generated_negatives`,
made once for every train track, 2,703 of them, at 450 frames/s; held-out sources never), else the shrunk copy.
The two judges stay apart: other initialisations and inputs (grey vs colour), other sample
orders; the generator trained against the training judge never sees the evaluation judge.

    python -m s2v_jax.inference.generated_negatives --out workdirs/generated_shipped --data-dir data/tfds \
        --skip tedx_ro/,lrs2_b/,voxceleb2_style/7414,voxceleb2_style/7961
    python run_train.py --config configs/syncnet_generated.py:loss --workdir workdirs/syncnet_loss_g \
        --config.train.init_from=workdirs/syncnet_loss --config.data.generated_negatives=workdirs/generated_shipped
    python run_train.py --config configs/syncnet_generated.py:eval --workdir workdirs/syncnet_real_g \
        --config.train.init_from=workdirs/syncnet_real --config.data.generated_negatives=workdirs/generated_shipped

Stage 3 (roles `loss3`, `eval3`): the mouth-interior generator shipped 2026-12-07 (configs/real_small_interior.py),
trained against the stage-2 training judge, opened mouths in a new way, and both stage-2 judges scored its
closed-still video above the real video on 37 of 39 held-out clips. Stage 3 continues each shipped stage-2 judge
(its exported weights in the package) with that generator's copies beside the warp-only model's (a window draws
one of the copies its track has), at a lower learning rate and yet other sample orders:

    python -m s2v_jax.inference.generated_negatives --out workdirs/generated_interior --data-dir data/tfds \
        --generator shipped --skip tedx_ro/,lrs2_b/,voxceleb2_style/7414,voxceleb2_style/7961
    python run_train.py --config configs/syncnet_generated.py:loss3 --workdir workdirs/syncnet_loss_3
    python run_train.py --config configs/syncnet_generated.py:eval3 --workdir workdirs/syncnet_real_3

Stage 4 (roles `loss4`, `eval4`, 2026-12-07, night; BENCHMARKS.md "Stage 4"): the training judge continued from its
shipped stage 3 with more generated windows (shipped: real above the interior generator on 36 of 39 held-out clips,
offsets a little lower); the evaluation judge from its shipped stage 2 at half stage 3's rate, for longer, with fewer
near-still windows per batch (stage 3 had cost it offsets; not shipped: it learnt nothing about the interior
generator). `init_from` names the package's judges as they were before stage 4 (stage 3's: `git show
8877ccc:s2v_jax/assets/sync_loss`).

Stage 5 of the evaluation judge (role `eval5`, 2026-12-07, #32): the grey evaluation judge could not learn the
interior generator's painted mouths (stages 3-4), the colour training judge could. `eval5` starts from the
shipped grey evaluation judge (stage 2) as a colour judge (`model.grayscale=False`; `train.init_from` spreads its
first conv over RGB by the luma weights, s2v_jax.train.init_from.colour_from_grey, so it starts as the grey
judge), then stage 3's recipe on both generators' copies. It stays apart from the training judge: its own
initialisation and stage-1 training (seed 0, no near-still windows then), its own sample orders.
"""

from configs import syncnet_loss, syncnet_real


def get_config(role: str = "loss"):
    if role not in ("loss", "eval", "loss3", "eval3", "loss4", "eval4", "eval5"):
        raise ValueError(f"configs/syncnet_generated.py:{role}: the role is 'loss' (training judge) or 'eval', "
                         "or 'loss3' / 'eval3' for stage 3, 'loss4' / 'eval4' for stage 4, 'eval5'")
    stage = int(role[-1]) if role[-1].isdigit() else 2
    stage3 = stage >= 3
    role = role.rstrip("345")
    config = (syncnet_loss if role == "loss" else syncnet_real).get_config()
    d, t = config.data, config.train
    t.init_from = "workdirs/syncnet_loss" if role == "loss" else "workdirs/syncnet_real"  # its own stage 1
    d.generated_negatives = "workdirs/generated_shipped"
    d.generated_negatives_prob = 0.6
    d.near_still = 0.5
    d.num_workers = 1
    d.shuffle_seed = 11 if role == "loss" else 12  # a sample order neither stage 1 drew
    t.near_still_weight = 1.0
    t.num_steps = 2500 if role == "loss" else 2000  # about 20 and 16 min on the 2-core CPU
    t.learning_rate = 3e-4
    t.warmup_steps = 100
    t.eval_every = 500
    t.checkpoint_every = 500
    if stage3:  # from the shipped stage 2 (exported in the package), both generators' copies
        t.init_from = "s2v_jax/assets/sync_loss" if role == "loss" else "s2v_jax/assets/sync_expert"
        d.generated_negatives = "workdirs/generated_shipped,workdirs/generated_interior"
        d.generated_negatives_prob = 0.7
        d.shuffle_seed = 21 if role == "loss" else 22
        t.num_steps = 1500
        t.learning_rate = 2e-4
    if stage == 4:  # from the shipped stage 3 (training judge) / stage 2 (evaluation judge), gentler and longer
        if role == "loss":
            t.init_from = "s2v_jax/assets/sync_loss"   # stage 3, shipped
            d.generated_negatives_prob = 0.8
            t.learning_rate = 1.5e-4
        else:
            t.init_from = "s2v_jax/assets/sync_expert"  # stage 2, shipped: stage 3 at 2e-4 lost offsets
            d.near_still = 0.35                          # more of each batch left to the offset loss
            t.learning_rate = 1e-4
            t.num_steps = 2000
        d.shuffle_seed = 31 if role == "loss" else 32
    if stage == 5:  # the evaluation judge in colour, from its shipped grey stage 2
        config.model.grayscale = False
        t.init_from = "s2v_jax/assets/sync_expert"
        d.shuffle_seed = 42
        t.num_steps = 2000
    return config
