"""The ``model_choices`` table: which saved model is current, and every choice before.

A workspace can hold many saved models (one per ``jungle stack``, one per review re-fit). One of
them is *current*: the one ``--model current`` (the default of every command that reads a model)
and the ``current_predictions`` view use. Each choice is appended with its time and reason
(``jungle stack`` saved it, a review re-fit scored better on the same out-of-fold basis, a person
chose it with ``jungle models use`` or on the review page); the newest is current, so the table is
also the history of what was current when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["ModelChoice", "CURRENT_MODEL_SQL", "record_choice", "current_choice", "choice_history"]

CURRENT_MODEL_SQL = "(SELECT model_id FROM model_choices ORDER BY choice_id DESC LIMIT 1)"
"""A SQL expression: the current model's id (NULL when no model was ever chosen)."""


@dataclass(frozen=True)
class ModelChoice:
    """One row of ``model_choices``."""

    model_id: str
    chosen_at: datetime
    reason: str | None


def record_choice(con, model_id: str, reason: str) -> ModelChoice:
    """Make ``model_id`` current (call it inside :func:`~jungle.store.db.transaction`, with the
    writes that made the model when there are any)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("INSERT INTO model_choices (model_id, chosen_at, reason) VALUES (?, ?, ?)", [model_id, now, reason])
    return ModelChoice(model_id, now, reason)


def current_choice(con) -> ModelChoice | None:
    """The newest choice (None: no model was ever chosen in this workspace, or its database is older
    than model choices and was opened read-only, so not migrated)."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'model_choices'"
                       ).fetchone()[0]:
        return None
    row = con.execute("SELECT model_id, chosen_at, reason FROM model_choices ORDER BY choice_id DESC LIMIT 1"
                      ).fetchone()
    return None if row is None else ModelChoice(*row)


def choice_history(con, limit: int = 20) -> list[ModelChoice]:
    """The ``limit`` newest choices, newest first."""
    rows = con.execute("SELECT model_id, chosen_at, reason FROM model_choices ORDER BY choice_id DESC LIMIT ?",
                       [limit]).fetchall()
    return [ModelChoice(*row) for row in rows]
