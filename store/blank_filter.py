"""The ``blank_filter`` table: which clips a blank filter skips, per model.

``jungle predict --max-animal-loss X`` (:mod:`jungle.meta.zeroshot.skip`) writes one row per predicted
clip of the model: its P(animal), the threshold, whether it is skipped and how the threshold was
chosen; a later filter of the same model replaces the rows of the clips it covers. Query it with
``jungle sql "SELECT v.path FROM blank_filter b JOIN videos v USING (video_id) WHERE b.skip"``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from .frames import registered

__all__ = ["write_blank_filter", "read_blank_filter"]


def write_blank_filter(con, model_id: str, video_ids: Sequence[str], p_animal: np.ndarray, threshold: float,
                       max_animal_loss: float, basis: str) -> int:
    """Replace ``model_id``'s rows of ``video_ids``; return how many clips are skipped. Call it inside
    :func:`~jungle.store.db.transaction`."""
    import polars as pl

    p = np.asarray(p_animal, np.float64)
    frame = pl.DataFrame({"model_id": [model_id] * len(p), "video_id": [str(v) for v in video_ids],
                          "p_animal": p, "skip": p < threshold, "threshold": [float(threshold)] * len(p),
                          "max_animal_loss": [float(max_animal_loss)] * len(p), "basis": [basis] * len(p),
                          "created_at": [datetime.now(timezone.utc).replace(tzinfo=None)] * len(p)},
                         schema={"model_id": pl.String, "video_id": pl.String, "p_animal": pl.Float64,
                                 "skip": pl.Boolean, "threshold": pl.Float64, "max_animal_loss": pl.Float64,
                                 "basis": pl.String, "created_at": pl.Datetime("us")})
    with registered(con, new_filter=frame):
        con.execute("DELETE FROM blank_filter b USING new_filter n WHERE b.model_id = n.model_id "
                    "AND b.video_id = n.video_id")
        con.execute("INSERT INTO blank_filter SELECT * FROM new_filter")
    return int((p < threshold).sum())


def read_blank_filter(con, model_id: str) -> list[tuple]:
    """``(video_id, p_animal, skip, threshold, basis)`` of ``model_id``'s rows, by video id."""
    return con.execute("SELECT video_id, p_animal, skip, threshold, basis FROM blank_filter WHERE model_id = ? "
                       "ORDER BY video_id", [model_id]).fetchall()
