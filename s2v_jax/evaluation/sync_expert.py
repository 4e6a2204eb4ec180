"""A trained sync expert as a judge: jitted, batched per-frame embeddings of
whole clips and their SyncNet scores (AV offset, LSE-D, LSE-C).

    expert = SyncExpert.default()                 # the judge shipped in the package
    scores = score_video(expert, "talk.mp4")       # {'offset', 'lse_d', 'lse_c', ...}

AV offset sign: if the sound comes k frames late (audio delayed by k frames
against the picture), the offset is +k."""

import functools
import os
import time
from typing import Any, Dict

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from s2v_jax import assets
from s2v_jax.data.sync_inputs import audio_input, frame_indices, resize_crops, video_input
from s2v_jax.evaluation import metrics
from s2v_jax.errors import DataError, NoFaceError, TrainingError
from s2v_jax.models.syncnet import SyncNet, build_syncnet, input_shapes
from s2v_jax.train import export
from s2v_jax.train.checkpointing import load_checkpoint
from s2v_jax.train.judge import load_judge


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
        """Loads a `s2v train-sync` work directory (best, else latest checkpoint), one step directory
        or an exported model (`s2v export`); None: the judge shipped in the package."""
        if path is None:
            return cls.default(batch_size)
        path = os.fspath(path)
        if export.is_exported(path):  # what the package ships: the one judge loader
            config, variables = load_judge(path)
        else:
            config, variables = load_checkpoint(path, tasks=("sync",),
                                                hint="give a sync expert (configs/syncnet_real.py) or omit it")
        return cls(config, variables, batch_size)

    @classmethod
    def default(cls, batch_size: int = 64) -> "SyncExpert":
        """The evaluation judge shipped in the package (s2v_jax/assets/sync_expert, see its MODEL_CARD.md);
        no generator trains against it (s2v_jax.train.judge)."""
        path = assets.SYNC_EXPERT
        if not export.is_exported(path):
            raise TrainingError(f"no sync expert is shipped in this installation ({assets.SYNC_EXPERT} is missing); "
                                "pass a judge trained with configs/syncnet_real.py")
        return cls.from_checkpoint(path, batch_size)

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
        """{'lse_d', 'lse_c', 'av_offset', 'distances'} of a clip (see evaluation.metrics.lse_scores):
        av_offset in frames, positive = audio late; distances per offset -max_offset..max_offset."""
        v, a = self.clip_embeddings(crops, mfcc_windows)
        dist = metrics.sync_distances(v, a, max_offset, edge)
        out = metrics.lse_scores(dist, max_offset)
        # per AV offset -max_offset..max_offset (positive = audio late), as av_offset counts
        out["distances"] = [float(d) if np.isfinite(d) else None for d in dist[::-1]]
        return out


SPEAKER_MIN_FRAMES = 25  # tracks shorter than 1 s are not candidates for the speaking face


def score_video(expert: SyncExpert, video_path, audio_path=None, max_offset: int = 15,
                progress: bool = False, track: str = "speaker") -> Dict[str, Any]:
    """The judge's scores of one face track of a video, with its own sound or `audio_path`'s
    (from the video's first frame): {'offset', 'lse_d', 'lse_c', 'distances', 'track', 'frames'}.

    track: 'speaker' (default): every track of 1 s or more is scored and the one with the
    highest LSE-C is reported, the judge as active-speaker detector (as SyncNet is used to
    find the speaker in LRS2); 'largest': the largest face, whoever speaks. 'track' in the
    result lists every candidate's LSE-C."""
    from s2v_jax.faces.preprocess import TrackExtractor
    from s2v_jax.faces import largest_track, quiet_native_logs
    from s2v_jax.media import audio, video

    if track not in ("speaker", "largest"):
        raise ValueError(f"track must be 'speaker' or 'largest', not {track!r}")
    video_path = os.fspath(video_path)
    audio.check_media_file(video_path, "video")
    if audio_path is None:
        info = video.probe(video_path)
        if not info.has_audio:
            raise DataError(f"{video_path} has no audio track: give the speech with --audio")
        audio_path = video_path
    else:
        audio.check_media_file(audio_path, "audio")
    wav = audio.load_audio(audio_path)
    audio.check_not_silent(wav, audio_path)
    t0 = time.perf_counter()
    with quiet_native_logs():
        extractor = TrackExtractor(video_path, 5, None, progress)
        tracks = extractor.run()
    t_track = time.perf_counter() - t0
    largest = largest_track(tracks)
    if largest is None:
        raise NoFaceError(f"{video_path}: no face track of 5 frames or more "
                          f"({extractor.no_face_reason() or 'no face found'}); the judge scores a visible face")
    windows = audio.mfcc_windows(audio.compute_mfcc(wav), extractor.num_frames)
    candidates = [largest]
    if track == "speaker":
        candidates = [t for t in tracks if len(t) >= SPEAKER_MIN_FRAMES] or [largest]
    t0 = time.perf_counter()
    scored = []
    for t in candidates:
        start, end = int(t.start_frame), int(t.end_frame)
        crops = np.asarray(t.crops[:end - start])
        scored.append((t, expert.sync_scores(crops, windows[start:start + len(crops)], max_offset), len(crops)))
    t_judge = time.perf_counter() - t0
    lse = lambda s: -np.inf if s["lse_c"] is None or not np.isfinite(s["lse_c"]) else s["lse_c"]  # noqa: E731
    chosen, scores, n = max(scored, key=lambda x: lse(x[1]))
    start = int(chosen.start_frame)
    return {"seconds": {"face_tracking": round(t_track, 3), "judge": round(t_judge, 3)},
            "offset": scores["av_offset"], "lse_d": scores["lse_d"], "lse_c": scores["lse_c"],
            "distances": scores["distances"], "max_offset": int(max_offset),
            "track": {"start_frame": start, "end_frame": start + n, "faces_tracked": len(tracks),
                      "selection": track, "is_largest": chosen is largest,
                      "candidates": [{"start_frame": int(t.start_frame), "end_frame": int(t.start_frame) + m,
                                      "lse_c": s["lse_c"]} for t, s, m in scored]},
            "frames": int(extractor.num_frames)}
