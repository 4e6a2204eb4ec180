"""Training and validation batches of Speech2Vid samples, on grain.

A sample is drawn as the paper does: every `config.data.frame_stride`-th frame
t of a face track is a target; its MFCC window (12x35, centred on frame t's
time, padded at the video's ends as `s2v_jax.media.audio.mfcc_windows` documents)
is the audio input, and `config.model.num_identity_images` frames of the same
track at least `config.data.min_identity_distance` frames from t, stacked
channel-wise, are the identity input. Targets with no such frame are left out.

Batches are numpy dicts with b = config.train.batch_size // process_count:
    'mfcc'     float32 [b, 12, 35, 1]
    'identity' uint8   [b, 112, 112, 3 * num_identity_images]
    'target'   uint8   [b, 112, 112, 3]
(with data.window_frames w > 1: 'mfcc' [b, w, 12, 35, 1] and 'target'
[b, w, 112, 112, 3], w consecutive frames; with data.sync_negatives K > 0
also 'sync_audio' [b, 12, 20, 1] and 'sync_audio_shifted' [b, K, 12, 20, 1]:
see MakeSample.) (`debug=True` adds 'record', 'target_frame', 'identity_frames' and, on the
synthetic corpus, 'gt_mouth_open' of the target frame.)

Random access: the sample index ((record, frame) pairs) comes from the
per-track frame counts in the build metadata (tfds_builders/common.py), so it
costs no record read; a sample reads its track's record and decodes only the
target and identity JPEGs. Order, identity choice and augmentation are
functions of (config.data.shuffle_seed, position in the sample stream), so the
same seed gives the same batches and `loader.get_state()` /
`loader.set_state()` resume the stream exactly.

`config.data.exclude` (comma-separated shell patterns on a track's source path,
e.g. 'grid_s1/sw*', or prefixes, e.g. 'lrs2_b/'): tracks whose video matches are
never sampled, in training or validation (a speaker's test sentences kept from a
general model, a judge's held-out sources, a bad clip); the record order, and so
every other sample, is unchanged. The judge's loader (`sync_samples`) takes its
tracks from the same `track_selection.select`.

`config.data.repeat` ('pattern:factor,...', e.g. 'styletalk/*:4,lrs2*/*:4'):
in training only, every sample of a track whose source matches the pattern
(the first that does) appears `factor` times in the sample index, so small
sources weigh more against a large one (the real corpus is 35 of 42 minutes
LRC-AR 1.2 s clips); validation is never reweighted.

With config.data.num_workers > 0 grain starts worker processes, which
re-import the main module: a script that builds a loader must guard its entry
point with `if __name__ == "__main__":`. Each worker batches its own share of
the sample order, so the stream depends on num_workers (deterministic for a
given value); a saved state resumes only with the same num_workers.
"""

import json
import logging
import os
from typing import Any, Dict, List, Sequence

import grain.python as grain
import numpy as np

from s2v_jax.data import track_selection
from s2v_jax.data.loader import Loader, build_loader
from s2v_jax.errors import DataError

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic_talking_faces"
REGISTERED = "registered_faces"


# ---------------------------------------------------------------- the dataset

def ensure_dataset(config):
    """The TFDS builder of config.data.dataset ('name/config') in
    config.data.data_dir, built there first if absent: the synthetic corpus
    always can be; registered_faces needs the videos in config.data.manual_dir."""
    import tfds_builders

    name = tfds_builders.parse_name(config.data.dataset)
    return tfds_builders.build(name, config.data.data_dir, manual_dir=config.data.manual_dir or None)


def split_tracks(builder, split: str) -> np.ndarray:
    """Frame count of every record of `split`, in record order (from the build
    metadata: records are sorted by key), checked against the first and last
    record; falls back to reading every record if the metadata is missing."""
    if split not in builder.info.splits:
        raise DataError(f"dataset {builder.info.full_name} has no {split!r} split "
                        f"(splits: {', '.join(builder.info.splits)}); a corpus with a single speaker or "
                        "video id cannot have a speaker-disjoint validation split")
    rows = (builder.info.metadata or {}).get("tracks", {}).get(split)
    source = builder.as_data_source(split)
    n = len(source)
    if rows is not None and len(rows) == n:
        rows = sorted(rows)
        if n and all(source[i]["key"].decode() == rows[i][0] for i in (0, n - 1)):
            return np.array([r[1] for r in rows], np.int64)
    log.warning("%s %s: no usable frame-count metadata; reading all %d records", builder.info.full_name, split, n)
    return np.array([int(source[i]["num_frames"]) for i in range(n)], np.int64)


def sample_index(num_frames: Sequence[int], stride: int, min_distance: int, repeats: Sequence[int] = None):
    """(record, frame) of every sample: frames 0, stride, 2*stride, ... of each
    track that have at least one frame >= min_distance away, each `repeats[record]`
    times (default once). [N], [N] int64."""
    records, frames = [], []
    for r, length in enumerate(num_frames):
        t = np.arange(0, length, stride)
        t = t[(t >= min_distance) | (t <= length - 1 - min_distance)]
        if repeats is not None and int(repeats[r]) > 1:
            t = np.tile(t, int(repeats[r]))
        records.append(np.full(len(t), r))
        frames.append(t)
    if not records:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(records).astype(np.int64), np.concatenate(frames).astype(np.int64)


# -------------------------------------------------------- grain source + maps

class TrackSamples(grain.RandomAccessDataSource):
    """Sample i -> (its track's record, target frame). Opens the TFDS source
    lazily, so it pickles cheaply into grain's worker processes."""

    def __init__(self, builder_dir: str, name: str, split: str, stride: int, min_distance: int,
                 num_frames: np.ndarray, repeats: np.ndarray = None):
        self._dir, self._name, self._split = builder_dir, name, split
        self._stride, self._min_distance = stride, min_distance
        self.records, self.frames = sample_index(num_frames, stride, min_distance, repeats)
        self._source = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if self._source is None:
            import tensorflow_datasets as tfds

            self._source = tfds.builder_from_directory(self._dir).as_data_source(self._split)
        r = int(self.records[i])
        return {"example": self._source[r], "record": r, "frame": int(self.frames[i])}

    def __getstate__(self):
        return {**self.__dict__, "_source": None}

    def __repr__(self) -> str:  # grain checks it when restoring a state
        return (f"TrackSamples({self._name}, split={self._split}, samples={len(self)}, "
                f"stride={self._stride}, min_distance={self._min_distance})")


class ArrayTrackSamples(grain.RandomAccessDataSource):
    """In-memory face tracks as a grain source with TrackSamples' elements (fine-tuning, tests).

    tracks: sequence of {'frames': uint8 [T, 112, 112, 3], 'mfcc': float32 [T, 12, 35]
    [, 'landmarks': [T, 478, 2] crop pixels]};
    samples as `sample_index(.., stride, min_distance)`. `name` names it in grain's resume
    check (a saved loader state resumes only on the same tracks)."""

    def __init__(self, tracks, stride: int, min_distance: int, name: str = "tracks"):
        self.tracks = [{"frames": np.asarray(t["frames"]), "mfcc": np.asarray(t["mfcc"], np.float32),
                        "num_frames": len(t["frames"]),
                        **({"landmarks": np.asarray(t["landmarks"], np.float32)} if "landmarks" in t else {})}
                       for t in tracks]
        self.records, self.frames = sample_index([t["num_frames"] for t in self.tracks], stride, min_distance)
        self._name = name

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        r = int(self.records[i])
        return {"example": self.tracks[r], "record": r, "frame": int(self.frames[i])}

    def __repr__(self) -> str:
        return f"ArrayTrackSamples({self._name}, tracks={len(self.tracks)}, samples={len(self)})"


def identity_frames(rng: np.random.Generator, num_frames: int, target: int, count: int, min_distance: int):
    """`count` frames (sorted) drawn from those >= min_distance from `target`."""
    valid = np.concatenate([np.arange(0, max(0, target - min_distance + 1)),
                            np.arange(target + min_distance, num_frames)])
    if len(valid) == 0:
        raise DataError(f"no identity frame {min_distance} frames from {target} in a {num_frames}-frame track")
    return np.sort(rng.choice(valid, size=count, replace=len(valid) < count))


def _decode(data) -> np.ndarray:
    """A stored frame: JPEG/PNG bytes (TFDS records) or already an array (ArrayTrackSamples)."""
    if isinstance(data, np.ndarray) and data.ndim == 3:
        return data
    from tfds_builders.common import decode_frame

    return decode_frame(data)


class MakeSample(grain.RandomMapTransform):
    """Picks the identity frames, decodes them and the target, jitters both.

    With `window` w > 1 (data.window_frames) a sample is w consecutive target
    frames centred on the sample's frame t (t - w//2 .. t + w//2, the track's
    edge frame repeated past its ends) with their w MFCC windows, one identity
    input drawn >= min_distance from t: 'mfcc' [w, 12, 35, 1], 'target'
    [w, 112, 112, 3]. With `sync_negatives` K > 0 it also carries the sync
    expert's audio of t ('sync_audio' [12, 20, 1]) and of K distinct shifts of
    2-15 frames inside the track ('sync_audio_shifted' [K, 12, 20, 1]), for the
    generator's sync loss (GeneratorTask). With `landmarks` (the lip-warp loss)
    also the 40 lip landmarks (x, y in crop pixels, faces.LIPS: LMD's points) of the
    first identity frame ('identity_lips' [40, 2]) and of the targets
    ('target_lips' [w, 40, 2] or [40, 2]) and the targets' inter-ocular
    distances ('target_iod' [w] or []), mirrored with the images. With `closed` c > 1
    (data.identity_closed) the first identity frame is the most closed mouth of c drawn frames
    (the tracks' landmarks): a model that must open a closed photo's mouth; on a fraction
    `closed_prob` (data.identity_closed_prob) of samples, the others keep the frame drawn as usual."""

    def __init__(self, num_identity: int, min_distance: int, augment: bool, debug: bool = False,
                 window: int = 1, sync_negatives: int = 0, landmarks: bool = False, closed: int = 0,
                 closed_prob: float = 1.0):
        self.num_identity, self.min_distance = num_identity, min_distance
        self.closed, self.closed_prob = int(closed), float(closed_prob)
        self.augment, self.debug = augment, debug
        self.window, self.sync_negatives = int(window), int(sync_negatives)
        self.landmarks = bool(landmarks)

    def random_map(self, element: Dict[str, Any], rng: np.random.Generator) -> Dict[str, np.ndarray]:
        ex, t = element["example"], element["frame"]
        n = int(ex["num_frames"])
        ids = identity_frames(rng, n, t, self.num_identity, self.min_distance)
        if self.closed > 1 and "landmarks" in ex and (self.closed_prob >= 1.0 or rng.random() < self.closed_prob):
            from s2v_jax.data.near_still import closest_to_closed

            drawn = identity_frames(rng, n, t, self.closed, self.min_distance)
            ids = np.concatenate([[closest_to_closed(np.asarray(ex["landmarks"], np.float32), drawn)], ids[1:]])
        identity = np.concatenate([_decode(ex["frames"][j]) for j in ids], axis=-1)
        mfcc = ex["mfcc"]
        if self.window > 1:
            idx = np.clip(np.arange(t - self.window // 2, t - self.window // 2 + self.window), 0, n - 1)
            target = np.stack([_decode(ex["frames"][j]) for j in idx])
            audio = np.asarray(mfcc[idx], np.float32)[..., None]
        else:
            idx = t
            target = _decode(ex["frames"][t])
            audio = np.asarray(mfcc[t], np.float32)[..., None]
        flip = False
        if self.augment:
            target, identity, flip = augment_pair(rng, target, identity, return_flip=True)
        out = {"mfcc": audio, "identity": identity, "target": target}
        if self.landmarks:
            out.update(lip_inputs(ex, ids[0], idx, target.shape[-2], flip))
        if self.sync_negatives > 0:
            from s2v_jax.data.sync_inputs import audio_input, shift_candidates

            candidates = shift_candidates(t, n, 2, 15)
            k = self.sync_negatives
            shifts = rng.choice(candidates, size=k, replace=len(candidates) < k)
            windows = np.asarray(mfcc[np.concatenate([[t], t + shifts])], np.float32)
            out.update(sync_audio=audio_input(windows[0]), sync_audio_shifted=audio_input(windows[1:]))
        if self.debug:
            out.update(record=np.int64(element["record"]), target_frame=np.int64(t), identity_frames=ids)
            if "gt_mouth_open" in ex:
                out["gt_mouth_open"] = np.float32(ex["gt_mouth_open"][t])
        return out


def lip_inputs(example, identity_frame: int, target_frames, width: int, flip: bool) -> Dict[str, np.ndarray]:
    """'identity_lips', 'target_lips', 'target_iod' of MakeSample from a track's 'landmarks'
    [T, 478, 2] (crop pixels); `flip`: mirrored as the images are (x -> width - x)."""
    from s2v_jax import faces

    if "landmarks" not in example:
        raise DataError("the lip-warp loss (train.lip_weight) needs face landmarks in every track; "
                        "this data has none (rebuild the dataset, or set train.lip_weight=0)")
    lm = example["landmarks"]
    lips = list(faces.LIPS)
    ident = np.asarray(lm[identity_frame], np.float32)[lips]
    target = np.asarray(lm[target_frames], np.float32)
    iod = faces.inter_ocular_distance(target).astype(np.float32)
    target = target[..., lips, :]
    if flip:
        ident, target = ident.copy(), target.copy()
        ident[..., 0] = width - ident[..., 0]
        target[..., 0] = width - target[..., 0]
    return {"identity_lips": ident, "target_lips": target, "target_iod": iod}


def jitter_images(rng: np.random.Generator, *images: np.ndarray):
    """One random brightness/contrast change (contrast in 0.8..1.2 about grey 128, brightness +-20) and,
    on half the draws, a horizontal flip, the same for every image given ([..., H, W, C]; a window of
    frames [w, H, W, 3] or frames stacked on channels [H, W, 3w] flips as one). The generator's and
    the judge's samplers both augment through it. Returns (the images, whether they were mirrored)."""
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
    flip = rng.random() < 0.5

    def jitter(x):
        y = np.clip((x.astype(np.float32) - 128.0) * contrast + 128.0 + brightness, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(y[..., ::-1, :]) if flip else y

    return [jitter(x) for x in images], flip


def augment_pair(rng: np.random.Generator, target: np.ndarray, identity: np.ndarray, return_flip: bool = False):
    """`jitter_images` of target and identity frames (a mirror keeps the centred mouth in place).
    `return_flip`: also whether this draw mirrored them (for their landmarks)."""
    (target, identity), flip = jitter_images(rng, target, identity)
    if return_flip:
        return target, identity, flip
    return target, identity


# ---------------------------------------------------------------- the loaders

def _samples(config, split: str) -> TrackSamples:
    builder = ensure_dataset(config)
    num_frames, repeats = track_selection.select(config, builder, split, split_tracks(builder, split))
    source = TrackSamples(os.fspath(builder.data_dir), builder.info.full_name, split,
                          int(config.data.frame_stride), int(config.data.min_identity_distance), num_frames, repeats)
    if len(source) == 0:
        raise DataError(f"{builder.info.full_name} {split}: no sample has an identity frame "
                        f"{config.data.min_identity_distance} frames away (tracks too short)")
    return source


def per_process_batch(config, process_count: int) -> int:
    """This process's share of `train.batch_size` (DataError unless it splits evenly)."""
    batch, rem = divmod(int(config.train.batch_size), process_count)
    if rem or batch == 0:
        raise DataError(f"train.batch_size={config.train.batch_size} does not split evenly over {process_count} processes")
    return batch


def make_sample(config, augment: bool, debug: bool) -> "MakeSample":
    """The generator's per-sample grain transform (`MakeSample`) as the config sets it."""
    # The deblurring net's model config has no identity images: its samples still carry one
    # (unused), so it trains on every registered corpus the generator does.
    return MakeSample(int(config.model.num_identity_images), int(config.data.min_identity_distance), augment, debug,
                      window=int(config.data.window_frames),
                      sync_negatives=int(config.data.sync_negatives),
                      landmarks=float(config.train.lip_weight) > 0,
                      closed=int(config.data.identity_closed),
                      closed_prob=float(config.data.identity_closed_prob))


def train_loader(source, config, *, process_index: int = 0, process_count: int = 1, debug: bool = False) -> Loader:
    """Endless, shuffled, sharded training batches of any sample source (the TFDS corpus's
    `TrackSamples`, in-memory `ArrayTrackSamples` of a fine-tune): the one training loader factory."""
    return build_loader(source, make_sample(config, bool(config.data.augment), debug),
                        batch_size=per_process_batch(config, process_count), seed=int(config.data.shuffle_seed),
                        workers=int(config.data.num_workers), process_index=process_index,
                        process_count=process_count)


def eval_batches(source, config, *, num_batches: int, process_index: int = 0, process_count: int = 1,
                 debug: bool = False) -> List[Dict[str, np.ndarray]]:
    """`num_batches` validation batches of any sample source, the same on every call (fixed order,
    identity frames and no augmentation); cycles if the source is smaller."""
    loader = build_loader(source, make_sample(config, False, debug),
                          batch_size=per_process_batch(config, process_count), seed=0,
                          process_index=process_index, process_count=process_count)
    return [next(loader) for _ in range(num_batches)]


def create_train_loader(config, *, process_index: int = 0, process_count: int = 1, debug: bool = False) -> Loader:
    """Endless, shuffled, sharded training batches of the TFDS corpus (see the module docstring)."""
    return train_loader(_samples(config, "train"), config, process_index=process_index,
                        process_count=process_count, debug=debug)


def create_eval_batches(config, *, num_batches: int, process_index: int = 0, process_count: int = 1,
                        debug: bool = False) -> List[Dict[str, np.ndarray]]:
    """`eval_batches` of the TFDS corpus's validation split."""
    return eval_batches(_samples(config, "validation"), config, num_batches=num_batches,
                        process_index=process_index, process_count=process_count, debug=debug)
