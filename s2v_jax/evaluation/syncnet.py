"""The sync expert: a SyncNet-style two-stream network (Chung & Zisserman,
"Out of time", 2016) in Flax, and its per-frame embeddings of a clip.

Inputs for video frame k (25 fps), both covering 0.2 s centred on k / 25 s:
- video: frames k-2..k+2 of the registered 112x112 crop, lower face only
  (rows `lower_face_top`..111: nose tip to below the chin), grey (or RGB),
  stacked channel-wise: uint8 `[B, 112 - top, 112, 5]` (`[.., 15]` RGB);
- audio: the middle 20 of the 35 MFCC steps of frame k's window (columns
  7..26, steps centre-10..centre+9 of audio.mfcc_windows): `[B, 12, 20, 1]`.
Frames before the track's first or after its last are the edge frame repeated.

Each stream is a VGG-M-like CNN (conv -> BatchNorm -> ReLU) ending in a
linear `embed_dim` projection; pairs are compared by Euclidean distance of
the embeddings (L2-normalised with `model.normalize`, so distances lie in
[0, 2]). Layer plan at width 1 (audio as SyncNet's):
    audio 12x20x1: conv1 3x3 64, conv2 3x3 192, pool 3x3 s(1,2) -> 11x9,
      conv3 3x3 384, conv4/5 3x3 256, pool 3x3 s2 -> 5x4, fc6 5x4 512, fc7 linear;
    video 56x112x5: conv1 5x5 96 s2 -> 28x56, pool 3x3 s2 -> 13x27,
      conv2 5x5 256 s2 -> 7x14, pool 3x3 s2 -> 3x6, conv3-5 3x3 512,
      fc6 (whole map) 512, fc7 linear.
"""

import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from s2v_jax.errors import ConfigError
from s2v_jax.models import compute_dtype
from s2v_jax.models.layers import ConvBNReLU, max_pool, scaled

CROP = 112
WINDOW_STEPS = 35
AUDIO_STEPS = 20  # 0.2 s of MFCC


class _Stream(nn.Module):
    """Shared settings of the two streams."""

    width: float = 1.0
    embed_dim: int = 256
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    axis_name: Optional[str] = None

    def cbr(self, features, kernel, name, strides=(1, 1), padding="SAME"):
        return ConvBNReLU(scaled(features, self.width), kernel, strides, padding=padding, dtype=self.dtype,
                          bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, axis_name=self.axis_name,
                          name=name)

    def head(self, x, train):
        x = self.cbr(512, x.shape[1:3], "fc6", padding="VALID")(x, train)  # the whole remaining map
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.embed_dim, dtype=self.dtype, param_dtype=jnp.float32, name="fc7")(x)


class AudioStream(_Stream):
    """MFCC `[B, 12, 20, 1]` -> embedding `[B, embed_dim]`."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype)
        x = self.cbr(64, (3, 3), "conv1")(x, train)
        x = self.cbr(192, (3, 3), "conv2")(x, train)
        x = max_pool(x, 3, (1, 2), ((1, 0), (0, 0)))
        x = self.cbr(384, (3, 3), "conv3")(x, train)
        x = self.cbr(256, (3, 3), "conv4")(x, train)
        x = self.cbr(256, (3, 3), "conv5")(x, train)
        x = max_pool(x, 3, (2, 2))
        return self.head(x, train)


class VideoStream(_Stream):
    """Stacked lower-face frames uint8 `[B, H, W, 5c]` -> embedding `[B, embed_dim]`."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype) / 255.0
        x = self.cbr(96, (5, 5), "conv1", strides=(2, 2))(x, train)
        x = max_pool(x, 3, (2, 2))
        x = self.cbr(256, (5, 5), "conv2", strides=(2, 2))(x, train)
        x = max_pool(x, 3, (2, 2))
        x = self.cbr(512, (3, 3), "conv3")(x, train)
        x = self.cbr(512, (3, 3), "conv4")(x, train)
        x = self.cbr(512, (3, 3), "conv5")(x, train)
        return self.head(x, train)


class SyncNet(nn.Module):
    """Two streams; `__call__(video, audio)` -> (video_emb, audio_emb), each `[B, embed_dim]` float32."""

    width: float = 1.0
    embed_dim: int = 256
    normalize: bool = True
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    axis_name: Optional[str] = None

    def setup(self):
        kw = dict(width=self.width, embed_dim=self.embed_dim, dtype=self.dtype, bn_momentum=self.bn_momentum,
                  bn_epsilon=self.bn_epsilon, axis_name=self.axis_name)
        self.video_stream = VideoStream(**kw)
        self.audio_stream = AudioStream(**kw)

    def _finish(self, e):
        e = e.astype(jnp.float32)
        if self.normalize:
            e = e / jnp.sqrt(jnp.sum(e * e, axis=-1, keepdims=True) + 1e-12)
        return e

    def embed_video(self, video, train: bool = False):
        return self._finish(self.video_stream(video, train))

    def embed_audio(self, audio, train: bool = False):
        return self._finish(self.audio_stream(audio, train))

    def __call__(self, video, audio, train: bool = False):
        return self.embed_video(video, train), self.embed_audio(audio, train)


def build_syncnet(config: ml_collections.ConfigDict, axis_name: Optional[str] = None) -> SyncNet:
    """The sync expert a `configs/syncnet.py`-style config describes."""
    m = config.model
    if m.name != "syncnet":
        raise ConfigError(f"model.name must be 'syncnet' for the sync expert, not {m.name!r}")
    if int(m.num_frames) != 5 or int(m.audio_steps) != AUDIO_STEPS:
        raise ConfigError("the sync expert takes 5 frames and 20 MFCC steps (0.2 s); keep model.num_frames=5 "
                          "and model.audio_steps=20")
    if not 0 <= int(m.lower_face_top) < CROP - 16:
        raise ConfigError(f"model.lower_face_top must be in [0, {CROP - 16}), not {m.lower_face_top}")
    return SyncNet(width=float(m.width), embed_dim=int(m.embed_dim), normalize=bool(m.normalize),
                   dtype=compute_dtype(m.get("dtype", "float32")), bn_momentum=float(m.bn_momentum),
                   bn_epsilon=float(m.bn_epsilon), axis_name=axis_name)


def input_shapes(config: ml_collections.ConfigDict):
    """Per-example input shapes: {'video': (H, 112, 5c), 'audio': (12, 20, 1)}."""
    m = config.model
    channels = int(m.num_frames) * (1 if m.grayscale else 3)
    return {"video": (CROP - int(m.lower_face_top), CROP, channels), "audio": (12, AUDIO_STEPS, 1)}


# ---------------------------------------------------------------- inputs of one frame / one clip

def audio_input(window: np.ndarray) -> np.ndarray:
    """The expert's audio of one frame or many: MFCC windows [..., 12, 35] -> [..., 12, 20, 1]."""
    w = np.asarray(window, np.float32)
    lo = WINDOW_STEPS // 2 - AUDIO_STEPS // 2  # column 7: step centre-10
    return w[..., lo:lo + AUDIO_STEPS][..., None]


def frame_indices(centre, num_frames: int, count: int = 5) -> np.ndarray:
    """Track frames centre-2..centre+2 (for count 5), clipped to [0, num_frames - 1]: [..., count]."""
    half = count // 2
    idx = np.asarray(centre)[..., None] + np.arange(-half, count - half)
    return np.clip(idx, 0, num_frames - 1)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [..., 3] -> uint8 luma [...] (ITU-R 601 weights, as OpenCV)."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


def video_input(frames: np.ndarray, lower_face_top: int, grayscale: bool) -> np.ndarray:
    """Five 112x112 RGB crops uint8 [5, 112, 112, 3] -> the stacked lower face [112 - top, 112, 5 (15)]."""
    lower = np.asarray(frames)[:, lower_face_top:]
    if grayscale:
        return np.ascontiguousarray(to_grey(lower).transpose(1, 2, 0))
    return np.ascontiguousarray(lower.transpose(1, 2, 0, 3).reshape(lower.shape[1], lower.shape[2], -1))


def resize_crops(frames: np.ndarray, size: int = CROP) -> np.ndarray:
    """uint8 [T, S, S, 3] -> [T, size, size, 3] (the v201 decoder's 109x109 frames cover the same crop)."""
    frames = np.asarray(frames)
    if frames.shape[1:3] == (size, size):
        return frames
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames])


class SyncExpert:
    """A trained expert with jitted, batched per-frame embeddings of whole clips.

        expert = SyncExpert.from_checkpoint("workdirs/syncnet")
        v, a = expert.clip_embeddings(crops, mfcc_windows)   # [T, D] each
    """

    def __init__(self, config: ml_collections.ConfigDict, variables, batch_size: int = 64):
        self.config = config
        self.model = build_syncnet(config)
        self.variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
        self.batch_size = int(batch_size)
        self.lower_face_top = int(config.model.lower_face_top)
        self.grayscale = bool(config.model.grayscale)
        self._video = jax.jit(functools.partial(self.model.apply, method=SyncNet.embed_video))
        self._audio = jax.jit(functools.partial(self.model.apply, method=SyncNet.embed_audio))

    @classmethod
    def from_checkpoint(cls, path, batch_size: int = 64) -> "SyncExpert":
        """Loads a `s2v train-sync` work directory (best, else latest checkpoint) or one step directory."""
        from s2v_jax.evaluation.sync_train import load_checkpoint

        config, variables = load_checkpoint(path)
        return cls(config, variables, batch_size)

    def _batched(self, fn, x: np.ndarray) -> np.ndarray:
        out, bs = [], self.batch_size
        for s in range(0, len(x), bs):
            chunk = x[s:s + bs]
            m = len(chunk)
            if m < bs:  # one compiled batch size; padding rows are dropped
                chunk = np.concatenate([chunk, np.zeros((bs - m,) + chunk.shape[1:], chunk.dtype)])
            out.append(np.asarray(fn(self.variables, jnp.asarray(chunk)))[:m])
        return np.concatenate(out) if out else np.zeros((0, self.model.embed_dim), np.float32)

    def clip_embeddings(self, crops: np.ndarray, mfcc_windows: np.ndarray):
        """Per-frame embeddings of a clip: crops uint8 [T, S, S, 3], windows [T, 12, 35] -> ([T, D], [T, D])."""
        crops = resize_crops(crops)
        t = len(crops)
        if len(mfcc_windows) != t:
            raise ValueError(f"clip_embeddings needs one MFCC window per frame ({t} frames, {len(mfcc_windows)} windows)")
        idx = frame_indices(np.arange(t), t)
        video = np.stack([video_input(crops[i], self.lower_face_top, self.grayscale) for i in idx]) if t else \
            np.zeros((0,) + input_shapes(self.config)["video"], np.uint8)
        return self._batched(self._video, video), self._batched(self._audio, audio_input(mfcc_windows))

    def sync_scores(self, crops: np.ndarray, mfcc_windows: np.ndarray, max_offset: int = 15,
                    edge: str = "valid"):
        """{'lse_d', 'lse_c', 'av_offset', 'distances'} of a clip (see evaluation.metrics)."""
        from s2v_jax.evaluation import metrics

        v, a = self.clip_embeddings(crops, mfcc_windows)
        dist = metrics.sync_distances(v, a, max_offset, edge)
        out = metrics.lse_scores(dist, max_offset)
        out["distances"] = [float(d) if np.isfinite(d) else None for d in dist]
        return out
