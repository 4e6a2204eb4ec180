"""`s2v evaluate` and evaluate_checkpoint on tiny checkpoints trained in the
session (tests/ckpt_fixture.py) and procedural media: report.json with the
model, static_baseline and real rows, index.html with its plots and frame
strips, skipped inputs, the v201 (109 px, five stills) path, a TFDS split,
and one-line errors."""

import json
import os

import ckpt_fixture
import numpy as np
import pytest

from s2v_jax.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW_KEYS = {"psnr", "ssim", "lmd", "face_found", "sync_offset", "sync_correlation", "lse_d", "lse_c", "av_offset"}


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    """An untrained sync expert checkpoint with random weights, made without compiling
    anything (enough for the report's LSE columns)."""
    import jax

    from s2v_jax.config_utils import load_config
    from s2v_jax.models import syncnet
    from s2v_jax.train import checkpointing
    from s2v_jax.train.state import abstract_train_state
    from s2v_jax.train.tasks import get_task

    config = load_config(os.path.join(REPO, "configs/syncnet.py"), ["model.width=0.0625", "model.embed_dim=16"])
    model = syncnet.build_syncnet(config)
    abstract = abstract_train_state(config, model, get_task(config))
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = getattr(path[-1], "key", getattr(path[-1], "name", ""))
        if name == "var":  # BatchNorm running variance
            return np.ones(leaf.shape, leaf.dtype)
        if not np.issubdtype(leaf.dtype, np.floating) or name == "mean":
            return np.zeros(leaf.shape, leaf.dtype)
        return (rng.normal(size=leaf.shape) * 0.1).astype(leaf.dtype)

    state = jax.tree_util.tree_map_with_path(fill, abstract)
    workdir = str(tmp_path_factory.mktemp("expert"))
    ckpt = checkpointing.Checkpointer(workdir)
    ckpt.save(0, state, data_state={}, meta={}, config=config)
    ckpt.wait()
    ckpt.close()
    return workdir


@pytest.fixture(scope="module")
def cli_report(ckpts, media, expert, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    videos = os.path.dirname(media["talk"])  # talk.mp4, noface.mp4, truncated.mp4
    rc = main(["evaluate", "--checkpoint", ckpts["gen"], "--videos", videos, "--out", str(out),
               "--sync-expert", expert, "--max-clips", "2", "--batch-size", "16", "--quiet"])
    assert rc == 0
    with open(out / "report.json") as f:
        return out, json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))


def test_report_has_model_static_and_real_rows(cli_report):
    _, report = cli_report
    assert set(report["rows"]) == {"model", "static_baseline", "real"}
    assert [c["source"] for c in report["clips"]] == ["talk.mp4"]
    clip = report["clips"][0]
    assert clip["num_frames"] >= 25 and clip["identity_frames"] == [0]
    for row in ("model", "static_baseline", "real"):
        assert ROW_KEYS <= set(clip["rows"][row]), row
        assert len(clip["mouth_opening"][row]) == clip["num_frames"]
        assert clip["rows"][row]["lse_d"] is not None and len(clip["rows"][row]["lse_distances"]) == 31
    real, static = clip["rows"]["real"], clip["rows"]["static_baseline"]
    assert real["psnr"] is None and real["ssim"] == 1.0 and real["lmd"] == 0.0
    assert real["face_found"] == 1.0 and real["sync_offset"] is not None  # the real mouth moves with the audio
    assert static["psnr"] > 15 and 0 < static["ssim"] <= 1 and static["lmd"] > 0
    assert static["sync_offset"] is None  # a still mouth has no sync
    assert report["rows"]["real"]["psnr"] is None and report["rows"]["static_baseline"]["clips"] == 1
    assert report["settings"]["output_size"] == 112 and report["sync_expert"] == os.path.abspath(report["sync_expert"])
    assert "lmd" in report["definitions"] and "inter-ocular" in report["definitions"]["lmd"]
    rec = {r: report["rows"][r]["sync_recovered"] for r in report["rows"]}
    if rec["real"] is not None:  # defined when the judge finds the real video more confident than the still
        assert rec["real"] == 1.0 and rec["static_baseline"] == 0.0 and rec["model"] is not None


def test_unreadable_inputs_are_skipped_with_a_reason(cli_report):
    _, report = cli_report
    skipped = {s["source"]: s["reason"] for s in report["skipped"]}
    assert "noface.mp4" in skipped and "no face" in skipped["noface.mp4"]


def test_index_html_references_plots_and_strips(cli_report):
    out, report = cli_report
    html = (out / "index.html").read_text()
    clip = report["clips"][0]
    for rel in ("summary.png", clip["plot"], clip["strip"]):
        assert rel in html
        assert (out / rel).stat().st_size > 1000, rel
    import cv2

    strip = cv2.imread(str(out / clip["strip"]))
    assert strip.shape[0] == 18 + 3 * 112  # header + real / generated / static rows


def test_v201_five_stills_function_api(ckpts, media, tmp_path):
    from s2v_jax.evaluation.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(ckpts["v201"], media["talk"], str(tmp_path), batch_size=16, sync_expert=None)
    clip = report["clips"][0]
    assert report["settings"]["output_size"] == 109 and report["settings"]["identity_images"] == 5
    assert len(clip["identity_frames"]) == 5 and clip["identity_frames"][0] == 0
    assert np.isfinite(clip["rows"]["model"]["psnr"]) and "lse_d" not in clip["rows"]["model"]
    assert (tmp_path / "index.html").is_file()


@pytest.mark.timeout(300)
def test_tfds_split(ckpts, tmp_path_factory, tmp_path):
    import tfds_builders
    from s2v_jax.evaluation.evaluate import evaluate_checkpoint

    data_dir = str(tmp_path_factory.getbasetemp() / "synthetic_tiny")  # shared with the pipeline tests
    tfds_builders.build("synthetic_talking_faces/tiny", data_dir)
    report = evaluate_checkpoint(ckpts["gen"], "synthetic_talking_faces/tiny:validation", str(tmp_path),
                                 data_dir=data_dir, max_clips=1, batch_size=16, sync_expert=None)
    assert len(report["clips"]) == 1
    clip = report["clips"][0]
    assert clip["audio_envelope"] is not None  # found the rendered source video for the waveform
    assert clip["rows"]["real"]["sync_correlation"] is not None

    from s2v_jax.evaluation.evaluate import clips_from_tfds

    lengths = [len(c.crops) for c in clips_from_tfds("synthetic_talking_faces/tiny:validation", data_dir)]
    cut = sorted(lengths)[len(lengths) // 2]
    kept = [len(c.crops) for c in clips_from_tfds("synthetic_talking_faces/tiny:validation", data_dir,
                                                  min_frames=cut)]
    assert kept == [n for n in lengths if n >= cut]  # shorter tracks passed over, the order kept


def test_errors_are_one_line(ckpts, tmp_path, capsys):
    rc = main(["evaluate", "--checkpoint", ckpts["gen"], "--videos", str(tmp_path / "nowhere"),
               "--out", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "nockpt"), "--videos", str(tmp_path),
               "--out", str(tmp_path / "r")])
    assert rc == 2


def test_still_closed_picks_the_most_closed_mouth_and_the_summary_compares_motion(ckpts, media, tmp_path):
    from s2v_jax.evaluation import evaluate as ev

    lm = np.zeros((4, 478, 2), np.float32)
    lm[:, 33], lm[:, 133], lm[:, 362], lm[:, 263] = (0, 0), (10, 0), (30, 0), (40, 0)
    for t, gap in enumerate([5.0, 2.0, 0.4, 3.0]):
        for u, low in ev.metrics.INNER_LIP_PAIRS:
            lm[t, u], lm[t, low] = (20, 50), (20, 50 + gap)
    assert ev.closed_mouth_index(lm) == 2
    lm[2] = np.nan  # no face there: the most closed of the others
    assert ev.closed_mouth_index(lm) == 1
    assert ev.closed_mouth_index(np.full((3, 478, 2), np.nan, np.float32)) == 0
    report = ev.evaluate_checkpoint(ckpts["gen"], media["talk"], str(tmp_path), batch_size=16, sync_expert=None,
                                    still="closed")
    clip = report["clips"][0]
    opening = np.array([np.nan if x is None else x for x in clip["mouth_opening"]["real"]])
    assert clip["identity_frames"][0] == int(np.nanargmin(opening)) and report["settings"]["still"] == "closed"
    rows = report["rows"]
    real, model = rows["real"], rows["model"]
    assert real["mouth_opening_std_ratio"] == 1.0
    for row in (model, rows["static_baseline"]):  # the tiny model's face may not be found: no ratio then
        expect = None if row["mouth_opening_std"] is None else row["mouth_opening_std"] / real["mouth_opening_std"]
        assert row["mouth_opening_std_ratio"] == pytest.approx(expect)
    # a repeated frame: the face mesh's own jitter, far below a mouth that moves
    assert rows["static_baseline"]["mouth_opening_std_ratio"] < 0.1
    assert rows["static_baseline"]["mouth_opening_range"] < ev.SHUT
    assert rows["static_baseline"]["shut_where_real_opens"] == real["real_opens"]
    with pytest.raises(ev.S2VError, match="--still"):
        ev.evaluate_clips(None, [], str(tmp_path / "x"), still="open")


def test_sync_recovered_by_hand():
    from s2v_jax.evaluation.evaluate import sync_recovered

    rows = {"model": {"lse_c": 2.0}, "static_baseline": {"lse_c": 1.0}, "real": {"lse_c": 5.0}}
    assert sync_recovered(rows) == {"model": 0.25, "static_baseline": 0.0, "real": 1.0}
    rows["real"]["lse_c"] = 1.0  # the real video no more confident than a still: undefined
    assert sync_recovered(rows) == {"model": None, "static_baseline": None, "real": None}
    assert sync_recovered({"model": {"lse_c": None}, "static_baseline": {}, "real": {}})["model"] is None


def test_a_deleted_metadata_file_is_reported_as_damage_not_as_a_config_mismatch(expert, tmp_path):
    import shutil

    from s2v_jax.train.checkpointing import DamagedCheckpointError, load_checkpoint

    workdir = tmp_path / "judge"
    shutil.copytree(expert, workdir)
    os.remove(workdir / "checkpoints" / "0" / "state" / "_METADATA")
    with pytest.raises(DamagedCheckpointError) as info:
        load_checkpoint(str(workdir))
    msg = str(info.value)
    assert "checkpoints/0 is damaged" in msg and "_METADATA" in msg and "does not match" not in msg, msg
    assert "\n" not in msg
