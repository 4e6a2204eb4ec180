"""One training run per work directory: an exclusive lock held for the run.

The lock is `fcntl.flock` on `workdir/.s2v_train.lock`, so the kernel drops it
when the holding process dies (kill -9 included): a lock file left by a dead
run is simply taken over. The file records the holder's PID and host for the
message a second run gets. With several processes (multi-host), process 0
holds it for the job.
"""

import errno
import os
import socket
from typing import Optional

from s2v_jax.errors import TrainingError

LOCK_FILE = ".s2v_train.lock"


class WorkdirLock:
    """`with WorkdirLock(workdir): ...`; TrainingError at once if another run holds it."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = os.path.join(workdir, LOCK_FILE)
        self.enabled = enabled
        self._fd: Optional[int] = None

    def acquire(self) -> "WorkdirLock":
        if not self.enabled:
            return self
        import fcntl  # POSIX only; the library's training runs on Linux and macOS

        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise TrainingError(f"work directory {os.path.dirname(self.path)} is in use by another training "
                                    f"run ({holder}); wait for it to finish, stop it, or use another "
                                    "--workdir") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
