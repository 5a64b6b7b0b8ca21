"""How many animals each clip shows: the tables ``jungle count`` writes, the reviewer's corrections,
and the views ``jungle sql`` reads them through.

Tables (migration ``m007_counts``):

- ``count_runs``: each counting configuration used (its key, the configuration, the detector's
  lineage, the code version);
- ``clip_counts``: per clip the run that counted it, ``status`` (``counted``, ``skipped``: nothing
  to count, ``error``), MaxN, distinct tracks, the frame shown for the count and the box around its
  animals, the single-frame baselines, and the seconds it took;
- ``tracks``: per track its frames, box count, mean score and predicted class;
- ``track_boxes``: every box the detector found on the sampled frames, with the track it joined
  (NULL: none);
- ``clip_class_counts``: per clip and predicted class, MaxN and tracks of that class's tracks;
- ``count_labels`` and ``count_events``: a person's count of a clip (it wins over the machine's
  everywhere) and the append-only history of those corrections (``set``, ``undo``).

Views (TEMP, on every connection, :func:`create_count_views`): ``counts`` (one row per clip with a
count: ``video_id``, ``filename``, ``maxn``, ``tracks``, and where the count comes from),
``class_counts`` (per clip and class), ``event_counts`` and ``event_class_counts`` (per event, the
largest MaxN of its clips: the same animals filmed twice are not counted twice).
"""

from __future__ import annotations

from .corrections import count_history, human_count, last_undoable_count, set_human_count
from .tables import (COUNT_TABLES, ClipCountRow, counted_videos, has_tables, read_counts, read_track_boxes,
                     read_track_spans, read_tracks, record_run, stored_boxes, write_counts, write_track_classes)
from .views import COUNT_VIEWS, COUNTS_SQL, create_count_views

__all__ = ["COUNT_TABLES", "COUNT_VIEWS", "COUNTS_SQL", "ClipCountRow", "has_tables", "record_run", "stored_boxes",
           "counted_videos", "write_counts", "write_track_classes", "read_counts", "read_track_boxes",
           "read_track_spans", "read_tracks", "human_count", "set_human_count", "last_undoable_count",
           "count_history", "create_count_views"]
