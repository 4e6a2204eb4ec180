"""Flax modules of the Speech2Vid family and `build_model(config)`."""

import ml_collections

from s2v_jax.errors import ConfigError
from s2v_jax.models.audio_encoder import AudioEncoder
from s2v_jax.models.conv_transpose import conv_transpose_class
from s2v_jax.models.deblur import DeblurNet
from s2v_jax.models.decoder import BilinearDecoder, TransposedDecoder
from s2v_jax.models.generator import Speech2Vid
from s2v_jax.models.identity_encoder import IdentityEncoder
from s2v_jax.models.layers import compute_dtype
from s2v_jax.models.syncnet import SyncNet, build_syncnet
from s2v_jax.models.syncnet import input_shapes as syncnet_input_shapes

__all__ = ["AudioEncoder", "IdentityEncoder", "TransposedDecoder", "BilinearDecoder",
           "Speech2Vid", "DeblurNet", "SyncNet", "build_model", "compute_dtype", "input_shapes"]

def build_model(config: ml_collections.ConfigDict, axis_name=None):
    """The network a config describes: `model.name` 'speech2vid' (the generator), 'deblur' or 'syncnet'."""
    m = config.model
    dtype = compute_dtype(m.dtype)
    if m.name == "syncnet":
        return build_syncnet(config, axis_name=axis_name)
    if m.name == "deblur":
        return DeblurNet(features=m.features, num_layers=m.num_layers, dtype=dtype)
    if m.name != "speech2vid":
        raise ConfigError(f"model.name must be 'speech2vid', 'deblur' or 'syncnet', not {m.name!r}")
    if m.decoder not in ("transposed", "bilinear"):
        raise ConfigError(f"model.decoder must be 'transposed' or 'bilinear', not {m.decoder!r}")
    if m.num_identity_images not in (1, 5):
        raise ConfigError(f"model.num_identity_images must be 1 or 5, not {m.num_identity_images!r}")
    bad = [s for s in m.skips if s not in ("A", "B", "C")]
    if bad:
        raise ConfigError(f"model.skips may name only 'A', 'B', 'C', not {bad}")
    tconv = conv_transpose_class(m.conv_transpose)
    return Speech2Vid(decoder=m.decoder, conv_transpose=tconv, skips=tuple(m.skips),
                      num_identity_images=m.num_identity_images,
                      width=m.width, dtype=dtype, bn_momentum=m.bn_momentum, bn_epsilon=m.bn_epsilon,
                      axis_name=axis_name, identity_residual=bool(m.identity_residual),
                      residual_region=tuple(int(v) for v in (m.residual_region or ())),
                      warp=float(m.warp or 0.0), warp_only=bool(m.warp_only),
                      interior=bool(m.interior),
                      interior_region=tuple(int(v) for v in (m.interior_region or ())),
                      audio_width=float(m.audio_width or 0.0))


def input_shapes(config: ml_collections.ConfigDict):
    """Per-example input shapes: {'mfcc': (12, 35, 1), 'identity': (112, 112, 3k)} or {'image': ...}."""
    if config.model.name == "syncnet":
        return syncnet_input_shapes(config)
    if config.model.name == "deblur":
        s = config.model.image_size
        return {"image": (s, s, 3)}
    return {"mfcc": (12, 35, 1), "identity": (112, 112, 3 * config.model.num_identity_images)}
