"""Video-level detection features (``det_<source>``): what the detector (and motion) saw in each clip.

The source is a frame-level set of detections, either

- a detector pass's set (``jungle featurize --detector``: ``megadetector_lite``, with the arrays
  ``score``, ``n_boxes``, ``box_area`` per frame), or
- a featurize run's ``boxes`` set (``box``, ``box_score``, ``box_source``, ``motion_area``): its
  detector boxes give the same three arrays (a frame's best detector box; 0 where the detector
  found nothing or did not look), and its motion areas add ``motion_*`` columns.

:func:`~jungle.features.models.detector.aggregate_detections` turns them into per-video columns
(``det_max``, ``det_mean``, ``det_frac_over_50``, ``det_longest_run``, ``det_first_s``, ...).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..models.detector import DETECTION_LEVELS, aggregate_detections
from ..video.boxes import SOURCES
from .inputs import FrameBlock

__all__ = ["DETECTION_ARRAYS", "source_kind", "detection_arrays", "detection_columns", "detection_column_names"]

#: The arrays read from a detections source, by kind of source (the first is the block's values).
DETECTION_ARRAYS: dict[str, tuple[str, ...]] = {
    "detector": ("score", "n_boxes", "box_area", "timestamps"),
    "boxes": ("box_score", "box", "box_source", "motion_area", "timestamps"),
}


def source_kind(group) -> str:
    """``boxes`` for a featurize run's boxes set, ``detector`` for a detector pass's set (by its arrays)."""
    return "boxes" if "box_source" in group and "motion_area" in group else "detector"


def detection_arrays(kind: str, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``score``, ``n_boxes`` and ``box_area`` (V, F) from the arrays of a ``detector`` or ``boxes`` source
    (plus ``motion_area`` for the latter)."""
    if kind == "detector":
        return {name: extras[name] for name in ("score", "n_boxes", "box_area")}
    detector = extras["box_source"] == SOURCES["detector"]                      # (V, F, k)
    best = detector[..., 0]
    box = extras["box"][..., 0, :]
    return {"score": np.where(best, extras["box_score"][..., 0], 0.0).astype(np.float32),
            "n_boxes": detector.sum(axis=-1).astype(np.int16),
            "box_area": np.where(best, np.nan_to_num(box[..., 2] * box[..., 3]), 0.0).astype(np.float32),
            "motion_area": extras["motion_area"]}


def detection_columns(kind: str, block: FrameBlock, threshold: float = 0.25,
                      levels: tuple[float, ...] = DETECTION_LEVELS) -> dict[str, np.ndarray]:
    """The video-level columns of one block of a detections source (``block.values`` holds the first array
    of :data:`DETECTION_ARRAYS`, ``block.extras`` the others)."""
    arrays = detection_arrays(kind, {DETECTION_ARRAYS[kind][0]: block.values, **block.extras})
    columns = aggregate_detections(arrays, block.valid, block.extras["timestamps"], threshold=threshold,
                                   levels=levels)
    if "motion_area" in arrays:  # NaN for a video without a valid frame, as the score columns
        area = np.where(block.valid, arrays["motion_area"], np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            columns["motion_mean"] = np.nanmean(area, axis=1).astype(np.float32)
            columns["motion_max"] = np.nanmax(area, axis=1).astype(np.float32)
            columns["motion_frac"] = np.nanmean(np.where(block.valid, area > 0, np.nan), axis=1).astype(np.float32)
    return columns


def detection_column_names(kind: str, threshold: float = 0.25,
                           levels: tuple[float, ...] = DETECTION_LEVELS) -> list[str]:
    """The columns :func:`detection_columns` makes for this kind of source, in order (from one empty frame)."""
    arrays = {"detector": {"score": np.zeros((1, 1), np.float32), "n_boxes": np.zeros((1, 1), np.int16),
                           "box_area": np.zeros((1, 1), np.float32)},
              "boxes": {"box_score": np.zeros((1, 1, 1), np.float32), "box": np.zeros((1, 1, 1, 4), np.float32),
                        "box_source": np.zeros((1, 1, 1), np.int8), "motion_area": np.zeros((1, 1), np.float32)}}
    first, *rest = DETECTION_ARRAYS[kind]
    extras = {name: arrays[kind][name] for name in rest if name != "timestamps"}
    block = FrameBlock(np.array(["-"], dtype=object), np.zeros(1, np.int64), arrays[kind][first],
                       np.ones((1, 1), bool), {**extras, "timestamps": np.zeros((1, 1), np.float32)})
    return list(detection_columns(kind, block, threshold, levels))
