"""`s2v quickstart`: every stage runs and writes its outputs (slow: builds the corpus)."""

import json
import math

import pytest

from s2v_jax.quickstart import format_result, run_quickstart


def test_format_result_lists_every_row():
    result = {"total_minutes": 1.5, "demo_video": "d.mp4", "report": "r.html",
              "summary": {"model": {"psnr": 31.3, "sync_correlation": None},
                          "static_baseline": {"psnr": 32.0}, "real": {"lmd": 0.0}}}
    text = format_result(result)
    lines = text.splitlines()
    assert "1.5 min" in lines[0] and "d.mp4" in lines[0]
    assert [ln.split()[0] for ln in lines[2:5]] == ["model", "static_baseline", "real"]
    assert "31.3" in lines[2] and "-" in lines[2].split()  # a missing measure prints as '-'
    assert "first frame" in lines[5] and len(lines) == 6  # which measure the table is; no validation given
    result["train"] = {"last_eval": {"psnr": 29.66, "static_psnr": 29.03}}
    last = format_result(result).splitlines()[-1]
    assert "training validation" in last and "29.66" in last and "29.03" in last


@pytest.mark.slow
def test_quickstart_runs_every_stage(tmp_path):
    result = run_quickstart(str(tmp_path), overrides=["train.num_steps=4", "train.eval_every=4",
                                                      "train.checkpoint_every=4", "train.progress_bar=False"],
                            max_eval_clips=1)
    assert (tmp_path / "demo.mp4").stat().st_size > 0
    assert (tmp_path / "report" / "index.html").exists()
    assert set(result["summary"]) == {"model", "static_baseline", "real"}
    saved = json.loads((tmp_path / "quickstart.json").read_text())  # strict JSON (no NaN)
    assert saved["train"]["step"] == 4
    assert all(math.isfinite(v) for v in saved["timings_s"].values())
