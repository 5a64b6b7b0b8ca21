"""Label writes of the review page: ``labels`` rows with source ``review`` and the ``label_events`` history.

Every change is one short transaction on the workspace database (open, write, close), so the file
stays usable by other jungle commands while the page runs and nothing is lost when the browser or
the server closes. ``labels`` keeps its shape (every class of a labelled clip, 0/1); the
append-only ``label_events`` table records each change with the state before it, which is what
:func:`undo_last` restores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from ..errors import InputError, NotFoundError
from ..store.db import connect, transaction
from ..store.workspace import Workspace

__all__ = [
    "REVIEW_SOURCE",
    "LabelState",
    "LabelChange",
    "UnknownClasses",
    "UnknownVideo",
    "NothingToUndo",
    "read_label_state",
    "set_labels",
    "undo_last",
    "label_history",
]

REVIEW_SOURCE = "review"


class UnknownClasses(InputError):
    """A label names a class the workspace does not have."""


class UnknownVideo(NotFoundError):
    """A label is for a video id the workspace does not have."""


class NothingToUndo(NotFoundError):
    """This review session has no change left to undo."""


@dataclass(frozen=True)
class LabelState:
    """The labels of one clip: its positive classes (None: not labelled) and their source."""

    classes: tuple[str, ...] | None
    source: str | None


@dataclass(frozen=True)
class LabelChange:
    """One written change: the event id, the clip, and its state before and after."""

    event_id: int
    video_id: str
    action: str
    before: LabelState
    after: LabelState


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def read_label_state(con, video_id: str) -> LabelState:
    """The current labels of ``video_id`` (classes in the workspace's class order)."""
    rows = con.execute(
        "SELECT l.class, l.value, l.source FROM labels l LEFT JOIN classes c ON c.class = l.class "
        "WHERE l.video_id = ? ORDER BY c.position, l.class", [video_id]).fetchall()
    if not rows:
        return LabelState(None, None)
    return LabelState(tuple(r[0] for r in rows if r[1] == 1), rows[0][2])


def _check(con, video_id: str, classes: Sequence[str]) -> tuple[str, ...]:
    """The workspace's class list, after checking the video and ``classes`` against it."""
    known = tuple(r[0] for r in con.execute("SELECT class FROM classes ORDER BY position").fetchall())
    if not con.execute("SELECT count(*) FROM videos WHERE video_id = ?", [video_id]).fetchone()[0]:
        raise UnknownVideo(f"no video with id {video_id!r} in the workspace; list them with "
                           "`jungle sql \"SELECT video_id, filename FROM videos\"`")
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise UnknownClasses(f"unknown class(es) {', '.join(map(repr, unknown))} for video {video_id}. "
                             f"Known classes: {', '.join(known)}.")
    return known


def _write_state(con, video_id: str, known: tuple[str, ...], state: LabelState) -> None:
    """Replace the ``labels`` rows of ``video_id`` with ``state`` (no rows when not labelled)."""
    con.execute("DELETE FROM labels WHERE video_id = ?", [video_id])
    if state.classes is not None:
        positive = set(state.classes)
        con.executemany("INSERT INTO labels (video_id, class, value, source) VALUES (?, ?, ?, ?)",
                        [(video_id, c, int(c in positive), state.source) for c in known])


def _record(con, video_id: str, action: str, before: LabelState, after: LabelState,
            session: str | None, undoes: int | None) -> int:
    return con.execute(
        "INSERT INTO label_events "
        "(changed_at, video_id, action, classes, source, previous, previous_source, session, undoes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
        [_now(), video_id, action, None if after.classes is None else list(after.classes), after.source,
         None if before.classes is None else list(before.classes), before.source, session, undoes],
    ).fetchone()[0]


def _transaction(workspace: Workspace, work):
    with connect(workspace) as con:
        with transaction(con):
            result = work(con)
    return result


def set_labels(workspace: Workspace, video_id: str, classes: Sequence[str] | None,
               session: str | None = None, source: str = REVIEW_SOURCE) -> LabelChange:
    """Label ``video_id`` with exactly ``classes`` (None: remove its labels) and record the event.

    Args:
        workspace: the workspace.
        video_id: the clip.
        classes: its positive classes (every other class is written as 0); None or omitted
            leaves the clip unlabelled.
        session: the review run making the change (what :func:`undo_last` undoes).
        source: the ``labels.source`` written.

    Raises:
        UnknownVideo, UnknownClasses: nothing was written.
    """
    wanted = None if classes is None else tuple(dict.fromkeys(classes))

    def work(con) -> LabelChange:
        known = _check(con, video_id, wanted or ())
        before = read_label_state(con, video_id)
        ordered = None if wanted is None else tuple(c for c in known if c in wanted)
        after = LabelState(ordered, None if ordered is None else source)
        _write_state(con, video_id, known, after)
        event = _record(con, video_id, "set", before, after, session, None)
        return LabelChange(event, video_id, "set", before, after)

    return _transaction(workspace, work)


def undo_last(workspace: Workspace, session: str) -> LabelChange:
    """Revert the latest not yet undone ``set`` of ``session``, restoring the labels before it.

    Raises:
        NothingToUndo: the session has no change left to undo.
    """
    def work(con) -> LabelChange:
        row = con.execute(
            "SELECT event_id, video_id, previous, previous_source FROM label_events e "
            "WHERE session = ? AND action = 'set' "
            "AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes = e.event_id) "
            "ORDER BY event_id DESC LIMIT 1", [session]).fetchone()
        if row is None:
            raise NothingToUndo("nothing to undo: this review session has made no label change that is not undone")
        event_id, video_id, previous, previous_source = row
        known = _check(con, video_id, previous or ())
        before = read_label_state(con, video_id)
        after = LabelState(None if previous is None else tuple(previous), previous_source)
        _write_state(con, video_id, known, after)
        undo_id = _record(con, video_id, "undo", before, after, session, event_id)
        return LabelChange(undo_id, video_id, "undo", before, after)

    return _transaction(workspace, work)


def label_history(con, video_id: str) -> list[dict]:
    """The label events of ``video_id``, oldest first, as plain dicts (for the page)."""
    rows = con.execute(
        "SELECT event_id, changed_at, action, classes, source, previous, previous_source, undoes FROM label_events "
        "WHERE video_id = ? ORDER BY event_id", [video_id]).fetchall()
    keys = ("event_id", "changed_at", "action", "classes", "source", "previous", "previous_source", "undoes")
    return [{k: (v.isoformat(timespec="seconds") if k == "changed_at" else v) for k, v in zip(keys, r)} for r in rows]
