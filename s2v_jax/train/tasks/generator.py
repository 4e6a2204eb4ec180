"""The Speech2Vid generator's task: generator(mfcc, identity) vs the target frame.

Batches arrive as the input pipeline yields them (`'mfcc'` float32
`[b, 12, 35, 1]`, `'identity'` uint8 `[b, 112, 112, 3k]`, `'target'` uint8
`[b, 112, 112, 3]`) and become float in [0, 1] on device, so host-to-device
copies stay uint8. Loss: L1 (the paper), optionally squared error for the
first `train.mse_warmup_steps`. If the model's output side (109 for the v201
bilinear decoder) differs from the target's (112), the target is resized on
device to the output side (bilinear, antialiased: the 109x109 frame covers
the same registered face crop). Baseline: the first still itself ('static').
Image utilities live in `tasks/image.py`, lip geometry in `tasks/lips.py`, the
frozen judge of the sync loss in `train/judge.py`.
"""

import dataclasses
from typing import Optional

import jax.numpy as jnp

from s2v_jax.errors import ConfigError
from s2v_jax.models.generator import Speech2Vid
from s2v_jax.train.judge import Judge
from s2v_jax.train.tasks.base import apply_model
from s2v_jax.train.tasks.image import ImageTask, describe_image_eval, image_eval_sums, l1_loss, mse_loss, resize_to, \
    to_float_image
from s2v_jax.train.tasks.lips import PAINT_REGIONS, lip_distances, mask_error, mouth, opening_l1, paint_outside
from s2v_jax.train.tasks.sync import SyncTask


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
    - `paint_weight` q (an interior model with the lip-warp loss): + q * the painted change outside
      the still's inner lips as the warp moves them (`lips.paint_outside`, mean over the mouth box):
      paint where the warp opened the mouth, nowhere else. Validation reports `paint_outside`.
      `paint_region` 'real' counts paint outside the real frame's inner lips instead (where the
      speaker's mouth is open, parted by the warp or not).
    - `mask_weight` k (an interior model with the landmarks): + k * the occlusion mask's mean
      distance from the real frame's inner-lip opening over the mouth box (`lips.mask_error`): where
      to paint, taught by the landmarks rather than by the judge. Validation reports `mask_error`.
    - `opening_weight` o (the same needs): + o * the pixel error inside the real opening over the mouth
      box (`lips.opening_l1`): a colour target for the painted cavity. Validation reports `opening_l1`.
    `best` picks the validation metric that keeps the best checkpoint ('l1' or 'mouth_l1')."""

    mse_warmup_steps: int = 0
    mouth_weight: float = 0.0
    sync_weight: float = 0.0
    sync_temperature: float = 0.1
    sync_blur_sigma: float = 0.0
    best: str = "l1"
    lip_weight: float = 0.0
    paint_weight: float = 0.0
    paint_region: str = "warped"
    mask_weight: float = 0.0
    opening_weight: float = 0.0
    interior: bool = False  # model.interior: the frame is the warped still with paint blended in
    judge_path: Optional[str] = None  # the sync expert of the sync loss/validation: None = none, '' = the shipped one
    name: str = dataclasses.field(default="generator", init=False)
    title = "the generator"  # how messages name it
    baseline: Optional[str] = dataclasses.field(default="static", init=False)

    def __post_init__(self):
        object.__setattr__(self, "best_metric", self.best)

    @classmethod
    def from_config(cls, config):
        t, d = config.train, config.data
        warmup = int(t.mse_warmup_steps)
        if warmup < 0:
            raise ConfigError(f"train.mse_warmup_steps must be >= 0 (0 = the paper's L1 throughout), not {warmup}")
        best = str(t.best_metric)
        if best not in ("l1", "mouth_l1", "lip_lmd"):
            raise ConfigError(f"train.best_metric must be 'l1', 'mouth_l1' or 'lip_lmd' for the generator, not {best!r}")
        sync_weight = float(t.sync_weight)
        window, negatives = int(d.window_frames), int(d.sync_negatives)
        judge = None
        if sync_weight > 0 or negatives > 0:
            if window != 5 or negatives < 1:
                raise ConfigError("the generator's sync loss and sync validation need data.window_frames=5 and "
                                  f"data.sync_negatives >= 1 (have {window} and {negatives})")
            judge = str(t.sync_expert or "")
        lip_weight = float(t.lip_weight)
        if lip_weight < 0:
            raise ConfigError(f"train.lip_weight must be >= 0, not {lip_weight}")
        if lip_weight > 0 and (float(config.model.warp or 0.0) <= 0 or window < 2):
            raise ConfigError("train.lip_weight (the lip-warp loss) needs model.warp > 0 (a warping generator) and "
                              f"windows of frames (data.window_frames > 1); have model.warp="
                              f"{config.model.get('warp', 0.0)}, data.window_frames={window}")
        if best == "lip_lmd" and lip_weight <= 0:
            raise ConfigError("train.best_metric='lip_lmd' needs the lip landmarks: set train.lip_weight > 0")
        interior = bool(config.model.interior)

        def interior_term(field: str, what: str) -> float:
            """A weight >= 0 of a term that needs an interior model and the lip landmarks."""
            weight = float(t[field])
            if weight < 0:
                raise ConfigError(f"train.{field} must be >= 0, not {weight}")
            if weight > 0 and not (interior and lip_weight > 0):
                raise ConfigError(f"train.{field} ({what}) needs an interior model (model.interior=True) and the "
                                  f"lip landmarks (train.lip_weight > 0); have model.interior={interior}, "
                                  f"train.lip_weight={lip_weight}")
            return weight

        paint_weight = interior_term("paint_weight", "paint outside the inner lips")
        mask_weight = interior_term("mask_weight", "the occlusion mask against the real opening")
        opening_weight = interior_term("opening_weight", "the pixel error inside the real opening")
        paint_region = str(t.paint_region)
        if paint_region not in PAINT_REGIONS:
            raise ConfigError(f"train.paint_region must be one of {PAINT_REGIONS}, not {paint_region!r}")
        return cls(mse_warmup_steps=warmup, mouth_weight=float(t.mouth_weight), sync_weight=sync_weight,
                   sync_temperature=float(t.sync_temperature), best=best, judge_path=judge,
                   sync_blur_sigma=float(t.sync_blur_sigma), lip_weight=lip_weight, paint_weight=paint_weight,
                   paint_region=paint_region, mask_weight=mask_weight,
                   opening_weight=opening_weight, interior=interior)

    @property
    def judge(self) -> Optional[Judge]:
        """The frozen sync expert (loaded on first use, when a step is traced), or None."""
        return None if self.judge_path is None else Judge.load(self.judge_path)

    def forward(self, state, params, batch, *, train: bool):
        """(prediction, target, static baseline, new batch_stats, flow, occlusion mask); images float32 `[b, S, S, 3]`,
        S the model's output side; windowed batches give `[b, w, S, S, 3]` (the baseline repeated)
        and the warp's flow `[b, w, S, S, 2]` (None unless model.warp and windows)."""
        target = to_float_image(batch["target"])
        identity = to_float_image(batch["identity"])
        mfcc = batch["mfcc"].astype(jnp.float32)
        if mfcc.ndim == 5:  # windows of w frames, one identity each
            (pred, flow, mask), stats = apply_model(state, params, (mfcc, identity), train=train,
                                                    method=Speech2Vid.generate_windows_parts)
            pred = pred.astype(jnp.float32)
            b, w = pred.shape[:2]
            size = pred.shape[2:4]
            flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
            target = resize_to(flat(target), size).reshape((b, w) + size + (3,))
            still = jnp.broadcast_to(resize_to(identity[..., :3], size)[:, None], pred.shape)
            return pred, target, still, stats, flow, mask
        pred, stats = apply_model(state, params, (mfcc, identity), train=train)
        pred = pred.astype(jnp.float32)
        size = pred.shape[1:3]
        return pred, resize_to(target, size), resize_to(identity[..., :3], size), stats, None, None

    def loss(self, state, params, batch, *, key, axis_name):
        pred, target, still, stats, flow, mask = self.forward(state, params, batch, train=True)
        loss = l1_loss(pred, target)
        if self.mse_warmup_steps > 0:
            loss = jnp.where(state.step < self.mse_warmup_steps, mse_loss(pred, target), loss)
        metrics = {}
        if self.mouth_weight > 0:
            mouth_l1 = l1_loss(mouth(pred), mouth(target))
            metrics["mouth_l1"] = mouth_l1
            loss = loss + self.mouth_weight * mouth_l1
        if self.sync_weight > 0:
            d_pos, d_neg = self.judge.distances(pred, batch["sync_audio"], batch["sync_audio_shifted"],
                                                self.sync_blur_sigma)
            sync = SyncTask(loss_type="nway", temperature=self.sync_temperature).per_window_loss(d_pos, d_neg).mean()
            metrics["sync_loss"] = sync
            loss = loss + self.sync_weight * sync
        if self.lip_weight > 0:
            metrics["lip_lmd"] = lip_distances(flow, batch)[0].mean()
            loss = loss + self.lip_weight * metrics["lip_lmd"]
        if self.paint_weight > 0:
            metrics["paint_outside"] = paint_outside(pred, still, flow, batch, self.paint_region).mean()
            loss = loss + self.paint_weight * metrics["paint_outside"]
        if self.mask_weight > 0:
            metrics["mask_error"] = mask_error(mask, batch).mean()
            loss = loss + self.mask_weight * metrics["mask_error"]
        if self.opening_weight > 0:
            metrics["opening_l1"] = opening_l1(pred, target, batch).mean()
            loss = loss + self.opening_weight * metrics["opening_l1"]
        return loss, (metrics, stats)

    def eval_sums(self, state, batch, *, key, axis_name):
        pred, target, baseline, _, flow, mask = self.forward(state, state.params, batch, train=False)
        if pred.ndim == 5:
            flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
            out = image_eval_sums(flat(pred), flat(target), flat(baseline), self.baseline)
        else:
            out = image_eval_sums(pred, target, baseline, self.baseline)
        for name, x in (("", pred), (f"{self.baseline}_", baseline)):
            out[f"{name}mouth_l1"] = jnp.abs(mouth(x) - mouth(target)).reshape(x.shape[0], -1).mean(1).sum() \
                * (out["count"] / x.shape[0])
        if flow is not None and "target_lips" in batch:
            lip, static = lip_distances(flow, batch)
            out["lip_lmd"], out["static_lip_lmd"] = lip.sum(), static.sum()
            if self.interior:
                out["paint_outside"] = paint_outside(pred, baseline, flow, batch, self.paint_region).sum()
                out["mask_error"] = mask_error(mask, batch).sum()
                out["opening_l1"] = opening_l1(pred, target, batch).sum()
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
        if "paint_outside" in val:
            line += f"; paint outside the lips {val['paint_outside']:.5f}"
        if "mask_error" in val:
            line += f"; mask vs real opening {val['mask_error']:.4f}; L1 in the opening {val['opening_l1']:.5f}"
        if "sync_conf" in val:
            line += (f"; judge window conf {val['sync_conf']:.3f} acc {val['sync_acc']:.2f} (static "
                     f"{val['static_sync_conf']:.3f}/{val['static_sync_acc']:.2f}, real "
                     f"{val['real_sync_conf']:.3f}/{val['real_sync_acc']:.2f})")
        return line
