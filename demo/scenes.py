"""Camera sites and clips of the demo collection: backgrounds, what happens in a clip, its frames.

A camera (:class:`CameraScene`) is a fixed view: foliage with leaves and sky gaps, tree trunks,
a ground of earth and leaf litter, foreground bushes and trunks that hide part of a passing
animal, its own colour cast, sensor noise, perspective (animals lower in the frame are nearer and
larger) and, on some models, a black information bar with the date and time burnt into the frame.

A clip is first *scripted* (:func:`script_clip`: who enters where and when, wind, light, what
triggered a blank clip) and then *rendered* frame by frame (:func:`render_frames`). Day clips are
in colour; night clips are infrared: grayscale (R = G = B), a bright centre falling off to the
edges, more noise, and eyes that shine. Animals are on screen for only part of most clips.
Blank clips have their own triggers (a gust of wind, a change of light, a falling leaf, an insect
near the lens, sun flecks), so motion alone does not mean an animal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterator

import cv2
import numpy as np

from .species import GAIT_PHASES, LOOKS, Sprite, draw_gait, individual

__all__ = ["CameraSpec", "CameraScene", "Actor", "ClipScript", "build_scene", "script_clip", "render_frames",
           "BLANK_TRIGGERS"]

#: What sets a camera off when no animal is there, with how often it happens.
BLANK_TRIGGERS: tuple[tuple[str, float], ...] = (
    ("wind", 0.3), ("light", 0.15), ("leaf", 0.15), ("insect", 0.1), ("sunfleck", 0.15), ("none", 0.15),
)
_IR_WEIGHTS = np.array([0.28, 0.57, 0.15], np.float32)  # foliage reflects infrared: green weighs most


@dataclass(frozen=True)
class CameraSpec:
    """A camera site: its folder name, frame size and the seed of its view."""

    name: str
    width: int
    height: int
    seed: int


@dataclass
class CameraScene:
    """A camera's drawn view and its sensor (built by :func:`build_scene`)."""

    spec: CameraSpec
    background: np.ndarray       # (H, W, 3) float32
    sway: np.ndarray             # (H, W, 3) float32: the background with the foliage moved, minus background
    fore_rgb: np.ndarray         # (H, W, 3) float32 premultiplied foreground (bushes, near trunks)
    fore_alpha: np.ndarray       # (H, W, 1) float32
    ground_top: int              # first row of ground
    depth_scale: tuple[float, float]  # animal scale at the top of the ground and at the bottom row
    tint: np.ndarray             # (3,) float32 colour cast
    noise: tuple[float, float]   # sensor noise sigma by day and by night
    vignette: np.ndarray         # (H, W) float32 infrared falloff
    info_bar: bool

    def scale_at(self, y: float) -> float:
        """How large an animal whose feet are on row ``y`` looks (1: the middle of the ground)."""
        far, near = self.depth_scale
        t = (y - self.ground_top) / max(1.0, self.spec.height - self.ground_top)
        return far + (near - far) * float(np.clip(t, 0, 1))


@dataclass(frozen=True)
class Actor:
    """One animal in a clip: its gait sprites and where it is in every frame."""

    species: str
    sprites: tuple[Sprite, ...]
    flip: bool
    x: np.ndarray                # (frames,) anchor column
    y: np.ndarray                # (frames,) anchor row
    phase: np.ndarray            # (frames,) gait phase index
    eyeshine: bool


@dataclass(frozen=True)
class ClipScript:
    """Everything that happens in one clip, decided before any frame is drawn."""

    frames: int
    fps: int
    size: tuple[int, int]        # (width, height)
    night: bool
    actors: tuple[Actor, ...]
    trigger: str                 # what set off a blank clip ('' for animal clips)
    wind: np.ndarray             # (frames,) sway weight in [0, 1]
    light: np.ndarray            # (frames,) brightness factor
    gain: float                  # infrared gain (night)
    flecks: tuple                # sun flecks: (x0, y0, dx, dy, radius, strength) per fleck
    debris: tuple                # falling leaf / insect: (kind, xs, ys, size, colour)
    started: datetime
    noise_seed: int

    def visible_frames(self, species: str | None = None) -> int:
        """Frames in which at least one animal (of ``species``) is at least a quarter on screen."""
        seen = np.zeros(self.frames, bool)
        for actor in self.actors:
            if species is None or actor.species == species:
                seen |= _on_screen(actor, self.size)
        return int(seen.sum())


# --------------------------------------------------------------------------- camera views
def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int = 3) -> np.ndarray:
    """Smooth noise in about [-1, 1]: random grids upsampled and summed over octaves."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = cells * (2 ** o)
        grid = rng.normal(0, 1, (max(2, n * h // max(h, w)), max(2, n * w // max(h, w)))).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    return out / total


def _leaves(img: np.ndarray, rng: np.random.Generator, n: int, box, size, palette, alpha=None) -> None:
    """Scatter ``n`` leaf ellipses of ``palette`` colours inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    pos = rng.uniform((x0, y0), (x1, y1), (n, 2)) * 8
    axes = rng.uniform(size[0], size[1], (n, 2)) * (8, 4)
    colours = np.clip(np.asarray(palette, np.float64)[rng.integers(len(palette), size=n)]
                      * rng.uniform(0.8, 1.2, (n, 1)), 0, 255)
    angles = rng.uniform(0, 180, n)
    for (cx, cy), (a, b), colour, angle in zip(pos.astype(int).tolist(), np.maximum(axes, (8, 4)).astype(int).tolist(),
                                              colours.tolist(), angles.tolist()):
        cv2.ellipse(img, (cx, cy), (a, b), angle, 0, 360, colour, -1, cv2.LINE_AA, 3)
        if alpha is not None:
            cv2.ellipse(alpha, (cx, cy), (a, b), angle, 0, 360, 1.0, -1, cv2.LINE_AA, 3)


def _view(spec: CameraSpec, foliage_shift: int) -> tuple[np.ndarray, int, np.random.Generator]:
    """Draw the camera's background; ``foliage_shift`` moves the foliage (for wind).

    Returns the image, the first row of ground, and the camera's random generator, positioned
    after the drawing (the same for every ``foliage_shift``).
    """
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    ground_top = int(h * rng.uniform(0.3, 0.55))
    img = np.zeros((h, w, 3), np.float32)
    # foliage: greens mixed by smooth noise, then many leaves, with sky gaps in some cameras
    greens = np.array([[26, 52, 22], [58, 94, 40], [104, 140, 66]], np.float32) * rng.uniform(0.8, 1.15)
    mix = (_value_noise(rng, h, w, 4) + 1) / 2
    foliage = greens[0] + (greens[1] - greens[0]) * np.clip(mix, 0, 1)[..., None]
    leaf_layer = foliage.copy()
    _leaves(leaf_layer, rng, int(w * h / 40), (0, 0, w, ground_top + h * 0.08), (1.0, 3.0), list(greens))
    if rng.random() < 0.6:  # sky through the canopy
        sky = np.array([200, 214, 226], np.float32) * rng.uniform(0.85, 1.05)
        gaps = (_value_noise(rng, h, w, 6) > rng.uniform(0.2, 0.5)) & (np.arange(h)[:, None] < ground_top * 0.6)
        leaf_layer[gaps] = sky
    if foliage_shift:
        leaf_layer = np.roll(leaf_layer, (foliage_shift // 2, foliage_shift), axis=(0, 1))
    # ground: earth and leaf litter, darker far away
    earth = np.array([[88, 68, 44], [132, 104, 70]], np.float32) * rng.uniform(0.8, 1.15)
    gmix = (_value_noise(rng, h, w, 8) + 1) / 2
    ground = earth[0] + (earth[1] - earth[0]) * np.clip(gmix, 0, 1)[..., None]
    litter = [(110, 76, 40), (150, 110, 50), (90, 60, 36), (170, 140, 80)]
    _leaves(ground, rng, int(w * h / 60), (0, ground_top, w, h), (0.8, 2.2), litter)
    if rng.random() < 0.4:  # a path or stream bed across the ground
        path_y = rng.uniform(ground_top + 0.2 * (h - ground_top), h * 0.9)
        rows = np.arange(h)[:, None] + 6 * np.sin(np.arange(w)[None, :] / w * rng.uniform(2, 6))
        band = np.exp(-((rows - path_y) / (0.06 * h)) ** 2)[..., None]
        ground = ground * (1 - 0.5 * band) + np.array([170, 150, 120], np.float32) * 0.5 * band
    depth = np.clip((np.arange(h) - ground_top) / max(1, h - ground_top), 0, 1)[:, None, None]
    ground *= 0.75 + 0.25 * depth
    edge = ground_top + 3 * _value_noise(rng, 1, w, 8)[0]
    is_ground = (np.arange(h)[:, None] >= edge[None, :])[..., None]
    img = np.where(is_ground, ground, leaf_layer)
    # tree trunks standing on the ground
    for _ in range(rng.integers(1, 5)):
        tw = max(2, int(w * rng.uniform(0.02, 0.1)))
        tx = int(rng.uniform(0, w - tw))
        base = int(ground_top + rng.uniform(0, 0.15) * (h - ground_top))
        bark = np.array([92, 82, 70], np.float32) * rng.uniform(0.7, 1.2)
        streaks = 1 + 0.15 * _value_noise(rng, base, tw, 3)[..., None]
        shade = (0.8 + 0.4 * np.sin(np.linspace(0, math.pi, tw)))[None, :, None]
        img[:base, tx:tx + tw] = bark * streaks * shade
    return img, ground_top, rng


def build_scene(spec: CameraSpec) -> CameraScene:
    """Draw a camera's view and choose its sensor settings, from ``spec.seed`` only."""
    background, ground_top, rng = _view(spec, 0)
    swayed, _, _ = _view(spec, 2)
    h, w = spec.height, spec.width
    fore = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    dark_greens = [(22, 44, 18), (40, 70, 30), (60, 92, 40)]
    for _ in range(rng.integers(0, 3)):  # bushes in the bottom corners
        bw, bh = w * rng.uniform(0.12, 0.3), h * rng.uniform(0.2, 0.4)
        x0 = 0 if rng.random() < 0.5 else w - bw
        _leaves(fore, rng, int(bw * bh / 6), (x0, h - bh, x0 + bw, h + 4), (1.5, 4.0), dark_greens, alpha)
    if rng.random() < 0.3:  # a near trunk in front of the scene
        tw = max(3, int(w * rng.uniform(0.05, 0.1)))
        tx = int(rng.uniform(0.1, 0.9) * w)
        fore[:, tx:tx + tw] = np.array([60, 52, 44], np.float32) * rng.uniform(0.8, 1.2)
        alpha[:, tx:tx + tw] = 1.0
    if rng.random() < 0.5:  # grass tufts along the bottom
        for _ in range(int(w / 3)):
            x = rng.uniform(0, w)
            top = (x + rng.normal(0, 3), h - rng.uniform(0.03, 0.12) * h)
            colour = dark_greens[rng.integers(3)]
            cv2.line(fore, (int(x), h), (int(top[0]), int(top[1])), colour, 1)
            cv2.line(alpha, (int(x), h), (int(top[0]), int(top[1])), 1.0, 1)
    fore *= alpha[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h * 0.55) / (h / 2)) ** 2
    falloff = 0.45 + 0.75 * yy / h  # the infrared flash lights near ground (low in the frame) most
    vignette = (np.exp(-radius * rng.uniform(0.4, 0.8)) * falloff).astype(np.float32)
    moving = np.clip((_value_noise(rng, h, w, 5) + 0.1) * 3, 0, 1)[..., None]  # the branches that sway
    return CameraScene(
        spec=spec, background=background, sway=(swayed - background) * moving, fore_rgb=fore,
        fore_alpha=alpha[..., None], ground_top=ground_top,
        depth_scale=(rng.uniform(0.45, 0.65), rng.uniform(1.15, 1.45)),
        tint=(1 + rng.normal(0, 0.04, 3)).astype(np.float32),
        noise=(rng.uniform(0.4, 1.0), rng.uniform(1.2, 2.4)), vignette=vignette,
        info_bar=bool(rng.random() < 0.6),
    )


# --------------------------------------------------------------------------- scripting a clip
def _on_screen(actor: Actor, size: tuple[int, int]) -> np.ndarray:
    """Per frame: is at least a quarter of the actor's sprite inside the frame?"""
    w, h = size
    sprite = actor.sprites[0]
    ax, ay = sprite.anchor
    left = actor.x - (sprite.width - ax if actor.flip else ax)
    top = actor.y - ay
    inside_w = np.clip(np.minimum(left + sprite.width, w) - np.maximum(left, 0), 0, None)
    inside_h = np.clip(np.minimum(top + sprite.height, h) - np.maximum(top, 0), 0, None)
    return inside_w * inside_h >= 0.25 * sprite.width * sprite.height


def _gate(motion: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame speed factor: stop-and-go for ambling and scurrying animals."""
    if motion not in ("amble", "scurry"):
        return np.ones(n, np.float32)
    out, f = np.zeros(n, np.float32), 0
    short = motion == "scurry"
    while f < n:
        length = int(rng.integers(2, 7) if short else rng.integers(4, 13))
        moving = rng.random() < (0.7 if short else 0.6)
        out[f:f + length] = (1.4 if short else 1.0) if moving else 0.0
        f += length
    return out


def _path(motion: str, speed: float, n: int, size: tuple[int, int], sprite: Sprite, y_feet: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Where an animal is in each frame: (x, y, gait phase, direction)."""
    w, h = size
    direction = 1 if rng.random() < 0.5 else -1
    v = _gate(motion, n, rng) * speed
    enter = -sprite.width * 0.6 if direction > 0 else w + sprite.width * 0.6
    mode = rng.choice(["cross", "leave", "linger"], p=[0.5, 0.2, 0.3])
    if mode == "leave":
        start, t_in = rng.uniform(0.25, 0.75) * w, 0
    else:
        start, t_in = enter, int(rng.integers(0, max(1, n // (2 if mode == "cross" else 3))))
    travel = np.concatenate([[0.0], np.cumsum(v[t_in:])[:-1]]) if n > t_in else np.zeros(0)
    x = np.full(n, start, np.float32)
    x[t_in:] = start + direction * travel
    if mode == "linger":
        stop = rng.uniform(0.3, 0.7) * w
        x = np.minimum(x, stop) if direction > 0 else np.maximum(x, stop)
    y = np.full(n, y_feet, np.float32)
    t = np.arange(n, dtype=np.float32)
    if motion == "hop":
        period = rng.uniform(4, 8)
        y -= np.abs(np.sin(math.pi * t / period)) * sprite.height * rng.uniform(0.3, 0.7)
    elif motion == "fly":
        y += sprite.height * 1.5 * np.sin(2 * math.pi * t / rng.uniform(6, 14) + rng.uniform(0, 6.3))
        y += np.linspace(0, rng.normal(0, 0.15) * h, n)
    elif motion == "scurry":
        y += rng.normal(0, 0.5, n).astype(np.float32)
    stride = max(1.0, sprite.width * 0.35)
    moved = np.abs(np.diff(x, prepend=x[0]))
    phase = (np.floor(np.cumsum(moved) / stride).astype(int) % GAIT_PHASES) if n else np.zeros(0, int)
    if motion == "fly":
        phase = np.arange(n) % GAIT_PHASES
    return x, y, phase, direction


def _actors(scene: CameraScene, species: str, n: int, fps: int, rng: np.random.Generator) -> list[Actor]:
    """The animals of one species in a clip (a group for social species), on screen part of it."""
    look = LOOKS[species]
    w, h = scene.spec.width, scene.spec.height
    group = int(rng.integers(look.group[0], look.group[1] + 1))
    need = max(2, int(0.25 * n))
    actors: list[Actor] = []
    leader_flies = False
    for member in range(group):
        ind = individual(species, rng)
        if member == 0:
            leader_flies = ind.flying
        else:  # a group moves alike: followers fly when the leader flies
            ind = replace(ind, flying=leader_flies)
        if ind.flying:
            y_feet = rng.uniform(0.12, 0.75) * h
            scale = rng.uniform(*scene.depth_scale)
        else:
            # camera traps face trails: most animals pass at middle distance or near the camera
            y_feet = scene.ground_top + (0.12 + 0.85 * math.sqrt(rng.random())) * (h - scene.ground_top)
            scale = scene.scale_at(y_feet)
        sprites = tuple(draw_gait(ind, rng.uniform(*look.length) * h * scale))
        eyeshine = look.eyeshine and rng.random() < 0.6
        if member > 0:  # followers: the leader's path, later and a little offset
            leader = actors[0]
            lag = int(rng.integers(1, max(2, n // 3)))
            xs = np.concatenate([np.full(lag, leader.x[0]), leader.x[:-lag]]) if lag < n else leader.x.copy()
            actors.append(Actor(species, sprites, leader.flip, xs.astype(np.float32),
                                leader.y + rng.normal(0, 0.04) * h, np.roll(leader.phase, member), eyeshine))
            continue
        motion = "fly" if ind.flying else ("hop" if look.motion == "fly" else look.motion)
        speed = rng.uniform(*look.speed) * w / fps * (0.7 + 0.3 * scale)
        for _ in range(30):  # draw the path again until the animal is seen long enough
            x, y, phase, direction = _path(motion, speed, n, (w, h), sprites[0], y_feet, rng)
            actor = Actor(species, sprites, direction < 0, x, y, phase, eyeshine)
            if _on_screen(actor, (w, h)).sum() >= need:
                break
        else:  # in view from the start, walking slowly
            actor = Actor(species, sprites, False, w / 2 + np.arange(n, dtype=np.float32) * speed * 0.3,
                          np.full(n, y_feet, np.float32), np.arange(n) % GAIT_PHASES, eyeshine)
        actors.append(actor)
    return actors


def script_clip(scene: CameraScene, species: tuple[str, ...], night: bool, frames: int, fps: int,
                rng: np.random.Generator, started: datetime | None = None) -> ClipScript:
    """Decide what happens in a clip of ``frames`` frames at camera ``scene``.

    Args:
        scene: The camera.
        species: The species in the clip (empty: a blank clip).
        night: Infrared (grayscale) clip.
        frames: Number of frames.
        fps: Frames per second.
        rng: The clip's random generator (all choices are drawn from it, in a fixed order).
        started: When the clip was recorded (the information bar's clock); None: drawn from ``rng``.
            The draw is made either way, so the rest of the clip does not depend on it.

    Returns:
        The clip's script, ready for :func:`render_frames`.
    """
    w, h = scene.spec.width, scene.spec.height
    t = np.arange(frames, dtype=np.float32) / fps
    trigger = ""
    if not species:
        names, weights = zip(*BLANK_TRIGGERS)
        trigger = str(rng.choice(names, p=np.array(weights) / sum(weights)))
        if night and trigger == "sunfleck":
            trigger = "light"
    amp = rng.uniform(0.6, 1.0) if trigger == "wind" else rng.uniform(0.0, 0.4)
    wind = (0.5 + 0.5 * amp * np.sin(2 * math.pi * rng.uniform(0.4, 1.4) * t + rng.uniform(0, 6.3))).astype(np.float32)
    light = np.ones(frames, np.float32) * rng.uniform(0.75, 1.15)
    if trigger == "light":
        light *= np.linspace(1.0, 1.0 + rng.choice([-1, 1]) * rng.uniform(0.15, 0.3), frames, dtype=np.float32)
    flecks = ()
    if trigger == "sunfleck" or (not night and rng.random() < 0.15):
        flecks = tuple((rng.uniform(0, w), rng.uniform(0, h), rng.normal(0, 0.02 * w), rng.normal(0, 0.01 * h),
                        rng.uniform(0.05, 0.15) * h, rng.uniform(30, 70)) for _ in range(int(rng.integers(1, 4))))
    debris = ()
    if trigger == "leaf":
        x0 = rng.uniform(0.1, 0.9) * w
        ys = np.linspace(-0.05 * h, rng.uniform(0.6, 1.1) * h, frames)
        xs = x0 + 0.05 * w * np.sin(t * rng.uniform(3, 6))
        debris = ("leaf", xs, ys, rng.uniform(0.015, 0.035) * h, (120, 84, 40))
    elif trigger == "insect":
        steps = rng.normal(0, 0.04, (frames, 2)) * (w, h)
        path = np.cumsum(steps, axis=0) + (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h)
        debris = ("insect", path[:, 0], path[:, 1], rng.uniform(0.015, 0.04) * h, (30, 28, 24))
    actors: list[Actor] = []
    for name in species:
        actors.extend(_actors(scene, name, frames, fps, rng))
    if night:
        actors = [replace(a, sprites=tuple(_lit_by_infrared(s) for s in a.sprites)) for a in actors]
    start = datetime(2016, 1, 1) + timedelta(days=int(rng.integers(0, 366)))
    hour = rng.uniform(19, 29) % 24 if night else rng.uniform(6.5, 18)
    drawn = start + timedelta(hours=float(hour))
    return ClipScript(frames, fps, (w, h), night, tuple(actors), trigger, wind, light, float(rng.uniform(1.1, 1.4)),
                      flecks, debris, drawn if started is None else started, int(rng.integers(2**31)))


# --------------------------------------------------------------------------- rendering
def _lit_by_infrared(sprite: Sprite) -> Sprite:
    """Fur and skin reflect the infrared flash well: at night animals show as light gray shapes."""
    alpha = sprite.alpha[..., None]
    return replace(sprite, rgb=np.minimum(sprite.rgb * 1.05 + 35.0 * alpha, 255.0 * alpha).astype(np.float32))


def _paste(frame: np.ndarray, sprite: Sprite, flip: bool, x: float, y: float) -> None:
    """Composite a premultiplied sprite whose anchor lands on (x, y), clipped to the frame."""
    rgb, alpha = sprite.rgb, sprite.alpha
    ax, ay = sprite.anchor
    if flip:
        rgb, alpha, ax = rgb[:, ::-1], alpha[:, ::-1], sprite.width - ax
    left, top = int(round(x - ax)), int(round(y - ay))
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(0, left), max(0, top), min(w, left + sprite.width), min(h, top + sprite.height)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left, None]
    region = frame[y0:y1, x0:x1]
    region *= 1 - a
    region += rgb[y0 - top:y1 - top, x0 - left:x1 - left]


def _eyes(actor: Actor, f: int) -> list[tuple[int, int]]:
    sprite = actor.sprites[actor.phase[f]]
    ax, ay = sprite.anchor
    out = []
    for ex, ey in sprite.eyes:
        dx = (ax - ex) if actor.flip else (ex - ax)
        out.append((int(round(actor.x[f] + dx)), int(round(actor.y[f] + ey - ay))))
    return out


def _info_bar(frame: np.ndarray, name: str, when: datetime) -> None:
    h, w = frame.shape[:2]
    bar = max(7, int(round(0.075 * h)))
    frame[h - bar:] = 0
    text = f"{name.upper()}  {when:%Y-%m-%d %H:%M:%S}"
    colour = 255 if frame.ndim == 2 else (255, 255, 255)
    cv2.putText(frame, text, (2, h - 2), cv2.FONT_HERSHEY_PLAIN, bar / 15, colour, 1, cv2.LINE_AA)


def render_frames(scene: CameraScene, script: ClipScript) -> Iterator[np.ndarray]:
    """Yield the clip's frames: (H, W, 3) uint8 RGB by day, (H, W) uint8 grayscale at night."""
    h, w = scene.spec.height, scene.spec.width
    noise_rng = np.random.default_rng(script.noise_seed)
    sigma = scene.noise[1] if script.night else scene.noise[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) if script.flecks else (None, None)
    for f in range(script.frames):
        frame = scene.background + script.wind[f] * scene.sway
        for actor in script.actors:
            _paste(frame, actor.sprites[actor.phase[f]], actor.flip, actor.x[f], actor.y[f])
        if script.debris:
            kind, xs, ys, size, colour = script.debris
            centre = (int(xs[f] * 8), int(ys[f] * 8))
            axes = (max(8, int(size * 8)), max(4, int(size * (4 if kind == "leaf" else 8))))
            cv2.ellipse(frame, centre, axes, (f * 37) % 180, 0, 360, colour, -1, cv2.LINE_AA, 3)
        frame = frame * (1 - scene.fore_alpha) + scene.fore_rgb
        frame *= script.light[f]
        for x0, y0, dx, dy, radius, strength in script.flecks:
            cx, cy = x0 + dx * f, y0 + dy * f
            frame += (strength * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2)))[..., None]
        if script.night:
            gray = (frame @ _IR_WEIGHTS) * scene.vignette * script.gain
            for actor in script.actors:
                if actor.eyeshine:
                    for ex, ey in _eyes(actor, f):
                        if 0 <= ex < w and 0 <= ey < h:
                            cv2.circle(gray, (ex, ey), max(1, h // 120), 255.0, -1)
            gray += sigma * noise_rng.standard_normal(gray.shape, dtype=np.float32)
            out = np.clip(gray, 0, 255).astype(np.uint8)
        else:
            frame *= scene.tint
            frame += sigma * noise_rng.standard_normal((h, w, 1), dtype=np.float32)  # luma noise
            out = np.clip(frame, 0, 255).astype(np.uint8)
        if scene.info_bar:
            _info_bar(out, scene.spec.name, script.started + timedelta(seconds=f / script.fps))
        yield out
