"""Checkpoint-based inference: stills + speech -> talking-face video, re-dubbing, streaming.

| module | what |
|---|---|
| `generator.py` | `FrameGenerator`: a checkpoint with jitted, batched generation (identity encoded once) |
| `stills.py` | `register_stills`: face photos -> the registered crops the model takes |
| `generate.py` | `generate_video` (what `s2v generate` runs) and `still_frames` |
| `streaming.py` | `StreamingSession`: frames from audio chunks as they arrive |
| `redub.py` | `redub_video`: a video's lower face regenerated for new speech |

Speech loading and chunked MFCC windows are `s2v_jax.media.speech`'s;
pasting a face back into a frame is `s2v_jax.faces.compositing`'s.
"""

from s2v_jax.inference.generate import GenerateResult, generate_video, still_frames  # noqa: F401
from s2v_jax.inference.generator import FrameGenerator  # noqa: F401
from s2v_jax.inference.redub import RedubResult, redub_video  # noqa: F401
from s2v_jax.inference.stills import Stills, register_stills  # noqa: F401
from s2v_jax.inference.streaming import StreamingSession  # noqa: F401
