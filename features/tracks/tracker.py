"""Tracks: the detector's boxes of a clip's consecutive sampled frames linked into one path per animal.

A small online tracker (SORT's idea without its Kalman filter), run over the frames in time order:

1. every track alive (seen at most ``max_gap`` frames ago) predicts its box at this frame from a
   constant velocity (the smoothed change of its box per frame, ``smoothing``), so an animal that
   walks keeps its track between sampled frames a quarter of a second apart;
2. each predicted box and each of the frame's boxes (score >= ``min_score``) are paired by the
   Hungarian method (:func:`scipy.optimize.linear_sum_assignment`) on the cost
   ``1 - IoU + centre_weight * d``, where ``d`` is the distance between the centres in units of the
   predicted box's width and height; a pair is allowed when its IoU is at least ``min_iou`` or
   ``d`` at most ``max_distance``;
3. a paired track takes the box; a box left over starts a new track.

A track is *confirmed* once it has ``min_hits`` boxes: a box the detector found on one frame only is
not an animal that was there. A track is *alive* from its first box to its last (the frames between
included: an animal hidden for a moment behind another, or missed by the detector, is still there).
A track whose boxes typically do not move (the median share of the box's pixels that differ from the
clip's background, :mod:`jungle.features.video.motion`, below ``min_moving``) is a still thing the
detector takes for an animal, a rock or a stump: it is kept, and not counted.

Boxes are (x1, y1, x2, y2) fractions of the frame; the tracker needs no pixels. The defaults were
chosen on the groups benchmark's development clips (``bench/counts.py``), never on its test clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from ...config import JungleConfig

__all__ = ["TrackerConfig", "Track", "iou_matrix", "track_clip"]


class TrackerConfig(JungleConfig):
    """How boxes become tracks (part of the counts' lineage).

    Attributes:
        min_score: boxes scoring less never start a track (0.25: the detector's usual threshold).
        extend_score: boxes scoring from this to ``min_score`` may only extend a track (equal: off).
        min_iou: smallest IoU between a track's predicted box and a box that may pair them.
        max_distance: largest centre distance (in the predicted box's widths and heights) that may
            pair them when their IoU is lower.
        centre_weight: weight of the centre distance in the pairing cost (beside ``1 - IoU``).
        max_gap: frames a track may go without a box and still take one (4 at 4 frames/s: one second).
        min_hits: boxes a track needs to count as an animal.
        contained: a box lying this much (share of its area) inside a better box of the same frame is
            taken for a part of the same animal and dropped (1: off).
        min_moving: a confirmed track whose boxes typically (the median) have less than this share of
            moving pixels is a still thing (a rock the detector takes for an animal): kept, not counted
            (0: off).
        smoothing: weight of the newest change of a track's box in its velocity (0: no prediction).
    """

    min_score: float = Field(0.25, ge=0.0, le=1.0)
    extend_score: float = Field(0.25, ge=0.0, le=1.0)
    min_iou: float = Field(0.1, ge=0.0, le=1.0)
    max_distance: float = Field(1.0, ge=0.0)
    centre_weight: float = Field(0.5, ge=0.0)
    max_gap: int = Field(4, ge=0)
    min_hits: int = Field(2, ge=1)
    min_moving: float = Field(0.02, ge=0.0, le=1.0)
    contained: float = Field(1.0, gt=0.0, le=1.0)
    smoothing: float = Field(0.5, ge=0.0, le=1.0)


@dataclass
class Track:
    """One animal's path: the positions (into the clip's sampled frames) where it had a box, the
    boxes (x1, y1, x2, y2 fractions) and their scores.

    Attributes:
        frames: positions of the frames with a box, increasing.
        boxes: (len(frames), 4) the boxes.
        scores: (len(frames),) their detector scores.
        detections: per frame, the index of the box in that frame's input list.
        moving: per frame, the share of the box's pixels that moved (NaN: unknown).
    """

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    detections: list[int] = field(default_factory=list)
    moving: list[float] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.scores))

    @property
    def typical_moving(self) -> float:
        """The median share of moving pixels in its boxes (NaN: unknown)."""
        known = [m for m in self.moving if np.isfinite(m)]
        return float(np.median(known)) if known else float("nan")

    def still(self, min_moving: float) -> bool:
        """True when its boxes typically have less than ``min_moving`` of their pixels moving (unknown: not still)."""
        return bool(min_moving > 0 and np.isfinite(self.typical_moving) and self.typical_moving < min_moving)

    def alive_at(self, frame: int) -> bool:
        return self.first <= frame <= self.last

    def predict(self, frame: int) -> np.ndarray:
        """The box expected at ``frame`` (its last box moved by the velocity, kept at least 1e-4 wide)."""
        box = self.boxes[-1] + self.velocity * (frame - self.last)
        centre = (box[:2] + box[2:]) / 2
        size = np.maximum(box[2:] - box[:2], 1e-4)
        return np.concatenate([centre - size / 2, centre + size / 2])

    def add(self, frame: int, box: np.ndarray, score: float, detection: int, smoothing: float,
            moving: float = float("nan")) -> None:
        if self.frames:
            step = (box - self.boxes[-1]) / max(1, frame - self.last)
            self.velocity = smoothing * step + (1 - smoothing) * self.velocity
        self.frames.append(frame)
        self.boxes.append(np.asarray(box, np.float64))
        self.scores.append(float(score))
        self.detections.append(detection)
        self.moving.append(float(moving))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two sets of x1, y1, x2, y2 boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _distance(predicted: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Centre distances, in units of each predicted box's width and height."""
    pc = (predicted[:, None, :2] + predicted[:, None, 2:]) / 2
    bc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    size = predicted[:, None, 2:] - predicted[:, None, :2]
    return np.sqrt((((bc - pc) / size) ** 2).sum(-1))


def _parts(found: np.ndarray, contained: float) -> np.ndarray:
    """Positions of the boxes (best first) that lie at least ``contained`` of their area inside a
    better box of the same frame."""
    if contained >= 1.0 or len(found) < 2:
        return np.zeros(0, np.int64)
    boxes = found[:, :4]
    x1 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-12)
    inside = inter / area[:, None]                    # [j, i]: share of box j inside box i
    better = found[None, :, 4] > found[:, None, 4]    # [j, i]: box i scores higher than box j
    return np.flatnonzero(((inside >= contained) & better).any(axis=1))


def _pair(tracks: list[Track], boxes: np.ndarray, frame: int, config: TrackerConfig) -> list[tuple[int, int]]:
    """(track, box) pairs of the least total cost among the allowed ones (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    if not tracks or not len(boxes):
        return []
    predicted = np.stack([track.predict(frame) for track in tracks])
    iou = iou_matrix(predicted, boxes)
    distance = _distance(predicted, boxes)
    allowed = (iou >= config.min_iou) | (distance <= config.max_distance)
    cost = np.where(allowed, 1 - iou + config.centre_weight * distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def track_clip(frames: list[np.ndarray], config: TrackerConfig | None = None) -> list[Track]:
    """The confirmed tracks of one clip.

    Boxes scoring at least ``min_score`` are paired with the alive tracks first; those scoring from
    ``extend_score`` to ``min_score`` then with the tracks left (ByteTrack's second look: a partly
    hidden animal scores lower), and never start a track.

    Args:
        frames: per sampled frame, in time order, a (k, 5) or (k, 6) array of x1, y1, x2, y2
            (fractions), score and, optionally, the share of the box's pixels that moved (k may be 0).
        config: the tracker's settings (default :class:`TrackerConfig`).

    Returns:
        The tracks with at least ``min_hits`` boxes, in order of their first frame.
    """
    config = config or TrackerConfig()
    tracks: list[Track] = []
    for t, found in enumerate(frames):
        found = np.asarray(found, np.float64)
        found = found if found.size else np.zeros((0, 5))
        moving = found[:, 5] if found.shape[1] > 5 else np.full(len(found), np.nan)
        usable = np.ones(len(found), bool)
        usable[_parts(found, config.contained)] = False
        waiting = [track for track in tracks if t - track.last <= config.max_gap + 1]
        high = np.flatnonzero(usable & (found[:, 4] >= config.min_score))
        low = np.flatnonzero(usable & (found[:, 4] >= min(config.extend_score, config.min_score))
                             & (found[:, 4] < config.min_score))
        started = []
        for chosen in (high, low):
            paired = _pair(waiting, found[chosen, :4], t, config)
            for r, c in paired:
                waiting[r].add(t, found[chosen[c], :4], found[chosen[c], 4], int(chosen[c]), config.smoothing,
                               moving[chosen[c]])
            matched = {r for r, _ in paired}
            if chosen is high:
                started = [int(chosen[c]) for c in sorted(set(range(len(chosen))) - {c for _, c in paired})]
            waiting = [track for r, track in enumerate(waiting) if r not in matched]
        for j in started:
            track = Track()
            track.add(t, found[j, :4], found[j, 4], j, config.smoothing, moving[j])
            tracks.append(track)
    return [track for track in tracks if len(track.frames) >= config.min_hits]
