"""Small widths for tests and CPU demos, on the synthetic talking-face corpus.

    python run_train.py --config configs/tiny.py --workdir workdirs/tiny
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.width = 0.125            # an eighth of the paper's channels: ~100x fewer FLOPs
    config.data.dataset = "synthetic_talking_faces/small"  # procedural corpus, built on first use
    config.data.num_workers = 0           # load in the main process (CPU demo)
    config.train.batch_size = 16          # small global batch
    config.train.num_steps = 300          # a few minutes on 2 CPU cores
    config.train.learning_rate = 0.05     # mean-L1 over pixels needs a far larger rate than the paper's summed loss
    config.train.log_every = 20
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    config.train.eval_batches = 4
    return config
