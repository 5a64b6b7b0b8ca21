"""How the demo's animals look and move, and the drawing of one animal as a small sprite.

Every species is a :class:`Look`: a body plan (four-legged, upright primate, bird, reptile),
proportions, coat colours and pattern (spots, rosettes, stripes, scales, quills...), extras
(trunk, horns, mane...), size, speed, way of moving, group size and how often it is seen at night.
Classes differ only by what a camera would see: shape, size, colour, texture and motion.

A :class:`Individual` is one animal drawn from a look (its own colours and coat); :func:`draw_gait`
renders it at a pixel size as a few gait phases (legs swinging, wings flapping), each a
premultiplied RGBA :class:`Sprite` with the point that touches the ground and the eye positions
(for infrared eyeshine). Drawing uses OpenCV primitives on a supersampled canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["Look", "LOOKS", "Individual", "Sprite", "individual", "draw_gait", "GAIT_PHASES"]

#: Gait phases drawn per animal (legs/wings cycle through them while it moves).
GAIT_PHASES = 4

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    """How one species looks and moves.

    Sizes are in frame heights for an animal at the middle of the ground; speeds in frame widths
    per second. ``length`` is the body length for four-legged animals, birds and reptiles, and the
    standing height for upright primates and humans. Proportions are in body lengths (heights).
    """

    plan: str                       # quadruped | upright | bird | reptile
    length: tuple[float, float]
    colour: RGB
    colour2: RGB                    # pattern / marking colour
    pattern: str = "plain"          # plain|spots|rosettes|stripes|patches|scales|speckle|bands|mottled|dorsal|belly
    aspect: float = 0.45            # body height / length
    legs: float = 0.45
    leg_width: float = 0.07
    head: float = 0.28
    neck: float = 0.1
    neck_angle: float = 30.0        # degrees above horizontal
    slope: float = 0.0              # back slope, degrees; > 0: shoulders higher than rump
    tail: float = 0.2
    tail_angle: float = -40.0       # degrees from horizontal, pointing backwards; > 0: up
    tail_curl: float = 0.0          # degrees of curl per tail segment
    lean: float = 0.0               # upright plans: torso lean from vertical, degrees
    bulk: float = 1.0               # upright plans: torso width factor
    extras: tuple[str, ...] = ()
    speed: tuple[float, float] = (0.15, 0.3)
    motion: str = "walk"            # walk | amble | scurry | hop | fly | slither
    group: tuple[int, int] = (1, 1)
    night: float = 0.4              # share of this species' clips filmed at night
    eyeshine: bool = True


LOOKS: dict[str, Look] = {
    "bird": Look("bird", (0.06, 0.12), (110, 85, 60), (215, 205, 180), "speckle", speed=(0.5, 1.1),
                 motion="fly", group=(1, 2), night=0.1, eyeshine=False),
    "cattle": Look("quadruped", (0.45, 0.62), (225, 218, 205), (55, 40, 32), "patches", aspect=0.46,
                   legs=0.5, leg_width=0.09, head=0.25, neck=0.08, neck_angle=10, tail=0.45,
                   tail_angle=-75, extras=("horns", "tail_tuft"), speed=(0.07, 0.14), group=(1, 3), night=0.15),
    "chimpanzee": Look("upright", (0.38, 0.55), (34, 30, 28), (150, 118, 98), lean=40, bulk=1.25,
                       speed=(0.15, 0.3), group=(1, 3), night=0.05),
    "elephant": Look("quadruped", (0.6, 0.85), (122, 119, 115), (96, 93, 90), "speckle", aspect=0.62,
                     legs=0.42, leg_width=0.16, head=0.34, neck=0.0, neck_angle=10, tail=0.3,
                     tail_angle=-80, extras=("big_ears", "trunk", "tusks"), speed=(0.05, 0.11), night=0.4),
    "forest buffalo": Look("quadruped", (0.5, 0.68), (142, 72, 38), (62, 36, 22), "plain", aspect=0.52,
                           legs=0.4, leg_width=0.1, head=0.3, neck=0.05, neck_angle=0, tail=0.4,
                           tail_angle=-75, extras=("horns_swept", "ear_tufts", "tail_tuft"),
                           speed=(0.07, 0.14), group=(1, 3), night=0.4),
    "gorilla": Look("upright", (0.45, 0.62), (26, 26, 29), (150, 150, 150), lean=50, bulk=1.7,
                    extras=("silverback",), speed=(0.08, 0.18), group=(1, 2), night=0.02),
    "hippopotamus": Look("quadruped", (0.6, 0.85), (112, 96, 102), (196, 146, 136), "belly", aspect=0.55,
                         legs=0.22, leg_width=0.14, head=0.38, neck=0.0, neck_angle=-5, tail=0.08,
                         speed=(0.05, 0.1), night=0.9),
    "human": Look("upright", (0.55, 0.8), (60, 80, 120), (160, 120, 90), lean=4, bulk=0.85,
                  extras=("clothes",), speed=(0.22, 0.42), group=(1, 2), night=0.05, eyeshine=False),
    "hyena": Look("quadruped", (0.4, 0.55), (172, 142, 98), (58, 44, 30), "spots", aspect=0.42,
                  legs=0.55, head=0.3, neck=0.12, neck_angle=15, slope=12, tail=0.25, tail_angle=-60,
                  extras=("round_ears",), speed=(0.15, 0.3), night=0.85),
    "large ungulate": Look("quadruped", (0.5, 0.68), (150, 72, 32), (240, 235, 222), "stripes", aspect=0.42,
                           legs=0.62, leg_width=0.06, head=0.25, neck=0.2, neck_angle=45, tail=0.2,
                           tail_angle=-60, extras=("horns_long",), speed=(0.1, 0.2), night=0.5),
    "leopard": Look("quadruped", (0.36, 0.55), (205, 158, 72), (40, 30, 20), "rosettes", aspect=0.34,
                    legs=0.4, leg_width=0.07, head=0.22, neck=0.08, neck_angle=10, tail=0.8, tail_angle=-15,
                    tail_curl=8, speed=(0.1, 0.25), night=0.75),
    "lion": Look("quadruped", (0.5, 0.7), (192, 152, 92), (110, 70, 36), "plain", aspect=0.4, legs=0.45,
                 leg_width=0.09, head=0.3, neck=0.08, neck_angle=15, tail=0.6, tail_angle=-30,
                 extras=("mane", "tail_tuft"), speed=(0.1, 0.2), night=0.6),
    "other (non-primate)": Look("quadruped", (0.2, 0.34), (152, 146, 130), (32, 30, 30), "bands",
                                aspect=0.3, legs=0.28, leg_width=0.06, head=0.22, neck=0.06, neck_angle=10,
                                tail=0.9, tail_angle=-15, extras=("tail_rings",), speed=(0.15, 0.35),
                                night=0.8),
    "other (primate)": Look("quadruped", (0.17, 0.28), (118, 108, 92), (225, 218, 200), "plain",
                            aspect=0.38, legs=0.5, leg_width=0.07, head=0.3, neck=0.05, neck_angle=30,
                            slope=-6, tail=1.1, tail_angle=55, tail_curl=-14, extras=("white_cheeks",),
                            speed=(0.2, 0.45), motion="hop", group=(1, 4), night=0.05),
    "pangolin": Look("quadruped", (0.2, 0.32), (152, 112, 66), (88, 58, 34), "scales", aspect=0.36,
                     legs=0.15, leg_width=0.07, head=0.15, neck=0.05, neck_angle=-10, slope=-8, tail=0.9,
                     tail_angle=-8, speed=(0.05, 0.12), night=0.95),
    "porcupine": Look("quadruped", (0.18, 0.3), (46, 40, 35), (232, 226, 214), "plain", aspect=0.5,
                      legs=0.15, leg_width=0.08, head=0.2, neck=0.0, neck_angle=-5, tail=0.15,
                      extras=("quills",), speed=(0.06, 0.14), motion="amble", night=0.95),
    "reptile": Look("reptile", (0.3, 0.5), (86, 92, 56), (200, 190, 92), "speckle", speed=(0.05, 0.15),
                    motion="slither", night=0.1, eyeshine=False),
    "rodent": Look("quadruped", (0.05, 0.1), (120, 86, 56), (205, 176, 136), "belly", aspect=0.45,
                   legs=0.2, leg_width=0.06, head=0.35, neck=0.0, neck_angle=0, tail=0.8, tail_angle=-5,
                   speed=(0.4, 0.9), motion="scurry", night=0.8),
    "small antelope": Look("quadruped", (0.28, 0.4), (182, 112, 56), (245, 240, 230), "belly", aspect=0.4,
                           legs=0.58, leg_width=0.045, head=0.22, neck=0.22, neck_angle=50, tail=0.1,
                           tail_angle=-20, extras=("horns_short",), speed=(0.15, 0.35), night=0.4),
    "small cat": Look("quadruped", (0.18, 0.3), (176, 122, 62), (92, 62, 36), "spots", aspect=0.35,
                      legs=0.35, leg_width=0.06, head=0.25, neck=0.05, neck_angle=10, tail=0.7,
                      tail_angle=-25, speed=(0.1, 0.25), night=0.8),
    "wild dog": Look("quadruped", (0.3, 0.45), (160, 122, 72), (30, 25, 20), "mottled", aspect=0.38,
                     legs=0.55, leg_width=0.06, head=0.25, neck=0.1, neck_angle=20, tail=0.45,
                     tail_angle=-35, extras=("round_ears", "white_tail_tip"), speed=(0.3, 0.55),
                     group=(2, 4), night=0.3),
    "duiker": Look("quadruped", (0.22, 0.35), (132, 72, 40), (42, 26, 16), "dorsal", aspect=0.44,
                   legs=0.45, leg_width=0.05, head=0.22, neck=0.1, neck_angle=15, slope=-12, tail=0.08,
                   extras=("horns_short",), speed=(0.08, 0.22), motion="amble", night=0.45),
    "hog": Look("quadruped", (0.35, 0.5), (178, 82, 40), (236, 230, 226), "plain", aspect=0.5, legs=0.3,
                leg_width=0.08, head=0.3, neck=0.0, neck_angle=-15, tail=0.15, tail_angle=-60,
                extras=("white_face", "ear_tufts"), speed=(0.12, 0.3), group=(1, 4), night=0.4),
}

_BIRD_COLOURS: tuple[tuple[RGB, RGB], ...] = (
    ((70, 70, 82), (225, 225, 225)), ((120, 86, 50), (210, 190, 150)), ((38, 38, 40), (200, 60, 40)),
    ((170, 70, 45), (60, 40, 30)), ((62, 110, 150), (230, 220, 200)),
)
_SHIRTS: tuple[RGB, ...] = ((40, 62, 122), (152, 34, 32), (206, 204, 194), (122, 112, 72), (42, 92, 52),
                            (32, 32, 34), (210, 160, 40))
_TROUSERS: tuple[RGB, ...] = ((40, 42, 62), (92, 82, 60), (62, 62, 62), (30, 30, 30))
_SKINS: tuple[RGB, ...] = ((86, 58, 40), (140, 100, 70), (198, 160, 130))


@dataclass(frozen=True)
class Individual:
    """One animal: its species' look plus its own colours, coat and habits."""

    species: str
    look: Look
    colour: RGB
    colour2: RGB
    colour3: RGB = (0, 0, 0)        # humans: trousers; otherwise unused
    skin: RGB = (0, 0, 0)           # humans: face and hands
    coat_seed: int = 0
    flying: bool = False
    extras: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Sprite:
    """A drawn animal: premultiplied colour (h, w, 3) float32, alpha (h, w) float32 in [0, 1],
    the ground point ``anchor`` (x, y) and eye positions, in sprite pixels."""

    rgb: np.ndarray
    alpha: np.ndarray
    anchor: tuple[float, float]
    eyes: tuple[tuple[float, float], ...]

    @property
    def width(self) -> int:
        return self.alpha.shape[1]

    @property
    def height(self) -> int:
        return self.alpha.shape[0]


def _jitter(colour: RGB, rng: np.random.Generator, amount: float) -> RGB:
    scale = 1.0 + rng.normal(0, amount)
    return tuple(int(np.clip(c * scale + rng.normal(0, 6), 0, 255)) for c in colour)


def individual(species: str, rng: np.random.Generator) -> Individual:
    """Draw one animal of ``species``: colours jittered around its look, a coat seed, habits."""
    look = LOOKS[species]
    colour, colour2 = _jitter(look.colour, rng, 0.08), _jitter(look.colour2, rng, 0.05)
    extras = list(look.extras)
    colour3 = skin = (0, 0, 0)
    flying = False
    if species == "bird":
        base, mark = _BIRD_COLOURS[rng.integers(len(_BIRD_COLOURS))]
        colour, colour2 = _jitter(base, rng, 0.06), _jitter(mark, rng, 0.04)
        flying = bool(rng.random() < 0.6)
    if "clothes" in extras:
        colour = _jitter(_SHIRTS[rng.integers(len(_SHIRTS))], rng, 0.05)
        colour3 = _jitter(_TROUSERS[rng.integers(len(_TROUSERS))], rng, 0.05)
        skin = _jitter(_SKINS[rng.integers(len(_SKINS))], rng, 0.04)
        extras += [name for name, p in (("hat", 0.3), ("backpack", 0.25)) if rng.random() < p]
    return Individual(species, look, colour, colour2, colour3, skin, int(rng.integers(2**31)), flying,
                      tuple(extras))


# --------------------------------------------------------------------------- canvas
class _Canvas:
    """A supersampled RGBA canvas addressed in body units (x right, y down, origin at the body)."""

    SHIFT = 3  # fractional bits for OpenCV coordinates

    def __init__(self, unit: float, extent: tuple[float, float, float, float]):
        x0, x1, y0, y1 = extent
        self.unit = unit
        self.w, self.h = int(math.ceil((x1 - x0) * unit)) + 2, int(math.ceil((y1 - y0) * unit)) + 2
        self.ox, self.oy = -x0 * unit + 1, -y0 * unit + 1
        self.rgb = np.zeros((self.h, self.w, 3), np.uint8)
        self.alpha = np.zeros((self.h, self.w), np.uint8)

    def px(self, x: float, y: float) -> tuple[int, int]:
        f = 1 << self.SHIFT
        return int(round((self.ox + x * self.unit) * f)), int(round((self.oy + y * self.unit) * f))

    def at(self, x: float, y: float) -> tuple[float, float]:
        return self.ox + x * self.unit, self.oy + y * self.unit

    def size(self, s: float) -> int:
        return max(1, int(round(s * self.unit * (1 << self.SHIFT))))

    def _paint(self, draw, colour: RGB | np.ndarray) -> None:
        if isinstance(colour, np.ndarray):  # a texture: paint it through the shape's mask
            mask = np.zeros_like(self.alpha)
            draw(mask, 255)
            inside = mask > 0
            self.rgb[inside] = colour[inside]
            self.alpha[inside] = 255
        else:
            draw(self.rgb, tuple(int(c) for c in colour))
            draw(self.alpha, 255)

    def ellipse(self, centre, axes, angle, colour) -> None:
        c, a = self.px(*centre), (self.size(axes[0]), self.size(axes[1]))
        self._paint(lambda img, col: cv2.ellipse(img, c, a, angle, 0, 360, col, -1, cv2.LINE_8, self.SHIFT),
                    colour)

    def line(self, p0, p1, width, colour) -> None:
        a, b = self.px(*p0), self.px(*p1)
        thick = max(1, int(round(width * self.unit)))
        self._paint(lambda img, col: cv2.line(img, a, b, col, thick, cv2.LINE_8, self.SHIFT), colour)

    def poly(self, points, colour) -> None:
        pts = np.array([self.px(*p) for p in points], np.int32)
        self._paint(lambda img, col: cv2.fillPoly(img, [pts], col, cv2.LINE_8, self.SHIFT), colour)

    def polyline(self, points, width, colour, taper: float = 0.0) -> None:
        n = len(points) - 1
        for i in range(n):
            self.line(points[i], points[i + 1], width * (1 - taper * i / max(1, n)), colour)

    def sprite(self, ss: int, anchor: tuple[float, float], eyes) -> Sprite:
        """Crop to the drawn pixels, downsample by ``ss`` (premultiplied) and return the sprite."""
        x, y, w, h = cv2.boundingRect(self.alpha)
        if w == 0 or h == 0:
            x, y, w, h = 0, 0, ss, ss
        x0, y0 = (x // ss) * ss, (y // ss) * ss
        x1, y1 = min(self.w, -(-(x + w) // ss) * ss), min(self.h, -(-(y + h) // ss) * ss)
        alpha = self.alpha[y0:y1, x0:x1].astype(np.float32) / 255.0
        rgb = self.rgb[y0:y1, x0:x1].astype(np.float32) * alpha[..., None]
        size = ((x1 - x0) // ss, (y1 - y0) // ss)
        if ss > 1:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)

        def to_sprite(point):
            px, py = self.at(*point)
            return (px - x0) / ss, (py - y0) / ss

        return Sprite(rgb.reshape(size[1], size[0], 3), alpha.reshape(size[1], size[0]), to_sprite(anchor),
                      tuple(to_sprite(e) for e in eyes))


# --------------------------------------------------------------------------- coats
def _coat(canvas: _Canvas, ind: Individual, body_centre, body_axes) -> np.ndarray:
    """The coat texture over the whole canvas: base colour, shading and the species' pattern."""
    rng = np.random.default_rng(ind.coat_seed)
    h, w, u = canvas.h, canvas.w, canvas.unit
    small = rng.normal(0, 1, (max(2, h // 12), max(2, w // 12))).astype(np.float32)
    shade = 1.0 + 0.07 * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    cx, cy = canvas.at(*body_centre)
    ys = (np.arange(h, dtype=np.float32)[:, None] - cy) / max(1.0, body_axes[1] * u)
    shade = shade - 0.12 * np.clip(ys, -1, 1)  # lit from above
    tex = np.asarray(ind.colour, np.float32)[None, None, :] * shade[..., None]
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    c2 = tuple(int(c) for c in ind.colour2)
    pattern = ind.look.pattern
    ax, ay = body_axes[0] * u, body_axes[1] * u
    if pattern in ("spots", "rosettes", "mottled", "patches"):
        n = {"spots": 70, "rosettes": 60, "mottled": 30, "patches": 7}[pattern]
        radius = {"spots": 0.035, "rosettes": 0.04, "mottled": 0.08, "patches": 0.16}[pattern]
        for i in range(n):
            px = int(cx + rng.uniform(-1.3, 1.3) * ax)
            py = int(cy + rng.uniform(-1.6, 1.6) * ay)
            r = max(1, int(radius * u * rng.uniform(0.6, 1.4)))
            if pattern == "rosettes":
                cv2.circle(tex, (px, py), r, c2, max(1, r // 2))
            elif pattern == "mottled":
                cv2.circle(tex, (px, py), r, c2 if i % 3 else (232, 228, 220), -1)
            elif pattern == "patches":
                cv2.ellipse(tex, (px, py), (r, int(r * rng.uniform(0.5, 1.0))), rng.uniform(0, 180), 0, 360,
                            c2, -1)
            else:
                cv2.circle(tex, (px, py), r, c2, -1)
    elif pattern == "stripes":
        for i in range(9):
            px = int(cx + (i - 4) * 0.22 * ax)
            cv2.line(tex, (px, int(cy - ay * 1.2)), (px + int(0.05 * ax), int(cy + ay * 0.6)), c2,
                     max(1, int(0.02 * u)))
    elif pattern == "bands":
        for i in range(6):
            px = int(cx + (i - 2.5) * 0.3 * ax)
            cv2.line(tex, (px, int(cy - ay * 1.2)), (px - int(0.1 * ax), int(cy + ay * 1.2)), c2,
                     max(1, int(0.05 * u)))
    elif pattern == "scales":
        step = max(2, int(0.07 * u))
        for row, py in enumerate(range(int(cy - 2 * ay), int(cy + 2 * ay), step)):
            for px in range(int(cx - 2 * ax) + (row % 2) * step // 2, int(cx + 2 * ax), step):
                cv2.ellipse(tex, (px, py), (step // 2 + 1, step // 2 + 1), 0, 0, 180, c2, max(1, step // 5))
    elif pattern == "speckle":
        mask = rng.random((h, w)) < 0.12
        tex[mask] = c2
    elif pattern == "dorsal":
        cv2.line(tex, (int(cx - ax * 1.1), int(cy - ay * 0.7)), (int(cx + ax * 1.1), int(cy - ay * 0.7)),
                 c2, max(1, int(0.05 * u)))
    elif pattern == "belly":
        tex[int(cy + ay * 0.35):] = c2
    return tex


# --------------------------------------------------------------------------- body plans
def _quadruped(ind: Individual, unit: float, phase: float) -> tuple[_Canvas, tuple, list]:
    lk = ind.look
    b = 0.5 * lk.aspect
    slope = math.radians(lk.slope)
    ground = b * 0.7 + lk.legs
    canvas = _Canvas(unit, (-0.6 - lk.tail - 0.1, 0.75 + lk.neck + lk.head * 1.6, -b - lk.neck - lk.head * 1.5 - 0.25,
                            ground + 0.05))
    coat = _coat(canvas, ind, (0.0, 0.0), (0.5, b))
    dark = tuple(int(c * 0.72) for c in ind.colour)
    swing = 0.38 * math.sin(2 * math.pi * phase)
    legs = [(0.3, swing), (-0.3, -swing)]

    def leg(x, angle, colour, dx=0.0):
        top = (x + dx, b * 0.4 - x * math.tan(slope))
        foot = (x + dx + (ground - top[1]) * math.sin(angle), ground)
        canvas.line(top, foot, lk.leg_width, colour)

    for x, angle in legs:  # far legs, darker, opposite phase
        leg(x, -angle, dark, dx=0.05)
    # tail
    ang = math.radians(lk.tail_angle)
    start = (-0.46 * math.cos(slope), 0.46 * math.sin(slope) - 0.3 * b)
    pts = [start]
    for i in range(6):
        a = ang + math.radians(lk.tail_curl) * i
        pts.append((pts[-1][0] - lk.tail / 6 * math.cos(a), pts[-1][1] - lk.tail / 6 * math.sin(a)))
    tail_colour = ind.colour
    if lk.tail > 0.02:
        canvas.polyline(pts, max(0.02, lk.leg_width * 0.6), tail_colour, taper=0.5)
        if "tail_rings" in ind.extras:
            for i in range(1, len(pts) - 1, 2):
                canvas.line(pts[i], pts[i + 1], max(0.02, lk.leg_width * 0.5), ind.colour2)
        if "tail_tuft" in ind.extras:
            canvas.ellipse(pts[-1], (0.05, 0.035), 0, dark)
        if "white_tail_tip" in ind.extras:
            canvas.line(pts[-2], pts[-1], max(0.02, lk.leg_width * 0.5), (235, 232, 225))
    # body
    canvas.ellipse((0.0, 0.0), (0.5, b), -lk.slope, coat)
    if "quills" in ind.extras:
        rng = np.random.default_rng(ind.coat_seed + 1)
        for i in range(40):
            a = math.radians(rng.uniform(20, 170))
            r0 = (0.5 * math.cos(a) * 0.8, -b * math.sin(a) * 0.8)
            r1 = (r0[0] * 1.7 + 0.1 * math.cos(a), r0[1] * 1.9 - 0.12 * math.sin(a))
            canvas.line(r0, r1, 0.025, ind.colour2 if i % 2 else (20, 18, 16))
    # neck and head
    na = math.radians(lk.neck_angle)
    shoulder = (0.4 * math.cos(slope), -0.4 * math.sin(slope) - 0.25 * b)
    head = (shoulder[0] + (lk.neck + lk.head * 0.45) * math.cos(na),
            shoulder[1] - (lk.neck + lk.head * 0.45) * math.sin(na))
    if "mane" in ind.extras:
        canvas.ellipse((head[0] - lk.head * 0.25, head[1]), (lk.head * 0.75, lk.head * 0.8), 0, ind.colour2)
    if "big_ears" in ind.extras:
        canvas.ellipse((head[0] - lk.head * 0.35, head[1] + lk.head * 0.1), (lk.head * 0.4, lk.head * 0.6), 0, dark)
    if lk.neck > 0.02:
        canvas.line(shoulder, head, max(lk.head * 0.5, b * 0.5), coat)
    canvas.ellipse(head, (lk.head * 0.55, lk.head * 0.36), 18, coat)
    eye = (head[0] + lk.head * 0.18, head[1] - lk.head * 0.1)
    top = (head[0] - lk.head * 0.15, head[1] - lk.head * 0.3)
    horn_colour = (225, 215, 195) if ind.species == "cattle" else (52, 42, 34)
    horns = {"horns": (0.14, 60), "horns_swept": (0.16, 150), "horns_long": (0.32, 120), "horns_short": (0.08, 110)}
    for name, (length, angle) in horns.items():
        if name in ind.extras:
            a = math.radians(angle)
            tip = (top[0] + length * math.cos(a), top[1] - length * math.sin(a))
            canvas.line(top, tip, 0.025, horn_colour)
            canvas.line((top[0] + 0.03, top[1]), (tip[0] + 0.03, tip[1]), 0.025, horn_colour)
    if "round_ears" in ind.extras or "ear_tufts" in ind.extras:
        r = lk.head * (0.2 if "round_ears" in ind.extras else 0.14)
        canvas.ellipse((top[0] - 0.02, top[1] - r * 0.6), (r * 0.7, r), 0, dark)
    if "trunk" in ind.extras:
        tip_y = ground - 0.08
        trunk = [(head[0] + lk.head * 0.35, head[1] + lk.head * 0.1)]
        for i in range(1, 6):
            t = i / 5
            trunk.append((trunk[0][0] + 0.06 * math.sin(t * 2 + phase * 6), trunk[0][1] + (tip_y - trunk[0][1]) * t))
        canvas.polyline(trunk, lk.head * 0.28, coat, taper=0.5)
    if "tusks" in ind.extras:
        base = (head[0] + lk.head * 0.3, head[1] + lk.head * 0.3)
        canvas.line(base, (base[0] + 0.1, base[1] + 0.08), 0.03, (238, 232, 214))
    if "white_face" in ind.extras:
        canvas.line((head[0] - lk.head * 0.2, head[1] - lk.head * 0.15), (head[0] + lk.head * 0.45, head[1]),
                    0.025, ind.colour2)
    if "white_cheeks" in ind.extras:
        canvas.ellipse((head[0] + lk.head * 0.05, head[1] + lk.head * 0.1), (lk.head * 0.25, lk.head * 0.2), 0,
                       ind.colour2)
    for x, angle in legs:  # near legs
        leg(x, angle, ind.colour)
    return canvas, (0.0, ground), [eye]


def _upright(ind: Individual, unit: float, phase: float) -> tuple[_Canvas, tuple, list]:
    lk = ind.look
    human = "clothes" in ind.extras
    lean = math.radians(lk.lean)
    leg_len, torso, head_r, arm = (0.47, 0.33, 0.065, 0.4) if human else (0.36, 0.36, 0.085, 0.56)
    width = 0.13 * lk.bulk
    canvas = _Canvas(unit, (-0.55, 1.0, -1.05, leg_len + 0.05))
    shirt = ind.colour
    coat = _coat(canvas, ind, (0.0, -torso / 2), (width, torso / 2)) if not human else shirt
    trousers = ind.colour3 if human else ind.colour
    skin = ind.skin if human else ind.colour
    dark = tuple(int(c * 0.75) for c in (trousers if human else ind.colour))
    swing = 0.4 * math.sin(2 * math.pi * phase)
    shoulder = (torso * math.sin(lean), -torso * math.cos(lean))

    def limb_leg(angle, colour):
        canvas.line((0.0, 0.0), (leg_len * math.sin(angle), leg_len), width * 0.55, colour)

    def limb_arm(angle, colour):
        if lk.lean > 25:  # knuckle-walker: the hand reaches the ground ahead
            reach = min(arm, math.hypot(leg_len - shoulder[1], 0.3))
            hand = (shoulder[0] + 0.25 + 0.15 * math.sin(angle), min(leg_len, shoulder[1] + reach))
        else:
            hand = (shoulder[0] + arm * math.sin(angle), shoulder[1] + arm * math.cos(angle))
        canvas.line(shoulder, hand, width * 0.42, colour)
        return hand

    limb_leg(-swing, dark)
    limb_arm(swing, tuple(int(c * 0.75) for c in (shirt if human else ind.colour)))
    if "backpack" in ind.extras:
        canvas.ellipse((shoulder[0] * 0.5 - width * 0.9, shoulder[1] * 0.5), (width * 0.6, torso * 0.35), 0,
                       (70, 64, 50))
    mid = (shoulder[0] / 2, shoulder[1] / 2)
    canvas.ellipse(mid, (torso / 2 + width * 0.3, width), math.degrees(math.atan2(shoulder[1], shoulder[0])), coat)
    if "silverback" in ind.extras:  # a grey saddle along the back, behind the shoulders
        canvas.ellipse((mid[0] - width * 0.45, mid[1] - width * 0.25), (torso * 0.42, width * 0.4),
                       math.degrees(math.atan2(shoulder[1], shoulder[0])), ind.colour2)
    head_dir = lean + (0.5 if lk.lean > 25 else 0.05)
    head = (shoulder[0] + head_r * 1.2 * math.sin(head_dir), shoulder[1] - head_r * 1.2 * math.cos(head_dir))
    canvas.ellipse(head, (head_r, head_r * 1.1), 0, skin if human else coat)
    if human and "hat" in ind.extras:
        canvas.ellipse((head[0], head[1] - head_r * 0.7), (head_r * 1.4, head_r * 0.45), 0, (60, 54, 40))
    if not human:
        canvas.ellipse((head[0] + head_r * 0.45, head[1] + head_r * 0.2), (head_r * 0.5, head_r * 0.45), 0,
                       ind.colour2 if ind.species == "chimpanzee" else dark)
    limb_leg(swing, trousers)
    limb_arm(-swing, shirt if human else ind.colour)
    eye = (head[0] + head_r * 0.5, head[1] - head_r * 0.1)
    return canvas, (0.0, leg_len), [eye]


def _bird(ind: Individual, unit: float, phase: float) -> tuple[_Canvas, tuple, list]:
    canvas = _Canvas(unit, (-0.65, 0.6, -0.6, 0.45))
    coat = _coat(canvas, ind, (0.0, 0.0), (0.3, 0.16))
    dark = tuple(int(c * 0.7) for c in ind.colour)
    if not ind.flying:
        step = 0.08 * math.sin(2 * math.pi * phase)
        canvas.line((0.0, 0.1), (step, 0.38), 0.025, (150, 120, 70))
        canvas.line((0.04, 0.1), (0.04 - step, 0.38), 0.025, (150, 120, 70))
    canvas.poly([(-0.22, -0.02), (-0.58, -0.1), (-0.55, 0.06)], dark)  # tail
    canvas.ellipse((0.0, 0.0), (0.3, 0.16), -8, coat)
    head = (0.3, -0.13)
    canvas.ellipse(head, (0.11, 0.1), 0, coat)
    canvas.poly([(0.39, -0.15), (0.52, -0.1), (0.39, -0.08)], (200, 170, 60))
    if ind.flying:
        lift = math.sin(2 * math.pi * phase)
        canvas.poly([(0.1, -0.06), (-0.12, -0.05), (-0.08 - 0.1 * lift, -0.05 - 0.45 * lift)], dark)
    else:
        canvas.ellipse((-0.05, -0.02), (0.18, 0.09), -8, dark)
    return canvas, (0.0, 0.38), [(0.33, -0.15)]


def _reptile(ind: Individual, unit: float, phase: float) -> tuple[_Canvas, tuple, list]:
    canvas = _Canvas(unit, (-0.6, 0.6, -0.2, 0.15))
    coat = _coat(canvas, ind, (0.0, 0.0), (0.5, 0.06))
    dark = tuple(int(c * 0.7) for c in ind.colour)
    xs = np.linspace(0.5, -0.5, 24)
    ys = 0.025 * np.sin(2 * math.pi * (xs * 1.4 + phase))
    for x, y in ((0.25, 0.0), (-0.02, 0.0)):
        step = 0.06 * math.sin(2 * math.pi * phase + x * 6)
        canvas.line((x, y), (x + step + 0.04, 0.11), 0.025, dark)
    for x, y in zip(xs, ys):
        radius = 0.05 if x > 0.42 else (0.07 if x > -0.05 else 0.07 * (1 - (-0.05 - x) / 0.5) + 0.006)
        canvas.ellipse((float(x), float(y)), (radius, radius * 0.8), 0, coat)
    return canvas, (0.0, 0.11), [(0.48, float(ys[0]) - 0.02)]


_PLANS = {"quadruped": _quadruped, "upright": _upright, "bird": _bird, "reptile": _reptile}


def draw_gait(ind: Individual, length_px: float, phases: int = GAIT_PHASES) -> list[Sprite]:
    """Draw ``ind`` with a body length (upright: height) of ``length_px`` pixels, facing right.

    Args:
        ind: The animal.
        length_px: Its size in output pixels (at least 3 is drawn).
        phases: Gait phases to draw (legs/wings over one stride).

    Returns:
        ``phases`` sprites; flip them horizontally for an animal moving left.
    """
    length_px = max(3.0, float(length_px))
    ss = 4 if length_px < 40 else 2
    draw = _PLANS[ind.look.plan]
    sprites = []
    for i in range(phases):
        canvas, anchor, eyes = draw(ind, length_px * ss, i / phases)
        sprites.append(canvas.sprite(ss, anchor, eyes))
    return sprites
