"""The training judge: the lip-sync judge a generator's sync loss uses
(`train.sync_expert` '' = this one, shipped as s2v_jax/assets/sync_loss). It
is configs/syncnet_real.py's judge hardened against near-still mouths, by
fine-tuning: a small generator finds the cheapest motion a judge reads, and a
judge that rates small, well-timed motion lets it keep the mouth shut.

- Near-still windows (`data.near_still`, s2v_jax.data.near_still): half the
  windows are also shown with their motion shrunk toward the track's most
  closed-mouth frame (to at most 30% of it; a fifth of them frozen), and the
  loss asks that such a copy carry no offset and match the speech less well
  than the moving mouth (`train.near_still_weight`, train/tasks/sync.py).
- Started from the judge shipped before it (2026-12-06, configs/syncnet_real.py,
  15,000 steps): `train.init_from`, a lower learning rate, 4,000 steps.

The evaluation judge (configs/syncnet_eval.py) is trained apart, from another
initialisation and on RGB input; no generator sees it.

    git show ca1dbc2:s2v_jax/assets/sync_expert/config.json > PREV/config.json   # the previous judge
    git show ca1dbc2:s2v_jax/assets/sync_expert/variables.npz > PREV/variables.npz
    python run_train.py --config configs/syncnet_loss.py --workdir workdirs/syncnet_loss \\
        --config.train.init_from=PREV
    s2v export --checkpoint workdirs/syncnet_loss --out s2v_jax/assets/sync_loss
"""

from configs import syncnet_real


def get_config():
    config = syncnet_real.get_config()
    d, t = config.data, config.train
    d.near_still = 0.5
    d.num_workers = 1         # one loader process: 2.4 steps/s on the 2-core CPU against 1.6 in-process (the flow)
    d.near_still_motion = 0.3
    t.near_still_weight = 1.0
    t.init_from = ""          # the previous judge's export (the command above); '' = from scratch
    t.num_steps = 3000
    t.learning_rate = 3e-4
    t.warmup_steps = 200
    t.eval_every = 500
    t.checkpoint_every = 500
    return config
