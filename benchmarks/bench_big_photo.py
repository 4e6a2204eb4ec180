"""Peak memory and time of `s2v generate` on a 24-megapixel photo (6000x4000), with and without the
default --max-size cap, in a child process each (peak RSS from getrusage of the child).

    python benchmarks/bench_big_photo.py --checkpoint W --photo ../shared/data/real/stills/portrait_a.jpg \\
        --audio ../shared/data/real/audio/en_speech_8s_a.wav
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import cv2


def run(argv):
    t0 = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(argv, capture_output=True, text=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": round(time.time() - t0, 1), "peak_rss_gb": round(peak_kb / 2 ** 20, 2),
            "peak_is_max_of_children_so_far": peak_kb == before, "width": out["width"], "height": out["height"],
            "warnings": [line for line in proc.stderr.splitlines() if "warning" in line]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--photo", required=True)
    p.add_argument("--audio", required=True)
    p.add_argument("--full-size-too", action="store_true", help="also run --max-size 0 (minutes, gigabytes)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="s2v_big_")
    big = os.path.join(tmp, "photo_6000x4000.jpg")
    img = cv2.imread(args.photo)
    h, w = img.shape[:2]
    s = max(6000 / w, 4000 / h)
    img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_CUBIC)
    y0, x0 = (img.shape[0] - 4000) // 2, (img.shape[1] - 6000) // 2
    cv2.imwrite(big, img[y0:y0 + 4000, x0:x0 + 6000], [cv2.IMWRITE_JPEG_QUALITY, 92])
    base = [sys.executable, "-m", "s2v_jax.cli", "generate", "--checkpoint", args.checkpoint, "--image", big,
            "--audio", args.audio, "--no-progress"]
    # The capped run first: RUSAGE_CHILDREN's maxrss is the largest child so far.
    results = {"default_max_size": run(base + ["--out", os.path.join(tmp, "capped.mp4")])}
    if args.full_size_too:
        results["max_size_0"] = run(base + ["--out", os.path.join(tmp, "full.mp4"), "--max-size", "0"])
    print(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "photo": "6000x4000",
                      "audio": args.audio, **results}, indent=1))


if __name__ == "__main__":
    main()
