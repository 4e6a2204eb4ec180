"""Register the face of a still photo onto the canonical 112x112 face.

Writes the crop the identity encoder sees and prints the image -> crop
similarity transform, the face box and any warnings (several faces, a small
face). Example:

    s2v align --image photo.jpg --out crop.png
"""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="photo with a face (any format OpenCV reads)")
    parser.add_argument("--out", default="crop.png", help="where to write the registered crop (PNG)")
    parser.add_argument("--face-index", type=int, default=None,
                        help="which face when there are several, by size (0 = largest, the default)")
    parser.add_argument("--size", type=int, default=112, help="crop side in pixels")


def run(args: argparse.Namespace) -> int:
    import os

    import cv2
    import numpy as np

    from s2v_jax import faces
    from s2v_jax.errors import MediaError
    from s2v_jax.faces import registration
    from s2v_jax.media.paths import refuse_overwriting_inputs

    refuse_overwriting_inputs(args.out, {"--image": args.image})
    with faces.quiet_native_logs():
        aligned = registration.align_image(args.image, size=args.size, face_index=args.face_index)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise MediaError(f"cannot write {args.out}: folder {out_dir} does not exist; create it first")
    if not cv2.imwrite(args.out, cv2.cvtColor(aligned.crop, cv2.COLOR_RGB2BGR)):
        raise MediaError(f"could not write {args.out}; use a .png or .jpg name in a writable folder")
    for warning in aligned.warnings:
        print(f"warning: {warning}")
    params = registration.similarity_params(aligned.M, args.size)
    box = ", ".join(f"{v:.1f}" for v in aligned.box)
    print(f"face: box ({box}) px, {aligned.num_faces} face(s) in the image")
    print(f"transform image -> crop: scale {np.exp(-params[0]):.4f} crop px per image px, rotation "
          f"{np.degrees(params[1]):.2f} deg, face centre ({params[2]:.1f}, {params[3]:.1f}) px")
    print("M = " + np.array2string(aligned.M, precision=4, suppress_small=True).replace("\n", ""))
    print(f"wrote {args.out} ({args.size}x{args.size})")
    return 0
