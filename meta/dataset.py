"""Assemble the level-2 design matrix from named video-level feature sets, with labels and folds.

Feature sets are named ``name`` (its latest complete version) or ``name@version``. Each set's
numeric and boolean columns become features named ``<set>.<column>``; text columns are left out
(and listed). Videos missing from a set get missing values, which XGBoost handles natively.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ModelError, NotFoundError
from ..store import registry
from ..store.labels import read_classes, read_labelled
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
            raise InputError(
                f"feature set {fs.ref} is frame-level; the meta-model stacks video-level sets. "
                f"Aggregate it first (e.g. `jungle aggregate` makes hist_{fs.name} and minmax_{fs.name})."
            )
    return found


def load_classes(con) -> tuple[str, ...]:
    """The configured class order (table ``classes``); see :func:`jungle.store.labels.read_classes`."""
    return read_classes(con)


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
            raise ModelError(
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
        LabelsMissing, LabelsInconsistent, FoldsMissing: see :mod:`jungle.store.labels`.
    """
    with connect(workspace, read_only=True) as con:
        sets = resolve_sets(con, refs)
        labelled = read_labelled(con, fold_scheme)
    Y, video_ids, classes = labelled.Y, labelled.video_ids, labelled.classes
    X, columns, dropped = feature_matrix(workspace, sets, video_ids)
    missing = {name: int(np.isnan(X[:, cols]).all(axis=1).sum()) for name, cols in set_columns(columns).items()}
    return StackData(
        video_ids=video_ids, X=X, Y=Y, folds=labelled.folds,
        classes=classes, columns=columns, sets=[(fs.name, fs.version) for fs in sets],
        dropped_columns=dropped, missing_rows=missing,
    )
