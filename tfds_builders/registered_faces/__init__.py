"""`registered_faces`: face tracks of a video corpus (see registered_faces.py)."""

from tfds_builders.registered_faces.registered_faces import RegisteredFaces, RegisteredFacesConfig  # noqa: F401
