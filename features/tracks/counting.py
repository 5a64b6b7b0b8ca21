"""Counts from tracks: how many animals a clip shows, and the two ways of counting from single frames.

- **MaxN** (:func:`alive_counts`): the most tracks alive at once. A track is alive from its first box
  to its last, so an animal hidden for a few frames behind another (or missed by the detector)
  still counts while the others are seen; a track that ends before another starts is not a second
  animal at once. This is the count of ecology's MaxN: the most individuals seen together.
- **tracks**: distinct tracks in the clip (an animal that leaves and comes back, or whose track
  breaks, counts twice: an upper bound).
- Two single-frame baselines, kept beside them: ``best_frame_boxes``, the boxes on the frame with
  the best single box (what AddaxAI counts for a video), and ``max_frame_boxes``, the most boxes on
  any frame.

The best frame (:func:`best_frame`) is the frame where MaxN is reached and most of those tracks have
a box, the surest such frame first: its boxes, and the box around all of them, are what an export
shows for the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tracker import Track

__all__ = ["ClipCount", "alive_counts", "best_frame", "count_clip", "class_counts", "max_overlap", "union_box"]


@dataclass(frozen=True)
class ClipCount:
    """What one clip's tracks and boxes say about how many animals it shows.

    Attributes:
        maxn: most tracks alive at once.
        tracks: distinct tracks.
        best_frame: position (into the sampled frames) of the frame shown for the count; None when
            there is no track.
        best_box: (4,) x, y, w, h fractions around the boxes of the best frame's tracks (None: no track).
        best_frame_boxes: boxes on the frame with the best single box (AddaxAI's count).
        max_frame_boxes: the most boxes on any frame.
    """

    maxn: int
    tracks: int
    best_frame: int | None
    best_box: tuple[float, float, float, float] | None
    best_frame_boxes: int
    max_frame_boxes: int


def alive_counts(tracks: list[Track], n_frames: int) -> np.ndarray:
    """(n_frames,) the number of tracks alive at each frame."""
    alive = np.zeros(n_frames + 1, np.int64)
    for track in tracks:
        alive[track.first] += 1
        alive[track.last + 1] -= 1
    return np.cumsum(alive)[:n_frames]


def union_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    """x, y, w, h of the box around (k, 4) x1, y1, x2, y2 boxes (fractions, clipped to the frame)."""
    boxes = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0.0, 1.0)
    x1, y1 = boxes[:, 0].min(), boxes[:, 1].min()
    x2, y2 = boxes[:, 2].max(), boxes[:, 3].max()
    return float(x1), float(y1), float(x2 - x1), float(y2 - y1)


def best_frame(tracks: list[Track], n_frames: int) -> tuple[int | None, list[tuple[int, int]]]:
    """The frame shown for the count and, for it, (track number, box number within the track) of
    every track with a box there: among the frames where the most tracks are alive, the one where
    most of them have a box, then the highest summed score, then the earliest."""
    if not tracks:
        return None, []
    alive = alive_counts(tracks, n_frames)
    where: dict[int, list[tuple[int, int]]] = {}
    for number, track in enumerate(tracks):
        for k, frame in enumerate(track.frames):
            where.setdefault(frame, []).append((number, k))
    best = max((t for t in range(n_frames) if alive[t] == alive.max()),
               key=lambda t: (len(where.get(t, [])),
                              sum(tracks[n].scores[k] for n, k in where.get(t, [])), -t))
    return best, where.get(best, [])


def count_clip(frames: list[np.ndarray], tracks: list[Track], min_score: float) -> ClipCount:
    """MaxN, tracks, the best frame and the single-frame baselines of one clip.

    Args:
        frames: per sampled frame a (k, 5+) array of x1, y1, x2, y2 and score (the tracker's input).
        tracks: the clip's confirmed tracks (:func:`~.tracker.track_clip`).
        min_score: the score a box needs to count in the single-frame baselines.
    """
    n = len(frames)
    boxes = [np.asarray(f, np.float64) if np.size(f) else np.zeros((0, 5)) for f in frames]
    kept = [b[b[:, 4] >= min_score] for b in boxes]
    per_frame = np.array([len(f) for f in kept], np.int64)
    top = np.array([f[:, 4].max() if len(f) else -1.0 for f in kept])
    best_single = int(np.argmax(top)) if n else 0
    frame, members = best_frame(tracks, n)
    box = union_box(np.stack([tracks[t].boxes[k] for t, k in members])) if members else None
    return ClipCount(maxn=int(alive_counts(tracks, n).max(initial=0)), tracks=len(tracks), best_frame=frame,
                     best_box=box, best_frame_boxes=int(per_frame[best_single]) if n and top.max() >= 0 else 0,
                     max_frame_boxes=int(per_frame.max(initial=0)))


def max_overlap(first, last) -> int:
    """The most intervals [first, last] (inclusive) that share a point."""
    events = sorted([(int(f), 0) for f in first] + [(int(e), 1) for e in last])  # at a tie, starts first
    alive = most = 0
    for _, end in events:
        alive += -1 if end else 1
        most = max(most, alive)
    return most


def class_counts(first, last, classes) -> dict:
    """Per class (one per track), (MaxN, tracks) of that class's tracks alone; tracks given by their
    first and last frames."""
    out = {}
    for name in dict.fromkeys(classes):
        members = [k for k, c in enumerate(classes) if c == name]
        out[name] = (max_overlap([first[k] for k in members], [last[k] for k in members]), len(members))
    return out
