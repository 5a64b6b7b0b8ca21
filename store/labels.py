"""Reading the workspace's labels and folds: one reader, one set of rules, for every stage.

The ``labels`` table holds every class (0/1) of each labelled video; ``classes`` their order;
``folds`` the fold of each video per scheme. :func:`read_labelled` turns them into a matrix.
Its rules, the same wherever labels are read (aggregate's out-of-fold heads, stack, the demo's
baseline, review, export):

- no classes or no labels: :class:`LabelsMissing`, saying which import makes them;
- a label naming a class that is not in ``classes``: :class:`LabelsInconsistent` (the labels
  import never writes one; a hand-edited database can);
- with a fold scheme: the scheme must exist and every labelled video must have a fold in it,
  else :class:`FoldsMissing` with the command that remakes the scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NotFoundError, WorkspaceError

__all__ = ["LabelledVideos", "LabelsMissing", "LabelsInconsistent", "FoldsMissing", "read_classes",
           "read_labelled", "fold_schemes"]


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
        scheme: the fold scheme read (None: folds not read).
        folds: (n,) int64 fold of each video in ``scheme`` as stored (None without a scheme).
    """

    video_ids: np.ndarray
    classes: tuple[str, ...]
    Y: np.ndarray
    scheme: str | None = None
    folds: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.video_ids)


def read_classes(con) -> tuple[str, ...]:
    """The configured class order (table ``classes``)."""
    rows = con.execute("SELECT class FROM classes ORDER BY position").fetchall()
    if not rows:
        raise LabelsMissing("the workspace has no classes configured. Import labels first: "
                            "`jungle ingest DIR --labels train_labels.csv` (or `jungle labels FILE`).")
    return tuple(r[0] for r in rows)


def fold_schemes(con) -> list[str]:
    """The fold schemes the workspace holds, sorted."""
    return [r[0] for r in con.execute("SELECT DISTINCT scheme FROM folds ORDER BY 1").fetchall()]


def read_labelled(con, scheme: str | None = "default") -> LabelledVideos:
    """Every labelled video's labels (and its fold in ``scheme`` unless None), by the module's rules."""
    classes = read_classes(con)
    rows = con.execute("SELECT video_id, class, value FROM labels ORDER BY video_id").fetchall()
    if not rows:
        raise LabelsMissing("the workspace has no labels. Import them: "
                            "`jungle ingest DIR --labels train_labels.csv` (or `jungle labels FILE`).")
    position = {c: i for i, c in enumerate(classes)}
    unknown = sorted({cls for _, cls, _ in rows if cls not in position})
    if unknown:
        raise LabelsInconsistent(
            f"the labels name classes missing from the class list: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}. Import the labels again: `jungle labels FILE --replace-labels`.")
    video_ids = np.array(sorted({r[0] for r in rows}))
    index = {v: i for i, v in enumerate(video_ids)}
    Y = np.zeros((len(video_ids), len(classes)), dtype=np.float32)
    for video_id, cls, value in rows:
        Y[index[video_id], position[cls]] = float(value)
    if scheme is None:
        return LabelledVideos(video_ids, classes, Y)
    return LabelledVideos(video_ids, classes, Y, scheme, _folds(con, scheme, video_ids))


def _folds(con, scheme: str, video_ids: np.ndarray) -> np.ndarray:
    schemes = fold_schemes(con)
    if scheme not in schemes:
        raise FoldsMissing(
            f"fold scheme {scheme!r} has no folds (schemes present: {', '.join(schemes) or 'none'}). "
            f"Make it: `jungle folds 5 --scheme {scheme}` (--group-by site keeps each site in one fold), "
            "or pass --fold-scheme.")
    fold_of = dict(con.execute("SELECT video_id, fold FROM folds WHERE scheme = ?", [scheme]).fetchall())
    without = [v for v in video_ids if v not in fold_of]
    if without:
        raise FoldsMissing(
            f"{len(without)} labelled video(s) have no fold in scheme {scheme!r} (it was made before the labels "
            f"changed). Remake it to include them: `jungle folds 5 --scheme {scheme}` (--group-by site keeps "
            "each site in one fold), or pass --fold-scheme.")
    return np.array([fold_of[v] for v in video_ids], dtype=np.int64)
