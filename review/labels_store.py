"""Label writes of the review page: ``labels`` rows with source ``review`` and the ``label_events`` history.

Every change is one short transaction on the workspace database (open, write, close), so the file
stays usable by other jungle commands while the page runs and nothing is lost when the browser or
the server closes. ``labels`` keeps its shape (every class of a labelled clip, 0/1); the
append-only ``label_events`` table records each change with the state before it, which is what
:func:`undo_last` restores. The rows are read and written through :mod:`jungle.store.labels` and
:mod:`jungle.store.label_events`; this module holds the review's rules (which video, which
classes, what undo means).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import InputError, NotFoundError
from ..store.db import connect, transaction
from ..store.label_events import LabelState, label_state, last_undoable_event, record_label_event
from ..store.labels import read_classes, write_labels
from ..store.videos import read_videos
from ..store.workspace import Workspace

__all__ = [
    "REVIEW_SOURCE",
    "LabelChange",
    "UnknownClasses",
    "UnknownVideo",
    "NothingToUndo",
    "set_labels",
    "undo_last",
]

REVIEW_SOURCE = "review"


class UnknownClasses(InputError):
    """A label names a class the workspace does not have."""


class UnknownVideo(NotFoundError):
    """A label is for a video id the workspace does not have."""


class NothingToUndo(NotFoundError):
    """This review session has no change left to undo."""


@dataclass(frozen=True)
class LabelChange:
    """One written change: the event id, the clip, and its state before and after."""

    event_id: int
    video_id: str
    action: str
    before: LabelState
    after: LabelState


def _check(con, video_id: str, classes: Sequence[str]) -> tuple[str, ...]:
    """The workspace's class list, after checking the video and ``classes`` against it."""
    known = read_classes(con)
    if not read_videos(con, ("video_id",), video_ids=[video_id]):
        raise UnknownVideo(f"no video with id {video_id!r} in the workspace; list them with "
                           "`jungle sql \"SELECT video_id, filename FROM videos\"`")
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise UnknownClasses(f"unknown class(es) {', '.join(map(repr, unknown))} for video {video_id}. "
                             f"Known classes: {', '.join(known)}.")
    return known


def _write_state(con, video_id: str, known: tuple[str, ...], state: LabelState) -> None:
    """Replace the labels of ``video_id`` with ``state`` (none when not labelled)."""
    values = None if state.classes is None else [[int(c in state.classes) for c in known]]
    write_labels(con, [video_id], known, values, state.source)


def _transaction(workspace: Workspace, work):
    with connect(workspace) as con:
        with transaction(con):
            result = work(con)
    return result


def set_labels(workspace: Workspace, video_id: str, classes: Sequence[str] | None,
               session: str | None = None, source: str = REVIEW_SOURCE, reviewer: str | None = None) -> LabelChange:
    """Label ``video_id`` with exactly ``classes`` (None: remove its labels) and record the event.

    Args:
        workspace: the workspace.
        video_id: the clip.
        classes: its positive classes (every other class is written as 0); None or omitted
            leaves the clip unlabelled.
        session: the review run making the change (what :func:`undo_last` undoes).
        source: the ``labels.source`` written.
        reviewer: who made the change, as they named themselves (``jungle review --reviewer``).

    Raises:
        UnknownVideo, UnknownClasses: nothing was written.
    """
    wanted = None if classes is None else tuple(dict.fromkeys(classes))

    def work(con) -> LabelChange:
        known = _check(con, video_id, wanted or ())
        before = label_state(con, video_id)
        ordered = None if wanted is None else tuple(c for c in known if c in wanted)
        after = LabelState(ordered, None if ordered is None else source)
        _write_state(con, video_id, known, after)
        event = record_label_event(con, video_id, "set", before, after, session, None, reviewer)
        return LabelChange(event, video_id, "set", before, after)

    return _transaction(workspace, work)


def undo_last(workspace: Workspace, session: str, reviewer: str | None = None) -> LabelChange:
    """Revert the latest not yet undone ``set`` of ``session``, restoring the labels before it.

    Raises:
        NothingToUndo: the session has no change left to undo.
    """
    def work(con) -> LabelChange:
        last = last_undoable_event(con, session)
        if last is None:
            raise NothingToUndo("nothing to undo: this review session has made no label change that is not undone")
        event_id, video_id, after = last
        known = _check(con, video_id, after.classes or ())
        before = label_state(con, video_id)
        _write_state(con, video_id, known, after)
        undo_id = record_label_event(con, video_id, "undo", before, after, session, event_id, reviewer)
        return LabelChange(undo_id, video_id, "undo", before, after)

    return _transaction(workspace, work)
