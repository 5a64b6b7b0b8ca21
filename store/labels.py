"""The workspace's classes, labels and folds: one reader and one writer each, one set of rules.

The ``labels`` table holds every class (0/1) of each labelled video, with the label's source (a
label file, or ``review``); ``classes`` their order; ``fold_schemes`` and ``folds`` the fold of
each video per scheme. :func:`read_labelled` turns them into a matrix. Its rules, the same
wherever labels are read (aggregate's out-of-fold heads, stack, the demo's baseline, folds,
review, export):

- no classes or no labels: :class:`LabelsMissing`, saying which import makes them;
- a label naming a class that is not in ``classes``: :class:`LabelsInconsistent` (the labels
  import never writes one; a hand-edited database can);
- with a fold scheme: the scheme must exist and every labelled video must have a fold in it,
  else :class:`FoldsMissing` with the command that remakes the scheme.

The writers (:func:`write_classes`, :func:`write_labels`, :func:`write_fold_scheme`) do no
checking of their own: the label import and the review page check first, and call them inside
one :func:`~jungle.store.db.transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from ..errors import NotFoundError, WorkspaceError
from .db import registered
from .rows import fingerprint

__all__ = ["LabelledVideos", "LabelsMissing", "LabelsInconsistent", "FoldsMissing", "read_classes",
           "write_classes", "read_labelled", "write_labels", "labels_fingerprint", "fold_schemes", "read_fold_scheme",
           "fold_assignment", "folds_fingerprint", "write_fold_scheme"]


class LabelsMissing(NotFoundError):
    """The workspace has no classes or no labels yet."""


class LabelsInconsistent(WorkspaceError):
    """The labels table names classes the class list lacks."""


class FoldsMissing(NotFoundError):
    """The fold scheme does not exist or leaves labelled videos out."""


@dataclass(frozen=True)
class LabelledVideos:
    """The labelled videos, sorted by ``video_id``.

    Attributes:
        video_ids: (n,) ids.
        classes: the class order (columns of ``Y``).
        Y: (n, C) float32 0/1 labels.
        sources: (n,) where each video's labels came from (a label file's path, or ``review``).
        scheme: the fold scheme read (None: folds not read).
        folds: (n,) int64 fold of each video in ``scheme`` as stored (None without a scheme).
    """

    video_ids: np.ndarray
    classes: tuple[str, ...]
    Y: np.ndarray
    sources: tuple[str | None, ...] = ()
    scheme: str | None = None
    folds: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.video_ids)

    def aligned(self, video_ids: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(Y, labelled)`` for ``video_ids`` in ``classes``' order (a model's): (n, C) float32 0/1
        labels, 0 for unlabelled videos and for classes the workspace does not have, and (n,) bool."""
        row = {v: i for i, v in enumerate(self.video_ids)}
        column = [self.classes.index(c) if c in self.classes else -1 for c in classes]
        Y = np.zeros((len(video_ids), len(classes)), dtype=np.float32)
        labelled = np.array([v in row for v in video_ids], dtype=bool)
        rows = np.array([row[v] for v in video_ids if v in row], dtype=np.int64)
        for j, k in enumerate(column):
            if k >= 0 and len(rows):
                Y[labelled, j] = self.Y[rows, k]
        return Y, labelled

    def source_of(self) -> dict[str, str | None]:
        """video_id -> the source of its labels."""
        return dict(zip(self.video_ids.tolist(), self.sources))


def read_classes(con, required: bool = True) -> tuple[str, ...]:
    """The configured class order (table ``classes``); empty when none is and not ``required``.

    Raises:
        LabelsMissing: ``required`` and no class list is configured.
    """
    rows = con.execute("SELECT class FROM classes ORDER BY position").fetchall()
    if not rows and required:
        raise LabelsMissing("the workspace has no classes configured. Import labels first: "
                            "`jungle ingest DIR --labels train_labels.csv` (or `jungle labels FILE`).")
    return tuple(r[0] for r in rows)


def write_classes(con, classes: Sequence[str]) -> None:
    """Make ``classes`` the workspace's class list, in this order."""
    con.execute("DELETE FROM classes")
    con.executemany("INSERT INTO classes VALUES (?, ?)", list(enumerate(classes)))


def fold_schemes(con) -> list[str]:
    """The fold schemes the workspace holds, sorted."""
    return [r[0] for r in con.execute("SELECT DISTINCT scheme FROM folds ORDER BY 1").fetchall()]


def read_labelled(con, scheme: str | None = "default", required: bool = True,
                  video_ids: Sequence[str] | None = None) -> LabelledVideos:
    """Every labelled video's labels (and its fold in ``scheme`` unless None), by the module's rules.

    Args:
        con: a workspace connection.
        scheme: the fold scheme to read (None: no folds).
        required: raise :class:`LabelsMissing` when there are no classes or no labels; else an
            empty result (exports and review work on unlabelled workspaces).
        video_ids: only these videos' labels (None: all).
    """
    classes = read_classes(con, required)
    where, params = "", []
    if video_ids is not None:
        where, params = "WHERE video_id IN (SELECT unnest(?::VARCHAR[]))", [list(video_ids)]
    rows = con.execute(f"SELECT video_id, class, value, source FROM labels {where} ORDER BY video_id",
                       params).fetchall()
    if not rows:
        if not required:
            return LabelledVideos(np.array([], dtype=object), classes, np.zeros((0, len(classes)), np.float32))
        raise LabelsMissing("the workspace has no labels. Import them: "
                            "`jungle ingest DIR --labels train_labels.csv` (or `jungle labels FILE`).")
    position = {c: i for i, c in enumerate(classes)}
    unknown = sorted({cls for _, cls, _, _ in rows if cls not in position})
    if unknown:
        raise LabelsInconsistent(
            f"the labels name classes missing from the class list: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}. Import the labels again: `jungle labels FILE --replace-labels`.")
    video_ids = np.array(sorted({r[0] for r in rows}))
    index = {v: i for i, v in enumerate(video_ids)}
    Y = np.zeros((len(video_ids), len(classes)), dtype=np.float32)
    source: dict[str, str | None] = {}
    for video_id, cls, value, label_source in rows:
        Y[index[video_id], position[cls]] = float(value)
        source[video_id] = min(filter(None, (source.get(video_id), label_source)), default=None)
    sources = tuple(source[v] for v in video_ids)
    if scheme is None:
        return LabelledVideos(video_ids, classes, Y, sources)
    return LabelledVideos(video_ids, classes, Y, sources, scheme, _folds(con, scheme, video_ids))


def labels_fingerprint(con) -> str:
    """A digest of every label (the lineage of what was learned from them)."""
    return fingerprint(con, "SELECT video_id, class, value FROM labels")


def write_labels(con, video_ids: Sequence[str], classes: Sequence[str], values: np.ndarray | None,
                 source: str | None, replace_all: bool = False) -> None:
    """Replace the labels of ``video_ids``: with ``values`` (n x classes, 0/1, every class of each
    video written) from ``source``, or none when ``values`` is None (the videos become unlabelled).
    ``replace_all`` deletes every other video's labels too."""
    import pyarrow as pa

    ids = np.asarray(video_ids, dtype=object).astype(str)
    if replace_all:
        con.execute("DELETE FROM labels")
    if values is None:
        con.execute("DELETE FROM labels WHERE video_id IN (SELECT unnest(?::VARCHAR[]))", [ids.tolist()])
        return
    values = np.asarray(values).reshape(len(ids), len(classes))
    batch = pa.table({
        "video_id": np.repeat(ids, len(classes)),
        "class": np.tile(np.asarray(classes, dtype=object), len(ids)).astype(str),
        "value": values.reshape(-1).astype(np.int8),
        "source": pa.array([source] * values.size, pa.string()),
    })
    with registered(con, batch=batch):
        con.execute("DELETE FROM labels WHERE video_id IN (SELECT DISTINCT video_id FROM batch)")
        con.execute("INSERT INTO labels (video_id, class, value, source) SELECT * FROM batch")


def _folds(con, scheme: str, video_ids: np.ndarray) -> np.ndarray:
    schemes = fold_schemes(con)
    if scheme not in schemes:
        raise FoldsMissing(
            f"fold scheme {scheme!r} has no folds (schemes present: {', '.join(schemes) or 'none'}). "
            f"Make it: `jungle folds 5 --scheme {scheme}` (--group-by site keeps each site in one fold), "
            "or pass --fold-scheme.")
    fold_of = fold_assignment(con, scheme)
    without = [v for v in video_ids if v not in fold_of]
    if without:
        raise FoldsMissing(
            f"{len(without)} labelled video(s) have no fold in scheme {scheme!r} (it was made before the labels "
            f"changed). Remake it to include them: `jungle folds 5 --scheme {scheme}` (--group-by site keeps "
            "each site in one fold), or pass --fold-scheme.")
    return np.array([fold_of[v] for v in video_ids], dtype=np.int64)


def read_fold_scheme(con, scheme: str) -> tuple[int, str | None, int] | None:
    """``(k, group_by, seed)`` of the fold scheme, or None when the workspace has no such scheme."""
    return con.execute("SELECT k, group_by, seed FROM fold_schemes WHERE scheme = ?", [scheme]).fetchone()


def fold_assignment(con, scheme: str) -> dict[str, int]:
    """video_id -> fold of every video in the scheme (empty when there is no such scheme)."""
    return dict(con.execute("SELECT video_id, fold FROM folds WHERE scheme = ?", [scheme]).fetchall())


def folds_fingerprint(con, scheme: str) -> str:
    """A digest of the scheme's fold of every video (the lineage of out-of-fold results)."""
    return fingerprint(con, "SELECT video_id, fold FROM folds WHERE scheme = ?", [scheme])


def write_fold_scheme(con, scheme: str, k: int, group_by: str | None, seed: int, video_ids: Sequence[str],
                      folds: np.ndarray) -> None:
    """Replace the scheme (its settings and every video's fold) with this one."""
    import pyarrow as pa

    batch = pa.table({"video_id": np.asarray(video_ids, dtype=object).astype(str),
                      "fold": np.asarray(folds).astype(np.int32)})
    with registered(con, batch=batch):
        con.execute("DELETE FROM folds WHERE scheme = ?", [scheme])
        con.execute("DELETE FROM fold_schemes WHERE scheme = ?", [scheme])
        con.execute("INSERT INTO fold_schemes VALUES (?, ?, ?, ?, ?)",
                    [scheme, k, group_by, seed, datetime.now(timezone.utc).replace(tzinfo=None)])
        con.execute("INSERT INTO folds (scheme, video_id, fold) SELECT ?, video_id, fold FROM batch", [scheme])
