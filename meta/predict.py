"""``jungle predict``: probabilities for new videos from a saved model, and the submission CSV.

The saved model's manifest names every feature set with the version it was trained on; a
prediction refuses to run when the workspace's current version of any of them differs, since the
columns would no longer mean what the model learned. Probabilities go to the ``predictions``
table (``kind='predict'``) and, with ``out``, to a CSV in the competition's format: ``filename``
then one column per class in the model's class order, one row per video.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ModelError
from ..store import registry
from ..store.db import connect
from ..store.workspace import Workspace
from .dataset import feature_matrix
from .model_io import LoadedModel, load_model
from .stack import write_predictions

__all__ = ["ModelMismatch", "PredictResult", "check_versions", "predict", "write_submission"]

Selection = Literal["unlabelled", "labelled", "all"]


class ModelMismatch(ModelError):
    """A feature set's current version is not the one the model was trained on."""


@dataclass
class PredictResult:
    """What ``predict`` wrote."""

    model_id: str
    videos: int
    classes: list[str]
    out: str | None
    rows_written: int
    video_ids: list[str]
    probabilities: np.ndarray


def check_versions(con, model: LoadedModel) -> list:
    """The registered feature sets the model reads; raise :class:`ModelMismatch` on a version change."""
    found, problems = [], []
    for name, version in model.feature_sets():
        current = registry.latest(con, name)
        if current is None:
            problems.append(f'feature set "{name}" (version {version} in the model) does not exist in this workspace')
        elif current.version != version:
            problems.append(f'feature set "{name}" is at version {current.version} in the workspace, '
                            f"but model {model.model_id} was trained on version {version}")
        else:
            found.append(current)
    if problems:
        raise ModelMismatch(
            "; ".join(problems) + ". Re-run `jungle stack` to train on the current feature sets, or "
            "predict with a model trained on them (`jungle predict --model ID`)."
        )
    return found


def _candidates(workspace: Workspace, con, sets, videos: Selection) -> tuple[list[str], list[str]]:
    """(video ids, filenames) of ok videos present in at least one of ``sets``, filtered by labels."""
    import polars as pl

    ids = pl.concat([registry.read_video_table(workspace, fs).select(pl.col("video_id").cast(pl.String))
                     for fs in sets]).unique()
    where = {"unlabelled": "AND v.video_id NOT IN (SELECT video_id FROM labels)",
             "labelled": "AND v.video_id IN (SELECT video_id FROM labels)", "all": ""}[videos]
    con.register("featured_videos", ids)
    try:
        rows = con.execute(
            f"SELECT v.video_id, v.filename FROM videos v JOIN featured_videos USING (video_id) "
            f"WHERE v.status = 'ok' {where} ORDER BY v.filename, v.video_id"
        ).fetchall()
    finally:
        con.unregister("featured_videos")
    return [r[0] for r in rows], [r[1] for r in rows]


def write_submission(path: Path, filenames: list[str], classes: list[str], P: np.ndarray) -> Path:
    """Write the competition CSV: ``filename`` + classes, one row per video, full float precision."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["filename", *classes])
        for filename, row in zip(filenames, np.asarray(P, dtype=np.float64)):
            writer.writerow([filename, *(repr(float(p)) for p in row)])
    tmp.replace(path)
    return path


def predict(workspace: Workspace, model: str = "latest", out: Path | None = None,
            videos: Selection = "unlabelled") -> PredictResult:
    """Predict videos with a saved model; write the predictions table and, with ``out``, the CSV.

    Args:
        workspace: the workspace holding the model and the new videos' feature sets.
        model: ``latest``, a model id, or a model folder.
        out: path of the submission CSV (None: table only).
        videos: ``unlabelled`` (the competition's test set), ``labelled`` or ``all`` videos that
            have features.

    Raises:
        ModelMismatch: a feature set's version differs from the model's manifest.
        LookupError: no video to predict.
    """
    loaded = load_model(workspace, model)
    with connect(workspace, read_only=True) as con:
        sets = {fs.name: fs for fs in check_versions(con, loaded)}
        video_ids, filenames = _candidates(workspace, con, list(sets.values()), videos)
    if not video_ids:
        hint = " Pass --videos all to predict labelled videos too." if videos == "unlabelled" else ""
        raise LookupError(f"no {videos} video has features from {', '.join(sets)} in {workspace.root}.{hint}")
    matrices = [
        feature_matrix(workspace, [sets[f["name"]] for f in entry["features"]], video_ids, entry["columns"])[0]
        for entry in loaded.manifest["members"]
    ]
    P = loaded.predict_proba(matrices)
    with connect(workspace) as con:
        written = write_predictions(con, loaded.model_id, "predict", video_ids, loaded.classes, P)
    if out is not None:
        write_submission(out, filenames, loaded.classes, P)
    return PredictResult(loaded.model_id, len(video_ids), loaded.classes, str(out) if out else None, written,
                         video_ids, P)
