"""multipart/form-data uploads streamed straight into a job's `in/` folder.

Each file part is written as it arrives to `<in>/<field><n>/<its name, made safe>` (one folder per
file, so the page can name it in messages as the user did); nothing is held in memory or spooled
to the system's temporary folder. A file over `max_bytes` stops the upload with `UploadError`
(HTTP 413) and the caller discards the job's folder.
"""

import pathlib
import re
from typing import Dict, List, Sequence

from python_multipart.multipart import MultipartParser, parse_options_header

from s2v_jax.errors import S2VError


class UploadError(S2VError):
    """A refused upload; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_name(name: str, fallback: str) -> str:
    """The last path component of a client's file name, with only [\\w.-] kept (no folder, no dot file)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\-]+", "_", base).lstrip(".")[:100]
    return base or fallback


def megabytes(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


async def receive_files(request, folder: pathlib.Path, fields: Sequence[str], max_bytes: int,
                        max_files: int = 6) -> Dict[str, List[pathlib.Path]]:
    """Streams a Starlette request's multipart body into `folder`: {field: [paths]} for the file
    fields named in `fields` (other parts are ignored). Raises UploadError."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError("the upload must be multipart/form-data (a form with files)", 415)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_files * max_bytes + 1_000_000:
        raise UploadError(f"the upload is {megabytes(int(length))}, over this page's limit of "
                          f"{megabytes(max_bytes)} per file (s2v app --max-upload-mb)", 413)

    files: Dict[str, List[pathlib.Path]] = {}
    state = {"headers": {}, "field": b"", "value": b"", "out": None, "name": "", "size": 0, "count": 0,
             "error": None}

    def on_part_begin():
        state["headers"] = {}

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        field = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in disp or field not in fields:
            state["out"] = None
            return
        client_name = disp[b"filename"].decode("utf-8", "replace")
        if not client_name:  # an empty file input sends a part with no name and no bytes
            state["out"] = None
            return
        state["count"] += 1
        if state["count"] > max_files:
            raise UploadError(f"too many files in one request (at most {max_files})", 413)
        n = len(files.get(field, []))
        sub = folder / f"{field}{n}"
        sub.mkdir(parents=True)
        path = sub / safe_name(client_name, f"{field}{n}")
        files.setdefault(field, []).append(path)
        state["out"], state["name"], state["size"] = open(path, "wb"), path.name, 0

    def on_part_data(data, start, end):
        out = state["out"]
        if out is None:
            return
        state["size"] += end - start
        if state["size"] > max_bytes:
            raise UploadError(f"{state['name']} is larger than {megabytes(max_bytes)}, this page's limit per "
                              "file (s2v app --max-upload-mb)", 413)
        out.write(data[start:end])

    def on_part_end():
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        raise
    except Exception as e:  # a malformed body
        raise UploadError(f"could not read the upload ({type(e).__name__}: {e})", 400) from None
    finally:
        if state["out"] is not None:
            state["out"].close()
    return files
