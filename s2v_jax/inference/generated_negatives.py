"""Making the generated near-still windows of `s2v_jax.data.generated_negatives` (read there by the
judge's sampler): a generator's own video of every train track, from the track's most closed-mouth
frame, driven by its own MFCC.

    python -m s2v_jax.inference.generated_negatives --out DIR [--generator shipped] \
        [--data-dir data/tfds] [--per-source N] [--skip PREFIXES]
"""

import argparse
import json
import logging
import os
import sys
import time
from typing import Dict

import numpy as np

from s2v_jax.data.generated_negatives import INDEX, choose_records, track_path


def generated_track(generator, frames: np.ndarray, mfcc: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The generator's video of one track from its most closed-mouth frame, driven by its own MFCC,
    at the track's crop size (uint8 [T, 112, 112, 3])."""
    from s2v_jax.data.near_still import closest_to_closed
    from s2v_jax.data.sync_inputs import resize_crops

    still = frames[closest_to_closed(landmarks, np.arange(len(frames)))]
    out = resize_crops(generator.generate(np.asarray(mfcc, np.float32), generator.encode_identity(still[None])))
    return np.ascontiguousarray(out[:len(frames)], dtype=np.uint8)


def build(generator, builder, out_dir: str, *, per_source: int = 0, skip_prefixes=(), generator_name: str = "",
          split: str = "train") -> Dict[int, int]:
    """Write the generated copies of the chosen `split` records (module docstring); returns {record: frames}."""
    from s2v_jax.data import track_selection
    from tfds_builders.common import decode_frame

    os.makedirs(out_dir, exist_ok=True)
    sources = track_selection.record_sources(builder, split)
    chosen = choose_records(sources, per_source, skip_prefixes)
    src = builder.as_data_source(split)
    done: Dict[int, int] = {}
    t0, made = time.time(), 0
    for i, r in enumerate(chosen):
        path = track_path(out_dir, r)
        if os.path.isfile(path):
            done[r] = int(np.load(path, mmap_mode="r").shape[0])
            continue
        ex = src[r]
        frames = np.stack([decode_frame(f) for f in ex["frames"]])
        video = generated_track(generator, frames, ex["mfcc"], np.asarray(ex["landmarks"], np.float32))
        if video.shape[0] != frames.shape[0]:
            raise RuntimeError(f"record {r} ({chosen[r]}): {video.shape[0]} generated frames for {frames.shape[0]}")
        tmp = path + ".tmp.npy"
        np.save(tmp, video)
        os.replace(tmp, path)
        done[r] = int(video.shape[0])
        made += video.shape[0]
        if (i + 1) % 20 == 0 or i + 1 == len(chosen):
            rate = made / max(time.time() - t0, 1e-6)
            print(f"[{i + 1}/{len(chosen)}] {chosen[r]}: {made} frames made, {rate:.0f} frames/s", flush=True)
    index = {"dataset": builder.info.full_name, "split": split, "generator": generator_name,
             "still": "the track's most closed-mouth frame", "records": {str(r): n for r, n in done.items()},
             "sources": {str(r): chosen[r] for r in done}}
    tmp = os.path.join(out_dir, INDEX + ".tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, INDEX))
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="directory for the copies (resumed if present)")
    p.add_argument("--generator", default="shipped", help="a generator checkpoint or 'shipped'")
    p.add_argument("--dataset", default="registered_faces/real")
    p.add_argument("--data-dir", default="data/tfds")
    p.add_argument("--per-source", type=int, default=0,
                   help="at most this many tracks of each corpus source (0: every track; ~450 frames/s, 4.6 GB for "
                        "the 2,703 train tracks of registered_faces/real)")
    p.add_argument("--skip", default="", help="comma-separated source prefixes to leave out (held-out speakers)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import tfds_builders
    from s2v_jax.inference.generator import FrameGenerator

    builder = tfds_builders.build(tfds_builders.parse_name(args.dataset), args.data_dir)
    generator = FrameGenerator.from_checkpoint(None if args.generator == "shipped" else args.generator)
    skip = [s.strip() for s in args.skip.split(",") if s.strip()]
    done = build(generator, builder, args.out, per_source=args.per_source, skip_prefixes=skip,
                 generator_name=args.generator)
    print(f"{len(done)} tracks, {sum(done.values())} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
