"""The ``label_events`` table: the append-only history of label changes made in review.

Each event records a clip's labels before and after a change (``set``) or its reversal
(``undo``), the review run that made it, and the time. The review page writes through
:func:`record_label_event` in the same transaction as the labels themselves
(:func:`jungle.store.labels.write_labels`), and reads the history back through the other
functions here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .labels import read_labelled

__all__ = ["LabelState", "label_state", "record_label_event", "last_undoable_event", "label_history",
           "states_before_review", "latest_reviewers"]


@dataclass(frozen=True)
class LabelState:
    """The labels of one clip: its positive classes (None: not labelled) and their source."""

    classes: tuple[str, ...] | None
    source: str | None


def _state(classes, source) -> LabelState:
    return LabelState(None if classes is None else tuple(classes), source)


def label_state(con, video_id: str) -> LabelState:
    """The current labels of ``video_id`` (classes in the workspace's class order)."""
    labelled = read_labelled(con, None, required=False, video_ids=[video_id])
    if not len(labelled):
        return LabelState(None, None)
    positive = tuple(c for c, y in zip(labelled.classes, labelled.Y[0]) if y == 1)
    return LabelState(positive, labelled.sources[0])


def record_label_event(con, video_id: str, action: str, before: LabelState, after: LabelState,
                       session: str | None, undoes: int | None, reviewer: str | None = None) -> int:
    """Append one event (``set`` or ``undo``, made by ``reviewer`` when named); return its id."""
    return con.execute(
        "INSERT INTO label_events "
        "(changed_at, video_id, action, classes, source, previous, previous_source, session, undoes, reviewer) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
        [datetime.now(timezone.utc).replace(tzinfo=None), video_id, action,
         None if after.classes is None else list(after.classes), after.source,
         None if before.classes is None else list(before.classes), before.source, session, undoes, reviewer],
    ).fetchone()[0]


def last_undoable_event(con, session: str) -> tuple[int, str, LabelState] | None:
    """``(event id, video id, state before it)`` of the latest ``set`` of ``session`` that no
    ``undo`` reverted, or None."""
    row = con.execute(
        "SELECT event_id, video_id, previous, previous_source FROM label_events e "
        "WHERE session = ? AND action = 'set' "
        "AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes = e.event_id) "
        "ORDER BY event_id DESC LIMIT 1", [session]).fetchone()
    return None if row is None else (row[0], row[1], _state(row[2], row[3]))


def label_history(con, video_id: str) -> list[dict]:
    """The label events of ``video_id``, oldest first, as plain dicts (for the page)."""
    rows = con.execute(
        "SELECT event_id, changed_at, action, classes, source, previous, previous_source, undoes, reviewer "
        "FROM label_events WHERE video_id = ? ORDER BY event_id", [video_id]).fetchall()
    keys = ("event_id", "changed_at", "action", "classes", "source", "previous", "previous_source", "undoes",
            "reviewer")
    return [{k: (v.isoformat(timespec="seconds") if k == "changed_at" else v) for k, v in zip(keys, r)} for r in rows]


def states_before_review(con) -> dict[str, LabelState]:
    """video_id -> its labels before its first review change, for every clip review changed."""
    rows = con.execute(
        "SELECT video_id, previous, previous_source FROM label_events e WHERE event_id = "
        "(SELECT min(event_id) FROM label_events f WHERE f.video_id = e.video_id)").fetchall()
    return {video_id: _state(previous, source) for video_id, previous, source in rows}


def latest_reviewers(con) -> dict[str, str]:
    """video_id -> who made its latest review label change (clips whose latest change names nobody
    are left out)."""
    rows = con.execute("SELECT video_id, reviewer FROM label_events "
                       "QUALIFY event_id = max(event_id) OVER (PARTITION BY video_id)").fetchall()
    return {video_id: reviewer for video_id, reviewer in rows if reviewer}
