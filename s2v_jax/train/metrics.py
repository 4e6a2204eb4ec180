"""Image-quality measures (L1; PSNR and SSIM from dm-pix) in jnp, and metric writers.

The measures take float images `[B, H, W, C]` in [0, max_val] and return one
value per image `[B]`, so a caller can sum over a validation set and divide
once. `MetricWriter` writes scalars as TensorBoard events (tensorboardX) and
as JSON lines (`workdir/metrics.jsonl`), from process 0 only.
"""

import json
import math
import os
from typing import Any, Dict, Mapping, Optional

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

# PSNR of identical images is infinite; the MSE floor caps it at 100 dB (max_val 1)
# so averages over a validation set stay finite.
_MSE_FLOOR = 1e-10


def l1(pred, target):
    """Mean absolute error per image: `[B, H, W, C]` x2 -> `[B]`."""
    diff = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
    return diff.reshape(diff.shape[0], -1).mean(axis=-1)


def psnr(pred, target, max_val: float = 1.0):
    """Peak signal-to-noise ratio in dB per image, 10 log10(max_val^2 / MSE): `[B]` (dm-pix's MSE, floored)."""
    mse = jnp.maximum(dm_pix.mse(pred.astype(jnp.float32), target.astype(jnp.float32)), _MSE_FLOOR * max_val ** 2)
    return 10.0 * jnp.log10(max_val ** 2 / mse)


def ssim(pred, target, max_val: float = 1.0, filter_size: int = 11, filter_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03):
    """Structural similarity (Wang et al. 2004) per image: `[B, H, W, C]` x2 -> `[B]`: dm-pix's (Gaussian
    11-tap, sigma 1.5 local statistics over 'valid' windows per channel, then the mean over positions
    and channels: tf.image.ssim's definition; equal to this module's earlier hand-written version within
    1e-5, tests/test_metrics.py)."""
    h, w = pred.shape[1], pred.shape[2]
    if h < filter_size or w < filter_size:
        raise ValueError(f"ssim needs images of at least {filter_size}x{filter_size}, got {h}x{w}")
    return dm_pix.ssim(pred.astype(jnp.float32), target.astype(jnp.float32), max_val=max_val,
                       filter_size=filter_size, filter_sigma=filter_sigma, k1=k1, k2=k2)


def image_metrics(pred, target, max_val: float = 1.0) -> Dict[str, jnp.ndarray]:
    """{'l1', 'psnr', 'ssim'} per image, each `[B]`."""
    return {"l1": l1(pred, target), "psnr": psnr(pred, target, max_val),
            "ssim": ssim(pred, target, max_val)}


def _to_python(value) -> Any:
    """A JSON-friendly scalar (non-finite floats become the strings 'nan'/'inf')."""
    value = np.asarray(value).item() if not isinstance(value, (int, float, str)) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricWriter:
    """Scalars to `workdir/tensorboard` (TensorBoard events) and `workdir/metrics.jsonl`.

    Only process 0 writes (`enabled` defaults to `jax.process_index() == 0`); on
    other processes every method is a no-op. JSON lines are appended, so a
    resumed run continues the same file; each line is `{"step": s, name: value, ...}`.
    `resume_step`: the step the run resumes from; rows after it (written by a
    run that died after its last checkpoint) are dropped first, so no step
    appears twice.
    """

    def __init__(self, workdir: str, *, enabled: Optional[bool] = None, resume_step: Optional[int] = None):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self._tb = None
        self._jsonl = None
        if not self.enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        from tensorboardX import SummaryWriter  # imported here: only process 0 needs it
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
        path = os.path.join(workdir, "metrics.jsonl")
        if resume_step is not None and os.path.exists(path):
            _truncate_after(path, int(resume_step))
        self._jsonl = open(path, "a", encoding="utf-8")

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": int(step)}
        for name, value in scalars.items():
            row[name] = _to_python(value)
            if isinstance(row[name], (int, float)) and not isinstance(row[name], bool):
                self._tb.add_scalar(name, row[name], int(step))
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()

    def flush(self) -> None:
        if self.enabled:
            self._tb.flush()
            self._jsonl.flush()

    def close(self) -> None:
        if self.enabled and self._jsonl is not None:
            self._tb.close()
            self._jsonl.close()
            self._jsonl = None


def _truncate_after(path: str, step: int) -> None:
    """Rewrites a metrics.jsonl without its rows after `step` (atomically; unreadable lines are kept)."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()

    def keep(line):
        try:
            return int(json.loads(line).get("step", -1)) <= step
        except (ValueError, AttributeError):
            return True
    kept = [line for line in lines if keep(line)]
    if len(kept) == len(lines):
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)


def read_jsonl(path: str):
    """The rows of a metrics.jsonl file, as dicts (for tests and notebooks)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
