"""`generate_video`: stills + speech -> a talking-face mp4 (what `s2v generate` runs)."""

import dataclasses
import os
import time
import warnings
from typing import Callable, Iterator, List, Optional, Union

import numpy as np

from s2v_jax.faces.compositing import face_mask, paste_face, to_crop_size, warp_frame
from s2v_jax.inference.generator import FrameGenerator
from s2v_jax.inference.stills import MAX_SIZE, Stills, register_stills
from s2v_jax.media import audio as audio_lib
from s2v_jax.media.paths import refuse_overwriting_inputs
from s2v_jax.media.speech import iter_audio_windows, load_speech
from s2v_jax.media.video import VideoWriter


def _in_threads(fn, items, ahead: int = 0) -> Iterator:
    """fn(item) for each item, in order, computed by a pool of threads (one per core), at most `ahead`
    (default 4 per thread) results in flight: frames at full resolution stay few in memory."""
    import collections
    import concurrent.futures

    workers = max(1, min(4, os.cpu_count() or 1))
    ahead = ahead or 4 * workers
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="s2v-composite") as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def still_frames(generator: "FrameGenerator", stills: Stills, wav: np.ndarray, *, paste_back: bool = True,
                 mask: str = "face", progress: bool = False) -> Iterator[np.ndarray]:
    """The video's frames in order, uint8: the generated face pasted into the
    first photo ([H, W, 3]) or, with paste_back=False, the bare face [S, S, 3].
    With a warp-only generator (the shipped one) and paste_back, nothing is
    pasted: the predicted flow moves the photo's own pixels at its full
    resolution (`compositing.warp_frame`), so the face keeps the photo's detail.

    num_video_frames(len(wav)) frames; the identity is encoded once, audio
    windows are computed and generated in chunks (memory bounded).
    """
    identity = generator.encode_identity(stills.crops)
    n = audio_lib.num_video_frames(len(wav))
    mask_arr = face_mask(mask) if paste_back else None
    m = stills.faces[0].M
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, unit="frame", desc="generate")
    chunk = generator.batch_size * max(1, 1024 // generator.batch_size)
    full_res = paste_back and generator.moves_pixels
    try:
        if full_res:  # the model's next batch runs while threads move the photo's pixels for this one
            flows = (flow for windows in iter_audio_windows(wav, n, chunk)
                     for batch in generator.flow_batches(windows, identity) for flow in batch)
            for frame in _in_threads(lambda flow: warp_frame(stills.photo, flow, m), flows):
                yield frame
                if bar is not None:
                    bar.update(1)
            return
        for windows in iter_audio_windows(wav, n, chunk):
            for batch in generator.generate_batches(windows, identity):
                for face in batch:
                    yield paste_face(stills.photo, to_crop_size(face), m, mask_arr) if paste_back else face
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


@dataclasses.dataclass
class GenerateResult:
    """What `generate_video` wrote: path, frame count and size, warnings, seconds taken."""

    path: str
    num_frames: int
    width: int
    height: int
    warnings: List[str]
    seconds: float


ProgressCallback = Callable[[str, int, int], None]


def report_progress(on_progress: Optional[ProgressCallback], stage: str, done: int, total: int) -> None:
    """Calls `on_progress(stage, done, total)` where one was given (stage: 'face tracking', 'generation'
    or 'encoding'; done <= total). An exception it raises stops the run (the partial output is removed)."""
    if on_progress is not None:
        on_progress(stage, min(int(done), int(total)), int(total))


def report_frames(on_progress: Optional[ProgressCallback], written: int, total: int, every: int) -> None:
    """'generation' progress after every `every` frames written (a generator batch) and at the last one."""
    if written % every == 0 or written == total:
        report_progress(on_progress, "generation", written, total)


def _image_list(images) -> list:
    if isinstance(images, (str, os.PathLike, np.ndarray)):
        return [images]
    return list(images)


def generate_video(checkpoint: Union[str, os.PathLike, "FrameGenerator"], images, audio_path, out_path, *,
                   paste_back: bool = True, deblur=None, batch_size: int = 64, progress: bool = True,
                   face_index: Optional[int] = None, mask: str = "face", preset: str = "medium",
                   crf: int = 18, max_size: int = MAX_SIZE,
                   on_progress: Optional[ProgressCallback] = None) -> GenerateResult:
    """Stills + speech file -> 25 fps H.264 mp4 with the speech as its sound track.

    checkpoint: a training work directory (best, else latest checkpoint), one
    checkpoint step directory, or a loaded FrameGenerator (then `deblur` and
    `batch_size` are its own). images: 1 or 5 face photos (paths or RGB
    arrays). The video has num_video_frames(audio) frames, so it is as long as
    the audio to within half a frame. Warnings (several faces, small face,
    repeated still, a photo downscaled to `max_size`) are issued with
    `warnings.warn` and returned. on_progress: optional `(stage, done, total)` callback
    (`report_progress`), called as the face is registered, every batch of frames and around the
    end of encoding (the web page's progress bar; the CLI's is `progress`).
    """


    t0 = time.time()
    images = _image_list(images)
    face_mask(mask)  # validate before the slow parts
    for role, path in [("--audio", audio_path)] + [("--image", im) for im in images]:
        refuse_overwriting_inputs(out_path, {role: path})
    wav = load_speech(audio_path)
    writer = VideoWriter(out_path, audio=wav, preset=preset, crf=crf)  # checks the output folder now
    with writer:
        generator = checkpoint if isinstance(checkpoint, FrameGenerator) else FrameGenerator.from_checkpoint(
            None if checkpoint is None else os.fspath(checkpoint), deblur_checkpoint=deblur, batch_size=batch_size)
        report_progress(on_progress, "face tracking", 0, 1)
        stills = register_stills(images, generator.num_identity_images, face_index, max_size=max_size)
        report_progress(on_progress, "face tracking", 1, 1)
        for note in stills.warnings:
            warnings.warn(note, stacklevel=2)
        size = None
        n = audio_lib.num_video_frames(len(wav))
        report_progress(on_progress, "generation", 0, n)  # the first batch takes a while
        for frame in still_frames(generator, stills, wav, paste_back=paste_back, mask=mask, progress=progress):
            size = frame.shape[:2]
            writer.write(frame)
            report_frames(on_progress, writer.num_frames, n, generator.batch_size)
        report_progress(on_progress, "encoding", 0, 1)
    report_progress(on_progress, "encoding", 1, 1)
    return GenerateResult(path=str(writer.path), num_frames=writer.num_frames, width=size[1], height=size[0],
                          warnings=list(stills.warnings), seconds=time.time() - t0)
