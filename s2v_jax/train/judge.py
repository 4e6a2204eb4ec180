"""The lip-sync judges: one loader for both roles, and the frozen judge inside a generator's loss.

Two judges ship in the package, trained apart (model cards in s2v_jax/assets):
- the training judge (`assets.SYNC_LOSS`, configs/syncnet_loss.py): the generator's
  sync loss (`train.sync_expert` '' = this one);
- the evaluation judge (`assets.SYNC_EXPERT`, configs/syncnet_real.py): LSE-D / LSE-C
  in `s2v evaluate`, `s2v sync` and the benchmarks. No generator trains against it:
  a measure a model was optimised against stops measuring.
`load_judge` reads either (an exported model, the format the package ships and
`s2v export` writes) and checks what it read: a sync expert whose weights fit the
network its config describes. `SyncExpert.from_checkpoint` (evaluation) takes
work directories too, through `checkpointing.load_checkpoint`, which makes the
same check; this module sits below checkpointing (which imports the tasks).
"""

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from s2v_jax import assets
from s2v_jax.data.sync_inputs import LUMA
from s2v_jax.errors import ConfigError
from s2v_jax.models.syncnet import SyncNet, build_syncnet, embedding_distance, input_shapes
from s2v_jax.train import export
from s2v_jax.train.tasks.image import gaussian_blur, resize_to


def load_judge(path, option: str = "--sync-expert"):
    """(config, variables {'params', 'batch_stats'} as float32 numpy) of the exported sync expert at `path`,
    checked: a sync expert (config.task 'sync') whose weights have the shapes of the network its config
    describes. A ConfigError naming `option` (the setting that gave the path) otherwise."""
    path = os.fspath(path)
    if not export.is_exported(path):
        raise ConfigError(f"{option} {path} is not an exported sync expert; export a trained one first "
                          "(s2v export --checkpoint W --out DIR), or leave it out for the shipped judge")
    config, variables = export.load_exported(path)
    if config.task != "sync":
        raise ConfigError(f"{option} {path} holds a {config.get('task')!r} model, not a sync expert")
    variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
    shapes = input_shapes(config)
    want = jax.eval_shape(build_syncnet(config).init, jax.random.PRNGKey(0),
                          jnp.zeros((1,) + shapes["video"], jnp.uint8), jnp.zeros((1,) + shapes["audio"]))
    want = jax.tree.map(lambda x: tuple(x.shape), {"params": want["params"],
                                                   "batch_stats": want.get("batch_stats", {})})
    if jax.tree.map(np.shape, variables) != want:
        raise ConfigError(f"{option} {path}: its weights do not fit the sync expert its config.json describes; "
                          "export it again with this version (s2v export)")
    return config, variables


def to_judge_video(frames, top: int, grayscale: bool = True):
    """Generated/real frames float [B, 5, S, S, 3] in [0, 1] -> the judge's lower face on its uint8 scale
    (0..255), as sync_inputs.video_input stacks it: grey [B, S-top, S, 5] (LUMA's luma as
    sync_inputs.to_grey, without rounding) or RGB [B, S-top, S, 15] (frame-major, channels within)."""
    if grayscale:
        grey = frames[..., 0] * LUMA[0] + frames[..., 1] * LUMA[1] + frames[..., 2] * LUMA[2]
        return jnp.transpose(grey[:, :, top:, :], (0, 2, 3, 1)) * 255.0
    lower = jnp.transpose(frames[:, :, top:], (0, 2, 3, 1, 4))  # [B, S-top, S, 5, 3]
    return lower.reshape(lower.shape[:3] + (-1,)) * 255.0


@dataclasses.dataclass(frozen=True)
class Judge:
    """A frozen sync expert inside the generator's loss: its network and float32 variables
    (constants of the jitted step: no gradient reaches them)."""

    model: Any
    variables: Any
    lower_face_top: int
    grayscale: bool = True

    @classmethod
    @functools.lru_cache(maxsize=4)
    def load(cls, path: str = ""):
        """The exported judge at `path` ('' = the training judge shipped in the package, never the
        evaluation one), loaded once per process."""
        config, variables = load_judge(path or assets.SYNC_LOSS, "train.sync_expert")
        if int(config.model.num_frames) != 5:
            raise ConfigError("the generator's sync loss needs a 5-frame sync expert (configs/syncnet_real.py)")
        # numpy, not jnp: loaded on first use, maybe while a step is traced, where jnp values would be tracers
        variables = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), variables)
        return cls(build_syncnet(config), variables, int(config.model.lower_face_top), bool(config.model.grayscale))

    def distances(self, frames, audio, shifted, blur_sigma: float = 0.0):
        """frames [B, 5, S, S, 3] float, audio [B, 12, 20, 1], shifted [B, K, 12, 20, 1]
        -> (d_sync [B], d_shifted [B, K]): Euclidean distances of the judge's embeddings.
        blur_sigma > 0: the judge sees the frames Gaussian-blurred (pixels), so that a generator
        trained against it gains nothing from pixel-sized patterns, only from the mouth's shape."""
        frames = resize_to(frames.reshape((-1,) + frames.shape[2:]), (112, 112)).reshape(frames.shape[:2] + (112, 112, 3))
        video = to_judge_video(frames, self.lower_face_top, self.grayscale)
        if blur_sigma > 0:
            video = gaussian_blur(video, jnp.full((video.shape[0],), blur_sigma, jnp.float32), blur_sigma)
        v = self.model.apply(self.variables, video, method=SyncNet.embed_video)
        b, k = shifted.shape[:2]
        a = self.model.apply(self.variables, jnp.concatenate([audio, shifted.reshape((b * k,) + audio.shape[1:])]),
                             method=SyncNet.embed_audio)
        return embedding_distance(v, a[:b]), embedding_distance(v[:, None], a[b:].reshape((b, k, -1)))
