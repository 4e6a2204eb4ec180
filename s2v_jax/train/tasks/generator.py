"""The Speech2Vid generator's task: generator(mfcc, identity) vs the target frame.

Batches arrive as the input pipeline yields them (`'mfcc'` float32
`[b, 12, 35, 1]`, `'identity'` uint8 `[b, 112, 112, 3k]`, `'target'` uint8
`[b, 112, 112, 3]`) and become float in [0, 1] on device, so host-to-device
copies stay uint8. Loss: L1 (the paper), optionally squared error for the
first `train.mse_warmup_steps`. If the model's output side (109 for the v201
bilinear decoder) differs from the target's (112), the target is resized on
device to the output side (bilinear, antialiased: the 109x109 frame covers
the same registered face crop). Baseline: the first still itself ('static').
"""

import dataclasses
import math
import functools
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import ml_collections

from s2v_jax.errors import ConfigError
from s2v_jax.models import build_model, input_shapes
from s2v_jax.models.generator import Speech2Vid, warped_points
from s2v_jax.train import metrics as metrics_lib
from s2v_jax.train.tasks.base import Task, apply_model
from s2v_jax.train.tasks.sync import SyncTask, _distance


def to_float_image(x):
    """uint8 `[..., C]` in 0..255 -> float32 in [0, 1]; float input is passed through as float32."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    return x.astype(jnp.float32)


def resize_to(images, size: Tuple[int, int]):
    """`[B, H, W, C]` -> `[B, *size, C]` (bilinear, antialiased); a no-op when the size already matches."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    return jax.image.resize(images, (images.shape[0],) + tuple(size) + images.shape[3:], "linear",
                            antialias=True)


def gaussian_blur(images, sigmas, max_sigma: float):
    """Separable Gaussian blur with a per-image sigma: `[B, H, W, C]`, `[B]` -> `[B, H, W, C]`.

    The kernel has radius ceil(3 * max_sigma) taps, normalised per image; the
    borders are reflected. Applied as a sum of shifted, weighted copies (a conv).
    """
    radius = max(1, int(math.ceil(3.0 * max_sigma)))
    offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    taps = jnp.exp(-0.5 * jnp.square(offsets[None, :] / jnp.maximum(sigmas[:, None], 1e-3)))
    taps = taps / taps.sum(axis=1, keepdims=True)  # [B, 2r+1]

    def blur_axis(x, axis):
        n = x.shape[axis]
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        xp = jnp.pad(x, pad, mode="reflect")
        out = jnp.zeros_like(x)
        for k in range(2 * radius + 1):
            window = jax.lax.slice_in_dim(xp, k, k + n, axis=axis)
            out = out + taps[:, k, None, None, None] * window
        return out

    return blur_axis(blur_axis(images, 1), 2)


def l1_loss(pred, target):
    """Mean absolute error over all pixels and channels of the batch (a scalar)."""
    return jnp.mean(jnp.abs(pred - target))


def mse_loss(pred, target):
    """Mean squared error over all pixels and channels of the batch (a scalar)."""
    return jnp.mean(jnp.square(pred - target))


def image_eval_sums(pred, target, baseline, prefix: str):
    """Sums over the batch of L1, PSNR, SSIM of the model and of its baseline, the output's
    distance from the baseline itself ('l1_to_<prefix>': near 0 means the model just copies
    it, whatever its L1 to the target) and 'count'."""
    out = {k: v.sum() for k, v in metrics_lib.image_metrics(pred, target).items()}
    out.update({f"{prefix}_{k}": v.sum() for k, v in metrics_lib.image_metrics(baseline, target).items()})
    out[f"l1_to_{prefix}"] = jnp.abs(pred - baseline).mean(axis=(1, 2, 3)).sum()
    out["count"] = jnp.asarray(pred.shape[0], jnp.float32)
    return out


def describe_image_eval(val, prefix: str) -> str:
    return (f"val L1 {val['l1']:.4f} PSNR {val['psnr']:.2f} SSIM {val['ssim']:.3f} ({prefix} baseline: "
            f"L1 {val[f'{prefix}_l1']:.4f} PSNR {val[f'{prefix}_psnr']:.2f} SSIM {val[f'{prefix}_ssim']:.3f}; "
            f"output to baseline L1 {val[f'l1_to_{prefix}']:.4f})")


def pipeline_data_functions(config: ml_collections.ConfigDict):
    """`s2v_jax.data.input_pipeline`'s loader factories, after building the dataset if needed."""
    # Deferred for start-up: grain and TFDS are needed to train, not to load a checkpoint for generation.
    from s2v_jax.data import input_pipeline

    input_pipeline.ensure_dataset(config)
    return input_pipeline.create_train_loader, input_pipeline.create_eval_batches


@dataclasses.dataclass(frozen=True)
class ImageTask(Task):
    """What the image tasks (generator, deblur) share: `build_model`'s networks, the
    input pipeline's data, image metrics beside a baseline image."""

    best_metric: str = dataclasses.field(default="l1", init=False)

    def build_model(self, config, axis_name=None):
        return build_model(config, axis_name=axis_name)

    def dummy_inputs(self, config):
        return tuple(jnp.zeros((1,) + s, jnp.float32) for s in input_shapes(config).values())

    def data_functions(self, config):
        return pipeline_data_functions(config)

    def describe(self, val):
        return describe_image_eval(val, self.baseline)


# The mouth box of the registered 112x112 crop (rows, columns): lips, teeth
# and chin, open or closed, for every template-registered face (most of what
# the sync expert sees below row 56).
MOUTH_BOX = (slice(58, 100), slice(24, 88))


def _to_judge_video(frames, top: int):
    """Generated/real frames float [B, 5, S, S, 3] in [0, 1] -> the judge's grey lower face [B, S-top, S, 5]
    on its uint8 scale (0..255; ITU-R 601 luma as sync_inputs.to_grey, without rounding)."""
    grey = frames[..., 0] * 0.299 + frames[..., 1] * 0.587 + frames[..., 2] * 0.114
    return jnp.transpose(grey[:, :, top:, :], (0, 2, 3, 1)) * 255.0


def lip_distances(flow, batch):
    """Where the warp takes the still's lips, against the real lips: per frame [b*w] (model, static).

    The flow (dy, dx) [b, w, S, S, 2] is a backward warp (output pixel q shows the still at
    q + flow(q)); the still's lip point p shows at q = p - flow(q) (`warped_points`). Per frame:
    mean over the 40 lip points of ||q - r|| / IOD(r) against the real lip point r, LMD's own
    normalisation (evaluation.metrics.lmd), of the warp alone (the residual change on top of it
    is not counted); 'static' is ||p - r|| / IOD, the still's LMD on these landmarks.

    Before 2026-12-03 (the shipped model of a92febd) the model term was ||flow(r) - (p - r)||,
    the error measured in the still's coordinates. It is 0 exactly when this one is, but a flow
    with a steep gradient at the lips lowers it without moving the lips: on the 5 held-out
    tracks of 2 s or more (every 5th frame from frame 12) that model scored 0.0679 on it against
    the still's 0.0751 (-10%), and 0.0739 (-1.7%) on where its warp really puts the lips
    (benchmarks/lip_oracle.py --checkpoint)."""
    b, w, s = flow.shape[:3]
    scale = s / 112.0
    real = batch["target_lips"].astype(jnp.float32).reshape(b * w, -1, 2) * scale  # (x, y)
    still = jnp.repeat(batch["identity_lips"].astype(jnp.float32) * scale, w, axis=0)
    iod = batch["target_iod"].astype(jnp.float32).reshape(b * w) * scale
    moved = warped_points(flow.reshape((b * w,) + flow.shape[2:]), still)
    model = jnp.sqrt(jnp.sum(jnp.square(moved - real), axis=-1) + 1e-12).mean(axis=-1) / iod
    static = jnp.sqrt(jnp.sum(jnp.square(still - real), axis=-1)).mean(axis=-1) / iod
    return model, static


@dataclasses.dataclass(frozen=True)
class Judge:
    """A frozen sync expert inside the generator's loss: its network and float32 variables
    (constants of the jitted step: no gradient reaches them)."""

    model: Any
    variables: Any
    lower_face_top: int

    @classmethod
    @functools.lru_cache(maxsize=4)
    def load(cls, path: str = ""):
        """The exported judge at `path` (`s2v export`; '' = the one shipped in the package),
        loaded once per process."""
        from s2v_jax import assets
        from s2v_jax.models.syncnet import build_syncnet
        from s2v_jax.train import export

        path = path or assets.SYNC_EXPERT
        if not export.is_exported(path):
            raise ConfigError(f"train.sync_expert {path} is not an exported sync expert; export a trained one "
                              "first (s2v export --checkpoint W --out DIR) or leave it '' for the shipped judge")
        config, variables = export.load_exported(path)
        if config.get("task") != "sync" or int(config.model.num_frames) != 5 or not bool(config.model.grayscale):
            raise ConfigError("the generator's sync loss needs a 5-frame grey sync expert (configs/syncnet_real.py)")
        variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
        # numpy, not jnp: loaded on first use, maybe while a step is traced, where jnp values would be tracers
        variables = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), variables)
        return cls(build_syncnet(config), variables, int(config.model.lower_face_top))

    def distances(self, frames, audio, shifted, blur_sigma: float = 0.0):
        """frames [B, 5, S, S, 3] float, audio [B, 12, 20, 1], shifted [B, K, 12, 20, 1]
        -> (d_sync [B], d_shifted [B, K]): Euclidean distances of the judge's embeddings.
        blur_sigma > 0: the judge sees the frames Gaussian-blurred (pixels), so that a generator
        trained against it gains nothing from pixel-sized patterns, only from the mouth's shape."""
        from s2v_jax.models.syncnet import SyncNet

        frames = resize_to(frames.reshape((-1,) + frames.shape[2:]), (112, 112)).reshape(frames.shape[:2] + (112, 112, 3))
        video = _to_judge_video(frames, self.lower_face_top)
        if blur_sigma > 0:
            video = gaussian_blur(video, jnp.full((video.shape[0],), blur_sigma, jnp.float32), blur_sigma)
        v = self.model.apply(self.variables, video, method=SyncNet.embed_video)
        b, k = shifted.shape[:2]
        a = self.model.apply(self.variables, jnp.concatenate([audio, shifted.reshape((b * k,) + audio.shape[1:])]),
                             method=SyncNet.embed_audio)
        return _distance(v, a[:b]), _distance(v[:, None], a[b:].reshape((b, k, -1)))


@dataclasses.dataclass(frozen=True)
class GeneratorTask(ImageTask):
    """`mse_warmup_steps`: while `state.step` is below it the loss is squared error, then L1.
    Why: an identity-residual model starts exactly at the still, and there L1's kink pins it
    (most pixels already match, and any change costs on all of them at once), whereas squared
    error is flat near zero error and lets the mouth pathway form; L1 then takes over.

    Not in the paper (configs/real_small.py; all off by default):
    - `mouth_weight` w: loss = L1(frame) + w * L1(mouth box), the box rows 58-99, columns
      24-87 of the registered crop (lips and chin). On real faces the full-frame error is mostly
      pose and light the audio cannot explain; the box is ~21% of the pixels.
    - `sync_weight` s with batches of 5-frame windows (data.window_frames=5,
      data.sync_negatives=K): + s * the frozen sync expert's n-way cross-entropy of the
      generated window's lower face against its in-sync and K shifted audios (Wav2Lip's
      expert sync loss, in the judge's own n-way form, temperature `sync_temperature`), the
      frames Gaussian-blurred by `sync_blur_sigma` px for the judge (validation: unblurred).
    Validation with windows adds, for the model, the static still (repeated) and the real
    frames, the judge's window confidence `*_sync_conf` = mean(d_shifted) - d_sync per window
    (the per-window form of LSE-C; above 0 = the in-sync audio matches best) and its accuracy
    `*_sync_acc`; every validation reports `mouth_l1` beside `static_mouth_l1`.
    `best` picks the validation metric that keeps the best checkpoint ('l1' or 'mouth_l1')."""

    mse_warmup_steps: int = 0
    mouth_weight: float = 0.0
    sync_weight: float = 0.0
    sync_temperature: float = 0.1
    sync_blur_sigma: float = 0.0
    best: str = "l1"
    lip_weight: float = 0.0
    judge_path: Optional[str] = None  # the sync expert of the sync loss/validation: None = none, '' = the shipped one
    name: str = dataclasses.field(default="generator", init=False)
    title = "the generator"  # how messages name it
    baseline: Optional[str] = dataclasses.field(default="static", init=False)

    def __post_init__(self):
        object.__setattr__(self, "best_metric", self.best)

    @classmethod
    def from_config(cls, config):
        t, d = config.train, config.data
        warmup = int(t.get("mse_warmup_steps", 0))
        if warmup < 0:
            raise ConfigError(f"train.mse_warmup_steps must be >= 0 (0 = the paper's L1 throughout), not {warmup}")
        best = str(t.get("best_metric", "l1"))
        if best not in ("l1", "mouth_l1", "lip_lmd"):
            raise ConfigError(f"train.best_metric must be 'l1', 'mouth_l1' or 'lip_lmd' for the generator, not {best!r}")
        sync_weight = float(t.get("sync_weight", 0.0))
        window, negatives = int(d.get("window_frames", 1)), int(d.get("sync_negatives", 0))
        judge = None
        if sync_weight > 0 or negatives > 0:
            if window != 5 or negatives < 1:
                raise ConfigError("the generator's sync loss and sync validation need data.window_frames=5 and "
                                  f"data.sync_negatives >= 1 (have {window} and {negatives})")
            judge = str(t.get("sync_expert", "") or "")
        lip_weight = float(t.get("lip_weight", 0.0))
        if lip_weight < 0:
            raise ConfigError(f"train.lip_weight must be >= 0, not {lip_weight}")
        if lip_weight > 0 and (float(config.model.get("warp", 0.0) or 0.0) <= 0 or window < 2):
            raise ConfigError("train.lip_weight (the lip-warp loss) needs model.warp > 0 (a warping generator) and "
                              f"windows of frames (data.window_frames > 1); have model.warp="
                              f"{config.model.get('warp', 0.0)}, data.window_frames={window}")
        if best == "lip_lmd" and lip_weight <= 0:
            raise ConfigError("train.best_metric='lip_lmd' needs the lip landmarks: set train.lip_weight > 0")
        return cls(mse_warmup_steps=warmup, mouth_weight=float(t.get("mouth_weight", 0.0)), sync_weight=sync_weight,
                   sync_temperature=float(t.get("sync_temperature", 0.1)), best=best, judge_path=judge,
                   sync_blur_sigma=float(t.get("sync_blur_sigma", 0.0)), lip_weight=lip_weight)

    @property
    def judge(self) -> Optional[Judge]:
        """The frozen sync expert (loaded on first use, when a step is traced), or None."""
        return None if self.judge_path is None else Judge.load(self.judge_path)

    def forward(self, state, params, batch, *, train: bool):
        """(prediction, target, static baseline, new batch_stats, flow); images float32 `[b, S, S, 3]`,
        S the model's output side; windowed batches give `[b, w, S, S, 3]` (the baseline repeated)
        and the warp's flow `[b, w, S, S, 2]` (None unless model.warp and windows)."""
        target = to_float_image(batch["target"])
        identity = to_float_image(batch["identity"])
        mfcc = batch["mfcc"].astype(jnp.float32)
        if mfcc.ndim == 5:  # windows of w frames, one identity each
            variables = {"params": params, "batch_stats": state.batch_stats}
            method = Speech2Vid.generate_windows_with_flow
            if train:
                (pred, flow), updates = state.apply_fn(variables, mfcc, identity, train=True, mutable=["batch_stats"],
                                                       method=method)
                stats = updates["batch_stats"]
            else:
                (pred, flow), stats = state.apply_fn(variables, mfcc, identity, train=False, method=method), \
                    state.batch_stats
            pred = pred.astype(jnp.float32)
            b, w = pred.shape[:2]
            size = pred.shape[2:4]
            flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
            target = resize_to(flat(target), size).reshape((b, w) + size + (3,))
            still = jnp.broadcast_to(resize_to(identity[..., :3], size)[:, None], pred.shape)
            return pred, target, still, stats, flow
        pred, stats = apply_model(state, params, (mfcc, identity), train=train)
        pred = pred.astype(jnp.float32)
        size = pred.shape[1:3]
        return pred, resize_to(target, size), resize_to(identity[..., :3], size), stats, None

    def _mouth(self, x):
        s = x.shape[-3]
        rows, cols = (slice(round(b.start * s / 112), round(b.stop * s / 112)) for b in MOUTH_BOX)
        return x[..., rows, cols, :]

    def loss(self, state, params, batch, *, key, axis_name):
        pred, target, _, stats, flow = self.forward(state, params, batch, train=True)
        loss = l1_loss(pred, target)
        if self.mse_warmup_steps > 0:
            loss = jnp.where(state.step < self.mse_warmup_steps, mse_loss(pred, target), loss)
        metrics = {}
        if self.mouth_weight > 0:
            mouth = l1_loss(self._mouth(pred), self._mouth(target))
            metrics["mouth_l1"] = mouth
            loss = loss + self.mouth_weight * mouth
        if self.sync_weight > 0:
            d_pos, d_neg = self.judge.distances(pred, batch["sync_audio"], batch["sync_audio_shifted"],
                                                self.sync_blur_sigma)
            sync = SyncTask(loss_type="nway", temperature=self.sync_temperature).per_window_loss(d_pos, d_neg).mean()
            metrics["sync_loss"] = sync
            loss = loss + self.sync_weight * sync
        if self.lip_weight > 0:
            metrics["lip_lmd"] = lip_distances(flow, batch)[0].mean()
            loss = loss + self.lip_weight * metrics["lip_lmd"]
        return loss, (metrics, stats)

    def eval_sums(self, state, batch, *, key, axis_name):
        pred, target, baseline, _, flow = self.forward(state, state.params, batch, train=False)
        if pred.ndim == 5:
            flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
            out = image_eval_sums(flat(pred), flat(target), flat(baseline), self.baseline)
        else:
            out = image_eval_sums(pred, target, baseline, self.baseline)
        for name, x in (("", pred), (f"{self.baseline}_", baseline)):
            out[f"{name}mouth_l1"] = jnp.abs(self._mouth(x) - self._mouth(target)).reshape(x.shape[0], -1).mean(1).sum() \
                * (out["count"] / x.shape[0])
        if flow is not None and "target_lips" in batch:
            lip, static = lip_distances(flow, batch)
            out["lip_lmd"], out["static_lip_lmd"] = lip.sum(), static.sum()
        if self.judge is not None and pred.ndim == 5:
            windows = jnp.asarray(pred.shape[0], jnp.float32)
            for name, x in (("", pred), (f"{self.baseline}_", baseline), ("real_", target)):
                d_pos, d_neg = self.judge.distances(x, batch["sync_audio"], batch["sync_audio_shifted"])
                # per-frame sums (the loop divides every sum by 'count', the frames): window means
                scale = out["count"] / windows
                out[f"{name}sync_conf"] = jnp.sum(d_neg.mean(axis=1) - d_pos) * scale
                out[f"{name}sync_acc"] = jnp.sum(jnp.all(d_pos[:, None] < d_neg, axis=1)) * scale
        return out

    def describe(self, val):
        line = describe_image_eval(val, self.baseline)
        line += f"; mouth L1 {val['mouth_l1']:.4f} (static {val['static_mouth_l1']:.4f})"
        if "lip_lmd" in val:
            line += f"; lip-warp LMD {val['lip_lmd']:.4f} (static {val['static_lip_lmd']:.4f})"
        if "sync_conf" in val:
            line += (f"; judge window conf {val['sync_conf']:.3f} acc {val['sync_acc']:.2f} (static "
                     f"{val['static_sync_conf']:.3f}/{val['static_sync_acc']:.2f}, real "
                     f"{val['real_sync_conf']:.3f}/{val['real_sync_acc']:.2f})")
        return line
