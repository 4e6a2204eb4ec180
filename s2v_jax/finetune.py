"""Speaker fine-tuning: adapt a trained generator (by default the one shipped
in the package) to one person from a few minutes of their video.

    s2v finetune --video speaker.mp4 --workdir workdirs/me
    s2v generate --checkpoint workdirs/me --image me.jpg --audio speech.wav --out out.mp4

1. Each video is tracked and registered as the corpus builder does
   (`s2v_jax.faces.preprocess`); its face tracks are cached in
   `W/tracks/<video>-<hash>.npz`, so a resumed run does not track again.
   Where several faces are seen, tracks of faces under 60% of the largest
   track's median width (listeners, background) are left out.
2. The last `holdout` (10%) of the frames is held out (the videos played end
   to end in the order given: one video's last tenth, or the last of many
   short clips): the validation windows come only from there, and the best checkpoint (the
   base config's validation metric, `mouth_l1` for configs/real_small.py) is
   kept in `W/best`.
3. Training is the base model's own recipe, through the entry `run_train.py` uses
   (`s2v_jax.train.entry.train`: schema check, then `train_and_evaluate`:
   progress bar, checkpoints, exact resume), started from the base weights
   with a smaller learning rate and no squared-error warm-up.

`W` then works wherever a generator checkpoint does (`generate`, `redub`,
`evaluate`, `stream`, `export`).
"""

import hashlib
import json
import logging
import os
from typing import Any, Dict, Optional, Sequence

import ml_collections
import numpy as np

from s2v_jax.errors import DataError, NoFaceError, S2VError

log = logging.getLogger(__name__)

HOLDOUT = 0.1           # the last tenth of each video is the validation part
MIN_FACE_FRACTION = 0.6  # tracks of smaller faces than this x the largest are left out
MIN_PART_FRAMES = 12     # shortest train/validation piece of a track kept (0.48 s)
ADVISED_SECONDS = 60     # less face video than this gets a warning (25 s overfit, the anchor's 60 s helped)


def _video_hash(path: str) -> str:
    st = os.stat(path)
    key = f"{os.path.abspath(path)}|{st.st_size}|{int(st.st_mtime)}"
    return hashlib.md5(key.encode()).hexdigest()[:10]


def speaker_tracks(video_path: str, cache_dir: str, progress: bool = True) -> Dict[str, Any]:
    """{'tracks': [{'frames', 'mfcc', 'landmarks', 'start'}], 'num_frames': F, 'skipped': [...]} of one
    video, from the cache when this video (path, size, mtime) was tracked before (a cache file of an
    earlier version, without landmarks, is tracked again)."""
    from s2v_jax.faces.preprocess import preprocess_video

    if not os.path.isfile(video_path):
        raise S2VError(f"--video {video_path} does not exist or is not a file")
    os.makedirs(cache_dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(video_path))[0]
    cache = os.path.join(cache_dir, f"{name}-{_video_hash(video_path)}.npz")
    if os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if all(f"landmarks_{i}" in z.files for i in range(len(meta["starts"]))):
                tracks = [{"frames": z[f"frames_{i}"], "mfcc": z[f"mfcc_{i}"], "landmarks": z[f"landmarks_{i}"],
                           "start": s} for i, s in enumerate(meta["starts"])]
                log.info("%s: %d face tracks from the cache %s", video_path, len(tracks), cache)
                return {"tracks": tracks, "num_frames": meta["num_frames"], "skipped": meta["skipped"]}
        log.info("%s: the cache %s has no landmarks (an earlier version); tracking again", video_path, cache)
    pre = preprocess_video(video_path, progress=progress)
    if not pre.tracks:
        raise NoFaceError(f"{video_path}: no face track to fine-tune on ({pre.no_face_reason}); "
                          "give a video in which the speaker's face is visible")
    widths = [float(np.median(t.boxes[:, 2] - t.boxes[:, 0])) for t in pre.tracks]
    keep, skipped = [], []
    for t, w in zip(pre.tracks, widths):
        if w < MIN_FACE_FRACTION * max(widths):
            skipped.append({"start_frame": int(t.start_frame), "frames": len(t.crops),
                            "reason": f"face {w:.0f} px wide, under {MIN_FACE_FRACTION:.0%} of the largest ({max(widths):.0f} px)"})
            continue
        keep.append({"frames": t.crops, "mfcc": pre.mfcc_windows[t.start_frame:t.start_frame + len(t.crops)],
                     "landmarks": np.asarray(t.landmarks, np.float16), "start": int(t.start_frame)})
    arrays = {}
    for i, t in enumerate(keep):
        arrays[f"frames_{i}"], arrays[f"mfcc_{i}"], arrays[f"landmarks_{i}"] = t["frames"], t["mfcc"], t["landmarks"]
    meta = {"starts": [t["start"] for t in keep], "num_frames": int(pre.num_frames), "skipped": skipped}
    tmp = cache + f".partial{os.getpid()}.npz"
    np.savez(tmp, meta=json.dumps(meta), **arrays)
    os.replace(tmp, cache)
    return {"tracks": keep, "num_frames": int(pre.num_frames), "skipped": skipped}


def split_tracks(videos: Sequence[Dict[str, Any]], holdout: float = HOLDOUT):
    """(train, validation) pieces of the videos' tracks ({'tracks', 'num_frames'} each, in the order
    given), played end to end as one recording: frames before its last `holdout` fraction train,
    the rest validate (one video: its last 10%; many short clips: the last clips). A track that
    crosses the cut is split there; pieces under MIN_PART_FRAMES are dropped."""
    total = sum(int(v["num_frames"]) for v in videos)
    cut = int(round(total * (1.0 - holdout)))
    train, val = [], []
    offset = 0
    for v in videos:
        for t in v["tracks"]:
            s, n = offset + int(t["start"]), len(t["frames"])
            k = min(max(cut - s, 0), n)  # frames of this track before the cut
            for part, lo, hi in ((train, 0, k), (val, k, n)):
                if hi - lo >= MIN_PART_FRAMES:
                    part.append({k: t[k][lo:hi] for k in ("frames", "mfcc", "landmarks") if k in t})
        offset += int(v["num_frames"])
    return train, val


def short_video_warnings(face_frames: int, fps: float = 25.0) -> list:
    """A warning when the videos show the speaker's face for under ADVISED_SECONDS (tracked
    frames, training and held-out parts together): the fine-tune then fits those clips and can
    do worse than the base on other footage of the person (BENCHMARKS.md: feifeili's 25 s did;
    the anchor's 60 s gained on both LMD and sync)."""
    seconds = face_frames / fps
    if seconds >= ADVISED_SECONDS:
        return []
    return [f"only {seconds:.0f} s of the speaker's face in the videos (under {ADVISED_SECONDS} s): the fine-tune "
            "may fit these clips and do worse than the base model on other footage of the person; give a "
            "minute or more of video (repeat --video)"]


def finetune_config(base: ml_collections.ConfigDict, *, steps: int, learning_rate: float, batch_size: int,
                    eval_every: int, videos: Sequence[str], base_path: str,
                    progress: bool = True) -> ml_collections.ConfigDict:
    """The base model's config with fine-tuning's training settings."""
    config = ml_collections.ConfigDict(base.to_dict())
    t = config.train
    t.num_steps = int(steps)
    t.learning_rate = float(learning_rate)
    t.schedule = "cosine"
    t.warmup_steps = min(50, max(0, int(steps) // 10))
    t.mse_warmup_steps = 0        # the base model is past the still
    t.batch_size = int(batch_size)
    t.eval_every = t.checkpoint_every = int(eval_every)
    t.eval_at_start = True        # the base competes: if no step beats it on the held-out part, it is kept
    t.keep_checkpoints = 2
    t.early_stopping_patience = 0
    t.progress_bar = bool(progress)
    t.parallel = "pmap"
    config.data.num_workers = 0
    config.data.dataset = "in-memory speaker tracks"
    with config.unlocked():
        config.finetune = ml_collections.ConfigDict({"base": base_path, "videos": [os.path.abspath(v) for v in videos],
                                                     "holdout": HOLDOUT})
    return config


def finetune(videos: Sequence[str], workdir: str, *, checkpoint: Optional[str] = None, steps: int = 600,
             learning_rate: float = 3e-4, batch_size: Optional[int] = None, eval_every: int = 100,
             progress: bool = True) -> Dict[str, Any]:
    """Fine-tunes `checkpoint` (None: the shipped generator) on `videos` in `workdir` (resumed if present)."""
    import jax

    from s2v_jax.data import input_pipeline
    from s2v_jax.inference.generator import FrameGenerator
    from s2v_jax.train import entry
    from s2v_jax.train.checkpointing import load_checkpoint

    if not videos:
        raise S2VError("give at least one --video of the speaker")
    if steps < 1:
        raise S2VError(f"--steps must be at least 1, not {steps}")
    base_path = checkpoint
    if base_path is None:
        from s2v_jax import assets

        FrameGenerator.from_checkpoint(None)  # the clear error when no generator is shipped
        base_path = assets.GENERATOR
    base_config, variables = load_checkpoint(base_path, tasks=("generator",),
                                             hint="give a generator (configs/real_small.py) as --checkpoint")
    report = {"videos": []}
    got = [speaker_tracks(v, os.path.join(workdir, "tracks"), progress) for v in videos]
    train_parts, val_parts = split_tracks(got)
    for v, g in zip(videos, got):
        report["videos"].append({"video": v, "frames": g["num_frames"], "tracks": len(g["tracks"]),
                                 "skipped": g["skipped"]})
    report["train_frames"] = sum(len(p["frames"]) for p in train_parts)
    report["validation_frames"] = sum(len(p["frames"]) for p in val_parts)
    report["warnings"] = short_video_warnings(report["train_frames"] + report["validation_frames"])
    for w in report["warnings"]:
        log.warning(w)
    if not val_parts:
        raise DataError(f"the last {HOLDOUT:.0%} of {', '.join(videos)} holds no face track of "
                        f"{MIN_PART_FRAMES}+ frames to validate on; give a longer video, or one whose end shows the face")
    if not train_parts:
        raise DataError(f"{', '.join(videos)}: no face track of {MIN_PART_FRAMES}+ frames before the held-out end")
    bs, d = int(batch_size or base_config.train.batch_size), jax.local_device_count()
    config = finetune_config(base_config, steps=steps, learning_rate=learning_rate, batch_size=max(d, bs - bs % d),
                             eval_every=eval_every, videos=videos, base_path=os.path.abspath(base_path),
                             progress=progress)
    stride, min_distance = int(config.data.frame_stride), int(config.data.min_identity_distance)
    # short held-out parts: identity frames at least min_distance away must exist inside them
    val_distance = min(min_distance, max(1, min(len(p["frames"]) for p in val_parts) // 3))
    train_source = input_pipeline.ArrayTrackSamples(train_parts, stride, min_distance, "finetune train")
    val_source = input_pipeline.ArrayTrackSamples(val_parts, stride, val_distance, "finetune validation")
    for name, source in (("training", train_source), ("held-out", val_source)):
        if len(source) == 0:
            raise DataError(f"{', '.join(videos)}: the {name} part gives no sample (tracks too short for an "
                            f"identity frame {min_distance} frames from the target)")
    num_val_batches = max(1, min(20, -(-len(val_source) // config.train.batch_size)))
    config.train.eval_batches = num_val_batches

    def train_loader_fn(cfg, *, process_index=0, process_count=1):
        return input_pipeline.train_loader(train_source, cfg, process_index=process_index, process_count=process_count)

    def eval_batches_fn(cfg, *, num_batches, process_index=0, process_count=1):
        vcfg = ml_collections.ConfigDict(cfg.to_dict())
        vcfg.data.min_identity_distance = val_distance
        return input_pipeline.eval_batches(val_source, vcfg, num_batches=num_batches, process_index=process_index,
                                           process_count=process_count)

    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "finetune_data.json"), "w") as f:
        json.dump(report, f, indent=1)
    summary = entry.train(config, workdir, expect_task="generator", train_loader_fn=train_loader_fn,
                          eval_batches_fn=eval_batches_fn, initial_variables=variables)
    return {"workdir": workdir, "base": os.path.abspath(base_path), "data": report, **summary}
