"""The count views every connection gets (``counts``, ``class_counts``, ``event_counts``,
``event_class_counts``; see :mod:`jungle.store.counts`)."""

from __future__ import annotations

from ..events import EVENT_GAP_S, events_sql
from .tables import has_tables

__all__ = ["COUNT_VIEWS", "COUNTS_SQL", "create_count_views"]

COUNT_VIEWS = ("counts", "class_counts", "event_counts", "event_class_counts")


COUNTS_SQL = """
    SELECT v.video_id, v.filename, coalesce(l.count, CASE WHEN c.status = 'counted' THEN c.maxn END) AS maxn,
           c.tracks, CASE WHEN l.video_id IS NOT NULL THEN coalesce(l.source, 'human') ELSE 'machine' END AS source,
           CASE WHEN c.status = 'counted' THEN c.maxn END AS machine_maxn, c.status, c.frames,
           c.best_frame_boxes, c.max_frame_boxes
    FROM videos v LEFT JOIN clip_counts c USING (video_id) LEFT JOIN count_labels l USING (video_id)
    WHERE c.video_id IS NOT NULL OR l.video_id IS NOT NULL"""
"""One row per clip with a count: the count that wins (a person's, else MaxN), the distinct tracks,
where the count comes from, the machine's MaxN, and the single-frame baselines."""


def create_count_views(con, gap_s: float = EVENT_GAP_S) -> list[str]:
    """Create the TEMP views ``counts``, ``class_counts``, ``event_counts`` and ``event_class_counts``
    (when the database has the tables); return their names."""
    if not has_tables(con, "videos", "clip_counts", "count_labels", "clip_class_counts"):
        return []
    con.execute(f"CREATE OR REPLACE TEMP VIEW counts AS {COUNTS_SQL}")
    con.execute("""
        CREATE OR REPLACE TEMP VIEW class_counts AS
        SELECT k.video_id, v.filename, k.class, k.maxn, k.tracks
        FROM clip_class_counts k JOIN videos v USING (video_id)""")
    clips = "(SELECT video_id, site, captured_at, duration FROM videos WHERE status = 'ok')"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW event_counts AS
        WITH e AS ({events_sql(clips, gap_s)})
        SELECT e.event_id, any_value(e.site) AS site, min(e.event_start) AS event_start,
               max(e.event_end) AS event_end, max(c.maxn) AS maxn, count(c.maxn) AS clips
        FROM e JOIN counts c USING (video_id) WHERE c.maxn IS NOT NULL
        GROUP BY e.event_id""")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW event_class_counts AS
        WITH e AS ({events_sql(clips, gap_s)})
        SELECT e.event_id, any_value(e.site) AS site, k.class, max(k.maxn) AS maxn, count(*) AS clips
        FROM e JOIN clip_class_counts k USING (video_id)
        GROUP BY e.event_id, k.class""")
    return list(COUNT_VIEWS)
