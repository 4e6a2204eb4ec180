"""Procedural talking-face corpus: train and test with no downloads.

- articulation: phoneme inventory, random utterances, coarticulated tracks
  (mouth openness/width, loudness, formants) on a 1 ms grid.
- speech: a source-filter synthesiser (glottal pulses -> formant resonators,
  band noise for fricatives and bursts) driven by those tracks.
- face: OpenCV-drawn faces (MediaPipe-detectable) with a parametric mouth.
- corpus: clips (`generate_clip`) and on-disk corpora (`generate_corpus`).
"""

from s2v_jax.synth.corpus import (
    GT_FIELDS,
    Speaker,
    SynthClip,
    clip_speech,
    generate_clip,
    generate_corpus,
    make_speaker,
    write_clip,
)

__all__ = ["GT_FIELDS", "Speaker", "SynthClip", "clip_speech", "generate_clip", "generate_corpus",
           "make_speaker", "write_clip"]
