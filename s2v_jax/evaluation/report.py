"""The evaluation report: report.json, index.html, plots and frame strips.

Layout of a report folder:
    report.json            settings, definitions, per-row means, per-clip measures and series
    index.html             the tables and images below, readable offline
    summary.png            bar charts of the per-row means
    plots/<clip>.png       mouth opening over time (model / static / real, audio envelope
                           behind), landmark-sync correlation and LSE distance against offset
    strips/<clip>.png      frames spread over the clip: rows real / generated / static
"""

import html
import json
import math
import os
from typing import Any, Dict, Mapping

import numpy as np

from s2v_jax.evaluation.metrics import LOWER_FACE_REGION_112

ROW_LABELS = {"model": "model", "static_baseline": "static baseline", "real": "real video"}
ROW_COLOURS = {"model": "tab:red", "static_baseline": "tab:grey", "real": "tab:blue"}
STRIP_ROWS = ("real", "model", "static_baseline")  # top to bottom

DEFINITIONS = {
    "psnr": "PSNR in dB against the real registered frame, mean over frames (images in [0, 1]; MSE floored at "
            "1e-10). The real row's PSNR against itself is infinite and reported as null.",
    "ssim": "SSIM (Gaussian 11x11, sigma 1.5, per channel) against the real frame, mean over frames.",
    "lmd": "Landmark distance: mean over the 40 lip landmarks (MediaPipe LIPS_OUTER + LIPS_INNER) of the "
           "distance between generated and real landmarks, divided by the real frame's inter-ocular distance "
           "(between the eye centres, each the midpoint of its two eye corners); mean over frames with a face "
           "in both. 0 for identical frames.",
    "sharpness": "Variance of the Laplacian (3x3, of the grey image, intensities 0-255) inside the lower face "
                 "(rows {}-{}, columns {}-{} of the 112x112 crop), mean over frames: blur lowers it, noise and "
                 "over-sharpening raise it; read it beside the real video's.".format(*LOWER_FACE_REGION_112),
    "face_found": "Fraction of frames in which the face mesh found a face.",
    "mouth_opening": "Inner-lip gap (mean of the 82/87, 13/14, 312/317 landmark distances) / inter-ocular "
                     "distance, per frame.",
    "mouth_motion": "Std of the high-passed mouth opening (minus its 9-frame moving average): how much the mouth "
                    "moves from frame to frame.",
    "mouth_opening_range": "p90 - p10 of the mouth opening over the clip: how far it opens.",
    "mouth_opening_std_ratio": "Mean mouth-opening std of the row over the real video's (1 = opens as much).",
    "mouth_motion_ratio": "Mean mouth motion of the row over the real video's (1 = moves as much).",
    "mouth_colour_de": "CIE76 Delta E between the row's and the real video's mean mouth colour (L*a*b* inside the "
                       "outer lips, all frames; 2.3 is about a just-noticeable difference): a painted mouth in "
                       "foreign colours raises it.",
    "mouth_lab": "Mean L*a*b* colour inside the outer lips (a* > 0 red/magenta, b* > 0 yellow), over clips.",
    "shut_where_real_opens": "Clips whose real mouth opens (opening range >= 0.10) where this row's stays shut "
                             "(range < 0.03); out of 'real_opens' such clips.",
    "sync_offset": "Diagnostic (not a sync score: a mouth that follows loudness maximises it). Landmark AV "
                   "offset in frames: -d for the d in -15..15 maximising the correlation between the audio RMS "
                   "envelope (40 ms windows centred on each frame) and the mouth opening, pairing mouth frame k "
                   "with audio frame k - d, both high-passed (minus a 9-frame moving average). Positive = audio "
                   "late (the sound comes after the picture). Needs the clip's waveform. Null when the mouth does "
                   "not move (std of the high-passed opening below 0.005, e.g. the static baseline).",
    "sync_correlation": "Diagnostic: that correlation at the best offset (at_zero: at offset 0).",
    "lse_d": "SyncNet LSE-D: with the sync expert's per-frame video and audio embeddings, D(d) = mean over frames "
             "of the distance between video frame k and audio frame k - d; LSE-D = min over d in -15..15 "
             "(lower = better sync).",
    "lse_c": "SyncNet LSE-C: median over d of D(d) minus its minimum (higher = more confident sync).",
    "av_offset": "SyncNet AV offset: -argmin over d of D(d) (D pairs video k with audio k - d), positive = audio late.",
    "within_1": "Fraction of clips whose offset is within one frame of 0.",
    "sync_recovered": "(LSE-C of the model - LSE-C of the static baseline) / (LSE-C of the real video - LSE-C of "
                      "the static baseline), on the means over clips, by the same judge in the same run: 0 = no "
                      "better than a still face, 1 = as confident as the real video.",
}


def to_json_safe(obj):
    """Replaces non-finite floats (and numpy scalars) so json.dump writes strict JSON."""
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json_safe(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------- images

def frame_strip(videos: Mapping[str, np.ndarray], num_frames: int = 8, label_width: int = 120) -> np.ndarray:
    """uint8 RGB image: one row per video (real / model / static), `num_frames` frames spread over the clip."""
    import cv2

    t = min(len(v) for v in videos.values())
    idx = np.unique(np.round(np.linspace(0, t - 1, min(num_frames, t))).astype(int))
    size = max(v.shape[1] for v in videos.values())
    rows = []
    for name in STRIP_ROWS:
        frames = [cv2.resize(f, (size, size)) if f.shape[0] != size else f for f in videos[name][idx]]
        label = np.full((size, label_width, 3), 255, np.uint8)
        cv2.putText(label, ROW_LABELS[name], (4, size // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.concatenate([label] + frames, axis=1))
    header = np.full((18, rows[0].shape[1], 3), 255, np.uint8)
    for j, i in enumerate(idx):
        cv2.putText(header, f"frame {i}", (label_width + j * size + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header] + rows, axis=0)


def _save_png(path: str, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def clip_plot(entry: Dict[str, Any], path: str) -> None:
    """Mouth opening over time, landmark-sync correlation and LSE distance against offset, per row."""
    has_sync = any(entry["rows"][r].get("sync_correlations") for r in entry["rows"])
    has_lse = any(entry["rows"][r].get("lse_distances") for r in entry["rows"])
    panels = 1 + has_sync + has_lse
    fig = _figure(5.2 * panels, 3.2)
    ax = fig.add_subplot(1, panels, 1)
    t = np.arange(entry["num_frames"]) / 25.0
    if entry.get("audio_envelope"):
        env = np.asarray(entry["audio_envelope"], float)
        ax2 = ax.twinx()
        ax2.fill_between(t, 0, env, color="tab:green", alpha=0.15, lw=0)
        ax2.set_yticks([])
        ax2.set_ylabel("audio RMS", color="tab:green")
    for row in ("real", "model", "static_baseline"):
        y = np.array([np.nan if v is None else v for v in entry["mouth_opening"][row]], float)
        ax.plot(t, y, color=ROW_COLOURS[row], label=ROW_LABELS[row], lw=1.4 if row != "static_baseline" else 1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth opening (/ IOD)")
    ax.set_title(entry["name"][:40], fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    col = 2
    for key, label in (("sync_correlations", "landmark sync correlation"), ("lse_distances", "LSE distance D(d)")):
        if not any(entry["rows"][r].get(key) for r in entry["rows"]):
            continue
        ax = fig.add_subplot(1, panels, col)
        col += 1
        for row in ("real", "model", "static_baseline"):
            values = entry["rows"][row].get(key)
            if values:
                m = (len(values) - 1) // 2
                y = np.array([np.nan if v is None else v for v in values], float)
                ax.plot(np.arange(-m, m + 1), y, color=ROW_COLOURS[row], label=ROW_LABELS[row])
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel("AV offset (frames, + = audio late)")
        ax.set_ylabel(label)
    fig.tight_layout()
    fig.savefig(path)


def summary_plot(rows: Dict[str, Dict[str, Any]], path: str) -> None:
    """Bar charts of the per-row means of the main measures."""
    keys = [k for k in ("psnr", "ssim", "lmd", "lse_d", "lse_c")
            if any(rows[r].get(k) is not None for r in rows)]
    fig = _figure(2.4 * max(1, len(keys)), 2.8)
    names = list(rows)
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, max(1, len(keys)), i + 1)
        vals = [rows[r].get(k) for r in names]
        ax.bar(range(len(names)), [0 if v is None else v for v in vals],
               color=[ROW_COLOURS[r] for r in names])
        for j, v in enumerate(vals):
            ax.text(j, 0 if v is None else v, "n/a" if v is None else f"{v:.3g}", ha="center", va="bottom",
                    fontsize=7)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([ROW_LABELS[r].replace(" ", "\n") for r in names], fontsize=7)
        ax.set_title(k, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


# ---------------------------------------------------------------- html

def _fmt(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: Dict[str, Dict[str, Any]], keys) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(f"<tr><th>{html.escape(ROW_LABELS.get(r, r))}</th>" + "".join(f"<td>{_fmt(rows[r].get(k))}</td>"
                                                                               for k in keys) + "</tr>"
                   for r in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


SUMMARY_KEYS = ("clips", "psnr", "ssim", "sharpness", "lmd", "lse_d", "lse_c", "sync_recovered", "av_offset_mean_abs",
                "av_offset_within_1", "face_found")
# Landmark lip sync ranks a mouth that only follows loudness above real video (BENCHMARKS.md): shown apart.
DIAGNOSTIC_KEYS = ("mouth_opening_std", "mouth_opening_std_ratio", "mouth_motion", "mouth_motion_ratio",
                   "shut_where_real_opens", "mouth_colour_de", "mouth_lab", "sync_correlation", "sync_correlation_at_zero",
                   "sync_offset_mean_abs", "sync_offset_within_1")
CLIP_KEYS = ("psnr", "ssim", "lmd", "face_found", "sync_offset", "sync_correlation", "lse_d", "lse_c", "av_offset")


def render_html(report: Dict[str, Any]) -> str:
    title = "Speech2Vid evaluation"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
             "body{font-family:sans-serif;margin:1.5em;max-width:1400px} table{border-collapse:collapse;"
             "margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}"
             "img{max-width:100%} .defs{font-size:12px;color:#333}</style></head><body>",
             f"<h1>{title}</h1>",
             "<p>" + "<br>".join(f"<b>{html.escape(k)}</b>: {html.escape(str(report.get(k)))}"
                                 for k in ("checkpoint", "videos", "sync_expert") if k in report) + "</p>",
             f"<p>{len(report['clips'])} clips evaluated, {len(report.get('skipped', []))} skipped; settings: "
             f"{html.escape(json.dumps(report.get('settings', {})))}</p>",
             "<h2>Summary (mean over clips)</h2>", _table(report["rows"], SUMMARY_KEYS),
             "<img src='summary.png' alt='summary'>",
             "<h2>Diagnostics (landmark lip sync: not a sync score)</h2>", _table(report["rows"], DIAGNOSTIC_KEYS),
             "<h2>Definitions</h2><ul class='defs'>" + "".join(
                 f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in report["definitions"].items())
             + "</ul>"]
    if report.get("skipped"):
        parts.append("<h2>Skipped</h2><ul>" + "".join(
            f"<li>{html.escape(s['source'])}: {html.escape(s['reason'])}</li>" for s in report["skipped"]) + "</ul>")
    parts.append("<h2>Clips</h2>")
    for c in report["clips"]:
        parts += [f"<h3>{html.escape(c['name'])}</h3>",
                  f"<p>{html.escape(c['source'])}: {c['num_frames']} frames, identity frame(s) {c['identity_frames']}</p>",
                  _table(c["rows"], CLIP_KEYS),
                  f"<img src='{html.escape(c['plot'])}' alt='plots'><br>",
                  f"<img src='{html.escape(c['strip'])}' alt='frames'>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: Dict[str, Any], out_dir: str, media: Mapping[str, Mapping[str, np.ndarray]],
                 strip_frames: int = 8) -> Dict[str, Any]:
    """Writes strips, plots, summary.png, report.json and index.html into out_dir; returns the report
    as written (image paths added to the clips, non-finite numbers as None)."""
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "strips"), exist_ok=True)
    for clip in report["clips"]:
        clip["strip"] = f"strips/{clip['name']}.png"
        clip["plot"] = f"plots/{clip['name']}.png"
        if clip["name"] in media:
            _save_png(os.path.join(out_dir, clip["strip"]), frame_strip(media[clip["name"]], strip_frames))
        clip_plot(clip, os.path.join(out_dir, clip["plot"]))
    summary_plot(report["rows"], os.path.join(out_dir, "summary.png"))
    safe = to_json_safe(report)
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(safe, f, indent=1, allow_nan=False)
    with open(os.path.join(out_dir, "index.html"), "w", encoding="utf-8") as f:
        f.write(render_html(safe))
    return safe
