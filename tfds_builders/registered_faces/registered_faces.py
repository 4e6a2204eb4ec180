"""TFDS builder `registered_faces`: face tracks of a talking-face corpus,
registered to the canonical 112x112 face, with per-frame MFCC windows.

    builder = tfds.builder("registered_faces/lrs2", data_dir=D, file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=M))

Configs by layout of the manual directory: `lrs2` (<video_id>/<clip>.mp4),
`voxceleb2` (<speaker>/<video>/<clip>.mp4), `lrw` (<WORD>/<train|val|test>/
<WORD>_<n>.mp4, its own splits) and `folder` (any videos, recursively; a
top-level sub-folder is one identity). Splits: md5(identity) mod 100 < 10 ->
validation, else train (LRW: its folders). `use_beam=True` builds with Beam.

`<config>_synced` (lrs2, voxceleb2, folder, real): the same tracks with their
audio-visual offset corrected by a sync judge (`tfds_builders.sync_correct`;
`s2v build-dataset ... --sync-correct` passes the shipped judge as
`sync_judge=`). It reuses the plain config's per-video registration cache.
"""

import dataclasses
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds

from s2v_jax.errors import DataError
from tfds_builders import common
from tfds_builders import sync_correct
from tfds_builders.registered_faces import layouts


MEMORY_SORT_LIMIT = 16 << 30  # bytes of records per split sorted in memory when TensorFlow is absent


@dataclasses.dataclass(eq=False)
class RegisteredFacesConfig(tfds.core.BuilderConfig):
    layout: str = "folder"        # how identities are read from paths (see layouts.py)
    validation_percent: int = 10  # share of identities (by hash) in the validation split
    min_frames: int = 30          # tracks shorter than this (1.2 s) are skipped as too short
    sync_correct: bool = False    # shift each track's audio by the judge's offset (sync_correct.py)


class RegisteredFaces(common.QuietPrepare, tfds.core.GeneratorBasedBuilder):
    """Registered face tracks + MFCC windows, one example per face track."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: JPEG frames, MFCC windows, landmarks."}
    BUILDER_CONFIGS = [
        RegisteredFacesConfig(name="lrs2", layout="lrs2", description="LRS2: <video_id>/<clip>.mp4, split by video id"),
        RegisteredFacesConfig(name="voxceleb2", layout="voxceleb2",
                              description="VoxCeleb2: <speaker>/<video>/<clip>.mp4, split by speaker"),
        RegisteredFacesConfig(name="lrw", layout="lrw", description="LRW: <WORD>/<split>/<WORD>_<n>.mp4, its splits"),
        RegisteredFacesConfig(name="folder", layout="folder",
                              description="any videos (mp4, mpg, avi, mov, mkv), split by top-level folder"),
        # LRC-AR's clips are 1.2 s (30 frames; 29 after rounding): counted, not skipped.
        RegisteredFacesConfig(name="real", layout="real", min_frames=25,
                              description="the shared real corpus (lrs2, lrs2_b, voxceleb2_style, grid, grid_s1, "
                                          "lrc_ar, styletalk, tedx_ro): identities per source, each source split"),
    ]
    BUILDER_CONFIGS += [  # the same with each track's AV offset corrected by a sync judge
        dataclasses.replace(c, name=c.name + sync_correct.SUFFIX, sync_correct=True,
                            description=c.description + "; AV offset corrected by the sync judge")
        for c in list(BUILDER_CONFIGS) if c.layout != "lrw"]  # LRW's 1.16 s words are too short to measure
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the corpus videos in the manual directory (`--manual-dir`, or
    `<data_dir>/downloads/manual`) in the config's layout: lrs2
    <video_id>/<clip>.mp4, voxceleb2 <speaker>/<video>/<clip>.mp4, lrw
    <WORD>/<train|val|test>/<WORD>_<n>.mp4, folder: any tree of videos.
    """

    def __init__(self, *, use_beam: bool = False, sync_judge=None, **kwargs):
        self._use_beam = use_beam  # same records either way; Beam spreads the work
        self._sync_judge = sync_judge  # *_synced configs: what measures each track's offset (building only)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        extra = None
        if self.builder_config.sync_correct:
            extra = {"av_offset": tfds.features.Scalar(
                np.int32, doc="frames the sound was shifted by (+k: it came k frames late); the sound of "
                              "frame start_frame + i is at start_frame + i + av_offset in the source video")}
        return self.dataset_info_from_configs(
            features=common.features(extra),
            # Records sorted by their integer key: the loader knows the order
            # from the metadata (see common.py) without reading the records.
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
            homepage="https://www.robots.ox.ac.uk/~vgg/publications/2017/Chung17b/",
        )

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        cfg = self.builder_config
        if not os.path.isdir(root):
            raise DataError(f"manual directory {root!r} does not exist (pass --manual-dir with the videos)")
        self._corrector = None
        if cfg.sync_correct:
            if self._use_beam:
                raise DataError(f"registered_faces/{cfg.name} is built without Beam (the sync judge runs in "
                                "the building process): leave out --beam")
            if self._sync_judge is None:
                raise DataError(f"registered_faces/{cfg.name} needs a sync judge to measure each track's "
                                f"AV offset: build it with `s2v build-dataset registered_faces/"
                                f"{cfg.name.removesuffix(sync_correct.SUFFIX)} --sync-correct`")
            self._corrector = sync_correct.SyncCorrector(self._sync_judge, min_frames=cfg.min_frames)
        clips, skipped = layouts.list_clips(root, cfg.layout, cfg.validation_percent)
        self._log = common.BuildLog(self.info.metadata)
        for rec in skipped:
            self._log.skip(rec)
        if not clips:
            raise DataError(f"no video in {root!r} fits the {cfg.layout!r} layout ({len(skipped)} other files)")
        by_split = {}
        for clip in clips:
            by_split.setdefault(clip.split, []).append(clip)
        if self._use_beam:
            from tfds_builders import beam_support

            self._report_dir = os.path.join(os.fspath(dl_manager.download_dir), "beam_reports", cfg.name)
            shutil.rmtree(self._report_dir, ignore_errors=True)
            return {split: beam_support.GenerateTracks(c, os.path.join(self._report_dir, split), cfg.min_frames)
                    for split, c in sorted(by_split.items())}
        # a synced config shares the plain config's registrations (the cache holds tracks as registered)
        self._cache_dir = os.path.join(os.fspath(dl_manager.download_dir), "registered_faces_cache",
                                       cfg.name.removesuffix(sync_correct.SUFFIX))
        gens = {split: self._generate_examples(c, split) for split, c in sorted(by_split.items())}
        return common.nonempty_generators(gens, self._log)

    def _generate_examples(self, clips, split):
        corrector = getattr(self, "_corrector", None)
        yield from common.generate(clips, split, self._log, min_frames=self.builder_config.min_frames,
                                   cache_dir=getattr(self, "_cache_dir", None), correct_fn=corrector)
        if corrector is not None:  # after each split: the metadata is written once all are done
            self.info.metadata["sync_correction"] = corrector.metadata()

    def _download_and_prepare(self, dl_manager, download_config=None):
        # A real corpus's split is over TFDS's 1 GB in-memory sort without TensorFlow
        # (LRS2-size corpora are 1.5 GB per 100 minutes): see common.sort_splits_in_memory.
        with common.sort_splits_in_memory(MEMORY_SORT_LIMIT):
            return super()._download_and_prepare(dl_manager, download_config=download_config)

    def _process_pipeline_result(self, pipeline_result):
        from tfds_builders import beam_support

        beam_support.read_reports(self._report_dir, self._log)
