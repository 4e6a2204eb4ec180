"""`synthetic_talking_faces`: the s2v_jax.synth corpus, registered (see synthetic_talking_faces.py)."""

from tfds_builders.synthetic_talking_faces.synthetic_talking_faces import (  # noqa: F401
    SyntheticConfig,
    SyntheticTalkingFaces,
)
