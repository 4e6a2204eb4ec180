"""TFDS builder `synthetic_talking_faces`: the procedural corpus of
`s2v_jax.synth`, registered through the same pipeline as real video.

    builder = tfds.builder("synthetic_talking_faces/small", data_dir=D, file_format="array_record")
    builder.download_and_prepare()   # renders the corpus first if needed

The corpus is rendered into `<data_dir>/downloads/synthetic/<config>-seed<seed>`
(kept, so a rebuild skips rendering), then every clip goes through
`s2v_jax.faces.preprocess.preprocess_video` like a real one. Examples have the
`registered_faces` features plus the synthetic ground truth of each track
frame (`gt_mouth_open`, `gt_mouth_width`, `gt_phoneme`: the values of video
frame `start_frame + i` for track frame i). Split by speaker: the last
`max(1, round(10%))` speakers in id order form the validation split.
"""

import dataclasses
import json
import os
from typing import List, Tuple

import numpy as np
import tensorflow_datasets as tfds

from tfds_builders import common

GT_FIELDS = ("mouth_open", "mouth_width", "phoneme")  # per-frame arrays carried into examples


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    num_clips: int = 6                     # clips rendered
    num_speakers: int = 3                  # identities (clip j belongs to speaker j % num_speakers)
    clip_seconds: Tuple[float, float] = (2.0, 3.0)  # clip length range
    seed: int = 0                          # corpus seed (everything is a function of it)
    validation_fraction: float = 0.1       # share of speakers in the validation split (at least one)
    min_frames: int = 30                   # tracks shorter than this are skipped as too short


class SyntheticTalkingFaces(common.QuietPrepare, tfds.core.GeneratorBasedBuilder):
    """Synthetic talking faces with exact mouth ground truth, by corpus size."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "First release.",
                     "1.1.0": "small: 48 clips of 24 speakers, 4 of them held out (was 40 clips, 8 speakers, 1)."}
    BUILDER_CONFIGS = [
        SyntheticConfig(name="tiny", num_clips=6, num_speakers=3, clip_seconds=(1.6, 2.4),
                        description="6 clips, 3 speakers: for tests (seconds to build)"),
        SyntheticConfig(name="small", num_clips=48, num_speakers=24, clip_seconds=(2.0, 4.0),
                        validation_fraction=0.17,
                        description="48 clips, 24 speakers (4 held out): the tiny training config "
                                    "(1-2 min on 2 cores)"),
        SyntheticConfig(name="medium", num_clips=400, num_speakers=40, clip_seconds=(2.0, 6.0),
                        description="400 clips, 40 speakers (~15 min on 2 cores)"),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        extra = {
            "gt_mouth_open": tfds.features.Tensor(shape=(None,), dtype=np.float32,
                                                  doc="[T] mouth openness of each track frame, [0, 1]"),
            "gt_mouth_width": tfds.features.Tensor(shape=(None,), dtype=np.float32,
                                                   doc="[T] mouth width of each track frame, [0, 1]"),
            "gt_phoneme": tfds.features.Tensor(shape=(None,), dtype=np.int32,
                                               doc="[T] phoneme index (s2v_jax.synth.articulation.PHONEME_NAMES)"),
        }
        return self.dataset_info_from_configs(
            features=common.features(extra),
            disable_shuffling=True,  # records sorted by key (see tfds_builders/common.py)
            metadata=tfds.core.MetadataDict(),
        )

    def _corpus_dir(self, dl_manager) -> str:
        cfg = self.builder_config
        return os.path.join(os.fspath(dl_manager.download_dir), "synthetic", f"{cfg.name}-seed{cfg.seed}")

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        out = self._corpus_dir(dl_manager)
        manifest_path = os.path.join(out, "manifest.json")
        if os.path.isfile(manifest_path):
            manifest = json.load(open(manifest_path))
        else:
            manifest = _generate_corpus(out, cfg)
        self._log = common.BuildLog(self.info.metadata)
        clips = split_by_speaker(out, manifest, cfg.validation_fraction)
        gens = {}
        for split in ("train", "validation"):
            chosen = [c for c in clips if c.split == split]
            if chosen:
                gens[split] = self._generate_examples(chosen, split)
        return common.nonempty_generators(gens, self._log)

    def _generate_examples(self, clips, split):
        yield from common.generate(clips, split, self._log, min_frames=self.builder_config.min_frames,
                                   extra_fn=ground_truth)


def _generate_corpus(out: str, cfg: SyntheticConfig) -> dict:
    try:
        from s2v_jax.synth import generate_corpus
    except ImportError:
        from s2v_jax.synth.corpus import generate_corpus
    common.log.info("rendering synthetic corpus %s (%d clips) into %s", cfg.name, cfg.num_clips, out)
    return generate_corpus(out, cfg.num_clips, seed=cfg.seed, num_speakers=cfg.num_speakers,
                           clip_seconds=tuple(cfg.clip_seconds))


def split_by_speaker(root: str, manifest: dict, validation_fraction: float) -> List[common.Clip]:
    """Clips of the manifest, whole speakers per split (last ones -> validation)."""
    speakers = sorted({c["speaker"] for c in manifest["clips"]})
    num_val = max(1, int(round(validation_fraction * len(speakers)))) if len(speakers) > 1 else 0
    val = set(speakers[len(speakers) - num_val:])
    return [common.Clip(path=os.path.join(root, c["video"]), source=c["video"], group_id=c["speaker"],
                        split="validation" if c["speaker"] in val else "train")
            for c in sorted(manifest["clips"], key=lambda c: c["video"])]


def ground_truth(clip: common.Clip, start: int, length: int) -> dict:
    """Per-frame ground truth of a track: npz value of video frame start + i."""
    with np.load(os.path.splitext(clip.path)[0] + ".npz") as gt:
        out = {}
        for name in GT_FIELDS:
            values = gt[name]
            if len(values) < start + length:
                raise ValueError(f"{clip.source}: ground truth {name} has {len(values)} frames, "
                                 f"the track needs frames {start}..{start + length}")
            out[f"gt_{name}"] = values[start:start + length].astype(np.int32 if name == "phoneme" else np.float32)
    return out
