"""A second, pixel-free opinion on a clip's audio-visual offset, to check the judge against.

The sync expert (`sync_expert`) reads pixels and is trained contrastively. When it
places a held-out clip's offset at +2, is the judge wrong or is the clip's sound
late? Real corpora are not all in sync (VoxCeleb2-style crops are known to drift),
and the judge's offset marks assume they are. This module gives an independent
estimate from other evidence and another kind of model:

- input: the clip's MFCC windows (the judge's audio input) and its face landmarks
  (MediaPipe, from the dataset; no pixels);
- model: small MLPs (Flax linen) regressing the inner-lip opening of a frame
  from its 0.35 s MFCC window, fitted by least squares on training tracks (in
  sync on average, the same assumption every judge makes); an ensemble of 5
  seeds, their predictions averaged (one alone can jump to the search's edge on
  a weakly correlated clip);
- offset: the lag of highest correlation between the opening predicted from the
  audio and the opening seen in the video (`metrics.landmark_sync`, the same
  high-pass, z-score and sign as the landmark measure: positive = audio late).

It is a reference for diagnostics (`benchmarks/sync_judge.py --reference`), not a
judge: its correlations are weak (0.1-0.6 on real clips) and it only sees the lips'
opening, not their shape.

    ref = fit([(mfcc_windows, opening), ...])      # training tracks
    ref.offset(mfcc_windows, opening)              # {'offset', 'correlation', ...}
"""

from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from s2v_jax.evaluation import metrics
from s2v_jax.train.optimizer import create_learning_rate_fn, create_optimizer

REFERENCE_MAX_OFFSET = 6  # frames searched either way; enough for real clips' own offsets (+-0.24 s)
MIN_TRACK_FRAMES = 10


def _check_lengths(num_frames: int, num_windows: int) -> None:
    if num_frames != num_windows:
        raise ValueError(f"one MFCC window per frame is needed ({num_frames} frames, {num_windows} windows)")


class OpeningRegressor(nn.Module):
    """MFCC window (flattened, standardised) -> the frame's standardised mouth opening."""
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


def opening_target(opening) -> np.ndarray:
    """The regression target of one track: its opening high-passed (`metrics.highpass`, as the
    landmark measure does) and z-scored, missing frames filled with the track's mean first."""
    o = np.asarray(opening, np.float64)
    ok = np.isfinite(o)
    if not ok.any():
        raise ValueError("opening_target needs a track with at least one face")
    o = np.where(ok, o, o[ok].mean())
    hp = metrics.highpass(o, metrics.DETREND_FRAMES)
    return (hp - hp.mean()) / (hp.std() + 1e-3)


class LipReference:
    """Fitted audio -> mouth-opening regressors (an ensemble) and the offset they give a clip."""

    def __init__(self, variables: Sequence, mean: np.ndarray, std: np.ndarray, hidden: Sequence[int] = (256, 256)):
        self.model = OpeningRegressor(tuple(hidden))
        self.variables = list(variables)
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self._apply = jax.jit(self.model.apply)

    def _inputs(self, mfcc_windows) -> np.ndarray:
        m = np.asarray(mfcc_windows, np.float32)
        m = m.reshape(len(m), -1)
        if m.shape[1] != self.mean.shape[0]:
            raise ValueError(f"LipReference was fitted on MFCC windows of {self.mean.shape[0]} values, "
                             f"got {m.shape[1]}")
        return (m - self.mean) / self.std

    def predict(self, mfcc_windows) -> np.ndarray:
        """The mouth opening predicted from each frame's MFCC window (the ensemble's mean):
        [T, 12, 35] -> [T] (standardised)."""
        x = jnp.asarray(self._inputs(mfcc_windows))
        return np.mean([np.asarray(self._apply(v, x), np.float64) for v in self.variables], axis=0)

    def offset(self, mfcc_windows, opening, max_offset: int = REFERENCE_MAX_OFFSET) -> Dict[str, object]:
        """The clip's AV offset by this reference (`metrics.landmark_sync` of the predicted against
        the seen opening): {'offset' (positive = audio late; None if the mouth does not move),
        'correlation', 'correlation_at_zero', 'mouth_motion', 'offsets', 'correlations'}."""
        opening = np.asarray(opening, np.float64)
        _check_lengths(len(opening), len(mfcc_windows))
        return metrics.landmark_sync(self.predict(mfcc_windows), opening, max_offset)


def fit(tracks: Iterable[Tuple[np.ndarray, np.ndarray]], epochs: int = 6, batch_size: int = 256,
        learning_rate: float = 1e-3, hidden: Sequence[int] = (256, 256), seed: int = 0, ensemble: int = 5,
        log: Optional[Callable[[str], None]] = None) -> LipReference:
    """Fit `ensemble` regressors (seeds seed, seed + 1, ...) on (mfcc_windows [T, 12, 35], opening [T])
    training tracks (tracks shorter than 10 frames or with no face are skipped). Deterministic for a
    seed. About 10 s a regressor for 130,000 frames on a 2-core CPU."""
    xs, ys = [], []
    for mfcc, opening in tracks:
        opening = np.asarray(opening, np.float64)
        _check_lengths(len(opening), len(mfcc))
        if len(opening) < MIN_TRACK_FRAMES or not np.isfinite(opening).any():
            continue
        m = np.asarray(mfcc, np.float32)
        xs.append(m.reshape(len(m), -1))
        ys.append(opening_target(opening).astype(np.float32))
    if not xs:
        raise ValueError(f"LipReference.fit needs at least one track of {MIN_TRACK_FRAMES} frames with a face")
    x, y = np.concatenate(xs), np.concatenate(ys)
    mean, std = x.mean(0), x.std(0) + 1e-3
    x = (x - mean) / std
    model = OpeningRegressor(tuple(hidden))
    cfg = ml_collections.ConfigDict({"train": {"optimizer": "adam", "learning_rate": float(learning_rate),
                                               "schedule": "constant", "warmup_steps": 0, "num_steps": 1,
                                               "weight_decay": 0.0, "momentum": 0.9, "nesterov": False}})
    opt = create_optimizer(cfg, create_learning_rate_fn(cfg))  # the project's one optimizer factory

    @jax.jit
    def step(variables, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda v: jnp.mean((model.apply(v, xb) - yb) ** 2))(variables)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(variables, updates), opt_state, loss

    batch_size = min(batch_size, len(x))
    members = []
    for member in range(max(1, int(ensemble))):
        rng = np.random.default_rng(seed + member)
        variables = model.init(jax.random.PRNGKey(seed + member), jnp.zeros((1, x.shape[1])))
        opt_state = opt.init(variables)
        for epoch in range(epochs):
            order, losses = rng.permutation(len(x)), []
            for s in range(0, len(x) - batch_size + 1, batch_size):
                i = order[s:s + batch_size]
                variables, opt_state, loss = step(variables, opt_state, x[i], y[i])
                losses.append(float(loss))
        if log:
            log(f"lip reference: regressor {member + 1}/{ensemble}, {epochs} epochs over {len(x)} frames, "
                f"final loss {np.mean(losses):.4f}")
        members.append(variables)
    return LipReference(members, mean, std, hidden)
