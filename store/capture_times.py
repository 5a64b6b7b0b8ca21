"""Capture times in the workspace: the ``videos`` time columns and the user's ``capture_times``.

Every video row holds when it was recorded (migration 4):

- ``captured_at`` (TIMESTAMP): the moment, in UTC;
- ``utc_offset_minutes`` (INTEGER): the offset of the camera's clock from UTC, so
  ``captured_at + to_minutes(utc_offset_minutes)`` is the time the camera showed; NULL when the
  source gave a clock reading without a zone (``captured_at`` then holds that reading as if it
  were UTC);
- ``time_source``: where it came from, best first: ``csv`` (a times file the user gave),
  ``container`` (the video's own metadata), ``mtime`` (the file's modification time: the last
  resort, which copying a file changes).

``capture_times`` keeps the times the user gave, by ``video_id``, so that they win again whenever
ingest rewrites a row (a changed file, a re-checked failure). Stages read and write these columns
through the functions here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

from .db import registered

__all__ = ["TIME_SOURCES", "UNTRUSTED", "record_user_times", "apply_user_times", "update_container_times",
           "time_source_counts", "local_time", "format_time"]

#: The values of ``videos.time_source``, best first.
TIME_SOURCES = ("csv", "container", "mtime")
#: The sources whose times say nothing reliable about when the clip was recorded.
UNTRUSTED = ("mtime",)


def _batch(rows: Sequence[tuple]):
    """(video_id, captured_at, UTC offset in minutes or None) rows as an Arrow table for DuckDB."""
    import pyarrow as pa

    return pa.table({"video_id": pa.array([r[0] for r in rows], pa.string()),
                     "captured_at": pa.array([r[1] for r in rows], pa.timestamp("us")),
                     "offset_minutes": pa.array([r[2] for r in rows], pa.int32())})


def record_user_times(con, rows: Sequence[tuple], source: str) -> None:
    """Keep the user's times and put them on the videos (the caller holds the transaction).

    Args:
        con: a writable connection.
        rows: (video_id, captured_at UTC, UTC offset in minutes or None, line in the file).
        source: the times file.
    """
    import pyarrow as pa

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    batch = _batch(rows).append_column("line", pa.array([r[3] for r in rows], pa.int32()))
    with registered(con, batch=batch):
        con.execute("DELETE FROM capture_times WHERE video_id IN (SELECT video_id FROM batch)")
        con.execute("INSERT INTO capture_times SELECT video_id, captured_at, offset_minutes, ?, line, ? FROM batch",
                    [source, now])
    apply_user_times(con, [r[0] for r in rows])


def apply_user_times(con, video_ids: Sequence[str] | None = None) -> int:
    """Give ``video_ids`` (None: every video) the user's times where there are some; return how many."""
    where = "" if video_ids is None else " AND t.video_id IN (SELECT unnest(?))"
    params = [] if video_ids is None else [list(video_ids)]
    if not con.execute(f"SELECT count(*) FROM capture_times t WHERE TRUE{where}", params).fetchone()[0]:
        return 0  # the usual case: no statement that writes
    result = con.execute(
        "UPDATE videos SET captured_at = t.captured_at, utc_offset_minutes = t.utc_offset_minutes, "
        f"time_source = 'csv' FROM capture_times t WHERE videos.video_id = t.video_id{where}", params)
    return result.fetchone()[0]


def update_container_times(con, rows: Sequence[tuple], probe_version: int) -> None:
    """Set the capture time of rows read again from their containers (the caller holds the transaction).

    Args:
        con: a writable connection.
        rows: (video_id, captured_at UTC, UTC offset in minutes or None, time_source).
        probe_version: the header reader's version, recorded on the rows.
    """
    import pyarrow as pa

    batch = _batch(rows).append_column("time_source", pa.array([r[3] for r in rows], pa.string()))
    with registered(con, batch=batch):
        con.execute("UPDATE videos SET captured_at = b.captured_at, utc_offset_minutes = b.offset_minutes, "
                    "time_source = b.time_source, probe_version = ? FROM batch b WHERE videos.video_id = b.video_id",
                    [probe_version])
    apply_user_times(con, [r[0] for r in rows])


def time_source_counts(con) -> dict[str, int]:
    """Readable videos per ``time_source``, best source first (sources without videos left out)."""
    counts = dict(con.execute("SELECT coalesce(time_source, 'none'), count(*) FROM videos WHERE status = 'ok' "
                              "GROUP BY 1").fetchall())
    order = {name: i for i, name in enumerate(TIME_SOURCES)}
    return {name: counts[name] for name in sorted(counts, key=lambda n: order.get(n, len(order)))}


def local_time(captured_at: datetime | None, offset_minutes: int | None) -> datetime | None:
    """The time the camera showed: aware with its offset, or naive when the zone is unknown."""
    if captured_at is None:
        return None
    if offset_minutes is None:
        return captured_at
    offset = timedelta(minutes=offset_minutes)
    return (captured_at + offset).replace(tzinfo=timezone(offset))


def format_time(captured_at: datetime | None, offset_minutes: int | None) -> str | None:
    """``2016-09-27 07:10:08+01:00`` (the camera's time and offset), or without an offset when unknown."""
    moment = local_time(captured_at, offset_minutes)
    return None if moment is None else moment.isoformat(sep=" ", timespec="seconds")
