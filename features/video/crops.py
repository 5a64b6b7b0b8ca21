"""Crops: which boxes of a clip to look at closely, and the square of pixels around each.

The encoders see a whole frame squeezed into 224 px, where a far animal is a few pixels. A crop
gives them the animal at the frame's decoded resolution instead:

- :func:`choose_crops` picks up to ``n`` boxes of a clip (:class:`~jungle.features.video.boxes.FrameBoxes`):
  first the best box of each frame, detector boxes by score, then motion boxes by moving area
  (ties: the earlier frame); when fewer than ``n`` frames have a box, further boxes of the same
  frames (an animal's companions) in the same order. The chosen crops are put in time order.
  A clip with no box at all gets ``n`` evenly spread whole frames instead, marked with the
  source ``frame``, so that it still has features, and says so.
- :func:`crop_rect` grows a box by ``margin`` (0.25: 25% larger in width and height), makes it
  square (the side is the larger of the two) and at least ``min_side`` pixels, and moves it
  inside the frame when it crosses an edge (keeping its size); a square larger than the frame's
  height (or width) is cut to it, and is then squeezed like a whole frame when resized.
- :func:`extract_crops` cuts the rectangles out of the frames and resizes them to the encoder's
  input (area interpolation when shrinking, bilinear when enlarging).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from ...config import JungleConfig
from .boxes import SOURCES, FrameBoxes
from .sampling import spread_indices

__all__ = ["CropConfig", "CropChoice", "choose_crops", "crop_rect", "extract_crops"]


class CropConfig(JungleConfig):
    """How crops are chosen and cut (part of the crop feature sets' lineage).

    Attributes:
        n: crops per clip (the crop set's slots).
        margin: growth of each box before cropping (0.25: 25% wider and taller).
        square: make crops square (the larger side), as the encoders' inputs are.
        min_side: smallest crop side in pixels of the decoded frame.
    """

    n: int = Field(8, ge=1, le=64)
    margin: float = Field(0.25, ge=0, le=4)
    square: bool = True
    min_side: int = Field(32, ge=4)

    def lineage(self) -> dict:
        return self.model_dump()


@dataclass
class CropChoice:
    """The crops of one clip, in ``n`` slots (the first ``count`` hold a crop, in time order).

    Attributes:
        slot: (n,) int32 frame slot each crop is cut from (-1: empty).
        box: (n, 4) float32 x, y, w, h of the box (fractions of the frame; the whole frame for
            source ``frame``; NaN in empty slots).
        score: (n,) float32 the box's score (0 for ``frame``).
        source: (n,) int8 :data:`~jungle.features.video.boxes.SOURCES` code (0 in empty slots).
    """

    slot: np.ndarray
    box: np.ndarray
    score: np.ndarray
    source: np.ndarray

    @property
    def count(self) -> int:
        return int((self.slot >= 0).sum())

    @property
    def whole_frames(self) -> bool:
        """The clip had no box: its crops are whole frames (source ``frame``)."""
        return bool(self.count) and bool((self.source[: self.count] == SOURCES["frame"]).all())


def _ranked(boxes: FrameBoxes, valid: np.ndarray, rank: int) -> list[tuple[int, int]]:
    """(frame, rank) of the frames' ``rank``-th boxes, detector boxes by score, then motion by area."""
    source, score = boxes.source[:, rank], boxes.score[:, rank]
    frames = np.flatnonzero(valid & (source > 0))
    detector = frames[source[frames] == SOURCES["detector"]]
    others = frames[source[frames] != SOURCES["detector"]]
    order = [detector[np.lexsort((detector, -score[detector]))], others[np.lexsort((others, -score[others]))]]
    return [(int(f), rank) for part in order for f in part]


def choose_crops(boxes: FrameBoxes, valid: np.ndarray, n: int) -> CropChoice:
    """Up to ``n`` boxes of one clip to crop (see the module docstring).

    Args:
        boxes: the clip's boxes, one row per frame slot.
        valid: (F,) bool, the slots that hold a frame.
        n: crops wanted.
    """
    valid = np.asarray(valid, bool)
    picked: list[tuple[int, int]] = []
    for rank in range(boxes.k):
        picked += _ranked(boxes, valid, rank)[: n - len(picked)]
        if len(picked) >= n:
            break
    choice = CropChoice(np.full(n, -1, np.int32), np.full((n, 4), np.nan, np.float32), np.zeros(n, np.float32),
                        np.zeros(n, np.int8))
    if not picked:  # nothing detected, nothing moved: whole frames, said so by their source
        frames = np.flatnonzero(valid)
        for position, i in enumerate(frames[spread_indices(len(frames), n)]):
            choice.slot[position], choice.box[position] = i, (0.0, 0.0, 1.0, 1.0)
            choice.source[position] = SOURCES["frame"]
        return choice
    for position, (frame, rank) in enumerate(sorted(picked)):
        choice.slot[position] = frame
        choice.box[position] = boxes.xywh[frame, rank]
        choice.score[position] = boxes.score[frame, rank]
        choice.source[position] = boxes.source[frame, rank]
    return choice


def crop_rect(box: np.ndarray, width: int, height: int, margin: float = 0.25, square: bool = True,
              min_side: int = 32) -> tuple[int, int, int, int]:
    """The pixel rectangle (x0, y0, x1, y1), x1/y1 exclusive, to cut around ``box`` in a ``width`` x
    ``height`` frame (see the module docstring).

    Args:
        box: x, y, w, h as fractions of the frame.
        width, height: the frame's size in pixels.
        margin: growth of the box (0.25: 25% wider and taller).
        square: make the rectangle square (its side is the larger one).
        min_side: smallest side in pixels.
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = (x + w / 2) * width, (y + h / 2) * height
    side_x, side_y = w * width * (1 + margin), h * height * (1 + margin)
    if square:
        side_x = side_y = max(side_x, side_y)
    side_x = min(max(side_x, min_side), width)
    side_y = min(max(side_y, min_side), height)
    span_x, span_y = max(1, int(round(side_x))), max(1, int(round(side_y)))
    x0 = int(round(min(max(cx - side_x / 2, 0.0), width - span_x)))
    y0 = int(round(min(max(cy - side_y / 2, 0.0), height - span_y)))
    return x0, y0, x0 + span_x, y0 + span_y


def extract_crops(frames: np.ndarray, choice: CropChoice, size: int,
                  config: CropConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut and resize the chosen crops.

    Args:
        frames: (F, H, W, 3) uint8 the clip's decoded frames, one per slot (the valid ones first).
        choice: what to cut (:func:`choose_crops`).
        size: side of the square outputs (the encoder's input).
        config: margin, squareness and smallest side.

    Returns:
        (images (count, size, size, 3) uint8 in slot order, rects (n, 4) float32 x, y, w, h of each
        rectangle cut, as fractions of the frame; NaN in empty slots).
    """
    import cv2

    height, width = frames.shape[1:3]
    images = np.empty((choice.count, size, size, 3), np.uint8)
    rects = np.full((len(choice.slot), 4), np.nan, np.float32)
    for position in range(choice.count):
        x0, y0, x1, y1 = crop_rect(choice.box[position], width, height, config.margin, config.square,
                                   config.min_side)
        piece = frames[choice.slot[position], y0:y1, x0:x1]
        shrink = piece.shape[0] > size or piece.shape[1] > size
        images[position] = cv2.resize(np.ascontiguousarray(piece), (size, size),
                                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        rects[position] = (x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)
    return images, rects
