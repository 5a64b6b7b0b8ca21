"""Which animal each track is: the frame head's probabilities for the crops, matched to the tracks.

featurize cuts crops around the boxes of a few frames of each clip (``crops_<encoder>``, each with
its box and frame), and ``jungle aggregate`` gives every crop class probabilities out of fold (the
frame head on the crops: ``frameprobs_crops_<encoder>``). A track takes the mean probabilities of
the crops whose box, on the same frame, overlaps one of its boxes (IoU >= ``min_iou``); a track no
crop falls on takes the mean of all the clip's crops. Its class is the most probable one other than
``blank``. Per class, MaxN and tracks are then counted over that class's tracks alone
(``clip_class_counts``); without crop probabilities there are no per-class counts, only the
clip's overall ones.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ...store import arrays, registry
from ...store.counts import read_track_boxes, read_track_spans, write_track_classes
from ...store.db import connect, transaction
from ...store.rows import rows_with_status
from .counting import class_counts
from .tracker import iou_matrix

__all__ = ["PROBS_PREFIX", "crop_probabilities_set", "track_classes", "assign_classes"]

PROBS_PREFIX = "frameprobs_crops_"


def crop_probabilities_set(con):
    """The newest complete frame-head set over crops (None: there is none)."""
    sets = [s for s in registry.list_sets(con, "frames") if s.status == "complete" and s.name.startswith(PROBS_PREFIX)]
    return max(sets, key=lambda s: (str(s.created_at), s.version)) if sets else None


def track_classes(track_ids: list[int], boxes: list[dict], crop_frames: np.ndarray, crop_boxes: np.ndarray,
                  probs: np.ndarray, classes: list[str], min_iou: float = 0.3) -> dict[int, tuple[str, float]]:
    """Per track its class and that class's mean probability.

    Args:
        track_ids: the clip's tracks.
        boxes: the clip's track boxes (frame_index, track_id, x, y, w, h; track_id None: no track).
        crop_frames: (c,) display index of each valid crop's frame.
        crop_boxes: (c, 4) x, y, w, h of each valid crop's box.
        probs: (c, C) each crop's probabilities.
        classes: the C class names.
    """
    usable = [j for j, name in enumerate(classes) if name != "blank"]
    if not len(probs) or not usable or not track_ids:
        return {}
    matched: dict[int, list[int]] = {}
    for c, (frame, box) in enumerate(zip(crop_frames, crop_boxes)):
        here = [b for b in boxes if b["frame_index"] == frame and b["track_id"] is not None]
        if not here or not np.isfinite(box).all():
            continue
        theirs = np.array([[b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"]] for b in here])
        overlap = iou_matrix(np.array([[box[0], box[1], box[0] + box[2], box[1] + box[3]]]), theirs)[0]
        if overlap.max() >= min_iou:
            matched.setdefault(here[int(overlap.argmax())]["track_id"], []).append(c)
    clip_mean = probs.mean(axis=0)
    out = {}
    for track in track_ids:
        mean = probs[matched[track]].mean(axis=0) if track in matched else clip_mean
        best = usable[int(np.argmax(mean[usable]))]
        out[track] = (classes[best], float(mean[best]))
    return out


def assign_classes(workspace) -> str | None:
    """Give every counted clip's tracks a class and write the per-class counts, from the newest
    frame-head set over crops; return that set's ref (None: there is none, nothing is written)."""
    with connect(workspace, read_only=True) as con:
        probs_fs = crop_probabilities_set(con)
        if probs_fs is None:
            return None
        group = arrays.open_group(workspace, probs_fs)
        classes = list(group.attrs.get("classes", []))
        source = registry.FeatureRef.parse(str(group.attrs.get("source", "")))
        crops_fs = registry.get(con, source.name, source.version)
        rows = dict(rows_with_status(con, crops_fs, "done"))
        clips = read_track_spans(con)
        wanted = [v for v in clips if v in rows]
        boxes = read_track_boxes(con, wanted)
    if not wanted:
        return probs_fs.ref
    crops = arrays.open_group(workspace, crops_fs)
    index = np.asarray([rows[v] for v in wanted], np.int64)
    read = {"probs": arrays.read_rows(group, "probs", index).astype(np.float32),
            "valid": arrays.read_rows(group, "valid", index).astype(bool),
            "box": arrays.read_rows(crops, "box", index), "frame_index": arrays.read_rows(crops, "frame_index", index)}
    named, counted = [], []
    for i, video_id in enumerate(wanted):
        valid = read["valid"][i]
        ids = [t for t, _, _ in clips[video_id]]
        found = track_classes(ids, boxes.get(video_id, []), read["frame_index"][i][valid], read["box"][i][valid],
                              read["probs"][i][valid], classes)
        if not found:
            continue
        named += [{"video_id": video_id, "track_id": t, "class": c, "class_probability": p}
                  for t, (c, p) in found.items()]
        first = [f for _, f, _ in clips[video_id]]
        last = [e for _, _, e in clips[video_id]]
        per_class = class_counts(first, last, [found[t][0] for t in ids])
        counted += [{"video_id": video_id, "class": c, "maxn": n, "tracks": k} for c, (n, k) in per_class.items()]
    schema = {"video_id": pl.String, "track_id": pl.Int32, "class": pl.String, "class_probability": pl.Float64}
    with connect(workspace) as con, transaction(con):
        write_track_classes(con, pl.DataFrame(named, schema=schema),
                            pl.DataFrame(counted, schema={"video_id": pl.String, "class": pl.String,
                                                          "maxn": pl.Int32, "tracks": pl.Int32}))
    return probs_fs.ref
