"""Groups for the counting benchmark: 1-5 animals of one class on screen together, with known counts.

Built from the realistic benchmark's pieces (``bench/realistic.py``, ``bench/realistic_media.py``):
its camera views (real camera-trap stills and clips) and its animal cut-outs (real photographs),
and its held-out photographs and sites. Nothing is committed; everything is drawn from the seed.

**Clips**: 15 s at 8 fps, 320x180, H.264. A clip shows ``n`` animals (1-5, uniform) of one class,
cut-outs of that class's animals boxed in camera-trap stills and clips (:func:`usable_photos`: whole
photographs, cut-outs whose matte is the stand-in superellipse, cut-outs that show two animals, and
cut-outs MegadetectorLite does not find alone on a grey frame are left out: this benchmark measures
counting, the realistic benchmark the detector); the same cut-out may appear twice, mirrored, at
another size. Each animal has its own story: it crosses the view from one edge to the other
(entering and leaving at its own times), walks in and stays, or is there from the start and walks
out or stays; some go the other way, so animals cross and the nearer one hides the farther one
(they are drawn far to near; near ones are larger and lower in the frame). In a fifth of the clips
the animals pass one after another (a procession: fewer on screen at once than in the clip). A
quarter of the clips have a trunk or grass in front of the animals. The view sways at the top
(wind), the light drifts and the sensor is noisy, as in the realistic benchmark. A tenth of the
clips are blank (0 animals).

**Truth** (``clips.csv``): per clip the number of animals (``animals``) and its MaxN (``maxn``): the
most animals on screen at once over all its frames, an animal being on screen when at least 35% of
its cut-out is inside the frame (one hidden behind another or behind the trunk is still there, as a
person watching the clip knows); ``present`` lists the count per frame. ``maxn_visible`` and
``visible`` count only the animals of which 35% is also not hidden (by a nearer animal or the
occluder): what a single frame can show.

**Events**: clips come in events of 1-3 clips of one site and class, 20 s apart (a camera
re-triggering on the same group); events are hours apart. The MP4s carry their recording time,
so ``jungle ingest`` groups them as the exports do. An event's true MaxN is the largest of its
clips'.

**Splits** (what is held out): ``test`` clips use the realistic benchmark's test photographs and
test sites (:func:`realistic.split_photos`, :func:`realistic.split_sites` for the same seed), ``dev``
clips its training photographs and training sites: a tracker's settings are chosen on ``dev`` and
never see a ``test`` photograph or camera.

    python bench/groups.py DIR --split test [--clips 100 --seed 0 --workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realistic import X264, BenchConfig, CollectionConfig, site_infrared, split_photos, split_sites  # noqa: E402
from realistic_media import PHOTOS, SITES, Photo, cutout, default_media, view_frames  # noqa: E402

from jungle.demo.generate import write_clip  # noqa: E402

__all__ = ["GroupConfig", "GroupClip", "Animal", "usable_photos", "plan_groups", "animals_of", "render_group",
           "per_frame", "make_groups"]

FORMAT = "jungle-groups-bench-1"
MANIFEST = "collection.json"
_COLUMNS = ("filename", "relpath", "site", "event", "label", "animals", "maxn", "maxn_visible", "present", "visible",
            "occluder", "photos", "recorded")
#: Classes that come in groups in camera-trap footage (and have photographs in the realistic pool).
GROUP_CLASSES = ("chimpanzee", "human", "elephant", "cattle", "other (primate)", "large ungulate", "wild dog",
                 "bird", "gorilla", "other (non-primate)", "rodent")
VISIBLE = 0.35
#: Cut-outs showing more than one animal (a mother carrying its young): one "animal" would be two.
SEVERAL = ("camera_trap_images/chimpanzee_bonobo.jpeg",)
#: A matte covering more of its box than this is realistic_media's stand-in superellipse (GrabCut failed):
#: a rounded block of background, not an animal's outline.
MATTE_COVER = 0.8
#: The detector's score a cut-out needs, alone on a mid-grey 320x180 frame at 12% and at 25% of its width.
DETECTABLE = 0.5


class GroupConfig(CollectionConfig):
    """What a groups collection holds (frozen; its key names the collection).

    Attributes:
        seed: seed of every draw; the held-out photographs and sites are the realistic benchmark's
            for this seed.
        split: ``test`` (held-out photographs and sites) or ``dev`` (the others).
        clips: clips in the collection.
        blank: share of blank clips.
        animals: fewest and most animals in a clip.
        event_clips: fewest and most clips per event.
        duration, fps, width, height: every clip's length and frame size.
        animal_width: narrowest and widest animal of a group, as a fraction of the frame's width
            (log-uniform; each animal is 0.75-1.25x its group's size).
        occluded: share of clips with a trunk or grass in front of the animals.
        crf: x264 constant rate factor.
    """

    seed: int = 0
    split: Literal["dev", "test"] = "test"
    clips: int = Field(100, ge=1)
    blank: float = Field(0.1, ge=0, le=1)
    animals: tuple[int, int] = (1, 5)
    event_clips: tuple[int, int] = (1, 3)
    duration: float = Field(15.0, gt=0)
    fps: int = Field(8, ge=2)
    width: int = 320
    height: int = 180
    animal_width: tuple[float, float] = (0.1, 0.3)
    occluded: float = Field(0.25, ge=0, le=1)
    crf: int = 26


@dataclass(frozen=True)
class GroupClip:
    """One clip of the collection: where, when, what class, how many animals, and its seed."""

    filename: str
    site: str
    view: int
    event: str
    label: str
    animals: int
    photos: tuple[str, ...]
    occluder: str
    seed: int
    recorded: str          # ISO UTC time of its first frame

    @property
    def relpath(self) -> str:
        return f"clips/{self.site}/{self.filename}"


@dataclass(frozen=True)
class Animal:
    """One animal's path: its left/top pixel per frame (None before it enters or after it leaves),
    its size, depth (larger is nearer) and whether it is mirrored."""

    photo: str
    left: np.ndarray       # (frames,) float, NaN when off the clip
    top: np.ndarray
    w: int
    h: int
    depth: float
    flip: bool


# ----------------------------------------------------------------------------------------------- the plan
def alone_on_grey(rgb: np.ndarray, alpha: np.ndarray, width_frac: float, size=(320, 180)) -> np.ndarray:
    """A mid-grey frame with the cut-out in its middle, ``width_frac`` of the frame wide."""
    import cv2

    W, H = size
    w = max(4, int(W * width_frac))
    h = min(H - 4, max(4, int(w * alpha.shape[0] / alpha.shape[1])))
    art = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha.reshape(alpha.shape[:2]), (w, h), interpolation=cv2.INTER_AREA)[..., None]
    frame = np.full((H, W, 3), 110, np.float32)
    y0, x0 = (H - h) // 2, (W - w) // 2
    frame[y0:y0 + h, x0:x0 + w] = frame[y0:y0 + h, x0:x0 + w] * (1 - a) + art * a
    return np.clip(frame, 0, 255).astype(np.uint8)


def usable_photos(media: Path, cache: Path | None = None) -> set[str]:
    """Keys of the cut-outs a group may use: an animal boxed in a still or clip (not a whole
    photograph), matted by GrabCut (the matte covers at most :data:`MATTE_COVER` of its box), alone
    (not in :data:`SEVERAL`), and one MegadetectorLite finds alone on grey (:data:`DETECTABLE`)."""
    from jungle.features.models.detector import DetectorConfig, load_detector

    detector = load_detector(DetectorConfig(crop_bottom=0))
    keep = set()
    for photo in PHOTOS:
        if photo.box == Photo.box or photo.path in SEVERAL:
            continue
        rgb, alpha = cutout(photo, media, cache)
        if float(alpha.mean()) > MATTE_COVER:
            continue
        frames = np.stack([alone_on_grey(rgb, alpha, width) for width in (0.12, 0.25)])
        if float(detector.detect(frames).score.min()) >= DETECTABLE:
            keep.add(photo.key)
    return keep


def _sides(config: GroupConfig, infrared: dict[str, bool],
           usable: set[str]) -> tuple[dict[str, list[Photo]], list[str]]:
    """The classes' cut-outs and the sites of this split."""
    base = BenchConfig(seed=config.seed)
    side = "test" if config.split == "test" else "train"
    photo_side = split_photos(base)
    site_side = split_sites(base, infrared=infrared)
    photos = {c: [p for p in PHOTOS if p.label == c and photo_side[p.source] == side and p.key in usable]
              for c in GROUP_CLASSES}
    return {c: found for c, found in photos.items() if found}, sorted(s for s, x in site_side.items() if x == side)


def plan_groups(config: GroupConfig, infrared: dict[str, bool], usable: set[str]) -> list[GroupClip]:
    """Every clip of the collection, from the configuration, the sites' kind and the usable cut-outs."""
    photos, sites = _sides(config, infrared, usable)
    rng = np.random.default_rng([config.seed, 301 if config.split == "test" else 302])
    classes = sorted(photos)
    start = datetime(2016, 6, 1, 6, 0, 0)
    clips: list[GroupClip] = []
    while len(clips) < config.clips:
        site = sites[int(rng.integers(len(sites)))]
        views = next(s for s in SITES if s.name == site).views
        view = int(rng.integers(len(views)))
        blank = bool(rng.random() < config.blank)
        label = "blank" if blank else classes[int(rng.integers(len(classes)))]
        start += timedelta(hours=float(rng.uniform(2, 30)))
        event = sha256(f"{config.seed}/{config.split}/{start.isoformat()}".encode()).hexdigest()[:8]
        for k in range(int(rng.integers(config.event_clips[0], config.event_clips[1] + 1))):
            if len(clips) >= config.clips:
                break
            n = 0 if blank else int(rng.integers(config.animals[0], config.animals[1] + 1))
            chosen = tuple(photos[label][int(rng.integers(len(photos[label])))].key for _ in range(n)) if n else ()
            occluder = str(rng.choice(["trunk", "grass"])) if rng.random() < config.occluded else "none"
            name = sha256(f"{config.seed}/{config.split}/{len(clips)}".encode()).hexdigest()[:10] + ".mp4"
            recorded = start + timedelta(seconds=20 * k)
            clips.append(GroupClip(name, site, view, event, label, n, chosen, occluder, int(rng.integers(2**31)),
                                   recorded.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return clips


def animals_of(clip: GroupClip, config: GroupConfig, sizes: list[tuple[int, int]],
               rng: np.random.Generator) -> list[Animal]:
    """The animals' paths (``sizes``: each cut-out's (width, height) in pixels)."""
    W, H, T, fps = config.width, config.height, config.frames, config.fps
    lo, hi = np.log(config.animal_width[0]), np.log(config.animal_width[1])
    group_w = float(np.exp(rng.uniform(lo, hi))) * W
    depth0 = (np.log(group_w / W) - lo) / max(1e-6, hi - lo)
    group_feet = H * float(np.clip(0.55 + 0.4 * depth0, 0.5, 0.98))
    heading = int(rng.choice([-1, 1]))
    procession = bool(rng.random() < 0.2)      # one after another: fewer at once than in all
    out = []
    for number, (key, (cw, ch)) in enumerate(zip(clip.photos, sizes)):
        w = min(group_w * rng.uniform(0.75, 1.25), 0.45 * W)
        h = w * ch / cw
        if h > 0.8 * H:
            h, w = 0.8 * H, 0.8 * H * cw / ch
        w, h = max(4, int(round(w))), max(4, int(round(h)))
        depth = w / group_w + rng.uniform(-0.05, 0.05)
        feet = float(np.clip(group_feet + (depth - 1) * 0.5 * h + rng.uniform(-0.06, 0.06) * H, h * 0.9, 1.02 * H))
        direction = heading if rng.random() < 0.7 else -heading
        speed = rng.uniform(0.5, 1.4) * w / fps              # pixels per frame
        story = "procession" if procession else str(rng.choice(["cross", "cross", "arrive", "leave", "stay"]))
        x = np.full(T, np.nan)
        edge_in = -0.5 * w if direction > 0 else W + 0.5 * w     # centre just outside the entry edge
        if story == "procession":
            direction = heading
            edge_in = -0.5 * w if direction > 0 else W + 0.5 * w
            speed = rng.uniform(1.5, 3.0) * w / fps
            enter = min(T - 1, int(number * T / max(1, len(clip.photos))) + int(rng.integers(0, max(1, T // 10))))
            x[enter:] = edge_in + direction * speed * np.arange(T - enter)
        elif story == "cross":
            enter = int(rng.integers(0, int(0.6 * T)))
            x[enter:] = edge_in + direction * speed * np.arange(T - enter)
        elif story == "arrive":
            enter = int(rng.integers(0, int(0.5 * T)))
            stop = rng.uniform(0.15, 0.85) * W
            path = edge_in + direction * speed * np.arange(T - enter)
            x[enter:] = np.where(direction * (path - stop) > 0, stop, path)
        elif story == "leave":
            begin = rng.uniform(0.15, 0.85) * W
            go = int(rng.integers(int(0.2 * T), T))
            x[:] = begin
            x[go:] = begin + direction * speed * np.arange(T - go)
        else:
            x[:] = rng.uniform(0.15, 0.85) * W + direction * rng.uniform(0, 0.5) * w * np.linspace(0, 1, T)
        x += rng.uniform(0, 0.04) * w * np.sin(np.arange(T) * rng.uniform(0.3, 0.8) + rng.uniform(0, 6))
        off = (x + 0.5 * w < 0) | (x - 0.5 * w > W)
        x[off] = np.nan
        bob = rng.uniform(0, 0.03) * h * np.sin(rng.uniform(2, 4) * np.arange(T))
        out.append(Animal(key, x - w / 2, feet - h + bob, w, h, float(depth), direction < 0))
    return sorted(out, key=lambda a: a.depth)   # far first: drawn first


def _occluder(kind: str, W: int, H: int, rng: np.random.Generator) -> np.ndarray | None:
    """A (H, W) 0-1 mask in front of the animals: a trunk (a vertical band) or grass (the lower part)."""
    import cv2

    if kind == "none":
        return None
    mask = np.zeros((H, W), np.float32)
    if kind == "trunk":
        centre, half = rng.uniform(0.2, 0.8) * W, rng.uniform(0.03, 0.07) * W
        mask[:, max(0, int(centre - half)):min(W, int(centre + half))] = 1.0
    else:
        xs = np.arange(W, dtype=np.float32)
        line = H * rng.uniform(0.78, 0.9) + 4 * np.sin(xs / rng.uniform(3, 8)) + 3 * np.sin(xs / 1.7)
        mask = (np.arange(H, dtype=np.float32)[:, None] > line[None, :]).astype(np.float32)
    return cv2.GaussianBlur(mask, (0, 0), 0.8)


# ----------------------------------------------------------------------------------------------- rendering
def _placed(alpha: np.ndarray, left: float, top: float, W: int, H: int) -> tuple[np.ndarray, tuple] | None:
    """The part of ``alpha`` (h, w) inside the frame at (left, top), and the frame slices it covers."""
    h, w = alpha.shape[:2]
    x0, y0 = int(round(left)), int(round(top))
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    return alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0], (slice(fy0, fy1), slice(fx0, fx1), y0, x0)


def render_group(clip: GroupClip, config: GroupConfig, media: Path, cache: Path | None = None,
                 truth_out: list | None = None):
    """The frames of ``clip`` (RGB uint8 by day, grayscale at an infrared site); ``truth_out`` (a list)
    receives, per frame, each placed animal's (x1, y1, x2, y2) box of its part inside the frame
    (fractions), the share of its cut-out inside the frame, and the share not hidden."""
    import cv2

    W, H, T = config.width, config.height, config.frames
    rng = np.random.default_rng(clip.seed)
    site = next(s for s in SITES if s.name == clip.site)
    views, _ = view_frames(site.views[clip.view], media, W, H)
    night = bool(np.abs(views[0][..., 0] - views[0][..., 1]).mean() < 3.0)
    by_key = {p.key: p for p in PHOTOS}
    cutouts = [cutout(by_key[key], media, cache) for key in clip.photos]
    animals = animals_of(clip, config, [(a.shape[1], a.shape[0]) for _, a in cutouts], rng)
    art = {}
    for animal in animals:
        rgb, alpha = cutouts[clip.photos.index(animal.photo)]
        rgb = cv2.resize(rgb, (animal.w, animal.h), interpolation=cv2.INTER_AREA) * rng.uniform(0.75, 1.1)
        alpha = cv2.resize(alpha, (animal.w, animal.h), interpolation=cv2.INTER_AREA)
        if animal.flip:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        art[id(animal)] = (rgb, alpha.reshape(animal.h, animal.w))
    hidden = _occluder(clip.occluder, W, H, rng)
    sway = rng.uniform(0.5, 2.5)
    light = 1.0 + np.cumsum(rng.normal(0, 0.004, T))
    sigma = rng.uniform(1.5, 3.5)
    ys = np.arange(H, dtype=np.float32)
    upper = np.clip(1.2 - ys / (0.7 * H), 0, 1)
    noise_rng = np.random.default_rng([clip.seed, 1])
    truth = []
    for f in range(T):
        view = views[(f // 3) % len(views)]
        shift = (sway * upper * np.sin(0.7 * f + ys * 0.08)).astype(np.float32)
        xs = np.arange(W, dtype=np.float32)[None, :] + shift[:, None]
        frame = cv2.remap(view, xs, np.repeat(ys[:, None], W, 1), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cover = np.zeros((H, W), np.float32) if hidden is None else hidden.copy()
        placed = []
        for animal in animals:
            if np.isnan(animal.left[f]):
                continue
            rgb, alpha = art[id(animal)]
            where = _placed(alpha, animal.left[f], animal.top[f], W, H)
            if where is None:
                continue
            part, (rows, cols, y0, x0) = where
            a = part if hidden is None else part * (1 - hidden[rows, cols])
            frame[rows, cols] = frame[rows, cols] * (1 - a[..., None]) + \
                rgb[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0] * a[..., None]
            placed.append((animal, part, rows, cols))
        found = []
        for k, (animal, part, rows, cols) in enumerate(placed):   # visible share: nearer animals and the occluder
            front = cover.copy()
            for other, other_part, other_rows, other_cols in placed[k + 1:]:
                front[other_rows, other_cols] = np.maximum(front[other_rows, other_cols], other_part)
            whole = max(1e-6, float(art[id(animal)][1].sum()))
            seen = float((part * (1 - front[rows, cols])).sum())
            box = (cols.start / W, rows.start / H, cols.stop / W, rows.stop / H)
            found.append((box, float(part.sum()) / whole, seen / whole))
        truth.append(found)
        frame = frame * light[f] + noise_rng.normal(0, sigma, frame.shape).astype(np.float32)
        out = np.clip(frame, 0, 255).astype(np.uint8)
        yield cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) if night else out
    if truth_out is not None:
        truth_out.extend(truth)


def per_frame(truth: list, share: int) -> list[int]:
    """Animals per frame of a :func:`render_group` truth list: on screen (``share`` 1: 35% inside the
    frame) or visible (2: 35% inside and not hidden)."""
    return [sum(1 for animal in frame if animal[share] >= VISIBLE) for frame in truth]


# ----------------------------------------------------------------------------------------------- files
def _make(task: tuple) -> list[dict]:
    directory, clips, config, media = task
    cache = Path(directory) / "cutouts"
    rows = []
    for clip in clips:
        path = Path(directory) / clip.relpath
        truth: list = []
        frames = render_group(clip, config, Path(media), cache, truth)
        recorded = datetime.strptime(clip.recorded, "%Y-%m-%dT%H:%M:%SZ")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_clip(path, frames, config.width, config.height, config.fps, config.crf, X264, recorded=recorded)
        else:
            for _ in frames:    # the truth only
                pass
        stamp = (recorded - datetime(1970, 1, 1)).total_seconds()
        os.utime(path, (stamp, stamp))
        present, visible = per_frame(truth, 1), per_frame(truth, 2)
        row = {**asdict(clip), "relpath": clip.relpath, "maxn": max(present, default=0),
               "maxn_visible": max(visible, default=0), "present": "".join(str(min(v, 9)) for v in present),
               "visible": "".join(str(min(v, 9)) for v in visible), "photos": "|".join(clip.photos)}
        rows.append(row)
    return rows


def make_groups(directory: str | os.PathLike, config: GroupConfig | None = None, media: Path | None = None,
                workers: int = 2, log=None) -> dict:
    """Write (or complete) the collection in ``directory``; return its record (``collection.json``)."""
    config = config or GroupConfig()
    media = Path(media or default_media()).resolve()
    directory = Path(directory).resolve()
    say = log or (lambda _line: None)
    record_path = directory / MANIFEST
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("key") != config.key():
            raise ValueError(f"{directory} holds a collection with other settings; choose another folder")
        if record.get("status") == "complete":
            return record
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "key": config.key(), "config": config.model_dump(mode="json"), "status": "incomplete"}
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    infrared = site_infrared(BenchConfig(seed=config.seed), media)
    clips = plan_groups(config, infrared, usable_photos(media, directory / "cutouts"))
    tasks = [(str(directory), clips[i:i + 10], config, str(media)) for i in range(0, len(clips), 10)]
    if workers > 1 and len(tasks) > 1:
        from jungle.runtime import WorkerPool

        with WorkerPool(workers) as pool:
            rows = [r for f in [pool.submit(_make, t) for t in tasks] for r in f.result()]
    else:
        rows = [r for t in tasks for r in _make(t)]
    with open(directory / "clips.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, _COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    record.update(status="complete", clips=len(rows), seconds=round(time.perf_counter() - started, 1),
                  animals={str(n): sum(1 for r in rows if r["animals"] == n) for n in range(6)})
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    say(f"{len(rows)} clips in {record['seconds']} s")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--clips", type=int, default=GroupConfig().clips)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--media", type=Path, default=None)
    args = parser.parse_args()
    record = make_groups(args.directory, GroupConfig(seed=args.seed, split=args.split, clips=args.clips), args.media,
                         args.workers, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps({k: record[k] for k in ("clips", "seconds", "animals") if k in record}))


if __name__ == "__main__":
    main()
