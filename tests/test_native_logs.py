"""The stderr filter for native (C++) log lines that the `s2v` commands install."""

import subprocess
import sys

from s2v_jax.native_logs import filter_chunk

W = b"W0000 00:00:1733212.123456   12345 inference_feedback_manager.cc:114] Feedback manager requires a model\n"
INFO = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def run_all(chunks):
    out, pending = b"", b""
    for c in chunks:
        kept, pending = filter_chunk(pending, c)
        out += kept
    kept, _ = filter_chunk(pending, b"", final=True)
    return out + kept


def test_native_lines_go_other_text_stays_in_order():
    assert run_all([b"one\n" + W + INFO + b"two\n"]) == b"one\ntwo\n"
    assert run_all([b"a real error: E1203 is not a log prefix\n"]) == b"a real error: E1203 is not a log prefix\n"


def test_a_native_line_after_a_progress_bar_is_dropped_and_the_bar_kept():
    # tqdm redraws with '\r' and no newline: a native line written meanwhile follows the bar's text
    got = run_all([b"\rtracking 10%|#", b"\rtracking 20%|##", W, b"\rtracking 30%|###", b"\n"])
    assert got == b"\rtracking 10%|#\rtracking 20%|##\rtracking 30%|###\n"


def test_a_line_split_across_reads_is_judged_whole_and_bars_are_not_held_back():
    for cut in range(1, len(W)):
        assert run_all([b"ok\n" + W[:cut], W[cut:] + b"after\n"]) == b"ok\nafter\n", cut
    kept, pending = filter_chunk(b"", b"\rtrain 5/600 WARNING lr=1e-3")
    assert kept == b"\rtrain 5/600 WARNING lr=1e-3" and pending == b""  # shown at once


def test_installed_filter_cleans_the_process_stderr():
    code = ("import os, sys; sys.path.insert(0, '.'); from s2v_jax import native_logs; native_logs.install(); "
            f"os.write(2, b'\\rbar 50%'); os.write(2, {W!r}); os.write(2, b'\\rbar 100%\\n'); "
            "os.write(2, b'kept line\\n'); native_logs.uninstall()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b"\rbar 50%\rbar 100%\nkept line\n"
