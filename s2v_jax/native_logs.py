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

NATIVE_LINE = re.compile(rb"(?:[WIEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] |INFO: Created TensorFlow Lite)")

# the start of a native line cut off at the end of what has been read so far
NATIVE_START = re.compile(rb"(?:[WIEF](?:\d{0,4}|\d{4} [\d:.]*(?:\s+(?:\d+(?: \S*)?)?)?)|I(?:N(?:F(?:O(?::.*)?)?)?)?)\Z")

_state = {"thread": None, "saved": None}


def filter_chunk(pending: bytes, chunk: bytes, final: bool = False):
    """(bytes to forward, bytes kept for the next chunk). A native line runs from its prefix to the
    next newline and is dropped, newline included, even where it follows a progress bar's text on the
    same terminal line (tqdm redraws with '\r' and no newline, so a native line written meanwhile lands
    after the bar's text): the bar's text is kept and its next '\r' redraws over the spot. Until
    `final`, an unfinished last line is held back from where a native line could be starting (so a
    line split across reads is judged whole); the rest of it, a progress bar's text, goes out at once."""
    data = pending + chunk
    cut = len(data)
    if not final:
        last = data.rfind(b"\n") + 1  # the unfinished last line starts here
        whole = NATIVE_LINE.search(data, last)
        part = NATIVE_START.search(data, last)
        starts = [m.start() for m in (whole, part) if m is not None]
        if starts:
            cut = min(starts)
    ready, rest = data[:cut], data[cut:]
    out, i = [], 0
    for m in NATIVE_LINE.finditer(ready):
        if m.start() < i:
            continue
        out.append(ready[i:m.start()])
        nl = ready.find(b"\n", m.end())
        i = len(ready) if nl < 0 else nl + 1
    out.append(ready[i:])
    return b"".join(out), rest


def _pump(read_fd: int, out_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            chunk = b""
        kept, pending = filter_chunk(pending, chunk, final=not chunk)
        if kept:
            os.write(out_fd, kept)
        if not chunk:
            break
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
