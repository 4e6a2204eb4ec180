"""TFDS builders of the project's datasets (array_record, read without TensorFlow).

    registered_faces/{lrs2,voxceleb2,lrw,folder,real}   face tracks of a video corpus
    registered_faces/{...}_synced                       the same, AV offsets corrected (sync_correct.py)
    synthetic_talking_faces/{tiny,small,medium}    the s2v_jax.synth corpus, registered

`build()` prepares one (the `s2v build-dataset` command and
`s2v_jax.data.input_pipeline.ensure_dataset` use it); `report()` summarises a
prepared one from its build metadata. Importing the sub-packages registers the
builders with TFDS; heavy imports happen inside the functions.
"""

import collections
import os
import shutil
from typing import Any, Dict, Optional, Sequence

BUILDERS = ("registered_faces", "synthetic_talking_faces")


def parse_name(name: str, config: Optional[str] = None) -> str:
    """'registered_faces' + config 'lrs2', or 'registered_faces/lrs2' -> 'registered_faces/lrs2'."""
    from s2v_jax.errors import DataError

    base, _, named = name.partition("/")
    if base not in BUILDERS:
        raise DataError(f"unknown dataset {base!r}; known: {', '.join(BUILDERS)}")
    if named and config and named != config:
        raise DataError(f"dataset {name!r} and --config {config!r} disagree; give the config once")
    return f"{base}/{named or config}" if (named or config) else base


def get_builder(name: str, data_dir: str, *, use_beam: bool = False, sync_judge=None):
    """The TFDS builder `name` ('builder/config') in `data_dir`, array_record format
    (`sync_judge`: what a registered_faces `*_synced` config measures AV offsets with)."""
    import tensorflow_datasets as tfds

    import tfds_builders.registered_faces  # noqa: F401  (registers the builders)
    import tfds_builders.synthetic_talking_faces  # noqa: F401
    from s2v_jax.errors import DataError

    base, _, config = name.partition("/")
    if use_beam and base != "registered_faces":
        raise DataError(f"Beam builds are for registered_faces only, not {base!r}")
    known = [c.name for c in tfds.builder_cls(base).BUILDER_CONFIGS]
    if not config:
        raise DataError(f"{base} needs a config: give {base}/CONFIG ({', '.join(known)})")
    if config not in known:
        raise DataError(f"{base} has no config {config!r}; configs: {', '.join(known)}")
    kwargs: Dict[str, Any] = {"use_beam": True} if use_beam else {}
    if sync_judge is not None:
        if base != "registered_faces":
            raise DataError(f"AV-offset correction is for registered_faces only, not {base!r}")
        kwargs["sync_judge"] = sync_judge
    try:
        return tfds.builder(name, data_dir=os.path.expanduser(data_dir), file_format="array_record", **kwargs)
    except Exception as e:  # e.g. an unreadable data dir
        raise DataError(f"cannot open dataset {name!r} in {data_dir!r}: {str(e).strip().splitlines()[0]}") from None


def build(name: str, data_dir: str, *, manual_dir: Optional[str] = None, use_beam: bool = False,
          beam_options: Sequence[str] = (), overwrite: bool = False, sync_judge=None):
    """Prepares `name` in `data_dir` unless it is already there; returns the builder.
    `sync_judge`: for a registered_faces `*_synced` config (tfds_builders.sync_correct)."""
    import tensorflow_datasets as tfds

    from s2v_jax.errors import DataError

    builder = get_builder(name, data_dir, use_beam=use_beam, sync_judge=sync_judge)
    if builder.is_prepared() and not overwrite:
        return builder
    kwargs: Dict[str, Any] = {}
    if name.startswith("registered_faces"):
        if not manual_dir:
            raise DataError(f"{name} needs the source videos: give --manual-dir (config.data.manual_dir)")
        if not os.path.isdir(manual_dir):
            raise DataError(f"manual dir {manual_dir!r} does not exist")
        kwargs["manual_dir"] = os.path.abspath(os.path.expanduser(manual_dir))
    if use_beam:
        from apache_beam.options.pipeline_options import PipelineOptions

        kwargs["beam_options"] = PipelineOptions(list(beam_options) or ["--runner=DirectRunner"])
    if overwrite:  # regenerate the records, keep downloads (the rendered synthetic corpus)
        kwargs["download_mode"] = tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**kwargs))
    if not builder.info.splits:  # every input skipped: leave nothing that looks built
        skipped = (builder.info.metadata or {}).get("skipped", [])
        shutil.rmtree(os.fspath(builder.data_dir), ignore_errors=True)
        reasons = collections.Counter(r["reason"] for r in skipped if "source" in r)
        raise DataError(f"{name}: no usable face track in any input ({dict(reasons)}); nothing was written")
    return builder


def report(builder, build_seconds: Optional[float] = None) -> Dict[str, Any]:
    """JSON-able summary: examples/frames/hours per split and every skipped input."""
    meta = dict(builder.info.metadata or {})
    summary = meta.get("summary", {})
    splits = {}
    for split in sorted(set(builder.info.splits) | set(summary)):  # a split left empty is listed too
        s = {"clips": 0, "frames": 0, "hours": 0.0, **summary.get(split, {})}
        s["examples"] = int(builder.info.splits[split].num_examples) if split in builder.info.splits else 0
        splits[split] = s
    skipped = meta.get("skipped", [])
    frames = sum(s["frames"] for s in splits.values())
    out = {
        "dataset": builder.info.full_name,
        "data_dir": os.fspath(builder.data_dir),
        "splits": splits,
        "total": {"examples": sum(s["examples"] for s in splits.values()), "frames": frames,
                  "hours": round(frames / 25.0 / 3600.0, 6), "bytes": int(builder.info.dataset_size)},
        "num_skipped": len(skipped),
        "skipped": skipped,
    }
    if "sync_correction" in meta:  # a *_synced build: per-source offsets (every track in metadata.json)
        sc = meta["sync_correction"]
        out["sync_correction"] = {k: sc[k] for k in ("policy", "unmeasured_short_tracks", "summary") if k in sc}
    if build_seconds is not None:
        out["build_seconds"] = round(build_seconds, 1)
    return out

