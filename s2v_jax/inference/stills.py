"""Identity stills for generation: face photos -> registered 112x112 crops.

Still-count policy: a 1-image model takes exactly one still (more is an
error: silently dropping photos would hide a wrong checkpoint); a 5-image
model takes five, or one, which is then repeated five times. The first image
is the photo the face is pasted back into.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Union

import numpy as np

from s2v_jax import faces as faces_lib
from s2v_jax.errors import S2VError
from s2v_jax.faces import registration


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
            photo = faces_lib.to_rgb(rgb, name=name)
    crops = np.stack([f.crop for f in faces])
    if len(faces) == 1 and k > 1:
        notes.append(f"one image for a {k}-image model: its crop is repeated {k} times")
        crops = np.repeat(crops, k, axis=0)
    return Stills(faces=faces, photo=photo, crops=crops, warnings=notes)
