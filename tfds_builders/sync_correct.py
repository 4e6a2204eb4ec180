"""Audio-visual offset correction of registered face tracks, as the paper
prepares its training data with SyncNet (`s2v build-dataset --sync-correct`,
the `*_synced` configs of `registered_faces`).

Each track of 2 s or more is scored by a sync judge over offsets within +-15
frames. Where the judge is confident (LSE-C at least `min_confidence`) and
finds the sound k frames late (k > 0) or early (k < 0) by at least
`min_offset` frames, the track's MFCC windows are shifted so that each frame
is paired with the sound spoken with it (frame i gets window i + k), and the
track loses |k| frames at one end (the frames whose sound lies outside it).
An offset of +-1 is left alone: it is within the judge's own precision (the
shipped judge answers k-1 on about half of the held-out clips; BENCHMARKS.md).
Shorter tracks are kept as they are (the search over +-15 frames needs more
frames than a 1.2 s clip has to be reliable).

Every example of a synced build carries `av_offset` (the shift applied, 0
where none was), and the build metadata (`sync_correction`) lists every
measured track with its offset, LSE-C and whether it was shifted, and a
summary per source folder. The judge is passed in by the caller (any object
with `sync_scores(crops, mfcc_windows, max_offset)` returning `av_offset`
and `lse_c`, as `s2v_jax.evaluation.sync_expert.SyncExpert` does), so this
data layer does not depend on the models.
"""

import collections
import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from tfds_builders import common

SUFFIX = "_synced"  # config name of a sync-corrected build: registered_faces/real_synced


@dataclasses.dataclass(frozen=True)
class SyncPolicy:
    """When a measured offset is applied."""

    min_frames: int = 50          # tracks of 2 s or more are measured
    max_offset: int = 15          # offsets searched, as SyncNet
    min_offset: int = 2           # |k| = 1 is left alone (the judge's own precision)
    min_confidence: float = 0.05  # LSE-C of the found offset (median minus minimum distance)


def shift_example(example: Dict[str, Any], offset: int) -> Dict[str, Any]:
    """`example` with frame i paired to MFCC window i + offset (the sound `offset` frames late:
    positive; early: negative), |offset| frames trimmed at one end; start/end frames follow the
    frames kept, and `av_offset` says where their sound starts (start_frame + av_offset)."""
    n, k = int(example["num_frames"]), int(offset)
    if abs(k) >= n:
        raise ValueError(f"offset {k} leaves nothing of a {n}-frame track")
    f0, f1, w0 = (0, n - k, k) if k >= 0 else (-k, n, 0)
    m = f1 - f0
    out = dict(example)
    for name in ("frames", "landmarks", "transforms"):
        out[name] = example[name][f0:f1]
    out["mfcc"] = np.asarray(example["mfcc"])[w0:w0 + m]
    out["num_frames"] = m
    out["start_frame"] = int(example["start_frame"]) + f0
    out["end_frame"] = out["start_frame"] + m
    out["av_offset"] = k
    return out


class SyncCorrector:
    """Applies a judge's offsets to each ClipResult of a build and keeps the records."""

    def __init__(self, judge, policy: SyncPolicy = SyncPolicy(), min_frames: int = 25):
        if judge is None or not hasattr(judge, "sync_scores"):
            raise TypeError("SyncCorrector needs a judge with sync_scores(crops, mfcc_windows, max_offset)")
        self.judge, self.policy, self.min_frames = judge, policy, int(min_frames)
        self.records: List[Dict[str, Any]] = []
        self.unmeasured = 0

    def measure(self, example: Dict[str, Any]) -> Tuple[Optional[int], Optional[float]]:
        crops = np.stack([common.decode_frame(f) for f in example["frames"]])
        scores = self.judge.sync_scores(crops, np.asarray(example["mfcc"], np.float32), self.policy.max_offset)
        offset, conf = scores.get("av_offset"), scores.get("lse_c")
        if offset is None or conf is None or not math.isfinite(float(conf)):
            return None, None
        return int(offset), float(conf)

    def __call__(self, result: common.ClipResult) -> common.ClipResult:
        out = common.ClipResult([], [], list(result.skipped))
        p = self.policy
        for key, ex in result.examples:
            n = int(ex["num_frames"])
            if n < p.min_frames:
                self.unmeasured += 1
                new = dict(ex, av_offset=0)
            else:
                offset, conf = self.measure(ex)
                shift = offset is not None and conf >= p.min_confidence and abs(offset) >= p.min_offset \
                    and n - abs(offset) >= self.min_frames
                self.records.append({"key": ex["key"], "source": ex["source"], "track_index": int(ex["track_index"]),
                                     "frames": n, "offset": offset, "lse_c": None if conf is None else round(conf, 4),
                                     "shifted": bool(shift)})
                new = shift_example(ex, offset) if shift else dict(ex, av_offset=0)
            out.examples.append((key, new))
            out.tracks.append([new["key"], int(new["num_frames"])])
        return out

    def metadata(self) -> Dict[str, Any]:
        """What goes into the build metadata: the policy, per-source counts, every measured track."""
        by_source: Dict[str, Dict[str, Any]] = {}
        for r in self.records:
            s = by_source.setdefault(r["source"].split("/")[0], {"measured": 0, "shifted": 0,
                                                                  "offsets": collections.Counter()})
            s["measured"] += 1
            s["shifted"] += int(r["shifted"])
            s["offsets"][r["offset"]] += 1  # an int, or None where the judge gave no offset
        in_order = lambda oc: (oc[0] is None, oc[0] or 0)  # noqa: E731  (ascending, None last)
        summary = {k: {"measured": v["measured"], "shifted": v["shifted"],
                       "offsets": {str(o): c for o, c in sorted(v["offsets"].items(), key=in_order)}}
                   for k, v in sorted(by_source.items())}
        return {"policy": dataclasses.asdict(self.policy), "unmeasured_short_tracks": self.unmeasured,
                "summary": summary, "tracks": self.records}
