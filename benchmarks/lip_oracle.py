"""How much of the still's LMD an audio-driven model could remove: on the held-out tracks
of 2 s or more, the still (each track's first frame, as `s2v evaluate` uses) against every
5th frame, LMD of (a) the still's lips as they are, (b) the still's lips moved to the real
lips' centroid (the head's motion known, the lip shape not), (c) the real lips' shape at
the still's centroid (the shape known perfectly, the head's motion not: the best a model
that gets only the still and the audio could do, since the audio cannot tell head motion).

With --checkpoint (a warping generator), on the same frames: (d) where the model's warp of
the still (the first frame, and each frame's own MFCC window) really puts the still's lips
(models.generator.warped_points, the lip loss's measure since 2026-12-03), and (e) the
older in-loop measure, the flow sampled at the real lips against the displacement needed.

    python benchmarks/lip_oracle.py --data-dir D [--split validation] [--min-frames 50] [--checkpoint W]
"""

import argparse
import json
import os

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="TFDS data directory holding registered_faces/real")
    p.add_argument("--split", default="validation")
    p.add_argument("--min-frames", type=int, default=50, help="tracks of at least this many frames (50 = 2 s)")
    p.add_argument("--checkpoint", default="", help="also score this warping generator's lip placement")
    args = p.parse_args()
    import tensorflow_datasets as tfds

    from s2v_jax.evaluation import metrics

    path = os.path.join(args.data_dir, "registered_faces", "real", "1.0.0")
    source = tfds.builder_from_directory(path).as_data_source(args.split)
    lips = list(metrics.MOUTH_POINTS)
    gen = None
    if args.checkpoint:
        import jax.numpy as jnp

        from s2v_jax.inference.generator import FrameGenerator
        from s2v_jax.models.generator import sample_points, warped_points
        from tfds_builders.common import decode_frame

        gen = FrameGenerator.from_checkpoint(args.checkpoint)
    rows, tracks = [], 0
    for i in range(len(source)):
        ex = source[i]
        lm = np.asarray(ex["landmarks"], np.float32)
        if len(lm) < args.min_frames:
            continue
        tracks += 1
        iod = metrics.inter_ocular_distance(lm)
        still = lm[0, lips]
        frames = list(range(12, len(lm), 5))
        if gen is not None:
            first = decode_frame(ex["frames"][0])
            mfcc = np.asarray(ex["mfcc"], np.float32)[frames]
            flow = jnp.asarray(gen.flows(mfcc, np.repeat(first[None], len(frames), axis=0)))
            shown = np.asarray(warped_points(flow, jnp.asarray(np.repeat(still[None], len(frames), axis=0))))
            sampled = np.asarray(sample_points(flow, jnp.asarray(lm[frames][:, lips])))[..., ::-1]
        for j, t in enumerate(frames):
            real = lm[t, lips]
            d = lambda a: float(np.linalg.norm(a - real, axis=-1).mean() / iod[t])  # noqa: E731
            row = (d(still), d(still + real.mean(0) - still.mean(0)), d(real - real.mean(0) + still.mean(0)))
            if gen is not None:
                row += (d(shown[j]), float(np.linalg.norm(sampled[j] - (still - real), axis=-1).mean() / iod[t]))
            rows.append(row)
    a = np.asarray(rows).mean(axis=0)
    out = {"tracks": tracks, "frames": len(rows), "static": round(a[0], 4),
           "still_at_real_centroid": round(a[1], 4), "real_shape_at_still_centroid": round(a[2], 4),
           "shape_oracle_vs_static": round(a[2] / a[0] - 1, 3)}
    if gen is not None:
        out.update({"model_warp": round(a[3], 4), "model_warp_vs_static": round(a[3] / a[0] - 1, 3),
                    "model_flow_at_real_lips": round(a[4], 4)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
