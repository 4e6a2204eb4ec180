"""Face detection, landmarks, shot boundaries and tracking (s2v_jax.faces).

Real-data tests read ../shared/data/real (skipped where absent) and keep to a
few dozen frames per clip.
"""

import cv2
import numpy as np
import pytest

from s2v_jax import faces
from s2v_jax.errors import MediaError

LRS2 = "corpus/lrs2/6046013437125640989"


def _read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _frames(path, n, size=None):
    from s2v_jax.media import video

    out = list(video.iter_frames(path, max_frames=n))
    if size is not None:
        out = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in out]
    return out


# --- pure helpers ------------------------------------------------------------------

def test_to_rgb_converts_grey_rgba_16bit_and_float():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    assert faces.to_rgb(grey).shape == (20, 30, 3)
    assert (faces.to_rgb(grey)[..., 1] == grey).all()
    assert faces.to_rgb(grey[..., None]).shape == (20, 30, 3)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    assert (faces.to_rgb(rgba) == rgba[..., :3]).all()
    deep = grey.astype(np.uint16) * 257
    assert (faces.to_rgb(deep)[..., 0] == grey).all()
    assert (faces.to_rgb(grey / 255.0)[..., 2] == grey).all()


@pytest.mark.parametrize("shape", [(10, 10, 2), (5,), (4, 4, 4, 3)])
def test_to_rgb_rejects_non_images(shape):
    with pytest.raises(MediaError, match="expected an image"):
        faces.to_rgb(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (8, 300)])
def test_to_rgb_says_a_picture_is_too_small(shape):
    with pytest.raises(MediaError, match=f"only {shape[1]}x{shape[0]} pixels, too small to hold a face"):
        faces.to_rgb(np.zeros(shape, np.uint8))


def test_iou_and_boxes():
    a = np.array([0, 0, 10, 10.0])
    assert faces.iou(a, a) == 1.0
    assert faces.iou(a, a + 20) == 0.0
    assert faces.iou(a, np.array([5, 0, 15, 10.0])) == pytest.approx(50 / 150)
    pts = np.array([[1, 2], [5, 9], [3, 4.0]])
    assert faces.box_from_landmarks(pts).tolist() == [1, 2, 5, 9]
    roi = faces.square_roi(np.array([0, 0, 10, 20.0]), 2.0)
    assert roi.tolist() == [-15, -10, 25, 30]


def test_landmark_groups_are_valid_indices():
    groups = [faces.RIGHT_EYE, faces.LEFT_EYE, faces.NOSE, faces.LIPS_OUTER, faces.LIPS_INNER,
              faces.FACE_OVAL, faces.RIGHT_IRIS, faces.LEFT_IRIS, faces.REGISTRATION_POINTS]
    for g in groups:
        assert all(0 <= i < faces.NUM_LANDMARKS for i in g) and len(set(g)) == len(g)
    mouth = set(faces.LIPS_OUTER) | set(faces.LIPS_INNER)
    assert not mouth & set(faces.REGISTRATION_POINTS)


def test_shot_detector_on_synthetic_cut():
    rng = np.random.default_rng(1)
    blue = np.zeros((48, 64, 3), np.uint8)
    blue[..., 2] = 200
    red = np.zeros_like(blue)
    red[..., 0] = 220
    noisy = [np.clip(f + rng.integers(0, 6, f.shape), 0, 255).astype(np.uint8)
             for f in [blue] * 5 + [red] * 5]
    assert faces.detect_shot_boundaries(noisy) == [5]


# --- real data ---------------------------------------------------------------------

def test_detect_faces_on_stills(real_data):
    for path in sorted((real_data / "stills").iterdir()):
        image = _read_rgb(path)
        dets = faces.detect_faces(image)
        assert len(dets) >= 1, path.name
        d = dets[0]
        h, w = image.shape[:2]
        assert 0 <= d.box[0] < d.box[2] <= w + 5 and 0 <= d.box[1] < d.box[3] <= h + 5, path.name
        assert d.keypoints.shape == (6, 2) and 0.5 <= d.score <= 1.0
        # the eyes' keypoints sit inside the box
        assert (d.keypoints[:2] >= d.box[:2]).all() and (d.keypoints[:2] <= d.box[2:]).all()


def test_detect_faces_edge_cases(real_data):
    edge = real_data / "edge_cases"
    assert faces.detect_faces(_read_rgb(edge / "no_face_coffee.png")) == []
    two = faces.detect_faces(_read_rgb(edge / "two_faces.jpg"))
    assert len(two) == 2 and two[0].area >= two[1].area
    assert faces.iou(two[0].box, two[1].box) < 0.1
    assert len(faces.detect_faces(_read_rgb(edge / "small_face_full_body.png"))) == 1


def test_detect_faces_huge_image_maps_back(real_data):
    image = _read_rgb(real_data / "stills" / "portrait_a.jpg")
    k = 4000 / image.shape[1]
    huge = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    # (per model: pooled, the two models' near-equal scores may pick either box)
    for model in (0, 1):
        small = faces.detect_faces(image, models=(model,))[0]
        big = faces.detect_faces(huge, models=(model,))[0]
        assert np.abs(big.box / k - small.box).max() < 0.02 * (small.box[2] - small.box[0])
        assert np.abs(big.keypoints / k - small.keypoints).max() < 0.02 * (small.box[2] - small.box[0])


def test_landmarks_roi_grey_and_full_image_agree(real_data):
    image = _read_rgb(real_data / "stills" / "portrait_c.png")
    with faces.LandmarkDetector(static_image_mode=True) as detector:
        full = detector(image)
        roi = detector(image, faces.square_roi(faces.detect_faces(image)[0].box, 2.0))
        grey = detector(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rgba = detector(cv2.cvtColor(image, cv2.COLOR_RGB2RGBA))
        assert detector(np.zeros((64, 64, 3), np.uint8)) is None
    assert full.shape == (478, 2) and full.dtype == np.float32
    scale = np.linalg.norm(full[263] - full[33])  # outer eye corners
    assert np.linalg.norm(roi - full, axis=1).mean() < 0.02 * scale
    assert np.linalg.norm(grey - full, axis=1).mean() < 0.03 * scale
    assert np.abs(rgba - full).max() < 1e-3
    # subject's right eye is on the image's left; the chin is below the nose
    assert full[33, 0] < full[263, 0] and full[faces.CHIN, 1] > full[faces.NOSE_TIP, 1]


def test_shot_boundary_found_between_two_clips(real_data):
    a = _frames(real_data / LRS2 / "00001.mp4", 20, (160, 160))
    b = _frames(real_data / "corpus/voxceleb2_style/00086.mp4", 20, (160, 160))
    assert faces.detect_shot_boundaries(a) == []
    assert faces.detect_shot_boundaries(b) == []
    assert faces.detect_shot_boundaries(a + b) == [20]


def test_tracker_splits_tracks_at_a_cut(real_data):
    a = _frames(real_data / LRS2 / "00002.mp4", 20, (160, 160))
    b = _frames(real_data / "corpus/voxceleb2_style/00086.mp4", 20, (160, 160))
    tracks = faces.track_faces(a + b, min_track_frames=10)
    assert [(t.start_frame, t.end_frame) for t in tracks] == [(0, 20), (20, 40)]
    for t in tracks:
        assert len(t.landmarks) == len(t.boxes) == 20
        assert all(lm.shape == (478, 2) for lm in t.landmarks)


def test_tracker_keeps_every_face_and_picks_largest(real_data):
    image = _read_rgb(real_data / "edge_cases" / "two_faces.jpg")
    tracker = faces.FaceTracker(min_track_frames=8)
    tracks = []
    for _ in range(16):
        tracks += tracker.update(image)
    tracks += tracker.finish()
    assert len(tracks) == 2
    largest = faces.largest_track(tracks)
    biggest_det = faces.detect_faces(image)[0]
    assert faces.iou(largest.boxes[-1], biggest_det.box) > 0.4
    assert faces.largest_track([]) is None


def test_tracker_reports_no_face(real_data):
    image = _read_rgb(real_data / "edge_cases" / "no_face_coffee.png")
    tracker = faces.FaceTracker(detect_every=2)
    tracks = [t for _ in range(6) for t in tracker.update(image)] + tracker.finish()
    assert tracks == [] and tracker.detections == 0 and tracker.frames_seen == 6


def test_tracker_drops_short_tracks(real_data):
    frames = _frames(real_data / LRS2 / "00001.mp4", 10)
    tracker = faces.FaceTracker(min_track_frames=12)
    tracks = [t for f in frames for t in tracker.update(f)] + tracker.finish()
    assert tracks == [] and tracker.short_tracks == 1


def test_face_tools_without_mediapipe_name_the_install_command(monkeypatch, tmp_path):
    """A core install has no mediapipe (the `faces` extra brings it): finding a face then stops with one
    MissingDependencyError naming the extra, in the library and on the command line (exit 2, no traceback)."""
    import subprocess
    import sys

    from s2v_jax.errors import MissingDependencyError
    from s2v_jax.faces import detection

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` raises ImportError
    detection._face_detection.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"s2v_jax\[faces\]"):
            faces.detect_faces(np.zeros((64, 64, 3), np.uint8))
        with pytest.raises(MissingDependencyError, match=r"s2v_jax\[faces\]"):
            faces.LandmarkDetector()
    finally:
        detection._face_detection.cache_clear()
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((128, 128, 3), 128, np.uint8))
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "mediapipe.py").write_text("raise ImportError('mediapipe hidden for this test')\n")
    env = dict(__import__("os").environ, PYTHONPATH=str(hide))
    run = subprocess.run([sys.executable, "-m", "s2v_jax.cli", "align", "--image", str(photo)],
                         capture_output=True, text=True, env=env, timeout=300)
    err = [l for l in run.stderr.splitlines() if l.strip()]
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and any('s2v_jax[faces]' in l for l in err), run.stderr
