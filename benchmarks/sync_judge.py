"""The sync expert as a judge on held-out real video, per source: does it find
a known audio shift, call real video in sync, and rank real audio above
another clip's? Writes one JSON report (and prints a markdown table).

    python benchmarks/sync_judge.py --data-dir data/tfds --out reports/sync_judge.json
    python benchmarks/sync_judge.py --checkpoint workdirs/syncnet_real --data-dir data/tfds

Held-out tracks: the `validation` split of registered_faces/real (whole
speakers or source videos per source) plus the tracks of the judge's
`data.exclude` (whole sources it never trained on), plus, with
--extra-video, whole videos outside the corpus cut into --segment-s pieces.
For each track of at least --min-frames frames and each k in --shifts, the
audio is delayed by k frames exactly (frames k.. against audio 0..; no
padding), and the judge's offset is compared with k (hit: within +-1).
"shift_tracked" (a diagnostic beside the marks, which assume every source clip is
in sync): the share of shifted answers within +-1 of k plus the clip's own unshifted
answer, which tells a clip with its own AV offset from a judge that loses the shift.
"Other audio": the same frames against the audio of another held-out track
of the same source (another source if it has one track), LSE-C compared
with the real audio's. Short tracks (LRC-AR's 1.2 s) are reported as their
own rows, beside the acceptance rows of tracks of 2 s or more.
With --reference, a second, pixel-free opinion on each corpus clip's own AV
offset (s2v_jax.evaluation.lip_reference: an audio -> mouth-opening regressor
fitted on the tracks the judge trained on, offset = lag of best correlation with
the landmarks' opening): per row, how often the judge's unshifted answer agrees
with it (+-1), and the hits counted against k + the reference offset
("hits vs reference"), diagnostics beside the marks, which assume 0.
With --near-still ALPHAS (the hardened judge's mark): each clip's frames with their mouth
motion shrunk toward its most closed-mouth frame (s2v_jax.data.near_still.shrink_motion,
alpha = the fraction of motion kept; 0 = a frozen photo), scored with the clip's own
audio: per row, how often real video's LSE-C is above the near-still copy's
("real_above_still_A"), and the copies' mean LSE-C.
With --generator (a generator checkpoint, or 'shipped'): the issue #32 protocol (`s2v evaluate
--still closed`'s): each clip re-generated from its most closed-mouth frame with its own speech,
scored with its own audio: "real_above_generated" per row (tracks of --min-frames or more; how far
those mouths open: `s2v evaluate --still closed`).
With --speaker-only, where one video has several face tracks only the one
the judge finds most in sync (highest LSE-C with the real audio) is kept:
active-speaker detection, what `s2v sync` does by default (a listener's face
is not a clip of speech).
"""

import argparse
import json
import os
import sys
import time
from collections import defaultdict

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def judge_held_out(judge_config):
    """The shell patterns of the train tracks a judge never trained on: its `data.exclude`; a judge
    stored before the one setting (2026-12-07) names them `data.holdout_sources` (prefixes)."""
    from s2v_jax.data import track_selection

    d = judge_config.data
    return track_selection.patterns(track_selection.items(d.exclude) + track_selection.items(d.get("holdout_sources")))


def held_out_tracks(judge_config, data_dir: str, dataset: str = "registered_faces/real", held_out=None,
                    training=None):
    """[(source_name, name, crops [T,112,112,3], mfcc [T,12,35])] of every held-out track: the
    validation split and the train tracks matching `held_out` (shell patterns; default: the judge's
    `judge_held_out`). A source's row is named for where its tracks come from: 'lrs2_b (held-out
    source)' (all from the held-out patterns), 'voxceleb2_style (validation + held-out files)' (both).
    `training` (a list): the same pass over the train split appends (mfcc windows, mouth opening) of
    every track the judge trained on, for --reference."""
    import tfds_builders
    from s2v_jax.data import track_selection
    from s2v_jax.evaluation import metrics
    from tfds_builders.common import decode_frame, decode_text

    builder = tfds_builders.build(tfds_builders.parse_name(dataset), data_dir)
    held_out = judge_held_out(judge_config) if held_out is None else list(held_out)
    out, origin = [], defaultdict(set)
    for split in ("validation", "train"):
        if split not in builder.info.splits:
            continue
        src = builder.as_data_source(split)
        for i in range(len(src)):
            ex = src[i]
            source = decode_text(ex["source"])
            if split == "train" and not track_selection.matches(source, held_out):
                if training is not None:
                    training.append((np.asarray(ex["mfcc"], np.float32),
                                     metrics.mouth_opening(np.asarray(ex["landmarks"], np.float32))))
                continue
            crops = np.stack([decode_frame(f) for f in ex["frames"]])
            top = source.split("/")[0]
            origin[top].add(split)
            out.append((top, f"{source}#{int(ex['track_index'])}", crops, np.asarray(ex["mfcc"], np.float32)))
            LANDMARKS[out[-1][1]] = (source, int(ex["start_frame"]), np.asarray(ex["landmarks"], np.float32))
    label = {top: top + {frozenset({"train"}): " (held-out source)",
                         frozenset({"train", "validation"}): " (validation + held-out files)"}.get(frozenset(o), "")
             for top, o in origin.items()}
    return [(label[t[0]],) + t[1:] for t in out]


LANDMARKS = {}  # track name -> (source video, start frame, landmarks [T, 478, 2]) for the landmark measure


def add_reference(clips, rows, by_row, reference, mfcc):
    """Per clip with landmarks (`mfcc`: track name -> MFCC windows): 'reference_offset' /
    'reference_correlation'; per row:
    'judge_agrees_reference' (unshifted answer within +-1 of the reference) and 'hits_vs_reference'
    (answers within +-1 of k + the reference, over every k)."""
    from s2v_jax.evaluation import metrics

    for r in clips:
        if r["name"] not in LANDMARKS or r["name"] not in mfcc:
            continue
        res = reference.offset(mfcc[r["name"]], metrics.mouth_opening(LANDMARKS[r["name"]][2]))
        r["reference_offset"], r["reference_correlation"] = res["offset"], res["correlation"]
    for key, recs in by_row.items():
        recs = [r for r in recs if r.get("reference_offset") is not None]
        if not recs:
            continue
        agree = [r["offsets"].get("0") is not None and abs(r["offsets"]["0"] - r["reference_offset"]) <= 1
                 for r in recs]
        hits = [v is not None and abs(v - int(k) - r["reference_offset"]) <= 1
                for r in recs for k, v in r["offsets"].items()]
        rows[key]["reference_clips"] = len(recs)
        rows[key]["judge_agrees_reference"] = round(float(np.mean(agree)), 3)
        rows[key]["hits_vs_reference"] = round(float(np.mean(hits)), 3)


def landmark_measure(manual_dir: str, min_frames: int):
    """The landmark lip-sync correlation (s2v_jax.evaluation.metrics.landmark_sync) of each held-out
    real track beside that of a mouth that only follows loudness (its opening = the audio envelope):
    whether the measure can rank real video above a loudness-follower."""
    from s2v_jax.evaluation import metrics
    from s2v_jax.media import audio

    rows = []
    for name, (source, start, lms) in sorted(LANDMARKS.items()):
        if len(lms) < min_frames:
            continue
        wav = audio.load_audio(os.path.join(manual_dir, source))
        n = len(lms)
        env = metrics.audio_envelope(wav, max(start + n, audio.num_video_frames(len(wav))))[start:start + n]
        real = metrics.landmark_sync(env, metrics.mouth_opening(lms))["correlation"]
        follower = metrics.landmark_sync(env, 0.05 + 0.3 * env / (env.max() + 1e-9))["correlation"]
        rows.append({"name": name, "real": real, "loudness_follower": follower})
    ok = [r for r in rows if r["real"] is not None and r["loudness_follower"] is not None]
    return {"clips": len(ok), "real_mean": float(np.mean([r["real"] for r in ok])) if ok else None,
            "follower_mean": float(np.mean([r["loudness_follower"] for r in ok])) if ok else None,
            "real_above_follower": float(np.mean([r["real"] > r["loudness_follower"] for r in ok])) if ok else None,
            "rows": rows}


def video_segments(path: str, segment_s: float):
    """Pieces of `segment_s` seconds of the largest face track of a video outside the corpus."""
    from s2v_jax.faces.preprocess import preprocess_video
    from s2v_jax.faces import largest_track, quiet_native_logs

    with quiet_native_logs():
        pv = preprocess_video(path)
    track = largest_track(pv.tracks)
    if track is None:
        return []
    crops = np.asarray(track.crops)
    mfcc = np.asarray(pv.mfcc_windows[track.start_frame:track.start_frame + len(crops)], np.float32)
    n = int(round(segment_s * 25))
    name = os.path.basename(path)
    return [(f"{name} (held-out video)", f"{name}@{s}", crops[s:s + n], mfcc[s:s + n])
            for s in range(0, len(crops) - n + 1, n)]


def closed_still(name: str, crops):
    """The clip's most closed-mouth frame (frame 0 where the clip has no landmarks, e.g. --extra-video pieces)."""
    from s2v_jax.data.near_still import closest_to_closed

    return crops[closest_to_closed(LANDMARKS.get(name, (None, 0, None))[2], np.arange(len(crops)))]


def near_still_copy(name: str, crops, alpha: float):
    """The clip with its motion shrunk to `alpha` toward its most closed-mouth frame."""
    from s2v_jax.data.near_still import shrink_motion

    return shrink_motion(crops, closed_still(name, crops), alpha)


def closed_still_video(generator, name: str, crops, mfcc):
    """The generator's video of a clip driven by its own speech from its most closed-mouth frame (what the
    judges' generated negatives are: s2v_jax.inference.generated_negatives.generated_track)."""
    from s2v_jax.inference.generated_negatives import generated_track

    return generated_track(generator, crops, mfcc, LANDMARKS.get(name, (None, 0, None))[2])


def _suffix(label: str) -> str:
    """'' for the first --generator, '_LABEL' for the others (their keys in the records and rows)."""
    return "_" + label if label else ""


def generated_stats(recs, label: str = ""):
    """{'real_above_generated', 'lse_c_generated', 'generated_clips'} (each + '_' + label for a labelled
    generator) of the clips a generator re-made."""
    sfx = _suffix(label)
    key = f"generated{sfx}_lse_c"
    gen = [r for r in recs if r.get(key) is not None]
    if not gen:
        return {}
    return {f"real_above_generated{sfx}": round(float(np.mean([(r["lse_c"] or 0) > r[key] for r in gen])), 3),
            f"lse_c_generated{sfx}": round(float(np.mean([r[key] for r in gen])), 3),
            f"generated_clips{sfx}": len(gen)}


def delayed(crops, mfcc, k: int):
    """Frames and audio with the sound k frames late: frame t + k against audio t (k < 0: early)."""
    n = len(crops)
    if k >= 0:
        return crops[k:], mfcc[:n - k]
    return crops[:n + k], mfcc[-k:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="judge (default: the one shipped in the package)")
    p.add_argument("--data-dir", default="data/tfds")
    p.add_argument("--dataset", default="registered_faces/real")
    p.add_argument("--shifts", default="-8,-4,0,4,8")
    p.add_argument("--min-frames", type=int, default=50, help="acceptance rows: tracks of at least this (2 s)")
    p.add_argument("--extra-video", action="append", default=[], help="a whole video outside the corpus")
    p.add_argument("--segment-s", type=float, default=3.0, help="piece length of --extra-video, seconds")
    p.add_argument("--speaker-only", action="store_true",
                   help="one track per video: the one most in sync (active-speaker detection)")
    p.add_argument("--holdout-sources", default=None,
                   help="comma-separated source patterns or prefixes whose train tracks are scored as held out "
                        "(default: the judge's data.exclude; another judge's list compares two judges on one set)")
    p.add_argument("--reference", action="store_true",
                   help="add a pixel-free reference for each corpus clip's own AV offset (lip_reference), "
                        "fitted on the judge's training tracks (under a minute more)")
    p.add_argument("--near-still", default="",
                   help="comma-separated fractions of motion kept (e.g. 0,0.15,0.3): real vs near-still copies")
    p.add_argument("--generator", action="append", default=[],
                   help="a generator checkpoint or 'shipped': real vs that generator driven from the closed mouth "
                        "(repeat for several: the second and later are labelled by their folder name, or "
                        "LABEL=PATH)")
    p.add_argument("--out", default=None, help="JSON report path")
    p.add_argument("--manual-dir", default=None,
                   help="the corpus videos (../shared/data/real/corpus): adds the landmark measure's ranking")
    args = p.parse_args(argv)

    from s2v_jax.data import track_selection
    from s2v_jax.evaluation.sync_expert import SyncExpert

    expert = SyncExpert.from_checkpoint(args.checkpoint)
    generators = {}  # label ('' for the first) -> FrameGenerator
    if args.generator:
        from s2v_jax.inference.generator import FrameGenerator

        for i, g in enumerate(args.generator):
            label, _, path = g.rpartition("=") if "=" in g else ("", "", g)
            label = "" if i == 0 else (label or os.path.basename(os.path.normpath(path)))
            generators[label] = FrameGenerator.from_checkpoint(None if path == "shipped" else path)
    shifts = [int(s) for s in args.shifts.split(",")]
    alphas = [float(a) for a in args.near_still.split(",") if a.strip()]
    held_out = judge_held_out(expert.config) if args.holdout_sources is None else \
        track_selection.patterns(args.holdout_sources)
    training = [] if args.reference else None
    tracks = held_out_tracks(expert.config, args.data_dir, args.dataset, held_out, training)
    for v in args.extra_video:
        tracks += video_segments(v, args.segment_s)
    by_source = defaultdict(list)
    for t in tracks:
        by_source[t[0]].append(t)
    rows, clips = {}, []
    t0 = time.time()
    for source, items in sorted(by_source.items()):
        for i, (_, name, crops, mfcc) in enumerate(items):
            n = len(crops)
            rec = {"source": source, "name": name, "frames": n, "offsets": {}}
            for k in shifts:
                c, m = delayed(crops, mfcc, k)
                rec["offsets"][str(k)] = expert.sync_scores(c, m)["av_offset"]
            real = expert.sync_scores(crops, mfcc)
            rec["lse_d"], rec["lse_c"] = real["lse_d"], real["lse_c"]
            others = [t for t in items if t[1] != name] or [t for t in tracks if t[0] != source]
            other = others[(i * 7919) % len(others)][3]  # a fixed, spread choice
            other = np.concatenate([other] * (n // len(other) + 1))[:n]
            rec["other_audio_lse_c"] = expert.sync_scores(crops, other)["lse_c"]
            for a in alphas:
                rec[f"still_{a:g}_lse_c"] = expert.sync_scores(near_still_copy(name, crops, a), mfcc)["lse_c"]
            for label, generator in generators.items():
                if n >= args.min_frames:
                    rec[f"generated{_suffix(label)}_lse_c"] = expert.sync_scores(
                        closed_still_video(generator, name, crops, mfcc), mfcc)["lse_c"]
            clips.append(rec)
    dropped = []
    if args.speaker_only:
        best = {}
        for r in clips:
            video = r["name"].split("#")[0]
            if video not in best or (r["lse_c"] or 0) > (best[video]["lse_c"] or 0):
                best[video] = r
        keep = {id(r) for r in best.values()}
        dropped = [r["name"] for r in clips if id(r) not in keep]
        clips = [r for r in clips if id(r) in keep]
        print(f"speaker tracks only: dropped {len(dropped)} other tracks of the same videos: {', '.join(dropped)}")
    by_row = {}
    for long_only in (True, False):
        for source in sorted(by_source):
            recs = [r for r in clips if r["source"] == source and (r["frames"] >= args.min_frames) == long_only]
            if not recs:
                continue
            row = {"clips": len(recs), "seconds": round(sum(r["frames"] for r in recs) / 25, 1)}
            for k in shifts:
                hits = [r["offsets"][str(k)] is not None and abs(r["offsets"][str(k)] - k) <= 1 for r in recs]
                row[f"hit_{k:+d}"] = round(float(np.mean(hits)), 3)
            # diagnostic, not the mark: the shifted answers relative to the clip's own unshifted answer
            # (a clip whose own AV offset is 2 frames misses the mark at every k even if the judge tracks
            # every shift; this column tells that apart from a judge that cannot follow the shift)
            rel = [abs(r["offsets"][str(k)] - r["offsets"]["0"] - k) <= 1 for r in recs for k in shifts
                   if k != 0 and r["offsets"][str(k)] is not None and r["offsets"].get("0") is not None]
            row["shift_tracked"] = round(float(np.mean(rel)), 3) if rel else None
            row["real_above_other"] = round(float(np.mean(
                [(r["lse_c"] or 0) > (r["other_audio_lse_c"] or 0) for r in recs])), 3)
            row["lse_c_real"] = round(float(np.mean([r["lse_c"] or 0 for r in recs])), 3)
            row["lse_c_other"] = round(float(np.mean([r["other_audio_lse_c"] or 0 for r in recs])), 3)
            for a in alphas:
                row[f"real_above_still_{a:g}"] = round(float(np.mean(
                    [(r["lse_c"] or 0) > (r[f"still_{a:g}_lse_c"] or 0) for r in recs])), 3)
                row[f"lse_c_still_{a:g}"] = round(float(np.mean([r[f"still_{a:g}_lse_c"] or 0 for r in recs])), 3)
            for label in generators:
                row.update(generated_stats(recs, label))
            key = f"{source} [{'>=' if long_only else '<'}{args.min_frames / 25:g} s]"
            rows[key], by_row[key] = row, recs
    if args.reference:
        from s2v_jax.evaluation import lip_reference

        t1 = time.time()
        reference = lip_reference.fit(training, log=print)
        add_reference(clips, rows, by_row, reference, {t[1]: t[3] for t in tracks})
        print(f"lip reference: fitted on {len(training)} training tracks and applied in {time.time() - t1:.0f} s")
        for r in clips:
            if r.get("reference_offset") is not None and r["frames"] >= args.min_frames:
                print(f"  {r['name']}: judge {[r['offsets'][str(k)] for k in shifts]} at k={shifts}, "
                      f"reference offset {r['reference_offset']:+d} (correlation {r['reference_correlation']:.2f})")
    overall = {}
    for long_only in (True, False):
        recs = [r for r in clips if (r["frames"] >= args.min_frames) == long_only]
        if recs:
            row = {"clips": len(recs)}
            for k in shifts:
                row[f"hit_{k:+d}"] = round(float(np.mean([r["offsets"][str(k)] is not None and
                                                          abs(r["offsets"][str(k)] - k) <= 1 for r in recs])), 3)
            row["real_above_other"] = round(float(np.mean(
                [(r["lse_c"] or 0) > (r["other_audio_lse_c"] or 0) for r in recs])), 3)
            for a in alphas:
                row[f"real_above_still_{a:g}"] = round(float(np.mean(
                    [(r["lse_c"] or 0) > (r[f"still_{a:g}_lse_c"] or 0) for r in recs])), 3)
            for label in generators:
                row.update(generated_stats(recs, label))
            overall[f"all [{'>=' if long_only else '<'}{args.min_frames / 25:g} s]"] = row
    rows.update(overall)
    report = {"judge": args.checkpoint or "shipped", "shifts": shifts, "near_still": alphas, "min_frames": args.min_frames,
              "holdout_sources": held_out,
              "speaker_only": bool(args.speaker_only), "dropped_tracks": dropped,
              "rows": rows, "clips": clips, "seconds": round(time.time() - t0, 1)}
    if args.manual_dir:
        report["landmark_measure"] = landmark_measure(args.manual_dir, args.min_frames)
        lm = report["landmark_measure"]
        print(f"landmark sync correlation on {lm['clips']} held-out clips: real {lm['real_mean']:.3f}, "
              f"loudness-follower {lm['follower_mean']:.3f}; real ranked above the follower on "
              f"{lm['real_above_follower']:.0%}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    keys = [f"hit_{k:+d}" for k in shifts] + ["real_above_other", "shift_tracked", "lse_c_real", "lse_c_other"]
    keys += [f"{c}_{a:g}" for a in alphas for c in ("real_above_still", "lse_c_still")]
    for label in generators:
        keys += [f"real_above_generated{_suffix(label)}", f"lse_c_generated{_suffix(label)}"]
    if args.reference:
        keys += ["judge_agrees_reference", "hits_vs_reference"]
    print("| source | clips | s | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 3) + "|")
    for name, row in rows.items():
        print(f"| {name} | {row['clips']} | {row.get('seconds', '-')} | " + " | ".join(str(row.get(k, "-")) for k in keys) + " |")


if __name__ == "__main__":
    main()
