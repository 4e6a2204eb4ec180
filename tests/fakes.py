"""The fakes several test modules share (tests/ is on sys.path, as for ckpt_fixture): fake
generator batches and loaders (test_train, test_parallel, test_train_step), a fake video
registration and corpus (test_tfds_builders, test_sync_correct), toy sync-expert tracks and
config (test_syncnet, test_near_still), lip-warp tracks and config (test_lip_warp, test_interior),
and the ways a checkpoint copy goes wrong (test_syncnet, test_generate_cli)."""

import os
import pathlib
import types

import numpy as np

from s2v_jax.config_utils import load_config
from s2v_jax.errors import MediaError
from s2v_jax.evaluation import metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- generator batches (test_train)

def fake_batch(config, index: int, batch_size: int, nan: bool = False):
    """Batch `index`: smooth random stills; the target is the still, brightened by the MFCC mean.

    A function of (index) only, so any process or resumed run sees the same data.
    """
    rng = np.random.default_rng(1000 + index)
    k = config.model.get("num_identity_images", 1)
    # Darker than mid-grey, so even the output bias has something to learn in a few steps.
    coarse = rng.integers(0, 160, (batch_size, 14, 14, 3 * k)).astype(np.float32)
    identity = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    mfcc = rng.normal(size=(batch_size, 12, 35, 1)).astype(np.float32)
    gain = 0.8 + 0.4 / (1 + np.exp(-4 * mfcc.mean(axis=(1, 2, 3))))
    target = np.clip(identity[..., :3] * gain[:, None, None, None], 0, 255)
    target = target.astype(np.uint8)
    if nan:  # a broken batch: NaN speech and a NaN target (float targets pass through to the loss)
        mfcc[:] = np.nan
        target = np.full(target.shape, np.nan, np.float32)
    return {"mfcc": mfcc, "identity": identity.astype(np.uint8), "target": target}


class FakeLoader:
    """Iterator of fake batches with get_state/set_state, as input_pipeline's loader.

    `served` records the batch indices handed out (the data order a test checks).
    """

    def __init__(self, config, *, process_index=0, process_count=1, nan_at=None, same_batch=False):
        self.config = config
        self.same_batch = same_batch  # serve batch 0's data every time (a loss that must fall)
        self.batch_size = config.train.batch_size // process_count
        self.index = 0
        self.nan_at = nan_at
        self.served = []

    def __iter__(self):
        return self

    def __next__(self):
        i = self.index
        self.index += 1
        self.served.append(i)
        return fake_batch(self.config, 0 if self.same_batch else i, self.batch_size, nan=(i == self.nan_at))

    def get_state(self):
        return {"next_index": self.index}

    def set_state(self, state):
        self.index = int(state["next_index"])


def fake_eval_batches(config, *, num_batches, process_index=0, process_count=1):
    b = config.train.batch_size // process_count
    return [fake_batch(config, 10_000 + i, b) for i in range(num_batches)]


# ---------------------------------------------------------------- video registration (test_tfds_builders)

def fake_preprocess(path):
    """Registration stand-in keyed on the file name: 'corrupt', 'noaudio',
    'noface' fail as the real one does; others give a 50-frame track whose
    crops encode the video frame index, and a 10-frame one (too short)."""
    name = os.path.basename(path)
    if "corrupt" in name:
        raise MediaError(f"could not read the header of {path}; the file may be damaged")
    if "noaudio" in name:
        raise MediaError(f"{path} has no audio track; training and re-dubbing need the speech")
    num = 60
    info = types.SimpleNamespace(path=path, width=160, height=160, fps=29.97, num_frames=num,
                                 duration=num / 25, has_audio=True)
    windows = np.broadcast_to(np.arange(num, dtype=np.float32)[:, None, None], (num, 12, 35)).copy()
    if "noface" in name:
        return types.SimpleNamespace(tracks=[], mfcc_windows=windows, info=info, no_face_reason="no face found")
    tracks = []
    for start, end in [(2, 52), (52, 62)]:  # the second runs past the audio: clipped to 60
        t = end - start
        crops = np.zeros((t, 112, 112, 3), np.uint8) + np.arange(start, end, dtype=np.uint8)[:, None, None, None]
        tracks.append(types.SimpleNamespace(
            start_frame=start, end_frame=end, crops=crops,
            landmarks=np.full((t, 478, 2), 56.0, np.float32), transforms=np.zeros((t, 2, 3), np.float32),
            boxes=np.zeros((t, 4), np.float32)))
    return types.SimpleNamespace(tracks=tracks, mfcc_windows=windows, info=info)


def touch(root: pathlib.Path, *rels: str) -> pathlib.Path:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def fake_corpus(root: pathlib.Path) -> pathlib.Path:
    # spk11 and spk17 hash into validation; the rest into train.
    return touch(root, "spk1/00001.mp4", "spk1/00002.mp4", "spk2/00001.mp4", "spk2/corrupt.mp4",
                 "spk11/00001.mp4", "spk11/noaudio.mp4", "spk17/noface.mp4", "loose.mp4")



# ---------------------------------------------------------------- the sync expert's toy tracks (test_syncnet)

TOY_OVERRIDES = ["model.width=0.0625", "model.embed_dim=32", "train.batch_size=16", "train.num_steps=60",
                 "train.log_every=5", "train.eval_every=60", "train.checkpoint_every=30", "train.eval_batches=4",
                 "train.warmup_steps=5", "train.progress_bar=False", "data.augment=False"]


def toy_tracks(num_tracks, num_frames, seed):
    """In-memory tracks whose mouth height and "MFCC" follow one smooth random signal s(t).

    s is drawn at the MFCC rate (100 Hz); frame k shows a dark mouth bar of
    height 2 + 16 s(4k) px at the lower face, and column j of frame k's window
    holds s at step 4k + j - 17 on all 12 rows (plus noise), as
    audio.mfcc_windows centres windows. In sync by construction.
    """
    rng = np.random.default_rng(seed)
    tracks = []
    for _ in range(num_tracks):
        steps = 4 * num_frames + 40
        g = np.exp(-0.5 * (np.arange(-12, 13) / 4.0) ** 2)
        s = np.convolve(rng.normal(size=steps), g / g.sum(), mode="same")
        s = (s - s.min()) / (s.max() - s.min() + 1e-9)
        mfcc = np.zeros((num_frames, 12, 35), np.float32)
        for k in range(num_frames):
            c = 4 * k + np.arange(35) - 17
            ok = (c >= 0) & (c < steps)
            mfcc[k][:, ok] = np.linspace(0.5, 1.5, 12)[:, None] * s[c[ok]] * 5
        mfcc += rng.normal(scale=0.2, size=mfcc.shape).astype(np.float32)
        frames = np.full((num_frames, 112, 112, 3), 150, np.uint8)
        for k in range(num_frames):
            h = int(round(2 + 16 * s[4 * k]))
            frames[k, 80 - h // 2:80 + (h + 1) // 2, 41:71] = 40
        frames = np.clip(frames + rng.normal(scale=6, size=frames.shape), 0, 255).astype(np.uint8)
        tracks.append({"frames": frames, "mfcc": mfcc})
    return tracks


def damage_step(step_dir):
    """Truncates every data file of a checkpoint step to half (a disk-full or killed copy)."""
    for root, _, files in os.walk(os.path.join(step_dir, "state")):
        for name in files:
            path = os.path.join(root, name)
            if os.path.basename(root) == "d":
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)


def truncate_largest(step_dir, size: int = 100):
    """Truncates the largest file of a checkpoint step directory to `size` bytes (a half-copied checkpoint)."""
    files = [os.path.join(r, n) for r, _, names in os.walk(step_dir) for n in names]
    largest = max(files, key=os.path.getsize)
    with open(largest, "r+b") as f:
        f.truncate(size)
    return largest


DAMAGES = {"half_of_every_data_file": damage_step, "largest_file_to_100_bytes": truncate_largest}


def toy_config(extra=()):
    from s2v_jax.config_utils import load_config

    return load_config(os.path.join(REPO, "configs/syncnet.py"), TOY_OVERRIDES + list(extra))



# ---------------------------------------------------------------- lip-warp tracks (test_lip_warp)

def lip_config(name="real_small_warp.py", **overrides):
    return load_config(os.path.join(REPO, "configs", name), [f"{k}={v}" for k, v in overrides.items()])


def lip_tracks(n=2, frames=40, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lm = rng.uniform(20, 90, size=(frames, 478, 2)).astype(np.float32)
        lm[:, list(metrics.RIGHT_EYE_CORNERS)] = [[30, 45], [45, 45]]
        lm[:, list(metrics.LEFT_EYE_CORNERS)] = [[67, 45], [82, 45]]  # IOD 37 px
        out.append({"frames": rng.integers(0, 256, (frames, 112, 112, 3), dtype=np.uint8),
                    "mfcc": rng.normal(size=(frames, 12, 35)).astype(np.float32), "landmarks": lm})
    return out
