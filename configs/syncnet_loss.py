"""The training judge: the lip-sync judge inside a generator's sync loss (`train.sync_expert`
'' = this one, shipped as s2v_jax/assets/sync_loss). The evaluation judge (every LSE number:
`s2v evaluate`, `s2v sync`, the benchmarks; configs/syncnet_real.py, s2v_jax/assets/sync_expert)
is another network: no generator trains against it, since a measure a model was optimised
against stops measuring (Wav2Lip trains against its own expert and reports the official
SyncNet). This one differs from it in every way that keeps the two apart:

- trained from scratch, from another initialisation (`train.seed` 1) and another sample order
  (`data.shuffle_seed` 1);
- another input: the five lower-face crops in colour (15 channels, not 5 grey), which sees the
  dark mouth cavity, teeth and tongue, not only luma;
- hardened against near-still mouths (`data.near_still`, s2v_jax.data.near_still): half the
  windows also appear with their motion shrunk toward the track's most closed-mouth frame (to at
  most 30% of it; a fifth of them frozen), and the loss asks that such a copy carry no offset and
  match the speech less well than the moving mouth (`train.near_still_weight`, train/tasks/sync.py).
Same held-out sources as the judges before it. 8,000 steps: 70 min on the 2-core CPU (2026-12-07).

    python run_train.py --config configs/syncnet_loss.py --workdir workdirs/syncnet_loss
    s2v export --checkpoint workdirs/syncnet_loss/checkpoints --out s2v_jax/assets/sync_loss
"""

from configs import syncnet_real


def get_config():
    config = syncnet_real.get_config()
    m, d, t = config.model, config.data, config.train
    m.grayscale = False       # RGB: 15 input channels
    d.near_still = 0.5
    d.num_workers = 1         # one loader process: 2.4 steps/s on the 2-core CPU against 1.6 in-process (the flow)
    d.near_still_motion = 0.3
    d.shuffle_seed = 1
    t.near_still_weight = 1.0
    t.seed = 1
    t.num_steps = 8000
    return config
