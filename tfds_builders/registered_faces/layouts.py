"""Where the videos of each corpus layout are, and which identity owns them.

Every layout maps a manual directory to a sorted list of `common.Clip`s; the
identity (`group_id`) is the unit of the train/validation split, so no speaker
(or, for LRS2, no source video) is in two splits. Files that do not fit the
layout are returned as skipped records, never dropped silently.
"""

import os
import re
from typing import Dict, List, Optional, Tuple

from tfds_builders import common

VIDEO_EXTENSIONS = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv")
LRW_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def find_videos(root: str, extensions=VIDEO_EXTENSIONS) -> List[str]:
    """Relative paths (with '/') of every video under `root`, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in filenames:
            if name.lower().endswith(extensions) and not name.startswith("."):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


LRC_AR_BLOCK = 50  # LRC-AR has no speaker labels; neighbouring clip numbers share a broadcast


def real_corpus_group(parts: List[str]) -> Optional[str]:
    """The identity of a clip of `../shared/data/real/corpus` (the `real` layout), by source folder:
    lrs2*/<video_id>/<clip> -> the source video; grid_s1, tedx_ro, single speakers -> the speaker;
    styletalk/<Person>_clipN -> the person; lrc_ar/<n> -> a block of 50 numbers (one broadcast);
    grid/<file> -> the file (speaker not named); voxceleb2_style/<file> -> the file."""
    source, name = parts[0], os.path.splitext(parts[-1])[0]
    if source.startswith("lrs2") and len(parts) >= 3:
        return f"{source}/{parts[-2]}"
    if source in ("grid_s1", "tedx_ro", "single_speaker"):
        return source
    if source == "styletalk":
        return f"styletalk/{re.split(r'_clip', name, flags=re.I)[0].lower()}"
    if source == "lrc_ar":
        digits = re.sub(r"\D", "", name)
        return f"lrc_ar/{int(digits) // LRC_AR_BLOCK}" if digits else None
    if source in ("grid", "voxceleb2_style") and len(parts) == 2:
        return f"{source}/{name}"
    return None


def list_clips(root: str, layout: str, validation_percent: int) -> Tuple[List[common.Clip], List[Dict]]:
    """(clips, skipped records) of `root` for `layout` (lrs2, voxceleb2, lrw, folder, real)."""
    if layout in ("folder", "real"):
        rels = find_videos(root)
    else:
        rels = find_videos(root, (".mp4",))
    clips, skipped = [], []
    for rel in rels:
        parts = rel.split("/")
        path = os.path.join(root, *parts)
        group, split = None, None
        if layout == "lrs2" and len(parts) >= 2:
            group = parts[-2]  # <video_id>/<clip>.mp4 (also under pretrain/ or main/)
        elif layout == "voxceleb2" and len(parts) >= 3:
            group = parts[-3]  # <speaker>/<video>/<clip>.mp4 (also under dev/mp4/)
        elif layout == "lrw" and len(parts) >= 3 and parts[-2] in LRW_SPLITS:
            group, split = parts[-3], LRW_SPLITS[parts[-2]]  # <WORD>/<split>/<WORD>_<n>.mp4
        elif layout == "real":
            group = real_corpus_group(parts) if len(parts) >= 2 else None
        elif layout == "folder":
            # A top-level sub-folder is one identity; a loose file is its own.
            group = parts[0] if len(parts) > 1 else os.path.splitext(parts[0])[0]
        if group is None:
            skipped.append({"source": rel, "reason": common.LAYOUT, "detail": f"layout {layout!r}"})
            continue
        split = split or common.hash_split(group, validation_percent)
        clips.append(common.Clip(path=path, source=rel, group_id=group, split=split))
    if layout == "real" and validation_percent > 0:  # every source holds some of its identities out
        by_source: Dict[str, List[common.Clip]] = {}
        for c in clips:
            by_source.setdefault(c.source.split("/")[0], []).append(c)
        clips = sorted((c for cs in by_source.values() for c in common.ensure_validation(cs)),
                       key=lambda c: c.source)
    elif layout != "lrw" and validation_percent > 0:
        clips = common.ensure_validation(clips)
    return clips, skipped
