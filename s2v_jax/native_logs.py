"""A filter for native (C++) logging on the process's stderr.

MediaPipe and TFLite print set-up notices (`W0000 00:00:... inference_feedback_manager.cc:114] ...`,
`INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`) straight to file descriptor 2, some of
them from their own threads after the call that caused them has returned, so no environment
variable and no redirection around the call catches all of them. The `s2v` commands install this
filter: fd 2 becomes a pipe read by a thread that drops those lines and forwards every other byte
to the real stderr, in order; at exit the pipe is drained. `s2v --verbose` leaves it out.
"""

import atexit
import os
import re
import sys
import threading
from typing import Optional

NATIVE_LINE = re.compile(rb"^(?:[WIEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] |INFO: Created TensorFlow Lite)")

_state = {"thread": None, "saved": None}


def _pump(read_fd: int, out_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not NATIVE_LINE.match(line))
        if kept:
            os.write(out_fd, kept)
    if pending and not NATIVE_LINE.match(pending):
        os.write(out_fd, pending)
    os.close(read_fd)


def install() -> Optional[threading.Thread]:
    """Routes fd 2 through the filter (once per process); returns its thread (None if already on)."""
    if _state["thread"] is not None:
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, saved), name="s2v-native-log-filter", daemon=True)
    thread.start()
    _state.update(thread=thread, saved=saved)
    atexit.register(uninstall)
    return thread


def uninstall(timeout: float = 2.0) -> None:
    """Puts the real stderr back on fd 2 and forwards what is still in the pipe."""
    thread, saved = _state["thread"], _state["saved"]
    if thread is None:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(saved, 2)  # closes the pipe's last write end: the thread drains it and stops
    thread.join(timeout)
    _state.update(thread=None, saved=None)
