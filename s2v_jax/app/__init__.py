"""`s2v app`: a local web page for generation and re-dubbing (the `app` extra: starlette, uvicorn,
python-multipart).

- `jobs`: the app's temporary folder (every upload and result lives under it and it is removed at
  exit) and the one-worker job queue: requests run one at a time, in the order they came.
- `upload`: multipart uploads streamed straight into a job's folder, with a per-file size limit.
- `pipeline`: what a job runs, with the library's own functions: `generate_video` / `redub_video`
  (progress callback), the shipped judge's `score_video` (AV offset, LSE-C) and a mouth strip
  (`evaluation.report.frame_strip`).
- `page`: the page itself, one HTML document with inline CSS and script: nothing is fetched from
  anywhere but the app.
- `server`: the Starlette routes and `serve` (uvicorn on 127.0.0.1 by default).

Only `server` and `upload` need the extra; `jobs`, `pipeline` and `page` import with the core install.
"""
