"""Boxes as data: up to ``k`` boxes per sampled frame, each with its score and where it came from.

A box is (x, y, w, h) as fractions of the frame (x, y: top-left corner; 0-1 whatever the frame's
size), a score, and a source (:data:`SOURCES`):

- ``detector``: MegadetectorLite; the score is its confidence (>= its threshold, 0.25);
- ``motion``: a moving region (:mod:`jungle.features.video.motion`); the score is the region's
  moving area as a fraction of the frame.

:func:`merge_boxes` gives each frame the detector's boxes, best first, and the motion boxes
(largest first) only where the detector found nothing or did not look (a frame it was not run
on): the detector is the better judge of what an animal is, motion is what a static camera gives
for free. :class:`FrameBoxes` holds the result as arrays laid out like any other per-frame
feature (frames in slots, ``k`` boxes per frame), and :func:`long_rows` flattens them into the
rows of the ``boxes`` SQL table (one row per box).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SOURCES", "SOURCE_NAMES", "FrameBoxes", "merge_boxes", "xyxy_to_xywh", "long_rows"]

#: Box source codes as stored (``box_source``); 0 marks an empty box slot.
SOURCES: dict[str, int] = {"none": 0, "detector": 1, "motion": 2, "frame": 3}
SOURCE_NAMES: dict[int, str] = {code: name for name, code in SOURCES.items()}


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4+) x1, y1, x2, y2 -> (..., 4) x, y, w, h (same units; further columns dropped)."""
    boxes = np.asarray(boxes, np.float32)
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)


@dataclass
class FrameBoxes:
    """Boxes of ``n`` frames, ``k`` per frame, best first.

    Attributes:
        xywh: (n, k, 4) float32 x, y, w, h as fractions of the frame; NaN in empty slots.
        score: (n, k) float32; 0 in empty slots.
        source: (n, k) int8 :data:`SOURCES` code; 0 in empty slots.
        motion_area: (n,) float32 moving fraction of each frame (0 without motion analysis).
        detected: (n,) bool, True where the detector looked at the frame.
    """

    xywh: np.ndarray
    score: np.ndarray
    source: np.ndarray
    motion_area: np.ndarray
    detected: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    @property
    def k(self) -> int:
        return self.score.shape[1]

    @classmethod
    def empty(cls, n: int, k: int) -> "FrameBoxes":
        return cls(np.full((n, k, 4), np.nan, np.float32), np.zeros((n, k), np.float32), np.zeros((n, k), np.int8),
                   np.zeros(n, np.float32), np.zeros(n, bool))

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-frame arrays by name, as stored in the ``boxes`` frame-level set."""
        return {"box": self.xywh, "box_score": self.score, "box_source": self.source,
                "motion_area": self.motion_area, "detected": self.detected}

    def best(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xywh (n, 4), score (n,), source (n,)) of each frame's first box (empty slots as stored)."""
        return self.xywh[:, 0], self.score[:, 0], self.source[:, 0]


def merge_boxes(n: int, k: int, detections: list[np.ndarray] | None = None, detected: np.ndarray | None = None,
                motion: list[np.ndarray] | None = None, motion_area: np.ndarray | None = None) -> FrameBoxes:
    """Each frame's boxes: the detector's, else (nothing found, or not looked at) motion's.

    Args:
        n: frames.
        k: boxes kept per frame.
        detections: per frame looked at (in order of the True entries of ``detected``) a (j, 5)
            array of x1, y1, x2, y2 (fractions) and score, best first; None when the detector is off.
        detected: (n,) bool, the frames the detector looked at (default: all of them when
            ``detections`` is given).
        motion: per frame a (j, 5) array of x1, y1, x2, y2 and moving area, largest first; None: off.
        motion_area: (n,) moving fraction of each frame.

    Returns:
        :class:`FrameBoxes`.
    """
    out = FrameBoxes.empty(n, k)
    if detections is not None:
        out.detected = np.ones(n, bool) if detected is None else np.asarray(detected, bool).copy()
        if len(detections) != int(out.detected.sum()):
            raise ValueError(f"{len(detections)} detection lists for {int(out.detected.sum())} frames looked at")
    if motion_area is not None:
        out.motion_area = np.asarray(motion_area, np.float32).copy()
    found = iter(detections or [])
    for i in range(n):
        boxes, source = (next(found), SOURCES["detector"]) if out.detected[i] else (None, 0)
        if (boxes is None or not len(boxes)) and motion is not None and len(motion[i]):
            boxes, source = motion[i], SOURCES["motion"]
        if boxes is None or not len(boxes):
            continue
        boxes = np.asarray(boxes, np.float32)[:k]
        out.xywh[i, : len(boxes)] = xyxy_to_xywh(boxes)
        out.score[i, : len(boxes)] = boxes[:, 4]
        out.source[i, : len(boxes)] = source
    return out


def long_rows(video_ids, frame_index: np.ndarray, timestamps: np.ndarray, valid: np.ndarray, xywh: np.ndarray,
              score: np.ndarray, source: np.ndarray) -> dict[str, np.ndarray]:
    """One row per stored box of a block of videos: the columns of the ``boxes`` SQL table.

    Args:
        video_ids: (V,) video ids.
        frame_index, timestamps, valid: (V, F) per frame slot.
        xywh, score, source: (V, F, k) box arrays as in :class:`FrameBoxes`.

    Returns:
        Columns ``video_id``, ``frame_index``, ``timestamp``, ``rank`` (0 = best of its frame),
        ``source`` (name), ``score``, ``x``, ``y``, ``w``, ``h``, in (video, frame, rank) order.
    """
    present = (np.asarray(source) > 0) & np.asarray(valid, bool)[..., None]
    v, f, r = np.nonzero(present)
    names = np.array([SOURCE_NAMES[c] for c in range(max(SOURCE_NAMES) + 1)], dtype=object)
    boxes = np.asarray(xywh)[v, f, r]
    return {
        "video_id": np.asarray(video_ids, dtype=object)[v],
        "frame_index": np.asarray(frame_index)[v, f].astype(np.int32),
        "timestamp": np.asarray(timestamps)[v, f].astype(np.float32),
        "rank": r.astype(np.int8),
        "source": names[np.asarray(source)[v, f, r]],
        "score": np.asarray(score)[v, f, r].astype(np.float32),
        "x": boxes[:, 0], "y": boxes[:, 1], "w": boxes[:, 2], "h": boxes[:, 3],
    }
