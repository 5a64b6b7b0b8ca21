"""A realistic benchmark that cannot be memorised: real animals moving over real camera views, two splits.

Built only from ``../shared/media`` at run time (the views and photographs are listed in
``bench/realistic_media.py``); nothing from it is committed.

**Clips**: 15 s at 8 fps, 320x180, H.264. One animal is on screen for one stretch of 1-3.5 s
(``enter_s``..``leave_s`` in ``clips.csv``); the rest of the clip is the empty view. Animals come at
camera-trap sizes: log-normal widths fitted to the animals of the real camera-trap stills (median
18% of the frame's width, 7% of them under 6%, down to 3%: a far person, a crow across the
clearing; up to 60%); small animals stand further up the frame, as far ones do. They walk in from
an edge of the frame partly visible, walk across, peek in and turn back, or linger; a third are partly
hidden (low vegetation in front of their legs, or a trunk they pass behind). Every clip has wind
(the upper part of the view sways), light changes and sensor noise, so blank clips move too.
Infrared sites and a quarter of the other clips are grayscale nights; a low-resolution camera's
clips are rendered at its resolution.

**Two splits of one pool of clips** (each clip is rendered and featurized once):

- ``photo``: the animal photographs are split between train and test (no photograph in both; the
  cut-outs of one photograph stay together). A class with one photograph stays train-only and has
  no test clip. Sites are shared, as at real cameras that keep filming.
- ``site``: test sites (cameras) never appear in training, and test photographs are not in
  training either: what a new deployment sees.

The pool has four cells (train site or test site) x (train photograph or test photograph), sized by
``BenchConfig.cells``; blank clips are drawn into the cells like the others. ``photo`` trains on the
cells with train photographs and tests on those with test photographs; ``site`` trains on (train
site, train photograph) and tests on (test site, test photograph). Which photographs and sites are
held out is drawn from the seed alone (:func:`split_photos`, :func:`split_sites`): nothing is tuned
on test answers.

Layout: ``clips/<site>/<name>.mp4``; ``photo/train_labels.csv``, ``photo/test_labels.csv``,
``site/train_labels.csv``, ``site/test_labels.csv`` (wide, the 24 Pri-matrix classes);
``clips.csv`` (ground truth per clip, never a feature: split membership, photograph, size,
on-screen interval, occlusion); ``splits.json`` (what each split holds out, class coverage) and
``collection.json`` (configuration; a collection with the same configuration is reused, an
interrupted one completed).

    python bench/realistic.py DIR [--clips 1000 --workers 2 --seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path
from typing import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realistic_media import (PHOTOS, SITES, Photo, Site, cutout, default_media, is_grayscale,  # noqa: E402
                             view_frames)

from jungle.classes import PRIMATRIX_CLASSES  # noqa: E402
from jungle.demo.generate import write_clip  # noqa: E402
from jungle.demo.plan import allocate_counts  # noqa: E402

__all__ = ["BenchConfig", "ClipSpec", "FREQUENCIES", "SPLITS", "CELLS", "split_photos", "split_sites", "plan_clips",
           "split_members", "describe_splits", "animal_track", "render_clip", "make_collection", "default_media"]

MANIFEST = "collection.json"
FORMAT = "jungle-realistic-bench-2"
SPLITS = ("photo", "site")
#: The pool's cells: (site side, photograph side).
CELLS = (("train", "train"), ("test", "train"), ("train", "test"), ("test", "test"))
_CLIP_COLUMNS = ("filename", "relpath", "site", "label", "photo", "photo_source", "site_side", "photo_side",
                 "photo_split", "site_split", "night", "frames", "fps", "enter_s", "leave_s", "enter_frame",
                 "leave_frame", "width_frac", "height_frac", "path", "occluder", "bytes")
#: x264 as the demo runs it (single-threaded, no MB-tree: the same bytes in every process), a faster preset:
#: with sensor noise in every frame, "fast" took 2x as long for files of the same size.
X264 = {"preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
_IR_WEIGHTS = np.array([0.28, 0.57, 0.15], np.float32)

#: Relative class weights, loosely Pri-matrix's (blank most common, then primates and humans);
#: only classes with a photograph.
FREQUENCIES: tuple[tuple[str, float], ...] = (
    ("blank", 0.50), ("other (primate)", 0.10), ("human", 0.08), ("chimpanzee", 0.06), ("rodent", 0.04),
    ("bird", 0.04), ("other (non-primate)", 0.03), ("elephant", 0.025), ("large ungulate", 0.02),
    ("wild dog", 0.02), ("small cat", 0.02), ("gorilla", 0.02), ("cattle", 0.015), ("leopard", 0.015),
    ("reptile", 0.01),
)


class CollectionConfig(BaseModel):
    """The base of a generated collection's settings: frozen, unknown fields refused, its key the
    digest of its fields (which name the collection's folder record), clips of ``duration`` s at ``fps``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def frames(self) -> int:
        return int(round(self.duration * self.fps))

    def key(self) -> str:
        return sha256(self.model_dump_json().encode()).hexdigest()[:12]


class BenchConfig(CollectionConfig):
    """What the collection holds (frozen; its key names the collection).

    Attributes:
        seed: seed of every draw (held-out photographs and sites, plan, paths, noise).
        clips: clips in the pool.
        cells: shares of the pool in the cells of :data:`CELLS` (train/train, test site, test photo, test/test).
        min_clips: fewest clips of every class with a photograph on that side, per cell.
        test_photos: share of each class's photographs held out for test (at least one; none for a
            class with one photograph).
        test_sites: share of the sites held out for the site split's test.
        duration, fps, width, height: every clip's length and frame size.
        visible_s: shortest and longest stretch with the animal on screen (seconds).
        animal_width: narrowest and widest animal, as a fraction of the frame's width.
        width_median, width_spread: the animals' widths are log-normal with this median and standard
            deviation of the log (clipped to ``animal_width``): fitted to MegadetectorLite's boxes on
            the 28 animals of the real camera-trap stills in ``../shared/media`` (median 0.19 of the
            frame's width, 7% under 0.06, the narrowest 0.05: a far person).
        occluded: share of animal clips with the animal partly hidden.
        night_fraction: share of clips at daylight sites filmed at night.
        crf: x264 constant rate factor.
    """

    seed: int = 0
    clips: int = Field(1000, ge=4)
    cells: tuple[float, float, float, float] = (0.44, 0.16, 0.2, 0.2)
    min_clips: tuple[int, int, int, int] = (4, 1, 2, 2)
    test_photos: float = Field(0.35, gt=0, lt=1)
    test_sites: float = Field(0.3, gt=0, lt=1)
    duration: float = Field(15.0, gt=0)
    fps: int = Field(8, ge=2)
    width: int = 320
    height: int = 180
    visible_s: tuple[float, float] = (1.0, 3.5)
    animal_width: tuple[float, float] = (0.03, 0.6)
    width_median: float = Field(0.18, gt=0, lt=1)
    width_spread: float = Field(0.8, ge=0)
    occluded: float = Field(0.35, ge=0, le=1)
    night_fraction: float = Field(0.25, ge=0, le=1)
    crf: int = 26


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the pool: where it is, what it shows, and how the animal moves.

    ``enter_frame``..``leave_frame`` (end excluded) is when the animal is on screen; ``width`` the
    animal's drawn width as a fraction of the frame's; ``path`` how it moves (walk, peek, linger),
    ``edge`` where it comes from (-1 left edge, 1 right edge, 0 already in view); ``occluder``
    none, grass or trunk.
    """

    filename: str
    site: str
    view: int
    label: str
    photo: str            # the cut-out's key; '' for blank clips
    photo_source: str     # the photograph it comes from
    site_side: str
    photo_side: str
    night: bool
    seed: int
    enter_frame: int
    leave_frame: int
    width: float
    path: str
    edge: int
    occluder: str

    @property
    def relpath(self) -> str:
        return f"clips/{self.site}/{self.filename}"

    def split_of(self, split: str) -> str:
        """'train', 'test' or '' (not in that split)."""
        if split == "photo":
            return self.photo_side
        return self.site_side if self.site_side == self.photo_side else ""


# --------------------------------------------------------------------------- the splits (pure data)
def photo_sources(photos: tuple[Photo, ...] = PHOTOS) -> dict[str, list[str]]:
    """Per class, its photographs (sources) in table order."""
    sources: dict[str, list[str]] = {}
    for photo in photos:
        listed = sources.setdefault(photo.label, [])
        if photo.source not in listed:
            listed.append(photo.source)
    return sources


def split_photos(config: BenchConfig, photos: tuple[Photo, ...] = PHOTOS) -> dict[str, str]:
    """Each photograph's side ('train' or 'test'), drawn per class from the seed; a class with one
    photograph keeps it for training."""
    rng = np.random.default_rng([config.seed, 101])
    side = {}
    for label, sources in sorted(photo_sources(photos).items()):
        order = rng.permutation(len(sources))
        n_test = 0 if len(sources) < 2 else min(len(sources) - 1, max(1, int(round(config.test_photos * len(sources)))))
        for rank, index in enumerate(order):
            side[sources[index]] = "test" if rank < n_test else "train"
    return side


def split_sites(config: BenchConfig, sites: tuple[Site, ...] = SITES,
                infrared: dict[str, bool] | None = None) -> dict[str, str]:
    """Each site's side ('train' or 'test'), drawn from the seed; with ``infrared`` (site -> bool),
    night and day sites are held out in proportion."""
    rng = np.random.default_rng([config.seed, 102])
    infrared = infrared or {}
    side = {}
    for group in (False, True):
        names = sorted(s.name for s in sites if infrared.get(s.name, False) == group)
        order = rng.permutation(len(names))
        n_test = min(len(names) - 1, max(1, int(round(config.test_sites * len(names))))) if len(names) > 1 else 0
        for rank, index in enumerate(order):
            side[names[index]] = "test" if rank < n_test else "train"
    return side


def _class_counts(n: int, classes: list[str], minimum: int) -> dict[str, int]:
    weights = {c: w for c, w in FREQUENCIES if c in classes}
    minimum = min(minimum, max(0, n - 1) // max(1, len(weights) - 1))
    return allocate_counts(n, weights, minimum)


def _cell_sizes(config: BenchConfig) -> list[int]:
    raw = np.asarray(config.cells, float) / sum(config.cells) * config.clips
    sizes = np.floor(raw).astype(int)
    sizes[np.argsort(raw - sizes)[::-1][: config.clips - sizes.sum()]] += 1
    return [int(s) for s in sizes]


def plan_clips(config: BenchConfig, infrared: dict[str, bool] | None = None) -> list[ClipSpec]:
    """Every clip of the pool, from the configuration alone (``infrared``: which sites are night sites)."""
    infrared = infrared or {}
    photo_side = split_photos(config)
    site_side = split_sites(config, infrared=infrared)
    rng = np.random.default_rng([config.seed, 1])
    shortest, longest = (max(1, int(round(s * config.fps))) for s in config.visible_s)
    centre = np.log(config.width_median)
    clips = []
    for (sites_on, photos_on), n, minimum in zip(CELLS, _cell_sizes(config), config.min_clips):
        cut_outs = {c: [p for p in PHOTOS if p.label == c and photo_side[p.source] == photos_on]
                    for c, _ in FREQUENCIES if c != "blank"}
        classes = ["blank"] + [c for c, found in cut_outs.items() if found]
        counts = _class_counts(n, classes, minimum)
        site_names = sorted(s.name for s in SITES if site_side[s.name] == sites_on)
        for label in rng.permutation([c for c, k in counts.items() for _ in range(k)]):
            label = str(label)
            site_name = site_names[int(rng.integers(len(site_names)))]
            site = next(s for s in SITES if s.name == site_name)
            view = int(rng.integers(len(site.views)))
            night = infrared.get(site.name, False) or bool(rng.random() < config.night_fraction)
            seed = int(rng.integers(2**31))
            name = sha256(f"{config.seed}/{len(clips)}".encode()).hexdigest()[:10] + ".mp4"
            width = float(np.clip(np.exp(rng.normal(centre, config.width_spread)), *config.animal_width))
            geometry = (width, str(rng.choice(["walk", "walk", "peek", "linger"])),
                        int(rng.choice([-1, 1, 0])),
                        str(rng.choice(["grass", "trunk"])) if rng.random() < config.occluded else "none")
            length = min(int(rng.integers(shortest, longest + 1)), config.frames)
            enter = int(rng.integers(0, config.frames - length + 1))
            if label == "blank":
                clips.append(ClipSpec(name, site.name, view, label, "", "", sites_on, photos_on, night, seed, 0, 0,
                                      0.0, "", 0, "none"))
                continue
            sources = sorted({p.source for p in cut_outs[label]})
            source = sources[int(rng.integers(len(sources)))]
            options = [p for p in cut_outs[label] if p.source == source]
            photo = options[int(rng.integers(len(options)))]
            clips.append(ClipSpec(name, site.name, view, label, photo.key, source, sites_on, photos_on, night, seed,
                                  enter, enter + length, *geometry))
    return clips


def split_members(clips: list[ClipSpec], split: str, side: str) -> list[ClipSpec]:
    """The clips on ``side`` ('train'/'test') of ``split`` ('photo'/'site')."""
    return [c for c in clips if c.split_of(split) == side]


def describe_splits(config: BenchConfig, clips: list[ClipSpec], infrared: dict[str, bool] | None = None) -> dict:
    """What each split holds out and covers: test photographs per class, train-only classes, test
    sites, clips per side and the classes of each test side."""
    photo_side = split_photos(config)
    site_side = split_sites(config, infrared=infrared)
    sources = photo_sources()
    out = {"classes_train_only": sorted(c for c, s in sources.items() if len(s) < 2),
           "test_photographs": {c: sorted(s for s in found if photo_side[s] == "test")
                                for c, found in sorted(sources.items())},
           "train_photographs": {c: sorted(s for s in found if photo_side[s] == "train")
                                 for c, found in sorted(sources.items())},
           "test_sites": sorted(s for s, side in site_side.items() if side == "test"),
           "train_sites": sorted(s for s, side in site_side.items() if side == "train"),
           "night_sites": sorted(s for s, ir in (infrared or {}).items() if ir)}
    for split in SPLITS:
        entry = {}
        for side in ("train", "test"):
            members = split_members(clips, split, side)
            entry[side] = {"clips": len(members), "classes": dict(sorted(Counter(c.label for c in members).items())),
                           "photographs": len({c.photo_source for c in members if c.photo_source}),
                           "sites": len({c.site for c in members})}
        entry["classes_without_test_clips"] = sorted(set(entry["train"]["classes"]) - set(entry["test"]["classes"]))
        out[split] = entry
    return out


def site_infrared(config: BenchConfig, media: Path) -> dict[str, bool]:
    """Which sites are infrared (their first view is grayscale)."""
    return {s.name: is_grayscale(view_frames(s.views[0], media, config.width, config.height)[0]) for s in SITES}


# --------------------------------------------------------------------------- the animal's track
@dataclass(frozen=True)
class Track:
    """Where the animal is in each on-screen frame: left and top pixel of its (w, h) box, and the
    occluder (a mask over the frame: 1 where the animal is hidden)."""

    left: np.ndarray
    top: np.ndarray
    w: int
    h: int
    flip: bool
    occluder: np.ndarray | None


def animal_track(spec: ClipSpec, config: BenchConfig, aspect: float, native_w: int,
                 rng: np.random.Generator) -> Track:
    """The animal's size and path for ``spec`` (``aspect`` = width / height of the cut-out, ``native_w``
    its width in pixels: it is never drawn wider than twice that). At least a quarter of its width is
    inside the frame in every on-screen frame, and an occluder hides at most 60% of it."""
    W, H = config.width, config.height
    w = min(spec.width * W, 2.0 * native_w, 0.95 * W)
    h = w / aspect
    if h > 0.92 * H:
        h = 0.92 * H
        w = h * aspect
    w, h = max(3, int(round(w))), max(3, int(round(h)))
    n = spec.leave_frame - spec.enter_frame
    lo_w, hi_w = np.log(config.animal_width[0] * W), np.log(config.animal_width[1] * W)
    depth = float(np.clip((np.log(w) - lo_w) / max(1e-6, hi_w - lo_w), 0, 1))     # 0 far, 1 near
    feet = H * float(np.clip(0.5 + 0.45 * depth + rng.uniform(-0.08, 0.08), 0.4, 1.04))
    feet = max(feet, h - 0.05 * H)
    seconds = n / config.fps
    reach = rng.uniform(0.8, 2.5) * w * seconds            # body widths per second
    least, most = -0.25 * w, W + 0.25 * w                    # centre limits: a quarter stays inside
    if spec.edge:
        start = least if spec.edge < 0 else most
        start += -spec.edge * rng.uniform(0, 0.3) * w
        direction = -spec.edge
    else:
        start = rng.uniform(0.5 * w, W - 0.5 * w)
        direction = int(rng.choice([-1, 1]))
    t = np.linspace(0, 1, n) if n > 1 else np.zeros(1)
    if spec.path == "walk":
        x = start + direction * reach * t
    elif spec.path == "peek":
        x = start + direction * 0.5 * reach * np.sin(np.pi * t)
    else:
        x = start + direction * rng.uniform(0, 0.4) * w * t
    x = np.clip(x, least, most)
    bob = rng.uniform(0, 0.03) * h * np.sin(rng.uniform(2, 4) * np.arange(n))
    occluder = None
    if spec.occluder == "grass":     # vegetation in front of the legs: hides 20-55% of its height
        line = feet - rng.uniform(0.2, 0.55) * h
        xs = np.arange(W, dtype=np.float32)
        wave = line + 0.04 * h * np.sin(xs / max(2.0, 0.15 * w) + rng.uniform(0, 6)) \
            + 0.03 * h * np.sin(xs / max(1.0, 0.04 * w))
        occluder = (np.arange(H, dtype=np.float32)[:, None] > wave[None, :]).astype(np.float32)
    elif spec.occluder == "trunk":   # a trunk it passes behind: 30-60% of its width
        centre = float(np.clip(x[int(rng.integers(n))] + rng.uniform(-0.3, 0.3) * w, 0, W))
        half = rng.uniform(0.15, 0.3) * w
        occluder = np.zeros((H, W), np.float32)
        occluder[:, max(0, int(centre - half)):min(W, int(np.ceil(centre + half)))] = 1.0
    if occluder is not None:
        import cv2

        occluder = cv2.GaussianBlur(occluder, (0, 0), 0.8)
    left = np.round(x - w / 2).astype(int)
    top = np.round(feet - h + bob).astype(int)
    return Track(left, top, w, h, direction < 0, occluder)


# --------------------------------------------------------------------------- rendering
def _paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, left: int, top: int,
           hidden: np.ndarray | None) -> None:
    """Alpha-composite ``rgb`` onto ``frame`` at (left, top), cut to the frame, behind ``hidden`` (0-1 mask)."""
    H, W = frame.shape[:2]
    h, w = alpha.shape[:2]
    fx0, fy0, fx1, fy1 = max(left, 0), max(top, 0), min(left + w, W), min(top + h, H)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    a = alpha[fy0 - top:fy1 - top, fx0 - left:fx1 - left]
    if hidden is not None:
        a = a * (1.0 - hidden[fy0:fy1, fx0:fx1, None])
    part = rgb[fy0 - top:fy1 - top, fx0 - left:fx1 - left]
    frame[fy0:fy1, fx0:fx1] = frame[fy0:fy1, fx0:fx1] * (1 - a) + part * a


def _smooth_walk(rng: np.random.Generator, n: int, knots: int, scale: float) -> np.ndarray:
    """A smooth random curve over ``n`` frames (``knots`` random values, linearly interpolated)."""
    values = rng.normal(0, scale, knots + 1)
    return np.interp(np.arange(n), np.linspace(0, n - 1, knots + 1), values).astype(np.float32)


def _photo(key: str) -> Photo:
    return next(p for p in PHOTOS if p.key == key)


def render_clip(spec: ClipSpec, config: BenchConfig, media: Path, with_animal: bool = True,
                cache: Path | None = None, track_out: list | None = None) -> Iterator[np.ndarray]:
    """The frames of ``spec``: RGB uint8 (H, W, 3) by day, grayscale (H, W) at night.

    Every random draw comes from the clip's seed in a fixed order, so ``with_animal=False`` gives
    the very same clip without the animal (the tests compare the two). ``track_out`` (a list)
    receives the animal's :class:`Track`.
    """
    import cv2

    W, H, n = config.width, config.height, config.frames
    rng = np.random.default_rng(spec.seed)
    site = next(s for s in SITES if s.name == spec.site)
    views, source_w = view_frames(site.views[spec.view], media, W, H)
    offset = int(rng.integers(len(views)))
    wind = np.clip(_smooth_walk(rng, n, 6, 1.0), 0, None) * rng.uniform(0.5, 3.0)   # sway amplitude, pixels
    light = 1.0 + _smooth_walk(rng, n, 4, rng.uniform(0.02, 0.12))
    tint = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    noise_sigma = rng.uniform(1.5, 4.0) * (2.0 if spec.night else 1.0)
    gain = rng.uniform(0.9, 1.4)
    rgb = alpha = track = None
    if spec.photo:
        rgb, alpha = cutout(_photo(spec.photo), media, cache)
        track = animal_track(spec, config, alpha.shape[1] / alpha.shape[0], alpha.shape[1], rng)
        rgb = cv2.resize(rgb, (track.w, track.h), interpolation=cv2.INTER_AREA) * rng.uniform(0.7, 1.1)
        alpha = cv2.resize(alpha, (track.w, track.h), interpolation=cv2.INTER_AREA)[..., None]
        if track.flip:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        if track_out is not None:
            track_out.append(track)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)  # float32 throughout: cv2.remap needs it
    upper = np.clip(1.2 - ys / (0.8 * H), 0, 1)        # foliage sways, the ground does not
    wave = ys * 0.11 + xs * 0.05
    sway_sin, sway_cos = upper * np.sin(wave), upper * np.cos(wave)   # sin(wave + c) = sin*cos(c) + cos*sin(c)
    vignette = (1.0 - 0.55 * (((xs - W / 2) / (W / 2)) ** 2 + ((ys - H / 2) / (H / 2)) ** 2) / 2)[..., None]
    noise_rng = np.random.default_rng([spec.seed, 1])
    channels = 1 if spec.night else 3
    bank = noise_rng.standard_normal((8, H, W, channels), dtype=np.float32) * np.float32(noise_sigma)
    low_res = (source_w, max(2, int(round(source_w * H / W)))) if source_w < W else None
    for f in range(n):
        k = (offset + f) % (2 * len(views) - 1) if len(views) > 1 else 0
        view = views[k if k < len(views) else 2 * len(views) - 2 - k]
        shift = wind[f] * (sway_sin * np.float32(np.cos(0.9 * f)) + sway_cos * np.float32(np.sin(0.9 * f)))
        frame = cv2.remap(view, xs + shift, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if with_animal and track is not None and spec.enter_frame <= f < spec.leave_frame:
            i = f - spec.enter_frame
            _paste(frame, rgb, alpha, int(track.left[i]), int(track.top[i]), track.occluder)
        if low_res is not None:   # the camera's own resolution
            frame = cv2.resize(cv2.resize(frame, low_res, interpolation=cv2.INTER_AREA), (W, H),
                               interpolation=cv2.INTER_CUBIC)
        frame = frame * (tint * light[f])
        if spec.night:
            frame = (frame @ _IR_WEIGHTS)[..., None] * vignette * gain
        frame += bank[int(noise_rng.integers(len(bank)))]
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
    cache = Path(directory) / "cutouts"
    out = []
    for spec in specs:
        path = Path(directory) / spec.relpath
        tracks: list = []
        frames = render_clip(spec, config, Path(media), cache=cache, track_out=tracks)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_clip(path, frames, config.width, config.height, config.fps, config.crf, X264)
        else:   # the track only
            next(frames, None)
        os.utime(path, (_recorded_at(spec), _recorded_at(spec)))
        track = tracks[0] if tracks else None
        out.append({**asdict(spec), "relpath": spec.relpath, "night": int(spec.night), "frames": config.frames,
                    "fps": config.fps, "photo_split": spec.split_of("photo"), "site_split": spec.split_of("site"),
                    "enter_s": round(spec.enter_frame / config.fps, 3),
                    "leave_s": round(spec.leave_frame / config.fps, 3),
                    "width_frac": round(track.w / config.width, 4) if track else 0.0,
                    "height_frac": round(track.h / config.height, 4) if track else 0.0, "bytes": path.stat().st_size})
    return out


def _cut_task(task: tuple[str, str, str]) -> str:
    key, media, cache = task
    cutout(_photo(key), Path(media), Path(cache))
    return key


def _write_csv(path: Path, columns, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows(rows)


def _map(function, tasks: list, workers: int) -> list:
    """``function`` over ``tasks``, in order, on ``workers`` processes (1: here)."""
    if workers > 1 and len(tasks) > 1:
        from jungle.runtime import WorkerPool

        with WorkerPool(workers) as pool:
            return [future.result() for future in [pool.submit(function, task) for task in tasks]]
    return [function(task) for task in tasks]


def make_collection(directory: str | os.PathLike, config: BenchConfig | None = None, media: Path | None = None,
                    workers: int = 2, log=None) -> dict:
    """Write (or complete) the collection in ``directory``; return its record (``collection.json``).

    A complete collection with the same configuration is returned as it is.
    """
    config = config or BenchConfig()
    media = Path(media or default_media()).resolve()
    directory = Path(directory).resolve()
    say = log or (lambda _line: None)
    record_path = directory / MANIFEST
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("key") != config.key():
            raise ValueError(f"{directory} holds a collection with other settings ({record.get('config')}); "
                             "choose another folder or delete this one")
        if record.get("status") == "complete":
            return record
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps({"format": FORMAT, "key": config.key(), "config": config.model_dump(mode="json"),
                                       "status": "incomplete"}, indent=2) + "\n", encoding="utf-8")
    infrared = site_infrared(config, media)
    specs = plan_clips(config, infrared)
    keys = sorted({s.photo for s in specs if s.photo})
    _map(_cut_task, [(k, str(media), str(directory / "cutouts")) for k in keys], workers)
    say(f"cut-outs: {len(keys)} in {time.perf_counter() - started:.0f} s")
    tasks = [(str(directory), specs[i:i + 20], config, str(media)) for i in range(0, len(specs), 20)]
    described = [row for rows in _map(_make, tasks, workers) for row in rows]
    for split in SPLITS:
        for side in ("train", "test"):
            rows = sorted((d for d in described if d[f"{split}_split"] == side), key=lambda d: d["filename"])
            _write_csv(directory / split / f"{side}_labels.csv", ("filename",) + PRIMATRIX_CLASSES,
                       [[d["filename"]] + [int(c == d["label"]) for c in PRIMATRIX_CLASSES] for d in rows])
    _write_csv(directory / "clips.csv", _CLIP_COLUMNS, [[d[c] for c in _CLIP_COLUMNS] for d in described])
    splits = describe_splits(config, specs, infrared)
    (directory / "splits.json").write_text(json.dumps(splits, indent=2) + "\n", encoding="utf-8")
    record = {"format": FORMAT, "key": config.key(), "config": config.model_dump(mode="json"),
              "status": "complete", "clips": len(described), "bytes": sum(d["bytes"] for d in described),
              "seconds": round(time.perf_counter() - started, 1)}
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def render_description(splits: dict) -> str:
    """What each split holds out, in lines for a person."""
    lines = ["photo split: test photographs (never in training) per class:"]
    for label, held in splits["test_photographs"].items():
        train = splits["train_photographs"][label]
        note = "  (one photograph: train-only, no test clip)" if not held else ""
        listed = f": {', '.join(held)}" if held else ""
        lines.append(f"  {label}: {len(held)} test / {len(train)} train{note}{listed}")
    lines.append(f"site split: test sites (never in training, {len(splits['test_sites'])} of "
                 f"{len(splits['test_sites']) + len(splits['train_sites'])}): {', '.join(splits['test_sites'])}; "
                 "its test photographs are the photo split's")
    for split in SPLITS:
        entry = splits[split]
        for side in ("train", "test"):
            part = entry[side]
            lines.append(f"{split} {side}: {part['clips']} clips, {part['photographs']} photographs, "
                         f"{part['sites']} sites; " + ", ".join(f"{c} {k}" for c, k in part["classes"].items()))
        lines.append(f"{split}: classes without test clips: {', '.join(entry['classes_without_test_clips']) or '-'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--clips", type=int, default=BenchConfig().clips)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--media", type=Path, default=None)
    args = parser.parse_args()
    config = BenchConfig(seed=args.seed, clips=args.clips)
    record = make_collection(args.directory, config, args.media, args.workers,
                             log=lambda line: print(line, file=sys.stderr, flush=True))
    print(render_description(json.loads((Path(args.directory) / "splits.json").read_text(encoding="utf-8"))))
    print(json.dumps({k: record[k] for k in ("clips", "bytes", "seconds") if k in record}))


if __name__ == "__main__":
    main()
