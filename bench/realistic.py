"""A realistic benchmark collection: real animal photographs moving over real camera-trap views.

Built only from ``../shared/media`` (read its README), never copied into the repository:

- **Camera sites** (:data:`SITES`): real camera-trap stills (blank frames of the cameratrapai
  test data, cropped to 16:9 views) and real clips (the empty end of the Chimp&See small-cat
  night clip, OpenCV's foliage clip, whose leaves really move). Each site keeps its own view.
- **Animals** (:data:`PHOTOS`): real photographs (Wikimedia Commons via gcompris, jigzo, OpenCV,
  scikit-image, camera-trap photos), each mapped to the Pri-matrix class it belongs to (a
  mandrill, macaque or gibbon is ``other (primate)``, a squirrel ``rodent``, a cheetah
  ``leopard``, a horse or giraffe ``large ungulate``...), cut out roughly with GrabCut inside a
  hand-set box (feathered; an ellipse when GrabCut finds nothing sensible).
- **Clips**: 15 s at 8 fps, 320x180, H.264 (the demo's :func:`jungle.demo.generate.write_clip`).
  The animal is on screen for one stretch of 1-3.5 s (``enter_s``..``leave_s`` in
  ``clips.csv``), walking across or lingering, scaled, flipped, sometimes partly off-frame; the
  rest of the clip is the empty view. Every clip has wind (the upper part of the view sways),
  light changes and sensor noise, so blank clips move too. Night clips (IR sites, and a share
  of the others) are grayscale with an infrared falloff and more noise.
- **Labels**: one class per clip, Pri-matrix-like priors (:data:`FREQUENCIES`, blank most
  common); classes with no photograph (duiker, hog, ...) have no clips. Counts per split come
  from the demo's :func:`jungle.demo.plan.allocate_counts`; train and test are drawn from
  separate seeded streams, so the split is fixed. The same photographs appear in both splits
  (at other sites, sizes, paths and light), as the same species do at real cameras.

Layout (like the demo's): ``train/<site>/<name>.mp4``, ``test/<site>/<name>.mp4``,
``train_labels.csv``, ``test_labels.csv`` (wide, the 24 Pri-matrix classes), ``clips.csv``
(ground truth per clip, never a feature) and ``collection.json`` (configuration; a collection
with the same configuration is reused, an interrupted one completed).

    python bench/realistic.py DIR [--train 490 --test 210 --workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from hashlib import sha256
from pathlib import Path
from typing import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jungle.classes import PRIMATRIX_CLASSES
from jungle.demo.generate import write_clip
from jungle.demo.plan import allocate_counts

__all__ = ["BenchConfig", "Site", "Photo", "ClipSpec", "SITES", "PHOTOS", "FREQUENCIES", "plan_clips",
           "render_clip", "make_collection", "default_media"]

MANIFEST = "collection.json"
_CLIP_COLUMNS = ("filename", "split", "site", "label", "photo", "night", "frames", "fps", "enter_s", "leave_s",
                 "enter_frame", "leave_frame", "bytes")
_IR_WEIGHTS = np.array([0.28, 0.57, 0.15], np.float32)


def default_media() -> Path:
    """``../shared/media`` beside the repository (the repository root is the ``jungle`` package)."""
    return Path(__file__).resolve().parents[2] / "shared" / "media"


@dataclass(frozen=True)
class Site:
    """A camera site: a real still or clip, the 16:9 part of it the camera sees, and whether it is infrared.

    Attributes:
        name: folder name of the site's clips.
        source: path under the media folder.
        crop: (x0, y0, width) of the view as fractions of the source's width and height.
        infrared: every clip of this site is a night (grayscale) clip.
        start_s: for a clip source, where the empty stretch begins (seconds).
        frames: for a clip source, how many frames of it to loop (back and forth).
    """

    name: str
    source: str
    crop: tuple[float, float, float]
    infrared: bool = False
    start_s: float = 0.0
    frames: int = 0


SITES: tuple[Site, ...] = (
    Site("site01", "camera_trap_images/cameratrapai_test_data/blank.jpg", (0.0, 0.05, 1.0)),
    Site("site02", "camera_trap_images/cameratrapai_test_data/blank2.jpg", (0.0, 0.1, 0.7)),
    Site("site03", "camera_trap_images/cameratrapai_test_data/blank2.jpg", (0.35, 0.3, 0.65)),
    Site("site04", "camera_trap_images/cameratrapai_test_data/blank3.jpg", (0.0, 0.1, 0.9), infrared=True),
    Site("site05", "camera_trap/ACP0006s6f-small-cat.mp4", (0.0, 0.0, 1.0), infrared=True, start_s=10.0, frames=96),
    Site("site06", "other_video/opencv_tree_foliage_hand.avi", (0.0, 0.0, 1.0), frames=40),
)


@dataclass(frozen=True)
class Photo:
    """An animal photograph, its Pri-matrix class, and a box (x0, y0, x1, y1 fractions) around the animal."""

    path: str
    label: str
    box: tuple[float, float, float, float] = (0.06, 0.06, 0.94, 0.94)


_G = "photos/gcompris_erase/"
_CT = "camera_trap_images/"
PHOTOS: tuple[Photo, ...] = (
    Photo("photos/jigzo_gorilla.jpg", "gorilla"), Photo(_G + "gorilla.webp", "gorilla"),
    Photo(_CT + "chimpanzee_bonobo.jpeg", "chimpanzee", (0.3, 0.0, 0.62, 0.75)),
    Photo("photos/opencv_baboon_mandrill.jpg", "other (primate)"), Photo(_G + "macaque.webp", "other (primate)"),
    Photo(_G + "gibbon.webp", "other (primate)"), Photo(_G + "long_nosed_monkey.webp", "other (primate)"),
    Photo("photos/skimage_chelsea_cat.png", "small cat"), Photo(_G + "kitten.webp", "small cat"),
    Photo(_CT + "small_cat.jpg", "small cat", (0.08, 0.58, 0.58, 0.96)),
    Photo(_CT + "cameratrapai_test_data/ocelot.jpg", "small cat", (0.03, 0.52, 0.56, 0.86)),
    Photo("photos/opencv_squirrel.jpg", "rodent"), Photo(_G + "squirrel.webp", "rodent"),
    Photo(_G + "pika.webp", "rodent"),
    Photo("photos/jigzo_kookaburra_bird.jpg", "bird"), Photo(_G + "heron.webp", "bird"),
    Photo(_G + "kingfisher.webp", "bird"), Photo(_G + "toucan.webp", "bird"),
    Photo(_G + "northern_harrier.webp", "bird"),
    Photo(_CT + "cameratrapai_test_data/african_elephants.jpg", "elephant", (0.55, 0.33, 1.0, 0.62)),
    Photo("photos/jigzo_horse.jpg", "large ungulate"), Photo(_G + "horse.webp", "large ungulate"),
    Photo(_G + "giraffe.webp", "large ungulate"), Photo(_G + "camels.webp", "large ungulate"),
    Photo(_G + "calf.webp", "cattle"),
    Photo(_CT + "cameratrapai_test_data/domestic_cattle.jpg", "cattle", (0.36, 0.4, 0.68, 0.62)),
    Photo(_G + "cheetah.webp", "leopard"),
    Photo(_CT + "wild_dog_jackal.jpg", "wild dog", (0.55, 0.02, 1.0, 0.85)),
    Photo("photos/opencv_dog_chicky_512.png", "wild dog"),
    Photo(_CT + "cameratrapai_test_data/domestic_dog.jpg", "wild dog", (0.3, 0.05, 0.8, 0.75)),
    Photo(_CT + "cameratrapai_test_data/american_black_bear.jpg", "other (non-primate)", (0.4, 0.42, 0.8, 0.86)),
    Photo(_G + "red_panda.webp", "other (non-primate)"), Photo(_G + "meerkats.webp", "other (non-primate)"),
    Photo(_G + "chamaeleon.webp", "reptile"),
    Photo(_CT + "cameratrapai_test_data/human.jpg", "human", (0.66, 0.45, 0.82, 0.8)),
    Photo("photos/skimage_astronaut.png", "human", (0.2, 0.0, 0.85, 1.0)),
)

#: Relative class weights, loosely Pri-matrix's (blank most common, then primates and humans);
#: only classes with a photograph.
FREQUENCIES: tuple[tuple[str, float], ...] = (
    ("blank", 0.50), ("other (primate)", 0.10), ("human", 0.08), ("chimpanzee", 0.06), ("rodent", 0.04),
    ("bird", 0.04), ("other (non-primate)", 0.03), ("elephant", 0.025), ("large ungulate", 0.02),
    ("wild dog", 0.02), ("small cat", 0.02), ("gorilla", 0.02), ("cattle", 0.015), ("leopard", 0.015),
    ("reptile", 0.01),
)


class BenchConfig(BaseModel):
    """What the collection holds (frozen; its key names the collection).

    Attributes:
        seed: seed of every draw (plan, paths, noise).
        n_train, n_test: labelled and test clips.
        duration, fps, width, height: every clip's length and frame size.
        visible_s: shortest and longest stretch with the animal on screen (seconds).
        night_fraction: share of clips at non-infrared sites filmed at night.
        min_train, min_test: fewest clips of every class with a photograph, per split.
        crf: x264 constant rate factor.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = 0
    n_train: int = Field(490, ge=1)
    n_test: int = Field(210, ge=0)
    duration: float = Field(15.0, gt=0)
    fps: int = Field(8, ge=2)
    width: int = 320
    height: int = 180
    visible_s: tuple[float, float] = (1.0, 3.5)
    night_fraction: float = Field(0.25, ge=0, le=1)
    min_train: int = 6
    min_test: int = 2
    crf: int = 26

    @property
    def frames(self) -> int:
        return int(round(self.duration * self.fps))

    def key(self) -> str:
        return sha256(self.model_dump_json().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ClipSpec:
    """One clip: where it goes, what it shows, and the frames [enter_frame, leave_frame) with the animal."""

    filename: str
    split: str
    site: str
    label: str
    photo: str            # '' for blank clips
    night: bool
    seed: int
    enter_frame: int
    leave_frame: int

    @property
    def relpath(self) -> str:
        return f"{self.split}/{self.site}/{self.filename}"


# --------------------------------------------------------------------------- the plan (pure data)
def _split_clips(config: BenchConfig, split: str, n: int, minimum: int, stream: int) -> list[ClipSpec]:
    """The clips of one split, from their own random stream (``stream``)."""
    rng = np.random.default_rng([config.seed, stream])
    counts = allocate_counts(n, dict(FREQUENCIES), minimum)
    labels = rng.permutation([c for c, k in counts.items() for _ in range(k)])
    photos_of = {c: [p.path for p in PHOTOS if p.label == c] for c in counts}
    shortest, longest = (max(1, int(round(s * config.fps))) for s in config.visible_s)
    clips = []
    for i, label in enumerate(labels):
        site = SITES[int(rng.integers(len(SITES)))]
        night = site.infrared or bool(rng.random() < config.night_fraction)
        photo = "" if label == "blank" else str(rng.choice(photos_of[label]))
        length = min(int(rng.integers(shortest, longest + 1)), config.frames)
        enter = int(rng.integers(0, config.frames - length + 1))
        enter, leave = (0, 0) if label == "blank" else (enter, enter + length)
        name = sha256(f"{config.seed}/{split}/{i}".encode()).hexdigest()[:10] + ".mp4"
        clips.append(ClipSpec(name, split, site.name, str(label), photo, night, int(rng.integers(2**31)),
                              enter, leave))
    return clips


def plan_clips(config: BenchConfig) -> list[ClipSpec]:
    """Every clip of the collection (train then test), from the configuration alone."""
    return (_split_clips(config, "train", config.n_train, config.min_train, 1)
            + _split_clips(config, "test", config.n_test, config.min_test, 2))


# --------------------------------------------------------------------------- media
def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _crop_view(image: np.ndarray, crop: tuple[float, float, float], width: int, height: int) -> np.ndarray:
    """The 16:9 view (x0, y0, width fractions) of ``image`` resized to the clip size, float32 RGB."""
    import cv2

    h, w = image.shape[:2]
    x0, y0 = int(crop[0] * w), int(crop[1] * h)
    cw = int(crop[2] * w)
    ch = int(round(cw * height / width))
    if y0 + ch > h:  # the view must fit: keep its aspect, shrink from the bottom
        ch = h - y0
        cw = int(round(ch * width / height))
    view = image[y0:y0 + ch, x0:x0 + cw]
    return cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


@lru_cache(maxsize=8)
def site_frames(site: Site, media: Path, width: int, height: int) -> np.ndarray:
    """The site's empty view as (frames, H, W, 3) float32: one frame for a still, a stretch of a clip."""
    source = media / site.source
    if not site.frames:
        return _crop_view(_read_rgb(source), site.crop, width, height)[None]
    import av

    views = []
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time < site.start_s:
                continue
            views.append(_crop_view(frame.to_ndarray(format="rgb24"), site.crop, width, height))
            if len(views) == site.frames:
                break
    return np.stack(views)


@lru_cache(maxsize=64)
def cutout(photo: Photo, media: Path, longest: int = 360) -> tuple[np.ndarray, np.ndarray]:
    """The animal of ``photo`` cut out roughly: (RGB float32 (h, w, 3), alpha float32 (h, w, 1)).

    GrabCut initialised with the photo's box; the mask is feathered. When GrabCut keeps under 15%
    or over 95% of the box, a feathered ellipse filling the box stands in.
    """
    import cv2

    image = _read_rgb(media / photo.path)
    scale = longest / max(image.shape[:2])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(photo.box[0] * w), int(photo.box[1] * h), int(photo.box[2] * w), int(photo.box[3] * h))
    mask = np.zeros((h, w), np.uint8)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, (x0, y0, x1 - x0, y1 - y0), np.zeros((1, 65)),
                np.zeros((1, 65)), 4, cv2.GC_INIT_WITH_RECT)
    keep = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    share = keep[y0:y1, x0:x1].mean()
    if not 0.15 <= share <= 0.95:
        keep = np.zeros((h, w), np.float32)
        cv2.ellipse(keep, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, 1.0, -1)
    keep = cv2.GaussianBlur(keep, (0, 0), max(1.0, 0.01 * max(h, w)))[..., None]
    rows, cols = np.nonzero(keep[..., 0] > 0.05)
    box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    return image[box].astype(np.float32), keep[box]


# --------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class _Motion:
    """Where the animal is: centre column at enter and leave, feet row, height in pixels, flipped or not."""

    x_enter: float
    x_leave: float
    feet: float
    size: float
    flip: bool
    bob: float


def _motion(rng: np.random.Generator, width: int, height: int, aspect: float) -> _Motion:
    size = height * rng.uniform(0.3, 0.75)
    if size * aspect > 0.9 * width:
        size = 0.9 * width / aspect
    half = 0.5 * size * aspect
    lo, hi = -0.2 * half, width + 0.2 * half  # at least 40% of the animal's width stays on screen
    x_enter = rng.uniform(lo, hi)
    walk = rng.random() < 0.7
    travel = rng.uniform(0.3, 1.0) * width if walk else rng.uniform(0, 0.1) * width
    x_leave = float(np.clip(x_enter + travel * rng.choice((-1, 1)), lo, hi))
    return _Motion(x_enter, x_leave, height * rng.uniform(0.6, 1.05), size, bool(x_leave < x_enter),
                   rng.uniform(0, 0.02) * height)


def _paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, left: int, top: int) -> None:
    """Alpha-composite ``rgb`` onto ``frame`` at (left, top), cut to the frame."""
    H, W = frame.shape[:2]
    h, w = alpha.shape[:2]
    fx0, fy0, fx1, fy1 = max(left, 0), max(top, 0), min(left + w, W), min(top + h, H)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    a = alpha[fy0 - top:fy1 - top, fx0 - left:fx1 - left]
    part = rgb[fy0 - top:fy1 - top, fx0 - left:fx1 - left]
    frame[fy0:fy1, fx0:fx1] = frame[fy0:fy1, fx0:fx1] * (1 - a) + part * a


def _smooth_walk(rng: np.random.Generator, n: int, knots: int, scale: float) -> np.ndarray:
    """A smooth random curve over ``n`` frames (``knots`` random values, linearly interpolated)."""
    values = rng.normal(0, scale, knots + 1)
    return np.interp(np.arange(n), np.linspace(0, n - 1, knots + 1), values).astype(np.float32)


def render_clip(spec: ClipSpec, config: BenchConfig, media: Path, with_animal: bool = True) -> Iterator[np.ndarray]:
    """The frames of ``spec``: RGB uint8 (H, W, 3) by day, grayscale (H, W) at night.

    Every random draw comes from the clip's seed in a fixed order, so ``with_animal=False`` gives
    the very same clip without the animal (the tests compare the two).
    """
    import cv2

    W, H, n = config.width, config.height, config.frames
    rng = np.random.default_rng(spec.seed)
    site = next(s for s in SITES if s.name == spec.site)
    views = site_frames(site, media, W, H)
    offset = int(rng.integers(len(views)))
    wind = np.clip(_smooth_walk(rng, n, 6, 1.0), 0, None) * rng.uniform(0.5, 3.0)   # sway amplitude, pixels
    light = 1.0 + _smooth_walk(rng, n, 4, rng.uniform(0.02, 0.12))
    tint = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    noise_sigma = rng.uniform(1.5, 4.0) * (2.0 if spec.night else 1.0)
    gain = rng.uniform(0.9, 1.4)
    photo = next((p for p in PHOTOS if p.path == spec.photo), None)
    rgb = alpha = motion = None
    if photo is not None:
        rgb, alpha = cutout(photo, media)
        motion = _motion(rng, W, H, alpha.shape[1] / alpha.shape[0])
        scale = motion.size / alpha.shape[0]
        size = (max(2, int(alpha.shape[1] * scale)), max(2, int(motion.size)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) * rng.uniform(0.7, 1.1)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)[..., None]
        if motion.flip:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)  # float32 throughout: cv2.remap needs it
    upper = np.clip(1.2 - ys / (0.8 * H), 0, 1)        # foliage sways, the ground does not
    wave = ys * 0.11 + xs * 0.05
    sway_sin, sway_cos = upper * np.sin(wave), upper * np.cos(wave)   # sin(wave + c) = sin*cos(c) + cos*sin(c)
    vignette = (1.0 - 0.55 * (((xs - W / 2) / (W / 2)) ** 2 + ((ys - H / 2) / (H / 2)) ** 2) / 2)[..., None]
    noise_rng = np.random.default_rng([spec.seed, 1])
    for f in range(n):
        k = (offset + f) % (2 * len(views) - 1) if len(views) > 1 else 0
        view = views[k if k < len(views) else 2 * len(views) - 2 - k]
        shift = wind[f] * (sway_sin * np.float32(np.cos(0.9 * f)) + sway_cos * np.float32(np.sin(0.9 * f)))
        frame = cv2.remap(view, xs + shift, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if with_animal and motion is not None and spec.enter_frame <= f < spec.leave_frame:
            t = (f - spec.enter_frame) / max(1, spec.leave_frame - spec.enter_frame - 1)
            centre = motion.x_enter + t * (motion.x_leave - motion.x_enter)
            feet = motion.feet + motion.bob * np.sin(2.5 * f)
            _paste(frame, rgb, alpha, int(round(centre - alpha.shape[1] / 2)), int(round(feet - alpha.shape[0])))
        frame = frame * tint * light[f]
        if spec.night:
            frame = (frame @ _IR_WEIGHTS)[..., None] * vignette * gain
        frame = frame + noise_rng.standard_normal(frame.shape, dtype=np.float32) * noise_sigma
        out = np.clip(frame, 0, 255).astype(np.uint8)
        yield out[..., 0] if spec.night else out


# --------------------------------------------------------------------------- files
def _recorded_at(spec: ClipSpec) -> float:
    """A modification time for the file that agrees with day or night (June-July 2016, UTC)."""
    rng = np.random.default_rng([spec.seed, 7])
    hour = (20 + rng.uniform(0, 9)) % 24 if spec.night else 6 + rng.uniform(0, 12)
    return float(1464739200 + int(rng.integers(0, 61)) * 86400 + hour * 3600)


def _make(task: tuple[str, list[ClipSpec], BenchConfig, str]) -> list[dict]:
    """Write the clips of ``task`` that are missing; describe them all (worker task)."""
    directory, specs, config, media = task
    out = []
    for spec in specs:
        path = Path(directory) / spec.relpath
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_clip(path, render_clip(spec, config, Path(media)), config.width, config.height, config.fps,
                       config.crf)
        os.utime(path, (_recorded_at(spec), _recorded_at(spec)))
        out.append({**asdict(spec), "night": int(spec.night), "frames": config.frames, "fps": config.fps,
                    "enter_s": round(spec.enter_frame / config.fps, 3),
                    "leave_s": round(spec.leave_frame / config.fps, 3), "bytes": path.stat().st_size})
    return out


def _write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows(rows)


def make_collection(directory: str | os.PathLike, config: BenchConfig | None = None, media: Path | None = None,
                    workers: int = 2) -> dict:
    """Write (or complete) the collection in ``directory``; return its record (``collection.json``).

    A complete collection with the same configuration is returned as it is.
    """
    config = config or BenchConfig()
    media = Path(media or default_media()).resolve()
    directory = Path(directory).resolve()
    record_path = directory / MANIFEST
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("key") == config.key() and record.get("status") == "complete":
            return record
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    specs = plan_clips(config)
    tasks = [(str(directory), specs[i:i + 20], config, str(media)) for i in range(0, len(specs), 20)]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            described = [row for rows in pool.map(_make, tasks) for row in rows]
    else:
        described = [row for task in tasks for row in _make(task)]
    for split in ("train", "test"):
        rows = sorted((d for d in described if d["split"] == split), key=lambda d: d["filename"])
        _write_csv(directory / f"{split}_labels.csv", ("filename",) + PRIMATRIX_CLASSES,
                   [[d["filename"]] + [int(c == d["label"]) for c in PRIMATRIX_CLASSES] for d in rows])
    _write_csv(directory / "clips.csv", _CLIP_COLUMNS, [[d[c] for c in _CLIP_COLUMNS] for d in described])
    record = {"format": "jungle-realistic-bench", "key": config.key(), "config": config.model_dump(mode="json"),
              "status": "complete", "clips": len(described), "bytes": sum(d["bytes"] for d in described),
              "seconds": round(time.perf_counter() - started, 1)}
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--train", type=int, default=490)
    parser.add_argument("--test", type=int, default=210)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--media", type=Path, default=None)
    args = parser.parse_args()
    record = make_collection(args.directory, BenchConfig(seed=args.seed, n_train=args.train, n_test=args.test),
                             args.media, args.workers)
    print(json.dumps({k: record[k] for k in ("clips", "bytes", "seconds") if k in record}))


if __name__ == "__main__":
    main()
