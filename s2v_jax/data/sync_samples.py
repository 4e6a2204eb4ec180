"""The sync expert's inputs and samples (SyncNet, Chung & Zisserman 2016).

Inputs: `s2v_jax.data.sync_inputs` (five lower-face frames, 0.2 s of MFCC).

Samples. Every `data.frame_stride`-th frame k of a registered face track is a
centre: its five lower-face frames (video), the in-sync MFCC of frame k
(audio) and the MFCC of frame k+s (audio_shifted), with s drawn uniformly from
the shifts min_offset <= |s| <= max_offset that stay inside the track (hard
negatives: the same clip, the same face). With `data.num_negatives` K > 1,
K distinct shifts per centre (for the task's n-way loss). Batches are numpy dicts:
    'video'          uint8   [b, 112 - top, 112, 5]  (15 channels for RGB)
    'audio'          float32 [b, 12, 20, 1]          in sync with the video
    'audio_shifted'  float32 [b, 12, 20, 1]          out of sync ([b, K, 12, 20, 1] for K > 1)
    'offset'         int32   [b] ([b, K])  AV offset d = -s of the shifted pair: its audio is
                     frame centre + s's, s frames early, so d > 0 = audio late (the library's sign)
Augmentation (training only, `data.augment`): brightness/contrast and a
horizontal flip, and for real video a small translation of the five frames
(`data.augment_shift_px`), a small rotation and scaling (`data.augment_rotate_deg`,
`data.augment_scale`) and JPEG re-compression (`data.augment_jpeg`: the
probability; quality 30-90), all the same on the five frames: lip sync is unchanged.
`data.repeat` ('pattern:factor,...', as for the generator) oversamples matching
training tracks, e.g. the few multi-speaker English sources beside a corpus that is
mostly one GRID speaker and 1.2 s Arabic news clips.
Tracks come from the TFDS corpus that `input_pipeline` reads (its
`ensure_dataset`, `split_tracks`, `TrackSamples` and `Loader` are reused, so
the data order resumes with the checkpoint), or from in-memory arrays
(`ArrayTracks`, for tests and notebooks).
"""

import logging
import os
from typing import Any, Dict, List, Sequence

import cv2
import grain.python as grain
import ml_collections
import numpy as np

from s2v_jax.data import input_pipeline, track_selection
from s2v_jax.data.loader import build_loader
from s2v_jax.data import near_still as near_still_lib
from s2v_jax.data.sync_inputs import audio_input, frame_indices, shift_candidates, video_input
from tfds_builders.common import decode_frame

Batch = Dict[str, Any]
log = logging.getLogger(__name__)


def _frame(frames, j: int) -> np.ndarray:
    """Frame j of a track: JPEG/PNG bytes (TFDS records) or an array row."""
    x = frames[j]
    if isinstance(x, (bytes, np.bytes_)):
        return decode_frame(x)
    return np.asarray(x)


def _translate(rng: np.random.Generator, crops: np.ndarray, max_px: int, max_deg: float = 0.0,
               max_scale: float = 0.0) -> np.ndarray:
    """The same random shift of up to `max_px` pixels, rotation of up to `max_deg` degrees and scaling by
    up to 1 +- `max_scale` about the crop centre (edge pixels repeated) on every crop [n, S, S, 3]: a real
    face track's registration wobbles by a few pixels, and a turning head leaves the registered face a
    little rotated or scaled."""
    dy, dx = (int(v) for v in rng.integers(-max_px, max_px + 1, size=2)) if max_px > 0 else (0, 0)
    deg = float(rng.uniform(-max_deg, max_deg)) if max_deg > 0 else 0.0
    scale = float(rng.uniform(1.0 - max_scale, 1.0 + max_scale)) if max_scale > 0 else 1.0
    h, w = crops.shape[1], crops.shape[2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, scale).astype(np.float32)
    m[:, 2] += (dx, dy)
    return np.stack([cv2.warpAffine(c, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for c in crops])


def _recompress(rng: np.random.Generator, crops: np.ndarray) -> np.ndarray:
    """Every crop through JPEG at one random quality in 30..90 (compressed uploads, old broadcasts)."""
    quality = int(rng.integers(30, 91))
    out = []
    for c in crops:
        ok, buf = cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, quality])  # channel order is irrelevant
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else c)
    return np.stack(out)


def sync_sample(rng: np.random.Generator, frames, mfcc, num_frames: int, centre: int, *, lower_face_top: int,
                grayscale: bool, min_offset: int, max_offset: int, augment: bool, num_negatives: int = 1,
                shift_px: int = 0, jpeg_prob: float = 0.0, rotate_deg: float = 0.0,
                scale: float = 0.0, near_still: float = 0.0, near_still_motion: float = 0.3,
                landmarks=None, generated=None, generated_prob: float = 0.0) -> Dict[str, np.ndarray]:
    """One training example around track frame `centre` (see the module docstring). With `near_still` > 0,
    also 'video_still' (the same window, its motion shrunk toward the track's most closed-mouth frame of
    8 drawn, by a fraction drawn in [0, near_still_motion]; augmented exactly as 'video') and 'still' (1.0
    on a `near_still` fraction of windows: those whose near-still copy the loss uses). `generated` (uint8
    [num_frames, 112, 112, 3], a generator's video of this track: `s2v_jax.data.generated_negatives`)
    replaces the shrunk copy with the same window of it on a `generated_prob` fraction of those windows."""
    candidates = shift_candidates(centre, num_frames, min_offset, max_offset)
    k = int(num_negatives)
    if k > 1:  # k distinct shifts (repeated only when the track is too short to have k)
        shifts = rng.choice(candidates, size=k, replace=len(candidates) < k).astype(np.int64)
    else:
        shifts = np.int64(rng.choice(candidates))
    crops = np.stack([_frame(frames, int(j)) for j in frame_indices(centre, num_frames)])
    n = len(crops)
    use_still = near_still > 0 and rng.random() < near_still
    if near_still > 0:  # the same shape in every batch; only windows with 'still' 1 count in the loss
        if use_still and generated is not None and rng.random() < generated_prob:
            crops = np.concatenate([crops, np.asarray(generated[frame_indices(centre, num_frames)])])
        elif use_still:
            drawn = rng.integers(0, num_frames, size=min(8, num_frames))
            still = _frame(frames, near_still_lib.closest_to_closed(landmarks, drawn))
            alpha = float(rng.uniform(0.0, near_still_motion)) if rng.random() < 0.8 else 0.0
            crops = np.concatenate([crops, near_still_lib.shrink_motion(crops, still, alpha,
                                                                        max(0, lower_face_top - 16))])
    if augment and (shift_px > 0 or rotate_deg > 0 or scale > 0):  # one transform for the window and its copy
        crops = _translate(rng, crops, int(shift_px), float(rotate_deg), float(scale))
    if augment and jpeg_prob > 0 and rng.random() < jpeg_prob:
        crops = _recompress(rng, crops)
    video = np.concatenate([video_input(crops[i:i + n], lower_face_top, grayscale)
                            for i in range(0, len(crops), n)], axis=-1)
    if augment:
        (video,), _ = input_pipeline.jitter_images(rng, video)  # [H, W, 3n]: W is axis 1
    if near_still > 0 and not use_still:  # the copy that does not count: the window itself (augmented once)
        video = np.concatenate([video, video], axis=-1)
    mfcc = np.asarray(mfcc)
    c = video.shape[-1] // 2 if near_still > 0 else video.shape[-1]
    out = {"video": video[..., :c], "audio": audio_input(mfcc[centre]),
           "audio_shifted": audio_input(mfcc[centre + shifts]), "offset": np.asarray(-shifts, np.int32)}
    if near_still > 0:
        out.update(video_still=np.ascontiguousarray(video[..., c:]), still=np.float32(use_still))
    return out


class MakeSyncSample(grain.RandomMapTransform):
    """grain map: {'example', 'frame'} (input_pipeline.TrackSamples' elements) -> a sync example."""

    def __init__(self, config: ml_collections.ConfigDict, augment: bool, debug: bool = False, generated=None):
        self.kw = dict(lower_face_top=int(config.model.lower_face_top), grayscale=bool(config.model.grayscale),
                       min_offset=int(config.data.min_offset), max_offset=int(config.data.max_offset),
                       augment=augment, num_negatives=int(config.data.num_negatives),
                       shift_px=int(config.data.augment_shift_px),
                       jpeg_prob=float(config.data.augment_jpeg),
                       rotate_deg=float(config.data.augment_rotate_deg),
                       scale=float(config.data.augment_scale),
                       near_still=float(config.data.near_still),
                       near_still_motion=float(config.data.near_still_motion),
                       generated_prob=float(config.data.generated_negatives_prob))
        self.debug = debug
        self.generated = generated  # GeneratedSets of the split's records, or None

    def random_map(self, element: Dict[str, Any], rng: np.random.Generator) -> Dict[str, np.ndarray]:
        ex = element["example"]
        n = int(ex["num_frames"])
        copies = self.generated.choices(element["record"], n) if self.generated is not None else []
        generated = copies[int(rng.integers(len(copies)))] if len(copies) > 1 else (copies[0] if copies else None)
        out = sync_sample(rng, ex["frames"], ex["mfcc"], n, int(element["frame"]),
                          landmarks=ex.get("landmarks"), generated=generated, **self.kw)
        if self.debug:  # where the example came from, for tests
            out.update(record=np.int64(element["record"]), centre=np.int64(element["frame"]))
        return out


class ArrayTracks(input_pipeline.ArrayTrackSamples):
    """In-memory tracks as a grain source with TrackSamples' element format: every
    `stride`-th frame is a centre (no identity-distance rule: the expert has no identity input).

    tracks: sequence of {'frames': uint8 [T, 112, 112, 3], 'mfcc': float32 [T, 12, 35]}.
    """

    def __init__(self, tracks: Sequence[Dict[str, np.ndarray]], stride: int = 1):
        super().__init__(tracks, stride, 0, name="sync tracks")


def make_loader(source, config: ml_collections.ConfigDict, *, batch_size: int, seed: int, augment: bool,
                workers: int = 0, process_index: int = 0, process_count: int = 1, debug: bool = False,
                generated=None):
    """Endless shuffled batches of `source` as an loader.Loader (get_state/set_state).
    `debug` adds each example's 'record' and 'centre' frame; `generated`: GeneratedSets of the
    source's records (training only)."""
    return build_loader(source, MakeSyncSample(config, augment, debug, generated),
                                       batch_size=batch_size,
                                       seed=seed, workers=workers, process_index=process_index,
                                       process_count=process_count)


def _tfds_source(config, split: str):
    builder = input_pipeline.ensure_dataset(config)
    num_frames, repeats = track_selection.select(config, builder, split, input_pipeline.split_tracks(builder, split))
    return input_pipeline.TrackSamples(os.fspath(builder.data_dir), builder.info.full_name, split,
                                       int(config.data.frame_stride), 0, num_frames, repeats)


def _train_loader(source, config, *, process_index: int, process_count: int, workers: int = 0,
                  debug: bool = False, generated=None):
    return make_loader(source, config, batch_size=input_pipeline.per_process_batch(config, process_count),
                       seed=int(config.data.shuffle_seed), augment=bool(config.data.augment), workers=workers,
                       process_index=process_index, process_count=process_count, debug=debug,
                       generated=generated)


def _eval_batches(source, config, *, num_batches: int, process_index: int, process_count: int) -> List[Batch]:
    """Fixed validation batches: seed 0, no augmentation."""
    loader = make_loader(source, config, batch_size=input_pipeline.per_process_batch(config, process_count), seed=0,
                         augment=False, process_index=process_index, process_count=process_count)
    return [next(loader) for _ in range(num_batches)]


def create_train_loader(config, *, process_index: int = 0, process_count: int = 1, debug: bool = False):
    """Training batches from the TFDS corpus's 'train' split (with `data.generated_negatives`, its
    tracks' generated copies as near-still windows)."""
    generated = None
    if config.data.generated_negatives:
        from s2v_jax.data.generated_negatives import GeneratedSets

        generated = GeneratedSets(config.data.generated_negatives, dataset=config.data.dataset)
        log.info("%d training tracks have generated copies (%s), used on %.0f%% of their near-still windows",
                 len(generated), config.data.generated_negatives, 100 * float(config.data.generated_negatives_prob))
    return _train_loader(_tfds_source(config, "train"), config, process_index=process_index,
                         process_count=process_count, workers=int(config.data.num_workers), debug=debug,
                         generated=generated)


def create_eval_batches(config, *, num_batches: int, process_index: int = 0, process_count: int = 1) -> List[Batch]:
    """Fixed validation batches (seed 0, no augmentation) from the 'validation' split."""
    return _eval_batches(_tfds_source(config, "validation"), config, num_batches=num_batches,
                         process_index=process_index, process_count=process_count)


def array_data_fns(train_tracks, eval_tracks=None, stride: int = 1):
    """(train_loader_fn, eval_batches_fn) over in-memory tracks, for the training loop's injection points."""
    eval_tracks = train_tracks if eval_tracks is None else eval_tracks

    def train_loader_fn(config, *, process_index=0, process_count=1):
        return _train_loader(ArrayTracks(train_tracks, stride), config, process_index=process_index,
                             process_count=process_count)

    def eval_batches_fn(config, *, num_batches, process_index=0, process_count=1):
        return _eval_batches(ArrayTracks(eval_tracks, stride), config, num_batches=num_batches,
                             process_index=process_index, process_count=process_count)

    return train_loader_fn, eval_batches_fn
