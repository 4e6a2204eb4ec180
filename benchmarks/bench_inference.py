"""End-to-end inference speed and re-dub memory.

`speed`: frames/s and real-time factor (frames/s over 25) of generation from
one still with the identity encoded once and audio windows batched, for a
config with random-init weights (speed only): MFCC windows + generator
("generator"), the same plus Poisson paste-back into a 474 px photo
("pasted"); beside the model's XLA GFLOPs per frame, the GFLOP/s that
implies and an XLA float32 matmul's GFLOP/s measured in the same run (the
machine's achievable ceiling at that moment; the load average is printed too). `redub`: wall time and peak RSS of `s2v redub` on a long source video
and speech made by tiling real clips (ffmpeg stream copy, no re-encoding), in
a child process with a random-init checkpoint written by orbax.

    python benchmarks/bench_inference.py speed --config configs/default.py --batch 64 --frames 256
    python benchmarks/bench_inference.py redub --minutes 10 --width 0.125

Prints one JSON line per measurement.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.environ.get("S2V_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data", "real"))


def _machine():
    return {"machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version()}


def _random_generator(config_path, overrides, batch, dtype, conv_transpose=None):
    import jax
    import jax.numpy as jnp

    from s2v_jax.config_utils import load_config
    from s2v_jax.inference.generator import FrameGenerator
    from s2v_jax.models import build_model, input_shapes

    config = load_config(os.path.join(REPO, config_path), overrides)
    model = build_model(config)
    shapes = input_shapes(config)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1,) + shapes["mfcc"]),
                                    jnp.zeros((1,) + shapes["identity"]))
    return config, FrameGenerator(config, variables, batch_size=batch, dtype=dtype, conv_transpose=conv_transpose)


def sgemm_gflops(n: int = 2048, iters: int = 5) -> float:
    """XLA float32 matmul throughput on this machine now: the ceiling a conv net can hope for."""
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(np.random.default_rng(0).random((n, n), np.float32))
    f = jax.jit(lambda a: a @ a)
    f(x).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(iters):
        f(x).block_until_ready()
    return 2 * n ** 3 * iters / (time.perf_counter() - t0) / 1e9


def bench_speed(args):
    import jax

    from s2v_jax.inference.generate import still_frames
    from s2v_jax.inference.stills import register_stills
    from s2v_jax.media import audio
    from s2v_jax.media.speech import load_speech
    from s2v_jax.summary import model_summary

    config, gen = _random_generator(args.config, args.override, args.batch, args.dtype,
                                    "lax" if args.plain_tconv else None)
    gflops = model_summary(config)["gflops_per_frame_identity_cached"]
    stills = register_stills([os.path.join(REAL, "stills", "portrait_c.png")], gen.num_identity_images)
    wav = load_speech(os.path.join(REAL, "audio", "en_commentary_60s.wav"))
    wav = wav[: int(args.frames / 25 * 16000)]
    n = audio.num_video_frames(len(wav))
    for _ in still_frames(gen, stills, wav[: int(args.batch / 25 * 16000)], paste_back=False):
        pass  # compile
    rows = []
    for mode in ("generator", "pasted"):
        t0 = time.perf_counter()
        count = sum(1 for _ in still_frames(gen, stills, wav, paste_back=(mode == "pasted")))
        sec = time.perf_counter() - t0
        assert count == n
        fps = count / sec
        rows.append({"bench": "speed", **_machine(), "backend": jax.default_backend(), "config": args.config,
                     "overrides": args.override, "dtype": args.dtype or config.model.dtype, "batch": args.batch,
                     "conv_transpose": gen.model.conv_transpose.__name__,
                     "mode": mode, "frames": count, "seconds": round(sec, 2), "frames_per_s": round(fps, 2),
                     "realtime_factor": round(fps / 25.0, 3), "gflops_per_frame": round(gflops, 3),
                     "achieved_gflops_per_s": round(gflops * fps, 1) if mode == "generator" else None})
    sgemm = round(sgemm_gflops(), 1)
    for r in rows:
        print(json.dumps({**r, "sgemm_gflops_per_s": sgemm, "loadavg_1min": os.getloadavg()[0]}), flush=True)


def _ffmpeg():
    from s2v_jax.media.audio import ffmpeg_exe
    return ffmpeg_exe()


def make_long_inputs(out_dir, minutes):
    """A `minutes`-long source video (a real clip looped, stream copy) and speech (a real file tiled)."""
    import soundfile

    from s2v_jax.media.audio import load_audio

    seconds = int(minutes * 60)
    clip = os.path.join(REAL, "single_speaker", "anchor_cnn_71s.mp4")
    vid = os.path.join(out_dir, f"source_{minutes}min.mp4")
    subprocess.run([_ffmpeg(), "-v", "error", "-y", "-stream_loop", "-1", "-i", clip, "-t", str(seconds),
                    "-c", "copy", vid], check=True)
    speech = load_audio(os.path.join(REAL, "audio", "en_commentary_60s.wav"))
    wav = os.path.join(out_dir, f"speech_{minutes}min.wav")
    soundfile.write(wav, np.resize(speech, seconds * 16000), 16000, subtype="PCM_16")
    return vid, wav


def write_random_checkpoint(config_path, overrides, workdir):
    """A random-init checkpoint (orbax, the training layout) via a 0-step-equivalent save."""
    import jax

    from s2v_jax.config_utils import load_config
    from s2v_jax.models import build_model
    from s2v_jax.train import checkpointing
    from s2v_jax.train.state import create_train_state
    from s2v_jax.train.tasks import get_task

    config = load_config(os.path.join(REPO, config_path), overrides)
    state = create_train_state(config, build_model(config), jax.random.PRNGKey(0), get_task(config))
    ckpt = checkpointing.Checkpointer(workdir)
    ckpt.save(1, state, data_state={}, meta={}, config=config)
    ckpt.wait()
    ckpt.close()
    return workdir


def bench_redub(args):
    tmp = args.workdir or tempfile.mkdtemp(prefix="s2v_bench_")
    os.makedirs(tmp, exist_ok=True)
    vid, wav = make_long_inputs(tmp, args.minutes)
    ckpt = write_random_checkpoint(args.config, [f"model.width={args.width}"], os.path.join(tmp, "ckpt"))
    out = os.path.join(tmp, "redub.mp4")
    cmd = [sys.executable, "-m", "s2v_jax.cli", "redub", "--checkpoint", ckpt, "--video", vid, "--audio", wav,
           "--out", out, "--no-progress", "--preset", args.preset, "--batch-size", str(args.batch)]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.time() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child: the redub run
    report = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    print(json.dumps({"bench": "redub", **_machine(), "minutes": args.minutes, "config": args.config,
                      "width": args.width, "preset": args.preset, "batch": args.batch, "rc": proc.returncode,
                      "wall_s": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
                      "frames": report and report["frames"], "frames_redubbed": report and report["frames_redubbed"],
                      "frames_per_s": report and round(report["frames"] / wall, 2),
                      "stderr_tail": proc.stderr[-400:] if proc.returncode else None}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--config", default="configs/default.py")
    s.add_argument("--override", action="append", default=[], help="config override, e.g. model.width=0.5")
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--frames", type=int, default=256)
    s.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: the config's)")
    s.add_argument("--plain-tconv", action="store_true", help="lax.conv_transpose, not the phase form (to compare)")
    r = sub.add_parser("redub")
    r.add_argument("--minutes", type=float, default=10)
    r.add_argument("--config", default="configs/tiny.py")
    r.add_argument("--width", type=float, default=0.125)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--preset", default="veryfast")
    r.add_argument("--workdir", default=None)
    args = p.parse_args()
    bench_speed(args) if args.what == "speed" else bench_redub(args)


if __name__ == "__main__":
    main()
