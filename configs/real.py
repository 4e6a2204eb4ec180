"""configs/real_small.py's recipe at the paper's width, for accelerators: the
same corpus, windows, mouth-weighted L1 and sync loss; the paper's channels
(width 1.0), a larger batch, many more steps, bfloat16 compute.

Expected speed (NOT measured: no accelerator was lent when this was
written; benchmarks/accelerator.py measures it): one training window is 5
generated frames; at width 1.0 a frame's forward pass is 4.5 GFLOP with the
identity encoded once per window (BENCHMARKS.md), so a window's training step
is ~80 GFLOP (forward + backward; the width-0.125 judge adds little). At
30-50% of an H100's ~990 bf16 TFLOP/s that is ~3,700-6,000 windows/s: 64-window
batches at ~60-90 steps/s, 60,000 steps in 11-17 minutes, if the input
pipeline keeps up (it decodes 6 JPEGs per window: give it the host's cores).

    python run_train.py --config configs/real.py --workdir workdirs/real

Like configs/real_small.py it leaves the grid_s1 speaker out (her 45 minutes
are the speaker fine-tune's test); `--config.data.exclude=''` trains on all
of the corpus.

This is the shipped model's stage 1 only. Its lip-warp stages at this width
(configs/real_small_warp.py's docstring has the CPU chain; not run at width
1.0 here):

    python run_train.py --config configs/real_small_warp.py --workdir workdirs/real_warp \
        --config.train.init_from=workdirs/real --config.model.width=1.0 --config.model.dtype=bfloat16 \
        --config.train.batch_size=64 --config.data.num_workers=16
"""

from configs import real_small


def get_config():
    config = real_small.get_config()
    m, d, t = config.model, config.data, config.train
    m.width = 1.0                  # the paper's channels
    m.dtype = "bfloat16"           # compute dtype on accelerators (parameters stay float32)
    d.num_workers = 16             # grain worker processes: JPEG decoding is the host's work
    t.batch_size = 64              # windows (320 frames) per step, split over the devices
    t.num_steps = 60_000
    t.learning_rate = 3e-4         # a larger net, a smaller Adam step
    t.warmup_steps = 1000
    t.mse_warmup_steps = 1000
    t.log_every = 200
    t.eval_every = 2000
    t.checkpoint_every = 2000
    t.keep_checkpoints = 5
    t.eval_batches = 40            # 2560 windows
    return config
