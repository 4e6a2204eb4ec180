"""The page's HTTP routes (Starlette) and `serve` (uvicorn on one socket).

    GET  /                      the page
    GET  /api/info              model, judge, limits, whether the warm-up is done
    POST /api/photo             multipart: images (1, or 5 for a 5-image model), audio -> {"id"}
    POST /api/redub             multipart: video, audio -> {"id"}
    GET  /api/jobs/{id}         state, stage, progress, error, result (video URL, offset, LSE-C, strip)
    GET  /jobs/{id}/video.mp4   the result (range requests: the page's player seeks)
    GET  /jobs/{id}/strip.png   the mouth strip

Bad input is answered with {"error": one line} (HTTP 4xx for a refused upload; in the job's state
for what only the run finds, as the CLI would print it). The Host header must name the address the
app listens on (no DNS rebinding from another site), and the page's Content-Security-Policy allows
this origin only.
"""

import ipaddress
import socket
import time
from typing import Optional

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from s2v_jax.app.jobs import JobQueue, Workspace
from s2v_jax.app.page import PAGE
from s2v_jax.app.upload import UploadError, receive_files
from s2v_jax.errors import S2VError

CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self'; media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
FIELDS = {"photo": ("images", "audio"), "redub": ("video", "audio")}
RESULT_FILES = {"video.mp4": "video/mp4", "strip.png": "image/png"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def job_status(queue: JobQueue, job) -> dict:
    result = {k: v for k, v in job.result.items() if k != "video_ready_at"}
    out = {"id": job.id, "kind": job.kind, "state": job.state, "stage": job.stage, "done": job.done,
           "total": job.total, "progress": job.fraction(), "ahead": queue.ahead(job) if job.state == "queued" else 0,
           "error": job.error, "warnings": job.warnings, "result": result}
    if job.started is not None:
        end = job.finished or time.time()
        out["elapsed_s"] = round(end - job.submitted, 2)
        if "video_ready_at" in job.result:
            out["video_s"] = round(job.result["video_ready_at"] - job.submitted, 2)
    return out


def create_app(queue: JobQueue, workspace: Workspace, info: dict, max_upload_bytes: int,
               allowed_hosts=None) -> Starlette:
    """The Starlette app over a started JobQueue; info: what /api/info shows (checkpoint, judge, photos)."""

    async def page(request: Request):
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})

    async def api_info(request: Request):
        return JSONResponse({**info, "ready": queue.ready.is_set(), "warmup_error": queue.warmup_error,
                             "max_upload_mb": round(max_upload_bytes / 1e6, 1), "queued": queue.pending()})

    async def submit(request: Request):
        kind = request.path_params["kind"]
        if kind not in FIELDS:
            return JSONResponse({"error": f"no such job kind {kind!r}"}, 404)
        job = workspace.new_job(kind)
        try:
            job.inputs = await receive_files(request, job.in_dir, FIELDS[kind], max_upload_bytes)
            missing = [f for f in FIELDS[kind] if not job.inputs.get(f)]
            if missing:
                what = {"images": "a photo", "audio": "a speech file", "video": "a video"}
                raise UploadError("choose " + " and ".join(what[m] for m in missing) + " first", 400)
            queue.submit(job)
        except UploadError as e:
            workspace.discard(job)
            return JSONResponse({"error": str(e)}, e.status)
        except S2VError as e:
            workspace.discard(job)
            return JSONResponse({"error": str(e)}, 503)
        return JSONResponse({"id": job.id, "ahead": queue.ahead(job)}, 202)

    async def status(request: Request):
        job = queue.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "no such job (the app keeps the last results only)"}, 404)
        return JSONResponse(job_status(queue, job), headers={"Cache-Control": "no-store"})

    async def result_file(request: Request):
        job, name = queue.get(request.path_params["job_id"]), request.path_params["name"]
        if job is None or name not in RESULT_FILES:
            return Response("not found", 404)
        path = job.out_dir / name
        if not path.is_file():
            return Response("not found (the app keeps the last results only)", 404)
        return FileResponse(path, media_type=RESULT_FILES[name], headers={"Cache-Control": "no-store"})

    async def favicon(request: Request):
        return Response(status_code=204)

    routes = [Route("/", page), Route("/favicon.ico", favicon), Route("/api/info", api_info),
              Route("/api/jobs/{job_id}", status),
              Route("/api/{kind}", submit, methods=["POST"]),
              Route("/jobs/{job_id}/{name}", result_file)]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: any free port); S2VError when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise S2VError(f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port "
                       "(0: any free port) or --host") from None
    sock.set_inheritable(True)
    return sock


def allowed_hosts_for(host: str) -> Optional[list]:
    """Host headers accepted: the loopback names for a loopback address; any for another (a LAN
    address is reached by names the app cannot know)."""
    if is_loopback(host):
        return ["127.0.0.1", "localhost", "[::1]", host]
    return None


def serve(app: Starlette, sock: socket.socket) -> None:
    """Runs uvicorn on `sock` until Ctrl-C / SIGTERM (its own graceful shutdown, then the signal is
    raised again for the caller's clean-up)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            lifespan="off", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
