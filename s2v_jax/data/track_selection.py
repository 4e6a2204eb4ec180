"""Which tracks of a registered corpus are sampled, and how often: the comma-separated
`config.data` fields `exclude` (tracks never sampled, in training or validation) and `repeat`
('pattern:factor' oversampling in training), matched on each record's `source` (its video path
relative to the corpus). One setting for every trainer: the generator's `input_pipeline` and the
judge's `sync_samples` both take their tracks from `select`.

A pattern is a shell pattern (`fnmatch`: '*' also crosses '/'); an item with no wildcard is a
prefix ('lrs2_b/' a folder, 'voxceleb2_style/7414' the files whose names start so), the form the
judges' held-out lists were written in.
"""

import fnmatch
import logging
from typing import List, Sequence

import numpy as np

from s2v_jax.errors import DataError

log = logging.getLogger(__name__)


def items(raw) -> List[str]:
    """A comma-separated string (or a list; None = empty) as its non-empty stripped items."""
    raw = raw or ""
    parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return [p.strip() for p in parts if p.strip()]


def as_pattern(item: str) -> str:
    """A shell pattern as it is; an item without a wildcard (*, ?, [) as the prefix it names."""
    return item if any(c in item for c in "*?[") else item + "*"


def patterns(raw) -> List[str]:
    """A comma-separated list of patterns or prefixes (`items`) as shell patterns (`as_pattern`)."""
    return [as_pattern(p) for p in items(raw)]


def exclude_patterns(config) -> List[str]:
    """config.data.exclude as shell patterns ('' = none)."""
    return patterns(config.data.exclude)


def matches(source: str, pats: Sequence[str]) -> bool:
    """Whether a track's `source` matches one of the shell patterns `pats`."""
    return any(fnmatch.fnmatchcase(source, p) for p in pats)


def record_sources(builder, split: str) -> List[str]:
    """The `source` (video path relative to the corpus) of every record of `split`, in record order
    (reads every record: read it once per split)."""
    from tfds_builders.common import decode_text  # tensorflow_datasets only where a corpus is read

    src = builder.as_data_source(split)
    return [decode_text(src[i]["source"]) for i in range(len(src))]


def excluded_records(builder, split: str, patterns: Sequence[str], mine: Sequence[str]) -> np.ndarray:
    """Bool [records of split]: the record's `source` (`mine`: record_sources of split) matches one of
    `patterns`. A pattern that matches no track of any split is a DataError (a typo would otherwise
    exclude nothing)."""
    hit = np.array([matches(s, patterns) for s in mine], bool)
    for p in patterns:
        if any(fnmatch.fnmatchcase(s, p) for s in mine):
            continue
        if not any(fnmatch.fnmatchcase(s, p) for other in builder.info.splits if other != split
                   for s in record_sources(builder, other)):
            example = mine[0] if mine else "none"
            raise DataError(f"data.exclude pattern {p!r} matches no track of {builder.info.full_name} (sources are "
                            f"paths relative to the corpus, e.g. {example!r}); fix the pattern or drop it")
    return hit


def repeat_factors(config) -> List[tuple]:
    """config.data.repeat as [(pattern, factor)] ('' = none); a DataError names a malformed item."""
    out = []
    for item in items(config.data.repeat):
        pattern, sep, factor = item.rpartition(":")
        if not sep or not pattern.strip() or not factor.strip().isdigit() or int(factor) < 1:
            raise DataError(f"data.repeat item {item!r}: expected 'pattern:factor' with a whole factor >= 1 "
                            f"(e.g. 'styletalk/*:4')")
        out.append((as_pattern(pattern.strip()), int(factor)))
    return out


def record_repeats(builder, split: str, factors: Sequence[tuple], sources: Sequence[str]) -> np.ndarray:
    """Int [records of split]: each record's repeat factor (the first matching pattern's on its
    `source`, from `sources`: record_sources of split; 1 if none). A pattern that matches no track
    of the split is a DataError."""
    out = np.ones(len(sources), np.int64)
    done = np.zeros(len(sources), bool)
    for pattern, factor in factors:
        hit = np.array([fnmatch.fnmatchcase(s, pattern) for s in sources], bool)
        if not hit.any():
            example = sources[0] if sources else "none"
            raise DataError(f"data.repeat pattern {pattern!r} matches no {split} track of {builder.info.full_name} "
                            f"(sources are paths relative to the corpus, e.g. {example!r}); fix the pattern or drop it")
        out[hit & ~done] = factor
        done |= hit
    return out


def select(config, builder, split: str, num_frames: Sequence[int]):
    """The tracks of `split` that are sampled, and how often: (num_frames with 0 for every track
    `data.exclude` leaves out, repeats: int per record from `data.repeat` in training, else None).
    Record indices are unchanged, so every other track's samples stay where they were. What was left
    out and repeated is logged."""
    pats = exclude_patterns(config)
    factors = repeat_factors(config)  # parsed (and checked) for either split
    factors = factors if split == "train" else []  # validation is never reweighted
    num_frames = np.asarray(num_frames)
    sources = record_sources(builder, split) if pats or factors else None  # one read of every record
    if pats:
        drop = excluded_records(builder, split, pats, sources)
        num_frames = np.where(drop, 0, num_frames)  # no sample; record indices unchanged
        log.info("%s %s: data.exclude %s leaves out %d of %d tracks", builder.info.full_name, split,
                 ",".join(pats), int(drop.sum()), len(drop))
    repeats = None
    if factors:
        repeats = record_repeats(builder, split, factors, sources)
        log.info("%s %s: data.repeat %s repeats %d of %d tracks", builder.info.full_name, split,
                 config.data.repeat, int((repeats > 1).sum()), len(repeats))
    return num_frames, repeats
