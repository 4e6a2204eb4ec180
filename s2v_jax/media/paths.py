"""Output paths that can never destroy an input, and folders that cannot take
the output: both refused before any work."""

import os
import pathlib
import tempfile
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
    """MediaError if `out_path` is (a link to, or the same file as) any input, or if its folder is
    missing or not writable.

    inputs: {flag or role ('--video'): path}; None values (optional inputs, arrays) are ignored.
    """
    out = os.fspath(out_path)
    for role, path in inputs.items():
        if path is None or not isinstance(path, (str, os.PathLike)):
            continue
        if _same_file(out, os.fspath(path)):
            raise MediaError(f"--out {out} is the input {role} {os.fspath(path)}: writing it would destroy the "
                             "input; choose another output path (nothing was written)")
    check_writable_folder(out)


def check_writable_folder(path) -> None:
    """MediaError, before any work, unless `path`'s folder exists and this process may create files in it."""
    folder = pathlib.Path(path).parent
    if not folder.is_dir():
        raise MediaError(f"cannot write {path}: folder {folder} does not exist; create it first")
    ok = os.access(folder, os.W_OK | os.X_OK)
    if ok:  # a probe file too: os.access says yes to root on a read-only mount
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".s2v_probe")
            os.close(fd)
            os.unlink(probe)
        except OSError:
            ok = False
    if not ok:
        raise MediaError(f"cannot write {path}: folder {folder} is not writable; choose another --out "
                         "(nothing was computed)")
