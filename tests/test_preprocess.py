"""Video -> registered face tracks (s2v_jax.faces.preprocess) and `s2v inspect`, on real clips.

Every clip of the corpus gives a track; the fast suite reads the first 25
frames of each voxceleb2-style, GRID and single-speaker clip and of a few LRS2
clips; `-m slow` runs all 30 LRS2 clips.
"""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from s2v_jax import faces
from s2v_jax.faces import preprocess
from s2v_jax.errors import MediaError
from s2v_jax.faces import registration as reg

LRS2 = "corpus/lrs2/6046013437125640989"
LRS2_FAST = ["00001", "00010", "00024", "00033"]  # incl. the hardest pose and a 22-frame clip
LRS2_ALL = ["00001", "00002", "00004", "00005", "00006", "00007", "00010", "00014", "00016",
            "00018", "00020", "00021", "00023", "00024", "00025", "00026", "00027", "00028",
            "00029", "00030", "00031", "00032", "00033", "00034", "00035", "00036", "00037",
            "00038", "00040", "00041"]
VOX = ["00002", "00010", "00015", "00086", "00098", "00373", "00473", "517600055", "620900105",
       "681100216", "731200067", "741400104", "741400163", "796100172"]
GRID = ["bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a", "lwbsza"]
FAST_CLIPS = ([f"{LRS2}/{c}.mp4" for c in LRS2_FAST] + [f"corpus/voxceleb2_style/{c}.mp4" for c in VOX]
              + [f"corpus/grid/{c}.mpg" for c in GRID] + ["single_speaker/anchor_cnn_71s.mp4"])
FRAMES = 25


def _check_track(track, max_residual):
    n = len(track)
    assert n >= preprocess.MIN_TRACK_FRAMES and track.end_frame - track.start_frame == n
    assert track.crops.shape == (n, 112, 112, 3) and track.crops.dtype == np.uint8
    assert track.landmarks.shape == (n, 478, 2) and track.landmarks.dtype == np.float32
    assert track.transforms.shape == (n, 2, 3) and track.transforms.dtype == np.float32
    assert track.boxes.shape == (n, 4) and track.residuals.shape == (n,)
    # eye and nose points on the template (a turned head leaves a few px: 3-D pose)
    assert track.residuals.mean() < max_residual
    assert track.crops.std() > 10  # a real picture, not a blank


@pytest.mark.parametrize("clip", FAST_CLIPS)
def test_every_clip_gives_a_registered_track(real_data, clip):
    tracks = preprocess.extract_tracks(real_data / clip, max_frames=FRAMES)
    assert len(tracks) >= 1
    for track in tracks:
        _check_track(track, max_residual=6.5)


@pytest.mark.slow
@pytest.mark.parametrize("clip", LRS2_ALL)
def test_every_lrs2_clip_gives_a_registered_track(real_data, clip):
    tracks = preprocess.extract_tracks(real_data / LRS2 / f"{clip}.mp4", max_frames=50)
    assert len(tracks) >= 1
    _check_track(faces.largest_track(tracks), max_residual=6.5)


def test_registration_accuracy_on_frontal_clips(real_data):
    """Landmarks re-detected on the crops sit on the template and on the stored landmarks."""
    clips = [f"{LRS2}/00002.mp4", "corpus/grid/bbaf2n.mpg", "single_speaker/anchor_cnn_71s.mp4",
             "corpus/voxceleb2_style/00473.mp4"]
    to_template, to_stored = [], []
    with faces.LandmarkDetector(static_image_mode=True) as detector:
        for clip in clips:
            track = preprocess.extract_tracks(real_data / clip, max_frames=FRAMES)[0]
            for i in range(0, len(track), 6):
                lm = detector(track.crops[i])
                assert lm is not None, clip
                pts = reg.registration_points(lm)
                to_template.append(np.linalg.norm(pts - reg.TEMPLATE_112, axis=1).mean())
                to_stored.append(np.linalg.norm(lm - track.landmarks[i], axis=1).mean())
    assert np.mean(to_template) < 2.0 and max(to_template) < 3.0
    assert np.mean(to_stored) < 1.0


def test_transforms_are_the_smoothed_registrations(real_data):
    track = preprocess.extract_tracks(real_data / f"{LRS2}/00005.mp4", max_frames=40)[0]
    frame_lms = track.frame_landmarks()
    raw = np.stack([reg.registration_transform(lm) for lm in frame_lms])
    expected = reg.smooth_transforms(raw, sigma=preprocess.SMOOTHING_SIGMA)
    assert np.allclose(track.transforms, expected, atol=2e-3)
    # smoothing steadies the crop: the frame-to-frame change of the face centre shrinks
    def jitter(ms):
        return np.abs(np.diff(reg.similarity_params(ms)[:, 2:], n=2, axis=0)).mean()

    assert jitter(track.transforms) < 0.6 * jitter(raw)


def test_preprocess_video_pairs_tracks_with_mfcc_windows(real_data):
    video = preprocess.preprocess_video(real_data / f"{LRS2}/00001.mp4", max_frames=30)
    assert video.num_frames == 30 and video.mfcc_windows.shape == (30, 12, 35)
    assert video.mfcc_windows.dtype == np.float32 and np.abs(video.mfcc_windows).max() > 0
    assert video.info.fps == 25.0 and video.no_face_reason is None
    assert len(video.tracks) == 1 and video.tracks[0].end_frame <= video.num_frames


def test_preprocess_video_without_audio_is_a_media_error(real_data):
    with pytest.raises(MediaError, match="no audio track"):
        preprocess.preprocess_video(real_data / "edge_cases" / "no_audio_track_anime.mp4")


def test_unreadable_video_is_a_media_error(real_data):
    with pytest.raises(MediaError):
        preprocess.extract_tracks(real_data / "edge_cases" / "truncated.mp4")


def test_video_without_faces_gives_no_tracks_and_a_reason(real_data, tmp_path):
    from s2v_jax.media import video

    coffee = cv2.cvtColor(cv2.imread(str(real_data / "edge_cases" / "no_face_coffee.png")), cv2.COLOR_BGR2RGB)
    path = tmp_path / "coffee.mp4"
    tone = 0.1 * np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000).astype(np.float32)
    video.write_video(path, [coffee] * 25, audio=tone, preset="ultrafast")
    result = preprocess.preprocess_video(path)
    assert result.tracks == [] and result.num_frames == 25
    assert "no face found in any of the 25 frames" in result.no_face_reason
    assert result.mfcc_windows.shape == (25, 12, 35)


def test_tracks_split_at_a_shot_cut(real_data, tmp_path):
    from s2v_jax.media import video

    a = list(video.iter_frames(real_data / f"{LRS2}/00002.mp4", max_frames=20))
    b = [cv2.resize(f, (160, 160), interpolation=cv2.INTER_AREA)
         for f in video.iter_frames(real_data / "corpus/voxceleb2_style/00086.mp4", max_frames=20)]
    path = tmp_path / "cut.mp4"
    video.write_video(path, a + b, preset="ultrafast")
    extractor = preprocess.TrackExtractor(path)
    tracks = extractor.run()
    assert extractor.shot_boundaries == [20]
    assert [(t.start_frame, t.end_frame) for t in tracks] == [(0, 20), (20, 40)]


def test_cli_inspect_writes_an_overlay_video(real_data, tmp_path):
    from s2v_jax.media import video

    out = tmp_path / "overlay.mp4"
    res = subprocess.run([sys.executable, "-m", "s2v_jax.cli", "inspect",
                          str(real_data / f"{LRS2}/00001.mp4"), "--out", str(out), "--max-frames", "20"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "1 face track(s)" in res.stdout
    info = video.probe(out)
    assert info.has_audio and info.width >= 360 and 19 <= info.num_frames <= 21
    assert len(list(video.iter_frames(out))) == 20
