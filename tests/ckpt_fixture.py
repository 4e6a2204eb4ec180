"""Tiny checkpoints trained in the test session, and synthetic media, shared by
the inference tests (test_inference, test_generate_cli, test_redub).

`tiny_checkpoints(tmp_path_factory)` trains, once per session and in a
subprocess (so the fast-compile XLA flags used for training do not leak into
the inference tests), three work directories for two steps each on fake data:

- `gen`: configs/tiny.py at width 1/16 (1 still, transposed decoder, 112x112);
- `v201`: configs/v201.py at width 1/16 (5 stills, bilinear decoder, 109x109);
- `deblur`: configs/deblur.py with 8 features.

Speed-only models: their faces are noise, which is all these tests need.
`generator(paths, name, ...)` caches loaded FrameGenerators (each compiles
once per batch size); `synthetic_media(tmp_path_factory)` writes a procedural
face photo, speech, a talking-face video and broken inputs once per session.
"""

import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
COMMON = ["train.batch_size=2", "train.num_steps=1", "train.log_every=1", "train.eval_every=1",
          "train.checkpoint_every=1", "train.eval_batches=1", "train.progress_bar=False",
          "train.learning_rate=0.01", "data.num_workers=0"]
RUNS = {
    "gen": ("configs/tiny.py", ["model.width=0.0625"]),
    "v201": ("configs/v201.py", ["model.width=0.0625", "train.eval_every=0"]),  # no eval: faster
    "deblur": ("configs/deblur.py", ["model.features=8", "train.eval_every=0"]),
}

def run_script(script: str, out_dir, result_file: str = "report.json", xla_flags: str = FAST_XLA_FLAGS,
               timeout: int = 900):
    """Runs a test module as a script (`python script out_dir`) in a fresh process, so its
    XLA flags (fast compiles, simulated devices) stay out of this one; returns its JSON result."""
    env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, os.path.abspath(script), str(out_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{os.path.basename(script)} failed:\n{proc.stderr[-6000:]}"
    with open(os.path.join(str(out_dir), result_file)) as f:
        return json.load(f)


_CACHE = {}


def _fake_batch(config, index, batch_size):
    rng = np.random.default_rng(index)
    k = config.model.get("num_identity_images", 1)
    identity = rng.integers(0, 256, (batch_size, 112, 112, 3 * k), dtype=np.uint8)
    return {"mfcc": rng.normal(size=(batch_size, 12, 35, 1)).astype(np.float32), "identity": identity,
            "target": identity[..., :3].copy()}


class _Loader:
    def __init__(self, config, **_):
        self.config, self.index = config, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.index += 1
        return _fake_batch(self.config, self.index, self.config.train.batch_size)

    def get_state(self):
        return {"i": self.index}

    def set_state(self, state):
        self.index = int(state["i"])


def _eval_batches(config, *, num_batches, **_):
    return [_fake_batch(config, 10_000 + i, config.train.batch_size) for i in range(num_batches)]


def _train_all(out_dir):
    from s2v_jax.config_utils import load_config
    from s2v_jax.train import train_and_evaluate

    paths = {}
    for name, (cfg, extra) in RUNS.items():
        config = load_config(os.path.join(REPO, cfg), COMMON + extra)
        workdir = os.path.join(out_dir, name)
        train_and_evaluate(config, workdir, train_loader_fn=_Loader, eval_batches_fn=_eval_batches)
        paths[name] = workdir
    return paths


def tiny_checkpoints(tmp_path_factory):
    """{'gen', 'v201', 'deblur'} -> work directory; trained once per session."""
    if "paths" not in _CACHE:
        out = tmp_path_factory.mktemp("tiny_ckpts")
        _CACHE["paths"] = run_script(__file__, out, "paths.json")
    return _CACHE["paths"]


def generator(paths, name="gen", batch_size=16, deblur=False):
    """A FrameGenerator of a tiny checkpoint, loaded once per (name, batch size, deblur)."""
    from s2v_jax.inference.generator import FrameGenerator

    key = ("gen", name, batch_size, deblur)
    if key not in _CACHE:
        _CACHE[key] = FrameGenerator.from_checkpoint(paths[name], paths["deblur"] if deblur else None,
                                                     batch_size=batch_size)
    return _CACHE[key]


def cache_loading(monkeypatch):
    """Make FrameGenerator.from_checkpoint return one cached generator per
    (checkpoint, deblur, batch size) for the rest of a test, so CLI tests about
    inputs do not reload and recompile the model on every call."""
    from s2v_jax.inference.generator import FrameGenerator

    original = FrameGenerator.from_checkpoint.__func__

    def cached(cls, path, deblur_checkpoint=None, batch_size=64, dtype=None):
        key = ("cli", str(path), str(deblur_checkpoint), batch_size, dtype)
        if key not in _CACHE:
            _CACHE[key] = original(cls, path, deblur_checkpoint, batch_size, dtype)
        return _CACHE[key]

    monkeypatch.setattr(FrameGenerator, "from_checkpoint", classmethod(cached))


def synthetic_media(tmp_path_factory):
    """Paths of procedural test media (made once per session):

    photo.png (one drawn face, 192 px), speech.wav (1.23 s: 31 frames, not a
    whole number of frames), long_speech.wav (2.5 s), silent.wav, empty.wav,
    noface.png, talk.mp4 (30 frames of a talking face, then 8 black frames,
    with sound), noface.mp4 (grey frames), truncated.mp4 (talk.mp4 cut short).
    """
    if "media" in _CACHE:
        return _CACHE["media"]
    import cv2
    import soundfile

    from s2v_jax.media.video import write_video
    from s2v_jax.synth import generate_clip

    out = tmp_path_factory.mktemp("media")
    clip = generate_clip(7, num_frames=30, size=192, motion=0.5)
    long_clip = generate_clip(8, num_frames=63, size=64)
    paths = {k: out / v for k, v in dict(
        photo="photo.png", speech="speech.wav", long_speech="long_speech.wav", silent="silent.wav",
        empty="empty.wav", noface="noface.png", talk="talk.mp4", noface_video="noface.mp4",
        truncated="truncated.mp4").items()}
    cv2.imwrite(str(paths["photo"]), cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2BGR))
    soundfile.write(paths["speech"], np.resize(clip.audio, int(1.23 * 16000)), 16000, subtype="PCM_16")
    soundfile.write(paths["long_speech"], long_clip.audio[:40000], 16000, subtype="PCM_16")
    soundfile.write(paths["silent"], np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    paths["empty"].write_bytes(b"")
    cv2.imwrite(str(paths["noface"]), np.full((160, 200, 3), 120, np.uint8))
    frames = np.concatenate([clip.frames, np.zeros((8,) + clip.frames.shape[1:], np.uint8)])
    write_video(paths["talk"], frames, audio=np.resize(clip.audio, 38 * 640), crf=12)
    write_video(paths["noface_video"], np.full((20, 96, 96, 3), 128, np.uint8), audio=clip.audio[:20 * 640])
    data = paths["talk"].read_bytes()
    paths["truncated"].write_bytes(data[:len(data) // 3])
    _CACHE["media"] = {k: str(v) for k, v in paths.items()}
    return _CACHE["media"]


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    result = _train_all(sys.argv[1])
    with open(os.path.join(sys.argv[1], "paths.json"), "w") as f:
        json.dump(result, f)
