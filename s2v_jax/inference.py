"""Checkpoint-based generation: stills + speech -> talking-face video.

Layers, lowest first:

- `FrameGenerator`: a generator checkpoint (and optional deblurring net) with
  jitted, batched inference. The identity still(s) are encoded once; MFCC
  windows go through the audio encoder and decoder in fixed-size batches (the
  last one padded), so each batch size compiles once; the deblurring net runs
  inside the same jitted call. Frames leave the device as uint8.
- `iter_audio_windows`: the 12x35 MFCC windows of a clip, computed in chunks
  (bounded memory for hours of audio; equal to `audio.audio_windows`).
- `register_stills` / `still_frames`: face photos -> registered crops, and the
  frames of a video (the face pasted back into the first photo, or bare).
- `generate_video`: the whole task, used by `s2v generate`.
- `StreamingSession`: live generation from audio chunks (see its docstring).

    gen = FrameGenerator.from_checkpoint("workdirs/tiny")
    ident = gen.encode_identity(crops)            # crops: uint8 [k, 112, 112, 3]
    frames = gen.generate(windows, ident)         # windows: float32 [F, 12, 35]
    generate_video("workdirs/tiny", ["face.jpg"], "speech.wav", "out.mp4")

Still-count policy: a 1-image model takes exactly one still (more is an
error: silently dropping photos would hide a wrong checkpoint); a 5-image model
takes five, or one, which is then repeated five times (the model sees five
copies of the same crop, as `encode_identity` documents). The first image is
the photo the face is pasted back into.

The v201 decoder outputs 109x109 frames covering the same registered face
region as the 112x112 crop (training resizes its 112 targets to 109), so for
pasting they are resized to 112 first (bilinear) and the registration
transform applies unchanged; `--bare` writes the model's own 109x109 frames
(stored as 110x110: H.264 needs even sizes).

Sound track: the speech as the model heard it, 16 kHz mono (decoded with
audio.load_audio), encoded to AAC; a 48 kHz stereo input is not carried
through at full quality.
"""

import dataclasses
import functools
import os
import warnings
from typing import Iterator, List, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from s2v_jax import audio as audio_lib
from s2v_jax.errors import S2VError
from s2v_jax.models import Speech2Vid, build_model, compute_dtype


def _to_uint8(x):
    return (jnp.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(jnp.uint8)


# ---------------------------------------------------------------- fast transposed convs (CPU)
#
# XLA:CPU runs lax.conv_transpose as a convolution over the zero-dilated input,
# a slow generic path (the paper decoder's last 8x8 stride-2 layer takes 60% of
# the frame time at 15 GFLOP/s). The same result comes from one stride-1
# convolution of the undilated input that produces all s*s output phases as
# channels, then depth-to-space. It is used where every phase has the same
# input offset (VALID padding, kernel a multiple of the stride: the 8x8 and
# 4x4 VALID layers), measured 2.1x faster for the 8x8 layer; elsewhere the
# phase kernels would need zero padding and the gain vanishes.

def _tconv_padding(k: int, s: int, padding: str):
    """(before, after) padding of the dilated input, as lax.conv_transpose computes it."""
    if padding == "SAME":
        pad_len = k + s - 2
        pad_a = k - 1 if s > k - 1 else -(-pad_len // 2)
    else:
        pad_len = k + s - 2 + max(k - s, 0)
        pad_a = k - 1
    return pad_a, pad_len - pad_a


def _tconv_phases(n: int, k: int, s: int, padding: str):
    """Output length, per-phase (first tap, input offset, taps) and the union window [start, end]."""
    pa, pb = _tconv_padding(k, s, padding)
    out = s * (n - 1) + 1 + pa + pb - k + 1
    phases = []
    for r in range(s):
        t0 = (pa - r) % s
        phases.append((t0, (r + t0 - pa) // s, len(range(t0, k, s))))
    return out, phases, min(c for _, c, _ in phases), max(c + m - 1 for _, c, m in phases)


def phase_conv_transpose(x, kernel, strides, padding: str):
    """lax.conv_transpose(x, kernel, strides, padding) for NHWC x, HWIO kernel
    (transpose_kernel=False) as one stride-1 conv with s*s*C outputs + depth-to-space."""
    b, h, w, _ = x.shape
    kh, kw, _, co = kernel.shape
    sy, sx = strides
    oy, phy, y0, y1 = _tconv_phases(h, kh, sy, padding)
    ox, phx, x0, x1 = _tconv_phases(w, kw, sx, padding)
    my, mx = y1 - y0 + 1, x1 - x0 + 1
    ly, lx = -(-oy // sy), -(-ox // sx)
    blocks = []
    for ty, cy, ny in phy:
        for tx, cx, nx in phx:
            sub = kernel[ty::sy, tx::sx]
            blocks.append(jnp.pad(sub, ((cy - y0, my - ny - (cy - y0)), (cx - x0, mx - nx - (cx - x0)), (0, 0), (0, 0))))
    wk = jnp.concatenate(blocks, axis=-1)  # [my, mx, Ci, sy * sx * Co]
    lo_y, hi_y = max(0, -y0), max(0, ly - 1 + y1 - (h - 1))
    lo_x, hi_x = max(0, -x0), max(0, lx - 1 + x1 - (w - 1))
    xp = jnp.pad(x, ((0, 0), (lo_y, hi_y), (lo_x, hi_x), (0, 0)))
    xp = xp[:, y0 + lo_y:y0 + lo_y + ly + my - 1, x0 + lo_x:x0 + lo_x + lx + mx - 1]
    y = jax.lax.conv_general_dilated(xp, wk, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(b, ly, lx, sy, sx, co).transpose(0, 1, 3, 2, 4, 5).reshape(b, ly * sy, lx * sx, co)
    return y[:, :oy, :ox]


def _phase_form_pays(k: int, s: int, padding: str) -> bool:
    if s == 1:
        return False
    _, phases, _, _ = _tconv_phases(1, k, s, padding)
    return len({(c, m) for _, c, m in phases}) == 1


def _fast_conv_transpose(next_fun, args, kwargs, context):
    """flax method interceptor: nn.ConvTranspose.__call__ -> phase_conv_transpose where it pays."""
    import flax.linen as nn

    mod = context.module
    if not isinstance(mod, nn.ConvTranspose) or context.method_name != "__call__" or kwargs:
        return next_fun(*args, **kwargs)
    k = tuple(mod.kernel_size)
    strides = tuple(mod.strides) if mod.strides is not None else (1,) * len(k)
    if (len(k) != 2 or mod.transpose_kernel or mod.mask is not None or mod.padding not in ("SAME", "VALID")
            or mod.kernel_dilation not in (None, 1, (1, 1)) or args[0].ndim != 4
            or not all(_phase_form_pays(kk, ss, mod.padding) for kk, ss in zip(k, strides))):
        return next_fun(*args, **kwargs)
    params = mod.variables["params"]
    x, kernel, bias = mod.promote_dtype(args[0], params["kernel"], params.get("bias"), dtype=mod.dtype)
    y = phase_conv_transpose(x, kernel, strides, mod.padding)
    return y if bias is None else y + bias


class FrameGenerator:
    """A generator (and optional deblurring net) with jitted, batched inference."""

    def __init__(self, config, variables, deblur_config=None, deblur_variables=None, batch_size: int = 64,
                 dtype: Optional[str] = None, fast_transposed: Optional[bool] = None):
        if dtype is not None:
            config = config.copy_and_resolve_references()
            config.model.dtype = dtype
            compute_dtype(dtype)  # validates the name
        self.config = config
        self.model: Speech2Vid = build_model(config)
        self.variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
        self.num_identity_images = config.model.num_identity_images
        self.batch_size = int(batch_size)
        self.deblur = None
        if deblur_config is not None:
            if dtype is not None:
                deblur_config = deblur_config.copy_and_resolve_references()
                deblur_config.model.dtype = dtype
            self.deblur = (build_model(deblur_config), {"params": deblur_variables["params"]})
        # Phase-decomposed transposed convs: default on CPU (see phase_conv_transpose).
        self.fast_transposed = jax.default_backend() == "cpu" if fast_transposed is None else bool(fast_transposed)
        self._encode = jax.jit(functools.partial(self.model.apply, method=Speech2Vid.encode_identity))
        self._decode = jax.jit(self._decode_impl)

    @classmethod
    def from_checkpoint(cls, path, deblur_checkpoint=None, batch_size: int = 64, dtype: Optional[str] = None):
        """Loads a training workdir (its best, else latest checkpoint) or one checkpoint directory."""
        from s2v_jax.checkpointing import load_checkpoint_for_inference

        for p, flag in ((path, "--checkpoint"), (deblur_checkpoint, "--deblur")):
            if p and not os.path.exists(p):
                raise S2VError(f"{flag} {p} does not exist; give a training work directory or one of its "
                               "checkpoint step directories")
        config, variables = load_checkpoint_for_inference(path)
        if config.model.name != "speech2vid":
            raise S2VError(f"checkpoint {path} holds a {config.model.name!r} model, not the generator; "
                           "give the generator's workdir as --checkpoint and the deblurring net's as --deblur")
        deblur_config = deblur_variables = None
        if deblur_checkpoint:
            deblur_config, deblur_variables = load_checkpoint_for_inference(deblur_checkpoint)
            if deblur_config.model.name != "deblur":
                raise S2VError(f"--deblur checkpoint {deblur_checkpoint} holds a {deblur_config.model.name!r} "
                               "model, not the deblurring net")
        return cls(config, variables, deblur_config, deblur_variables, batch_size, dtype)

    @property
    def output_size(self) -> int:
        return 109 if self.config.model.decoder == "bilinear" else 112

    def encode_identity(self, crops: np.ndarray):
        """Registered stills uint8 [k, 112, 112, 3] (k = 1 or the model's count) -> cached features.

        With one still for a 5-image model the still is repeated five times.
        """
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        k = self.num_identity_images
        if crops.shape[0] == 1 and k > 1:
            crops = np.repeat(crops, k, axis=0)
        if crops.shape[0] != k or crops.shape[1:] != (112, 112, 3):
            raise S2VError(f"this model takes {k} registered 112x112 still(s); got an array of shape {crops.shape}")
        stacked = np.concatenate(list(crops), axis=-1)[None].astype(np.float32) / 255.0  # [1, 112, 112, 3k]
        return self._encode(self.variables, jnp.asarray(stacked))

    def _decode_impl(self, variables, windows, identity):
        import contextlib

        import flax.linen as nn

        intercept = nn.intercept_methods(_fast_conv_transpose) if self.fast_transposed else contextlib.nullcontext()
        with intercept:
            frames = self.model.apply(variables, windows[..., None], identity,
                                      method=Speech2Vid.generate_from_identity)
        if self.deblur is not None:
            net, _ = self.deblur
            frames = net.apply(self.deblur[1], frames)
        return _to_uint8(frames)

    def generate_batches(self, windows: np.ndarray, identity, progress: bool = False) -> Iterator[np.ndarray]:
        """Yields uint8 frame chunks [<=batch_size, S, S, 3] for MFCC windows [F, 12, 35].

        The next batch is dispatched before the previous one is copied to the
        host, so on an accelerator the device never waits for the consumer.
        """
        windows = np.asarray(windows, np.float32)
        n = windows.shape[0]
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=n, unit="frame", desc="generating")
        bs = self.batch_size
        pending = None  # (device frames, count) of the batch in flight
        for start in range(0, n, bs):
            chunk = windows[start:start + bs]
            m = chunk.shape[0]
            if m < bs:  # pad to the compiled batch size; the padding frames are dropped
                chunk = np.concatenate([chunk, np.zeros((bs - m,) + chunk.shape[1:], np.float32)])
            out = self._decode(self.variables, jnp.asarray(chunk), identity)
            if pending is not None:
                yield self._fetch(*pending, bar)
            pending = (out, m)
        if pending is not None:
            yield self._fetch(*pending, bar)
        if bar is not None:
            bar.close()

    @staticmethod
    def _fetch(out, m, bar):
        frames = np.asarray(out)[:m]
        if bar is not None:
            bar.update(m)
        return frames

    def generate(self, windows: np.ndarray, identity, progress: bool = False) -> np.ndarray:
        """All frames at once: uint8 [F, S, S, 3]."""
        chunks = list(self.generate_batches(windows, identity, progress))
        if not chunks:
            s = self.output_size
            return np.zeros((0, s, s, 3), np.uint8)
        return np.concatenate(chunks)


# ---------------------------------------------------------------- audio

def load_speech(path) -> np.ndarray:
    """Speech for generation: float32 mono 16 kHz [N]; MediaError if unreadable, empty or silent."""
    wav = audio_lib.load_audio(path)
    audio_lib.check_not_silent(wav, path)
    return wav


_MFCC_MARGIN_STEPS = 3  # MFCC steps at a segment's start that see its cut (pre-emphasis, padding)


def cut_windows(mfcc: np.ndarray, step0: int, steps: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Windows [F, 12, 35] from the MFCC [12, T] of a segment whose column 0 is global
    step `step0`; `steps` [F, 35] are global steps, and invalid ones (outside the clip) are silence."""
    local = np.clip(steps - step0, 0, mfcc.shape[1] - 1)
    win = np.where(valid[None], mfcc[:, local], np.float32(0.0))
    return np.ascontiguousarray(win.transpose(1, 0, 2))


def iter_audio_windows(wav: np.ndarray, num_frames: Optional[int] = None,
                       chunk_frames: int = 1024) -> Iterator[np.ndarray]:
    """MFCC windows of 16 kHz mono audio, `chunk_frames` video frames at a time: [<=chunk, 12, 35].

    Concatenated, the chunks equal `audio.audio_windows(wav, num_frames)` (to
    float rounding): each chunk's MFCC is computed on an audio segment that
    starts on a 10 ms step boundary a few steps before its first window and
    ends after its last one, so memory stays bounded for any clip length.
    Frames past the end of the audio get silence windows (zeros), as there.
    """
    wav = np.asarray(wav, np.float32).reshape(-1)
    n = wav.size
    if num_frames is None:
        num_frames = audio_lib.num_video_frames(n)
    hop, half = 160, audio_lib.WINDOW_STEPS // 2
    total_steps = 1 + n // hop  # columns of compute_mfcc over the whole clip
    offsets = np.arange(-half, half + 1)
    for f0 in range(0, num_frames, chunk_frames):
        f1 = min(num_frames, f0 + chunk_frames)
        idx = audio_lib.frame_centre_steps(f1)[f0:, None] + offsets[None]  # global steps [m, 35]
        valid = (idx >= 0) & (idx < total_steps)
        if not valid.any():
            yield np.zeros((f1 - f0, audio_lib.NUM_COEFFS, audio_lib.WINDOW_STEPS), np.float32)
            continue
        lo, hi = int(idx[valid].min()), int(idx[valid].max())
        step0 = max(0, lo - _MFCC_MARGIN_STEPS)
        a, b = step0 * hop, min(n, (hi + _MFCC_MARGIN_STEPS) * hop + 201)
        yield cut_windows(audio_lib.compute_mfcc(wav[a:b]), step0, idx, valid)


# ---------------------------------------------------------------- stills

@dataclasses.dataclass
class Stills:
    """Registered identity stills. faces: one `registration.AlignedFace` per
    image given; photo: RGB uint8 [H, W, 3] of the first image (the paste
    target); crops: uint8 [k, 112, 112, 3] as the model takes them (k = its
    image count); warnings: notes for a person."""

    faces: list
    photo: np.ndarray
    crops: np.ndarray
    warnings: List[str]


ImageLike = Union[str, os.PathLike, np.ndarray]


def register_stills(images: Sequence[ImageLike], num_identity_images: int,
                    face_index: Optional[int] = None) -> Stills:
    """Detects and registers the face of every image (path or RGB array).

    A model of k images takes k images, or 1 that is repeated k times (see
    the module docstring). Raises NoFaceError naming the file without a face.
    """
    from s2v_jax import registration

    images = list(images)
    k = int(num_identity_images)
    if not images:
        raise S2VError("no face image given; pass one (or five, for a 5-image model) with --image")
    if len(images) not in (1, k):
        raise S2VError(f"this checkpoint's model takes {k} identity image(s) (or 1, repeated); got "
                       f"{len(images)}. Pass {'one --image' if k == 1 else 'one or five --image'}")
    faces, notes, photo = [], [], None
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            name = os.fspath(image)
            rgb = registration.load_image(name)
        else:
            name = f"image {i}"
            rgb = np.asarray(image)
        face = registration.align_image(rgb, face_index=face_index, name=name)
        faces.append(face)
        notes += face.warnings
        if photo is None:
            from s2v_jax import faces as faces_lib
            photo = faces_lib.to_rgb(rgb, name=name)
    crops = np.stack([f.crop for f in faces])
    if len(faces) == 1 and k > 1:
        notes.append(f"one image for a {k}-image model: its crop is repeated {k} times")
        crops = np.repeat(crops, k, axis=0)
    return Stills(faces=faces, photo=photo, crops=crops, warnings=notes)


def to_crop_size(face: np.ndarray, size: int = 112) -> np.ndarray:
    """A generated face [S, S, 3] on the registered crop grid [size, size, 3].

    The v201 109x109 output covers the same region as the 112 crop, so a
    bilinear resize (pixel-centre aligned, as cv2 does) puts it on that grid.
    """
    if face.shape[0] == size:
        return face
    import cv2
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)


def face_mask(kind: str = "face"):
    """The crop-space paste mask [112, 112]: 'face' (the whole generated crop
    less a 4 px border) or 'lower' (from just below the eyes down, as re-dubbing)."""
    from s2v_jax import registration
    if kind == "face":
        return registration.full_face_mask()
    if kind == "lower":
        return registration.lower_face_mask()
    raise S2VError(f"mask must be 'face' or 'lower', not {kind!r}")


def paste_face(image: np.ndarray, face: np.ndarray, m: np.ndarray, mask: np.ndarray,
               blend: str = "poisson", pad: int = 8, max_scale: float = 1.5) -> np.ndarray:
    """`registration.paste_back` on the region around the face: a new uint8
    [H, W, 3] image, equal to `image` wherever the warped mask is 0.

    Only a face-sized region is warped and blended, so the cost does not grow
    with the frame size. Where the face is drawn larger than `max_scale` image
    px per crop px (a 112 px face pasted over 700 px of a portrait), the
    Poisson blend runs on the region downscaled to `max_scale` (it holds no
    more detail than that: the face is 112 px) and is upscaled back, mixed in
    with the warped feathered mask; otherwise the cost grows with the face's
    area (0.7 s per frame for a 980 px portrait instead of 0.03 s).
    """
    import cv2

    from s2v_jax import registration

    h, w = image.shape[:2]
    ys, xs = np.nonzero(mask > 0)
    if ys.size == 0:
        return image.copy()
    m = np.asarray(m, np.float64)
    corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.min()], [xs.min(), ys.max() + 1],
                        [xs.max() + 1, ys.max() + 1]], np.float64)
    pts = registration.transform_points(registration.invert_similarity(m), corners)
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + pad, [w, h])
    out = image.copy()
    if x1 - x0 < 4 or y1 - y0 < 4:  # the face lies outside the frame
        return out
    m_roi = m.copy()
    m_roi[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # ROI pixel -> crop pixel
    roi = np.ascontiguousarray(image[y0:y1, x0:x1])
    scale = 1.0 / np.sqrt(abs(np.linalg.det(m[:, :2])))  # image px per crop px
    if scale <= max_scale:
        out[y0:y1, x0:x1] = registration.paste_back(roi, face, m_roi, mask, blend=blend)
        return out
    f = max_scale / scale
    rh, rw = roi.shape[:2]
    sw, sh = max(4, round(rw * f)), max(4, round(rh * f))
    small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = rw / sw, rh / sh  # small pixel centre p -> ROI (p + 0.5) * f - 0.5
    to_roi = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5]])
    m_small = np.concatenate([m_roi[:, :2] @ to_roi[:, :2], (m_roi[:, :2] @ to_roi[:, 2] + m_roi[:, 2])[:, None]],
                             axis=1)
    blended = registration.paste_back(small, face, m_small, mask, blend=blend)
    up = cv2.resize(blended, (rw, rh), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(np.asarray(mask, np.float32), registration.invert_similarity(m_roi), (rw, rh),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    out[y0:y1, x0:x1] = cv2.blendLinear(up, roi, alpha, 1.0 - alpha)  # exactly roi where alpha is 0
    return out


def still_frames(generator: "FrameGenerator", stills: Stills, wav: np.ndarray, *, paste_back: bool = True,
                 mask: str = "face", progress: bool = False) -> Iterator[np.ndarray]:
    """The video's frames in order, uint8: the generated face pasted into the
    first photo ([H, W, 3]) or, with paste_back=False, the bare face [S, S, 3].

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
    try:
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


def _image_list(images) -> list:
    if isinstance(images, (str, os.PathLike, np.ndarray)):
        return [images]
    return list(images)


def generate_video(checkpoint: Union[str, os.PathLike, "FrameGenerator"], images, audio_path, out_path, *,
                   paste_back: bool = True, deblur=None, batch_size: int = 64, progress: bool = True,
                   face_index: Optional[int] = None, mask: str = "face", preset: str = "medium",
                   crf: int = 18) -> GenerateResult:
    """Stills + speech file -> 25 fps H.264 mp4 with the speech as its sound track.

    checkpoint: a training work directory (best, else latest checkpoint), one
    checkpoint step directory, or a loaded FrameGenerator (then `deblur` and
    `batch_size` are its own). images: 1 or 5 face photos (paths or RGB
    arrays). The video has num_video_frames(audio) frames, so it is as long as
    the audio to within half a frame. Warnings (several faces, small face,
    repeated still) are issued with `warnings.warn` and returned.
    """
    import time

    from s2v_jax.video import VideoWriter

    t0 = time.time()
    images = _image_list(images)
    face_mask(mask)  # validate before the slow parts
    wav = load_speech(audio_path)
    writer = VideoWriter(out_path, audio=wav, preset=preset, crf=crf)  # checks the output folder now
    with writer:
        generator = checkpoint if isinstance(checkpoint, FrameGenerator) else FrameGenerator.from_checkpoint(
            os.fspath(checkpoint), deblur_checkpoint=deblur, batch_size=batch_size)
        stills = register_stills(images, generator.num_identity_images, face_index)
        for note in stills.warnings:
            warnings.warn(note, stacklevel=2)
        size = None
        for frame in still_frames(generator, stills, wav, paste_back=paste_back, mask=mask, progress=progress):
            size = frame.shape[:2]
            writer.write(frame)
    return GenerateResult(path=str(writer.path), num_frames=writer.num_frames, width=size[1], height=size[0],
                          warnings=list(stills.warnings), seconds=time.time() - t0)


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


    def __init__(self, generator: FrameGenerator, identity, sample_rate: int = audio_lib.SAMPLE_RATE):
        if sample_rate != audio_lib.SAMPLE_RATE:
            raise S2VError(f"streaming takes {audio_lib.SAMPLE_RATE} Hz mono chunks (got {sample_rate} Hz); resample first")
        self.generator = generator
        self.identity = identity
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
        if self._offset > 0 and (steps[valid] - step0 < _MFCC_MARGIN_STEPS).any():
            raise AssertionError("streaming buffer trimmed too far")  # internal invariant
        return cut_windows(mfcc, step0, steps, valid)

    def _emit(self, last: int, final: bool) -> np.ndarray:
        if last <= self._next_frame:
            s = self.generator.output_size
            return np.zeros((0, s, s, 3), np.uint8)
        windows = self._windows(self._next_frame, last, final)
        frames = self.generator.generate(windows, self.identity)
        self._next_frame = last
        # Keep audio from a step boundary a margin before the next frame's window.
        first_step = int(audio_lib.frame_centre_steps(last + 1)[-1]) - audio_lib.WINDOW_STEPS // 2
        keep_from = max(0, (first_step - _MFCC_MARGIN_STEPS) * 160)
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


__all__: Sequence[str] = ["FrameGenerator", "StreamingSession", "Stills", "GenerateResult", "generate_video",
                           "cut_windows", "face_mask", "iter_audio_windows", "load_speech", "paste_face", "register_stills", "still_frames",
                           "to_crop_size"]
