"""Orbax checkpoints of a training run: periodic, best-on-validation, resume, inference.

Layout of a work directory:

    workdir/config.json          the run's config (for people and tools)
    workdir/checkpoints/<step>/  periodic checkpoints (the last train.keep_checkpoints kept)
    workdir/best/<step>/         the checkpoint best on validation by the task's best_metric (one kept)

Each step directory is an Orbax composite of four items:
`state` (TrainState: step, params, opt_state, batch_stats; StandardSave),
`data` (the train loader's state, JSON, so the data order resumes exactly),
`meta` (early-stopping bookkeeping and the latest validation metrics, JSON) and
`config` (JSON), so a single step directory is enough to rebuild the model.
"""

import json
import os
import types
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from s2v_jax.config_utils import config_to_json_dict, stored_config
from s2v_jax.errors import TrainingError
from s2v_jax.train import export
from s2v_jax.train.state import abstract_train_state, abstract_variables
from s2v_jax.train.tasks import TASKS, get_task

STATE, DATA, META, CONFIG = "state", "data", "meta", "config"
CONFIG_FILE = "config.json"


def write_config_json(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes workdir/config.json (process 0 only)."""
    if jax.process_index() != 0:
        return
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config_to_json_dict(config), f, indent=2, sort_keys=True)


def abstract_like(tree, sharding=None):
    """ShapeDtypeStructs of a pytree (the restore target), placed with `sharding`
    (default: the first local device)."""
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x), sharding=sharding), tree)


DAMAGE_MARKERS = ("OUT_OF_RANGE", "DATA_LOSS", "not valid for value of size", "Error reading", "_METADATA",
                  "does not exist", "unexpected end", "corrupt", "Unable to", "checksum", "truncated")


class DamagedCheckpointError(TrainingError):
    """A checkpoint step whose files cannot be read back (truncated, deleted, overwritten)."""

    # The CLI exits at once after its one line: a normal shutdown would run the failed restore's
    # callbacks into Orbax's closed event loop (see silence_restore_callbacks).
    exit_at_once = True


def error_chain(error: BaseException):
    """`error` and every exception behind it: its cause, its context, an exception group's members
    (Orbax versions wrap the storage layer's error differently: 0.11 raised it, 0.12 raises a bare
    Exception whose cause it is)."""
    todo, seen = [error], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__] + list(getattr(e, "exceptions", ()) or ()))


def damaged_files(step_dir: Optional[str]) -> Optional[str]:
    """What is visibly wrong with a step directory's files, or None: an empty file, a JSON metadata
    file that does not parse (a truncated or half-copied checkpoint), or an Orbax array store
    (`manifest.ocdbt`) without the `_METADATA` that describes its tree (a partial copy)."""
    if not step_dir or not os.path.isdir(step_dir):
        return None
    for root, _, names in os.walk(step_dir):
        if "manifest.ocdbt" in names and "_METADATA" not in names:
            return f"{os.path.join(root, '_METADATA')} is missing"
        for name in names:
            path = os.path.join(root, name)
            if os.path.getsize(path) == 0:
                return f"{path} is empty"
            if name in ("_METADATA", "_CHECKPOINT_METADATA", "_sharding") or name.endswith(".json"):
                try:
                    with open(path, "rb") as f:
                        json.loads(f.read().decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    return f"{path} is not readable JSON"
    return None


def is_damage(error: BaseException, step_dir: Optional[str] = None) -> bool:
    """Whether a restore error means unreadable files, not a model/optimizer that does not match: any
    exception in its chain (`error_chain`) is an I/O error or carries a storage-layer read status
    (tensorstore's OUT_OF_RANGE, DATA_LOSS, ...), or `step_dir`'s files are visibly damaged."""
    for e in error_chain(error):
        if isinstance(e, (OSError, EOFError)):
            return True
        text = f"{type(e).__name__}: {e}"
        if any(m in text for m in DAMAGE_MARKERS):
            return True
    return damaged_files(step_dir) is not None


_SHUTDOWN_NOISE = ("Event loop is closed", "sys.meta_path is None")


def silence_restore_callbacks() -> None:
    """After a failed restore, tensorstore's callbacks keep calling into Orbax's closed asyncio loop from
    their threads, each printing a traceback (pages of them, before and after the one-line error),
    some while the failure is still propagating. Installed before every restore (once per process),
    it drops exactly those (RuntimeError 'Event loop is closed', ImportError at shutdown) from
    `sys.unraisablehook` and `threading.excepthook`; everything else is reported as before."""
    import sys
    import threading

    if getattr(sys.unraisablehook, "_s2v_filter", False):
        return
    unraisable, thread_hook = sys.unraisablehook, threading.excepthook

    def noise(exc) -> bool:
        return isinstance(exc, (RuntimeError, ImportError)) and any(m in str(exc) for m in _SHUTDOWN_NOISE)

    def on_unraisable(u):
        if not noise(u.exc_value):
            unraisable(u)

    def on_thread(args):
        if not noise(args.exc_value):
            thread_hook(args)

    on_unraisable._s2v_filter = True
    sys.unraisablehook, threading.excepthook = on_unraisable, on_thread
    # Orbax 0.11: the other reads of the failed restore are still pending when its asyncio.run() ends,
    # and asyncio logs each one's exception with its traceback (40,000 lines for the truncated step of
    # issue #33), after the one-line error. Those records only; asyncio's other errors are logged as before.
    import logging

    logging.getLogger("asyncio").addFilter(
        lambda record: "unhandled exception during asyncio.run() shutdown" not in record.getMessage())


def damaged(where: str, error: BaseException, advice: str = "") -> DamagedCheckpointError:
    """The one-line error for the unreadable checkpoint at `where` (its step directory): what its files
    show (`damaged_files`, the same words on every Orbax version) or else the restore error's cause."""
    cause = damaged_files(where) or damage_cause(error)
    return DamagedCheckpointError(f"checkpoint {where} is damaged ({cause})" + (f"; {advice}" if advice else ""))


def damage_cause(error: BaseException) -> str:
    """The first line of a restore error, cut to 160 characters (tensorstore specs run to pages): of the
    storage layer's own error where the chain has one (Orbax 0.12 wraps it in a bare Exception)."""
    marked = [e for e in error_chain(error) if any(m in f"{type(e).__name__}: {e}" for m in DAMAGE_MARKERS)]
    error = marked[-1] if marked else error
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    line = line.split(" [tensorstore_spec=")[0]
    return line if len(line) <= 160 else line[:157] + "..."


def _manager(directory: str, max_to_keep: Optional[int], read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only, read_only=read_only)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


class Checkpointer:
    """Periodic + best-on-validation checkpoints of one work directory.

    All processes must call `save`/`restore` (Orbax coordinates them); JSON
    items are written by the primary process. With several processes, the
    data state saved is process 0's loader state.
    """

    def __init__(self, workdir: str, *, keep: int = 3):
        self.workdir = workdir
        self._keep = max(1, int(keep))
        self.periodic = _manager(os.path.join(workdir, "checkpoints"), self._keep)
        self.best = _manager(os.path.join(workdir, "best"), 1)

    def latest_step(self) -> Optional[int]:
        return self.periodic.latest_step()

    def best_step(self) -> Optional[int]:
        return self.best.latest_step()

    def save(self, step: int, state, *, data_state: Dict[str, Any], meta: Dict[str, Any],
             config: ml_collections.ConfigDict, best: bool = False) -> None:
        """Saves a periodic checkpoint (or, with `best=True`, replaces the best one)."""
        manager = self.best if best else self.periodic
        if manager.latest_step() == step:
            return  # already saved at this step (e.g. a periodic step that is also the last)
        if jax.process_count() > 1:
            # One save in flight at a time: the finalising thread of every Orbax manager meets the other
            # processes at a barrier of one fixed name, so a periodic and a best save finalising together
            # fail ('Barrier ThreadSaveMultiHostValueHolder:set_value_start is already ongoing').
            self.wait()
        args = ocp.args.Composite(**{
            STATE: ocp.args.StandardSave(state),
            DATA: ocp.args.JsonSave(data_state),
            META: ocp.args.JsonSave(meta),
            CONFIG: ocp.args.JsonSave(config_to_json_dict(config)),
        })
        manager.save(int(step), args=args, force=True)

    def restore(self, abstract_state, step: Optional[int] = None) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
        """(state, data_state, meta) of a periodic checkpoint (default: the latest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise TrainingError(f"no checkpoint to restore in {self.workdir}/checkpoints")
        silence_restore_callbacks()
        try:
            out = self.periodic.restore(step, args=ocp.args.Composite(**{
                STATE: ocp.args.StandardRestore(abstract_state),
                DATA: ocp.args.JsonRestore(),
                META: ocp.args.JsonRestore(),
            }))
        except Exception as e:  # noqa: BLE001 - sorted into damaged or mismatched below
            where = f"{self.workdir}/checkpoints/{step}"
            if is_damage(e, where):
                raise damaged(where, e) from None
            if isinstance(e, (ValueError, KeyError, TypeError)):
                raise TrainingError(f"checkpoint {where} does not match this config's model and optimizer "
                                    f"({type(e).__name__}: {damage_cause(e)}); use a fresh --workdir") from None
            raise
        return out[STATE], dict(out[DATA] or {}), dict(out[META] or {})

    def all_steps(self):
        return sorted(self.periodic.all_steps())

    def quarantine(self, step: int) -> str:
        """Moves a damaged periodic step aside (`<step>.damaged`, kept for a person to look at, never
        deleted) so that new saves and later resumes do not trip on it; returns the new path."""
        src = os.path.join(self.workdir, "checkpoints", str(step))
        dst = f"{src}.damaged"
        n = 1
        while os.path.exists(dst):
            n += 1
            dst = f"{src}.damaged{n}"
        if jax.process_index() == 0:
            os.replace(src, dst)
        self.periodic.close()
        self.periodic = _manager(os.path.join(self.workdir, "checkpoints"), self._keep)
        return dst

    def wait(self) -> None:
        """Blocks until background (async) saves are written."""
        self.periodic.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.periodic.close()
        self.best.close()


# ---------------------------------------------------------------- inference

def _is_step_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, STATE)) and os.path.isdir(os.path.join(path, CONFIG))


def resolve_checkpoint_dir(path: str) -> str:
    """A step directory from a work directory (best, else latest), a manager directory or a step directory."""
    path = os.path.abspath(path)
    if _is_step_dir(path):
        return path
    candidates = [os.path.join(path, "best"), os.path.join(path, "checkpoints"), path]
    for directory in candidates:
        if not os.path.isdir(directory):
            continue
        # the step directories themselves (no read-only CheckpointManager: its absl warnings on every
        # load read like problems); Orbax's unfinished '<step>.orbax-checkpoint-tmp-*' and our
        # '<step>.damaged' are not digits
        steps = [int(d) for d in os.listdir(directory) if d.isdigit() and _is_step_dir(os.path.join(directory, d))]
        if steps:
            return os.path.join(directory, str(max(steps)))
    raise TrainingError(f"no checkpoint found at {path!r}: give a training work directory, its "
                        "checkpoints/ or best/ folder, or one step directory")


def read_config(step_dir: str) -> ml_collections.ConfigDict:
    """The config stored in one checkpoint step directory."""
    reader = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    raw = reader.restore(step_dir, args=ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()}))[CONFIG]
    return stored_config(raw)


def _matching(variables, abstract_state, message: str) -> Dict[str, Any]:
    """`variables` ({'params', 'batch_stats'}) as jax arrays, checked against the shapes of the model's
    abstract train state (anything with .params and .batch_stats); TrainingError(`message`) when they differ."""
    want = {"params": abstract_state.params, "batch_stats": abstract_state.batch_stats}
    got_shapes = jax.tree.map(np.shape, variables)
    want_shapes = jax.tree.map(lambda x: tuple(x.shape), want)
    if jax.tree.structure(got_shapes) != jax.tree.structure(want_shapes) or got_shapes != want_shapes:
        raise TrainingError(message)
    return jax.tree.map(jnp.asarray, variables)


def _variables_only(reader, step_dir: str, abstract_state) -> Dict[str, Any]:
    """params and batch_stats of a checkpoint whose optimizer state has another structure
    (a sync expert saved before the one optimizer factory), checked against the model's shapes."""
    raw = reader.restore(step_dir, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore()}))[STATE]
    return _matching({"params": raw["params"], "batch_stats": raw.get("batch_stats") or {}}, abstract_state,
                     f"checkpoint {step_dir}: its parameters do not match the model its stored config "
                     "describes; it was written by an incompatible version; retrain it")


def _restore_variables(reader, step_dir: str, abstract_state) -> Dict[str, Any]:
    """params and batch_stats of one step directory (the params-only path for old optimizer states)."""
    silence_restore_callbacks()
    try:
        restored = reader.restore(step_dir, args=ocp.args.Composite(**{
            STATE: ocp.args.StandardRestore(abstract_like(abstract_state))}))[STATE]
        return {"params": restored.params, "batch_stats": restored.batch_stats}
    except Exception as e:  # noqa: BLE001 - damage goes up; a mismatched optimizer state may be an old layout
        if is_damage(e, step_dir) or not isinstance(e, (ValueError, KeyError, TypeError)):
            raise
        return _variables_only(reader, step_dir, abstract_state)


def _check_task(config, where: str, tasks, hint: str):
    task = get_task(config)
    if tasks is not None and task.name not in tasks:
        wanted = " or ".join(TASKS[t].title for t in tasks)
        raise TrainingError(f"checkpoint {where} holds a {task.name!r} model, not {wanted}"
                            + (f"; {hint}" if hint else ""))
    return task


def _other_steps_hint(step_dir: str) -> str:
    """What to do about a damaged step: the other steps of its work directory, by name."""
    manager_dir = os.path.dirname(step_dir)
    workdir = os.path.dirname(manager_dir)
    steps = []
    for sub in ("checkpoints", "best"):
        d = os.path.join(workdir, sub)
        if os.path.isdir(d):
            steps += [os.path.join(d, n) for n in sorted(os.listdir(d), key=lambda n: (len(n), n))
                      if n.isdigit() and os.path.join(d, n) != step_dir]
    if steps:
        return f"pass another step, e.g. --checkpoint {steps[-1]}, or retrain"
    return "retrain it, or resume its training to write a new checkpoint"


def load_checkpoint(path: str, tasks: Optional[Tuple[str, ...]] = None, hint: str = ""
                    ) -> Tuple[ml_collections.ConfigDict, Dict[str, Any]]:
    """(config, variables) of any task's checkpoint; variables = {'params'[, 'batch_stats']}.

    `path`: a work directory (its best checkpoint, else its latest), a
    `checkpoints/` or `best/` folder (latest step), one step directory, or an
    exported model directory (`s2v_jax.train.export`, what the package ships). The
    model is rebuilt from the config stored in the checkpoint; `tasks` names
    the tasks the caller accepts (a TrainingError otherwise, ending with `hint`:
    what the user should pass instead).
    """
    if export.is_exported(path):
        config, variables = export.load_exported(path)
        task = _check_task(config, path, tasks, hint)
        shapes = abstract_variables(config, task.build_model(config), task)  # no optimizer: inference only
        abstract = types.SimpleNamespace(params=shapes["params"], batch_stats=shapes.get("batch_stats", {}))
        variables = _matching({"params": variables.get("params", {}), "batch_stats": variables.get("batch_stats", {})},
                              abstract, f"exported model {path}: its weights do not match the model its config.json "
                              "describes; export it again with this version (s2v export)")
        if not variables["batch_stats"]:
            del variables["batch_stats"]
        return config, variables
    step_dir = resolve_checkpoint_dir(path)
    config = read_config(step_dir)
    task = _check_task(config, step_dir, tasks, hint)
    model = task.build_model(config)
    abstract = abstract_train_state(config, model, task)
    reader = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        variables = _restore_variables(reader, step_dir, abstract)
    except TrainingError:
        raise
    except Exception as e:  # noqa: BLE001 - one line instead of pages of tensorstore tracebacks
        if not is_damage(e, step_dir):
            raise
        raise damaged(step_dir, e, _other_steps_hint(step_dir)) from None
    if not variables["batch_stats"]:
        del variables["batch_stats"]
    return config, variables
