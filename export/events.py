"""Independent events: a site's clips grouped while each starts within ``gap`` seconds of the end of
the one before.

A clip starts at its capture time (``videos.captured_at``, UTC) and ends ``duration``
seconds later. Walking a site's clips in time order, a clip whose start is at most ``gap_s`` after
the previous clip's end joins that clip's event; otherwise it starts a new one. An event's id is
``ev-`` + the ``video_id`` of its first clip, so ids are stable while the first clip stays.

The grouping itself is SQL, so it lives with the workspace's views in
:mod:`jungle.store.events`; :func:`event_probabilities` combines clip probabilities into an
event's (``max``, or ``noisy-or``: 1 - prod(1 - p), the chance that at least one clip shows the
class if the clips were independent).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["event_probabilities", "EventRule"]

EventRule = Literal["max", "noisy-or"]


def event_probabilities(P: np.ndarray, event_of: list[str], rule: EventRule = "max") -> tuple[list[str], np.ndarray]:
    """(event ids sorted, (events, c) probabilities) from clip probabilities ``P`` and each clip's event."""
    events = sorted(set(event_of))
    position = {e: i for i, e in enumerate(events)}
    rows = np.array([position[e] for e in event_of], dtype=np.int64)
    P = np.asarray(P, dtype=np.float64)
    if rule == "max":
        out = np.full((len(events), P.shape[1]), -np.inf)
        np.maximum.at(out, rows, P)
        return events, out
    log_miss = np.zeros((len(events), P.shape[1]))
    np.add.at(log_miss, rows, np.log1p(-np.clip(P, 0.0, 1.0 - 1e-15)))
    return events, -np.expm1(log_miss)
