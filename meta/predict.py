"""``jungle predict``: probabilities for new videos from a saved model, and the submission CSV.

The saved model's manifest names every feature set with the version it was trained on and the
fingerprint of the configuration that made it; a prediction refuses to run when the workspace's
current version of any of them differs in either, since the columns would no longer mean what the
model learned (a model folder used in another workspace meets sets that share its version
numbers but not necessarily its configurations). Probabilities go to the ``predictions``
table (``kind='predict'``) and, with ``out``, to a CSV in the competition's format: ``filename``
then one column per class in the model's class order, one row per video.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ModelError, NotFoundError
from ..userfiles import check_output_file, write_user_text
from ..store import registry
from ..store.db import connect, transaction
from ..store.labels import read_labelled
from ..store.predictions import write_predictions
from ..store.videos import read_videos
from ..store.workspace import Workspace
from .dataset import feature_matrix
from .model_io import LoadedModel, load_model

__all__ = ["ModelMismatch", "PredictResult", "check_versions", "predict", "write_submission"]

Selection = Literal["unlabelled", "labelled", "all"]


class ModelMismatch(ModelError):
    """A feature set of the workspace is not the one the model was trained on: another version,
    or the same version number made with another configuration (e.g. in another workspace)."""


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
    recipe: str | None = None
    selection: str = "unlabelled"

    def top_classes(self) -> list[tuple[str, int]]:
        """(class, clips whose most probable class it is), most clips first."""
        counts = np.bincount(np.asarray(self.probabilities).argmax(axis=1), minlength=len(self.classes))
        order = np.argsort(-counts, kind="stable")
        return [(self.classes[j], int(counts[j])) for j in order if counts[j]]

    def summary(self, shown: int = 5) -> list[str]:
        """What ``jungle predict`` says: the clips, the model, the top classes, where the output went."""
        recipe = f" ({self.recipe})" if self.recipe else ""
        top = self.top_classes()
        listed = ", ".join(f"{c} {n}" for c, n in top[:shown])
        rest = sum(n for _, n in top[shown:])
        others = len(top) - shown
        more = f"; {rest} more in {others} other class{'es' if others != 1 else ''}" if others > 0 else ""
        return [f"Predicted {self.videos} {self.selection} clip{'s' if self.videos != 1 else ''} with model "
                f"{self.model_id}{recipe}.",
                f"Most probable class: {listed}{more}.",
                f"Written: {self.rows_written} rows to the predictions table (model {self.model_id}, kind 'predict')"
                + (f"; the submission CSV {self.out}." if self.out else ".")]


def check_versions(con, model: LoadedModel) -> list:
    """The registered feature sets the model reads.

    Each must be the workspace's latest complete version of its name, at the version the model
    was trained on, made with the same configuration (its ``config_key``, recorded in the manifest
    since manifest version 2; older manifests are checked by version only).

    Raises:
        ModelMismatch: naming every set that differs, both fingerprints, and what to do.
    """
    found, versions, configs = [], [], []
    for record in model.feature_sets():
        current = registry.latest(con, record.name)
        if current is None:
            versions.append(f'feature set "{record.name}" (version {record.version} in the model) does not '
                            "exist in this workspace")
        elif current.version != record.version:
            versions.append(f'feature set "{record.name}" is at version {current.version} in the workspace, '
                            f"but model {model.model_id} was trained on version {record.version}")
        elif record.config_key is not None and current.config_key != record.config_key:
            configs.append(f'feature set "{current.ref}" was made with another configuration in this workspace '
                           f"(fingerprint {current.config_key}) than the {record.ref} model {model.model_id} "
                           f"was trained on (fingerprint {record.config_key})")
        else:
            found.append(current)
    if versions:
        raise ModelMismatch(
            "; ".join(versions + configs) + ". Re-run `jungle stack` to train on the current feature sets, or "
            "predict with a model trained on them (`jungle predict --model ID`)."
        )
    if configs:
        raise ModelMismatch(
            "; ".join(configs) + ". Its columns would not mean what the model learned. Re-run `jungle stack` "
            "in this workspace, or rebuild the set with the model's configuration (the manifest's feature_sets "
            "lists it; `jungle features show NAME` shows this workspace's)."
        )
    return found


def _candidates(workspace: Workspace, con, sets, videos: Selection) -> tuple[list[str], list[str]]:
    """(video ids, filenames) of ok videos present in at least one of ``sets``, filtered by labels."""
    import polars as pl

    featured = set().union(*(registry.read_video_table(workspace, fs).get_column("video_id").cast(pl.String).to_list()
                             for fs in sets))
    labelled = set(read_labelled(con, None, required=False).video_ids.tolist())
    wanted = {"unlabelled": lambda v: v not in labelled, "labelled": lambda v: v in labelled,
              "all": lambda v: True}[videos]
    readable = read_videos(con, ("video_id", "filename"), ok_only=True)
    rows = sorted((filename, video_id) for video_id, filename in readable if video_id in featured and wanted(video_id))
    return [video_id for _, video_id in rows], [filename for filename, _ in rows]


def write_submission(path: Path, filenames: list[str], classes: list[str], P: np.ndarray) -> Path:
    """Write the competition CSV: ``filename`` + classes, one row per video, full float precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["filename", *classes])
    for filename, row in zip(filenames, np.asarray(P, dtype=np.float64)):
        writer.writerow([filename, *(repr(float(p)) for p in row)])
    return write_user_text(path, out.getvalue())  # temporary file beside, renamed; nothing left on failure


def predict(workspace: Workspace, model: str = "current", out: Path | None = None,
            videos: Selection = "unlabelled") -> PredictResult:
    """Predict videos with a saved model; write the predictions table and, with ``out``, the CSV.

    Args:
        workspace: the workspace holding the model and the new videos' feature sets.
        model: ``current``, ``latest``, a recipe name, a model id, or a model folder.
        out: path of the submission CSV (None: table only).
        videos: ``unlabelled`` (the competition's test set), ``labelled`` or ``all`` videos that
            have features.

    Raises:
        ModelMismatch: a feature set's version or configuration differs from the model's manifest.
        ModelError: the model folder is invalid or damaged (see :func:`~jungle.meta.model_io.load_model`).
        LookupError: no video to predict.
    """
    if out is not None:
        check_output_file(out)
    loaded = load_model(workspace, model)
    with connect(workspace, read_only=True) as con:
        sets = {fs.name: fs for fs in check_versions(con, loaded)}
        video_ids, filenames = _candidates(workspace, con, list(sets.values()), videos)
    if not video_ids:
        hint = " Pass --videos all to predict labelled videos too." if videos == "unlabelled" else ""
        raise NotFoundError(f"no {videos} video has features from {', '.join(sets)} in {workspace.root}.{hint}")
    matrices = [
        feature_matrix(workspace, [sets[f.name] for f in entry.features], video_ids, entry.columns)[0]
        for entry in loaded.inputs
    ]
    P = loaded.predict_proba(matrices)
    with connect(workspace) as con, transaction(con):
        written = write_predictions(con, loaded.model_id, "predict", video_ids, loaded.classes, P)
    if out is not None:
        write_submission(out, filenames, loaded.classes, P)
    return PredictResult(loaded.model_id, len(video_ids), loaded.classes, str(out) if out else None, written,
                         video_ids, P, loaded.recipe, videos)
