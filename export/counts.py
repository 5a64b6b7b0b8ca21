"""How many animals each exported observation shows, and where (``jungle count``'s results in the exports).

A clip's count (:func:`jungle.store.counts.read_counts`) is a person's where the review page has one,
else ``jungle count``'s MaxN (the most tracks alive at once). An observation of a media file gets:

- ``count``: the MaxN of the observed class's tracks when the tracks have classes (the frame head's
  crop probabilities, ``class_counts``); else the clip's count when it is the clip's only animal
  observation; else none (how many of each class is not known). A person's count is the clip's, so it
  is used when the clip has one animal observation. A count of 0 is written as none (Camtrap DP counts
  start at 1: the detector saw no animal the model names, so the number is unknown).
- ``bboxX``, ``bboxY``, ``bboxWidth``, ``bboxHeight``: the box around the animals of the frame shown
  for the count (the frame where MaxN is reached, fractions of the frame, top-left origin, as Camtrap
  DP defines them), when the observation is the clip's only animal observation.

An event's observation of a class counts the largest count of that class over its clips (the same
animals filmed by consecutive clips are not counted twice).
"""

from __future__ import annotations

from ..store.counts import ClipCountRow, read_counts
from ..store.db import connect

__all__ = ["COUNTED_TYPES", "clip_counts", "observation_count", "observation_box", "with_counts", "event_counts"]

#: Observation types that carry a count.
COUNTED_TYPES = ("animal", "human")


def clip_counts(workspace, video_ids) -> dict[str, ClipCountRow]:
    """Per clip (of ``video_ids``) its count row; clips never counted are absent."""
    with connect(workspace, read_only=True) as con:
        return read_counts(con, video_ids)


def observation_count(row: ClipCountRow | None, label: str, alone: bool) -> int | None:
    """The ``count`` of an observation of class ``label`` in a clip (``alone``: the clip's only
    animal observation); None when unknown (see the module docstring)."""
    if row is None:
        return None
    if row.human is not None and alone:
        count = row.human
    elif label in row.classes:
        count = row.classes[label]
    elif alone:
        count = row.maxn
    else:
        count = None
    return int(count) if count else None


def observation_box(row: ClipCountRow | None, alone: bool) -> dict:
    """``bboxX``... of a media observation (empty when not the clip's only animal observation or no box)."""
    if row is None or row.bbox is None or not alone:
        return {}
    x, y, w, h = (min(max(float(v), 0.0), 1.0) for v in row.bbox)
    w, h = min(max(w, 1e-6), 1.0 - x) or 1e-6, min(max(h, 1e-6), 1.0 - y) or 1e-6
    return {"bboxX": round(x, 6), "bboxY": round(y, 6), "bboxWidth": round(w, 6), "bboxHeight": round(h, 6)}


def with_counts(rows: list[dict], labels: list[str | None], row: ClipCountRow | None) -> list[dict]:
    """The observations of one media file (``rows``; ``labels``: the class of each, None for a row that
    is not a class) with their counts and boxes."""
    counted = [i for i, r in enumerate(rows) if r.get("observationType") in COUNTED_TYPES and labels[i]]
    alone = len(counted) == 1
    out = [dict(r) for r in rows]
    for i in counted:
        out[i]["count"] = observation_count(row, labels[i], alone)
        out[i].update(observation_box(row, alone))
    return out


def event_counts(events: list[dict], media: list[dict]) -> list[dict]:
    """Event observations with, as ``count``, the largest count of the same taxon over the event's media
    observations (none when none of them has a count)."""
    largest: dict[tuple, int] = {}
    for row in media:
        if row.get("count"):
            key = (row["eventID"], row.get("observationType"), row.get("scientificName"))
            largest[key] = max(largest.get(key, 0), int(row["count"]))
    out = []
    for row in events:
        key = (row["eventID"], row.get("observationType"), row.get("scientificName"))
        out.append({**row, "count": largest.get(key)} if row.get("observationType") in COUNTED_TYPES else row)
    return out
