"""`FrameGenerator`: a generator checkpoint (and optional deblurring net) with
jitted, batched inference.

The identity still(s) are encoded once; MFCC windows go through the audio
encoder and decoder in fixed-size batches (the last one padded), so each batch
size compiles once; the deblurring net runs inside the same jitted call.
Frames leave the device as uint8. The transposed convolutions are
`model.conv_transpose`'s ('auto': the phase form on CPU, see
`s2v_jax.models.conv_transpose`).

    gen = FrameGenerator.from_checkpoint("workdirs/tiny")
    ident = gen.encode_identity(crops)            # crops: uint8 [k, 112, 112, 3]
    frames = gen.generate(windows, ident)         # windows: float32 [F, 12, 35]

The v201 decoder outputs 109x109 frames covering the same registered face
region as the 112x112 crop (training resizes its 112 targets to 109).
"""

import functools
import os
from typing import Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np

from s2v_jax.errors import S2VError
from s2v_jax.models import Speech2Vid, build_model, compute_dtype
from s2v_jax.models.conv_transpose import CHOICES as CONV_TRANSPOSE_CHOICES
from s2v_jax.train.checkpointing import load_checkpoint


def _to_uint8(x):
    return (jnp.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(jnp.uint8)


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """x with zero rows appended up to n (the compiled batch size; callers drop the padding)."""
    if len(x) >= n:
        return x
    return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], x.dtype)])


class FrameGenerator:
    """A generator (and optional deblurring net) with jitted, batched inference."""

    def __init__(self, config, variables, deblur_config=None, deblur_variables=None, batch_size: int = 64,
                 dtype: Optional[str] = None, conv_transpose: Optional[str] = None):
        if dtype is not None or conv_transpose is not None:
            config = config.copy_and_resolve_references()
        if dtype is not None:
            config.model.dtype = dtype
            compute_dtype(dtype)  # validates the name
        if conv_transpose is not None:
            if conv_transpose not in CONV_TRANSPOSE_CHOICES:
                raise S2VError(f"conv_transpose must be one of {CONV_TRANSPOSE_CHOICES}, not {conv_transpose!r}")
            config.model.conv_transpose = conv_transpose
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
        self._encode = jax.jit(functools.partial(self.model.apply, method=Speech2Vid.encode_identity))
        self._decode = jax.jit(self._decode_impl)
        self._flows = jax.jit(self._flows_impl)
        self._flow_decode = jax.jit(self._flow_decode_impl)

    @classmethod
    def from_checkpoint(cls, path, deblur_checkpoint=None, batch_size: int = 64, dtype: Optional[str] = None):
        """Loads a training workdir (its best, else latest checkpoint), one checkpoint directory or an
        exported model (`s2v export`); None: the generator shipped in the package (s2v_jax/assets/generator,
        trained on real faces, see its MODEL_CARD.md)."""
        if path is None:
            from s2v_jax import assets
            from s2v_jax.train import export

            if not export.is_exported(assets.GENERATOR):
                raise S2VError(f"no generator is shipped in this installation ({assets.GENERATOR} is missing); "
                               "pass --checkpoint with a generator trained with configs/real_small.py")
            path = assets.GENERATOR
        for p, flag in ((path, "--checkpoint"), (deblur_checkpoint, "--deblur")):
            if p and not os.path.exists(p):
                raise S2VError(f"{flag} {p} does not exist; give a training work directory or one of its "
                               "checkpoint step directories")
        config, variables = load_checkpoint(path, tasks=("generator",), hint="give the generator's workdir as "
                                            "--checkpoint and the deblurring net's as --deblur")
        deblur_config = deblur_variables = None
        if deblur_checkpoint:
            deblur_config, deblur_variables = load_checkpoint(deblur_checkpoint, tasks=("deblur",),
                                                              hint="give the deblurring net's workdir as --deblur")
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
        frames = self.model.apply(variables, windows[..., None], identity, method=Speech2Vid.generate_from_identity)
        if self.deblur is not None:
            net, _ = self.deblur
            frames = net.apply(self.deblur[1], frames)
        return _to_uint8(frames)

    @property
    def warps_only(self) -> bool:
        """True for a warp-only model: its output is the still moved by a flow, nothing painted."""
        m = self.config.model
        return float(m.get("warp", 0.0)) > 0 and bool(m.get("warp_only", False))

    @property
    def paints_interior(self) -> bool:
        """True for an interior model (model.interior): its flow path also gives the painted mouth."""
        return bool(self.config.model.interior)

    @property
    def moves_pixels(self) -> bool:
        """True where generate / redub / stream move the person's own pixels at full resolution: a
        warp-only model with no deblurring net (which asks for painted, pasted faces)."""
        return self.warps_only and self.deblur is None

    def _flows_impl(self, variables, windows, stills):
        ident = self.model.apply(variables, stills, method=Speech2Vid.encode_identity)
        return self._flow_decode_impl(variables, windows, ident)

    def _flow_decode_impl(self, variables, windows, identity):
        audio = self.model.apply(variables, windows[..., None], method=Speech2Vid.encode_audio)
        if self.paints_interior:  # flow, change logits, mask: [B, S, S, 6]
            change, mask, flow = self.model.apply(variables, audio, identity, method=Speech2Vid.decode_interior)
            return jnp.concatenate([flow, change, mask], axis=-1)
        return self.model.apply(variables, audio, identity, method=Speech2Vid.decode_with_flow)[1]

    def _need_flow(self):
        if float(self.config.model.get("warp", 0.0)) <= 0:
            raise S2VError("this generator predicts no flow (model.warp is 0): per-frame warping needs a warp "
                           "model such as the shipped one (configs/real_small_warp.py)")

    def flow_batches(self, windows: np.ndarray, identity) -> Iterator[np.ndarray]:
        """The warp's flow for MFCC windows [F, 12, 35] and one cached identity (`encode_identity`):
        float32 chunks [<=batch_size, 112, 112, 2], (dy, dx) in crop pixels (see `flows`); an interior
        model's [.., 6]: the flow, the interior's change logits and its mask (compositing.warp_frame)."""
        self._need_flow()
        windows = np.asarray(windows, np.float32)
        bs = self.batch_size
        for start in range(0, len(windows), bs):
            chunk = windows[start:start + bs]
            out = self._flow_decode(self.variables, jnp.asarray(_pad_to(chunk, bs)), identity)
            yield np.asarray(out, np.float32)[:len(chunk)]

    def flows(self, windows: np.ndarray, stills: np.ndarray) -> np.ndarray:
        """The warp's flow for each frame's own still: MFCC windows [F, 12, 35] and registered crops
        uint8 [F, 112, 112, 3] (one per window; a 5-image model gets it five times) -> float32
        [F, 112, 112, 2], (dy, dx) in crop pixels: output pixel p is the still at p + flow[p]."""
        self._need_flow()
        windows = np.asarray(windows, np.float32)
        stills = np.asarray(stills)
        if stills.shape != (len(windows), 112, 112, 3):
            raise S2VError(f"flows: one registered 112x112 still per window needed, got {stills.shape} for "
                           f"{len(windows)} windows")
        bs, out = self.batch_size, []
        k = self.num_identity_images
        for start in range(0, len(windows), bs):
            w, st = windows[start:start + bs], stills[start:start + bs]
            x = np.tile(_pad_to(st, bs), (1, 1, 1, k)).astype(np.float32) / 255.0
            flows = self._flows(self.variables, jnp.asarray(_pad_to(w, bs)), jnp.asarray(x))
            out.append(np.asarray(flows, np.float32)[:len(w)])
        c = 6 if self.paints_interior else 2
        return np.concatenate(out) if out else np.zeros((0, 112, 112, c), np.float32)

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
            out = self._decode(self.variables, jnp.asarray(_pad_to(chunk, bs)), identity)
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
