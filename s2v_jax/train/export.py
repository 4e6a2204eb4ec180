"""Exported models: a small, self-describing copy of a checkpoint for inference.

    s2v export --checkpoint workdirs/syncnet_real --out my_judge/

An exported model is a directory of `config.json` (the training config) and
`variables.npz` (params in float16 by default, BatchNorm statistics in
float32; keys are '/'-joined tree paths), no optimizer state: about a quarter
of the float32 weights and a fraction of an Orbax checkpoint. It is what the
package ships (`s2v_jax.assets`), and `load_checkpoint` reads it wherever a
checkpoint is accepted. Loading casts back to float32.
"""

import json
import os
import tempfile
from typing import Any, Dict, Tuple

import ml_collections
import numpy as np
from flax import traverse_util

from s2v_jax.config_utils import config_to_json_dict, stored_config
from s2v_jax.errors import TrainingError

CONFIG_FILE = "config.json"
VARIABLES_FILE = "variables.npz"
FORMAT = "s2v_jax.exported/1"


def is_exported(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isfile(os.path.join(path, VARIABLES_FILE))


def _flatten(tree, prefix="") -> Dict[str, np.ndarray]:
    """{'a/b/c': array} of a nested dict (under `prefix`): the variables.npz keys."""
    flat = traverse_util.flatten_dict(dict(tree), sep="/") if tree else {}
    return {(f"{prefix}/{k}" if prefix else k): np.asarray(v) for k, v in flat.items()}


def _unflatten(flat: Dict[str, np.ndarray]) -> Dict[str, Any]:
    return traverse_util.unflatten_dict(dict(flat), sep="/")


def export_model(config: ml_collections.ConfigDict, variables: Dict[str, Any], out_dir: str,
                 dtype: str = "float16") -> Dict[str, Any]:
    """Writes `out_dir`/config.json and variables.npz (params in `dtype`); returns {'bytes', 'params'}.
    Refuses an `out_dir` that already holds files other than an earlier export."""
    if dtype not in ("float16", "float32", "bfloat16"):
        raise TrainingError(f"export dtype must be float16, bfloat16 or float32, not {dtype!r}")
    os.makedirs(out_dir, exist_ok=True)
    others = set(os.listdir(out_dir)) - {CONFIG_FILE, VARIABLES_FILE, "MODEL_CARD.md"}
    if others:
        raise TrainingError(f"{out_dir} already holds {sorted(others)[:3]}: export into an empty folder")
    flat = {}
    for collection, tree in variables.items():
        cast = np.float16 if (collection == "params" and dtype == "float16") else np.float32
        for k, v in _flatten(tree, collection).items():
            flat[k] = np.asarray(v, np.float32).astype(cast)
    for name, write in ((VARIABLES_FILE, lambda f: np.savez(f, **flat)),
                        (CONFIG_FILE, lambda f: f.write(json.dumps(
                            {"format": FORMAT, "params_dtype": dtype, "config": config_to_json_dict(config)},
                            indent=1, sort_keys=True).encode()))):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is for others to read
        os.replace(tmp, os.path.join(out_dir, name))  # never a half-written file under the real name
    n = sum(int(v.size) for k, v in flat.items() if k.startswith("params/"))
    return {"bytes": os.path.getsize(os.path.join(out_dir, VARIABLES_FILE)), "params": n}


def load_exported(path: str) -> Tuple[ml_collections.ConfigDict, Dict[str, Any]]:
    """(config, variables as float32 numpy trees) of an exported model directory."""
    try:
        with open(os.path.join(path, CONFIG_FILE)) as f:
            meta = json.load(f)
        with np.load(os.path.join(path, VARIABLES_FILE)) as z:
            flat = {k: np.asarray(z[k], np.float32) for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        raise TrainingError(f"exported model {path} cannot be read ({type(e).__name__}: {e}); "
                            "export it again (s2v export) or reinstall the package") from e
    if meta.get("format") != FORMAT or "config" not in meta:
        raise TrainingError(f"{path}/{CONFIG_FILE} is not an s2v_jax exported model (format {meta.get('format')!r})")
    return stored_config(meta["config"]), _unflatten(flat)
