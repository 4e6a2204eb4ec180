"""What the page's jobs run: the library's own generation, re-dubbing and judge.

    pipe = Pipeline.load(checkpoint=None)     # the shipped generator and judge, loaded once
    pipe.warmup()                             # compiles them (the first request is then fast)
    pipe.run(job)                             # job.inputs -> job.out_dir/video.mp4, strip.png

A photo job calls `inference.generate.generate_video` and a re-dub job
`inference.redub.redub_video`, with the app's loaded generator and the job's progress callback;
then the judge (`evaluation.sync_expert.score_video`, the shipped sync expert unless `judge` is
given) scores the result: AV offset (frames) and LSE-C. The mouth strip is
`evaluation.report.frame_strip` over the registered lower face of 8 frames spread over the
result: the generated mouth above the photo's own (photo) or below the source video's (re-dub).
"""

import os
import time
from typing import Dict, List, Optional

import numpy as np

from s2v_jax.app.jobs import Job
from s2v_jax.errors import S2VError

STRIP_FRAMES = 8
MOUTH_ROWS = slice(56, 106)  # a square around the mouth in the 112x112 registered crop
MOUTH_COLS = slice(31, 81)
MOUTH_PX = 96  # each frame of the strip, pixels


class Pipeline:
    """A loaded generator and judge, and the two jobs the page runs."""

    def __init__(self, generator, expert, *, checkpoint: Optional[str] = None, judge: Optional[str] = None,
                 max_size: int = 1920, preset: str = "medium"):
        self.generator, self.expert = generator, expert
        self.checkpoint, self.judge = checkpoint, judge
        self.max_size, self.preset = int(max_size), preset

    @classmethod
    def load(cls, checkpoint=None, judge=None, batch_size: int = 64, **kwargs) -> "Pipeline":
        """Loads the generator (a work directory, a step directory, an exported model; None: the shipped
        one) and the judge (None: the shipped one). Raises S2VError for a bad path or checkpoint."""
        from s2v_jax.evaluation.sync_expert import SyncExpert
        from s2v_jax.inference.generator import FrameGenerator

        generator = FrameGenerator.from_checkpoint(None if checkpoint is None else os.fspath(checkpoint),
                                                   batch_size=batch_size)
        expert = SyncExpert.from_checkpoint(judge)
        return cls(generator, expert, checkpoint=checkpoint, judge=judge, **kwargs)

    def describe(self) -> Dict:
        k = self.generator.num_identity_images
        return {"checkpoint": os.fspath(self.checkpoint) if self.checkpoint else "the shipped model",
                "judge": os.fspath(self.judge) if self.judge else "the shipped judge",
                "photos": "1" if k == 1 else f"1 or {k}", "max_size": self.max_size}

    def warmup(self) -> None:
        """Compiles the generator's and the judge's batch functions and starts the face detector."""
        from s2v_jax.faces import detect_faces

        g = self.generator
        windows = np.zeros((1, 12, 35), np.float32)
        crop = np.zeros((1, 112, 112, 3), np.uint8)
        identity = g.encode_identity(crop)
        if g.moves_pixels:
            list(g.flow_batches(windows, identity))
            g.flows(windows, crop)
        else:
            list(g.generate_batches(windows, identity))
        self.expert.clip_embeddings(crop, windows)
        detect_faces(np.zeros((64, 64, 3), np.uint8))

    # ------------------------------------------------------------------ jobs

    def run(self, job: Job) -> None:
        if job.kind == "photo":
            self.photo(job)
        elif job.kind == "redub":
            self.redub(job)
        else:
            raise S2VError(f"unknown job kind {job.kind!r}")

    def photo(self, job: Job) -> None:
        from s2v_jax.inference.generate import generate_video

        images, audio = job.inputs.get("images", []), _one(job, "audio", "a speech file")
        if not images:
            raise S2VError("no photo given: choose one photo with a visible face")
        out = job.out_dir / "video.mp4"
        t0 = time.time()
        r = generate_video(self.generator, [str(p) for p in images], str(audio), str(out), progress=False,
                           preset=self.preset, max_size=self.max_size, on_progress=job.progress)
        self._video_ready(job, r.num_frames, r.width, r.height, time.time() - t0)
        self._finish(job, out, r.num_frames, source=None, still=str(images[0]))

    def redub(self, job: Job) -> None:
        from s2v_jax.inference.redub import redub_video

        video, audio = _one(job, "video", "a video"), _one(job, "audio", "a speech file")
        out = job.out_dir / "video.mp4"
        t0 = time.time()
        r = redub_video(self.generator, str(video), str(audio), str(out), progress=False, preset=self.preset,
                        on_progress=job.progress)
        self._video_ready(job, r.num_frames, None, None, time.time() - t0)
        job.result.update(frames_redubbed=r.frames_redubbed, source_frames=r.num_source_frames)
        self._finish(job, out, r.num_frames, source=(str(video), r.num_source_frames), still=None)

    def _video_ready(self, job: Job, frames: int, width, height, seconds: float) -> None:
        job.result.update(video=f"/jobs/{job.id}/video.mp4", frames=int(frames),
                          seconds_of_video=round(frames / 25.0, 2), generation_s=round(seconds, 2))
        if width:
            job.result.update(width=int(width), height=int(height))
        job.result["video_ready_at"] = time.time()

    def _finish(self, job: Job, out, num_frames: int, source, still) -> None:
        """The judge's scores and the mouth strip of the written video (job stage 'judge')."""
        from s2v_jax.evaluation.sync_expert import score_video

        job.progress("judge", 0, 2)
        t0 = time.time()
        try:
            scores = score_video(self.expert, str(out))
            job.result.update(offset=scores["offset"], lse_c=_num(scores["lse_c"]), lse_d=_num(scores["lse_d"]))
        except S2VError as e:  # the video stands; say why it has no scores
            job.result["judge_error"] = job.clean_message(e)
        job.result["judge_s"] = round(time.time() - t0, 2)
        job.progress("judge", 1, 2)
        try:
            strip = mouth_strip(str(out), num_frames, source=source, still=still)
            _save_png(str(job.out_dir / "strip.png"), strip)
            job.result["strip"] = f"/jobs/{job.id}/strip.png"
        except S2VError as e:
            job.result["strip_error"] = job.clean_message(e)
        job.progress("judge", 2, 2)


def _one(job: Job, field: str, what: str):
    files = job.inputs.get(field, [])
    if len(files) != 1:
        raise S2VError(f"give exactly one {field} file ({what}); got {len(files)}")
    return files[0]


def _num(x) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else round(float(x), 3)


def _save_png(path: str, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise S2VError(f"could not write {path}")


# ------------------------------------------------------------------ mouth strip

def strip_indices(num_frames: int, k: int = STRIP_FRAMES) -> np.ndarray:
    """The frames `report.frame_strip` shows of a clip of `num_frames` (k spread over it)."""
    return np.unique(np.round(np.linspace(0, num_frames - 1, min(k, num_frames))).astype(int))


def _mouth(rgb: np.ndarray) -> np.ndarray:
    """The registered lower face of the largest face in a frame, MOUTH_PX square (grey: no face)."""
    import cv2

    from s2v_jax.errors import NoFaceError
    from s2v_jax.faces import quiet_native_logs, registration

    try:
        with quiet_native_logs():
            crop = registration.align_image(rgb, face_index=0, name="a frame").crop
    except NoFaceError:
        return np.full((MOUTH_PX, MOUTH_PX, 3), 200, np.uint8)
    return cv2.resize(np.ascontiguousarray(crop[MOUTH_ROWS, MOUTH_COLS]), (MOUTH_PX, MOUTH_PX),
                      interpolation=cv2.INTER_CUBIC)


def _frames_at(path: str, indices) -> Dict[int, np.ndarray]:
    """Frames of a video at the given indices (one streaming pass up to the last)."""
    from s2v_jax.media import video

    want, got = set(int(i) for i in indices), {}
    if not want:
        return got
    for t, frame in enumerate(video.iter_frames(path, max_frames=max(want) + 1)):
        if t in want:
            got[t] = frame
    return got


def mouth_strip(result_path: str, num_frames: int, source=None, still: Optional[str] = None) -> np.ndarray:
    """uint8 RGB image: `report.frame_strip` of the mouth of a result of `num_frames` frames at 8 frames
    spread over it, with the source video's mouth at the frames they came from (source = (path, source
    frame count): a re-dub) or the photo's own mouth (still: a photo job) as the other row."""
    from s2v_jax.evaluation import report

    n = int(num_frames)
    idx = strip_indices(n)
    frames = _frames_at(result_path, idx)
    if len(frames) != len(idx):
        raise S2VError(f"the result has {len(frames)} of the frames the strip shows ({idx.tolist()})")
    # frame_strip picks the same frames of full-length arrays; the rows it does not read are never
    # touched, so they cost no memory (np.zeros maps them lazily)
    model = np.zeros((n, MOUTH_PX, MOUTH_PX, 3), np.uint8)
    for i in idx:
        model[i] = _mouth(frames[int(i)])
    rows: List[str] = ["model"]
    other = np.zeros(model.shape, np.uint8)
    if source is not None:
        from s2v_jax.inference.redub import source_indices

        path, num_source = source
        src = source_indices(idx, num_source)
        src_frames = _frames_at(path, src)
        for i, s in zip(idx, src):
            other[i] = _mouth(src_frames[int(s)]) if int(s) in src_frames else _mouth(frames[int(i)])
        rows = ["real", "model"]
    elif still is not None:
        from s2v_jax.faces import registration

        mouth = _mouth(registration.load_image(still))
        other[idx] = mouth
        rows = ["model", "static_baseline"]
    videos = {name: (model if name == "model" else other) for name in report.STRIP_ROWS}
    strip = report.frame_strip(videos, num_frames=STRIP_FRAMES)
    header = strip.shape[0] - len(report.STRIP_ROWS) * MOUTH_PX
    parts = [strip[:header]] + [strip[header + j * MOUTH_PX: header + (j + 1) * MOUTH_PX]
                                for j, name in enumerate(report.STRIP_ROWS) if name in rows]
    return np.ascontiguousarray(np.concatenate(parts, axis=0))
