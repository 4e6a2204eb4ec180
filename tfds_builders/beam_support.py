"""Beam version of the track generator, for corpora too big for one process.

`registered_faces` returns `generate_transform(...)` from `_generate_examples`
when built with `use_beam=True`: TFDS then runs the whole build as one Beam
pipeline (any runner: DirectRunner here, Dataflow/Flink for real corpora).
Each video is one element; a side output carries its index rows and skipped
inputs to JSON-lines files that the builder reads back into `info.metadata`
once the pipeline has finished (`read_reports`).
"""

import glob
import json
import os
from typing import Any, Dict, List

import apache_beam as beam

from tfds_builders import common

REPORT = "report"


class _ProcessClip(beam.DoFn):
    """Registers one video; emits (key, example) pairs and a report row."""

    def __init__(self, min_frames: int):
        self._min_frames = min_frames

    def process(self, clip: common.Clip):
        result = common.process_clip(clip, min_frames=self._min_frames)
        beam.metrics.Metrics.counter("registered_faces", "videos").inc()
        beam.metrics.Metrics.counter("registered_faces", "tracks").inc(len(result.examples))
        beam.metrics.Metrics.counter("registered_faces", "skipped").inc(len(result.skipped))
        yield from result.examples
        yield beam.pvalue.TaggedOutput(REPORT, json.dumps(
            {"split": clip.split, "tracks": result.tracks, "skipped": result.skipped}))


class GenerateTracks(beam.PTransform):
    """PBegin -> PCollection of (key, example) for the clips of one split."""

    def __init__(self, clips: List[common.Clip], report_prefix: str, min_frames: int):
        super().__init__()
        self._clips = clips
        self._report_prefix = report_prefix
        self._min_frames = min_frames

    def expand(self, pbegin):
        outs = (pbegin
                | "Videos" >> beam.Create(self._clips)
                | "Reshuffle" >> beam.Reshuffle()  # spread the slow registration over workers
                | "Register" >> beam.ParDo(_ProcessClip(self._min_frames)).with_outputs(REPORT, main="examples"))
        _ = outs[REPORT] | "WriteReport" >> beam.io.WriteToText(self._report_prefix, file_name_suffix=".jsonl")
        return outs.examples


def read_reports(report_dir: str, build_log: common.BuildLog) -> None:
    """Feeds the report rows the pipeline wrote into the build log."""
    for path in sorted(glob.glob(os.path.join(report_dir, "*.jsonl"))):
        with open(path) as f:
            for line in f:
                row: Dict[str, Any] = json.loads(line)
                build_log.add(row["split"], common.ClipResult([], row["tracks"], row["skipped"]))
    # Workers finish in any order: sort so that the report is the same on every run.
    build_log.metadata["skipped"].sort(key=lambda r: (r.get("source", ""), r.get("track_index", -1)))
