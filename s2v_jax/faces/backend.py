"""The face tools' one native dependency, MediaPipe, imported in one place.

mediapipe 0.10.21 is the last release whose wheel carries its face models (newer ones
download them at run time); it needs numpy<2 and protobuf<5, which would cap JAX at 0.7.x
for everyone. So it is not a core dependency: it comes with the `faces` extra
(`pip install "s2v_jax[faces]"`, which the README's commands use), and a core install
(models, training on built TFDS data, export, inference from registered crops, on any
current JAX / numpy 2) reaches it only when a face must be found in a picture.
"""

FACES_INSTALL = 'pip install "s2v_jax[faces]"  (or, in a checkout: pip install -e ".[faces]")'


def mediapipe():
    """The `mediapipe` module, or a one-line MissingDependencyError naming the install command."""
    try:
        import mediapipe as mp
    except ImportError as e:
        from s2v_jax.errors import MissingDependencyError

        raise MissingDependencyError(
            f"finding faces needs mediapipe, which this install lacks ({e}): {FACES_INSTALL}. "
            "It pins numpy<2 and protobuf<5 (mediapipe 0.10.21 ships its face models in the wheel); "
            "the core (training on built data, export, generation from registered crops) runs without it") from None
    return mp
