"""The app's temporary folder and its one-worker job queue.

Workspace: one folder made by `tempfile.mkdtemp` (or under `parent`); each job gets
`<root>/<job id>/in/` for its uploads and `<root>/<job id>/out/` for its results. A job's
uploads are deleted as soon as it ends (done, failed or cancelled); the results of the last
`keep` jobs are kept for the page to show, older job folders are deleted, and `close()` removes
the whole folder. Nothing a user uploads is written anywhere else.

JobQueue: one worker thread takes jobs in the order they were submitted and runs them one at a
time, so two requests at once are queued, never interleaved; each job reads and writes only its
own folder. A job reports progress through `Job.progress(stage, done, total)`, which also stops
it (raises `Cancelled`) once the queue is closing.
"""

import dataclasses
import os
import pathlib
import queue
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
from typing import Callable, Dict, List, Optional

from s2v_jax.errors import S2VError

# Overall progress: the fraction of the bar each stage ends at (the judge's share runs to 1).
STAGE_ENDS = {
    "photo": {"face tracking": 0.05, "generation": 0.80, "encoding": 0.85, "judge": 1.0},
    "redub": {"face tracking": 0.35, "generation": 0.85, "encoding": 0.90, "judge": 1.0},
}


class Cancelled(Exception):
    """Raised inside a running job when the app is shutting down."""


def one_line(message: str) -> str:
    """A message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(message).split())


@dataclasses.dataclass
class Job:
    """One request: its files, state and progress. state: queued, running, done, error, cancelled."""

    id: str
    kind: str  # 'photo' or 'redub'
    folder: pathlib.Path
    inputs: Dict[str, List[pathlib.Path]] = dataclasses.field(default_factory=dict)
    state: str = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    error: Optional[str] = None
    warnings: List[str] = dataclasses.field(default_factory=list)
    result: Dict = dataclasses.field(default_factory=dict)
    submitted: float = dataclasses.field(default_factory=time.time)
    started: Optional[float] = None
    finished: Optional[float] = None
    cancel: Optional[threading.Event] = None

    @property
    def in_dir(self) -> pathlib.Path:
        return self.folder / "in"

    @property
    def out_dir(self) -> pathlib.Path:
        return self.folder / "out"

    def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Progress callback of the library functions (`generate.report_progress`); raises Cancelled
        when the queue is closing."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        self.stage, self.done, self.total = stage, int(done), int(total)

    def fraction(self) -> float:
        """Overall progress in [0, 1], for the bar."""
        if self.state in ("done",):
            return 1.0
        ends = STAGE_ENDS.get(self.kind, STAGE_ENDS["photo"])
        if self.stage not in ends:
            return 0.0
        names = list(ends)
        start = ends[names[names.index(self.stage) - 1]] if names.index(self.stage) else 0.0
        part = self.done / self.total if self.total else 0.0
        return round(start + (ends[self.stage] - start) * min(1.0, part), 4)

    def clean_message(self, message: str) -> str:
        """A library message as the page shows it: one line, the app's own folders replaced by the
        names the user gave (uploads) or 'the result' (outputs)."""
        text = one_line(message)
        text = re.sub(re.escape(str(self.in_dir)) + r"/[^/\s]+/", "", text)
        text = text.replace(str(self.out_dir / "video.mp4"), "the result")
        return text.replace(str(self.folder), "the job folder")


class Workspace:
    """The app's one temporary folder (see the module docstring)."""

    def __init__(self, parent: Optional[str] = None, keep: int = 20):
        if parent is not None:
            os.makedirs(parent, exist_ok=True)
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="s2v_app_", dir=parent))
        self.keep = max(1, int(keep))
        self._finished: List[pathlib.Path] = []
        self._lock = threading.Lock()

    def new_job(self, kind: str) -> Job:
        if kind not in STAGE_ENDS:
            raise ValueError(f"unknown job kind {kind!r}")
        job_id = secrets.token_hex(8)
        folder = self.root / job_id
        (folder / "in").mkdir(parents=True)
        (folder / "out").mkdir()
        return Job(id=job_id, kind=kind, folder=folder)

    def drop_inputs(self, job: Job) -> None:
        shutil.rmtree(job.in_dir, ignore_errors=True)

    def discard(self, job: Job) -> None:
        """Removes a job's whole folder (a refused upload)."""
        shutil.rmtree(job.folder, ignore_errors=True)

    def finished(self, job: Job) -> List[pathlib.Path]:
        """Drops the job's uploads and the folders of jobs older than the last `keep`; returns those."""
        self.drop_inputs(job)
        with self._lock:
            self._finished.append(job.folder)
            old, self._finished = self._finished[:-self.keep], self._finished[-self.keep:]
        for folder in old:
            shutil.rmtree(folder, ignore_errors=True)
        return old

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class JobQueue:
    """One worker thread running `run_job(job)` for each submitted job, first in, first out.

    run_job fills `job.result` (and may call `job.progress`); an `S2VError` it raises becomes the
    job's one-line error, with the app's folders replaced by the user's file names. `warmup`, if
    given, runs on the worker before the first job (compiles the models): `ready` is set after it.
    """

    def __init__(self, run_job: Callable[[Job], None], workspace: Workspace,
                 warmup: Optional[Callable[[], None]] = None, log=None):
        self.run_job, self.workspace, self.warmup = run_job, workspace, warmup
        self.log = log if log is not None else sys.stderr
        self.jobs: Dict[str, Job] = {}
        self.ready = threading.Event()
        self.warmup_error: Optional[str] = None
        self._order: List[str] = []  # ids of queued and running jobs, in order
        self._queue: "queue.Queue[Optional[Job]]" = queue.Queue()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="s2v-app-worker", daemon=True)

    def start(self) -> "JobQueue":
        self._thread.start()
        return self

    def submit(self, job: Job) -> Job:
        job.cancel = self._cancel
        with self._lock:
            if self._cancel.is_set():
                raise S2VError("the app is shutting down; the request was not queued")
            self.jobs[job.id] = job
            self._order.append(job.id)
            self._queue.put(job)
        return job

    def get(self, job_id: str) -> Optional[Job]:
        return self.jobs.get(job_id)

    def ahead(self, job: Job) -> int:
        """Jobs that run before this one (the running one included)."""
        with self._lock:
            return self._order.index(job.id) if job.id in self._order else 0

    def pending(self) -> int:
        with self._lock:
            return len(self._order)

    def close(self, timeout: float = 30.0) -> None:
        """Stops the running job at its next progress report, drops the queued ones and waits for the
        worker (at most `timeout` s)."""
        self._cancel.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        if self.warmup is not None:
            try:
                self.warmup()
            except Exception as e:  # the jobs will show the same error; the page says so at once
                self.warmup_error = one_line(e)
                print(f"s2v app: warning: warm-up failed: {self.warmup_error}", file=self.log)
        self.ready.set()
        while True:
            job = self._queue.get()
            if job is None:
                break
            if self._cancel.is_set():
                state, error = "cancelled", "the app shut down before this job ran"
            else:
                state, error = self._run(job)
            old = self.workspace.finished(job)  # the uploads go before the page hears that the job ended
            with self._lock:
                if job.id in self._order:
                    self._order.remove(job.id)
                for folder in old:  # results deleted: their jobs are forgotten
                    self.jobs.pop(folder.name, None)
            job.error, job.finished, job.state = error, time.time(), state
        # drain what is left: nothing runs after close()
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                self.workspace.finished(job)
                with self._lock:
                    if job.id in self._order:
                        self._order.remove(job.id)
                job.error, job.finished, job.state = "the app shut down before this job ran", time.time(), "cancelled"

    def _run(self, job: Job):
        """Runs the job; returns its final (state, error)."""
        job.state, job.started = "running", time.time()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.run_job(job)
            job.warnings += [job.clean_message(w.message) for w in caught
                             if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
            return "done", None
        except Cancelled:
            return "cancelled", "stopped: the app is shutting down"
        except S2VError as e:
            return "error", job.clean_message(e)
        except Exception as e:  # a bug, not bad input: one line in the page, the traceback in the log
            traceback.print_exc(file=self.log)
            return "error", job.clean_message(f"internal error ({type(e).__name__}: {e})")
