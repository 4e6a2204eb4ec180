"""Time from upload to video on the web page (`s2v app`) against the same job on the CLI
(`s2v generate`): 8 s of speech and a photo downscaled to 512 px on its long side, the shipped
model, the same libx264 preset (the CLI's default, medium). Prints JSON lines.

    python benchmarks/bench_app.py [--photo ../shared/data/real/stills/portrait_a.jpg] \\
        [--audio ../shared/data/real/audio/en_speech_8s_a.wav] [--repeats 3]

The app is started once (its start-up and model warm-up are reported apart: a page pays them once,
the CLI on every run); each app run is timed from just before the upload request to the moment the
job's status names the finished video (polled every 50 ms), and to the end of the judge's scoring.
A CLI run is the wall time of the `s2v generate` process (loading and compiling included).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "real")


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def photo_512(src: str, out: str) -> str:
    import cv2

    img = cv2.imread(src)
    if img is None:
        raise SystemExit(f"cannot read {src}")
    scale = 512.0 / max(img.shape[:2])
    img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    cv2.imwrite(out, img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return out


def start_app(tmp: str):
    """`s2v app --port 0` in a child process; (process, URL, seconds until it listens, until warm)."""
    from s2v_jax.app import client

    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "s2v_jax.cli", "app", "--port", "0", "--tmp-dir", tmp],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    for line in proc.stdout:
        m = re.search(r"serving on (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        raise SystemExit("s2v app did not start")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep the pipe drained
    t_listen = time.time() - t0
    while not client.request_json(url + "api/info")[1]["ready"]:
        time.sleep(0.05)
    return proc, url, t_listen, time.time() - t0


def app_run(url: str, photo: str, audio: str) -> dict:
    from s2v_jax.app import client

    t0 = time.time()
    job = client.submit(url, "photo", [("images", photo), ("audio", audio)])
    if job["status"] != 202:
        raise SystemExit(f"the app refused the job: {job}")
    s = client.wait(url, job["id"], until=lambda s: "video" in s["result"] or s["state"] in ("error", "cancelled"),
                    poll=0.05)
    t_video = time.time() - t0
    if s["state"] in ("error", "cancelled"):
        raise SystemExit(f"the app's job failed: {s['error']}")
    s = client.wait(url, job["id"], poll=0.05)
    r = s["result"]
    return {"upload_to_video_s": round(t_video, 2), "upload_to_scores_s": round(time.time() - t0, 2),
            "server_video_s": s.get("video_s"), "judge_s": r.get("judge_s"), "frames": r.get("frames"),
            "size": f"{r.get('width')}x{r.get('height')}", "offset": r.get("offset"), "lse_c": r.get("lse_c")}


def cli_run(photo: str, audio: str, out: str) -> dict:
    t0 = time.time()
    proc = subprocess.run(["s2v", "generate", "--image", photo, "--audio", audio, "--out", out, "--no-progress"],
                          capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    os.unlink(out)
    return {"wall_s": round(wall, 2), "elapsed_s_reported": res["elapsed_s"], "frames": res["frames"],
            "size": f"{res['width']}x{res['height']}"}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photo", default=os.path.join(SHARED, "stills", "portrait_a.jpg"))
    p.add_argument("--audio", default=os.path.join(SHARED, "audio", "en_speech_8s_a.wav"))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(json.dumps({"what": "machine", **machine(), "date": time.strftime("%Y-%m-%d")}), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_app_") as tmp:
        photo = photo_512(args.photo, os.path.join(tmp, "photo_512.jpg"))
        proc, url, t_listen, t_ready = start_app(tmp)
        try:
            print(json.dumps({"what": "app_start", "listening_s": round(t_listen, 2),
                              "ready_s": round(t_ready, 2)}), flush=True)
            runs = {"app": [], "cli": []}
            for i in range(args.repeats):  # interleaved: a busy moment of the box hits both alike
                a = app_run(url, photo, args.audio)
                runs["app"].append(a["upload_to_video_s"])
                print(json.dumps({"what": "app", "run": i, **a}), flush=True)
                c = cli_run(photo, args.audio, os.path.join(tmp, "cli.mp4"))
                runs["cli"].append(c["wall_s"])
                print(json.dumps({"what": "cli", "run": i, **c}), flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    print(json.dumps({"what": "summary", "app_upload_to_video_median_s": med["app"],
                      "cli_generate_median_s": med["cli"], "cli_over_app": round(med["cli"] / med["app"], 2),
                      "load_average_end": [round(x, 2) for x in os.getloadavg()]}), flush=True)


if __name__ == "__main__":
    main()
