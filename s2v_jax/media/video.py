"""Video input and output through the ffmpeg binary shipped with imageio_ffmpeg.

- `probe` reads a file's size, frame rate, duration and whether it has sound
  from `ffmpeg -i` (no ffprobe is shipped); it never decodes the video.
- `iter_frames` streams uint8 RGB frames [H, W, 3] from an ffmpeg pipe, one at
  a time, resampled to `fps` by ffmpeg's `fps` filter whatever the source rate
  (frame k is the source picture shown at time k / fps). Only one frame is in
  memory; the ffmpeg process is killed and reaped when the consumer stops.
  `start_frame` is applied after the rate change (`trim` filter), so frame
  numbers mean the same with or without it; frames before it are decoded and
  dropped, exact rather than fast.
- `VideoWriter` streams frames into ffmpeg's stdin and writes H.264 mp4
  (libx264, yuv420p, +faststart, CRF 18) with optional AAC sound.

Odd frame sizes: yuv420p stores colour at half resolution, so libx264 needs
even width and height. Odd frames get one extra row/column repeating the last
one (no black line, nothing cropped); the file is (H + H % 2) x (W + W % 2).
yuv444p would keep odd sizes but many players (browsers, QuickTime) refuse it.

Length: the audio is muxed whole and never cut (no `-shortest`); the frame
count is the caller's, and `audio.num_video_frames(len(audio))` frames make a
file as long as the audio to within half a frame. The writer warns when the
two differ by more than one frame. The audio goes to ffmpeg as a temporary
16-bit wav and is encoded to AAC (whose 1024-sample frames the mp4 edit list
trims, so the sound keeps its exact length).
"""

import dataclasses
import math
import os
import pathlib
import re
import subprocess
import tempfile
import warnings
from fractions import Fraction
from typing import Iterable, Iterator, List, Optional

import numpy as np

from s2v_jax.errors import MediaError
from s2v_jax.media.paths import check_writable_folder
from s2v_jax.media.audio import (
    SAMPLE_RATE,
    VIDEO_FPS,
    check_media_file,
    ffmpeg_error_line,
    ffmpeg_exe,
    load_audio,
    num_video_frames,
)

_PROBE_TIMEOUT_S = 60


@dataclasses.dataclass
class VideoInfo:
    """What `ffmpeg -i` says about a video file.

    width, height: decoded frame size after rotation metadata is applied (ffmpeg
    auto-rotates). fps: the stream's frame rate. num_frames: round(duration * fps),
    an estimate (containers do not store an exact count). duration: seconds.
    """

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool


def _rate(text: str) -> float:
    """'25' / '29.97' / '1k' -> float."""
    return float(text[:-1]) * 1000.0 if text.endswith("k") else float(text)


def probe(path) -> VideoInfo:
    """Read a video's geometry, rate, duration and audio presence (no decoding).

    Raises MediaError for a missing, empty, truncated or unreadable file, or one
    with no video stream.
    """
    p = check_media_file(path, "video")
    try:
        res = subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(p)],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise MediaError(f"reading the header of {p} took over {_PROBE_TIMEOUT_S} s; the file may be damaged") from None
    err = res.stderr.decode("utf-8", "replace")
    # With no output file ffmpeg always exits 1; a readable input shows an "Input #0" block.
    if "Input #0" not in err:
        raise MediaError(
            f"could not read video {p} ({ffmpeg_error_line(err)}); the file is corrupt, truncated "
            "or not a video: re-export or re-download it"
        )
    streams = [ln for ln in err.splitlines() if re.match(r"\s*Stream #0:\d+", ln)]
    video = [ln for ln in streams if ": Video:" in ln and "attached pic" not in ln]
    if not video:
        raise MediaError(f"{p} has no video stream; give a video file (mp4, avi, mpg, mov, ...)")
    vline = video[0].split(": Video:", 1)[1]
    size = re.search(r"(?<![\w.])(\d{2,5})x(\d{2,5})(?![\w.])", vline)
    if not size:
        raise MediaError(f"could not read the frame size of {p} from ffmpeg's output; the file may be damaged")
    width, height = int(size.group(1)), int(size.group(2))
    rot = re.search(r"rotation of (-?[\d.]+) degrees", err)
    if rot and round(abs(float(rot.group(1)))) % 180 == 90:
        width, height = height, width  # ffmpeg auto-rotates decoded frames
    rate = re.search(r"([\d.]+k?) fps", vline) or re.search(r"([\d.]+k?) tbr", vline)
    fps = _rate(rate.group(1)) if rate else VIDEO_FPS
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", err)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    return VideoInfo(
        path=str(p), width=width, height=height, fps=fps,
        num_frames=int(math.floor(duration * fps + 0.5)), duration=duration,
        has_audio=any(": Audio:" in ln for ln in streams),
    )  # fmt: skip


def _fps_arg(fps: float) -> str:
    """A frame rate as the exact ratio ffmpeg parses ('25/1', '30000/1001' for 29.97...)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    fr = Fraction(fps).limit_denominator(1001)
    return f"{fr.numerator}/{fr.denominator}"


def _stop(proc: subprocess.Popen) -> None:
    """Kill ffmpeg if still running and reap it (no zombie, no open pipes)."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _read_log(log) -> str:
    log.seek(0)
    return log.read().decode("utf-8", "replace")


def iter_frames(path, fps: float = VIDEO_FPS, start_frame: int = 0, max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """Stream a video's frames as uint8 RGB [H, W, 3], resampled to `fps`.

    Yields frames start_frame, start_frame+1, ... of the `fps`-rate sequence, at
    most `max_frames` of them. The file is probed here (errors surface at the
    call, not at the first next()); decoding starts at the first next().
    """
    return _open_frames(probe(path), fps, start_frame, max_frames)


def _open_frames(info: VideoInfo, fps, start_frame, max_frames) -> Iterator[np.ndarray]:
    """iter_frames for an already probed file."""
    if start_frame < 0 or (max_frames is not None and max_frames < 0):
        raise ValueError(f"start_frame and max_frames must be >= 0 (got {start_frame}, {max_frames})")
    w, h = info.width, info.height
    # scale=w:h is a no-op for a correct probe and guarantees the byte count per frame.
    vf = f"fps={_fps_arg(fps)},scale={w}:{h}"
    if start_frame:
        vf += f",trim=start_frame={int(start_frame)},setpts=PTS-STARTPTS"
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", info.path,
           "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf]  # fmt: skip
    if max_frames is not None:
        cmd += ["-frames:v", str(int(max_frames))]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    return _frame_stream(cmd, info.path, h, w, max_frames)


def _frame_stream(cmd, path, h, w, max_frames) -> Iterator[np.ndarray]:
    if max_frames == 0:
        return
    frame_bytes = h * w * 3
    # stderr goes to a file: an unread pipe could fill and stall ffmpeg.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, bufsize=frame_bytes)
        count = 0
        try:
            while True:
                buf = proc.stdout.read(frame_bytes)
                if len(buf) < frame_bytes:
                    break
                count += 1
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            if proc.wait() != 0 and count == 0:
                msg = ffmpeg_error_line(_read_log(log))
                raise MediaError(f"could not decode frames from {path} ({msg}); the file may be corrupt")
        finally:
            _stop(proc)  # also runs on close()/garbage collection when the consumer stops early


def read_frames(path, fps: float = VIDEO_FPS, start_frame: int = 0, max_frames: Optional[int] = None) -> np.ndarray:
    """All (or `max_frames`) frames of a short clip: uint8 [T, H, W, 3]. Use iter_frames for long videos."""
    info = probe(path)
    frames = list(_open_frames(info, fps, start_frame, max_frames))
    if not frames:
        return np.zeros((0, info.height, info.width, 3), np.uint8)
    return np.stack(frames)


def extract_audio(video_path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The video's sound as float32 mono [N] at `sample_rate` (see audio.load_audio)."""
    return load_audio(video_path, sample_rate)


_TEMP_RE = re.compile(r"^\..+\.(?:partial|audio)(\d+)\.(?:mp4|wav)$")  # VideoWriter's temporaries


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder) -> List[str]:
    """Removes the partial outputs and temporary audio (`.NAME.partialPID.mp4`, `.NAME.audioPID.wav`) that
    writers of processes no longer running left in `folder` (a kill -9, a power cut); returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


class VideoWriter:
    """Write uint8 RGB frames to an H.264 mp4, optionally with sound.

    VideoWriter(path, fps=25, audio=None, sample_rate=16000, crf=18, preset="medium"):
    `audio` is a float mono array at `sample_rate` or a path of any audio/video
    file; crf and preset are libx264's (18 is visually lossless; "veryfast"
    halves encoding time for a slightly larger file). ffmpeg
    starts at the first write (the frame size is known then); the file appears
    at `path` only when close() succeeds (written under a temporary name first).
    Use as a context manager: an exception inside the block discards the file.
    """

    def __init__(
        self, path, fps: float = VIDEO_FPS, audio=None, sample_rate: int = SAMPLE_RATE, crf: int = 18, preset: str = "medium"
    ):
        self.path = pathlib.Path(path)
        check_writable_folder(self.path)
        remove_stale_temporaries(self.path.parent)
        self.fps, self.crf, self.preset = float(fps), int(crf), preset
        self.sample_rate = int(sample_rate)
        if audio is not None and isinstance(audio, (str, os.PathLike)):
            audio = load_audio(audio, self.sample_rate)
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim != 1 or audio.size == 0:
                raise MediaError(f"audio for {self.path} must be a non-empty mono array [N], got shape {audio.shape}")
        self.audio = audio
        self.num_frames = 0
        self._size = None  # (H, W) of the input frames
        self._proc = None
        self._log = None
        self._wav = None
        self._tmp_out = self.path.with_name(f".{self.path.stem}.partial{os.getpid()}.mp4")
        self._closed = False

    def _start(self, h: int, w: int) -> None:
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w + w % 2}x{h + h % 2}",
               "-framerate", _fps_arg(self.fps), "-i", "-"]  # fmt: skip
        if self.audio is not None:
            import soundfile

            # Next to the output, named by this process: removed on close or abort, and by
            # remove_stale_temporaries after a kill -9 (never left in the system temp folder).
            wav = str(self.path.with_name(f".{self.path.stem}.audio{os.getpid()}.wav"))
            self._wav = wav
            soundfile.write(wav, np.clip(self.audio, -1.0, 1.0), self.sample_rate, subtype="PCM_16")
            cmd += ["-i", wav, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "96k"]
        cmd += ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", "-f", "mp4", str(self._tmp_out)]  # fmt: skip
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 RGB frame [H, W, 3]; every frame must have the first one's size."""
        if self._closed:
            raise MediaError(f"VideoWriter for {self.path} is already closed")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise MediaError(
                f"frames for {self.path} must be uint8 RGB [H, W, 3], got {frame.dtype} {frame.shape}; "
                "convert with (x * 255).round().astype(np.uint8)"
            )
        h, w = frame.shape[:2]
        if self._size is None:
            self._size = (h, w)
            self._start(h, w)
        elif (h, w) != self._size:
            raise MediaError(
                f"frame {self.num_frames} for {self.path} is {w}x{h}, but the video is "
                f"{self._size[1]}x{self._size[0]}; all frames must have one size"
            )
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError):
            self._proc.wait()
            msg = ffmpeg_error_line(_read_log(self._log))
            self._abort()
            raise MediaError(f"ffmpeg stopped while writing {self.path} ({msg})") from None
        self.num_frames += 1

    def close(self) -> None:
        """Finish encoding, mux the audio and move the file into place."""
        if self._closed:
            return
        if self._proc is None:
            self._abort()
            raise MediaError(f"no frames were written to {self.path}; a video needs at least one frame")
        self._proc.stdin.close()
        rc = self._proc.wait()
        if rc != 0:
            msg = ffmpeg_error_line(_read_log(self._log))
            self._abort()
            raise MediaError(f"ffmpeg failed to write {self.path} ({msg})")
        os.replace(self._tmp_out, self.path)
        if self.audio is not None:
            want = num_video_frames(len(self.audio), self.sample_rate, self.fps)
            if abs(want - self.num_frames) > 1:
                warnings.warn(
                    f"{self.path}: {self.num_frames} frames but the audio lasts {want} frames; "
                    "the shorter stream ends early", stacklevel=2,
                )  # fmt: skip
        self._cleanup()

    def _abort(self) -> None:
        """Stop ffmpeg and remove the partial output."""
        if self._proc is not None:
            _stop(self._proc)
        self._tmp_out.unlink(missing_ok=True)
        self._cleanup()

    def _cleanup(self) -> None:
        self._closed = True
        if self._wav:
            pathlib.Path(self._wav).unlink(missing_ok=True)
            self._wav = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __del__(self):
        # Dropped without close(): stop ffmpeg rather than leave it waiting on stdin.
        try:
            if not self._closed:
                self._abort()
        except Exception:
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def write_video(
    path, frames: Iterable[np.ndarray], fps: float = VIDEO_FPS, audio=None, sample_rate: int = SAMPLE_RATE,
    crf: int = 18, preset: str = "medium",
) -> pathlib.Path:  # fmt: skip
    """Write frames (uint8 [T, H, W, 3] array or any iterable of [H, W, 3]) to an mp4; returns the path."""
    with VideoWriter(path, fps=fps, audio=audio, sample_rate=sample_rate, crf=crf, preset=preset) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path
