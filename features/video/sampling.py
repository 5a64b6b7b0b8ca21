"""Frame sampling strategies: which frames of a video go through the encoders.

Every strategy is a frozen pydantic configuration registered under a name, parsed from the CLI
string ``NAME:ARG[,key=value...]`` and printed back the same way by :meth:`Sampling.spec`:

- ``uniform:N``: N evenly spaced frames over the whole clip.
- ``fps:F``: F frames per second (``fps:3,seconds=15``: the 3rd place's 45 frames of a 15 s clip).
- ``indices:2,8,12,18`` (or ``[2, 8, 12, 18]``): explicit frame indices; ``winner1`` is the
  1st place's ``[2, 8, 12, 18] + [24 + 12*i for i in range(28)]``, 32 in all.
- ``motion:N``: the N frames with the most change from the previous frame (animals are on screen
  1-2 s of 15), spread out so that one burst does not take every slot.

A strategy has a fixed number of frame ``slots`` (the arrays' frame axis). A clip with fewer
frames than asked gives what it has: the frames it has fill the first slots and the validity mask
says which slots hold data; nothing is padded with zeros and presented as data.

To add a strategy (e.g. ``detector:N``), subclass :class:`Sampling`, give it a ``kind`` literal and
``from_arg``/``slots``/``choose``, and decorate it with :func:`register_sampling`. ``choose`` runs in
the decode worker processes; one that needs a model may keep a per-process cache.
"""

from __future__ import annotations

import importlib
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Callable, ClassVar, Literal

import numpy as np
from pydantic import Field

from ...config import JungleConfig
from .decode import Frames, VideoIndex, index_video, iter_frames, read_frames

__all__ = [
    "Sampling",
    "Uniform",
    "Fps",
    "Indices",
    "Motion",
    "SAMPLINGS",
    "register_sampling",
    "sampling_class",
    "positive_int",
    "spread_indices",
    "parse_sampling",
    "WINNER1_INDICES",
    "SampledFrames",
    "sample_frames",
    "lay_out",
]

#: The 1st place's frames of a 24 fps, 15 s clip: 32 in all.
WINNER1_INDICES: tuple[int, ...] = (2, 8, 12, 18) + tuple(24 + 12 * i for i in range(28))

SAMPLINGS: dict[str, type["Sampling"]] = {}
_ALIASES: dict[str, str] = {"winner1": "indices:" + ",".join(map(str, WINNER1_INDICES))}


#: Strategies defined in modules that sampling must not import (they import sampling): the module
#: is imported the first time its kind is asked for, and registers itself with
#: :func:`register_sampling` (the detector's ``detector:N`` needs the detector model).
_LAZY_KINDS: dict[str, str] = {"detector": "jungle.features.models.detector"}


def register_sampling(cls: type["Sampling"]) -> type["Sampling"]:
    """Class decorator: make ``cls`` parseable under its ``kind``."""
    kind = cls.model_fields["kind"].default
    SAMPLINGS[kind] = cls
    return cls


def sampling_class(kind: str) -> type["Sampling"] | None:
    """The strategy registered under ``kind`` (importing its module on first use), or None."""
    if kind not in SAMPLINGS and kind in _LAZY_KINDS:
        importlib.import_module(_LAZY_KINDS[kind])
    return SAMPLINGS.get(kind)


class Sampling(JungleConfig):
    """Base of the sampling strategies (frozen, unknown keys forbidden)."""

    kind: str

    #: strategies whose choice needs decoded pixels (not only the index) set this.
    needs_pixels: ClassVar[bool] = False

    @classmethod
    def from_arg(cls, arg: str, options: dict[str, str]) -> "Sampling":  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def slots(self) -> int:
        """The number of frame slots (the arrays' frame axis)."""
        raise NotImplementedError

    def choose(self, index: VideoIndex) -> np.ndarray:
        """Sorted unique display indices to decode for the video described by ``index``."""
        raise NotImplementedError

    def spec(self) -> str:
        """The CLI string that parses back to this configuration."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.spec()


def positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, not {text!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be at least 1, not {value}")
    return value


def spread_indices(n_frames: int, count: int) -> np.ndarray:
    """``count`` evenly spaced indices over ``n_frames`` frames (all of them when fewer)."""
    if n_frames <= count:
        return np.arange(n_frames, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n_frames - 1, count)).astype(np.int64))


@register_sampling
class Uniform(Sampling):
    """N evenly spaced frames, first and last included."""

    kind: Literal["uniform"] = "uniform"
    n: int = Field(ge=1)

    @classmethod
    def from_arg(cls, arg, options):
        return cls(n=positive_int(arg, "uniform:N frame count"), **options)

    @property
    def slots(self) -> int:
        return self.n

    def choose(self, index):
        return spread_indices(index.n_frames, self.n)

    def spec(self):
        return f"uniform:{self.n}"


@register_sampling
class Fps(Sampling):
    """F frames per second from the start, up to ``seconds`` seconds (F x seconds slots)."""

    kind: Literal["fps"] = "fps"
    fps: float = Field(gt=0)
    seconds: float = Field(default=15.0, gt=0)

    @classmethod
    def from_arg(cls, arg, options):
        try:
            fps = float(arg)
        except ValueError:
            raise ValueError(f"fps:F needs a number of frames per second, not {arg!r}") from None
        return cls(fps=fps, **{k: float(v) for k, v in options.items()})

    @property
    def slots(self) -> int:
        return max(1, math.ceil(self.fps * self.seconds - 1e-9))

    def choose(self, index):
        source_fps = index.fps or 1.0
        times = np.arange(self.slots) / self.fps
        chosen = np.round(times * source_fps).astype(np.int64)
        return np.unique(chosen[chosen < index.n_frames])

    def spec(self):
        extra = "" if self.seconds == 15.0 else f",seconds={self.seconds:g}"
        return f"fps:{self.fps:g}{extra}"


@register_sampling
class Indices(Sampling):
    """Explicit display indices; those past a clip's end are absent (invalid slots)."""

    kind: Literal["indices"] = "indices"
    indices: tuple[int, ...]

    @classmethod
    def from_arg(cls, arg, options):
        if options:
            raise ValueError(f"indices takes no options, got {sorted(options)}")
        parts = [p for p in re.split(r"[\s,\[\]]+", arg) if p]
        if not parts:
            raise ValueError("indices: needs at least one frame index, e.g. indices:2,8,12")
        values = []
        for part in parts:
            value = int(part) if part.lstrip("-").isdigit() else None
            if value is None or value < 0:
                raise ValueError(f"frame index {part!r} is not a whole number >= 0")
            values.append(value)
        if len(set(values)) != len(values):
            raise ValueError("frame indices repeat")
        return cls(indices=tuple(sorted(values)))

    @property
    def slots(self) -> int:
        return len(self.indices)

    def choose(self, index):
        chosen = np.asarray(self.indices, dtype=np.int64)
        return chosen[chosen < index.n_frames]

    def spec(self):
        if self.indices == WINNER1_INDICES:
            return "winner1"
        return "indices:" + ",".join(map(str, self.indices))


@register_sampling
class Motion(Sampling):
    """The N frames that changed most (see :func:`motion_scores`).

    Every frame is decoded once as a small grayscale thumbnail (cheap) and scored; the N best are
    picked greedily at least ``n_frames/(2N)`` frames apart (then filled from the rest if needed),
    and only those are decoded again at full size. Ties go to the earlier frame.
    """

    kind: Literal["motion"] = "motion"
    n: int = Field(ge=1)
    score_size: tuple[int, int] = (64, 36)

    needs_pixels: ClassVar[bool] = True

    @classmethod
    def from_arg(cls, arg, options):
        if options:
            raise ValueError(f"motion takes no options, got {sorted(options)}")
        return cls(n=positive_int(arg, "motion:N frame count"))

    @property
    def slots(self) -> int:
        return self.n

    def choose(self, index):
        scores = motion_scores(index.path, self.score_size, fps=index.fps)
        return pick_spread(scores, self.n)

    def spec(self):
        return f"motion:{self.n}"


def motion_scores(path, size: tuple[int, int] = (64, 36), lag: int | None = None, fps: float = 0.0) -> np.ndarray:
    """How much each frame changed: the mean of its top 1% absolute grayscale differences to the frame
    ``lag`` frames earlier (default a quarter second), on a small thumbnail. Frames before ``lag`` score 0.

    A local statistic (top 1% of pixels) finds a small animal moving where a whole-frame mean sees only
    sensor noise; the lag lets slow movement add up. Memory holds ``lag`` thumbnails.
    """
    lag = lag or max(1, round(fps / 4))
    ring: deque = deque(maxlen=lag)
    scores = []
    for _, _, gray in iter_frames(path, size, fmt="gray"):
        current = gray.astype(np.int16).ravel()
        if len(ring) == lag:
            diff = np.abs(current - ring[0])
            top = max(1, diff.size // 100)
            scores.append(float(np.partition(diff, diff.size - top)[-top:].mean()))
        else:
            scores.append(0.0)
        ring.append(current)
    return np.asarray(scores, dtype=np.float64)


def pick_spread(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` highest scores, greedily kept ``len/(2*count)`` apart, sorted."""
    n = len(scores)
    if n <= count:
        return np.arange(n, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    gap = max(1, n // (2 * count))
    taken: list[int] = []
    for i in order:
        if all(abs(int(i) - j) >= gap for j in taken):
            taken.append(int(i))
            if len(taken) == count:
                break
    for i in order:  # fill up when spacing left too few
        if len(taken) == count:
            break
        if int(i) not in taken:
            taken.append(int(i))
    return np.sort(np.asarray(taken, dtype=np.int64))


def parse_sampling(text: str) -> Sampling:
    """Parse ``NAME:ARG[,key=value...]`` (or an alias such as ``winner1``) into a strategy.

    Raises:
        ValueError: unknown strategy or bad argument; the message lists what is accepted.
    """
    text = _ALIASES.get(text.strip(), text.strip())
    if text.startswith("["):
        text = "indices:" + text
    kind, _, rest = text.partition(":")
    cls = sampling_class(kind)
    if cls is None:
        known = ", ".join(sorted([f"{k}:…" for k in {**SAMPLINGS, **_LAZY_KINDS}] + list(_ALIASES)))
        raise ValueError(f"unknown frame sampling {text!r}. Use one of: {known}")
    if cls is Indices:
        return cls.from_arg(rest, {})
    arg, *pairs = [p.strip() for p in rest.split(",")] if rest else [""]
    options = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValueError(f"option {pair!r} in {text!r} is not key=value")
        options[key] = value
    try:
        return cls.from_arg(arg, options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad frame sampling {text!r}: {exc}") from None


@dataclass
class SampledFrames:
    """Frames chosen by a strategy, laid out in its slots.

    Attributes:
        frames: the decoded frames (valid ones only, sorted by index).
        valid: (slots,) bool, True for the first ``len(frames)`` slots.
        frame_index: (slots,) int32 display index per slot, -1 where invalid.
        timestamps: (slots,) float32 seconds per slot, NaN where invalid.
        n_frames: frames in the video.
    """

    frames: Frames
    valid: np.ndarray
    frame_index: np.ndarray
    timestamps: np.ndarray
    n_frames: int

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


def sample_frames(
    path,
    sampling: Sampling,
    size: tuple[int, int] | None = None,
    *,
    index: VideoIndex | None = None,
    reader: Callable[..., Frames] = read_frames,
) -> SampledFrames:
    """Choose the frames of one video with ``sampling`` and decode them into slots.

    Raises:
        VideoReadError: the file cannot be read at all.
    """
    index = index or index_video(path)
    chosen = sampling.choose(index)[: sampling.slots]
    return lay_out(reader(path, chosen, size, index=index), chosen, sampling.slots, index)


def lay_out(frames: Frames, chosen: np.ndarray, slots: int, index: VideoIndex) -> SampledFrames:
    """The ``chosen`` frames among decoded ``frames`` (which may hold others too), in ``slots`` slots:
    the ones found fill the first slots, in index order."""
    keep = np.flatnonzero(np.isin(frames.indices, chosen))
    if len(keep) != len(frames):
        frames = Frames(frames.images[keep], frames.indices[keep], frames.timestamps[keep], frames.n_frames,
                        frames.method, frames.warning, frames.runs, tuple(extra[keep] for extra in frames.also))
    k = len(frames)
    valid = np.zeros(slots, dtype=bool)
    valid[:k] = True
    frame_index = np.full(slots, -1, dtype=np.int32)
    frame_index[:k] = frames.indices
    timestamps = np.full(slots, np.nan, dtype=np.float32)
    timestamps[:k] = frames.timestamps
    return SampledFrames(frames, valid, frame_index, timestamps, frames.n_frames or index.n_frames)
