"""The deblurring net (paper Sec. 3.3) retrained on real face crops, sized for the 2-core CPU
(about 25 minutes): the registered crops of the shared real corpus (`registered_faces/real`,
the generator's data and split), Gaussian-blurred on the fly with sigma in [0.5, 2.5] px as
configs/deblur.py; half the paper's channels (32) so that it trains here (0.84 steps/s =
13.5 crops/s beside another job, 2026-12-03). Whether it helps the shipped generator is not
measured yet (issue #14): `s2v evaluate` reports PSNR and lower-face sharpness with and
without `--deblur`, for the model, the still and the real video:

    python run_train.py --config configs/deblur_real.py --workdir W
    s2v evaluate --deblur W --videos registered_faces/real:validation --min-seconds 2 ...
"""

from configs import deblur


def get_config():
    config = deblur.get_config()
    m, d, t = config.model, config.data, config.train
    m.features = 32                # half the paper's 64: ~4x fewer FLOPs, CPU-sized
    d.dataset = "registered_faces/real"
    d.manual_dir = "../shared/data/real/corpus"
    d.min_identity_distance = 12   # as configs/real_small.py (LRC-AR clips are 1.2 s); the net uses no identity
    d.exclude = "grid_s1/sw*"      # as configs/real_small.py: the speaker fine-tune's test sentences
    d.num_workers = 0
    t.batch_size = 16
    t.num_steps = 1500
    t.optimizer = "adam"
    t.schedule = "cosine"
    t.warmup_steps = 50
    t.weight_decay = 0.0
    t.log_every = 50
    t.eval_every = 250
    t.checkpoint_every = 250
    t.eval_batches = 10
    t.progress_bar = False
    return config
