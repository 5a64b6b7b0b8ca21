"""The plan of a demo collection: cameras, and for every clip its split, file name, camera,
species, day or night, length and seed. Pure data from a :class:`DemoConfig`; nothing is drawn.

Class counts follow the configured frequencies: blank keeps its share, the species share the
rest in proportion, and no species gets fewer than ``min_per_class`` training clips (the test
split has no floor, like the real test set). Species are spread unevenly over cameras
(``site_affinity``), as real species are over sites, so folds grouped by site matter. File names
are random 10-character names, drawn from their own random stream, so they say nothing about
the labels.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from .config import REAL_RESOLUTIONS, DemoConfig
from .scenes import CameraSpec
from .species import LOOKS

__all__ = ["ClipPlan", "CollectionPlan", "allocate_counts", "plan_collection"]

_NAME_CHARS = np.array(list(string.ascii_letters + string.digits))


_JUNE_2016 = 1464739200  # 2016-06-01 00:00 UTC


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make."""

    index: int
    split: str                   # 'train' | 'test'
    filename: str                # base name, unique in the collection
    camera: CameraSpec
    species: tuple[str, ...]     # empty for a blank clip
    night: bool
    frames: int
    seed: int

    @property
    def labels(self) -> tuple[str, ...]:
        """The clip's positive classes."""
        return self.species or ("blank",)

    @property
    def relpath(self) -> str:
        """Where the clip lives under the collection directory: ``split/camera/filename``."""
        return f"{self.split}/{self.camera.name}/{self.filename}"

    @property
    def recorded_at(self) -> float:
        """When the camera "recorded" the clip (POSIX seconds, UTC), drawn from the clip's seed: a day
        of June-July 2016 and a time of day that agrees with ``night`` (20:00-05:00, else
        06:00-18:00). The generator writes it into the clip (the MP4's ``creation_time``, and the
        information bar on cameras that draw one) and gives the file this modification time, as
        cameras' SD cards do, so that ingest's time features (hour, gaps between a camera's clips)
        are the same on every run."""
        rng = np.random.default_rng([self.seed, 7])
        hour = (20 + rng.uniform(0, 9)) % 24 if self.night else 6 + rng.uniform(0, 12)
        return float(_JUNE_2016 + int(rng.integers(0, 61)) * 86400 + hour * 3600)

    @property
    def recorded(self) -> datetime:
        """:attr:`recorded_at` to the second, as a naive UTC date-time: the time in the clip's metadata
        and information bar (the demo's cameras keep UTC)."""
        return datetime(1970, 1, 1) + timedelta(seconds=int(self.recorded_at))


@dataclass(frozen=True)
class CollectionPlan:
    """All cameras and clips of a collection."""

    config: DemoConfig
    cameras: tuple[CameraSpec, ...]
    clips: tuple[ClipPlan, ...]

    def split(self, name: str) -> tuple[ClipPlan, ...]:
        return tuple(c for c in self.clips if c.split == name)


def allocate_counts(n: int, frequencies: dict[str, float], min_per_class: int) -> dict[str, int]:
    """Split ``n`` clips over classes: blank keeps its share, species share the rest in proportion
    with a floor of ``min_per_class`` each, rounded by largest remainder (so counts sum to ``n``).

    Args:
        n: Number of clips.
        frequencies: Relative weight of every class, ``'blank'`` included.
        min_per_class: Fewest clips of every species.

    Returns:
        Clips per class, in the order of ``frequencies``.

    Raises:
        ValueError: ``n`` cannot hold ``min_per_class`` clips of every species.
    """
    species = [c for c in frequencies if c != "blank"]
    if min_per_class * len(species) > n:
        raise ValueError(f"{n} clips cannot hold {min_per_class} of each of {len(species)} species")
    total = sum(frequencies.values())
    blank = int(round(n * frequencies["blank"] / total))
    blank = min(blank, n - min_per_class * len(species))
    rest = n - blank
    floored: set[str] = set()
    while True:  # classes whose share falls under the floor get the floor; the rest share what is left
        free = [c for c in species if c not in floored]
        budget = rest - min_per_class * len(floored)
        weight = sum(frequencies[c] for c in free)
        shares = {c: budget * frequencies[c] / weight for c in free} if free else {}
        low = {c for c, s in shares.items() if s < min_per_class}
        if not low:
            break
        floored |= low
    counts = {c: int(np.floor(s)) for c, s in shares.items()}
    leftover = budget - sum(counts.values())
    for c in sorted(shares, key=lambda c: (-(shares[c] - counts[c]), species.index(c)))[:leftover]:
        counts[c] += 1
    counts.update({c: min_per_class for c in floored})
    counts["blank"] = blank + (leftover if not shares else 0)
    return {c: counts[c] for c in frequencies}


def _even(size: float) -> int:
    """The nearest even number of pixels (H.264 4:2:0 needs even sizes), at least 16."""
    return max(16, 2 * int(round(size / 2)))


def _cameras(config: DemoConfig) -> tuple[CameraSpec, ...]:
    rng = np.random.default_rng([config.seed, 0])
    offset = int(rng.integers(len(REAL_RESOLUTIONS)))
    cameras = []
    for i in range(config.n_cameras):
        w, h = REAL_RESOLUTIONS[(i + offset) % len(REAL_RESOLUTIONS)]
        cameras.append(CameraSpec(f"cam{i + 1:02d}", _even(w * config.scale), _even(h * config.scale),
                                  int(rng.integers(2**31))))
    return tuple(cameras)


def _names(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, 2])
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = "".join(rng.choice(_NAME_CHARS, 10)) + ".mp4"
        if name.lower() not in seen:  # unique even on case-insensitive file systems
            seen.add(name.lower())
            names.append(name)
    return names


def plan_collection(config: DemoConfig) -> CollectionPlan:
    """Plan every clip of the collection described by ``config`` (deterministic)."""
    freq = dict(config.frequencies)
    cameras = _cameras(config)
    rng = np.random.default_rng([config.seed, 1])
    classes = list(freq)
    affinity = np.exp(config.site_affinity * rng.normal(0, 1, (len(classes), len(cameras))))
    site_p = affinity / affinity.sum(axis=1, keepdims=True)
    species_names = [c for c in classes if c != "blank"]
    species_w = np.array([freq[c] for c in species_names])
    names = _names(config.n_train + config.n_test, config.seed)
    clips: list[ClipPlan] = []
    for split, n, floor in (("train", config.n_train, config.min_per_class), ("test", config.n_test, 0)):
        counts = allocate_counts(n, freq, floor)
        primaries = [c for c in classes for _ in range(counts[c])]
        for primary in (primaries[i] for i in rng.permutation(len(primaries))):
            species: tuple[str, ...] = ()
            if primary != "blank":
                species = (primary,)
                if rng.random() < config.multi_label_fraction:
                    others = [i for i, c in enumerate(species_names) if c != primary]
                    p = species_w[others] / species_w[others].sum()
                    species += (species_names[others[rng.choice(len(others), p=p)]],)
            camera = cameras[rng.choice(len(cameras), p=site_p[classes.index(primary)])]
            night_p = LOOKS[primary].night if species else config.night_fraction
            night = bool(rng.random() < night_p)
            frames = config.frames
            if rng.random() < config.short_clip_fraction:
                frames = int(rng.integers(min(frames, max(2, frames // 4)), frames + 1))
            index = len(clips)
            clips.append(ClipPlan(index, split, names[index], camera, species, night, frames,
                                  int(rng.integers(2**62))))
    return CollectionPlan(config, cameras, tuple(clips))
