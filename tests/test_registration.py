"""Registration onto the canonical face, smoothing, paste-back and still alignment
(s2v_jax.faces.registration), plus the `s2v align` command."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from s2v_jax import faces
from s2v_jax.errors import MediaError, NoFaceError
from s2v_jax.faces import registration as reg


def _random_similarity(rng, scale_range=(0.3, 3.0)):
    s = rng.uniform(*scale_range)
    a = rng.uniform(-np.pi, np.pi)
    return np.array([[s * np.cos(a), -s * np.sin(a), rng.uniform(-200, 200)],
                     [s * np.sin(a), s * np.cos(a), rng.uniform(-200, 200)]])


# --- synthetic --------------------------------------------------------------------

def test_template_is_symmetric_and_leaves_room_for_the_chin():
    t = reg.TEMPLATE_112
    assert t.shape == (len(faces.REGISTRATION_POINTS), 2)
    assert (t > 0).all() and (t < 112).all()
    # R/L eye corners and nostril wings mirror about x = 56; the bridge is on it
    for r, l in [(0, 3), (1, 2), (8, 9)]:
        assert t[r, 0] + t[l, 0] == pytest.approx(112) and t[r, 1] == pytest.approx(t[l, 1])
    assert np.allclose(t[4:8, 0], 56)
    # eyes in the upper third, 44 px apart: the face from forehead to chin fits below
    assert t[3, 0] - t[0, 0] == pytest.approx(44) and t[:4, 1].mean() == pytest.approx(36)
    assert np.allclose(reg.template(224), 2 * t)


def test_fit_similarity_recovers_random_similarities_exactly():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = _random_similarity(rng)
        src = rng.uniform(-100, 400, (10, 2))
        fit = reg.fit_similarity(src, reg.transform_points(m, src))
        assert np.allclose(fit, m, atol=1e-9)
        inv = reg.invert_similarity(fit)
        assert np.allclose(reg.transform_points(inv, reg.transform_points(fit, src)), src, atol=1e-8)


def test_fit_similarity_is_least_squares_and_rejects_bad_input():
    rng = np.random.default_rng(1)
    m = _random_similarity(rng)
    src = rng.uniform(0, 100, (12, 2))
    noisy = reg.transform_points(m, src) + rng.normal(0, 0.5, (12, 2))
    fit = reg.fit_similarity(src, noisy)
    err = np.linalg.norm(reg.transform_points(fit, src) - noisy, axis=1).mean()
    assert err < np.linalg.norm(reg.transform_points(m, src) - noisy, axis=1).mean() + 1e-9
    # no reflection even when the target is mirrored
    mirrored = reg.fit_similarity(src, src * [-1, 1])
    assert np.linalg.det(mirrored[:, :2]) > 0
    with pytest.raises(ValueError):
        reg.fit_similarity(src[:1], src[:1])
    with pytest.raises(ValueError):
        reg.fit_similarity(np.ones((5, 2)), src[:5])


def test_registration_ignores_the_mouth():
    rng = np.random.default_rng(2)
    lm = rng.uniform(100, 300, (478, 2))
    moved = lm.copy()
    mouth = list(faces.LIPS_OUTER + faces.LIPS_INNER + (faces.CHIN,))
    moved[mouth] += rng.normal(0, 30, (len(mouth), 2))
    assert np.array_equal(reg.registration_transform(lm), reg.registration_transform(moved))


def test_similarity_params_round_trip():
    rng = np.random.default_rng(3)
    ms = np.stack([_random_similarity(rng) for _ in range(8)])
    assert np.allclose(reg.similarity_from_params(reg.similarity_params(ms)), ms, atol=1e-9)
    assert np.allclose(reg.similarity_from_params(reg.similarity_params(ms[0])), ms[0], atol=1e-9)


def test_smoothing_reduces_jitter_and_keeps_steady_transforms():
    rng = np.random.default_rng(4)
    t = np.arange(100)
    # a face drifting and slowly turning; params (log scale, angle, cx, cy)
    truth = np.stack([np.full(100, -1.0) + 0.001 * t, 0.002 * t, 200 + 0.5 * t, 150 + 0.2 * t], 1)
    noise = rng.normal(0, 1, truth.shape) * [0.02, 0.02, 2.0, 2.0]
    ms = reg.similarity_from_params(truth + noise)
    smooth = reg.smooth_transforms(ms, sigma=2.0)
    err_raw = np.abs(reg.similarity_params(ms) - truth)[10:-10].mean(0)
    err_smooth = np.abs(reg.similarity_params(smooth) - truth)[10:-10].mean(0)
    assert (err_smooth < 0.5 * err_raw).all()
    steady = np.repeat(ms[:1], 30, axis=0)
    assert np.allclose(reg.smooth_transforms(steady), steady, atol=1e-9)
    assert np.array_equal(reg.smooth_transforms(ms, sigma=0), ms)
    # the streaming form (window of +-3 sigma) gives the batch result
    p = reg.similarity_params(ms)
    for i in (0, 3, 50, 99):
        lo, hi = max(0, i - 6), min(100, i + 7)
        assert np.allclose(reg.smooth_params_at(p[lo:hi], i - lo, 2.0), reg.smooth_params_at(p, i, 2.0))


def test_smoothing_handles_angle_wrap():
    base = reg.similarity_from_params(np.array([0.0, np.pi - 0.01, 50, 50]))
    other = reg.similarity_from_params(np.array([0.0, -np.pi + 0.01, 50, 50]))
    out = reg.smooth_transforms(np.stack([base, other] * 5))
    angles = reg.similarity_params(out)[:, 1]
    assert np.all(np.abs(np.abs(angles) - np.pi) < 0.02)  # stays near pi, never near 0


def test_lower_face_mask_covers_mouth_not_eyes():
    mask = reg.lower_face_mask()
    assert mask.shape == (112, 112) and mask.max() <= 1.0
    assert mask[:44].max() == 0  # eyes (y~36) never replaced
    assert mask[75, 56] == pytest.approx(1.0) and mask[90, 56] == pytest.approx(1.0)
    assert mask[75, 2] == 0 and mask[75, 109] == 0


def _textured_image(rng, h=240, w=320):
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


@pytest.mark.parametrize("blend", ["alpha", "poisson"])
@pytest.mark.parametrize("mask", [None, "lower"])
def test_paste_back_restores_the_image(blend, mask):
    rng = np.random.default_rng(5)
    image = _textured_image(rng)
    m = reg.similarity_from_params(np.array([np.log(112 / 100), 0.2, 170.0, 110.0]))  # 100 px face
    crop = reg.warp_face(image, m)
    mask_arr = None if mask is None else reg.lower_face_mask()
    out = reg.paste_back(image, crop, m, mask=mask_arr, blend=blend)
    assert out.shape == image.shape and out.dtype == np.uint8
    # far from the face: untouched, bit for bit
    region = cv2.warpAffine(np.ones((112, 112), np.uint8), reg.invert_similarity(m), (320, 240))
    far = cv2.dilate(region, np.ones((5, 5), np.uint8)) == 0
    assert np.array_equal(out[far], image[far])
    # on the face: the image comes back up to the two resamplings
    inside = cv2.erode(region, np.ones((9, 9), np.uint8)) > 0
    assert np.abs(out[inside].astype(int) - image[inside]).mean() < 12
    # and the pasted content is that of the crop (a black face would be far off)
    dark = reg.paste_back(image, np.zeros_like(crop), m, blend="alpha")
    assert np.abs(dark[inside].astype(int) - image[inside]).mean() > 50


def test_paste_back_rejects_unknown_blend():
    with pytest.raises(ValueError, match="blend"):
        reg.paste_back(np.zeros((50, 50, 3), np.uint8), np.zeros((112, 112, 3), np.uint8),
                       np.eye(2, 3), blend="median")


def test_warp_image_antialiases_strong_shrinks():
    stripes = np.zeros((800, 800, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes alias badly when shrunk 8x without filtering
    m = np.array([[0.125, 0, 0], [0, 0.125, 0]])
    out = reg.warp_image(stripes, m, (100, 100))
    assert np.abs(out.astype(float) - 127.5).max() < 20


# --- real stills --------------------------------------------------------------------

STILLS = ["bw_portrait.jpg", "crop_224_a.jpg", "crop_224_b.jpg", "painting.png", "portrait_a.jpg",
          "portrait_b_happy.png", "portrait_b_sad.png", "portrait_c.png"]


@pytest.fixture(scope="module")
def redetector():
    with faces.LandmarkDetector(static_image_mode=True) as detector:
        yield detector


def _template_error(landmarks):
    """Mean distance (crop px) of the registration points from the template."""
    return float(np.linalg.norm(reg.registration_points(landmarks) - reg.TEMPLATE_112, axis=1).mean())


@pytest.mark.parametrize("name", STILLS)
def test_align_stills(real_data, redetector, name):
    aligned = reg.align_image(real_data / "stills" / name)
    assert aligned.crop.shape == (112, 112, 3) and aligned.crop.dtype == np.uint8
    assert aligned.M.shape == (2, 3) and aligned.landmarks.shape == (478, 2)
    assert aligned.warnings == [] and aligned.num_faces == 1
    # the transformed eye/nose points sit on the template ...
    assert _template_error(reg.transform_points(aligned.M, aligned.landmarks)) < 3.0
    # ... and so do the points re-detected on the crop itself
    again = redetector(aligned.crop)
    assert again is not None and _template_error(again) < 3.0
    # the whole lower face is inside the crop: chin and mouth with a margin
    in_crop = reg.transform_points(aligned.M, aligned.landmarks)
    lower = in_crop[list(faces.LIPS_OUTER) + [faces.CHIN]]
    assert (lower > 2).all() and (lower < 110).all()


def test_align_no_face_names_the_file(real_data):
    path = real_data / "edge_cases" / "no_face_coffee.png"
    with pytest.raises(NoFaceError, match="no face found in .*no_face_coffee.png; use a photo with"):
        reg.align_image(path)


def test_align_two_faces_takes_the_largest_with_a_warning(real_data):
    path = real_data / "edge_cases" / "two_faces.jpg"
    largest = reg.align_image(path)
    assert largest.num_faces == 2 and len(largest.warnings) == 1
    assert "2 faces" in largest.warnings[0] and "largest" in largest.warnings[0]
    other = reg.align_image(path, face_index=1)
    assert other.warnings == [] and faces.iou(other.box, largest.box) < 0.1
    assert faces.box_area(largest.box) > faces.box_area(other.box)
    with pytest.raises(MediaError, match="face index 2 out of range"):
        reg.align_image(path, face_index=2)


def test_align_small_face_in_full_body_picture_is_found(real_data):
    # Documented behaviour: the face (~200 px of a 800x1200 picture) is found and registered.
    aligned = reg.align_image(real_data / "edge_cases" / "small_face_full_body.png")
    assert aligned.crop.shape == (112, 112, 3)
    assert _template_error(reg.transform_points(aligned.M, aligned.landmarks)) < 3.0


def test_align_small_faces_warn_and_tiny_ones_are_a_clear_error(real_data):
    image = reg.load_image(real_data / "stills" / "portrait_c.png")

    def pasted(factor):
        face = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        canvas = np.full((900, 1200, 3), 128, np.uint8)
        canvas[300:300 + face.shape[0], 500:500 + face.shape[1]] = face
        return canvas

    aligned = reg.align_image(pasted(0.2))  # face ~37 px across in a 1200x900 picture
    assert any("px wide" in w and "blurry" in w for w in aligned.warnings)
    with pytest.raises(NoFaceError, match="no face found in the image array.*at least ~40 px"):
        reg.align_image(pasted(0.1))  # ~18 px: too small to find or to use


def test_align_grey_rgba_16bit_and_huge_inputs(real_data, tmp_path):
    path = real_data / "stills" / "portrait_a.jpg"
    ref = reg.align_image(path)
    rgb = reg.load_image(path)
    grey = reg.align_image(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(tmp_path / "deep.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    k = 4000 / rgb.shape[1]
    cv2.imwrite(str(tmp_path / "huge.png"), cv2.resize(bgr, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC))
    results = [grey] + [reg.align_image(tmp_path / n) for n in ("rgba.png", "deep.png", "grey.png", "huge.png")]
    ref_grey = cv2.cvtColor(ref.crop, cv2.COLOR_RGB2GRAY).astype(float)
    ref_centre = reg.similarity_params(ref.M)[2:]
    for aligned, scale in zip(results, [1, 1, 1, 1, k]):
        assert aligned.crop.shape == (112, 112, 3)
        # the same face centre (to 1% of the 330 px face) and the same picture
        assert np.abs(reg.similarity_params(aligned.M)[2:] / scale - ref_centre).max() < 3.5
        diff = np.abs(cv2.cvtColor(aligned.crop, cv2.COLOR_RGB2GRAY).astype(float) - ref_grey).mean()
        assert diff < 12


def test_align_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(MediaError, match="cannot read image .*broken.jpg"):
        reg.align_image(bad)
    with pytest.raises(MediaError, match="does not exist"):
        reg.align_image(tmp_path / "missing.png")


# --- s2v align -------------------------------------------------------------------------

def _s2v(*args):
    return subprocess.run([sys.executable, "-m", "s2v_jax.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_align_writes_a_112_crop(real_data, tmp_path):
    out = tmp_path / "crop.png"
    res = _s2v("align", "--image", real_data / "stills" / "portrait_b_happy.png", "--out", out)
    assert res.returncode == 0, res.stderr
    assert cv2.imread(str(out)).shape == (112, 112, 3)
    assert "M = " in res.stdout and "wrote" in res.stdout


def test_cli_align_no_face_is_a_one_line_error(real_data, tmp_path):
    res = _s2v("align", "--image", real_data / "edge_cases" / "no_face_coffee.png", "--out",
               tmp_path / "x.png")
    assert res.returncode == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("s2v align: error:")]
    assert len(errors) == 1 and "no face found in" in errors[0]
    assert "Traceback" not in res.stderr and not (tmp_path / "x.png").exists()
