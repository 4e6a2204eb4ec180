"""A small client of the page's HTTP endpoints (standard library only), for scripts, tests and
benchmarks/bench_app.py:

    job = submit("http://127.0.0.1:7860/", "photo", [("images", "me.jpg"), ("audio", "hello.wav")])
    status = wait("http://127.0.0.1:7860/", job["id"])      # until done, error or cancelled
    fetch("http://127.0.0.1:7860/", status["result"]["video"], "out.mp4")
"""

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Callable, Optional, Sequence, Tuple, Union

FileSpec = Union[Tuple[str, str], Tuple[str, str, bytes]]  # (field, path) or (field, name, bytes)


def multipart_body(files: Sequence[FileSpec]) -> Tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request with these files."""
    boundary = uuid.uuid4().hex
    parts = []
    for spec in files:
        field, name = spec[0], spec[1]
        data = spec[2] if len(spec) > 2 else open(name, "rb").read()
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                     f"filename=\"{os.path.basename(name)}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                     .encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request_json(url: str, data: Optional[bytes] = None, headers: Optional[dict] = None,
                 timeout: float = 600) -> Tuple[int, dict]:
    """(HTTP status, JSON body); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def submit(base: str, kind: str, files: Sequence[FileSpec]) -> dict:
    """POSTs a job ('photo' or 'redub'); returns the answer with 'status' (202, or the refusal's code)."""
    body, ctype = multipart_body(files)
    code, answer = request_json(base.rstrip("/") + f"/api/{kind}", body, {"Content-Type": ctype})
    return {"status": code, **answer}


def status(base: str, job_id: str) -> dict:
    return request_json(base.rstrip("/") + f"/api/jobs/{job_id}")[1]


def wait(base: str, job_id: str, until: Callable[[dict], bool] = None, timeout: float = 900,
         poll: float = 0.1) -> dict:
    """Polls a job until `until(status)` (default: it has ended); TimeoutError after `timeout` s."""
    until = until or (lambda s: s["state"] in ("done", "error", "cancelled"))
    end = time.time() + timeout
    while True:
        s = status(base, job_id)
        if until(s):
            return s
        if time.time() > end:
            raise TimeoutError(f"job {job_id} still {s['state']} after {timeout} s")
        time.sleep(poll)


def fetch(base: str, path: str, out: str) -> str:
    """Downloads one of the app's files (a result's '/jobs/...' path) to `out`."""
    urllib.request.urlretrieve(base.rstrip("/") + path, out)
    return out
