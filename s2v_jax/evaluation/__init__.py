"""Evaluation of talking-face generators: the measures of the field (PSNR,
SSIM, LMD, landmark and SyncNet-style lip sync), the sync expert that the
SyncNet measures need, and the `s2v evaluate` driver with its report.

- `metrics`: pure NumPy/JAX measures, each with its exact definition.
- `sync_expert`: a trained sync expert as a judge (per-frame embeddings,
  AV offset, LSE-D, LSE-C); the network is `s2v_jax.models.syncnet`, its
  samples `s2v_jax.data.sync_samples`, its training the `sync` task of
  `s2v_jax.train`.
- `lip_reference`: a pixel-free second opinion on a clip's own AV offset
  (audio -> mouth-opening regressors on landmarks), to tell a judge's miss
  from a clip that is itself out of sync (`benchmarks/sync_judge.py --reference`).
- `evaluate`: regenerate held-out clips and score model, static baseline and
  real video side by side (`evaluate_checkpoint`).
- `report`: report.json, index.html, plots and frame strips.
"""
