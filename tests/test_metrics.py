"""L1, PSNR and SSIM against hand-computed values; the metric writers' files."""

import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

from s2v_jax.train import metrics


def _img(rows):
    """A `[1, H, W, 1]` image from nested lists."""
    return np.asarray(rows, np.float32)[None, :, :, None]


def test_l1_by_hand():
    pred = _img([[0.2, 0.4], [0.6, 0.8]])
    target = _img([[0.0, 0.5], [0.5, 1.0]])
    # |0.2| + |-0.1| + |0.1| + |-0.2| = 0.6 over 4 pixels
    np.testing.assert_allclose(metrics.l1(pred, target), [0.15], rtol=1e-6)


def test_psnr_by_hand():
    # MSE = 0.1^2 = 0.01 -> 10 log10(1 / 0.01) = 20 dB
    np.testing.assert_allclose(metrics.psnr(np.full((1, 4, 4, 3), 0.5), np.full((1, 4, 4, 3), 0.6)), [20.0],
                               rtol=1e-5)
    # half the pixels off by 0.2, half exact: MSE = 0.02 -> 10 log10(50) = 16.9897 dB
    pred = _img([[0.2, 0.2], [0.5, 0.5]])
    target = _img([[0.4, 0.4], [0.5, 0.5]])
    np.testing.assert_allclose(metrics.psnr(pred, target), [10 * math.log10(50)], rtol=1e-5)
    # 8-bit range: MSE = 100 -> 10 log10(255^2 / 100) = 28.1308 dB
    np.testing.assert_allclose(metrics.psnr(np.full((1, 2, 2, 1), 100.0), np.full((1, 2, 2, 1), 110.0), 255.0),
                               [28.1308036], rtol=1e-6)
    # identical images: capped at 100 dB, not inf
    np.testing.assert_allclose(metrics.psnr(pred, pred), [100.0], rtol=1e-6)


def test_ssim_2x2_window_by_hand():
    # A 2x2 Gaussian window has equal weights 1/4, so one window covers the image.
    x = _img([[0.0, 0.5], [0.5, 1.0]])
    y = _img([[0.0, 0.5], [0.5, 0.5]])
    mu_x, mu_y = 0.5, 0.375
    var_x = (0 + 0.25 + 0.25 + 1.0) / 4 - mu_x ** 2          # 0.125
    var_y = (0 + 0.25 + 0.25 + 0.25) / 4 - mu_y ** 2         # 0.046875
    cov = (0 + 0.25 + 0.25 + 0.5) / 4 - mu_x * mu_y          # 0.0625
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    expected = ((2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
                * (2 * cov + c2) / (var_x + var_y + c2))     # 0.96002 * 0.72870 = 0.69957
    got = metrics.ssim(x, y, filter_size=2)
    np.testing.assert_allclose(got, [expected], rtol=1e-5)
    assert abs(expected - 0.69957) < 1e-4


def test_ssim_constant_images_and_identity():
    a = np.full((2, 16, 16, 3), 0.2, np.float32)
    b = np.full((2, 16, 16, 3), 0.4, np.float32)
    # no variance: SSIM = luminance term = (2ab + C1) / (a^2 + b^2 + C1)
    np.testing.assert_allclose(metrics.ssim(a, b), [0.1601 / 0.2001] * 2, rtol=1e-5)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(metrics.ssim(x, x), [1.0, 1.0], rtol=1e-5)


def _ssim_reference(x, y, size=11, sigma=1.5):
    """Wang et al.'s SSIM written with explicit loops over windows (one image `[H, W, C]`)."""
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for c in range(x.shape[2]):
        for i in range(x.shape[0] - size + 1):
            for j in range(x.shape[1] - size + 1):
                px, py = x[i:i + size, j:j + size, c], y[i:i + size, j:j + size, c]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * px * px).sum() - mx * mx, (w * py * py).sum() - my * my
                cxy = (w * px * py).sum() - mx * my
                vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_windowed_reference():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 14, 15, 3))
    y = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1)
    expected = [_ssim_reference(x[b], y[b]) for b in range(2)]
    np.testing.assert_allclose(metrics.ssim(x, y), expected, rtol=1e-4)
    assert 0.3 < expected[0] < 0.95


def test_image_metrics_keys_and_shapes():
    x = np.zeros((3, 12, 12, 3), np.float32)
    out = metrics.image_metrics(x, x + 0.1)
    assert sorted(out) == ["l1", "psnr", "ssim"]
    assert all(v.shape == (3,) for v in out.values())


def test_metric_writer_writes_jsonl_and_tensorboard(tmp_path):
    writer = metrics.MetricWriter(str(tmp_path), enabled=True)
    writer.write_scalars(5, {"train/loss": np.float32(0.25), "val/l1": 0.5})
    writer.write_scalars(10, {"train/loss": float("nan")})
    writer.close()
    rows = metrics.read_jsonl(str(tmp_path / "metrics.jsonl"))
    assert rows[0] == {"step": 5, "train/loss": 0.25, "val/l1": 0.5}
    assert rows[1] == {"step": 10, "train/loss": "nan"}  # stays valid JSON
    events = os.listdir(tmp_path / "tensorboard")
    assert any(name.startswith("events.out.tfevents") for name in events)


def test_metric_writer_off_process_writes_nothing(tmp_path, monkeypatch):
    """The default: process 0 writes, any other process writes nothing (no `enabled` given)."""
    writer = metrics.MetricWriter(str(tmp_path / "p0"))
    writer.write_scalars(1, {"train/loss": 1.0})
    writer.close()
    assert (tmp_path / "p0" / "metrics.jsonl").is_file()
    monkeypatch.setattr(metrics.jax, "process_index", lambda: 1)
    writer = metrics.MetricWriter(str(tmp_path / "w"))
    writer.write_scalars(1, {"train/loss": 1.0})
    writer.close()
    assert not (tmp_path / "w").exists()


def test_jsonl_rows_are_json(tmp_path):
    writer = metrics.MetricWriter(str(tmp_path), enabled=True)
    writer.write_scalars(1, {"a": np.int64(3), "b": np.float64(1.5)})
    writer.close()
    with open(tmp_path / "metrics.jsonl") as f:
        assert json.loads(f.readline()) == {"step": 1, "a": 3, "b": 1.5}


@pytest.mark.parametrize("fn", [metrics.l1, metrics.psnr, metrics.ssim])
def test_metrics_finite_on_random_images(fn):
    x = np.random.default_rng(0).uniform(size=(1, 11, 11, 3)).astype(np.float32)
    assert np.isfinite(np.asarray(fn(x, x * 0.9))).all()


# ---------------------------------------------------------------- metrics.ssim against dm-pix's


def test_ssim_equals_dm_pix_within_1e_5_and_stays_exact_on_flat_images():
    """The hand-written SSIM and dm_pix.ssim (the same definition) agree within 1e-5 on noisy, smooth and
    face-like images; on two flat images of different values the hand-written one is exact (centred
    statistics) where dm-pix loses about 1e-4 to float32 cancellation: why metrics.ssim stays ours.
    PSNR is on dm-pix's MSE."""
    import cv2
    import dm_pix

    rng = np.random.default_rng(0)
    noisy = rng.random((3, 112, 112, 3)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(x, (0, 0), 3) for x in noisy])
    face = np.zeros((3, 112, 112, 3), np.float32)
    face[:] = np.linspace(0.2, 0.8, 112, dtype=np.float32)[None, :, None, None]
    cv2.ellipse(face[0], (56, 84), (18, 8), 0, 0, 360, (0.3, 0.1, 0.1), -1)
    pairs = [(noisy, np.clip(noisy + rng.normal(0, 0.05, noisy.shape), 0, 1)),
             (smooth, np.clip(smooth + rng.normal(0, 0.01, smooth.shape), 0, 1)),
             (face, np.clip(face + rng.normal(0, 0.02, face.shape), 0, 1))]
    for a, b in pairs:
        a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
        np.testing.assert_allclose(metrics.ssim(a, b), dm_pix.ssim(a, b), atol=1e-5)
        mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=(1, 2, 3))
        np.testing.assert_allclose(metrics.psnr(a, b), 10 * np.log10(1.0 / np.maximum(mse, 1e-10)), atol=1e-4)
    x, y = jnp.full((1, 112, 112, 3), 0.5), jnp.full((1, 112, 112, 3), 0.6)
    exact = (2 * 0.5 * 0.6 + 1e-4) / (0.25 + 0.36 + 1e-4)
    np.testing.assert_allclose(metrics.ssim(x, y), [exact], rtol=1e-6)
    assert abs(float(dm_pix.ssim(x, y)[0]) - exact) > 1e-5
