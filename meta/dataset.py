"""Assemble the level-2 design matrix from named video-level feature sets, with labels and folds.

Feature sets are named ``name`` (its latest complete version) or ``name@version``. Each set's
numeric and boolean columns become features named ``<set>.<column>``; text columns are left out
(and listed). Videos missing from a set get missing values, which XGBoost handles natively.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NotFoundError
from ..store import registry
from ..store.registry import FeatureRef
from ..store.db import connect
from ..store.workspace import Workspace

__all__ = [
    "FeatureRef",
    "MissingFeatureSets",
    "StackData",
    "parse_refs",
    "resolve_sets",
    "load_classes",
    "column_set",
    "set_columns",
    "feature_matrix",
    "load_training_data",
]


class MissingFeatureSets(NotFoundError):
    """Some named feature sets do not exist (or have no complete version) in the workspace."""

    def __init__(self, missing: list[str], message: str):
        super().__init__(message)
        self.missing = missing


def parse_refs(text_or_list) -> tuple[FeatureRef, ...]:
    """``"meta,hist_lite0@2"`` (or a list of such names) as feature references."""
    items = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list)
    return tuple(FeatureRef.parse(item) if isinstance(item, str) else item for item in items if str(item).strip())


def resolve_sets(con, refs) -> list[registry.FeatureSet]:
    """The registered video-level feature sets that ``refs`` name.

    Raises:
        MissingFeatureSets: with every missing name, and what exists.
        ValueError: when a name is a frame-level set.
    """
    found, missing = [], []
    for ref in refs:
        try:
            found.append(registry.get(con, ref.name, ref.version))
        except registry.UnknownFeatureSet:
            missing.append(str(ref))
    if missing:
        known = sorted({s.ref for s in registry.list_sets(con, "video") if s.status == "complete"})
        raise MissingFeatureSets(
            missing,
            f"feature set(s) {', '.join(missing)} not found in the workspace. Video-level feature sets "
            f"available: {', '.join(known) or 'none yet'}. Build them with `jungle aggregate` "
            "(or name a recipe with --recipe, which builds what it needs).",
        )
    for fs in found:
        if fs.kind != "video":
            raise ValueError(
                f"feature set {fs.ref} is frame-level; the meta-model stacks video-level sets. "
                f"Aggregate it first (e.g. `jungle aggregate` makes hist_{fs.name} and minmax_{fs.name})."
            )
    return found


def load_classes(con) -> tuple[str, ...]:
    """The configured class order (table ``classes``)."""
    rows = con.execute("SELECT class FROM classes ORDER BY position").fetchall()
    if not rows:
        raise LookupError("the workspace has no classes configured. Import labels first: "
                          "`jungle ingest DIR --labels train_labels.csv`.")
    return tuple(r[0] for r in rows)


def column_set(column: str) -> str:
    """The feature set of a stacked column: columns are named ``<set>.<column>`` (:func:`feature_matrix`)."""
    return column.split(".", 1)[0]


def set_columns(columns: list[str]) -> dict[str, list[int]]:
    """Column indices of every feature set in ``columns``, sets in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(columns):
        groups.setdefault(column_set(name), []).append(index)
    return groups


def feature_matrix(workspace: Workspace, sets, video_ids, columns: list[str] | None = None):
    """The float32 matrix of ``sets`` for ``video_ids`` (in that order).

    Args:
        workspace: the workspace the sets live in.
        sets: registered video-level feature sets.
        video_ids: the rows wanted.
        columns: the exact feature columns to produce (a saved model's); default: every numeric
            column of every set.

    Returns:
        (matrix, column names, dropped text columns)
    """
    import polars as pl

    frame = pl.DataFrame({"video_id": pl.Series(list(video_ids), dtype=pl.String)})
    dropped: list[str] = []
    for fs in sets:
        table = registry.read_video_table(workspace, fs)
        keep = []
        for name, dtype in table.schema.items():
            if name == "video_id":
                continue
            if dtype.is_numeric() or dtype == pl.Boolean:
                keep.append(pl.col(name).cast(pl.Float32).alias(f"{fs.name}.{name}"))
            else:
                dropped.append(f"{fs.name}.{name}")
        frame = frame.join(table.select(pl.col("video_id").cast(pl.String), *keep), on="video_id",
                           how="left", maintain_order="left")
    names = [c for c in frame.columns if c != "video_id"]
    if columns is not None:
        absent = [c for c in columns if c not in names]
        if absent:
            raise ValueError(
                f"the feature sets lack {len(absent)} column(s) the model was trained on "
                f"(first: {', '.join(absent[:5])}); the sets changed since the model was saved. "
                "Re-run `jungle stack`."
            )
        names = list(columns)
    matrix = frame.select(names).to_numpy().astype(np.float32, copy=False) if names else \
        np.zeros((frame.height, 0), np.float32)
    return np.ascontiguousarray(matrix), names, dropped


@dataclass
class StackData:
    """The labelled training data of one level-2 model."""

    video_ids: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    folds: np.ndarray
    classes: tuple[str, ...]
    columns: list[str]
    sets: list[tuple[str, int]]
    dropped_columns: list[str] = field(default_factory=list)
    missing_rows: dict[str, int] = field(default_factory=dict)


def load_training_data(workspace: Workspace, refs, fold_scheme: str = "default") -> StackData:
    """Labelled videos of the workspace with features from ``refs``, labels and folds.

    Raises:
        MissingFeatureSets: a named set does not exist.
        LookupError: no labels, classes or folds.
    """
    import polars as pl

    with connect(workspace, read_only=True) as con:
        sets = resolve_sets(con, refs)
        classes = load_classes(con)
        rows = con.execute(
            "SELECT l.video_id, l.class, l.value, f.fold FROM labels l "
            "LEFT JOIN folds f ON f.video_id = l.video_id AND f.scheme = ? ORDER BY l.video_id",
            [fold_scheme],
        ).fetchall()
        schemes = [r[0] for r in con.execute("SELECT DISTINCT scheme FROM folds ORDER BY 1").fetchall()]
    labels = pl.DataFrame(rows, schema={"video_id": pl.String, "class": pl.String, "value": pl.Int8,
                                        "fold": pl.Int64}, orient="row")
    if labels.height == 0:
        raise LookupError("the workspace has no labels. Import them: `jungle ingest DIR --labels train_labels.csv`.")
    wide = labels.pivot(on="class", index=["video_id", "fold"], values="value", aggregate_function="max")
    unknown = [c for c in wide.columns if c not in ("video_id", "fold") and c not in classes]
    if unknown:
        raise LookupError(f"labels name classes missing from the class list: {', '.join(unknown[:5])}")
    no_fold = wide.filter(pl.col("fold").is_null()).height
    if no_fold:
        raise LookupError(
            f"{no_fold} labelled video(s) have no fold in scheme {fold_scheme!r} (schemes present: "
            f"{', '.join(schemes) or 'none'}). Make the scheme (again) to include them: `jungle folds 5 "
            f"--scheme {fold_scheme}` (--group-by site keeps each site in one fold), or pass --fold-scheme."
        )
    wide = wide.sort("video_id")
    Y = np.stack([wide[c].fill_null(0).to_numpy() if c in wide.columns else np.zeros(wide.height)
                  for c in classes], axis=1).astype(np.float32)
    video_ids = wide["video_id"].to_numpy().astype(str)
    X, columns, dropped = feature_matrix(workspace, sets, video_ids)
    missing = {name: int(np.isnan(X[:, cols]).all(axis=1).sum()) for name, cols in set_columns(columns).items()}
    return StackData(
        video_ids=video_ids, X=X, Y=Y, folds=wide["fold"].to_numpy().astype(np.int64),
        classes=classes, columns=columns, sets=[(fs.name, fs.version) for fs in sets],
        dropped_columns=dropped, missing_rows=missing,
    )
