"""Which clips to count and on which frames, and one clip's boxes on those frames.

**Which clips** (:func:`plan_clips`): the featurize run's ``boxes`` set says where something is. A
clip is counted when the detector found a box on one of its looked-at frames (or, when that run's
detector was off, when motion found one); the others are recorded as skipped with the reason. A
workspace without a complete ``boxes`` set counts every clip. ``select="all"`` counts every clip.

**Which frames**: ``fps`` frames per second over the whole clip (4: 60 frames of a 15 s clip, a
quarter of a second apart, so that an animal moves little between two of them), at most
``max_seconds`` of it.

**One clip's boxes** (:func:`decode_clip` in a worker, :func:`detect_clip` with the detector): the
frames are decoded at the size the detector's input fits (never enlarged), the bottom ``bottom`` of
each frame (a camera's information bar; 7% is zamba's 50 px of a 720 px frame) is cut off, and the
boxes are mapped back to fractions of the whole frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...store import arrays, registry
from ...store.rows import rows_with_status
from ..video.boxes import SOURCES
from ..video.decode import VideoReadError, index_video, read_frames
from ..video.motion import MotionConfig, gray_thumbnails, moving_pixels
from ..video.sampling import Fps

__all__ = ["ClipPlan", "plan_clips", "DecodedClip", "decode_clip", "detect_clip", "fit_size", "moving_masks",
           "moving_share"]

BOXES_SET = "boxes"


@dataclass(frozen=True)
class ClipPlan:
    """One clip to count, or why not (``skip``), and the frames featurize's detector looked at (``looked``)."""

    video_id: str
    path: str
    skip: str | None = None
    looked: tuple[int, ...] = ()


def plan_clips(con, workspace, videos: list[tuple[str, str]], select: str) -> tuple[list[ClipPlan], str | None]:
    """The plan of every clip in ``videos`` ((video_id, path)) and the ``boxes`` set used (its ref, or None)."""
    fs = registry.latest(con, BOXES_SET)
    if fs is None:
        return [ClipPlan(v, p) for v, p in videos], None
    rows = dict(rows_with_status(con, fs, "done"))
    known = [(v, p, rows[v]) for v, p in videos if v in rows]
    group = arrays.open_group(workspace, fs)
    detector_on = (fs.config.get("model") or fs.config).get("detector") is not None
    wanted = np.asarray([r for _, _, r in known], np.int64)
    names = ("frame_index", "valid", "box_source", "detected")
    read = {name: arrays.read_rows(group, name, wanted) for name in names} if len(wanted) else {}
    plans = []
    for i, (video_id, path, _) in enumerate(known):
        valid = read["valid"][i].astype(bool)
        sources = read["box_source"][i][valid]
        found = (sources == SOURCES["detector"]).any() if detector_on else (sources > 0).any()
        skip = None
        if select == "boxes" and not found:
            skip = "no detector box on the looked-at frames" if detector_on else "no motion box"
        looked = tuple(int(f) for f in read["frame_index"][i][valid & read["detected"][i].astype(bool)])
        plans.append(ClipPlan(video_id, path, skip, looked))
    plans += [ClipPlan(v, p) for v, p in videos if v not in rows]
    return plans, fs.ref


@dataclass
class DecodedClip:
    """A clip's frames for the detector, or its error.

    Attributes:
        images: (n, H, W, 3) uint8 the frames (None: error).
        frame_index, timestamps: (n,) of each frame.
        moving: (n, h, w) uint8 thumbnails, 1 where the frame differs from the clip's background
            (:func:`jungle.features.video.motion.moving_pixels`); None: too few frames for a background.
    """

    images: np.ndarray | None
    frame_index: np.ndarray
    timestamps: np.ndarray
    error: str | None = None
    seconds: float = 0.0
    moving: np.ndarray | None = None


def moving_masks(images: np.ndarray, config: MotionConfig | None = None) -> np.ndarray | None:
    """(n, h, w) uint8 moving pixels of each frame against the clip's background (the median of its
    thumbnails), as featurize's motion boxes see them; None with fewer than ``min_frames`` frames."""
    config = config or MotionConfig()
    if len(images) < config.min_frames:
        return None
    gray = gray_thumbnails(images, config.analysis_width)
    background = np.median(gray, axis=0)
    return np.stack([moving_pixels(frame, background, config) for frame in gray])


def moving_share(mask: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(k,) the share of each box's pixels (x1, y1, x2, y2 fractions) that are 1 in ``mask``."""
    height, width = mask.shape
    out = np.zeros(len(boxes))
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)[:, :4]):
        left, right = int(np.floor(x1 * width)), int(np.ceil(x2 * width))
        top, bottom = int(np.floor(y1 * height)), int(np.ceil(y2 * height))
        region = mask[max(0, top):max(top + 1, bottom), max(0, left):max(left + 1, right)]
        out[i] = float(region.mean()) if region.size else 0.0
    return out


def fit_size(width: int, height: int, box: tuple[int, int]) -> tuple[int, int] | None:
    """(width, height) that fits ``box`` keeping the aspect, or None when the frame already fits."""
    scale = min(box[0] / width, box[1] / height)
    if scale >= 1:
        return None
    return max(2, round(width * scale)), max(2, round(height * scale))


def decode_clip(path: str, fps: float, max_seconds: float, box: tuple[int, int]) -> DecodedClip:
    """The clip's frames, ``fps`` per second over at most ``max_seconds``, at a size that fits ``box``
    (the detector's input); an unreadable file is an error, never an exception (a worker task)."""
    started = time.perf_counter()
    try:
        index = index_video(path)
        seconds = min(max(index.duration, 1.0 / fps), max_seconds)
        wanted = Fps(fps=fps, seconds=seconds).choose(index)
        decoded = read_frames(path, wanted, fit_size(index.width, index.height, box), index=index, threads=1)
    except VideoReadError as exc:
        return DecodedClip(None, np.zeros(0, np.int32), np.zeros(0), str(exc), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
        return DecodedClip(None, np.zeros(0, np.int32), np.zeros(0),
                           f"cannot read video {path}: {type(exc).__name__}: {exc}. Check the file with `ffprobe`.",
                           time.perf_counter() - started)
    if not len(decoded.indices):
        return DecodedClip(None, np.zeros(0, np.int32), np.zeros(0), f"cannot read video {path}: no frame decoded",
                           time.perf_counter() - started)
    moving = moving_masks(decoded.images)
    return DecodedClip(decoded.images, decoded.indices.astype(np.int32), decoded.timestamps.astype(np.float64),
                       None, time.perf_counter() - started, moving)


def detect_clip(detector, images: np.ndarray, bottom: float, moving: np.ndarray | None = None) -> list[np.ndarray]:
    """Per frame the detector's boxes, best first, on the frames without their bottom ``bottom``
    share: (k, 6) x1, y1, x2, y2 (fractions of the whole frame), score, and the share of the box's
    pixels that moved (``moving``: the clip's :func:`moving_masks`; NaN without)."""
    height = images.shape[1]
    cut = int(round(bottom * height))
    kept = height - cut
    found = detector.detect(np.ascontiguousarray(images[:, :kept]) if cut else images).boxes
    scale = np.array([1.0, kept / height, 1.0, kept / height, 1.0])
    out = []
    for i, boxes in enumerate(found):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 5)[:, :5] * scale
        share = moving_share(moving[i], boxes) if moving is not None else np.full(len(boxes), np.nan)
        out.append(np.column_stack([boxes, share]))
    return out
