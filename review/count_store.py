"""Count corrections of the review page: a person's count of a clip (``count_labels``) and its history
(``count_events``), written like the labels (:mod:`.labels_store`): one short transaction per change,
undo of the run's latest change, every change appended with the count before it.

A person's count wins over ``jungle count``'s MaxN everywhere (the ``counts`` view, the exports);
clearing it brings the machine's back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..store.counts import human_count, last_undoable_count, set_human_count
from ..store.db import connect, transaction
from ..store.videos import read_videos
from ..store.workspace import Workspace
from .labels_store import REVIEW_SOURCE, NothingToUndo, UnknownVideo

__all__ = ["MAX_COUNT", "BadCount", "CountChange", "set_count", "undo_count"]

#: The largest count the page accepts (a herd, not a typing slip of extra digits).
MAX_COUNT = 999


class BadCount(InputError):
    """A count that is not a whole number from 0 to :data:`MAX_COUNT`."""


@dataclass(frozen=True)
class CountChange:
    """One written change: the event id, the clip, and its count before and after (None: no person's count)."""

    event_id: int
    video_id: str
    before: int | None
    after: int | None


def _checked(count) -> int | None:
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise BadCount(f"a count is a whole number from 0 to {MAX_COUNT}, not {count!r}")
    return count


def set_count(workspace: Workspace, video_id: str, count: int | None, session: str,
              reviewer: str | None = None) -> CountChange:
    """Set a person's count of ``video_id`` (None: remove it, the machine's count shows again).

    Raises:
        BadCount: not a whole number from 0 to 999.
        UnknownVideo: no such clip.
    """
    count = _checked(count)
    with connect(workspace) as con, transaction(con):
        if not read_videos(con, ("video_id",), video_ids=[video_id]):
            raise UnknownVideo(f"no video with id {video_id!r} in the workspace; list them with "
                               "`jungle sql \"SELECT video_id, filename FROM videos\"`")
        before = human_count(con, video_id)
        event = set_human_count(con, video_id, count, REVIEW_SOURCE, session, reviewer)
    return CountChange(event, video_id, before, count)


def undo_count(workspace: Workspace, session: str, reviewer: str | None = None) -> CountChange:
    """Undo ``session``'s latest count change that is not undone yet.

    Raises:
        NothingToUndo: the session changed no count (or undid them all).
    """
    with connect(workspace) as con, transaction(con):
        last = last_undoable_count(con, session)
        if last is None:
            raise NothingToUndo("nothing to undo: this review run has changed no count yet")
        event_id, video_id, previous = last
        before = human_count(con, video_id)
        event = set_human_count(con, video_id, previous, REVIEW_SOURCE, session, reviewer, action="undo",
                                undoes=event_id)
    return CountChange(event, video_id, before, previous)
