"""Identity stills for generation: face photos -> registered 112x112 crops.

Still-count policy: a 1-image model takes exactly one still (more is an
error: silently dropping photos would hide a wrong checkpoint); a 5-image
model takes five, or one, which is then repeated five times. The first image
is the photo the face is pasted back into.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Union

import cv2
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


MAX_SIZE = 1920  # default longest side of a photo, pixels: larger ones are downscaled first


def fit_size(rgb: np.ndarray, max_size: int, name: str, notes: List[str]) -> np.ndarray:
    """`rgb` downscaled (area filter) so that its longest side is at most `max_size` (0: no limit),
    with a note saying so: a 24-megapixel photo otherwise costs minutes and gigabytes for every
    frame pasted and encoded, for a face a few hundred pixels wide."""
    h, w = rgb.shape[:2]
    if max_size <= 0 or max(h, w) <= max_size:
        return rgb
    scale = max_size / float(max(h, w))
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    notes.append(f"{name} is {w}x{h}: downscaled to {size[0]}x{size[1]} for detection and the output video "
                 f"(--max-size {max_size}; 0 keeps the full size)")
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def register_stills(images: Sequence[ImageLike], num_identity_images: int,
                    face_index: Optional[int] = None, max_size: int = MAX_SIZE) -> Stills:
    """Detects and registers the face of every image (path or RGB array).

    A model of k images takes k images, or 1 that is repeated k times (see
    the module docstring). Photos larger than `max_size` on their longest side
    are downscaled first (`fit_size`). Raises NoFaceError naming the file
    without a face.
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
        rgb = fit_size(faces_lib.to_rgb(rgb, name=name), int(max_size), name, notes)
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
