"""A local web page: talking video from a photo and speech (Photo tab), re-dubbing of a video
(Re-dub tab), each with a progress bar, the result playable and downloadable, the judge's AV
offset and LSE-C of it and a strip of its mouth.

    pip install -e ".[app]"
    s2v app                          # http://127.0.0.1:7860, the shipped model
    s2v app --checkpoint workdirs/F  # a fine-tuned work directory (or a step dir, an exported model)

Listens on 127.0.0.1 only unless --host says otherwise; makes no remote calls, loads nothing
from the internet (the page's script and style are inline) and has no telemetry. Uploads and
results live in one temporary folder, removed when the app stops (Ctrl-C); the uploads of a job
are deleted as soon as it ends. Requests run one at a time, in the order they came."""

import sys


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free port)")
    parser.add_argument("--checkpoint", default=None,
                        help="generator training work directory (best, else latest checkpoint), one step directory "
                             "or an exported model; default: the real-face generator shipped in the package")
    parser.add_argument("--judge", default=None, metavar="CKPT",
                        help="sync expert that scores the results (default: the judge shipped in the package)")
    parser.add_argument("--max-size", type=int, default=1920,
                        help="photos larger than this on their longest side are downscaled first, as in "
                             "`s2v generate` (default 1920 px; 0 keeps the full size)")
    parser.add_argument("--max-upload-mb", type=float, default=200.0,
                        help="largest file accepted per upload, in MB (default 200); larger ones are refused "
                             "with an error line")
    parser.add_argument("--preset", default="medium", help="libx264 preset (default medium, as the CLI; "
                                                           "veryfast encodes faster)")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per generator call (default 64)")
    parser.add_argument("--keep", type=int, default=20, help="results kept for the page (default 20); older "
                                                            "ones are deleted")
    parser.add_argument("--tmp-dir", default=None,
                        help="parent of the app's temporary folder (default: the system's temporary folder)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="do not compile the models at start (the first request then pays for it)")


def run(args) -> int:
    import os
    import tempfile

    from s2v_jax.commands.generate import show_warnings_as_lines
    from s2v_jax.errors import S2VError

    if args.max_size < 0 or 0 < args.max_size < 112:
        raise S2VError(f"--max-size must be 0 (no limit) or at least 112 pixels, got {args.max_size}")
    if args.max_upload_mb <= 0:
        raise S2VError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.batch_size < 1:
        raise S2VError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 <= args.port <= 65535:
        raise S2VError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        import python_multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise S2VError(f"the web page needs the 'app' extra ({e.name} is missing): pip install -e \".[app]\"") \
            from None
    from s2v_jax.app import server
    from s2v_jax.app.jobs import JobQueue, Workspace
    from s2v_jax.app.pipeline import Pipeline

    sock = server.bind(args.host, args.port)  # a taken port fails before the models load
    try:
        pipeline = Pipeline.load(args.checkpoint, args.judge, batch_size=args.batch_size, max_size=args.max_size,
                                 preset=args.preset)
    except BaseException:
        sock.close()
        raise
    show_warnings_as_lines("app")
    workspace = Workspace(args.tmp_dir, keep=args.keep)
    # Everything the run writes to a temporary file (re-dub spills, ffmpeg logs) lands in the app's
    # folder too, and goes with it.
    old_tmpdir = os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = str(workspace.root)
    queue = JobQueue(pipeline.run, workspace, warmup=None if args.no_warmup else pipeline.warmup).start()
    try:
        host, port = sock.getsockname()[:2]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        if not server.is_loopback(args.host):
            print(f"s2v app: warning: listening on {args.host}: anyone who can reach this machine can use the page",
                  file=sys.stderr)
        app = server.create_app(queue, workspace, pipeline.describe(), int(args.max_upload_mb * 1e6),
                                allowed_hosts=server.allowed_hosts_for(args.host))
        print(f"s2v app: serving on {url} (Ctrl-C stops it; temporary folder {workspace.root})", flush=True)
        server.serve(app, sock)
    finally:
        queue.close()
        workspace.close()
        sock.close()
        tempfile.tempdir = None
        if old_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmpdir
    return 0
