"""The `s2v quickstart` tour: the tiny model on the synthetic corpus, sized to
finish (corpus, dataset, training, demo, report) in about 20 minutes on 2 CPU
cores. Identity-residual output (not in the paper): the decoder predicts a
change to the first still.

    s2v quickstart --workdir workdirs/quickstart [train.num_steps=N]
"""

from configs import tiny


def get_config():
    config = tiny.get_config()
    config.model.identity_residual = True  # start from the still; learn the mouth change
    config.train.learning_rate = 0.5       # mean-L1 SGD needs a large rate (see configs/default.py)
    config.train.nesterov = True           # Nesterov momentum
    config.train.num_steps = 600           # ~10 minutes of a 2-core CPU
    config.train.eval_every = 200          # validation (model vs static baseline) every 200 steps
    config.train.checkpoint_every = 200    # periodic checkpoints (resume points)
    config.train.progress_bar = True       # show a progress bar
    return config
