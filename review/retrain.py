"""Fast re-fits for the review loop: seconds on the cached video-level features, not a new stack.

``jungle stack`` (Optuna-tuned XGBoost, blended, clipped) stays the way to the final model. While
labelling, the reviewer needs something quicker: after a few dozen new labels, re-fit on the
features the saved model reads and re-rank the queue. This module does that with a linear model:

1. :func:`prepare`: missing values filled with the column median, columns standardised, and
   sets wider than ``components`` columns reduced to their first principal components (fitted on
   the features of every clip, never on labels).
2. :func:`fit_predict`: one multinomial logistic regression when every labelled clip has one
   class, else one binary logistic regression per class; out-of-fold probabilities for the
   labelled clips (k folds) and a fit on all of them for the rest. Classes nobody labelled yet get
   a small constant probability.
3. :func:`retrain`: the library call (``jungle review --retrain`` and the page's Retrain
   button): loads the features and labels, fits, writes the probabilities to ``predictions``
   under the model id ``review-<saved model id>`` (``oof`` rows for labelled clips, ``predict``
   for the others), and reports the out-of-fold log loss and per-class counts before and after.
   "Before" is the previous re-fit of this model (``<workspace>/review/retrain-<id>.json``), or
   for the first one a fit on the labels as they were before any review change (rebuilt from
   ``label_events``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np
from pydantic import Field

from ..config import JungleConfig
from ..errors import InputError
from ..meta.dataset import feature_matrix
from ..meta.metrics import competition_log_loss, is_single_label
from ..meta.model_io import load_model
from ..meta.predict import check_versions
from ..store import registry
from ..store.db import connect, transaction
from ..store.label_events import states_before_review
from ..store.labels import read_labelled
from ..store.predictions import write_predictions
from ..store.videos import read_videos
from ..store.workspace import Workspace

__all__ = [
    "RetrainConfig",
    "FitResult",
    "RetrainSummary",
    "RetrainResult",
    "NotEnoughLabels",
    "review_model_id",
    "prepare",
    "fit_predict",
    "label_counts",
    "load_features",
    "load_labels",
    "labels_before_review",
    "write_review_predictions",
    "retrain",
]

_FLOOR = 1e-3  # probability given to classes with no labelled example yet


class NotEnoughLabels(InputError):
    """Too few labelled clips to re-fit."""


class RetrainConfig(JungleConfig):
    """Settings of the fast re-fit.

    Attributes:
        folds: folds of the out-of-fold probabilities.
        C: inverse L2 regularisation of the logistic regressions.
        components: feature matrices wider than this go in as their first principal components.
        max_iter: solver iterations.
        seed: seed of the folds and the principal components.
    """

    folds: int = Field(5, ge=2)
    C: float = Field(0.1, gt=0)
    components: int = Field(128, ge=1)
    max_iter: int = Field(300, ge=10)
    seed: int = 0


@dataclass
class FitResult:
    """Probabilities of one fit: OOF for labelled clips, a fit on all labels for the others."""

    P: np.ndarray
    oof_log_loss: float
    mode: str  # 'multiclass' | 'binary'


@dataclass
class RetrainSummary:
    """Out-of-fold log loss and label counts of one re-fit."""

    labelled: int
    oof_log_loss: float | None  # None: too few labels to fit
    counts: dict[str, int]
    at: str = ""


@dataclass
class RetrainResult:
    """What :func:`retrain` did: the model re-fitted, before and after, and the new probabilities."""

    model_id: str
    review_model_id: str
    before: RetrainSummary
    after: RetrainSummary
    seconds: float
    video_ids: list[str] = field(repr=False)
    classes: list[str] = field(repr=False)
    P: np.ndarray = field(repr=False)

    def as_json(self) -> dict:
        """The page's view: ids, before/after summaries and the time taken."""
        return {"model_id": self.model_id, "review_model_id": self.review_model_id,
                "before": asdict(self.before), "after": asdict(self.after), "seconds": round(self.seconds, 2)}

    def rows(self) -> tuple[list[str], list[tuple]]:
        """One row per class plus the totals, for the CLI table."""
        columns = ["class", "labelled_before", "labelled_after"]
        rows = [(c, self.before.counts.get(c, 0), self.after.counts.get(c, 0)) for c in self.classes]
        rows.append(("(clips labelled)", self.before.labelled, self.after.labelled))
        rows.append(("(OOF log loss)", *(None if s.oof_log_loss is None else round(s.oof_log_loss, 4)
                                         for s in (self.before, self.after))))
        return columns, rows


def review_model_id(model_id: str) -> str:
    """The ``predictions.model_id`` of the review re-fits of ``model_id``."""
    return f"review-{model_id}"


def prepare(X: np.ndarray, components: int = 128, seed: int = 0) -> np.ndarray:
    """Median-filled, standardised features; the first ``components`` principal components when wider."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(all="ignore"):
        medians = np.nanmedian(X, axis=0) if len(X) else np.zeros(X.shape[1])
    medians = np.nan_to_num(medians)
    X = np.where(np.isnan(X), medians, X)
    std = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    if Z.shape[1] > components and len(Z) > components:
        from sklearn.decomposition import PCA

        Z = PCA(n_components=components, random_state=seed).fit_transform(Z)
        Z /= np.where(Z.std(axis=0) > 0, Z.std(axis=0), 1.0)
    return Z


def _fit_multiclass(Z_train, y_train, Z_test, n_classes: int, config: RetrainConfig) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y_train)
    P = np.full((len(Z_test), n_classes), _FLOOR)
    if len(present) == 1:
        P[:, present[0]] = 1.0
    else:
        model = LogisticRegression(C=config.C, max_iter=config.max_iter).fit(Z_train, y_train)
        P[:, model.classes_] = np.maximum(model.predict_proba(Z_test), _FLOOR)
    return P / P.sum(axis=1, keepdims=True)


def _fit_binary(Z_train, Y_train, Z_test, config: RetrainConfig) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    P = np.empty((len(Z_test), Y_train.shape[1]))
    for c in range(Y_train.shape[1]):
        y = Y_train[:, c]
        if y.min() == y.max():
            P[:, c] = 1.0 - _FLOOR if y[0] == 1 else _FLOOR
        else:
            model = LogisticRegression(C=config.C, max_iter=config.max_iter).fit(Z_train, y)
            P[:, c] = model.predict_proba(Z_test)[:, 1]
    return np.clip(P, _FLOOR, 1.0 - _FLOOR)


def _folds(Y: np.ndarray, single: bool, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    k = min(k, len(Y))
    if single:
        y = Y.argmax(axis=1)
        if np.bincount(y).max() >= k:
            import warnings

            with warnings.catch_warnings():  # classes with fewer clips than folds are expected here
                warnings.simplefilter("ignore", UserWarning)
                return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(Y, y))
    return list(KFold(k, shuffle=True, random_state=seed).split(Y))


def fit_predict(Z: np.ndarray, Y: np.ndarray, labelled: np.ndarray, config: RetrainConfig = RetrainConfig()
                ) -> FitResult:
    """Probabilities for every clip: out-of-fold for the labelled ones, from a fit on all labels otherwise.

    Args:
        Z: (n, d) prepared features (:func:`prepare`).
        Y: (n, C) 0/1 labels; rows of unlabelled clips are ignored.
        labelled: (n,) bool.
        config: the re-fit settings.

    Raises:
        NotEnoughLabels: fewer labelled clips than folds.
    """
    labelled = np.asarray(labelled, dtype=bool)
    Y = np.asarray(Y)
    n_labelled = int(labelled.sum())
    if n_labelled < config.folds:
        raise NotEnoughLabels(f"only {n_labelled} labelled clip(s): label at least {config.folds} "
                              "before retraining (one per out-of-fold split)")
    Z_lab, Y_lab = Z[labelled], Y[labelled]
    single = is_single_label(Y_lab)
    n_classes = Y.shape[1]

    def fit(train_rows, Z_test):
        if single:
            return _fit_multiclass(Z_lab[train_rows], Y_lab[train_rows].argmax(axis=1), Z_test, n_classes, config)
        return _fit_binary(Z_lab[train_rows], Y_lab[train_rows], Z_test, config)

    oof = np.empty((n_labelled, n_classes))
    for train, test in _folds(Y_lab, single, config.folds, config.seed):
        oof[test] = fit(train, Z_lab[test])
    P = np.empty((len(Z), n_classes))
    P[labelled] = oof
    if (~labelled).any():
        P[~labelled] = fit(np.arange(n_labelled), Z[~labelled])
    return FitResult(P, competition_log_loss(Y_lab, oof), "multiclass" if single else "binary")


def label_counts(Y: np.ndarray, labelled: np.ndarray, classes) -> dict[str, int]:
    """Labelled clips per class."""
    totals = np.asarray(Y)[np.asarray(labelled, dtype=bool)].sum(axis=0)
    return {c: int(t) for c, t in zip(classes, totals)}


def load_features(workspace: Workspace, model: str = "latest"):
    """The saved model and the features it reads for every readable clip that has them.

    Returns:
        (loaded model, video ids, list of per-member matrices in the manifest's columns)
    """
    import polars as pl

    loaded = load_model(workspace, model)
    with connect(workspace) as con:
        sets = {fs.name: fs for fs in check_versions(con, loaded)}
        readable = read_videos(con, ("video_id",), ok_only=True)
    featured = set().union(*(registry.read_video_table(workspace, fs).get_column("video_id").cast(pl.String).to_list()
                             for fs in sets.values()))
    video_ids = [video_id for (video_id,) in readable if video_id in featured]
    matrices = [feature_matrix(workspace, [sets[f.name] for f in entry.features], video_ids, entry.columns)[0]
                for entry in loaded.manifest.members]
    return loaded, video_ids, matrices


def load_labels(con, video_ids, classes) -> tuple[np.ndarray, np.ndarray]:
    """(Y, labelled) of ``video_ids`` in ``classes``' order (:func:`jungle.store.labels.read_labelled`)."""
    Y, labelled = read_labelled(con, None, required=False).aligned(video_ids, classes)
    return Y.astype(np.int8), labelled


def labels_before_review(con, video_ids, classes) -> tuple[np.ndarray, np.ndarray]:
    """(Y, labelled) as they were before the first review change of each clip (from ``label_events``)."""
    Y, labelled = load_labels(con, video_ids, classes)
    row_of = {v: i for i, v in enumerate(video_ids)}
    for video_id, state in states_before_review(con).items():
        i = row_of.get(video_id)
        if i is not None:
            labelled[i] = state.classes is not None
            Y[i] = [int(c in (state.classes or ())) for c in classes]
    return Y, labelled


def write_review_predictions(con, review_id: str, video_ids, classes, P: np.ndarray, labelled: np.ndarray) -> int:
    """Replace every ``predictions`` row of ``review_id``: ``oof`` for labelled clips, ``predict`` for the rest."""
    kinds = np.where(np.asarray(labelled, dtype=bool), "oof", "predict")
    with transaction(con):
        return write_predictions(con, review_id, kinds, video_ids, classes, P, replace="model")


def _history_path(workspace: Workspace, model_id: str):
    return workspace.root / "review" / f"retrain-{model_id}.json"


def _summary(Y, labelled, classes, oof_log_loss: float | None) -> RetrainSummary:
    loss = None if oof_log_loss is None else float(oof_log_loss)
    return RetrainSummary(int(np.asarray(labelled).sum()), loss, label_counts(Y, labelled, classes),
                          datetime.now(timezone.utc).isoformat(timespec="seconds"))


def retrain(workspace: Workspace, model: str = "latest", config: RetrainConfig = RetrainConfig(),
            features=None) -> RetrainResult:
    """Re-fit quickly on the saved model's feature sets with the current labels, and record it.

    Args:
        workspace: the workspace.
        model: the saved model whose feature sets to use (``latest``, an id or a folder).
        config: the re-fit settings.
        features: a :func:`load_features` result to reuse (the review page loads it once).

    Returns:
        the re-fit's probabilities for every clip with features, before/after summaries.

    Raises:
        NotEnoughLabels: too few labelled clips.
    """
    started = time.perf_counter()
    loaded, video_ids, matrices = features or load_features(workspace, model)
    classes = loaded.classes
    Z = prepare(np.concatenate(matrices, axis=1), config.components, config.seed)
    history_path = _history_path(workspace, loaded.model_id)
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    with connect(workspace) as con:
        Y, labelled = load_labels(con, video_ids, classes)
        before_labels = None if history else labels_before_review(con, video_ids, classes)
    after_fit = fit_predict(Z, Y, labelled, config)
    after = _summary(Y, labelled, classes, after_fit.oof_log_loss)
    if history:
        before = RetrainSummary(**history[-1])
    else:
        Y0, labelled0 = before_labels
        enough = labelled0.sum() >= config.folds
        before_loss = fit_predict(Z, Y0, labelled0, config).oof_log_loss if enough else None
        before = _summary(Y0, labelled0, classes, before_loss)
    review_id = review_model_id(loaded.model_id)
    with connect(workspace) as con:
        write_review_predictions(con, review_id, video_ids, classes, after_fit.P, labelled)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = history_path.with_suffix(".tmp")
    tmp.write_text(json.dumps([*history, asdict(after)], indent=1))
    tmp.replace(history_path)
    return RetrainResult(loaded.model_id, review_id, before, after, time.perf_counter() - started,
                         list(video_ids), classes, after_fit.P)
