"""Which tracks of a registered corpus are sampled, and how often: the comma-separated
`config.data` fields `exclude` (source patterns never sampled), `repeat` ('pattern:factor'
oversampling in training) and the sync expert's `holdout_sources`, matched on each record's
`source` (its video path relative to the corpus). Used by `input_pipeline` and `sync_samples`.
"""

import fnmatch
from typing import List, Sequence

import numpy as np

from s2v_jax.errors import DataError


def items(raw) -> List[str]:
    """A comma-separated string (or a list; None = empty) as its non-empty stripped items."""
    raw = raw or ""
    parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return [p.strip() for p in parts if p.strip()]


def listed(config, field: str) -> List[str]:
    """config.data.<field>, a comma-separated string (or a list), as its non-empty stripped items."""
    return items(config.data.get(field, ""))


def exclude_patterns(config) -> List[str]:
    """config.data.exclude as a list of patterns ('' = none)."""
    return listed(config, "exclude")


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
    hit = np.array([any(fnmatch.fnmatchcase(s, p) for p in patterns) for s in mine], bool)
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
    for item in listed(config, "repeat"):
        pattern, sep, factor = item.rpartition(":")
        if not sep or not pattern.strip() or not factor.strip().isdigit() or int(factor) < 1:
            raise DataError(f"data.repeat item {item!r}: expected 'pattern:factor' with a whole factor >= 1 "
                            f"(e.g. 'styletalk/*:4')")
        out.append((pattern.strip(), int(factor)))
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
