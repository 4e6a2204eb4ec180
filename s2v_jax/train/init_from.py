"""`train.init_from`: a new run started from another model's weights (the weight surgery beside
checkpointing, which reads them): every array of the given model that fits the new one at the same
place is copied, the rest keep their initialisation; with `train.init_widen` a smaller array at the
same place fills the leading block of a wider one, so a widened network computes what it did."""

from typing import Any, Dict, Optional

import jax
import numpy as np
from absl import logging

from s2v_jax.errors import TrainingError
from s2v_jax.train import checkpointing


def _widened(old: np.ndarray, new: np.ndarray, name: str) -> Optional[np.ndarray]:
    """`old` in the leading block of `new` (same rank, no axis smaller), or None. A kernel's rows
    for the inputs it did not have (axis -2) are zeroed, so channels added to the layer before
    change nothing until training moves them: widening hidden layers keeps the network's function."""
    if old.ndim != new.ndim or any(o > n for o, n in zip(old.shape, new.shape)):
        return None
    out = np.array(new, copy=True)
    if name == "kernel" and new.ndim >= 2:
        out[..., old.shape[-2]:, :] = 0
    out[tuple(slice(0, o) for o in old.shape)] = old
    return out


def overlay_variables(fresh: Dict[str, Any], path: str, task_name: str, widen: bool = False) -> Dict[str, Any]:
    """`fresh` variables with every leaf that `path` (train.init_from: a checkpoint, a work directory,
    an exported model, or 'shipped' for the package's generator) has at the same place and shape
    replaced by its value; the rest (layers the new config adds, e.g. the warp's flow head) keep
    their initialisation. With `widen` (train.init_widen) a smaller leaf at the same place goes into
    the leading block of the new one (`_widened`: for hidden layers made wider, e.g. model.audio_width,
    the network computes what it did). A TrainingError if nothing at all matches."""
    if path == "shipped":
        from s2v_jax import assets

        path = assets.GENERATOR
    _, loaded = checkpointing.load_checkpoint(path, tasks=(task_name,),
                                              hint=f"train.init_from must be a {task_name} model")
    out, copied, kept, widened = overlay_arrays(fresh, loaded, widen)
    if copied == 0:
        raise TrainingError(f"train.init_from {path}: none of its weights fit this model")
    logging.info("initialised from %s: %d arrays copied, %d new (%s)", path, copied, len(kept),
                 ", ".join(kept[:6]) + (" ..." if len(kept) > 6 else ""))
    if widened:
        logging.info("widened from %s: %d arrays (%s)", path, len(widened),
                     ", ".join(widened[:6]) + (" ..." if len(widened) > 6 else ""))
    return out


def overlay_arrays(fresh: Dict[str, Any], loaded: Dict[str, Any], widen: bool = False):
    """`overlay_variables` on variables in memory: (variables, arrays copied, paths kept fresh, paths widened)."""
    from flax import traverse_util

    out, copied, kept, widened = {}, 0, [], []
    for col, tree in fresh.items():
        flat = traverse_util.flatten_dict(jax.device_get(tree) if tree else {})
        src = traverse_util.flatten_dict(loaded.get(col, {}) or {})
        for k, v in flat.items():
            if k in src and np.shape(src[k]) == np.shape(v):
                flat[k] = np.asarray(src[k], np.asarray(v).dtype)
                copied += 1
            elif widen and k in src and (grown := _widened(np.asarray(src[k], np.asarray(v).dtype),
                                                           np.asarray(v), k[-1])) is not None:
                flat[k] = grown
                copied += 1
                widened.append("/".join((col,) + tuple(k)))
            else:
                kept.append("/".join((col,) + tuple(k)))
        out[col] = traverse_util.unflatten_dict(flat) if flat else tree
    return out, copied, kept, widened
