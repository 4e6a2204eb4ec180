"""Procedural faces drawn with OpenCV, with a mouth driven by (openness, width).

A speaker's look (FaceParams: face shape, skin, hair, eyes, brows, nose, lips,
ears, clothes) and a clip's scene (SceneParams: background) are sampled from a
seeded generator. The head without its mouth is drawn once per clip, at twice
the output size and area-downsampled (anti-aliasing), as an RGBA layer. Each
frame copies that layer, draws the lips/mouth interior with sub-pixel
anti-aliased polygons, applies the frame's head pose (a similarity transform:
translation, in-plane rotation, scale) and composites it over the background.
The drawing is deliberately face-like (shaded skin, almond eyes with irises
and lids, nostrils, two-tone lips, teeth) so that MediaPipe's detector and
face mesh lock onto it; all colours are RGB.
"""

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import cv2
import numpy as np

from s2v_jax.errors import S2VError

Color = Tuple[int, int, int]
SKIN_TONES = ((255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 140, 105),
              (166, 110, 80), (128, 84, 60), (98, 64, 46))
HAIR_COLORS = ((28, 24, 24), (64, 44, 34), (110, 74, 48), (196, 160, 98), (146, 68, 38), (150, 150, 150))
IRIS_COLORS = ((92, 56, 32), (52, 36, 26), (72, 112, 164), (82, 122, 82), (122, 96, 52), (110, 122, 132))
HAIR_STYLES = ("short", "long", "buzz", "bun", "side")
BG_KINDS = ("solid", "gradient", "texture", "room")
SHIFT = 4  # sub-pixel bits for cv2 drawing
ONE = 1 << SHIFT


@dataclass(frozen=True)
class FaceParams:
    """A speaker's appearance. Lengths are fractions of the frame size (face_w,
    face_h) or of the face half-width W / half-height H (the rest)."""

    face_w: float
    face_h: float
    jaw: float          # chin narrowing, 0 (round) .. 1 (pointed)
    skin: Color
    hair_style: str
    hair_color: Color
    eye_spacing: float  # eye centre |x| / W
    eye_size: float     # eye half-width / W
    iris_color: Color
    brow_thick: float   # / H
    brow_arch: float    # / H
    nose_len: float     # nose tip y / H below the face centre
    nose_w: float       # nostril |x| / W
    mouth_w: float      # half-width of the mouth at rest / W
    lip_color: Color
    lip_upper: float    # lip thickness / H
    lip_lower: float
    shirt_color: Color

    def to_dict(self) -> Dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SceneParams:
    """A clip's background: kind, two colours and a texture seed."""

    bg_kind: str
    bg_a: Color
    bg_b: Color
    bg_seed: int

    def to_dict(self) -> Dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _jitter(rng, color, amount=12) -> Color:
    """Colour varied mostly in brightness (keeps skin/hair hues plausible)."""
    k = rng.uniform(0.88, 1.1)
    return tuple(int(np.clip(c * k + rng.normal(0, amount / 3), 0, 255)) for c in color)


def sample_face(rng: np.random.Generator) -> FaceParams:
    """A random speaker appearance."""
    skin = _jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 8)
    hair = _jitter(rng, HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))], 10)
    lip = tuple(int(np.clip(c, 0, 255)) for c in (skin[0] * 0.78 + 30, skin[1] * 0.5, skin[2] * 0.52))
    return FaceParams(
        face_w=float(rng.uniform(0.205, 0.245)), face_h=float(rng.uniform(0.285, 0.315)),
        jaw=float(rng.uniform(0.15, 0.6)), skin=skin,
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))], hair_color=hair,
        eye_spacing=float(rng.uniform(0.37, 0.44)), eye_size=float(rng.uniform(0.17, 0.21)),
        iris_color=_jitter(rng, IRIS_COLORS[int(rng.integers(len(IRIS_COLORS)))], 8),
        brow_thick=float(rng.uniform(0.035, 0.06)), brow_arch=float(rng.uniform(0.02, 0.07)),
        nose_len=float(rng.uniform(0.26, 0.32)), nose_w=float(rng.uniform(0.12, 0.17)),
        mouth_w=float(rng.uniform(0.36, 0.44)), lip_color=_jitter(rng, lip, 6),
        lip_upper=float(rng.uniform(0.045, 0.06)), lip_lower=float(rng.uniform(0.06, 0.08)),
        shirt_color=tuple(int(c) for c in rng.integers(20, 230, 3)))


def sample_scene(rng: np.random.Generator) -> SceneParams:
    """A random background."""
    a, b = (tuple(int(c) for c in rng.integers(30, 235, 3)) for _ in range(2))
    return SceneParams(BG_KINDS[int(rng.integers(len(BG_KINDS)))], a, b, int(rng.integers(2**31)))


def head_motion(rng: np.random.Generator, num_frames: int, fps: float = 25.0,
                amount: float = 1.0) -> np.ndarray:
    """Slow head pose per frame: [T, 4] = (dx, dy as fractions of the frame
    size, rotation in degrees, scale). Sums of slow random sinusoids (0.05-0.4 Hz)."""
    t = np.arange(num_frames) / fps
    amps = np.array([0.025, 0.02, 4.0, 0.03]) * amount
    pose = np.zeros((num_frames, 4))
    for j in range(4):
        for _ in range(2):
            f, ph = rng.uniform(0.05, 0.4), rng.uniform(0, 2 * np.pi)
            pose[:, j] += amps[j] / 2 * np.sin(2 * np.pi * f * t + ph)
    pose[:, 3] += 1.0
    return pose.astype(np.float32)


def _poly(img, pts, color, closed=True):
    p = np.round(np.asarray(pts) * ONE).astype(np.int32)
    if closed:
        cv2.fillPoly(img, [p], color, cv2.LINE_AA, SHIFT)
    else:
        cv2.polylines(img, [p], False, color, 1, cv2.LINE_AA, SHIFT)


def _ellipse(img, c, axes, color, angle=0.0, thickness=-1, a0=0, a1=360):
    cc = (int(round(c[0] * ONE)), int(round(c[1] * ONE)))
    ax = (max(int(round(axes[0] * ONE)), 1), max(int(round(axes[1] * ONE)), 1))
    cv2.ellipse(img, cc, ax, angle, a0, a1, color, thickness, cv2.LINE_AA, SHIFT)


def _shade(c: Color, k: float) -> Color:
    return tuple(int(np.clip(v * k, 0, 255)) for v in c)


class FaceRenderer:
    """Draws one speaker in one scene at `size` x `size` pixels.

    render(open, width, pose) -> [size, size, 3] uint8 RGB; open/width in
    [0, 1] (ground-truth mouth parameters), pose as head_motion rows.
    """

    def __init__(self, face: FaceParams, scene: SceneParams, size: int = 160):
        if size < 64:
            raise S2VError(f"synthetic frame size must be >= 64 px, got {size}")
        self.face, self.scene, self.size = face, scene, int(size)
        self.cx, self.cy = 0.5 * size, 0.47 * size
        self.W, self.H = face.face_w * size, face.face_h * size
        self.background = self._background()
        big = self._draw_head(2 * size)
        self.layer = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)

    # ----- static parts -------------------------------------------------
    def _background(self) -> np.ndarray:
        s, sc = self.size, self.scene
        a, b = np.array(sc.bg_a, np.float32), np.array(sc.bg_b, np.float32)
        y = np.linspace(0, 1, s, dtype=np.float32)[:, None, None]
        if sc.bg_kind == "solid":
            img = np.broadcast_to(a, (s, s, 3)).copy()
        elif sc.bg_kind == "gradient":
            img = np.broadcast_to(a * (1 - y) + b * y, (s, s, 3)).copy()
        elif sc.bg_kind == "texture":
            rng = np.random.default_rng(sc.bg_seed)
            n = cv2.GaussianBlur(rng.standard_normal((s, s)).astype(np.float32), (0, 0), s / 40)
            n = (n - n.min()) / (np.ptp(n) + 1e-6)
            img = a * (1 - n[..., None]) + b * n[..., None]
        else:  # "room": a wall with a door/window frame and a floor line
            rng = np.random.default_rng(sc.bg_seed)
            img = np.broadcast_to(a, (s, s, 3)).copy()
            x0 = int(rng.uniform(0.0, 0.7) * s)
            cv2.rectangle(img, (x0, int(0.08 * s)), (x0 + int(0.3 * s), s), tuple(float(v) for v in b), -1)
            img[int(0.85 * s):] *= 0.8
        return np.clip(img, 0, 255).astype(np.uint8)

    def _draw_head(self, s: int) -> np.ndarray:
        """RGBA head layer (no mouth) drawn at s x s pixels."""
        f, k = self.face, s / self.size
        cx, cy, W, H = self.cx * k, self.cy * k, self.W * k, self.H * k
        img = np.zeros((s, s, 4), np.uint8)
        hair = f.hair_color + (255,)
        # Shoulders, neck, hair behind the head, ears.
        _ellipse(img, (cx, cy + 2.25 * H), (2.1 * W, 1.0 * H), f.shirt_color + (255,))
        neck = [(cx - 0.55 * W, cy + 0.5 * H), (cx + 0.55 * W, cy + 0.5 * H),
                (cx + 0.6 * W, cy + 1.45 * H), (cx - 0.6 * W, cy + 1.45 * H)]
        _poly(img, neck, _shade(f.skin, 0.8) + (255,))
        if f.hair_style == "long":
            _poly(img, [(cx - 1.25 * W, cy - 0.3 * H), (cx + 1.25 * W, cy - 0.3 * H),
                        (cx + 1.35 * W, cy + 1.2 * H), (cx - 1.35 * W, cy + 1.2 * H)], hair)
        if f.hair_style == "bun":
            _ellipse(img, (cx, cy - 1.15 * H), (0.45 * W, 0.3 * H), hair)
        for sgn in (-1, 1):
            _ellipse(img, (cx + sgn * 0.98 * W, cy + 0.05 * H), (0.16 * W, 0.22 * H), _shade(f.skin, 0.9) + (255,))
        if f.hair_style != "buzz":
            _ellipse(img, (cx, cy - 0.12 * H), (1.1 * W, 1.0 * H), hair, a0=180, a1=360)
        # Face outline: an ellipse whose lower half narrows towards the chin.
        th = np.linspace(0, 2 * np.pi, 120, endpoint=False)
        yy = np.sin(th)
        xx = np.cos(th) * np.where(yy > 0, 1.0 - f.jaw * 0.35 * yy ** 2, 1.0)
        outline = np.stack([cx + W * xx, cy + H * yy], 1)
        mask = np.zeros((s, s), np.uint8)
        _poly(mask, outline, 255)
        # Skin with soft shading: lit from the upper left, darker at the rim.
        yg, xg = np.mgrid[0:s, 0:s].astype(np.float32)
        r2 = ((xg - cx + 0.2 * W) / W) ** 2 + ((yg - cy + 0.2 * H) / H) ** 2
        shade = np.clip(1.08 - 0.28 * r2, 0.6, 1.1)[..., None]
        face_rgb = np.clip(np.array(f.skin, np.float32) * shade, 0, 255)
        m = mask[..., None].astype(np.float32) / 255
        img[..., :3] = (img[..., :3] * (1 - m) + face_rgb * m).astype(np.uint8)
        img[..., 3] = np.maximum(img[..., 3], mask)
        # Hair on the forehead (fringe / cap), leaving the brows free.
        if f.hair_style in ("short", "long", "bun"):
            _ellipse(img, (cx, cy - 0.62 * H), (1.0 * W, 0.42 * H), hair, a0=180, a1=360)
        elif f.hair_style == "side":
            _poly(img, [(cx - 1.05 * W, cy - 0.45 * H), (cx - 0.9 * W, cy - 0.95 * H),
                        (cx + 0.4 * W, cy - 1.05 * H), (cx + 1.05 * W, cy - 0.5 * H),
                        (cx + 0.2 * W, cy - 0.62 * H)], hair)
        else:
            _ellipse(img, (cx, cy - 0.7 * H), (0.95 * W, 0.33 * H), _shade(f.hair_color, 1.2) + (255,),
                     a0=180, a1=360)
        self._draw_features(img, cx, cy, W, H, k)
        return img

    def _draw_features(self, img, cx, cy, W, H, k):
        f = self.face
        ey, ew = cy - 0.1 * H, f.eye_size * W
        dark = _shade(f.skin, 0.45) + (255,)
        for sgn in (-1, 1):
            ex = cx + sgn * f.eye_spacing * W
            # Brow: a thick arc.
            bx = np.linspace(-1.2, 1.2, 15)
            top = ey - 0.26 * H - f.brow_arch * H * (1 - bx ** 2)
            brow = np.concatenate([np.stack([ex + bx * ew, top], 1),
                                   np.stack([ex + bx[::-1] * ew, top[::-1] + f.brow_thick * H], 1)])
            _poly(img, brow, _shade(f.hair_color, 0.8) + (255,))
            # Eye socket shadow, almond sclera, iris, pupil, lid line, glint.
            _ellipse(img, (ex, ey - 0.01 * H), (1.25 * ew, 0.75 * ew), _shade(f.skin, 0.88) + (255,))
            xs = np.linspace(-1, 1, 21)
            upper = np.stack([ex + xs * ew, ey - 0.55 * ew * np.sqrt(1 - xs ** 2)], 1)
            lower = np.stack([ex + xs[::-1] * ew, ey + 0.38 * ew * np.sqrt(1 - xs[::-1] ** 2)], 1)
            almond = np.concatenate([upper, lower])
            _poly(img, almond, (240, 238, 232, 255))
            eye = np.zeros(img.shape[:2], np.uint8)
            _poly(eye, almond, 255)
            iris = img.copy()
            _ellipse(iris, (ex, ey), (0.5 * ew, 0.5 * ew), f.iris_color + (255,))
            _ellipse(iris, (ex, ey), (0.22 * ew, 0.22 * ew), (15, 12, 12, 255))
            _ellipse(iris, (ex - 0.15 * ew, ey - 0.15 * ew), (0.08 * ew, 0.08 * ew), (250, 250, 250, 255))
            img[eye > 0] = iris[eye > 0]
            cv2.polylines(img, [np.round(upper * ONE).astype(np.int32)], False, (30, 22, 22, 255),
                          max(1, int(round(1.5 * k))), cv2.LINE_AA, SHIFT)
        # Nose: a soft side shadow, a lighter tip and two nostrils.
        ny = cy + f.nose_len * H
        _poly(img, [(cx - 0.08 * W, ey + 0.05 * H), (cx - 0.02 * W, ey + 0.05 * H),
                    (cx - 0.1 * W, ny - 0.05 * H), (cx - 0.2 * W, ny)], _shade(f.skin, 0.85) + (255,))
        _ellipse(img, (cx, ny), (f.nose_w * W * 1.2, 0.07 * H), _shade(f.skin, 0.9) + (255,))
        _ellipse(img, (cx, ny - 0.03 * H), (0.11 * W, 0.06 * H), _shade(f.skin, 1.06) + (255,))
        for sgn in (-1, 1):
            _ellipse(img, (cx + sgn * 0.5 * f.nose_w * W, ny + 0.03 * H), (0.05 * W, 0.025 * H), dark,
                     angle=sgn * 20)
        # Chin shadow line under the lower lip.
        _ellipse(img, (cx, cy + 0.83 * H), (0.2 * W, 0.04 * H), _shade(f.skin, 0.9) + (255,))

    # ----- per frame --------------------------------------------------------
    def _draw_mouth(self, img: np.ndarray, open_: float, width: float) -> None:
        f, H = self.face, self.H
        x0, y0, hw, oh = self._mouth_geometry(open_, width)
        xs = np.linspace(-1, 1, 17)
        s = np.sqrt(np.clip(1 - xs ** 2, 0, 1)) ** 0.8
        bow = 1.0 - 0.35 * np.exp(-(xs / 0.18) ** 2)
        X = x0 + xs * hw
        in_up = y0 - 0.25 * oh * s
        in_lo = y0 + 0.75 * oh * s
        out_up = in_up - f.lip_upper * H * s ** 0.6 * bow
        out_lo = in_lo + f.lip_lower * H * s ** 0.7
        if oh > 0.4:
            _poly(img, np.concatenate([np.stack([X, in_up], 1), np.stack([X[::-1], in_lo[::-1]], 1)]),
                  (52, 18, 22, 255))
            # Upper teeth: a band under the upper lip, thinner when barely open.
            teeth = np.minimum(in_up + np.minimum(0.3 * oh, 0.07 * H) * s, in_lo)
            _poly(img, np.concatenate([np.stack([X, in_up], 1), np.stack([X[::-1], teeth[::-1]], 1)]),
                  (228, 222, 210, 255))
        lip = f.lip_color + (255,)
        _poly(img, np.concatenate([np.stack([X, out_up], 1), np.stack([X[::-1], in_up[::-1]], 1)]),
              _shade(f.lip_color, 0.88) + (255,))
        _poly(img, np.concatenate([np.stack([X, in_lo], 1), np.stack([X[::-1], out_lo[::-1]], 1)]), lip)
        _poly(img, np.stack([X, in_up], 1), _shade(f.lip_color, 0.45) + (255,), closed=False)

    def _mouth_geometry(self, open_: float, width: float):
        """Mouth centre (x0, y0), half-width and opening height in layer pixels."""
        hw = self.face.mouth_w * self.W * (0.72 + 0.42 * width) * (1.0 - 0.06 * open_)
        oh = 0.30 * self.H * float(np.clip(open_, 0.0, 1.2))
        return self.cx, self.cy + 0.58 * self.H, hw, oh

    def _pose_matrix(self, pose) -> np.ndarray:
        dx, dy, rot, scale = (float(v) for v in pose)
        M = cv2.getRotationMatrix2D((self.cx, self.cy), rot, scale)
        M[:, 2] += (dx * self.size, dy * self.size)
        return M

    def keypoints(self, open_: float, width: float, pose=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
        """Ground-truth 2D points in the frame, [7, 2] (x, y) pixels: eye centres
        (image-left, image-right), nose tip, mouth corners (left, right), inner
        upper-lip and inner lower-lip midpoints."""
        f = self.face
        x0, y0, hw, oh = self._mouth_geometry(float(open_), float(width))
        ey = self.cy - 0.1 * self.H
        pts = np.array([[self.cx - f.eye_spacing * self.W, ey], [self.cx + f.eye_spacing * self.W, ey],
                        [self.cx, self.cy + (f.nose_len - 0.03) * self.H], [x0 - hw, y0], [x0 + hw, y0],
                        [x0, y0 - 0.25 * oh], [x0, y0 + 0.75 * oh]])
        M = self._pose_matrix(pose)
        return (pts @ M[:, :2].T + M[:, 2]).astype(np.float32)

    def render(self, open_: float, width: float, pose=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
        """One frame [size, size, 3] uint8 RGB."""
        layer = self.layer.copy()
        self._draw_mouth(layer, float(open_), float(width))
        M = self._pose_matrix(pose)
        warped = cv2.warpAffine(layer, M, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3:4].astype(np.uint16)
        out = (warped[..., :3] * a + self.background * (255 - a) + 127) // 255
        return out.astype(np.uint8)

    def render_clip(self, open_: np.ndarray, width: np.ndarray, poses: np.ndarray) -> np.ndarray:
        """Frames [T, size, size, 3] uint8 for per-frame open/width [T] and poses [T, 4]."""
        return np.stack([self.render(o, w, p) for o, w, p in zip(open_, width, poses)])
