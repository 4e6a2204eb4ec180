"""Generated near-still windows: a generator's own video of a training track, kept for the judge.

Shrinking a real window's motion (`s2v_jax.data.near_still`) teaches a judge that a
frozen or damped mouth carries no sync, yet a warp-only generator driven from a
closed-mouth photo still fooled the judges (issue #32: real above the shipped
generator on 13 of 39 held-out clips by the evaluation judge): its motion is small,
well timed, and of its own kind. The remedy the field uses is to show the judge the
generator's own output as what it must score low. This module makes that output once
per training track and serves it to the sync sampler:

    python -m s2v_jax.inference.generated_negatives --out DIR [--generator shipped] \
        [--data-dir data/tfds] [--per-source N] [--skip PREFIXES]

writes DIR/r<record>.npy (uint8 [T, 112, 112, 3]: the track's registered face made by
the generator from the track's most closed-mouth frame, driven by the track's own
MFCC, the protocol of `s2v evaluate --still closed`) for every train track (or up to
`--per-source` of each corpus source) not under the `--skip` prefixes, and DIR/index.json (record -> frames, the generator,
the dataset). It resumes: a track whose file exists is skipped (files are written
under a temporary name, then renamed). The sync sampler uses a track's generated
copy in place of its shrunk copy with probability `data.generated_negatives_prob`
when `data.generated_negatives` names DIR (`GeneratedCopies`, here; the making needs a
generator, so it lives above, in `s2v_jax.inference.generated_negatives`). Several generators'
copies: DIR1,DIR2 (`GeneratedSets`): each window draws one of the copies its track has, evenly.
"""

import json
import logging
import os
from typing import Dict, Optional

import numpy as np

log = logging.getLogger(__name__)
INDEX = "index.json"


def track_path(root: str, record: int) -> str:
    return os.path.join(root, f"r{int(record):06d}.npy")


class GeneratedCopies:
    """The generated copies in a directory written by `build`: `get(record)` -> uint8 [T, 112, 112, 3]
    (memory-mapped) or None. Picklable (grain worker processes open the files themselves)."""

    def __init__(self, root: str, dataset: Optional[str] = None):
        index_path = os.path.join(root, INDEX)
        if not os.path.isfile(index_path):
            from s2v_jax.errors import DataError

            raise DataError(f"data.generated_negatives: {root} has no {INDEX}; make it with "
                            f"`python -m s2v_jax.inference.generated_negatives --out {root}`")
        with open(index_path) as f:
            index = json.load(f)
        made_from = index.get("dataset")  # the builder's full name: NAME/CONFIG/VERSION
        if dataset is not None and made_from is not None and not (made_from == dataset or
                                                                  made_from.startswith(dataset.rstrip("/") + "/")):
            from s2v_jax.errors import DataError

            raise DataError(f"data.generated_negatives: {root} was made from {index['dataset']}, "
                            f"not data.dataset {dataset}: its record numbers would name other tracks")
        self.root = root
        self.frames = {int(r): int(n) for r, n in index["records"].items()}

    def __len__(self) -> int:
        return len(self.frames)

    def get(self, record: int, num_frames: Optional[int] = None) -> Optional[np.ndarray]:
        n = self.frames.get(int(record))
        if n is None or (num_frames is not None and n != int(num_frames)):
            return None
        return np.load(track_path(self.root, record), mmap_mode="r")


class GeneratedSets:
    """Several generators' copies (`GeneratedCopies` of each root): `choices(record, num_frames)` -> the
    list of copies this track has (memory-mapped), of which the sampler draws one per window."""

    def __init__(self, roots, dataset: Optional[str] = None):
        if isinstance(roots, str):
            roots = [r.strip() for r in roots.split(",") if r.strip()]
        self.sets = [GeneratedCopies(r, dataset=dataset) for r in roots]

    def __len__(self) -> int:
        """Tracks with at least one copy."""
        return len(set().union(*(s.frames for s in self.sets))) if self.sets else 0

    def choices(self, record: int, num_frames: Optional[int] = None):
        return [c for c in (s.get(record, num_frames) for s in self.sets) if c is not None]


def choose_records(sources, per_source: int, skip_prefixes=(), seed: int = 0) -> Dict[int, str]:
    """{record: source} of up to `per_source` records (0: all) of each top-level source (the folder before
    the first '/'), drawn evenly at random (seeded), none under `skip_prefixes`."""
    rng = np.random.default_rng(seed)
    by_top: Dict[str, list] = {}
    for r, s in enumerate(sources):
        if skip_prefixes and s.startswith(tuple(skip_prefixes)):
            continue
        by_top.setdefault(s.split("/")[0], []).append(r)
    out = {}
    for top, recs in sorted(by_top.items()):
        pick = recs if per_source <= 0 or len(recs) <= per_source else sorted(rng.choice(recs, size=per_source, replace=False))
        out.update({int(r): sources[r] for r in pick})
    return dict(sorted(out.items()))
