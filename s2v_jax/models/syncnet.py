"""The sync expert: a SyncNet-style two-stream network (Chung & Zisserman,
"Out of time", 2016) in Flax, and its per-frame embeddings of a clip.

Inputs (`s2v_jax.data.sync_samples`): five stacked lower-face frames uint8
`[B, 112 - top, 112, 5]` (`[.., 15]` RGB) and 0.2 s of MFCC `[B, 12, 20, 1]`.

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

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from s2v_jax.data.sync_inputs import AUDIO_STEPS, CROP
from s2v_jax.errors import ConfigError
from s2v_jax.models.layers import ConvBNReLU, compute_dtype, max_pool, scaled


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


def embedding_distance(x, y):
    """Euclidean distance of embeddings along the last axis (the judge's distance; finite gradient at 0)."""
    return jnp.sqrt(jnp.sum(jnp.square(x - y), axis=-1) + 1e-12)


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
                   dtype=compute_dtype(m.dtype), bn_momentum=float(m.bn_momentum),
                   bn_epsilon=float(m.bn_epsilon), axis_name=axis_name)


def input_shapes(config: ml_collections.ConfigDict):
    """Per-example input shapes: {'video': (H, 112, 5c), 'audio': (12, 20, 1)}."""
    m = config.model
    channels = int(m.num_frames) * (1 if m.grayscale else 3)
    return {"video": (CROP - int(m.lower_face_top), CROP, channels), "audio": (12, AUDIO_STEPS, 1)}
