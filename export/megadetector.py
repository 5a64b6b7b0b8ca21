"""``jungle export megadetector-json FILE``: MegadetectorLite detections and species probabilities in
the MegaDetector batch-output format (version 1.5), which Timelapse and MegaDetector's
post-processing tools read.

One entry per video (``file``: its path relative to the ingested folder; ``frame_rate``;
``frames_processed``: the display indices of the frames the detector scored) with its detections of
category ``1`` (animal): ``conf``, ``frame_number`` and ``bbox`` ([x, y, width, height] as fractions
of the whole frame, origin top left). Where ``jungle count`` has counted the clips, these are every
box the detector found on every frame it looked at (4 per second; a clip it skipped lists the frames
featurize's detector looked at, without boxes). Otherwise (or with ``--detections NAME``) they come
from a detector pass (``jungle featurize --detector``), which stores each frame's best box as its
centre and area, not its shape: the box is written as the square (in pixels) of that area around
that centre, and the detector's bottom crop is mapped back to the full frame. ``info.jungle`` says
which. The model's probabilities for the video
are the ``classifications`` of its highest-scoring detection (all classes, most probable first),
MegaDetector's convention for video-level classifiers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..config import JungleConfig
from ..errors import NotFoundError
from ..store import arrays, registry
from ..store.counts import read_counts, read_track_boxes
from ..store.db import connect
from ..store.registry import code_version
from ..store.rows import rows_with_status
from .files import check_file_target, json_text, record_path, record_text, write_files
from .source import load_export_data
from .validate import check_probabilities

__all__ = ["MegadetectorConfig", "MegadetectorResult", "export_megadetector", "NoDetections", "square_box",
           "FORMAT_VERSION"]

FORMAT_VERSION = "1.5"
DETECTOR_PREFIX = "yolox-tiny:"


class NoDetections(NotFoundError):
    """The workspace holds no complete detector feature set (or not the named one)."""


class MegadetectorConfig(JungleConfig):
    """What goes into the batch-output file.

    Attributes:
        model: saved model whose probabilities become ``classifications`` (``latest``, an id or a folder).
        detections: the detector's frame-level feature set (None: the newest complete one).
        min_conf: the lowest box score written.
        only_predicted: leave out videos without the model's predictions instead of refusing.
    """

    model: str = "current"
    detections: str | None = None
    min_conf: float = Field(0.0, ge=0.0, le=1.0)
    only_predicted: bool = False


class MegadetectorResult(BaseModel):
    out: str
    model_id: str
    detections_set: str
    videos: int
    detections: int

    def rows(self) -> tuple[list[str], list[tuple]]:
        return list(type(self).model_fields), [tuple(self.model_dump().values())]


def square_box(cx: float, cy: float, area: float, width: int, height: int, crop_bottom: int) -> list[float]:
    """[x, y, w, h] (fractions of the full frame) of the square, in pixels, of ``area`` (a fraction of
    the frame without its bottom ``crop_bottom`` pixels) centred at (cx, cy) (fractions of that frame)."""
    crop = min(crop_bottom, height // 2)
    kept = height - crop
    side = math.sqrt(max(area, 0.0) * width * kept)
    x0 = min(max(cx * width - side / 2, 0.0), width)
    x1 = min(max(cx * width + side / 2, 0.0), width)
    y0 = min(max(cy * kept - side / 2, 0.0), kept)
    y1 = min(max(cy * kept + side / 2, 0.0), kept)
    return [round(x0 / width, 6), round(y0 / height, 6), round((x1 - x0) / width, 6), round((y1 - y0) / height, 6)]


def _detector_set(con, name: str | None):
    sets = [s for s in registry.list_sets(con, "frames")
            if s.status == "complete" and (s.encoder or "").startswith(DETECTOR_PREFIX) and (name in (None, s.name))]
    if not sets:
        what = f'no complete detector feature set "{name}"' if name else "no complete detector feature set"
        raise NotFoundError(f"{what} in this workspace. Run `jungle featurize --detector megadetector-lite` "
                            "first (see `jungle features list`).")
    return max(sets, key=lambda s: (s.created_at, s.version))


def _frames(workspace, fs, wanted: set) -> dict[str, dict]:
    """video_id -> the arrays of its row in the detector set (only ``wanted`` videos)."""
    with connect(workspace, read_only=True) as con:
        rows = rows_with_status(con, fs, "done")
    rows = [(v, r) for v, r in rows if v in wanted]
    if not rows:
        return {}
    group = arrays.open_group(workspace, fs)
    index = np.array([r for _, r in rows])
    names = ("score", "box_area", "box_cx", "box_cy", "valid", "frame_index")
    data = {n: arrays.read_rows(group, n, index) for n in names}
    return {v: {n: data[n][k] for n in names} for k, (v, _) in enumerate(rows)}


def video_entry(video: dict, frames: dict | None, crop_bottom: int, min_conf: float,
                classifications: list | None) -> dict:
    """One ``images`` entry of the batch output."""
    entry = {"file": video["relpath"] or video["filename"], "frame_rate": float(video["fps"] or 0.0)}
    if frames is None:
        return {**entry, "frames_processed": [], "detections": None, "failure": "not processed by the detector"}
    valid = frames["valid"].astype(bool)
    entry["frames_processed"] = [int(i) for i in frames["frame_index"][valid]]
    detections = []
    for slot in np.flatnonzero(valid & (frames["score"] > 0) & (frames["score"] >= min_conf)):
        detections.append({"category": "1", "conf": round(float(frames["score"][slot]), 6),
                           "bbox": square_box(float(frames["box_cx"][slot]), float(frames["box_cy"][slot]),
                                              float(frames["box_area"][slot]), int(video["width"]),
                                              int(video["height"]), crop_bottom),
                           "frame_number": int(frames["frame_index"][slot])})
    if detections and classifications:
        best = max(range(len(detections)), key=lambda k: (detections[k]["conf"], -k))
        detections[best]["classifications"] = classifications
    return {**entry, "detections": detections}


def counted_entry(video: dict, count, boxes: list[dict], min_conf: float, classifications: list | None) -> dict:
    """One ``images`` entry from ``jungle count``'s boxes: every box of every frame it looked at."""
    entry = {"file": video["relpath"] or video["filename"], "frame_rate": float(video["fps"] or 0.0)}
    if count is None or count.status not in ("counted", "skipped"):
        return {**entry, "frames_processed": [], "detections": None, "failure": "not counted (jungle count)"}
    entry["frames_processed"] = [int(f) for f in count.frames]
    detections = [{"category": "1", "conf": round(float(b["score"]), 6),
                   "bbox": [round(float(b[k]), 6) for k in ("x", "y", "w", "h")], "frame_number": int(b["frame_index"])}
                  for b in boxes if b["score"] >= min_conf]
    if detections and classifications:
        best = max(range(len(detections)), key=lambda k: (detections[k]["conf"], -k))
        detections[best]["classifications"] = classifications
    return {**entry, "detections": detections}


def export_megadetector(workspace, out: Path, config: MegadetectorConfig | None = None) -> MegadetectorResult:
    """Write the MegaDetector batch-output JSON of the workspace's detections and the model's probabilities:
    ``jungle count``'s boxes on every frame it looked at when the clips were counted (and no detector set
    is named), else a detector pass's best box per frame."""
    config = config or MegadetectorConfig()
    out = check_file_target(out)
    data = load_export_data(workspace, config.model, config.only_predicted, labels_count=False)
    ids = [v["video_id"] for v in data.videos]
    with connect(workspace, read_only=True) as con:
        counts = {v: r for v, r in read_counts(con, ids).items() if r.status} if config.detections is None else {}
        fs = None if counts else _detector_set(con, config.detections)
        boxes = read_track_boxes(con, list(counts)) if counts else {}
    if fs is not None:
        crop_bottom = int((fs.config.get("model") or {}).get("crop_bottom", 0))
        frames = _frames(workspace, fs, set(ids))
    order = sorted(range(len(data.videos)), key=lambda i: (data.videos[i]["relpath"] or "", data.videos[i]["video_id"]))
    images = []
    for i in order:
        ranked = sorted(range(len(data.classes)), key=lambda j: (-data.probabilities[i, j], j))
        classifications = [[str(j), round(float(data.probabilities[i, j]), 6)] for j in ranked]
        video_id = data.videos[i]["video_id"]
        if fs is None:
            images.append(counted_entry(data.videos[i], counts.get(video_id), boxes.get(video_id, []), config.min_conf,
                                        classifications))
        else:
            images.append(video_entry(data.videos[i], frames.get(video_id), crop_bottom, config.min_conf,
                                      classifications))
    source = "jungle count (every frame it looked at, 4 per second)" if fs is None else f"{fs.encoder}, {fs.ref}"
    bbox = ("the detector's boxes as found, on the whole frame" if fs is None else
            "the square (in pixels) of the best box's area around its centre; a detector pass stores the best box "
            "per frame as centre and area, not its shape")
    document = {
        "info": {"format_version": FORMAT_VERSION, "detector": f"MegadetectorLite ({source})",
                 "classifier": f"jungle model {data.model_id}",
                 "detector_metadata": {"megadetector_version": "MegadetectorLite (zamba)",
                                       "typical_detection_threshold": 0.25},
                 "jungle": {"code_version": code_version(), "detections": "count" if fs is None else fs.ref,
                            "bbox": bbox,
                            "classifications": "video-level probabilities, on each video's best detection"}},
        "detection_categories": {"1": "animal"},
        "classification_categories": {str(j): c for j, c in enumerate(data.classes)},
        "images": images,
    }
    out = Path(out)
    check_probabilities(data.probabilities, str(out))
    detections_set = "count" if fs is None else fs.ref
    write_files({out: json_text(document, str(out)),
                 record_path(out): record_text(config, model=data.model_id, detections=detections_set,
                                               skipped_videos=data.skipped)})
    return MegadetectorResult(out=str(out), model_id=data.model_id, detections_set=detections_set, videos=len(images),
                              detections=sum(len(im["detections"] or []) for im in images))
