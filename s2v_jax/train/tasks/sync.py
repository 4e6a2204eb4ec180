"""The sync expert's task: SyncNet's contrastive loss on in-sync against shifted pairs.

Samples come from `s2v_jax.data.sync_samples` (five lower-face frames, 0.2 s of
MFCC in sync, 0.2 s shifted by 3-15 frames from the same clip). Loss:
L = mean(d_pos^2 + max(margin - d_neg, 0)^2) / 2, d the Euclidean distance of
the video and audio embeddings. Validation reports the loss, the mean
distances and the pair accuracy (the fraction of windows whose in-sync
distance is below their shifted one); chance is 0.5 accuracy, so the task
has no baseline model to score beside it.
"""

import dataclasses

import jax.numpy as jnp

from s2v_jax.models.syncnet import build_syncnet, input_shapes
from s2v_jax.train.tasks.base import Task, apply_model


def contrastive_loss(d_pos, d_neg, margin: float):
    """SyncNet's contrastive loss: mean(d_pos^2 + max(margin - d_neg, 0)^2) / 2."""
    return 0.5 * jnp.mean(jnp.square(d_pos) + jnp.square(jnp.maximum(margin - d_neg, 0.0)))


def _distance(x, y):
    return jnp.sqrt(jnp.sum(jnp.square(x - y), axis=-1) + 1e-12)


@dataclasses.dataclass(frozen=True)
class SyncTask(Task):
    margin: float = 1.0
    name: str = dataclasses.field(default="sync", init=False)
    title = "the sync expert"  # how messages name it
    best_metric: str = dataclasses.field(default="loss", init=False)

    @classmethod
    def from_config(cls, config):
        return cls(margin=float(config.train.get("margin", 1.0)))

    def build_model(self, config, axis_name=None):
        return build_syncnet(config, axis_name=axis_name)

    def dummy_inputs(self, config):
        shapes = input_shapes(config)
        return jnp.zeros((1,) + shapes["video"], jnp.uint8), jnp.zeros((1,) + shapes["audio"], jnp.float32)

    def distances(self, state, params, batch, *, train: bool):
        """(d_pos [b], d_neg [b], new batch_stats); both audio inputs go through one BatchNorm pass."""
        audio = jnp.concatenate([batch["audio"], batch["audio_shifted"]]).astype(jnp.float32)
        (v, a), stats = apply_model(state, params, (batch["video"], audio), train=train)
        b = v.shape[0]
        return _distance(v, a[:b]), _distance(v, a[b:]), stats

    def loss(self, state, params, batch, *, key, axis_name):
        d_pos, d_neg, stats = self.distances(state, params, batch, train=True)
        metrics = {"d_pos": d_pos.mean(), "d_neg": d_neg.mean(),
                   "accuracy": jnp.mean((d_pos < d_neg).astype(jnp.float32))}
        return contrastive_loss(d_pos, d_neg, self.margin), (metrics, stats)

    def eval_sums(self, state, batch, *, key, axis_name):
        d_pos, d_neg, _ = self.distances(state, state.params, batch, train=False)
        per = 0.5 * (jnp.square(d_pos) + jnp.square(jnp.maximum(self.margin - d_neg, 0.0)))
        return {"loss": per.sum(), "d_pos": d_pos.sum(), "d_neg": d_neg.sum(),
                "accuracy": jnp.sum((d_pos < d_neg).astype(jnp.float32)),
                "count": jnp.asarray(d_pos.shape[0], jnp.float32)}

    def data_functions(self, config):
        # Deferred for start-up: grain and TFDS are needed to train, not to load a judge for scoring.
        from s2v_jax.data import sync_samples

        return sync_samples.create_train_loader, sync_samples.create_eval_batches

    def describe(self, val):
        return (f"sync val loss {val['loss']:.4f} accuracy {val['accuracy']:.3f} (d_pos {val['d_pos']:.3f}, "
                f"d_neg {val['d_neg']:.3f}; chance accuracy 0.5)")
