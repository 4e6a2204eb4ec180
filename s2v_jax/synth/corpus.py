"""Synthetic talking-face clips and corpora with exact ground truth.

A speaker is an identity: face appearance (face.FaceParams) plus a voice
(speech.VoiceParams), both drawn from the speaker's seed. A clip draws, from
its own seed, a random utterance, its speech, a background and slow head
motion, and renders one frame per 1/fps s. Frame k shows the mouth at time
k / fps, the same instant the audio pipeline centres frame k's MFCC window on
(audio.mfcc_windows), so mouth and sound have no lag between them.

Corpus layout (generate_corpus):
    <out>/manifest.json                    speakers, clips, seeds, conventions
    <out>/<speaker_id>/<clip_id>.mp4       H.264 video + AAC audio (16 kHz mono)
    <out>/<speaker_id>/<clip_id>.npz       ground truth, see GT_FIELDS
Everything is a pure function of the seeds: the same seed gives identical
frames, audio and ground truth. Re-running skips clips already complete.
"""

import inspect
import json
import os
import pathlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from s2v_jax.errors import S2VError
from s2v_jax.synth import articulation as art
from s2v_jax.synth import face as face_mod
from s2v_jax.synth import speech

FPS = 25.0
SAMPLE_RATE = speech.SAMPLE_RATE
MANIFEST_VERSION = 1
GT_FIELDS = {
    "mouth_open": "[T] float32, mouth openness in [0, 1] at time k / fps (0 closed, 1 wide open 'a')",
    "mouth_width": "[T] float32, mouth width in [0, 1] (0 rounded 'u', 1 spread 'i')",
    "phoneme": "[T] int16, index into phoneme_names of the phoneme sounding at time k / fps",
    "phoneme_names": "[P] str, the phoneme inventory ('sil' = silence)",
    "head_pose": "[T, 4] float32, (dx, dy) shift as fractions of the frame size, rotation (deg, "
                 "counter-clockwise), scale; about the face centre",
    "keypoints": "[T, 7, 2] float32 pixels: eye centres (image left, right), nose tip, mouth corners "
                 "(left, right), inner upper-lip and inner lower-lip midpoints",
    "f0": "[T] float32, voice pitch in Hz at time k / fps (0 where unvoiced)",
    "timeline_phoneme / timeline_start / timeline_end": "[N] str / float64 s: the phoneme timeline",
    "audio": "[S] int16, the exact synthesised 16 kHz waveform (the mp4 holds its AAC encoding)",
    "seed / speaker_seed / speaker_id / fps / sample_rate / size / motion": "scalars identifying the clip",
}


@dataclass(frozen=True)
class Speaker:
    """An identity: appearance and voice, both a function of `seed`."""

    speaker_id: str
    seed: int
    face: face_mod.FaceParams
    voice: speech.VoiceParams

    def to_dict(self) -> Dict:
        return {"id": self.speaker_id, "seed": self.seed, "face": self.face.to_dict(), "voice": self.voice.to_dict()}


def make_speaker(seed: int, speaker_id: Optional[str] = None) -> Speaker:
    """The speaker of a given seed (same seed -> same face and voice)."""
    rng = np.random.default_rng([int(seed), 101])
    face = face_mod.sample_face(rng)
    voice = speech.sample_voice(rng)
    return Speaker(speaker_id or f"spk{int(seed) % 10**8:08d}", int(seed), face, voice)


@dataclass
class SynthClip:
    """One generated clip. T frames, S = T * sample_rate / fps audio samples."""

    seed: int
    speaker: Speaker
    frames: np.ndarray          # [T, H, W, 3] uint8 RGB
    audio: np.ndarray           # [S] float32 in [-1, 1], 16 kHz mono
    mouth_open: np.ndarray      # [T] float32
    mouth_width: np.ndarray     # [T] float32
    phoneme: np.ndarray         # [T] int16 index into art.PHONEME_NAMES
    head_pose: np.ndarray       # [T, 4] float32
    keypoints: np.ndarray       # [T, 7, 2] float32
    f0: np.ndarray              # [T] float32
    phonemes: art.Timeline      # [(phoneme, start s, end s)]
    scene: face_mod.SceneParams
    fps: float = FPS
    sample_rate: int = SAMPLE_RATE
    motion: float = 1.0

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def ground_truth(self) -> Dict[str, np.ndarray]:
        """The arrays written to the clip's .npz (see GT_FIELDS)."""
        return {
            "mouth_open": self.mouth_open, "mouth_width": self.mouth_width, "phoneme": self.phoneme,
            "phoneme_names": np.array(art.PHONEME_NAMES), "head_pose": self.head_pose,
            "keypoints": self.keypoints, "f0": self.f0,
            "timeline_phoneme": np.array([p for p, _, _ in self.phonemes]),
            "timeline_start": np.array([s for _, s, _ in self.phonemes], np.float64),
            "timeline_end": np.array([e for _, _, e in self.phonemes], np.float64),
            "audio": np.round(np.clip(self.audio, -1, 1) * 32767).astype(np.int16),
            "seed": np.int64(self.seed), "speaker_seed": np.int64(self.speaker.seed),
            "speaker_id": np.array(self.speaker.speaker_id), "fps": np.float64(self.fps),
            "sample_rate": np.int64(self.sample_rate), "size": np.int64(self.frames.shape[1]),
            "motion": np.float64(self.motion),
        }


def clip_speech(seed: int, speaker: Speaker, num_frames: int, fps: float = FPS):
    """The sound of a clip alone (what generate_clip uses, without rendering).

    Returns (timeline, wav [num_frames * 16000 / fps] float32, 1 ms-grid
    articulation tracks incl. f0); the mouth at frame k is
    articulation.sample_at(tracks["open"], k / fps).
    """
    duration = num_frames / fps
    rng = np.random.default_rng([int(seed), 202])
    timeline = art.random_utterance(rng, duration, speaker.voice.rate)
    wav, tracks = speech.synthesize(timeline, speaker.voice, rng, duration)
    return timeline, wav, tracks


def generate_clip(seed: int, duration_s: Optional[float] = None, num_frames: Optional[int] = None,
                  size: int = 160, speaker: Optional[Speaker] = None, fps: float = FPS,
                  motion: float = 1.0) -> SynthClip:
    """Generate one clip, fully determined by (seed, speaker, length, size, fps, motion).

    Give `num_frames` or `duration_s` (rounded to whole frames); default 3 s.
    Without `speaker`, the clip's own seed also picks the speaker.
    """
    if num_frames is None:
        num_frames = int(round((3.0 if duration_s is None else duration_s) * fps))
    if num_frames < 5:
        raise S2VError(f"a synthetic clip needs at least 5 frames, got {num_frames} (duration_s={duration_s})")
    if motion < 0:
        raise S2VError(f"head motion amount must be >= 0, got {motion}")
    speaker = speaker or make_speaker(seed)
    timeline, wav, tracks = clip_speech(seed, speaker, num_frames, fps)
    times = np.arange(num_frames) / fps
    mouth_open = art.sample_at(tracks["open"], times)
    mouth_width = art.sample_at(tracks["width"], times)
    voiced = art.sample_at(tracks["voiced"], times) > 0.5
    f0 = np.where(voiced, art.sample_at(tracks["f0"], times), 0.0).astype(np.float32)
    rng = np.random.default_rng([int(seed), 203])  # the look of the clip: its own stream
    scene = face_mod.sample_scene(rng)
    poses = face_mod.head_motion(rng, num_frames, fps, motion)
    renderer = face_mod.FaceRenderer(speaker.face, scene, size)
    frames = renderer.render_clip(mouth_open, mouth_width, poses)
    keypoints = np.stack([renderer.keypoints(o, w, p) for o, w, p in zip(mouth_open, mouth_width, poses)])
    return SynthClip(seed=int(seed), speaker=speaker, frames=frames, audio=wav, mouth_open=mouth_open,
                     mouth_width=mouth_width, phoneme=art.frame_labels(timeline, times), head_pose=poses,
                     keypoints=keypoints, f0=f0, phonemes=timeline, scene=scene, fps=fps,
                     sample_rate=SAMPLE_RATE, motion=float(motion))


def derive_seed(seed: int, *path: int) -> int:
    """A 31-bit seed derived from a corpus seed and a path (kind, index)."""
    return int(np.random.SeedSequence([int(seed), *map(int, path)]).generate_state(1)[0] >> 1)


def write_clip(clip: SynthClip, mp4_path, npz_path) -> None:
    """Write the clip's mp4 (H.264 + AAC) and then its ground truth npz.

    Both appear under their names only when complete, npz last, so an
    existing npz beside its mp4 means a complete clip (used for resuming).
    """
    from s2v_jax.media import video

    mp4_path, npz_path = pathlib.Path(mp4_path), pathlib.Path(npz_path)
    mp4_path.parent.mkdir(parents=True, exist_ok=True)
    # VideoWriter itself writes under a temporary name and renames on close.
    # A fast x264 preset halves the encoding time of these simple pictures.
    fast = {"preset": "veryfast"} if "preset" in inspect.signature(video.VideoWriter).parameters else {}
    with video.VideoWriter(mp4_path, fps=clip.fps, audio=clip.audio, sample_rate=clip.sample_rate,
                           **fast) as writer:
        for frame in clip.frames:
            writer.write(frame)
    tmp_npz = npz_path.with_name(npz_path.stem + ".part.npz")
    np.savez_compressed(tmp_npz, **clip.ground_truth())
    os.replace(tmp_npz, npz_path)


def _is_complete(mp4: pathlib.Path, npz: pathlib.Path, expect: Dict, num_frames: int) -> bool:
    """True if both files exist and the npz was made with the `expect`ed
    scalars (seed, speaker seed, size, fps, motion) and length."""
    if not (mp4.is_file() and npz.is_file() and mp4.stat().st_size > 0):
        return False
    try:
        with np.load(npz) as gt:
            return (len(gt["mouth_open"]) == num_frames
                    and all(np.isclose(float(gt[k]), v) for k, v in expect.items()))
    except Exception:  # a damaged or older file: regenerate it
        return False


def plan_corpus(num_clips: int, seed: int, num_speakers: int,
                clip_seconds: Tuple[float, float], fps: float = FPS) -> Tuple[List[Speaker], List[Dict]]:
    """Speakers and clip specs (id, speaker, seed, num_frames) of a corpus, without rendering."""
    lo, hi = clip_seconds
    if num_clips < 1 or num_speakers < 1:
        raise S2VError(f"need num_clips >= 1 and num_speakers >= 1, got {num_clips} and {num_speakers}")
    if not 0.2 <= lo <= hi:
        raise S2VError(f"clip seconds must satisfy 0.2 <= min <= max, got ({lo}, {hi})")
    speakers = [make_speaker(derive_seed(seed, 0, i), f"spk{i:03d}") for i in range(num_speakers)]
    clips = []
    for j in range(num_clips):
        cseed = derive_seed(seed, 1, j)
        length = np.random.default_rng([cseed, 303]).uniform(lo, hi)
        clips.append({"id": f"clip{j:05d}", "speaker": speakers[j % num_speakers].speaker_id,
                      "speaker_index": j % num_speakers, "seed": cseed,
                      "num_frames": max(5, int(round(length * fps)))})
    return speakers, clips


def generate_corpus(out_dir, num_clips: int, seed: int = 0, num_speakers: Optional[int] = None,
                    clip_seconds: Sequence[float] = (2.0, 4.0), size: int = 160, fps: float = FPS,
                    motion: float = 1.0, progress: bool = True) -> Dict:
    """Write a corpus (layout in the module docstring) and return its manifest.

    Clip j belongs to speaker j % num_speakers (default: one speaker per 5
    clips), so splits by speaker are possible. Complete clips already on disk
    made with the same clip seed, speaker, size, fps, motion and length are
    skipped; others are (re)generated. manifest.json lists exactly this run's
    clips (files of a larger earlier run are left alone but not listed).
    """
    from tqdm import tqdm

    if num_speakers is None:
        num_speakers = max(1, -(-num_clips // 5))
    if size < 64 or motion < 0:
        raise S2VError(f"need size >= 64 px and motion >= 0, got size={size}, motion={motion}")
    speakers, specs = plan_corpus(num_clips, seed, num_speakers, tuple(clip_seconds), fps)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped = 0
    for spec in tqdm(specs, desc="synth clips", unit="clip", disable=not progress):
        mp4 = out / spec["speaker"] / f"{spec['id']}.mp4"
        npz = mp4.with_suffix(".npz")
        spec["video"], spec["ground_truth"] = str(mp4.relative_to(out)), str(npz.relative_to(out))
        spec["duration_s"] = spec["num_frames"] / fps
        expect = {"seed": spec["seed"], "speaker_seed": speakers[spec["speaker_index"]].seed, "size": size,
                  "fps": fps, "motion": motion}
        if _is_complete(mp4, npz, expect, spec["num_frames"]):
            skipped += 1
            continue
        clip = generate_clip(spec["seed"], num_frames=spec["num_frames"], size=size,
                             speaker=speakers[spec["speaker_index"]], fps=fps, motion=motion)
        write_clip(clip, mp4, npz)
    manifest = {
        "version": MANIFEST_VERSION, "kind": "s2v_jax synthetic talking faces",
        "seed": int(seed), "num_clips": num_clips, "num_speakers": num_speakers,
        "clip_seconds": [float(c) for c in clip_seconds], "size": size, "fps": fps,
        "sample_rate": SAMPLE_RATE, "motion": motion, "phoneme_names": list(art.PHONEME_NAMES),
        "conventions": ("frame k shows the mouth at time k / fps; audio sample n is at time n / "
                        "sample_rate; mouth_open/mouth_width are the renderer's inputs"),
        "ground_truth_fields": GT_FIELDS,
        "speakers": [s.to_dict() for s in speakers],
        "clips": specs, "skipped_existing": skipped,
    }
    tmp = out / "manifest.json.part"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / "manifest.json")
    return manifest

