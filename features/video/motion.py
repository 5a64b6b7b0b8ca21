"""Motion boxes: where the pixels of a static camera's clip move, from its sampled frames alone.

A camera trap does not move, so what differs from the clip's typical frame is what moved. For the
decoded frames of one clip (:func:`motion_boxes`):

1. each frame becomes a small grayscale image (``analysis_width`` pixels wide, keeping the aspect);
2. the background is the per-pixel median of those images over the clip's frames (an animal on
   screen for less than half of them is not part of it);
3. a frame's difference from the background, less its own median difference (a global light
   change or the camera's exposure stepping moves every pixel alike and is not motion), is
   blurred (Gaussian, ``blur`` pixels) and thresholded (``threshold``, on 0-255 grey levels);
4. the moving pixels are dilated (so that the legs and body of one animal join) and split into
   connected regions; regions smaller than ``min_area`` of the frame are dropped, and the largest
   ``max_boxes`` become boxes around their moving pixels, scored by their moving area as a fraction
   of the frame.

Pure NumPy/OpenCV on arrays, a few milliseconds per clip: it runs in the decode workers.
With fewer than ``min_frames`` frames there is no background to compare with, and no box.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ...config import JungleConfig

__all__ = ["MotionConfig", "MotionResult", "motion_boxes", "moving_pixels", "gray_thumbnails"]


class MotionConfig(JungleConfig):
    """How motion boxes are found (part of the boxes' and crops' lineage).

    Attributes:
        analysis_width: width in pixels of the grayscale images compared (the height keeps the aspect).
        blur: Gaussian blur kernel side in pixels of the analysis image (odd; 1: none).
        threshold: grey-level difference from the background (0-255) that counts as moving.
        dilate: dilation kernel side in pixels of the analysis image (joins the parts of one animal).
        min_area: smallest moving region kept, as a fraction of the frame.
        max_boxes: regions kept per frame, largest first.
        min_frames: frames a clip needs for a background (fewer: no motion boxes).
    """

    analysis_width: int = Field(256, ge=32, le=2048)
    blur: int = Field(5, ge=1, le=31)
    threshold: float = Field(20.0, gt=0, lt=255)
    dilate: int = Field(5, ge=1, le=31)
    min_area: float = Field(2e-4, ge=0, lt=1)
    max_boxes: int = Field(3, ge=1, le=16)
    min_frames: int = Field(4, ge=3)

    def lineage(self) -> dict:
        return self.model_dump()


class MotionResult:
    """Motion boxes of ``n`` frames.

    Attributes:
        boxes: per frame a (k, 5) float32 array: x1, y1, x2, y2 as fractions of the frame and the
            region's moving area as a fraction of the frame, largest first (k may be 0).
        area: (n,) float32 moving fraction of each frame (all regions kept or not; 0 without a background).
    """

    __slots__ = ("boxes", "area")

    def __init__(self, boxes: list[np.ndarray], area: np.ndarray):
        self.boxes, self.area = boxes, area

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, n: int) -> "MotionResult":
        return cls([np.zeros((0, 5), np.float32) for _ in range(n)], np.zeros(n, np.float32))


def gray_thumbnails(frames: np.ndarray, width: int) -> np.ndarray:
    """(n, h, w) uint8 grayscale images ``width`` pixels wide (never enlarged) of (n, H, W, 3) RGB frames."""
    import cv2

    n, height, frame_width = frames.shape[:3]
    width = min(width, frame_width)
    size = (width, max(1, round(height * width / frame_width)))
    out = np.empty((n, size[1], size[0]), np.uint8)
    for i, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        out[i] = gray if size == (frame_width, height) else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return out


def moving_pixels(gray: np.ndarray, background: np.ndarray, config: MotionConfig) -> np.ndarray:
    """(h, w) uint8, 1 where a grayscale thumbnail differs from the clip's background (steps 3 of
    the module docstring: difference less its own median, blurred, thresholded)."""
    import cv2

    difference = gray.astype(np.float32) - background
    difference = np.abs(difference - np.median(difference))
    if config.blur > 1:
        side = config.blur | 1
        difference = cv2.GaussianBlur(difference, (side, side), 0)
    return (difference > config.threshold).astype(np.uint8)


def motion_boxes(frames: np.ndarray, config: MotionConfig | None = None) -> MotionResult:
    """Motion boxes of the frames of one clip (see the module docstring).

    Args:
        frames: (n, H, W, 3) uint8 RGB frames of one clip, in time order (any size).
        config: thresholds and sizes (default :class:`MotionConfig`).

    Returns:
        A :class:`MotionResult` with one entry per frame.
    """
    import cv2

    config = config or MotionConfig()
    n = len(frames)
    if n < config.min_frames:
        return MotionResult.empty(n)
    gray = gray_thumbnails(frames, config.analysis_width)
    background = np.median(gray, axis=0)
    height, width = gray.shape[1:]
    pixels = float(height * width)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (config.dilate, config.dilate))
    boxes, area = [], np.zeros(n, np.float32)
    for i in range(n):
        moving = moving_pixels(gray[i], background, config)
        area[i] = moving.sum() / pixels
        if not area[i]:
            boxes.append(np.zeros((0, 5), np.float32))
            continue
        joined = cv2.dilate(moving, kernel) if config.dilate > 1 else moving
        count, labels = cv2.connectedComponents(joined, connectivity=8)
        moved = np.bincount(labels.ravel(), weights=moving.ravel(), minlength=count) / pixels  # not the dilation
        kept = [label for label in np.argsort(-moved[1:], kind="stable") + 1 if moved[label] >= config.min_area
                and moved[label] > 0][: config.max_boxes]
        found = []
        for label in kept:  # the box of the region's moving pixels (the dilation only joined them)
            ys, xs = np.nonzero((labels == label) & (moving > 0))
            found.append((xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height,
                          moved[label]))
        boxes.append(np.asarray(found, np.float32).reshape(-1, 5))
    return MotionResult(boxes, area)
