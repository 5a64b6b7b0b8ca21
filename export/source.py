"""What every export reads from the workspace: the model, its classes, the videos, the machine's
probabilities and the human labels, aligned as arrays.

A model is named as every ``--model`` option names it (``current``, ``latest``, a recipe name, an
id, or a model folder). The machine's probabilities are the model's out-of-sample rows of the
``predictions`` table (:func:`~jungle.store.predictions.read_out_of_sample`: ``oof`` for the
clips it was fitted on, ``predict`` for the others), as the ``current_predictions`` view and the
review page show them; the ``labels`` table holds the human labels (imported or from review),
which win over the machine's. The ``kind='oof'`` rows are what per-class thresholds are fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, NotFoundError
from ..meta.manifest import read_manifest
from ..meta.model_io import MANIFEST, ModelNotFound, check_not_shadowing, model_dir
from ..store.db import connect
from ..store.label_events import latest_reviewers
from ..store.labels import read_labelled
from ..store.predictions import read_out_of_sample, read_predictions
from ..store.videos import read_videos
from ..store.workspace import Workspace

__all__ = ["ExportData", "UnknownModel", "ForeignModel", "NoPredictions", "UnpredictedVideos", "load_export_data",
           "load_oof"]

_VIDEO_COLUMNS = ("video_id", "path", "relpath", "filename", "site", "captured_at", "utc_offset_minutes",
                  "time_source", "duration", "fps", "frames", "width", "height")
_LISTED = 10


class UnknownModel(NotFoundError):
    """No saved model has that name."""


class ForeignModel(ModelError):
    """The model folder belongs to another workspace and has made no predictions in this one."""


class NoPredictions(NotFoundError):
    """The model has no ``predict`` rows in this workspace."""


class UnpredictedVideos(InputError):
    """Some videos have neither the model's predictions nor human labels."""


@dataclass
class ExportData:
    """The workspace's results, one row per video (sorted by ``video_id``).

    Attributes:
        model_id: the saved model.
        classes: the model's classes, in its column order.
        videos: per video a dict of ``videos`` columns (video_id, path, relpath, filename, site,
            captured_at, utc_offset_minutes, time_source (see :mod:`jungle.store.capture_times`), duration, fps,
            frames, width, height).
        probabilities: (n, c) the model's probabilities, NaN where a video has none.
        predicted: (n,) whether the video has the model's probabilities.
        predicted_at: per video the time its probabilities were written (None without).
        kinds: per video ``oof`` or ``predict``: where its probabilities come from (None without).
        labels: (n, c) 0/1 human labels (0 where unlabelled).
        labelled: (n,) whether the video has human labels.
        label_source: per video its labels' source (None when unlabelled).
        reviewers: per video who made its latest review label change (None when nobody was named).
        recipe: the model's recipe (None for a model stacked from ``--features``).
        skipped: ids of ok videos left out (no predictions, no labels) with ``only_predicted``.
    """

    model_id: str
    classes: list
    videos: list
    probabilities: np.ndarray
    predicted: np.ndarray
    predicted_at: list
    kinds: list
    labels: np.ndarray
    labelled: np.ndarray
    label_source: list
    skipped: list
    reviewers: list = field(default_factory=list)
    recipe: str | None = None

    def subset(self, keep: np.ndarray) -> "ExportData":
        """The rows where ``keep`` is True."""
        index = np.flatnonzero(keep)
        pick = lambda items: [items[i] for i in index]  # noqa: E731
        return ExportData(self.model_id, self.classes, pick(self.videos), self.probabilities[index],
                          self.predicted[index], pick(self.predicted_at), pick(self.kinds), self.labels[index],
                          self.labelled[index], pick(self.label_source), self.skipped, pick(self.reviewers),
                          self.recipe)


def resolve_model(workspace: Workspace, model: str) -> tuple[str, Path, list, str | None]:
    """(model id, folder, classes, recipe) of ``model``; :class:`UnknownModel` when there is none."""

    try:
        folder = model_dir(workspace, model)
    except ModelNotFound as exc:
        raise UnknownModel(str(exc)) from None
    manifest = read_manifest(folder / MANIFEST)
    check_not_shadowing(workspace, folder, manifest)
    return manifest.model_id, folder, list(manifest.classes), manifest.recipe_name


def _inside(folder: Path, root: Path) -> bool:
    return folder.resolve().is_relative_to(root.resolve())


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _matrix(rows, index: dict, classes: list, fill: float) -> np.ndarray:
    """(videos, classes) matrix from prediction rows (video_id, class, probability, ...); classes outside
    ``classes`` are ignored."""
    column = {c: j for j, c in enumerate(classes)}
    out = np.full((len(index), len(classes)), fill, dtype=np.float64)
    for video_id, label, value, *_ in rows:
        if video_id in index and label in column:
            out[index[video_id], column[label]] = value
    return out


def load_export_data(workspace: Workspace, model: str = "current", only_predicted: bool = False,
                     labels_count: bool = True) -> ExportData:
    """Read the model's predictions, the videos and their human labels.

    Args:
        workspace: the workspace.
        model: ``current``, ``latest``, a recipe name, a model id or a model folder.
        only_predicted: leave out (and record) ok videos with neither predictions nor labels
            instead of refusing.
        labels_count: a video with human labels but no predictions is exported (Camtrap DP); when
            False (the CSV and MegaDetector exports) it counts as unpredicted.

    Raises:
        UnknownModel, ForeignModel, NoPredictions, UnpredictedVideos.
    """
    model_id, folder, classes, recipe = resolve_model(workspace, model)
    with connect(workspace, read_only=True) as con:
        predictions = read_out_of_sample(con, model_id)
        if not predictions:
            if not _inside(folder, workspace.models_dir):
                raise ForeignModel(
                    f'model "{model_id}" ({folder}) belongs to another workspace and has no predictions in '
                    f"{workspace.root}. Export it from its own workspace (--workspace), or predict these videos "
                    f"with it first (`jungle predict --model {folder} --videos all`).")
            raise NoPredictions(f'model "{model_id}" has no predictions in {workspace.root}. Run '
                                f"`jungle predict --model {model_id} --videos all` first.")
        videos = [dict(zip(_VIDEO_COLUMNS, row)) for row in read_videos(con, _VIDEO_COLUMNS, ok_only=True)]
        labels = read_labelled(con, None, required=False)
        reviewers = latest_reviewers(con)
    written, kinds = {}, {}
    for video_id, _, _, kind, created_at in predictions:
        written[video_id] = max(written.get(video_id, created_at), created_at)
        kinds[video_id] = kind
    ids = [v["video_id"] for v in videos]
    index = {v: i for i, v in enumerate(ids)}
    probabilities = _matrix(predictions, index, classes, np.nan)
    Y, labelled = labels.aligned(ids, classes)
    sources = labels.source_of()
    data = ExportData(
        model_id, classes, videos, probabilities, ~np.isnan(probabilities).any(axis=1),
        [written.get(v) for v in ids], [kinds.get(v) for v in ids], Y.astype(np.float64), labelled,
        [sources.get(v) for v in ids], [], [reviewers.get(v) for v in ids], recipe)
    covered = data.predicted | data.labelled if labels_count else data.predicted
    missing = [v["relpath"] or v["path"] for v, ok in zip(videos, covered) if not ok]
    if missing and not only_predicted:
        what = "neither predictions of" if labels_count else "no predictions from"
        tail = " nor human labels" if labels_count else ""
        raise UnpredictedVideos(
            f"{len(missing)} video(s) have {what} model {model_id}{tail}: {_listing(sorted(missing))}. Run "
            f"`jungle predict --model {model_id} --videos all`, or pass --only-predicted to leave them out.")
    data = data.subset(covered)
    data.skipped = sorted(missing)
    return data


def load_oof(workspace: Workspace, model_id: str, classes: list) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, 0/1 labels) of the model's out-of-fold predictions of labelled videos."""
    with connect(workspace, read_only=True) as con:
        oof = read_predictions(con, model_id, ("oof",))
        labels = read_labelled(con, None, required=False)
    labelled_ids = set(labels.video_ids.tolist())
    ids = sorted({row[0] for row in oof} & labelled_ids)
    index = {v: i for i, v in enumerate(ids)}
    return _matrix(oof, index, classes, np.nan), labels.aligned(ids, classes)[0].astype(np.float64)
