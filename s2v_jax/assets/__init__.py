"""Models shipped inside the package (float16 weights, each with a model card).

Each is an exported model directory (`s2v_jax.train.export`): `config.json`,
`variables.npz` and `MODEL_CARD.md` (data, recipe, the command that retrains
it, held-out numbers). Any `--checkpoint` / `--sync-expert` option takes such
a directory as it takes a training work directory.
"""

import os

ASSETS = os.path.dirname(os.path.abspath(__file__))
# The lip-sync judges, trained apart (s2v_jax.train.judge): no generator trains against the evaluation one.
SYNC_EXPERT = os.path.join(ASSETS, "sync_expert")  # the evaluation judge: evaluate, sync (configs/syncnet_real.py)
SYNC_LOSS = os.path.join(ASSETS, "sync_loss")  # the training judge: a generator's sync loss (configs/syncnet_loss.py)

GENERATOR = os.path.join(ASSETS, "generator")  # the default real-face generator (configs/real_small.py)
