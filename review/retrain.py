"""Fast re-fits for the review loop: seconds on the cached video-level features, not a new stack.

``jungle stack`` (Optuna-tuned XGBoost, blended, clipped) stays the way to the final model. While
labelling, the reviewer needs something quicker: after a few dozen new labels, re-fit on the
features the model reads and re-rank the queue. A re-fit never replaces a model:

1. :func:`fit_predict`: a linear model (:mod:`jungle.meta.models.linear`) with out-of-fold
   probabilities for the labelled clips (k folds) and a fit on all of them for the rest.
2. :func:`retrain`: the library call (``jungle review --retrain`` and the page's Retrain
   button). It saves the re-fit as a new model (``models/refit-.../``, recipe ``refit``, its
   stacked model named as ``base_model``) with its predictions (``oof`` rows for labelled
   clips, ``predict`` for the others), scores it and the model the review runs with on the same
   basis (the clips labelled now, each model's out-of-sample probabilities, the current labels),
   and makes the better one current (:mod:`jungle.store.model_choices`). ``jungle models use`` or the
   page's model menu goes back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from pydantic import Field

from ..config import JungleConfig
from ..errors import InputError
from ..meta.dataset import feature_matrix
from ..meta.manifest import REFIT_RECIPE, ClipRecord, ModelManifest, RefitRecord
from ..meta.metrics import competition_log_loss, evaluate, is_single_label
from ..meta.model_io import load_model, new_model_id, save_model
from ..meta.models.linear import LinearHead, LinearModel, Standardiser, fit_head
from ..meta.predict import check_versions
from ..store import registry
from ..store.db import connect, transaction
from ..store.label_events import states_before_review
from ..store.labels import read_labelled
from ..store.model_choices import current_choice, record_choice
from ..store.predictions import read_out_of_sample, write_predictions
from ..store.videos import read_videos
from ..store.workspace import Workspace

__all__ = [
    "RetrainConfig",
    "FitResult",
    "LabelCounts",
    "ModelScore",
    "RetrainResult",
    "NotEnoughLabels",
    "fit_predict",
    "label_counts",
    "load_features",
    "load_labels",
    "labels_before_review",
    "model_probabilities",
    "retrain",
]


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
    """One fit: probabilities (OOF for labelled clips, a fit on all labels for the others), the
    out-of-fold log loss, the mode and the head fitted on every labelled clip."""

    P: np.ndarray
    oof_log_loss: float
    mode: str  # 'multiclass' | 'binary'
    head: LinearHead
    folds: np.ndarray  # fold of each labelled clip


@dataclass
class LabelCounts:
    """Labelled clips, in all and per class."""

    labelled: int
    counts: dict[str, int]


@dataclass
class ModelScore:
    """A model's out-of-fold log loss on the clips labelled now (the same basis for every model)."""

    model_id: str
    recipe: str | None
    log_loss: float
    current: bool


@dataclass
class RetrainResult:
    """What :func:`retrain` did: the re-fit saved, both models' scores, the current model and the
    new probabilities of the current model."""

    refit_id: str
    scores: list[ModelScore]
    clips: int
    current: str
    before: LabelCounts
    after: LabelCounts
    seconds: float
    video_ids: list[str] = field(repr=False)
    classes: list[str] = field(repr=False)
    P: np.ndarray = field(repr=False)  # the current model's probabilities, one row per video id

    @property
    def kept(self) -> bool:
        """Whether the model the review ran with stays current (the re-fit scored no better)."""
        return self.current != self.refit_id

    def as_json(self) -> dict:
        """The page's view: the models compared, the current one, label counts and the time taken."""
        return {"refit_id": self.refit_id, "current": self.current, "clips": self.clips,
                "models": [{"model_id": s.model_id, "recipe": s.recipe, "log_loss": round(s.log_loss, 4),
                            "current": s.current} for s in self.scores],
                "before": {"labelled": self.before.labelled, "counts": self.before.counts},
                "after": {"labelled": self.after.labelled, "counts": self.after.counts},
                "seconds": round(self.seconds, 2)}

    def rows(self) -> tuple[list[str], list[tuple]]:
        """The models compared, for the CLI table."""
        columns = ["model", "recipe", f"oof_log_loss ({self.clips} labelled clips)", "current"]
        return columns, [(s.model_id, s.recipe or "-", round(s.log_loss, 4), "yes" if s.current else "")
                         for s in self.scores]

    def label_rows(self) -> tuple[list[str], list[tuple]]:
        """Labelled clips per class before any review change and now (the classes that changed)."""
        rows = [(c, self.before.counts.get(c, 0), self.after.counts.get(c, 0)) for c in self.classes
                if self.before.counts.get(c, 0) != self.after.counts.get(c, 0)]
        rows.append(("(clips labelled)", self.before.labelled, self.after.labelled))
        return ["class", "before_review", "now"], rows


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
        Z: (n, d) prepared features (:class:`~jungle.meta.models.linear.Standardiser`).
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

    def fit(rows) -> LinearHead:
        return fit_head(Z_lab[rows], Y_lab[rows], single, config.C, config.max_iter)

    oof = np.empty((n_labelled, Y.shape[1]))
    fold_of = np.zeros(n_labelled, dtype=np.int64)
    for k, (train, test) in enumerate(_folds(Y_lab, single, config.folds, config.seed)):
        oof[test] = fit(train).predict(Z_lab[test])
        fold_of[test] = k
    head = fit(np.arange(n_labelled))
    P = np.empty((len(Z), Y.shape[1]))
    P[labelled] = oof
    if (~labelled).any():
        P[~labelled] = head.predict(Z[~labelled])
    return FitResult(P, competition_log_loss(Y_lab, oof), head.mode, head, fold_of)


def label_counts(Y: np.ndarray, labelled: np.ndarray, classes) -> LabelCounts:
    """Labelled clips, in all and per class."""
    labelled = np.asarray(labelled, dtype=bool)
    totals = np.asarray(Y)[labelled].sum(axis=0)
    return LabelCounts(int(labelled.sum()), {c: int(t) for c, t in zip(classes, totals)})


def load_features(workspace: Workspace, model: str = "current"):
    """The saved model and the features it reads for every readable clip that has them.

    Returns:
        (loaded model, video ids, list of per-input-block matrices in the manifest's columns)
    """
    import polars as pl

    loaded = load_model(workspace, model)
    with connect(workspace) as con:
        sets = {fs.name: fs for fs in check_versions(con, loaded)}
        readable = read_videos(con, ("video_id",), ok_only=True)
    featured = set().union(*(registry.read_video_table(workspace, fs).get_column("video_id").cast(pl.String).to_list()
                             for fs in sets.values()))
    video_ids = [video_id for (video_id,) in readable if video_id in featured]
    matrices = [feature_matrix(workspace, [sets[f.name] for f in block.features], video_ids, block.columns)[0]
                for block in loaded.inputs]
    return loaded, video_ids, matrices


def model_probabilities(workspace: Workspace, features) -> tuple[np.ndarray, str]:
    """What the model of ``features`` (a :func:`load_features` result) says about each of its clips,
    out of sample, and where that comes from in words.

    The model's rows in ``predictions`` (:func:`~jungle.store.predictions.read_out_of_sample`:
    out of fold for the clips it was fitted on, ``jungle predict``'s for the others), as the CSV
    export and the ``current_predictions`` view read them. Clips it has no row for are predicted
    here from their features and written as its ``predict`` rows, so that the page, the exports
    and SQL show the same numbers for every clip.
    """
    loaded, video_ids, matrices = features
    P = loaded.predict_proba(matrices)
    row_of = {v: i for i, v in enumerate(video_ids)}
    col_of = {c: j for j, c in enumerate(loaded.classes)}
    with connect(workspace) as con:
        rows = read_out_of_sample(con, loaded.model_id)
        fitted, seen = set(), set()
        for video_id, cls, p, kind, _ in rows:
            i, j = row_of.get(video_id), col_of.get(cls)
            if i is not None and j is not None:
                P[i, j] = p
                seen.add(video_id)
                if kind == "oof":
                    fitted.add(video_id)
        missing = [i for i, v in enumerate(video_ids) if v not in seen]
        if missing:
            with transaction(con):
                write_predictions(con, loaded.model_id, "predict", [video_ids[i] for i in missing], loaded.classes,
                                  P[missing])
    recipe = f" ({loaded.recipe})" if loaded.recipe else ""
    origin = f"model {loaded.model_id}{recipe}"
    return P, origin + (f", out of fold for the {len(fitted)} clips it was fitted on" if fitted else "")


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


def _save_refit(workspace: Workspace, loaded, config: RetrainConfig, prep: Standardiser, fit: FitResult,
                video_ids, Y, labelled, log_loss: float) -> str:
    """Save the re-fit as a model folder next to the others; return its id."""
    import polars as pl

    base = loaded.manifest.refit.base_model if loaded.manifest.kind == "refit" else loaded.model_id
    refit_id = new_model_id(workspace, config.key(), prefix=REFIT_RECIPE)
    n_classes = len(loaded.classes)
    lab = np.asarray(labelled, dtype=bool)
    manifest = ModelManifest(
        model_id=refit_id, kind="refit", recipe=REFIT_RECIPE, created_at=datetime.now(timezone.utc).isoformat(),
        code_version=registry.code_version(), classes=list(loaded.classes), label_mode=fit.mode,
        feature_sets=list(loaded.manifest.feature_sets),
        fold_scheme=f"{config.folds} random folds of the labelled clips",
        blend_weights=[], clip=ClipRecord(kind="none", low=[0.0] * n_classes, high=[1.0] * n_classes),
        config={**config.model_dump(mode="json"), "base_model": base, "compared_with": loaded.model_id},
        metrics={**evaluate(Y[lab], fit.P[lab]).summary(), "log_loss": log_loss, "videos": int(lab.sum())},
        refit=RefitRecord(base_model=base, inputs=[{"features": b.features, "columns": b.columns}
                                                   for b in loaded.inputs],
                          file="linear.npz", labelled=int(lab.sum()), folds=config.folds, C=config.C,
                          components=config.components, seed=config.seed))
    folder = save_model(workspace, manifest, [], linear=LinearModel(prep, fit.head))
    pl.DataFrame({"video_id": [v for v, keep in zip(video_ids, lab) if keep], "fold": fit.folds.tolist(),
                  "label": Y[lab].astype(np.int8).tolist(), "probability": fit.P[lab].tolist()}
                 ).write_parquet(folder / "oof.parquet")
    return refit_id


def retrain(workspace: Workspace, model: str = "current", config: RetrainConfig = RetrainConfig(),
            features=None, probabilities: np.ndarray | None = None) -> RetrainResult:
    """Re-fit quickly on the model's inputs with the current labels, save the re-fit as a new model,
    and make the better of the two current.

    Args:
        workspace: the workspace.
        model: the model the review runs with (any name ``--model`` takes): its inputs are re-fitted,
            and the re-fit is compared with it.
        config: the re-fit settings.
        features: a :func:`load_features` result to reuse (the review page loads it once).
        probabilities: the model's probabilities for those clips (:func:`model_probabilities`),
            when already computed.

    Returns:
        both models' scores on the clips labelled now, the current model and its probabilities.

    Raises:
        NotEnoughLabels: too few labelled clips.
    """
    started = time.perf_counter()
    features = features or load_features(workspace, model)
    loaded, video_ids, matrices = features
    classes = loaded.classes
    X = np.concatenate(matrices, axis=1)
    prep = Standardiser.fit(X, config.components, config.seed)
    with connect(workspace) as con:
        Y, labelled = load_labels(con, video_ids, classes)
        Y0, labelled0 = labels_before_review(con, video_ids, classes)
    fit = fit_predict(prep.transform(X), Y, labelled, config)
    P_model = probabilities if probabilities is not None else model_probabilities(workspace, features)[0]
    lab = np.asarray(labelled, dtype=bool)
    model_loss = competition_log_loss(Y[lab], P_model[lab])
    refit_loss = fit.oof_log_loss
    refit_id = _save_refit(workspace, loaded, config, prep, fit, video_ids, Y, labelled, refit_loss)
    better = refit_loss < model_loss
    kinds = np.where(lab, "oof", "predict")
    with connect(workspace) as con:
        with transaction(con):
            write_predictions(con, refit_id, kinds, video_ids, classes, fit.P, replace="model")
            if better:
                record_choice(con, refit_id, f"review re-fit: out-of-fold log loss {refit_loss:.4f} on "
                                             f"{int(lab.sum())} labelled clips, better than {loaded.model_id}'s "
                                             f"{model_loss:.4f}")
        chosen = current_choice(con)
    current = chosen.model_id if chosen else loaded.model_id
    scores = [ModelScore(loaded.model_id, loaded.recipe, model_loss, current == loaded.model_id),
              ModelScore(refit_id, "refit", refit_loss, current == refit_id)]
    return RetrainResult(refit_id, scores, int(lab.sum()), current, label_counts(Y0, labelled0, classes),
                         label_counts(Y, labelled, classes), time.perf_counter() - started, list(video_ids),
                         classes, fit.P if better else P_model)
