"""The sync expert trained on real speech: the shared real corpus
(`registered_faces/real`: GRID, LRS2, LRC-AR TV news, VoxCeleb2-style,
StyleTalk public figures, TEDx), sized for this 2-core CPU (about 80 min at 3.1 steps/s).
This is the recipe of the judge shipped in the package (s2v_jax/assets/,
see its model card). Departures from configs/syncnet.py, and why:

- 'nway' loss over 8 shifted audios of the same clip (Chung et al. 2019):
  the judge's job at scoring time is to pick the offset among +-15, and this
  loss trains exactly that choice; min_offset 2, since the judge must place
  the offset within +-1 frame.
- Augmentation real video needs: the five crops shifted together by up to
  4 px (registration wobble), rotated by up to 6 degrees and scaled by up to
  5% (a turning head leaves the registered face a little turned), and JPEG
  re-compression at quality 30-90 on half of the windows, besides
  brightness/contrast and flips.
- The few multi-speaker English sources oversampled (`data.repeat`): LRS2,
  VoxCeleb2-style and GRID 6x, StyleTalk 3x, from 6% of the training windows
  to 21%; the rest is one GRID speaker (44%) and 1.2 s Arabic news clips (35%).
- Whole sources held out of training (`data.exclude`, the same setting as the
  generator's): the second LRS2 video (lrs2_b: several speakers, a recording
  never seen) and three VoxCeleb2-style files (two of one video, 7414..., and
  7961...), beside the builder's per-source validation split. (The judges of
  2026-12-06/07 listed TEDx Romanian too, as `data.holdout_sources`; its clips
  are mouth-only crops in which no face is found, so the builder skips all ten
  and it never held a track: dropped here, since `data.exclude` refuses a
  pattern that matches nothing.)
- 15,000 steps (the previous judge, 2026-12-02: 12,000 without the rotation,
  scaling, oversampling and the VoxCeleb2-style holdout).

    s2v build-dataset registered_faces/real --manual-dir ../shared/data/real/corpus --data-dir data/tfds
    python run_train.py --config configs/syncnet_real.py --workdir workdirs/syncnet_real
"""

from configs import syncnet


def get_config():
    config = syncnet.get_config()
    m, d, t = config.model, config.data, config.train
    m.width = 0.125
    m.embed_dim = 128
    d.dataset = "registered_faces/real"
    d.manual_dir = "../shared/data/real/corpus"
    d.min_offset = 2
    d.max_offset = 15
    d.num_negatives = 8
    d.augment_shift_px = 4
    d.augment_rotate_deg = 6.0
    d.augment_scale = 0.05
    d.augment_jpeg = 0.5
    d.exclude = "lrs2_b/,voxceleb2_style/7414,voxceleb2_style/7961"
    d.repeat = "voxceleb2_style/*:6,lrs2/*:6,styletalk/*:3,grid/*:6"
    t.loss = "nway"
    t.temperature = 0.1
    t.batch_size = 32
    t.num_steps = 15000
    t.learning_rate = 1e-3
    t.warmup_steps = 300
    t.log_every = 100
    t.eval_every = 1000
    t.checkpoint_every = 1000
    t.eval_batches = 16
    return config
