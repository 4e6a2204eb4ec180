"""Live generation from audio chunks (see `StreamingSession`)."""

import numpy as np

from s2v_jax.errors import S2VError
from s2v_jax.inference.generator import FrameGenerator
from s2v_jax.media import audio as audio_lib
from s2v_jax.media.speech import MFCC_MARGIN_STEPS, cut_windows


class StreamingSession:
    """Live generation: feed audio chunks, get frames back as soon as their
    0.35 s window is complete.

    Latency: frame k (time k / 25 s) uses the 35 MFCC steps centred on step
    4k, so its last step is centred on k/25 + 0.17 s and that step's 25 ms
    analysis window ends 12.5 ms later: the frame is emitted as soon as
    640 k + 2921 samples have been fed (k/25 s + 0.1825 s + 1 sample). The
    look-ahead is therefore 0.1825 s of audio, plus compute time. Frames
    equal those of offline generation: the MFCC is recomputed over a trailing
    segment that starts on a 10 ms step boundary, keeping only steps whose
    analysis window lies inside it.

        session = StreamingSession(gen, gen.encode_identity(crops))
        for chunk in microphone_chunks():       # float32 mono 16 kHz, any size
            show(session.feed(chunk))           # uint8 [n, S, S, 3], possibly n = 0
        show(session.flush())                   # the last frames (window tails silent)
    """

    LOOKAHEAD_SAMPLES = 2921  # frame k needs 640 k + this many samples


    def __init__(self, generator: FrameGenerator, identity, sample_rate: int = audio_lib.SAMPLE_RATE,
                 flows: bool = False):
        """flows=True (a warp generator): feed/flush return each frame's flow, float32 [n, 112, 112, 2]
        (`FrameGenerator.flow_batches`), for `compositing.warp_frame` to move the photo at full size."""
        if sample_rate != audio_lib.SAMPLE_RATE:
            raise S2VError(f"streaming takes {audio_lib.SAMPLE_RATE} Hz mono chunks (got {sample_rate} Hz); resample first")
        self.generator = generator
        self.identity = identity
        self.flows = bool(flows)
        if self.flows:
            generator._need_flow()
        self._buffer = np.zeros(0, np.float32)  # audio from sample self._offset on
        self._offset = 0
        self._next_frame = 0
        self._total = 0

    @staticmethod
    def _samples_needed(frame: int) -> int:
        last_step = int(audio_lib.frame_centre_steps(frame + 1)[-1]) + audio_lib.WINDOW_STEPS // 2
        return last_step * 160 + 200 + 1

    def _windows(self, first: int, last: int, final: bool) -> np.ndarray:
        """MFCC windows of frames first..last-1 from the buffered segment."""
        mfcc = audio_lib.compute_mfcc(self._buffer)
        step0 = self._offset // 160
        half = audio_lib.WINDOW_STEPS // 2
        steps = audio_lib.frame_centre_steps(last)[first:, None] + np.arange(-half, half + 1)[None]  # global
        valid = steps >= 0
        if final:
            valid &= steps < step0 + mfcc.shape[1]
        if self._offset > 0 and (steps[valid] - step0 < MFCC_MARGIN_STEPS).any():
            raise AssertionError("streaming buffer trimmed too far")  # internal invariant
        return cut_windows(mfcc, step0, steps, valid)

    def _emit(self, last: int, final: bool) -> np.ndarray:
        if last <= self._next_frame:
            if self.flows:
                return np.zeros((0, 112, 112, 2), np.float32)
            s = self.generator.output_size
            return np.zeros((0, s, s, 3), np.uint8)
        windows = self._windows(self._next_frame, last, final)
        if self.flows:
            frames = np.concatenate(list(self.generator.flow_batches(windows, self.identity)))
        else:
            frames = self.generator.generate(windows, self.identity)
        self._next_frame = last
        # Keep audio from a step boundary a margin before the next frame's window.
        first_step = int(audio_lib.frame_centre_steps(last + 1)[-1]) - audio_lib.WINDOW_STEPS // 2
        keep_from = max(0, (first_step - MFCC_MARGIN_STEPS) * 160)
        if keep_from > self._offset:
            self._buffer = self._buffer[keep_from - self._offset:]
            self._offset = keep_from
        return frames

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        """Adds mono float audio; returns the frames now complete, uint8 [n, S, S, 3]."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, chunk])
        self._total += chunk.size
        last = self._next_frame
        while self._samples_needed(last) <= self._total:
            last += 1
        last = min(last, audio_lib.num_video_frames(self._total)) if self._total else 0
        return self._emit(last, final=False)

    def flush(self) -> np.ndarray:
        """Ends the stream: the remaining frames (the window tails are silence)."""
        return self._emit(audio_lib.num_video_frames(self._total), final=True)
