"""`train_and_evaluate`: the one training loop, for every task (`config.task`).

Resumes from the work directory's latest checkpoint (state and data order),
syncs with the host only at log/eval/checkpoint steps, validates every
`train.eval_every` steps (the task's metrics, beside its baseline), keeps the
best checkpoint on the task's `best_metric` (with `train.eval_at_start`, the
starting weights, step 0, compete too: a fine-tune never ends worse than its
base on the held-out part), stops early after
`train.early_stopping_patience` evaluations without improvement, stops on a
non-finite loss naming the step, and writes metrics (process 0) to
TensorBoard and `workdir/metrics.jsonl`.
"""

import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from s2v_jax.errors import DataError, TrainingError
from s2v_jax.train import checkpointing, parallel
from s2v_jax.train.init_from import overlay_variables
from s2v_jax.train.metrics import MetricWriter
from s2v_jax.train.state import abstract_train_state, create_train_state, state_from_variables
from s2v_jax.train.steps import make_eval_step, make_train_step
from s2v_jax.train.tasks import Task, get_task
from s2v_jax.train.tasks.base import EvalBatchesFn, LoaderFn
from s2v_jax.train.workdir_lock import WorkdirLock


def data_functions(config: ml_collections.ConfigDict, train_loader_fn: Optional[LoaderFn] = None,
                   eval_batches_fn: Optional[EvalBatchesFn] = None, task: Optional[Task] = None):
    """The loader factories: the injected ones, else the task's (which builds the dataset on first use)."""
    if train_loader_fn is not None and eval_batches_fn is not None:
        return train_loader_fn, eval_batches_fn
    own_train, own_eval = (task or get_task(config)).data_functions(config)
    return train_loader_fn or own_train, eval_batches_fn or own_eval


def _initial_meta(best_key: str) -> Dict[str, Any]:
    return {best_key: None, "best_step": None, "best_eval": None, "last_eval": None,
            "evals_without_improvement": 0, "stopped_early": False}


def check_finite(rows: List[Dict[str, np.ndarray]], first_step: int) -> None:
    """Raises TrainingError naming the first step whose loss is NaN or infinite."""
    for i, row in enumerate(rows):
        loss = float(row["loss"])
        if not np.isfinite(loss):
            raise TrainingError(f"non-finite loss ({loss}) at step {first_step + i}: training stopped; lower "
                                "train.learning_rate (or add warm-up) or check the data, then resume from "
                                "the last checkpoint")


def close_run(bar, writer, ckpt, loader) -> None:
    """End of a training loop, also on error: progress bar, metric writer, pending
    checkpoint writes and the loader (its worker processes)."""
    if bar is not None:
        bar.close()
    writer.close()
    ckpt.wait()
    ckpt.close()
    if hasattr(loader, "close"):
        loader.close()


def evaluate(p_eval: Callable, state, batches, dp: parallel.DataParallel) -> Dict[str, float]:
    """Mean validation metrics over `batches`: the task's sums divided by the summed 'count', or those named
    `G_...` by the summed `G_count` where the task gives one (metrics of a subset of the windows)."""
    sums = None
    for batch in batches:
        out = p_eval(state, dp.shard_batch(batch))
        sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
    if sums is None:
        raise DataError("the validation split gave no batches")
    host = dp.fetch(sums)
    count = float(host.pop("count"))
    groups = {k[:-len("count")]: float(host.pop(k)) for k in list(host) if k.endswith("_count")}
    out = {}
    for k, v in sorted(host.items()):
        n = next((c for g, c in groups.items() if k.startswith(g)), count)
        out[k] = float(v) / max(n, 1e-9)
    return out


def _progress_bar(config, task: Task, start: int, total: int):
    if jax.process_index() != 0 or not bool(config.train.progress_bar):
        return None
    from tqdm import tqdm  # only process 0 draws a bar
    return tqdm(total=total, initial=start, desc=f"train {task.name}", unit="step", dynamic_ncols=True)


class Training(NamedTuple):
    """What a training run is made of before any data or checkpoint (`build_training`): the task,
    its data-parallel wrapper (`train.parallel`), the model built for it, and the compiled train and
    eval steps: `train_step(state, dp.shard_batch(batch)) -> (state, metrics)`, the same for eval."""
    task: Task
    dp: parallel.DataParallel
    model: Any
    train_step: Callable
    eval_step: Callable


def build_training(config: ml_collections.ConfigDict) -> Training:
    """The task, data parallelism, model and compiled steps of `config`, as the loop uses them (the
    benchmarks time these same objects: benchmarks/bench_train_step.py, benchmarks/accelerator.py)."""
    t = config.train
    task = get_task(config)
    dp = parallel.DataParallel(t.parallel)
    dp.check_batch_size(int(t.batch_size))
    model = task.build_model(config, axis_name=dp.axis_name)
    return Training(task, dp, model, dp.compile_train_step(make_train_step(config, task, axis_name=dp.axis_name)),
                    dp.compile_eval_step(make_eval_step(config, task, axis_name=dp.axis_name)))


def initial_state(config: ml_collections.ConfigDict, training: Training,
                  initial_variables: Optional[Dict[str, Any]] = None):
    """The host TrainState a new run starts from: `initial_variables` (a fine-tune's base) if given,
    else a fresh initialisation (`train.seed`) overlaid with `train.init_from`'s weights if set."""
    t = config.train
    if initial_variables is not None:
        return state_from_variables(config, training.model, initial_variables)
    fresh = create_train_state(config, training.model, jax.random.PRNGKey(int(t.seed)), training.task)
    if not t.init_from:
        return fresh
    variables = {"params": fresh.params, "batch_stats": fresh.batch_stats}
    variables = overlay_variables(variables, str(t.init_from), training.task.name, widen=bool(t.init_widen))
    return state_from_variables(config, training.model, variables)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       train_loader_fn: Optional[LoaderFn] = None,
                       eval_batches_fn: Optional[EvalBatchesFn] = None,
                       initial_variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Trains `config`'s task in `workdir` (resuming there) and returns a summary dict:
    {'task', 'step', 'stopped_early', 'train_loss', 'train_metrics', 'last_eval', 'best_eval',
    'best_step', 'steps_per_sec'}.

    `train_loader_fn(config, *, process_index, process_count)` -> loader (iterator of
    numpy batch dicts with get_state/set_state) and
    `eval_batches_fn(config, *, num_batches, process_index, process_count)` -> list of
    batches default to the task's own (`Task.data_functions`).
    `initial_variables` ({'params'[, 'batch_stats']}, e.g. a trained model's, for fine-tuning)
    start a new run instead of a random initialisation; a resumed run ignores them.
    """
    training = build_training(config)
    lock = WorkdirLock(workdir, enabled=jax.process_index() == 0).acquire()  # one run per workdir, first
    try:
        train_loader_fn, eval_batches_fn = data_functions(config, train_loader_fn, eval_batches_fn, training.task)
        return _train(config, workdir, training, train_loader_fn, eval_batches_fn, initial_variables)
    finally:
        lock.release()


def _restore_newest_good(ckpt, target):
    """(state, data_state, meta, step) of the newest periodic checkpoint that reads back; a damaged
    newer one is moved aside (`<step>.damaged`) with a warning naming it."""
    for step in reversed(ckpt.all_steps()):
        try:
            return (*ckpt.restore(target, step), step)
        except checkpointing.DamagedCheckpointError as e:
            moved = ckpt.quarantine(step)
            logging.warning("%s; moved it to %s and resuming from the step before it", e, moved)
    raise TrainingError(f"every checkpoint in {ckpt.workdir}/checkpoints is damaged (moved aside as "
                        "<step>.damaged); start again with a fresh --workdir")


def _train(config, workdir, training: Training, train_loader_fn, eval_batches_fn,
           initial_variables=None) -> Dict[str, Any]:
    """The loop itself (see `train_and_evaluate`), with the work directory locked."""
    t = config.train
    task, dp, model = training.task, training.dp, training.model
    process_index, process_count = jax.process_index(), jax.process_count()
    num_steps, global_batch = int(t.num_steps), int(t.batch_size)
    log_every, eval_every, ckpt_every = (max(1, int(t.log_every)), int(t.eval_every), int(t.checkpoint_every))
    best_key = f"best_{task.best_metric}"
    ckpt = checkpointing.Checkpointer(workdir, keep=int(t.keep_checkpoints))
    checkpointing.write_config_json(config, workdir)
    loader = train_loader_fn(config, process_index=process_index, process_count=process_count)
    meta = _initial_meta(best_key)
    step = 0
    latest = ckpt.latest_step()
    if latest is None:
        host_state = initial_state(config, training, initial_variables)
    else:
        target = checkpointing.abstract_like(abstract_train_state(config, model, task))
        host_state, data_state, saved_meta, latest = _restore_newest_good(ckpt, target)
        meta.update(saved_meta)
        loader.set_state(data_state)
        step = int(jax.device_get(host_state.step))
        logging.info("resumed %s from %s/checkpoints/%d (step %d)", task.name, workdir, latest, step)
    start_step = step
    state = dp.put_state(host_state)
    del host_state
    batches = loader if hasattr(loader, "__next__") else iter(loader)

    p_train, p_eval = training.train_step, training.eval_step
    eval_batches = None
    writer = MetricWriter(workdir, resume_step=step if latest is not None else None)
    bar = _progress_bar(config, task, step, num_steps)
    patience = int(t.early_stopping_patience)
    summary = {"task": task.name, "train_loss": None, "train_metrics": None, "steps_per_sec": None}
    pending: List[Any] = []  # device metrics of the steps since the last sync
    first_pending = step + 1
    timer, timer_step = time.time(), step
    stop = bool(meta["stopped_early"]) or (patience > 0 and meta["evals_without_improvement"] >= patience)

    def validate(at: int) -> bool:
        """Validates the state at step `at`, keeps it if best; True when early stopping says stop."""
        nonlocal eval_batches
        if eval_batches is None:
            eval_batches = eval_batches_fn(config, num_batches=int(t.eval_batches),
                                           process_index=process_index, process_count=process_count)
        val = evaluate(p_eval, state, eval_batches, dp)
        writer.write_scalars(at, {f"val/{k}": v for k, v in val.items()})
        logging.info("step %d: %s", at, task.describe(val))
        meta["last_eval"] = val
        best = val[task.best_metric]
        if meta[best_key] is None or best < meta[best_key]:
            meta.update({best_key: best, "best_step": at, "best_eval": val, "evals_without_improvement": 0})
            ckpt.save(at, dp.state_for_checkpoint(state), data_state=loader.get_state(), meta=meta,
                      config=config, best=True)
            return False
        meta["evals_without_improvement"] += 1
        if patience > 0 and meta["evals_without_improvement"] >= patience:
            meta["stopped_early"] = True
            logging.info("early stopping at step %d: %d evaluations without improvement "
                         "(best val %s %.4f at step %d)", at, patience, task.best_metric,
                         meta[best_key], meta["best_step"])
            return True
        return False

    if stop:
        logging.info("this run stopped early before (%d evaluations without improvement); not training",
                     meta["evals_without_improvement"])
    try:
        if latest is None and bool(t.eval_at_start) and eval_every > 0 and not stop:
            validate(step)  # the starting weights (a fine-tune's base) compete for best, as step 0
        while step < num_steps and not stop:
            try:
                batch = next(batches)
            except StopIteration as e:
                raise DataError(f"the train loader ran out of batches at step {step + 1}") from e
            state, step_metrics = p_train(state, dp.shard_batch(batch))
            step += 1
            pending.append(step_metrics)
            if bar is not None:
                bar.update(1)
            if step == start_step + 1:
                jax.block_until_ready(step_metrics)  # once: report compile time apart from throughput
                logging.info("first step (with compilation) took %.1f s", time.time() - timer)
                timer, timer_step = time.time(), step
            is_eval = eval_every > 0 and (step % eval_every == 0 or step == num_steps)
            is_ckpt = (ckpt_every > 0 and step % ckpt_every == 0) or step == num_steps
            if not (step % log_every == 0 or is_eval or is_ckpt):
                continue

            # Host sync: fetch the pending metrics, stop on a non-finite loss, log.
            rows = dp.fetch(pending)
            check_finite(rows, first_pending)
            elapsed = time.time() - timer
            scalars = {f"train/{k}": float(np.mean([r[k] for r in rows])) for k in rows[-1]}
            if step > timer_step and elapsed > 0:
                scalars["train/steps_per_sec"] = (step - timer_step) / elapsed
                scalars["train/samples_per_sec"] = scalars["train/steps_per_sec"] * global_batch
                summary["steps_per_sec"] = scalars["train/steps_per_sec"]
            summary["train_loss"] = scalars["train/loss"]
            summary["train_metrics"] = {k[len("train/"):]: v for k, v in scalars.items()}
            writer.write_scalars(step, scalars)
            if bar is not None:
                bar.set_postfix(loss=f"{scalars['train/loss']:.4f}")
            pending, first_pending = [], step + 1

            if is_eval:
                stop = validate(step) or stop
            if is_ckpt or stop:
                ckpt.save(step, dp.state_for_checkpoint(state), data_state=loader.get_state(), meta=meta,
                          config=config)
            timer, timer_step = time.time(), step
    finally:
        close_run(bar, writer, ckpt, loader)

    summary.update(step=step, stopped_early=bool(meta["stopped_early"]), last_eval=meta["last_eval"],
                   best_eval=meta["best_eval"], best_step=meta["best_step"])
    return summary
