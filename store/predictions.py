"""The ``predictions`` table: one writer and one reader for every stage.

A row is one class probability of one video from one model: ``kind`` ``oof`` (out of fold, for
the videos the model was trained or re-fitted on) or ``predict`` (a model on videos it did not
see). ``jungle stack`` writes ``oof`` rows, ``jungle predict`` ``predict`` rows, the review page's
re-fits both; exports, review and reports read them.

The table is the history: every model's rows, with the model and kind on each. What a model says
about a clip *now* is its out-of-sample probability (:func:`read_out_of_sample`): its ``oof`` rows
when the clip was one it was fitted on, else its ``predict`` rows, never the in-sample ``predict``
rows of a clip it was trained on. The ``current_predictions`` view (:mod:`jungle.store.views`)
gives the same for the current model, with the labels beside; the CSV export, the review page and
``jungle sql`` all read it this way.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal, Sequence

import numpy as np

from .frames import registered

__all__ = ["KINDS", "DIGITS", "out_of_sample_sql", "read_out_of_sample", "read_predictions", "rounded",
           "write_predictions"]

#: The kinds of prediction rows.
KINDS = ("oof", "predict")

DIGITS = 6
"""Decimal places of a probability shown or exported as text (the CSV export, the review page):
finer than any model here is calibrated, so no decision changes, while 17-digit floats are noise
to a reader. The ``predictions`` table and the submission CSV keep full precision."""

SMALLEST = 10.0 ** -DIGITS


def rounded(probability: float) -> float:
    """``probability`` to :data:`DIGITS` places, kept inside [1e-6, 1 - 1e-6] so that a log loss
    computed from the text stays finite (a 0 would say "impossible")."""
    return round(min(max(float(probability), SMALLEST), 1.0 - SMALLEST), DIGITS)


def out_of_sample_sql(model: str) -> str:
    """SQL of one model's out-of-sample rows (video_id, class, probability, kind, model_id, created_at):
    per video its ``oof`` rows when it has any, else its ``predict`` rows.

    Args:
        model: a SQL expression for the model id (``?``, or a subquery).
    """
    return f"""
        SELECT video_id, class, probability, kind, model_id, created_at FROM predictions
        WHERE model_id = {model}
        QUALIFY kind = CASE WHEN bool_or(kind = 'oof') OVER (PARTITION BY video_id) THEN 'oof' ELSE 'predict' END"""


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


def read_out_of_sample(con, model_id: str) -> list[tuple]:
    """``(video_id, class, probability, kind, created_at)`` of what ``model_id`` says about each clip
    out of sample (:func:`out_of_sample_sql`), sorted by video and class."""
    return con.execute(f"SELECT video_id, class, probability, kind, created_at FROM ({out_of_sample_sql('?')}) "
                       "ORDER BY video_id, class", [model_id]).fetchall()
