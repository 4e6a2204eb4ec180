"""Closed-lip photos made to speak (issue #31): does the mouth open on vowels?

For each photo and each generator, the registered face generated from the photo and a speech
file (no paste-back: the 112 px face the model makes), then measured with the face mesh:
the inner-lip gap over the eye distance (`faces.mouth_opening`) at its 10th and 90th
percentiles, the landmark sync of the opening with the speech's loudness (correlation at the
best offset, as `s2v evaluate` reads it), and the mean L*a*b* colour inside the outer lips against the
photo's own mouth (Delta E, `evaluation.metrics.mouth_colour`). Writes OUT/<photo>.png: per
generator, the photo's face, then the 8 frames of loudest speech (vowels), then 4 quiet
frames, with the mouth enlarged below, for a person to look at; OUT/report.json; prints a
markdown table.

    python benchmarks/closed_photos.py --out reports/closed_photos \
        --generator shipped --generator interior=workdirs/interior \
        --audio ../shared/data/real/audio/en_speech_8s_a.wav \
        ../shared/data/real/stills/portrait_a.jpg ../shared/data/real/stills/portrait_c.png
"""

import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _label(text: str, width: int):
    import cv2

    bar = np.full((16, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def strip(still_face, frames, picks, label: str):
    """One generator's rows: faces (photo + picked frames), and the mouths enlarged 2x."""
    import cv2

    faces = [still_face] + [frames[i] for i in picks]
    row = np.concatenate(faces, axis=1)
    mouths = np.concatenate([cv2.resize(f[58:98, 28:84], (112, 80), interpolation=cv2.INTER_CUBIC) for f in faces],
                            axis=1)
    return np.concatenate([_label(label, row.shape[1]), row, mouths], axis=0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("photos", nargs="+")
    p.add_argument("--audio", required=True)
    p.add_argument("--generator", action="append", default=[], help="'shipped', PATH or LABEL=PATH (repeatable)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import cv2

    from s2v_jax.evaluation import metrics
    from s2v_jax.evaluation.evaluate import crop_landmarks
    from s2v_jax.inference.generate import still_frames
    from s2v_jax.inference.generator import FrameGenerator
    from s2v_jax.inference.stills import register_stills
    from s2v_jax.media.speech import load_speech

    os.makedirs(args.out, exist_ok=True)
    gens = {}
    for g in args.generator or ["shipped"]:
        label, _, path = g.rpartition("=") if "=" in g else ("", "", g)
        gens[label or os.path.basename(os.path.normpath(path))] = FrameGenerator.from_checkpoint(
            None if path == "shipped" else path)
    wav = load_speech(args.audio)
    report = {"audio": os.path.basename(args.audio), "photos": {}}
    for photo in args.photos:
        name = os.path.splitext(os.path.basename(photo))[0]
        rows, entry = [], {}
        for label, gen in gens.items():
            stills = register_stills([photo], gen.num_identity_images)
            frames = np.stack(list(still_frames(gen, stills, wav, paste_back=False)))
            frames = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA) for f in frames])
            face = cv2.resize(stills.crops[0], (112, 112), interpolation=cv2.INTER_AREA)
            lm = crop_landmarks(frames)
            opening = metrics.mouth_opening(lm)
            env = metrics.audio_envelope(wav, len(frames))
            sync = metrics.landmark_sync(env, opening, 15)
            photo_lab = metrics.mouth_colour(face[None], crop_landmarks(face[None]))
            loud = np.argsort(-env)
            quietest = np.argsort(env)
            picks = sorted(loud[:: max(1, len(loud) // 200)][:8].tolist())  # loud frames, spread (not 8 neighbours)
            quiet = sorted(quietest[:: max(1, len(env) // 8)][:4].tolist())
            found = np.isfinite(opening)
            entry[label] = {
                "frames": int(len(frames)), "face_found": float(found.mean()),
                "opening_p10": float(np.nanpercentile(opening, 10)) if found.any() else None,
                "opening_p90": float(np.nanpercentile(opening, 90)) if found.any() else None,
                "opening_on_loud": float(np.nanmean(opening[loud[:len(loud) // 5]])),
                "opening_on_quiet": float(np.nanmean(opening[quietest[:len(env) // 5]])),
                "sync_correlation": sync["correlation"], "sync_offset": sync["offset"],
                "mouth_colour_de_vs_photo": metrics.mouth_colour_difference(metrics.mouth_colour(frames, lm),
                                                                            photo_lab),
            }
            rows.append(strip(face, frames, picks + quiet, f"{name} / {label}: photo, 8 loud frames, 4 quiet"))
        cv2.imwrite(os.path.join(args.out, f"{name}.png"), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
        report["photos"][name] = entry
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    keys = ("opening_p10", "opening_p90", "opening_on_loud", "opening_on_quiet", "sync_correlation",
            "sync_offset", "mouth_colour_de_vs_photo")
    print("| photo | generator | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for name, entry in report["photos"].items():
        for label, r in entry.items():
            print(f"| {name} | {label} | " + " | ".join(
                "-" if r[k] is None else (f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k])) for k in keys) + " |")


if __name__ == "__main__":
    main()
