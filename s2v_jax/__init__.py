"""s2v_jax: Speech2Vid ("You said that?", BMVC 2017) in JAX/Flax."""

__version__ = "0.1.0"

from s2v_jax.errors import (  # noqa: F401
    ConfigError,
    DataError,
    MediaError,
    NoFaceError,
    S2VError,
    TrainingError,
)
