"""The ``predictions`` table: one writer and one reader for every stage.

A row is one class probability of one video from one model: ``kind`` ``oof`` (out of fold, for
the videos the model was trained or re-fitted on) or ``predict`` (a model on videos it did not
see). ``jungle stack`` writes ``oof`` rows, ``jungle predict`` ``predict`` rows, the review page's
re-fits both (under ``review-<model id>``); exports, review and reports read them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal, Sequence

import numpy as np

from .db import registered

__all__ = ["KINDS", "read_predictions", "write_predictions"]

#: The kinds of prediction rows.
KINDS = ("oof", "predict")


def write_predictions(con, model_id: str, kind: str | Sequence[str], video_ids: Sequence[str],
                      classes: Sequence[str], P: np.ndarray,
                      replace: Literal["videos", "model"] = "videos") -> int:
    """Write ``P`` (videos x classes) as ``model_id``'s rows; return the rows written. Call it
    inside :func:`~jungle.store.db.transaction`.

    Args:
        con: a workspace connection.
        model_id: the model the probabilities are from.
        kind: ``oof`` or ``predict`` for every video, or one of them per video.
        video_ids, classes: the rows and columns of ``P``.
        P: the probabilities.
        replace: ``videos`` replaces the model's rows of these videos and kinds (other videos keep
            theirs); ``model`` replaces every row of the model first (a re-fit's full set).
    """
    import polars as pl

    video_ids = np.asarray(video_ids, dtype=object).astype(str)
    n, c = np.shape(P)
    kinds = np.full(n, kind, dtype=object) if isinstance(kind, str) else np.asarray(kind, dtype=object)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or len(kinds) != n or len(video_ids) != n or len(classes) != c:
        raise ValueError(f"predictions need one kind of {KINDS} per video and {n}x{c} probabilities "
                         f"(got kinds {unknown or len(kinds)}, {len(video_ids)} videos, {len(classes)} classes)")
    frame = pl.DataFrame({
        "model_id": [model_id] * (n * c), "kind": np.repeat(kinds, c).tolist(),
        "video_id": np.repeat(video_ids, c).tolist(), "class": np.tile(np.asarray(classes, dtype=object), n).tolist(),
        "probability": np.asarray(P, dtype=np.float64).ravel(),
        "created_at": [datetime.now(timezone.utc).replace(tzinfo=None)] * (n * c),
    }, schema={"model_id": pl.String, "kind": pl.String, "video_id": pl.String, "class": pl.String,
               "probability": pl.Float64, "created_at": pl.Datetime("us")})
    with registered(con, new_predictions=frame):
        if replace == "model":
            con.execute("DELETE FROM predictions WHERE model_id = ?", [model_id])
        else:
            con.execute("DELETE FROM predictions p USING (SELECT DISTINCT kind, video_id FROM new_predictions) n "
                        "WHERE p.model_id = ? AND p.kind = n.kind AND p.video_id = n.video_id", [model_id])
        con.execute("INSERT INTO predictions SELECT * FROM new_predictions")
    return frame.height


def read_predictions(con, model_id: str, kinds: Sequence[str] = KINDS) -> list[tuple]:
    """``(video_id, class, probability, kind, created_at)`` of every row of ``model_id`` of one of
    ``kinds``, sorted by video, class and kind."""
    return con.execute("SELECT video_id, class, probability, kind, created_at FROM predictions "
                       "WHERE model_id = ? AND list_contains(?, kind) ORDER BY video_id, class, kind",
                       [model_id, list(kinds)]).fetchall()
