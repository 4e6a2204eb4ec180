"""The evaluate driver: regenerate held-out clips and score them beside the
static baseline and the real video.

For every clip (the largest face track of a video, or one record of a TFDS
split) the generator re-creates the track from its own identity frame(s) and
its own audio (the track's MFCC windows), and three rows are scored against
the real registered frames:
- `model`: the generated frames;
- `static_baseline`: the identity frame repeated for every frame;
- `real`: the real frames themselves. Their PSNR against themselves is
  infinite (reported as null) and SSIM 1, LMD 0 by definition; the row is
  there for its sync numbers, the reference the other rows should approach.

Identity: by default the first frame of the track (`identity_index=0`), what
a user gives the model: one still, then speech. A 5-image model gets five
frames spread evenly from that frame to the end of the track. The first
frames of the clip then resemble the identity closely, which helps model and
static baseline alike. With `still='closed'` the identity is the clip's frame
with the most closed mouth (least inner-lip gap of the real frames' landmarks;
a 5-image model gets it first, then four frames spread after it): the hardest
case, and the common one, since most photos users bring have closed lips. The
summary then says how much the generated mouth opens and moves against the real
one: `mouth_opening_std_ratio` and `mouth_motion_ratio` (row / real), and
`shut_where_real_opens`: clips whose real mouth opens (opening range p90-p10 of
at least 0.10 eye distances) where the row's stays shut (under 0.03).

Frames are compared at the model's output size S (112, or 109 for the
bilinear v201 decoder: real and identity crops are resized to it). Landmarks
of all three rows are found the same way, by MediaPipe face mesh in tracking
mode on the S x S crops, so LMD and mouth opening carry the same detector
bias for every row. Sync measures need the clip's waveform (landmark sync:
RMS envelope) or a sync expert (LSE-D/LSE-C on MFCC windows); see
`s2v_jax.evaluation.metrics` for every definition.
"""

import dataclasses
import glob
import logging
import os
import re
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import ml_collections
import numpy as np

from s2v_jax import assets, faces
from s2v_jax.data.input_pipeline import ensure_dataset
from s2v_jax.data.near_still import closest_to_closed
from s2v_jax.faces.preprocess import preprocess_video
from s2v_jax.data.sync_inputs import resize_crops
from s2v_jax.errors import DataError, MediaError, S2VError
from s2v_jax.evaluation import metrics
from s2v_jax.evaluation import report as report_lib
from s2v_jax.evaluation.sync_expert import SyncExpert
from s2v_jax.inference.generator import FrameGenerator
from s2v_jax.media import audio
from s2v_jax.train import export
from tfds_builders.common import decode_frame, decode_text

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv", ".webm", ".m4v")
ROWS = ("model", "static_baseline", "real")
ROI_SCALE = 1.5  # the face mesh sees the crop with a 25% margin on each side
_TFDS_SPEC = re.compile(r"^(?P<name>[A-Za-z_][\w]*(?:/[\w.\-]+)?):(?P<split>[\w\[\]:%\-]+)$")


@dataclasses.dataclass
class EvalClip:
    """One clip to evaluate: real registered crops uint8 [T, 112, 112, 3], the
    MFCC window of each frame [T, 12, 35] and, where the waveform is at hand,
    its RMS envelope per frame [T] (metrics.audio_envelope)."""

    name: str
    source: str
    crops: np.ndarray
    mfcc: np.ndarray
    envelope: Optional[np.ndarray] = None


# ---------------------------------------------------------------- clip sources

def is_tfds_spec(videos: str) -> bool:
    """True for 'name[/config]:split' that is not an existing path."""
    return not os.path.exists(videos) and bool(_TFDS_SPEC.match(videos))


def list_videos(path: str) -> List[str]:
    """A video file, or every video under a folder (recursive, sorted)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise DataError(f"--videos {path!r} is neither a video, a folder of videos nor a TFDS split "
                        "like synthetic_talking_faces/small:validation")
    found = sorted(p for p in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                   if p.lower().endswith(VIDEO_EXTENSIONS) and os.path.isfile(p))
    if not found:
        raise DataError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) under {path!r}")
    return found


def _clip_name(source: str, used: set) -> str:
    base = re.sub(r"[^\w.\-]+", "_", os.path.splitext(source)[0]).strip("_") or "clip"
    name, i = base, 1
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def clips_from_videos(path: str, max_clips: Optional[int] = None, skipped: Optional[list] = None) -> Iterator[EvalClip]:
    """The largest face track of each video (preprocess_video), with its MFCC windows and audio envelope."""

    root = path if os.path.isdir(path) else os.path.dirname(path)
    used: set = set()
    count = 0
    for video in list_videos(path):
        if max_clips is not None and count >= max_clips:
            return
        source = os.path.relpath(video, root) if root else video
        try:
            pv = preprocess_video(video)
            track = faces.largest_track(pv.tracks)
            if track is None:
                raise MediaError(pv.no_face_reason or "no face track")
            wav = audio.load_audio(video)
        except MediaError as e:
            log.warning("skipping %s: %s", video, e)
            if skipped is not None:
                skipped.append({"source": source, "reason": str(e)})
            continue
        envelope = metrics.audio_envelope(wav, pv.num_frames)[track.start_frame:track.end_frame]
        count += 1
        yield EvalClip(name=_clip_name(source, used), source=source, crops=track.crops,
                       mfcc=pv.mfcc_windows[track.start_frame:track.end_frame], envelope=envelope)


def _source_audio(builder, example, data_dir: str, manual_dir: Optional[str]) -> Optional[str]:
    """The source video of a TFDS record, where it can still be found: under the
    manual dir (registered_faces) or the builder's downloads (the synthetic corpus)."""
    source = decode_text(example["source"])
    candidates = [os.path.join(manual_dir, source)] if manual_dir else []
    cfg = getattr(builder, "builder_config", None)
    if cfg is not None and hasattr(cfg, "seed"):
        candidates.append(os.path.join(data_dir, "downloads", "synthetic", f"{cfg.name}-seed{cfg.seed}", source))
    candidates += glob.glob(os.path.join(glob.escape(data_dir), "downloads", "*", "*", glob.escape(source)))
    return next((c for c in candidates if os.path.isfile(c)), None)


def clips_from_tfds(spec: str, data_dir: str, max_clips: Optional[int] = None,
                    manual_dir: Optional[str] = None, min_frames: int = 0) -> Iterator[EvalClip]:
    """Records of a TFDS split ('name/config:split', read through its data source; built first if absent),
    in record order; records under `min_frames` frames are passed over (not counted in max_clips)."""


    m = _TFDS_SPEC.match(spec)
    if not m:
        raise DataError(f"{spec!r} is not a TFDS split; write NAME/CONFIG:SPLIT, e.g. synthetic_talking_faces/small:validation")
    cfg = ml_collections.ConfigDict({"data": {"dataset": m.group("name"), "data_dir": data_dir,
                                              "manual_dir": manual_dir or ""}})
    builder = ensure_dataset(cfg)
    split = m.group("split")
    if split not in builder.info.splits:
        raise DataError(f"{builder.info.full_name} has no split {split!r} (splits: {', '.join(builder.info.splits)})")
    source = builder.as_data_source(split)
    used: set = set()
    count = 0
    for i in range(len(source)):
        if max_clips is not None and count >= max_clips:
            break
        ex = source[i]
        if int(ex["num_frames"]) < min_frames:
            continue
        count += 1
        src = decode_text(ex["source"])
        crops = np.stack([decode_frame(f) for f in ex["frames"]])
        envelope = None
        video = _source_audio(builder, ex, os.path.expanduser(data_dir), manual_dir)
        if video is not None:
            try:
                wav = audio.load_audio(video)
                start = int(ex["start_frame"]) + int(ex.get("av_offset", 0))  # a *_synced track's sound
                total = max(int(ex["end_frame"]), audio.num_video_frames(len(wav)))
                envelope = metrics.audio_envelope(wav, total)[start:start + len(crops)]
            except MediaError as e:
                log.warning("no audio envelope for %s: %s", src, e)
        else:
            log.info("source video of %s not found: no landmark sync for it", src)
        yield EvalClip(name=_clip_name(f"{src}#{int(ex['track_index'])}", used), source=src, crops=crops,
                       mfcc=np.asarray(ex["mfcc"], np.float32), envelope=envelope)


# ---------------------------------------------------------------- per-clip measures

def crop_landmarks(frames: np.ndarray) -> np.ndarray:
    """Face-mesh landmarks of a video of face crops [T, S, S, 3] -> [T, 478, 2] crop px (NaN rows: no face)."""

    frames = np.asarray(frames)
    if len(frames) == 0:
        return np.zeros((0, faces.NUM_LANDMARKS, 2), np.float32)
    s = frames.shape[1]
    c, h = s / 2.0, ROI_SCALE * s / 2.0
    roi = np.array([c - h, c - h, c + h, c + h])
    with faces.LandmarkDetector(static_image_mode=False) as detector:  # tracking: one video
        return metrics.stack_landmarks([detector(f, roi=roi) for f in frames])


STILLS = ("first", "closed")  # evaluate's identity stills: identity_index's frame, or the most closed mouth
OPENS, SHUT = 0.10, 0.03  # opening range (p90 - p10, eye distances): a mouth that opens / one that stays shut


def closed_mouth_index(real_landmarks: np.ndarray) -> int:
    """The frame whose mouth is the most closed (least inner-lip gap); frame 0 where no face was found."""
    return closest_to_closed(real_landmarks, np.arange(len(real_landmarks)))


def identity_indices(num_frames: int, count: int, first: int = 0) -> np.ndarray:
    """Track frames used as identity: `first` (negative counts from the end), or `count` frames
    spread evenly from it to the last frame for a multi-image model."""
    if num_frames <= 0:
        raise DataError("an empty clip has no identity frame")
    first = first % num_frames if -num_frames <= first < num_frames else None
    if first is None:
        raise DataError(f"identity frame index out of range for a {num_frames}-frame clip")
    if count == 1:
        return np.array([first])
    return np.round(np.linspace(first, num_frames - 1, count)).astype(np.int64)


def _finite(x) -> Optional[float]:
    return float(x) if x is not None and np.isfinite(x) else None


def row_measures(frames, landmarks, real_frames, real_landmarks, envelope, expert, mfcc, *, is_real: bool,
                 max_offset: int, real_lab=None):
    """(measures, mouth opening [T]) of one row of one clip; measures are JSON-ready (non-finite -> None).
    real_lab: the real video's `metrics.mouth_colour` [T, 3], computed once per clip by the caller
    (None: computed here)."""
    out: Dict[str, Any] = {}
    if is_real:
        out.update(psnr=None, ssim=1.0, lmd=0.0)
    else:
        q = metrics.image_quality(frames, real_frames)
        out.update(psnr=_finite(q["psnr"]), ssim=_finite(q["ssim"]), lmd=_finite(metrics.lmd(landmarks, real_landmarks)))
    out["sharpness"] = _finite(metrics.sharpness(frames)) if len(frames) else None
    found = np.isfinite(landmarks[:, 0, 0])
    out["face_found"] = float(found.mean()) if len(found) else 0.0
    opening = metrics.mouth_opening(landmarks)
    if real_lab is None:
        real_lab = metrics.mouth_colour(real_frames, real_landmarks)
    lab = real_lab if is_real else metrics.mouth_colour(frames, landmarks)
    seen = np.isfinite(lab).all(axis=1)
    out["mouth_lab"] = [round(float(v), 2) for v in lab[seen].mean(axis=0)] if seen.any() else None
    out["mouth_colour_de"] = 0.0 if is_real else _finite(metrics.mouth_colour_difference(lab, real_lab))
    out["mouth_opening_mean"] = _finite(np.nanmean(opening)) if found.any() else None
    out["mouth_opening_std"] = _finite(np.nanstd(opening)) if found.any() else None
    out["mouth_opening_range"] = _finite(np.nanpercentile(opening, 90) - np.nanpercentile(opening, 10)) \
        if found.any() else None
    if envelope is not None:
        sync = metrics.landmark_sync(envelope, opening, max_offset)
        out.update(sync_offset=sync["offset"], sync_correlation=_finite(sync["correlation"]),
                   mouth_motion=_finite(sync["mouth_motion"]),
                   sync_correlation_at_zero=_finite(sync["correlation_at_zero"]),
                   sync_correlations=sync["correlations"])
    if expert is not None:
        lse = expert.sync_scores(frames, mfcc, max_offset)
        out.update(lse_d=_finite(lse["lse_d"]), lse_c=_finite(lse["lse_c"]), av_offset=lse["av_offset"],
                   lse_distances=lse["distances"])
    return out, opening


def summarise(clip_rows: Sequence[Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """Per row: the mean over clips of each scalar measure (clips without it left out) and the clip count."""
    keys = ("psnr", "ssim", "sharpness", "lmd", "face_found", "mouth_opening_std", "mouth_opening_range",
            "mouth_motion", "sync_correlation",
            "sync_correlation_at_zero", "lse_d", "lse_c", "mouth_colour_de")
    out = {}
    for row in ROWS:
        values = [c[row] for c in clip_rows]
        s: Dict[str, Any] = {"clips": len(values)}
        for k in keys:
            v = [x[k] for x in values if x.get(k) is not None]
            s[k] = float(np.mean(v)) if v else None
        for k in ("sync_offset", "av_offset"):
            v = [x[k] for x in values if x.get(k) is not None]
            s[f"{k}_mean_abs"] = float(np.mean(np.abs(v))) if v else None
            s[f"{k}_within_1"] = float(np.mean(np.abs(v) <= 1)) if v else None
        labs = [x["mouth_lab"] for x in values if x.get("mouth_lab") is not None]
        s["mouth_lab"] = [round(float(v), 2) for v in np.mean(labs, axis=0)] if labs else None
        if row == "real":
            s["psnr"] = None  # a video against itself: infinite
        out[row] = s
    for row, value in sync_recovered(out).items():
        out[row]["sync_recovered"] = value
    for row in ROWS:  # how much the mouth opens and moves against the real one's
        for k in ("mouth_opening_std", "mouth_motion"):
            real, mine = out["real"].get(k), out[row].get(k)
            out[row][f"{k}_ratio"] = None if real is None or mine is None or real <= 0 else float(mine / real)
        out[row]["shut_where_real_opens"] = int(sum(
            1 for c in clip_rows if (c["real"].get("mouth_opening_range") or 0) >= OPENS
            and c[row].get("mouth_opening_range") is not None and c[row]["mouth_opening_range"] < SHUT))
        out[row]["real_opens"] = int(sum(1 for c in clip_rows if (c["real"].get("mouth_opening_range") or 0) >= OPENS))
    return out


def sync_recovered(rows: Dict[str, Dict[str, Any]]) -> Dict[str, Optional[float]]:
    """(LSE-C(row) - LSE-C(static)) / (LSE-C(real) - LSE-C(static)) per row, on the mean LSE-C; None
    without LSE-C or when the real video is no more confident than the still (gap below 1e-6)."""
    c = {r: rows.get(r, {}).get("lse_c") for r in ROWS}
    if c.get("real") is None or c.get("static_baseline") is None or c["real"] - c["static_baseline"] < 1e-6:
        return {r: None for r in ROWS}
    gap = c["real"] - c["static_baseline"]
    return {r: (None if c[r] is None else float((c[r] - c["static_baseline"]) / gap)) for r in ROWS}


# ---------------------------------------------------------------- the driver

def evaluate_clips(generator, clips, out_dir: str, *, expert=None, identity_index: int = 0, still: str = "first",
                   max_offset: int = metrics.MAX_OFFSET, strip_frames: int = 8, meta: Optional[dict] = None,
                   skipped: Optional[list] = None, progress: bool = False) -> Dict[str, Any]:
    """Scores `clips` (EvalClip iterable) with a FrameGenerator (and optional SyncExpert); writes the report.

    Returns the report dict also written to out_dir/report.json (see report.py).
    """

    if still not in STILLS:
        raise S2VError(f"--still must be one of {', '.join(STILLS)}, not {still!r}")
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    size = generator.output_size
    k = generator.num_identity_images
    results, media = [], {}
    for clip in clips:
        t0 = time.time()
        t = len(clip.crops)
        real = resize_crops(clip.crops, size)
        real_landmarks = crop_landmarks(real)
        first = closed_mouth_index(real_landmarks) if still == "closed" else identity_index
        ids = identity_indices(t, k, first)
        identity = generator.encode_identity(clip.crops[ids])
        generated = generator.generate(clip.mfcc, identity)
        static = np.repeat(real[ids[:1]], t, axis=0)
        videos = {"model": generated, "static_baseline": static, "real": real}
        landmarks = {row: (real_landmarks if row == "real" else crop_landmarks(v)) for row, v in videos.items()}
        rows, openings = {}, {}
        real_lab = metrics.mouth_colour(real, real_landmarks)  # every row's colour is read against it
        for row in ROWS:
            rows[row], openings[row] = row_measures(
                videos[row], landmarks[row], real, landmarks["real"], clip.envelope, expert, clip.mfcc,
                is_real=(row == "real"), max_offset=max_offset, real_lab=real_lab)
        entry = {"name": clip.name, "source": clip.source, "num_frames": t, "identity_frames": ids.tolist(),
                 "rows": rows,
                 "mouth_opening": {r: [_finite(x) for x in o] for r, o in openings.items()},
                 "audio_envelope": None if clip.envelope is None else [float(x) for x in clip.envelope],
                 "elapsed_s": round(time.time() - t0, 2)}
        results.append(entry)
        media[clip.name] = videos
        if progress:
            m = rows["model"]
            print(f"{clip.name}: {t} frames, model PSNR {m['psnr']} SSIM {m['ssim']} LMD {m['lmd']}", flush=True)
    if not results:
        raise DataError("no clip could be evaluated" + (f" ({len(skipped)} skipped: {skipped[0]['reason']})"
                                                        if skipped else ""))
    report = {
        "version": 1,
        **(meta or {}),
        "settings": {"identity_index": identity_index, "still": still, "identity_images": k, "output_size": size,
                     "max_offset": max_offset, "landmarks": "MediaPipe face mesh (tracking mode) on the crops",
                     "sync_expert": expert is not None},
        "definitions": report_lib.DEFINITIONS,
        "rows": summarise([r["rows"] for r in results]),
        "clips": results,
        "skipped": list(skipped or []),
        "elapsed_s": round(time.time() - start, 2),
    }
    return report_lib.write_report(report, out_dir, media, strip_frames=strip_frames)


SHIPPED = "shipped"  # evaluate_checkpoint's default judge: the one in s2v_jax/assets


def evaluate_checkpoint(checkpoint: Optional[str], videos: str, out_dir: str, *, sync_expert: Optional[str] = SHIPPED,
                        max_clips: Optional[int] = None, data_dir: str = "data/tfds",
                        manual_dir: Optional[str] = None, identity_index: int = 0, still: str = "first",
                        batch_size: int = 32,
                        min_seconds: float = 0.0,
                        deblur_checkpoint: Optional[str] = None, strip_frames: int = 8,
                        progress: bool = False) -> Dict[str, Any]:
    """Evaluates a generator checkpoint on held-out clips and writes out_dir/report.json + index.html.

    videos: a video file, a folder of videos, or a TFDS split 'name/config:split'
    (read from `data_dir`). sync_expert: the judge of LSE-D/LSE-C and sync
    recovered: 'shipped' (default: the package's), a sync-expert checkpoint or
    export, or None (no LSE). Returns the report dict (rows 'model', 'static_baseline', 'real').
    """

    if max_clips is not None and max_clips < 1:
        raise S2VError(f"--max-clips must be at least 1, not {max_clips}")
    generator = FrameGenerator.from_checkpoint(checkpoint, deblur_checkpoint=deblur_checkpoint, batch_size=batch_size)
    expert, judge = None, None
    if sync_expert == SHIPPED:
        if export.is_exported(assets.SYNC_EXPERT):
            expert, judge = SyncExpert.default(batch_size=batch_size), assets.SYNC_EXPERT
        else:
            log.warning("no sync expert shipped in this installation: no LSE-D/LSE-C (pass --sync-expert)")
    elif sync_expert:
        expert, judge = SyncExpert.from_checkpoint(sync_expert, batch_size=batch_size), os.path.abspath(sync_expert)
    skipped: List[dict] = []
    if is_tfds_spec(videos):
        clips = clips_from_tfds(videos, data_dir, max_clips, manual_dir, min_frames=int(round(min_seconds * 25)))
    else:
        clips = clips_from_videos(videos, max_clips, skipped)
    meta = {"checkpoint": os.path.abspath(checkpoint) if checkpoint else assets.GENERATOR, "videos": videos,
            "sync_expert": judge,
            "deblur_checkpoint": os.path.abspath(deblur_checkpoint) if deblur_checkpoint else None}
    return evaluate_clips(generator, clips, out_dir, expert=expert, identity_index=identity_index, still=still,
                          strip_frames=strip_frames, meta=meta, skipped=skipped, progress=progress)
