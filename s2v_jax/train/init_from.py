"""`train.init_from`: a new run started from another model's weights (the weight surgery beside
checkpointing, which reads them): every array of the given model that fits the new one at the same
place is copied, the rest keep their initialisation; with `train.init_widen` a smaller array at the
same place fills the leading block of a wider one, so a widened network computes what it did; a
grey judge's weights start a colour judge (`model.grayscale` False) with its first video conv spread
over RGB by the luma weights (`colour_from_grey`), so it too starts computing what it did."""

from typing import Any, Dict, Optional

import jax
import numpy as np
from absl import logging

from s2v_jax.data.sync_inputs import LUMA
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


GREY_INPUT_KERNEL = ("video_stream", "conv1", "conv", "kernel")  # the judge's first video conv (params)


def colour_from_grey(kernel: np.ndarray) -> np.ndarray:
    """A grey judge's first video conv kernel [kh, kw, F, O] (F stacked luma frames) as the colour
    judge's [kh, kw, 3F, O] (input channel f * 3 + c: frame f's colour c, sync_inputs.video_input's
    order): frame f's weights times LUMA[c]. Luma is LUMA . rgb and LUMA sums to 1, so the colour
    conv of any RGB input equals the grey conv of its luma, through any per-pixel affine normalisation
    (up to to_grey's rounding to uint8)."""
    k = np.asarray(kernel)
    out = k[:, :, :, None, :] * np.asarray(LUMA, k.dtype)[None, None, None, :, None]
    return out.reshape(k.shape[0], k.shape[1], 3 * k.shape[2], k.shape[3])


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
    loaded_config, loaded = checkpointing.load_checkpoint(path, tasks=(task_name,),
                                                          hint=f"train.init_from must be a {task_name} model")
    if task_name == "sync" and loaded_config.model.grayscale:
        loaded = _grey_to_colour(fresh, loaded, path)
    out, copied, kept, widened = overlay_arrays(fresh, loaded, widen)
    if copied == 0:
        raise TrainingError(f"train.init_from {path}: none of its weights fit this model")
    logging.info("initialised from %s: %d arrays copied, %d new (%s)", path, copied, len(kept),
                 ", ".join(kept[:6]) + (" ..." if len(kept) > 6 else ""))
    if widened:
        logging.info("widened from %s: %d arrays (%s)", path, len(widened),
                     ", ".join(widened[:6]) + (" ..." if len(widened) > 6 else ""))
    return out


def _grey_to_colour(fresh: Dict[str, Any], loaded: Dict[str, Any], path: str) -> Dict[str, Any]:
    """`loaded` (a grey judge) with its first video conv as `colour_from_grey`'s, when `fresh` (the new
    judge) takes three times its input channels there (a colour judge); else `loaded` unchanged."""
    from flax import traverse_util

    new = traverse_util.flatten_dict(fresh.get("params", {}) or {})
    old = traverse_util.flatten_dict(loaded.get("params", {}) or {})
    k = GREY_INPUT_KERNEL
    if k not in new or k not in old:
        return loaded
    o, n = np.shape(old[k]), np.shape(new[k])
    if n != o[:2] + (3 * o[2],) + o[3:]:
        return loaded
    old[k] = colour_from_grey(np.asarray(old[k], np.float32))
    logging.info("colour judge from the grey judge %s: %s spread over RGB by the luma weights", path, "/".join(k))
    return dict(loaded, params=traverse_util.unflatten_dict(old))


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
