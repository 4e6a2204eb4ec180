"""The sync expert's task: contrastive training on in-sync against shifted audio.

Samples come from `s2v_jax.data.sync_samples` (five lower-face frames, 0.2 s of
MFCC in sync, 0.2 s shifted by `min_offset`-`max_offset` frames from the same
clip). d is the Euclidean distance of the video and audio embeddings.

`train.loss`:
- 'contrastive' (SyncNet, Chung & Zisserman 2016): one shifted pair per
  window, L = mean(d_pos^2 + max(margin - d_neg, 0)^2) / 2.
- 'nway' (Chung et al. 2019, "Perfect match"): K shifted audios per window
  (`data.num_negatives`), cross-entropy of softmax(-d / temperature) over the
  in-sync and the K shifted audios, with the in-sync one as the answer. This
  is the offset search the judge runs at scoring time, trained directly.

Validation reports the loss, the mean distances and the accuracy (the
fraction of windows whose in-sync distance is below every shifted one;
chance 1 / (K + 1)), so the task has no baseline model to score beside it.
"""

import dataclasses

import jax
import jax.numpy as jnp

from s2v_jax.errors import ConfigError
from s2v_jax.models.syncnet import build_syncnet, input_shapes
from s2v_jax.train.tasks.base import Task, apply_model


def _distance(x, y):
    return jnp.sqrt(jnp.sum(jnp.square(x - y), axis=-1) + 1e-12)


@dataclasses.dataclass(frozen=True)
class SyncTask(Task):
    margin: float = 1.0
    loss_type: str = "contrastive"  # 'contrastive' or 'nway' (module docstring)
    temperature: float = 0.1
    name: str = dataclasses.field(default="sync", init=False)
    title = "the sync expert"  # how messages name it
    best_metric: str = dataclasses.field(default="loss", init=False)

    @classmethod
    def from_config(cls, config):
        loss_type = str(config.train.get("loss", "contrastive"))
        if loss_type not in ("contrastive", "nway"):
            raise ConfigError(f"train.loss must be 'contrastive' or 'nway' for the sync expert, not {loss_type!r}")
        return cls(margin=float(config.train.get("margin", 1.0)), loss_type=loss_type,
                   temperature=float(config.train.get("temperature", 0.1)))

    def build_model(self, config, axis_name=None):
        return build_syncnet(config, axis_name=axis_name)

    def dummy_inputs(self, config):
        shapes = input_shapes(config)
        return jnp.zeros((1,) + shapes["video"], jnp.uint8), jnp.zeros((1,) + shapes["audio"], jnp.float32)

    def distances(self, state, params, batch, *, train: bool):
        """(d_pos [b], d_neg [b, K], new batch_stats); every audio input goes through one BatchNorm pass.
        A batch with one shifted audio per window ('audio_shifted' [b, 12, 20, 1]) has K = 1."""
        pos, neg = batch["audio"], batch["audio_shifted"]
        b = pos.shape[0]
        neg = neg.reshape((b, -1) + pos.shape[1:])  # [b, K, 12, 20, 1]
        k = neg.shape[1]
        audio = jnp.concatenate([pos, neg.reshape((b * k,) + pos.shape[1:])]).astype(jnp.float32)
        (v, a), stats = apply_model(state, params, (batch["video"], audio), train=train)
        d_neg = _distance(v[:, None], a[b:].reshape((b, k, -1)))
        return _distance(v, a[:b]), d_neg, stats

    def per_window_loss(self, d_pos, d_neg):
        """[b] loss of each window (d_neg [b, K])."""
        if self.loss_type == "nway":
            logits = -jnp.concatenate([d_pos[:, None], d_neg], axis=1) / self.temperature
            return -jax.nn.log_softmax(logits, axis=1)[:, 0]
        return 0.5 * (jnp.square(d_pos) + jnp.mean(jnp.square(jnp.maximum(self.margin - d_neg, 0.0)), axis=1))

    def loss(self, state, params, batch, *, key, axis_name):
        d_pos, d_neg, stats = self.distances(state, params, batch, train=True)
        metrics = {"d_pos": d_pos.mean(), "d_neg": d_neg.mean(),
                   "accuracy": jnp.mean(jnp.all(d_pos[:, None] < d_neg, axis=1).astype(jnp.float32))}
        return self.per_window_loss(d_pos, d_neg).mean(), (metrics, stats)

    def eval_sums(self, state, batch, *, key, axis_name):
        d_pos, d_neg, _ = self.distances(state, state.params, batch, train=False)
        return {"loss": self.per_window_loss(d_pos, d_neg).sum(), "d_pos": d_pos.sum(),
                "d_neg": d_neg.mean(axis=1).sum(),
                "accuracy": jnp.sum(jnp.all(d_pos[:, None] < d_neg, axis=1).astype(jnp.float32)),
                "count": jnp.asarray(d_pos.shape[0], jnp.float32)}

    def data_functions(self, config):
        # Deferred for start-up: grain and TFDS are needed to train, not to load a judge for scoring.
        from s2v_jax.data import sync_samples

        return sync_samples.create_train_loader, sync_samples.create_eval_batches

    def describe(self, val):
        return (f"sync val loss {val['loss']:.4f} accuracy {val['accuracy']:.3f} (d_pos {val['d_pos']:.3f}, "
                f"d_neg {val['d_neg']:.3f})")
