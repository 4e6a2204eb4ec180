"""Evaluation of talking-face generators: the measures of the field (PSNR,
SSIM, LMD, landmark and SyncNet-style lip sync), the sync expert that the
SyncNet measures need, and the `s2v evaluate` driver with its report.

- `metrics`: pure NumPy/JAX measures, each with its exact definition.
- `syncnet`: the two-stream sync expert (Flax) and its embeddings.
- `sync_train`: the expert's data sampler, pure train/eval steps and loop.
- `evaluate`: regenerate held-out clips and score model, static baseline and
  real video side by side (`evaluate_checkpoint`).
- `report`: report.json, index.html, plots and frame strips.
"""
