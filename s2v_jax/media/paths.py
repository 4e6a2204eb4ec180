"""Output paths that can never destroy an input: refused before any work."""

import os
from typing import Mapping, Optional, Union

from s2v_jax.errors import MediaError

PathLike = Union[str, os.PathLike]


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def refuse_overwriting_inputs(out_path: PathLike, inputs: Mapping[str, Optional[PathLike]]) -> None:
    """MediaError if `out_path` is (a link to, or the same file as) any input.

    inputs: {flag or role ('--video'): path}; None values (optional inputs, arrays) are ignored.
    """
    out = os.fspath(out_path)
    for role, path in inputs.items():
        if path is None or not isinstance(path, (str, os.PathLike)):
            continue
        if _same_file(out, os.fspath(path)):
            raise MediaError(f"--out {out} is the input {role} {os.fspath(path)}: writing it would destroy the "
                             "input; choose another output path (nothing was written)")
