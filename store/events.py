"""Independent events: a site's clips grouped while each starts within ``gap`` seconds of the end of
the one before.

A clip starts at its capture time (``videos.captured_at``, UTC) and ends ``duration``
seconds later. Walking a site's clips in time order, a clip whose start is at most ``gap_s`` after
the previous clip's end joins that clip's event; otherwise it starts a new one. An event's id is
``ev-`` + the ``video_id`` of its first clip, so ids are stable while the first clip stays.

One SQL definition (:func:`events_sql`) serves both the workspace's ``events`` and
``event_predictions`` views (:func:`create_event_views`: every connection has them, with the
default gap :data:`EVENT_GAP_S`, so ``jungle sql`` can query them) and the exports' grouping of
the clips they write (:func:`group_events`, with the export's own gap).
"""

from __future__ import annotations

from .frames import registered

__all__ = ["EVENT_GAP_S", "events_sql", "group_events", "create_event_views"]

EVENT_GAP_S = 60.0
"""Seconds between one clip's end and the next one's start that still make one event (the views'
gap, and the exports' default)."""


def events_sql(source: str, gap_s: float) -> str:
    """SQL giving one row per clip of ``source`` (a relation with video_id, site, captured_at, duration):
    video_id, site, event_id, event_start, event_end, event_clips, clip_start, clip_end."""
    gap = float(gap_s)
    return f"""
    WITH clips AS (
        SELECT video_id, coalesce(site, '') AS site, captured_at AS clip_start,
               captured_at + to_microseconds(CAST(round(coalesce(duration, 0) * 1e6) AS BIGINT)) AS clip_end
        FROM {source} WHERE captured_at IS NOT NULL),
    marked AS (
        SELECT *, CASE WHEN epoch(clip_start - lag(clip_end) OVER site_time) <= {gap} THEN 0 ELSE 1 END AS opens
        FROM clips WINDOW site_time AS (PARTITION BY site ORDER BY clip_start, video_id)),
    numbered AS (
        SELECT *, sum(opens) OVER (PARTITION BY site ORDER BY clip_start, video_id
                                   ROWS UNBOUNDED PRECEDING) AS event_number
        FROM marked)
    SELECT video_id, site,
           'ev-' || first(video_id ORDER BY clip_start, video_id) OVER event AS event_id,
           min(clip_start) OVER event AS event_start, max(clip_end) OVER event AS event_end,
           count(*) OVER event AS event_clips, clip_start, clip_end
    FROM numbered WINDOW event AS (PARTITION BY site, event_number)
    """


def group_events(clips, gap_s: float = EVENT_GAP_S) -> dict[str, dict]:
    """Group clips into events with :func:`events_sql` on an in-memory DuckDB.

    Args:
        clips: rows (dicts) with video_id, site, captured_at (datetime), duration (seconds or None).
        gap_s: the largest gap between one clip's end and the next one's start within an event.

    Returns:
        video_id -> {event_id, event_start, event_end, event_clips, clip_start, clip_end}.
    """
    import duckdb
    import polars as pl

    frame = pl.DataFrame(
        {"video_id": [c["video_id"] for c in clips], "site": [c["site"] for c in clips],
         "captured_at": [c["captured_at"] for c in clips], "duration": [c.get("duration") for c in clips]},
        schema={"video_id": pl.String, "site": pl.String, "captured_at": pl.Datetime("us"), "duration": pl.Float64})
    con = duckdb.connect()
    try:
        with registered(con, clip_rows=frame):
            result = con.execute(events_sql("clip_rows", gap_s))
            columns = [d[0] for d in result.description]
            return {row[0]: dict(zip(columns[2:], row[2:])) for row in result.fetchall()}
    finally:
        con.close()


def create_event_views(con, gap_s: float = EVENT_GAP_S) -> list[str]:
    """Create (or replace) the connection's TEMP views ``events`` (one row per ok clip: its event)
    and ``event_predictions`` (per model, kind, event and class: the max and noisy-OR of the
    clips' probabilities); return their names."""
    con.execute("CREATE OR REPLACE TEMP VIEW events AS "
                + events_sql("(SELECT video_id, site, captured_at, duration FROM videos WHERE status = 'ok')", gap_s))
    con.execute("""
        CREATE OR REPLACE TEMP VIEW event_predictions AS
        SELECT p.model_id, p.kind, e.event_id, any_value(e.site) AS site, min(e.event_start) AS event_start,
               max(e.event_end) AS event_end, p.class, count(*) AS clips,
               max(p.probability) AS max_probability, 1 - product(1 - p.probability) AS noisy_or_probability
        FROM predictions p JOIN events e USING (video_id)
        GROUP BY p.model_id, p.kind, e.event_id, p.class""")
    return ["events", "event_predictions"]
