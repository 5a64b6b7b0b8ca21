"""A person's count of a clip (``count_labels``) and the append-only history of those corrections
(``count_events``: ``set`` and ``undo``, with the count before); the review page writes them through
:mod:`jungle.review.count_store`."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["human_count", "set_human_count", "last_undoable_count", "count_history"]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def human_count(con, video_id: str) -> int | None:
    """A person's count of the clip (None: none)."""
    row = con.execute("SELECT count FROM count_labels WHERE video_id = ?", [video_id]).fetchone()
    return None if row is None else int(row[0])


def set_human_count(con, video_id: str, count: int | None, source: str, session: str | None,
                    reviewer: str | None, action: str = "set", undoes: int | None = None) -> int:
    """Set (or, with None, remove) a person's count of a clip and append the change to its history;
    return the event id. Call it inside a transaction."""
    previous = human_count(con, video_id)
    con.execute("DELETE FROM count_labels WHERE video_id = ?", [video_id])
    if count is not None:
        con.execute("INSERT INTO count_labels VALUES (?, ?, ?, ?)", [video_id, int(count), source, _now()])
    return con.execute(
        "INSERT INTO count_events (changed_at, video_id, action, count, previous, session, reviewer, undoes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
        [_now(), video_id, action, count, previous, session, reviewer, undoes]).fetchone()[0]


def last_undoable_count(con, session: str) -> tuple[int, str, int | None] | None:
    """(event id, video id, the count before it) of the session's latest ``set`` no ``undo`` reverted."""
    row = con.execute("""
        SELECT event_id, video_id, previous FROM count_events e
        WHERE session = ? AND action = 'set'
          AND NOT EXISTS (SELECT 1 FROM count_events u WHERE u.action = 'undo' AND u.undoes = e.event_id)
        ORDER BY event_id DESC LIMIT 1""", [session]).fetchone()
    return None if row is None else (int(row[0]), row[1], None if row[2] is None else int(row[2]))


def count_history(con, video_id: str) -> list[dict]:
    """The clip's count changes, oldest first."""
    result = con.execute("SELECT event_id, changed_at, action, count, previous, session, reviewer, undoes "
                         "FROM count_events WHERE video_id = ? ORDER BY event_id", [video_id])
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row)) for row in result.fetchall()]
