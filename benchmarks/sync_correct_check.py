"""An independent check of `build-dataset --sync-correct` on GRID, whose `.align`
files give each word's time from the audio alone: for every grid_s1 track, the
lag that best lines up the mouth opening (the builder's landmarks: inner lips,
face-mesh points 13 and 14) with the speech activity of the `.align` words
(cross-correlation over +-15 frames). Mouths open a little before the sound,
so the check is each track's lag minus the median lag, set beside the judge's
offset (positive = the sound late in both).

    python benchmarks/sync_correct_check.py --data-dir D --manual-dir ../shared/data/real/corpus

Needs registered_faces/real and registered_faces/real_synced built in D
(`s2v build-dataset registered_faces/real [--sync-correct] ...`).
"""

import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14  # MediaPipe face-mesh points


def speech_activity(align_path: str, num_frames: int) -> np.ndarray:
    """1 on frames inside a spoken word of a GRID .align file (times in 1/1000 frame), else 0."""
    act = np.zeros(num_frames)
    with open(align_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] != "sil":
                act[int(int(parts[0]) / 1000):int(np.ceil(int(parts[1]) / 1000))] = 1.0
    return act


def best_lag(mouth: np.ndarray, speech: np.ndarray, max_lag: int = 15) -> int:
    """The L that maximises the correlation of mouth[t] with speech[t + L] (L > 0: the sound later)."""
    z = lambda x: (x - x.mean()) / (x.std() + 1e-6)  # noqa: E731
    m, s, n = z(mouth), z(speech), len(mouth)
    scores = [np.mean(m[:n - L] * s[L:]) if L >= 0 else np.mean(m[-L:] * s[:n + L]) for L in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--manual-dir", required=True, help="the real corpus (grid_s1/*.align)")
    p.add_argument("--source", default="grid_s1/")
    p.add_argument("--out", default=None, help="JSON with every track's lag and judge offset")
    args = p.parse_args()
    import tfds_builders

    plain = tfds_builders.get_builder("registered_faces/real", args.data_dir)
    synced = tfds_builders.get_builder("registered_faces/real_synced", args.data_dir)
    records = {r["key"]: r for r in synced.info.metadata["sync_correction"]["tracks"]}
    rows = []
    for split in plain.info.splits:
        source = plain.as_data_source(split)
        keys = [k for k, _ in sorted(plain.info.metadata["tracks"][split])]
        for i, key in enumerate(keys):
            rec = records.get(key)
            if rec is None or not rec["source"].startswith(args.source):
                continue
            align = os.path.join(args.manual_dir, rec["source"].rsplit(".", 1)[0] + ".align")
            if not os.path.exists(align):
                continue
            lm = np.asarray(source[i]["landmarks"], np.float32)
            mouth = lm[:, LOWER_INNER_LIP, 1] - lm[:, UPPER_INNER_LIP, 1]
            rows.append({"source": rec["source"], "judge_offset": rec["offset"], "lse_c": rec["lse_c"],
                         "shifted": rec["shifted"], "align_lag": best_lag(mouth, speech_activity(align, len(lm)))})
    if not rows:
        sys.exit(f"no {args.source} track with an .align file in {args.manual_dir}")
    lag = np.array([r["align_lag"] for r in rows], float)
    med = float(np.median(lag))
    for r in rows:
        r["align_deviation"] = r["align_lag"] - med
    off = np.array([r["judge_offset"] if r["judge_offset"] is not None else 0 for r in rows], float)
    dev = lag - med
    print(f"{len(rows)} {args.source} tracks; median mouth-to-speech lag {med:+.0f} frames "
          f"(p10 {np.percentile(lag, 10):+.0f}, p90 {np.percentile(lag, 90):+.0f})")
    print("| judge offset | tracks | mean .align deviation |\n|---|---|---|")
    for o in sorted(set(off.tolist())):
        m = off == o
        print(f"| {o:+.0f} | {int(m.sum())} | {dev[m].mean():+.2f} |")
    shifted = [r for r in rows if r["shifted"]]
    agree = sum(abs(r["align_deviation"] - r["judge_offset"]) <= 2 for r in shifted)
    print(f"shifted tracks: {len(shifted)}; .align deviation within +-2 of the judge's offset: {agree}")
    for r in shifted:
        print(f"  {r['source']}: judge {r['judge_offset']:+d} (LSE-C {r['lse_c']:.3f}), .align {r['align_deviation']:+.0f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"median_lag": med, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
