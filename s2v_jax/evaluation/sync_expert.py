"""A trained sync expert as a judge: jitted, batched per-frame embeddings of
whole clips and their SyncNet scores (AV offset, LSE-D, LSE-C)."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from s2v_jax.data.sync_inputs import audio_input, frame_indices, resize_crops, video_input
from s2v_jax.evaluation import metrics
from s2v_jax.models.syncnet import SyncNet, build_syncnet, input_shapes
from s2v_jax.train.checkpointing import load_checkpoint


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
        config, variables = load_checkpoint(path, tasks=("sync",))
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
        v, a = self.clip_embeddings(crops, mfcc_windows)
        dist = metrics.sync_distances(v, a, max_offset, edge)
        out = metrics.lse_scores(dist, max_offset)
        out["distances"] = [float(d) if np.isfinite(d) else None for d in dist]
        return out
