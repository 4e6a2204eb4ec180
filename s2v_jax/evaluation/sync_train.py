"""Training the sync expert: its sampler, pure train/eval steps and loop.

Samples. Every `data.frame_stride`-th frame k of a registered face track is a
centre: its five lower-face frames k-2..k+2 (video), the in-sync MFCC of
frame k (audio) and the MFCC of frame k+s (audio_shifted), with s drawn
uniformly from the shifts min_offset <= |s| <= max_offset that stay inside
the track. Batches are numpy dicts:
    'video'          uint8   [b, 112 - top, 112, 5]  (15 channels for RGB)
    'audio'          float32 [b, 12, 20, 1]          in sync with the video
    'audio_shifted'  float32 [b, 12, 20, 1]          out of sync
    'offset'         int32   [b]  AV offset d = -s of the shifted pair (positive = audio leads)
Tracks come from the TFDS corpus that `s2v_jax.input_pipeline` reads (its
`ensure_dataset`, `split_tracks`, `TrackSamples` and `Loader` are reused, so
the data order resumes with the checkpoint), or from in-memory arrays
(`ArrayTracks`, for tests and notebooks).

Loss (SyncNet's contrastive loss): L = mean(d_pos^2 + max(margin - d_neg, 0)^2) / 2,
d the Euclidean distance of the video and audio embeddings. Validation
reports the loss, the mean distances and the pair accuracy: the fraction of
windows whose in-sync distance is below their shifted one.

Checkpoints are `s2v_jax.checkpointing`'s (Orbax; state, loader state, meta
and config), resumed automatically from the work directory.
"""

import functools
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import grain.python as grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from s2v_jax import checkpointing, parallel
from s2v_jax.errors import ConfigError, DataError, TrainingError
from s2v_jax.evaluation import syncnet
from s2v_jax.metrics import MetricWriter
from s2v_jax.train_step import TrainState, create_learning_rate_fn

Batch = Dict[str, Any]


# ---------------------------------------------------------------- samples

def _frame(frames, j: int) -> np.ndarray:
    """Frame j of a track: JPEG/PNG bytes (TFDS records) or an array row."""
    x = frames[j]
    if isinstance(x, (bytes, np.bytes_)):
        from tfds_builders.common import decode_frame

        return decode_frame(x)
    return np.asarray(x)


def shift_candidates(centre: int, num_frames: int, min_offset: int, max_offset: int) -> np.ndarray:
    """Shifts s with min_offset <= |s| <= max_offset and 0 <= centre + s < num_frames
    (falling back to any non-zero shift inside the track when the track is short)."""
    s = np.arange(-max_offset, max_offset + 1)
    s = s[(np.abs(s) >= max(1, min_offset)) & (centre + s >= 0) & (centre + s < num_frames)]
    if len(s) == 0:
        s = np.arange(-centre, num_frames - centre)
        s = s[s != 0]
    if len(s) == 0:
        raise DataError(f"a {num_frames}-frame track has no shifted audio for the sync expert (needs >= 2 frames)")
    return s


def _jitter(rng: np.random.Generator, video: np.ndarray) -> np.ndarray:
    """Random contrast/brightness and a horizontal flip of stacked frames (lip sync is unchanged)."""
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
    out = np.clip((video.astype(np.float32) - 128.0) * contrast + 128.0 + brightness, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def sync_sample(rng: np.random.Generator, frames, mfcc, num_frames: int, centre: int, *, lower_face_top: int,
                grayscale: bool, min_offset: int, max_offset: int, augment: bool) -> Dict[str, np.ndarray]:
    """One training example around track frame `centre` (see the module docstring)."""
    shift = int(rng.choice(shift_candidates(centre, num_frames, min_offset, max_offset)))
    crops = np.stack([_frame(frames, int(j)) for j in syncnet.frame_indices(centre, num_frames)])
    video = syncnet.video_input(crops, lower_face_top, grayscale)
    if augment:
        video = _jitter(rng, video)
    mfcc = np.asarray(mfcc)
    return {"video": video, "audio": syncnet.audio_input(mfcc[centre]),
            "audio_shifted": syncnet.audio_input(mfcc[centre + shift]), "offset": np.int32(-shift)}


class MakeSyncSample(grain.RandomMapTransform):
    """grain map: {'example', 'frame'} (input_pipeline.TrackSamples' elements) -> a sync example."""

    def __init__(self, config: ml_collections.ConfigDict, augment: bool, debug: bool = False):
        self.kw = dict(lower_face_top=int(config.model.lower_face_top), grayscale=bool(config.model.grayscale),
                       min_offset=int(config.data.min_offset), max_offset=int(config.data.max_offset),
                       augment=augment)
        self.debug = debug

    def random_map(self, element: Dict[str, Any], rng: np.random.Generator) -> Dict[str, np.ndarray]:
        ex = element["example"]
        out = sync_sample(rng, ex["frames"], ex["mfcc"], int(ex["num_frames"]), int(element["frame"]), **self.kw)
        if self.debug:  # where the example came from, for tests
            out.update(record=np.int64(element["record"]), centre=np.int64(element["frame"]))
        return out


class ArrayTracks(grain.RandomAccessDataSource):
    """In-memory tracks as a grain source with TrackSamples' element format.

    tracks: sequence of {'frames': uint8 [T, 112, 112, 3], 'mfcc': float32 [T, 12, 35]}.
    """

    def __init__(self, tracks: Sequence[Dict[str, np.ndarray]], stride: int = 1):
        from s2v_jax.input_pipeline import sample_index

        self.tracks = [{"frames": np.asarray(t["frames"]), "mfcc": np.asarray(t["mfcc"], np.float32),
                        "num_frames": len(t["frames"])} for t in tracks]
        self.records, self.frames = sample_index([t["num_frames"] for t in self.tracks], stride, 0)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        r = int(self.records[i])
        return {"example": self.tracks[r], "record": r, "frame": int(self.frames[i])}

    def __repr__(self) -> str:
        return f"ArrayTracks(tracks={len(self.tracks)}, samples={len(self)})"


def make_loader(source, config: ml_collections.ConfigDict, *, batch_size: int, seed: int, augment: bool,
                workers: int = 0, process_index: int = 0, process_count: int = 1, debug: bool = False):
    """Endless shuffled batches of `source` as an input_pipeline.Loader (get_state/set_state).
    `debug` adds each example's 'record' and 'centre' frame."""
    from s2v_jax.input_pipeline import Loader

    if len(source) == 0:
        raise DataError("the sync expert's data source has no samples")
    shard = grain.ShardOptions(shard_index=process_index, shard_count=process_count, drop_remainder=True)
    sampler = grain.IndexSampler(num_records=len(source), shard_options=shard, shuffle=True, num_epochs=None,
                                 seed=seed)
    ops = [MakeSyncSample(config, augment, debug), grain.Batch(batch_size=batch_size, drop_remainder=True)]
    dl = grain.DataLoader(data_source=source, sampler=sampler, operations=ops, worker_count=workers,
                          shard_options=shard, read_options=grain.ReadOptions(num_threads=2, prefetch_buffer_size=16))
    return Loader(dl, len(source), batch_size)


def _per_process_batch(config, process_count: int) -> int:
    batch, rem = divmod(int(config.train.batch_size), process_count)
    if rem or batch == 0:
        raise DataError(f"train.batch_size={config.train.batch_size} does not split over {process_count} processes")
    return batch


def _tfds_source(config, split: str):
    from s2v_jax import input_pipeline

    builder = input_pipeline.ensure_dataset(config)
    num_frames = input_pipeline.split_tracks(builder, split)
    return input_pipeline.TrackSamples(os.fspath(builder.data_dir), builder.info.full_name, split,
                                       int(config.data.frame_stride), 0, num_frames)


def create_train_loader(config, *, process_index: int = 0, process_count: int = 1, debug: bool = False):
    """Training batches from the TFDS corpus's 'train' split."""
    return make_loader(_tfds_source(config, "train"), config, batch_size=_per_process_batch(config, process_count),
                       seed=int(config.data.shuffle_seed), augment=bool(config.data.augment),
                       workers=int(config.data.num_workers), process_index=process_index, process_count=process_count,
                       debug=debug)


def create_eval_batches(config, *, num_batches: int, process_index: int = 0, process_count: int = 1) -> List[Batch]:
    """Fixed validation batches (seed 0, no augmentation) from the 'validation' split."""
    loader = make_loader(_tfds_source(config, "validation"), config,
                         batch_size=_per_process_batch(config, process_count), seed=0, augment=False,
                         process_index=process_index, process_count=process_count)
    return [next(loader) for _ in range(num_batches)]


def array_data_fns(train_tracks, eval_tracks=None, stride: int = 1):
    """(train_loader_fn, eval_batches_fn) over in-memory tracks, for `train_sync`'s injection points."""
    eval_tracks = train_tracks if eval_tracks is None else eval_tracks

    def train_loader_fn(config, *, process_index=0, process_count=1):
        return make_loader(ArrayTracks(train_tracks, stride), config,
                           batch_size=_per_process_batch(config, process_count), seed=int(config.data.shuffle_seed),
                           augment=bool(config.data.augment), process_index=process_index,
                           process_count=process_count)

    def eval_batches_fn(config, *, num_batches, process_index=0, process_count=1):
        loader = make_loader(ArrayTracks(eval_tracks, stride), config,
                             batch_size=_per_process_batch(config, process_count), seed=0, augment=False,
                             process_index=process_index, process_count=process_count)
        return [next(loader) for _ in range(num_batches)]

    return train_loader_fn, eval_batches_fn


# ---------------------------------------------------------------- state and steps

def _kernel_mask(params):
    return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def create_optimizer(config: ml_collections.ConfigDict, lr_fn) -> optax.GradientTransformation:
    t = config.train
    wd = float(t.weight_decay)
    if t.optimizer == "adam":
        return optax.adamw(lr_fn, weight_decay=wd, mask=_kernel_mask) if wd > 0 else optax.adam(lr_fn)
    if t.optimizer == "sgd":
        tx = optax.sgd(lr_fn, momentum=float(t.momentum) or None)
        return optax.chain(optax.add_decayed_weights(wd, mask=_kernel_mask), tx) if wd > 0 else tx
    raise ConfigError(f"train.optimizer must be 'adam' or 'sgd', not {t.optimizer!r}")


# Init is mostly random-number generation: on CPU, LLVM optimisation costs more than it saves.
_CPU_INIT_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _dummy_inputs(config):
    shapes = syncnet.input_shapes(config)
    return jnp.zeros((1,) + shapes["video"], jnp.uint8), jnp.zeros((1,) + shapes["audio"], jnp.float32)


def _state_from_variables(config, model, variables) -> TrainState:
    tx = create_optimizer(config, create_learning_rate_fn(config))
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                             batch_stats=variables.get("batch_stats", {}))


def create_state(config: ml_collections.ConfigDict, model: syncnet.SyncNet, rng) -> TrainState:
    """Parameters and BatchNorm statistics of the expert, with the config's optimizer."""
    options = _CPU_INIT_OPTIONS if jax.default_backend() == "cpu" else None
    init = jax.jit(functools.partial(model.init, train=False), compiler_options=options)  # one compile, not one per layer
    return _state_from_variables(config, model, init(rng, *_dummy_inputs(config)))


def abstract_state(config: ml_collections.ConfigDict, model: syncnet.SyncNet) -> TrainState:
    """The state's structure with ShapeDtypeStruct leaves (a restore target; nothing is computed)."""
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                               *_dummy_inputs(config))
    return jax.eval_shape(lambda v: _state_from_variables(config, model, v), variables)


def contrastive_loss(d_pos, d_neg, margin: float):
    """SyncNet's contrastive loss: mean(d_pos^2 + max(margin - d_neg, 0)^2) / 2."""
    return 0.5 * jnp.mean(jnp.square(d_pos) + jnp.square(jnp.maximum(margin - d_neg, 0.0)))


def _distances(apply_fn, variables, batch, train: bool):
    """(d_pos [b], d_neg [b], new batch_stats); both audio inputs go through one BatchNorm pass."""
    audio = jnp.concatenate([batch["audio"], batch["audio_shifted"]]).astype(jnp.float32)
    if train:
        (v, a), updates = apply_fn(variables, batch["video"], audio, train=True, mutable=["batch_stats"])
        stats = updates["batch_stats"]
    else:
        v, a = apply_fn(variables, batch["video"], audio, train=False)
        stats = variables["batch_stats"]
    b = v.shape[0]
    dist = lambda x, y: jnp.sqrt(jnp.sum(jnp.square(x - y), axis=-1) + 1e-12)  # noqa: E731
    return dist(v, a[:b]), dist(v, a[b:]), stats


def train_step(state: TrainState, batch: Batch, *, margin: float = 1.0, lr_fn=None,
               axis_name: Optional[str] = None):
    """One optimizer step; returns (state, {'loss', 'd_pos', 'd_neg', 'accuracy', 'grad_norm'[, 'learning_rate']})."""

    def loss_fn(params):
        d_pos, d_neg, stats = _distances(state.apply_fn, {"params": params, "batch_stats": state.batch_stats},
                                         batch, train=True)
        return contrastive_loss(d_pos, d_neg, margin), (d_pos, d_neg, stats)

    (loss, (d_pos, d_neg, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, "d_pos": d_pos.mean(), "d_neg": d_neg.mean(),
               "accuracy": jnp.mean((d_pos < d_neg).astype(jnp.float32))}
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.pmean(metrics, axis_name)
    metrics["grad_norm"] = optax.global_norm(grads)
    if lr_fn is not None:
        metrics["learning_rate"] = lr_fn(state.step)
    return state.apply_gradients(grads=grads, batch_stats=stats), metrics


def eval_step(state: TrainState, batch: Batch, *, margin: float = 1.0, axis_name: Optional[str] = None):
    """Sums over the batch of loss, d_pos, d_neg and correct pairs, plus 'count' (s2v_jax.train.evaluate averages)."""
    d_pos, d_neg, _ = _distances(state.apply_fn, {"params": state.params, "batch_stats": state.batch_stats},
                                 batch, train=False)
    per = 0.5 * (jnp.square(d_pos) + jnp.square(jnp.maximum(margin - d_neg, 0.0)))
    out = {"loss": per.sum(), "d_pos": d_pos.sum(), "d_neg": d_neg.sum(),
           "accuracy": jnp.sum((d_pos < d_neg).astype(jnp.float32)),
           "count": jnp.asarray(d_pos.shape[0], jnp.float32)}
    if axis_name is not None:
        out = jax.lax.psum(out, axis_name)
    return out


# ---------------------------------------------------------------- the loop

def train_sync(config: ml_collections.ConfigDict, workdir: str, *, train_loader_fn: Optional[Callable] = None,
               eval_batches_fn: Optional[Callable] = None) -> Dict[str, Any]:
    """Trains the expert in `workdir` (resuming there); returns {'step', 'train_loss', 'train_accuracy',
    'last_eval', 'best_eval', 'best_step', 'steps_per_sec'}.

    Loader factories default to the TFDS corpus (`create_train_loader`,
    `create_eval_batches`); `array_data_fns` gives in-memory ones.
    """
    from s2v_jax.train import close_run, evaluate  # shared with the generator's loop

    t = config.train
    dp = parallel.DataParallel(t.parallel)
    dp.check_batch_size(int(t.batch_size))
    pi, pc = jax.process_index(), jax.process_count()
    train_loader_fn = train_loader_fn or create_train_loader
    eval_batches_fn = eval_batches_fn or create_eval_batches
    num_steps, log_every = int(t.num_steps), max(1, int(t.log_every))
    eval_every, ckpt_every = int(t.eval_every), int(t.checkpoint_every)

    model = syncnet.build_syncnet(config, axis_name=dp.axis_name)
    host_state = create_state(config, model, jax.random.PRNGKey(int(t.seed)))
    ckpt = checkpointing.Checkpointer(workdir, keep=int(t.keep_checkpoints))
    checkpointing.write_config_json(config, workdir)
    loader = train_loader_fn(config, process_index=pi, process_count=pc)
    meta = {"best_loss": None, "best_step": None, "best_eval": None, "last_eval": None}
    step = 0
    if ckpt.latest_step() is not None:
        host_state, data_state, meta = ckpt.restore(checkpointing.abstract_like(host_state))
        loader.set_state(data_state)
        step = int(jax.device_get(host_state.step))
        logging.info("resumed the sync expert from %s at step %d", workdir, step)
    state = dp.put_state(host_state)
    del host_state
    margin = float(t.margin)
    p_train = dp.compile_train_step(functools.partial(train_step, margin=margin, lr_fn=create_learning_rate_fn(config),
                                                      axis_name=dp.axis_name))
    p_eval = dp.compile_eval_step(functools.partial(eval_step, margin=margin, axis_name=dp.axis_name))
    eval_batches = None
    writer = MetricWriter(workdir)
    bar = None
    if pi == 0 and bool(t.get("progress_bar", True)):
        from tqdm import tqdm
        bar = tqdm(total=num_steps, initial=step, desc="train-sync", unit="step", dynamic_ncols=True)
    summary = {"train_loss": None, "train_accuracy": None, "steps_per_sec": None}
    pending: List[Any] = []
    timer, timer_step = time.time(), step
    try:
        while step < num_steps:
            state, m = p_train(state, dp.shard_batch(next(loader)))
            step += 1
            pending.append(m)
            if bar is not None:
                bar.update(1)
            is_eval = eval_every > 0 and (step % eval_every == 0 or step == num_steps)
            is_ckpt = (ckpt_every > 0 and step % ckpt_every == 0) or step == num_steps
            if not (step % log_every == 0 or is_eval or is_ckpt):
                continue
            rows = dp.fetch(pending)
            for i, row in enumerate(rows):
                if not np.isfinite(float(row["loss"])):
                    raise TrainingError(f"non-finite sync loss at step {step - len(rows) + i + 1}: lower "
                                        "train.learning_rate or check the data, then resume")
            scalars = {f"train/{k}": float(np.mean([r[k] for r in rows])) for k in rows[-1]}
            elapsed = time.time() - timer
            if step > timer_step and elapsed > 0:
                summary["steps_per_sec"] = scalars["train/steps_per_sec"] = (step - timer_step) / elapsed
            summary["train_loss"], summary["train_accuracy"] = scalars["train/loss"], scalars["train/accuracy"]
            writer.write_scalars(step, scalars)
            if bar is not None:
                bar.set_postfix(loss=f"{scalars['train/loss']:.4f}", acc=f"{scalars['train/accuracy']:.2f}")
            pending = []
            if is_eval:
                if eval_batches is None:
                    eval_batches = eval_batches_fn(config, num_batches=int(t.eval_batches), process_index=pi,
                                                   process_count=pc)
                val = evaluate(p_eval, state, eval_batches, dp)
                writer.write_scalars(step, {f"val/{k}": v for k, v in val.items()})
                logging.info("step %d: sync val loss %.4f accuracy %.3f (d_pos %.3f, d_neg %.3f)", step,
                             val["loss"], val["accuracy"], val["d_pos"], val["d_neg"])
                meta["last_eval"] = val
                if meta["best_loss"] is None or val["loss"] < meta["best_loss"]:
                    meta.update(best_loss=val["loss"], best_step=step, best_eval=val)
                    ckpt.save(step, dp.state_for_checkpoint(state), data_state=loader.get_state(), meta=meta,
                              config=config, best=True)
            if is_ckpt:
                ckpt.save(step, dp.state_for_checkpoint(state), data_state=loader.get_state(), meta=meta,
                          config=config)
            timer, timer_step = time.time(), step
    finally:
        close_run(bar, writer, ckpt, loader)
    summary.update(step=step, last_eval=meta["last_eval"], best_eval=meta["best_eval"], best_step=meta["best_step"])
    return summary


def load_checkpoint(path: str):
    """(config, variables) of a sync expert from a work directory (best, else latest) or a step directory."""
    import orbax.checkpoint as ocp

    step_dir = checkpointing.resolve_checkpoint_dir(path)
    reader = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    raw = reader.restore(step_dir, args=ocp.args.Composite(**{
        checkpointing.CONFIG: ocp.args.JsonRestore()}))[checkpointing.CONFIG]
    config = checkpointing.config_from_json_dict(raw)
    if config.model.get("name") != "syncnet":
        raise TrainingError(f"checkpoint {step_dir} holds a {config.model.get('name')!r} model, not the sync "
                            "expert; give the work directory of `s2v train-sync`")
    model = syncnet.build_syncnet(config)
    abstract = abstract_state(config, model)
    try:
        state = reader.restore(step_dir, args=ocp.args.Composite(**{
            checkpointing.STATE: ocp.args.StandardRestore(checkpointing.abstract_like(abstract))}))[checkpointing.STATE]
    except (ValueError, KeyError, TypeError) as e:
        raise TrainingError(f"sync expert checkpoint {step_dir} does not match its stored config: {e}") from e
    return config, {"params": state.params, "batch_stats": state.batch_stats}
