"""`s2v app` without a browser: the job queue (two requests at once run one after the other, each
with its own files), the temporary folder (uploads only there, removed), the size limit, the
loopback default and Host check, and the CLI's one-line errors for bad input in the page's job
state. The browser test is tests/test_app_browser.py."""

import os
import pathlib
import re
import threading
import time

import numpy as np
import pytest

from s2v_jax.app.jobs import Cancelled, JobQueue, Workspace
from s2v_jax.cli import build_parser

pytest.importorskip("starlette", reason="the web page needs the app extra: pip install -e '.[app]'")
pytest.importorskip("uvicorn", reason="the web page needs the app extra: pip install -e '.[app]'")
pytest.importorskip("python_multipart", reason="the web page needs the app extra: pip install -e '.[app]'")

from s2v_jax.app import client, server  # noqa: E402  (after the skips)


class Served:
    """create_app over a JobQueue, served by uvicorn in a thread on a free loopback port."""

    def __init__(self, run_job, tmp_path, max_upload_bytes=10_000_000, keep=20, warmup=None):
        import uvicorn

        self.workspace = Workspace(str(tmp_path / "apptmp"), keep=keep)
        self.queue = JobQueue(run_job, self.workspace, warmup=warmup).start()
        app = server.create_app(self.queue, self.workspace, {"checkpoint": "fake", "judge": "fake", "photos": "1"},
                                max_upload_bytes, allowed_hosts=server.allowed_hosts_for("127.0.0.1"))
        self.sock = server.bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        end = time.time() + 20
        while not self.server.started:
            assert time.time() < end, "the test server did not start"
            time.sleep(0.02)

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.queue.close()
        self.workspace.close()
        self.sock.close()


@pytest.fixture
def served(tmp_path):
    made = []

    def make(run_job, **kwargs):
        s = Served(run_job, tmp_path, **kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def echo_job(log, delay=0.4):
    """A fake job: logs its start and end, copies its upload's bytes (reversed) to out/video.mp4."""

    def run(job):
        log.append(("start", job.id, time.time()))
        job.progress("generation", 0, 2)
        data = job.inputs["audio"][0].read_bytes()
        time.sleep(delay)
        job.progress("generation", 2, 2)
        (job.out_dir / "video.mp4").write_bytes(data[::-1])
        job.result.update(video=f"/jobs/{job.id}/video.mp4", inputs_were=[str(p) for ps in job.inputs.values()
                                                                            for p in ps])
        log.append(("end", job.id, time.time()))
    return run


def _get(url):
    import urllib.request
    with urllib.request.urlopen(url) as r:
        return r.read()


def test_the_app_listens_on_loopback_by_default_and_refuses_other_host_names(served):
    args = build_parser().parse_args(["app"])
    assert args.host == "127.0.0.1" and args.port == 7860 and args.checkpoint is None
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1") and not server.is_loopback("0.0.0.0")
    s = served(echo_job([]))
    assert b"Speech2Vid" in _get(s.url)
    # a page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) is refused
    code, _ = _status_of(s.url, {"Host": "attacker.example"})
    assert code == 400
    # the page's policy allows this origin only: nothing is fetched from anywhere else
    import urllib.request
    with urllib.request.urlopen(s.url) as r:
        csp = r.headers["Content-Security-Policy"]
        page = r.read().decode()
    assert "default-src 'self'" in csp and "http" not in csp
    assert not re.search(r"""(src|href)=["']?https?:""", page), "the page links something remote"


def _status_of(url, headers):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_two_requests_at_once_are_queued_not_mixed(served):
    log = []
    s = served(echo_job(log, delay=0.6))
    answers = {}

    def post(tag):
        answers[tag] = client.submit(s.url, "photo", [("images", "face.png", b"png-" + tag.encode()),
                                                      ("audio", "speech.wav", f"speech of {tag}".encode() * 50)])
    threads = [threading.Thread(target=post, args=(t,)) for t in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a["status"] == 202 for a in answers.values()), answers
    ids = {tag: a["id"] for tag, a in answers.items()}
    # the one that came second waits behind the other
    assert sorted(a["ahead"] for a in answers.values()) == [0, 1]
    later = next(a["id"] for a in answers.values() if a["ahead"] == 1)
    st = client.status(s.url, later)
    assert st["state"] == "queued" and st["ahead"] == 1, st
    final = {tag: client.wait(s.url, i, timeout=30) for tag, i in ids.items()}
    assert all(f["state"] == "done" for f in final.values()), final
    # one at a time: the second started after the first ended
    spans = {}
    for what, job_id, t in log:
        spans.setdefault(job_id, {})[what] = t
    (a, b) = sorted(spans.values(), key=lambda x: x["start"])
    assert b["start"] >= a["end"]
    # each got its own result, made from its own upload, in its own folder
    for tag, f in final.items():
        got = _get(s.url + f["result"]["video"].lstrip("/"))
        assert got == (f"speech of {tag}".encode() * 50)[::-1]
        assert all(f"/{f['id']}/in/" in p for p in f["result"]["inputs_were"])


def test_uploads_live_only_in_the_apps_folder_and_are_removed(served, tmp_path):
    seen = []

    def run(job):
        mine = [p for ps in job.inputs.values() for p in ps]
        assert all(p.is_file() for p in mine)
        seen.extend(mine)
        (job.out_dir / "video.mp4").write_bytes(b"x")

    s = served(run, keep=2)
    root = s.workspace.root
    assert root.parent == tmp_path / "apptmp"
    ids = []
    for _ in range(3):
        a = client.submit(s.url, "photo", [("images", "../../../etc/evil me.png", b"img"),
                                           ("audio", "C:\\Users\\x\\speech.wav", b"wav")])
        assert a["status"] == 202, a
        ids.append(a["id"])
        assert client.wait(s.url, a["id"], timeout=30)["state"] == "done"
    # the client's names are kept (made safe) and never leave the job's folder
    assert sorted(p.name for p in seen[:2]) == ["evil_me.png", "speech.wav"]
    assert all(root in p.parents for p in seen)
    assert not any(p.exists() for p in seen), "uploads outlived their job"
    # the last two results are kept, older job folders deleted
    assert not (root / ids[0]).exists() and (root / ids[2] / "out" / "video.mp4").is_file()
    assert {p.name for p in root.iterdir()} == set(ids[1:])
    s.close()
    assert not root.exists(), "the app's temporary folder was left behind"


def test_a_file_over_the_upload_limit_is_refused_with_one_line(served):
    s = served(echo_job([]), max_upload_bytes=1000)
    a = client.submit(s.url, "photo", [("images", "big.png", b"x" * 5000), ("audio", "speech.wav", b"y" * 10)])
    assert a["status"] == 413
    assert a["error"] == "big.png is larger than 1 kB, this page's limit per file (s2v app --max-upload-mb)"
    assert list(s.workspace.root.iterdir()) == [], "a refused upload left files"
    a = client.submit(s.url, "redub", [("audio", "speech.wav", b"y" * 10)])
    assert a["status"] == 400 and a["error"] == "choose a video first"


def test_closing_stops_the_running_job_and_drops_the_queued_ones(tmp_path):
    started = threading.Event()

    def run(job):
        started.set()
        while True:
            job.progress("generation", 1, 10)  # raises Cancelled once the queue closes
            time.sleep(0.01)

    ws = Workspace(str(tmp_path), keep=5)
    q = JobQueue(run, ws).start()
    jobs = [q.submit(ws.new_job("photo")) for _ in range(2)]
    assert started.wait(10)
    q.close(timeout=10)
    assert [j.state for j in jobs] == ["cancelled", "cancelled"]
    assert not any(j.in_dir.exists() for j in jobs)
    ws.close()
    assert not ws.root.exists()
    with pytest.raises(Cancelled):
        jobs[0].progress("generation", 2, 10)


# ---------------------------------------------------------------- the real pipeline's errors

@pytest.fixture(scope="module")
def pipeline():
    from s2v_jax.app.pipeline import Pipeline

    return Pipeline.load()  # the shipped generator and judge; no warm-up: every case fails before generating


def _speech(path, seconds=1.0, amplitude=0.3):
    import soundfile

    t = np.arange(int(16000 * seconds)) / 16000.0
    soundfile.write(str(path), (amplitude * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))) / 2,
                    16000)
    return path


def _run_job(pipeline, tmp_path, kind, files):
    """Runs one job through a JobQueue as the server does (uploads copied into in/<field><n>/)."""
    import shutil

    ws = Workspace(str(tmp_path / "ws"))
    q = JobQueue(pipeline.run, ws).start()
    job = ws.new_job(kind)
    for field, path in files:
        n = len(job.inputs.get(field, []))
        dst = job.in_dir / f"{field}{n}" / pathlib.Path(path).name
        dst.parent.mkdir(parents=True)
        shutil.copy(path, dst)
        job.inputs.setdefault(field, []).append(dst)
    q.submit(job)
    end = time.time() + 120
    while job.state in ("queued", "running"):
        assert time.time() < end
        time.sleep(0.05)
    q.close()
    ws.close()
    return job


def _cli_error(capsys, argv):
    from s2v_jax.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    return re.sub(r"^s2v \w+: error: ", "", err)


def test_bad_input_shows_the_clis_one_line_error(pipeline, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("s2v_jax.commands.generate.show_warnings_as_lines", lambda command: None)
    d = tmp_path / "inputs"
    d.mkdir()
    import cv2

    noface = d / "noface.png"
    yy, xx = np.mgrid[0:200, 0:240]
    cv2.imwrite(str(noface), np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8))
    speech = _speech(d / "speech.wav")
    silent = d / "silent.wav"
    import soundfile
    soundfile.write(str(silent), np.zeros(16000, np.float32), 16000)
    notmedia = d / "notes.wav"
    notmedia.write_text("these are notes, not sound\n" * 20)
    notimage = d / "photo.jpg"
    notimage.write_text("these are notes, not a photo\n" * 20)
    from s2v_jax.media.video import write_video
    mute = write_video(d / "mute.mp4", np.full((10, 64, 64, 3), 128, np.uint8))  # a video with no sound track
    out = tmp_path / "cli.mp4"
    cases = [  # (kind, files, the CLI's argv, expected start of the line)
        ("photo", [("images", noface), ("audio", speech)],
         ["generate", "--image", str(noface), "--audio", str(speech)], "no face found in noface.png"),
        ("photo", [("images", noface), ("audio", silent)],
         ["generate", "--image", str(noface), "--audio", str(silent)], "silent.wav is silent"),
        ("photo", [("images", noface), ("audio", notmedia)],
         ["generate", "--image", str(noface), "--audio", str(notmedia)], "could not decode audio from notes.wav"),
        ("redub", [("video", mute), ("audio", mute)],
         ["redub", "--video", str(mute), "--audio", str(mute)], "mute.mp4 has no audio track"),
        ("photo", [("images", notimage), ("audio", speech)],
         ["generate", "--image", str(notimage), "--audio", str(speech)], "cannot read image photo.jpg"),
        ("redub", [("video", notmedia), ("audio", speech)],
         ["redub", "--video", str(notmedia), "--audio", str(speech)], "could not read video notes.wav"),
    ]
    for kind, files, argv, expected in cases:
        job = _run_job(pipeline, tmp_path / kind / expected[:8].replace(" ", "_"), kind, files)
        assert job.state == "error", (expected, job.state, job.result)
        assert job.error.startswith(expected), (expected, job.error)
        assert "\n" not in job.error and "/in/" not in job.error, job.error
        cli = _cli_error(capsys, argv + ["--out", str(out), "--no-progress"])
        assert cli.replace(str(d) + os.sep, "") == job.error, (cli, job.error)
        assert not out.exists()


@pytest.mark.shared_data
def test_generate_and_redub_report_progress_by_stage_and_their_mouth_strips(pipeline, real_data, tmp_path):
    """The optional progress callback the page's bar reads: stages in order, counts up to the total."""
    from s2v_jax.inference.generate import generate_video
    from s2v_jax.inference.redub import redub_video

    speech = _speech(tmp_path / "speech.wav", seconds=1.0)
    calls = []
    r = generate_video(pipeline.generator, [str(real_data / "stills" / "crop_224_a.jpg")], str(speech),
                       str(tmp_path / "g.mp4"), progress=False, preset="ultrafast",
                       on_progress=lambda *a: calls.append(a))
    # generation is announced at 0 frames before its first batch (a short job's batches can all finish
    # between two polls of the page), then counted up to the total
    assert [c[0] for c in calls] == ["face tracking"] * 2 + ["generation"] * 2 + ["encoding"] * 2
    assert calls[2:4] == [("generation", 0, r.num_frames), ("generation", r.num_frames, r.num_frames)]
    assert calls[-1] == ("encoding", 1, 1)

    calls.clear()
    clip = real_data / "corpus" / "lrs2" / "6046013437125640989" / "00001.mp4"
    r = redub_video(pipeline.generator, str(clip), str(speech), str(tmp_path / "r.mp4"), progress=False,
                    preset="ultrafast", on_progress=lambda *a: calls.append(a))
    stages = [c[0] for c in calls]
    assert stages == sorted(stages, key=["face tracking", "generation", "encoding"].index)
    tracking = [c for c in calls if c[0] == "face tracking"]
    assert len(tracking) >= 2 and tracking[-1][1] == tracking[-1][2] == r.num_source_frames
    assert all(0 <= done <= total for _, done, total in calls)
    generation = [c for c in calls if c[0] == "generation"]
    assert generation[0] == ("generation", 0, r.num_frames) and generation[-1] == ("generation", r.num_frames,
                                                                                     r.num_frames)
    assert calls[-1] == ("encoding", 1, 1)

    # the mouth strips the page shows of these two results: two rows of 8 frames, every cell drawn
    from s2v_jax.app.pipeline import MOUTH_PX, mouth_strip

    for strip in (mouth_strip(str(tmp_path / "g.mp4"), 25, still=str(real_data / "stills" / "crop_224_a.jpg")),
                  mouth_strip(str(tmp_path / "r.mp4"), r.num_frames, source=(str(clip), r.num_source_frames))):
        header = strip.shape[0] - 2 * MOUTH_PX
        assert 0 < header < MOUTH_PX and strip.shape[1] == 120 + 8 * MOUTH_PX, strip.shape
        cells = strip[header:, 120:].reshape(2, MOUTH_PX, 8, MOUTH_PX, 3).transpose(0, 2, 1, 3, 4)
        assert cells.reshape(16, -1).std(axis=1).min() > 5, "a blank cell in the strip"


def test_a_taken_port_and_a_missing_checkpoint_are_one_line_errors(capsys):
    import socket

    from s2v_jax.cli import main

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        assert main(["app", "--port", str(port)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"s2v app: error: cannot listen on 127.0.0.1:{port} (Address already in use); pick another --port "
            "(0: any free port) or --host")
    finally:
        taken.close()
    assert main(["app", "--port", "0", "--checkpoint", "/nonexistent/workdir"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("s2v app: error: --checkpoint /nonexistent/workdir does not exist") and "\n" not in err
