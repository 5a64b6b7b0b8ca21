"""The main job on the demo collection (``jungle demo run``): generate (or reuse) the demo
collection, ingest it with labels and folds, featurize, aggregate, stack every recipe, predict
the unlabelled clips, write the submission CSV and the report, and return a table of recipes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import JungleConfig
from ..errors import InputError
from ..ingest.folds import FoldsConfig
from ..ingest.labels import LabelsConfig
from ..ingest.run import IngestConfig, ingest
from ..meta.metrics import competition_log_loss
from ..meta.model_io import choose_model
from ..meta.predict import predict
from ..meta.report import write_report
from ..pipeline import DEFAULT_SOURCE, crop_sets, ensure_feature_sets, featurize_default
from ..store.db import connect
from ..store.labels import read_labelled
from ..store.workspace import Workspace
from .config import DemoConfig

__all__ = ["DEMO_RECIPES", "DemoRunConfig", "RecipeScore", "DemoRunResult", "prior_log_loss", "run_demo"]

DEMO_RECIPES = ("metadata-only", "min-max", "first-place", "third-place", "all")


class DemoRunConfig(JungleConfig):
    """``jungle demo run``.

    Attributes:
        directory: where the demo collection is (made when missing).
        n_train, n_test, seed: size and seed of a collection made here.
        frames: frame sampling for the encoder.
        folds: cross-validation folds.
        trials: Optuna trials per level-2 model.
        max_rounds: most boosting rounds of a trial (early stopping usually ends sooner).
        pca: principal components kept of every feature set of 1,024 or more columns (None: all
            columns). 64 makes the wide recipes ~30x faster on the demo for about the same log loss.
        recipes: recipes to compare; the best (lowest OOF log loss) becomes the current model and
            predicts the test clips.
        submission: the submission CSV (default: ``<workspace>/submission.csv``).
    """

    directory: Path
    n_train: int = 400
    n_test: int = 100
    seed: int = 0
    frames: str = "uniform:8"
    folds: int = 5
    trials: int = 5
    max_rounds: int = 300
    pca: int | None = 64
    recipes: tuple[str, ...] = DEMO_RECIPES
    submission: Path | None = None


@dataclass
class RecipeScore:
    """One row of the recipe table."""

    recipe: str
    features: str
    log_loss: float
    accuracy: float
    macro_f1: float
    seconds: float
    model_id: str | None = None


@dataclass
class DemoRunResult:
    """What ``run_demo`` made."""

    scores: list[RecipeScore]
    prior_log_loss: float
    best: str
    submission: Path
    report: Path
    test_log_loss: float | None
    seconds: dict[str, float] = field(default_factory=dict)

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["recipe", "feature sets", "oof_log_loss", "accuracy", "macro_f1", "seconds"]
        rows = [("class prior (baseline)", "-", round(self.prior_log_loss, 4), None, None, None)]
        rows += [(s.recipe, s.features, round(s.log_loss, 4), round(s.accuracy, 4), round(s.macro_f1, 4),
                  round(s.seconds, 1)) for s in self.scores]
        return columns, rows


def prior_log_loss(workspace: Workspace, fold_scheme: str = "default") -> float:
    """The competition metric of the class-prior baseline, out of fold (priors from the other folds)."""
    import numpy as np

    with connect(workspace, read_only=True) as con:
        labelled = read_labelled(con, fold_scheme)
    Y, folds = labelled.Y, labelled.folds
    P = np.zeros_like(Y)
    for fold in np.unique(folds):
        inside = folds == fold
        P[inside] = Y[~inside].mean(axis=0)
    return competition_log_loss(Y, np.clip(P, 1e-4, 1 - 1e-4))


def _test_log_loss(labels_csv: Path, submission: Path) -> float | None:
    """The competition metric of a submission against the demo's answers for its test clips."""
    import polars as pl

    if not labels_csv.exists():
        return None
    truth = pl.read_csv(labels_csv)
    predicted = pl.read_csv(submission)
    joined = truth.join(predicted, on="filename", suffix="__p")
    classes = [c for c in truth.columns if c != "filename"]
    if joined.height == 0:
        return None
    return competition_log_loss(joined.select(classes).to_numpy(),
                                joined.select([f"{c}__p" for c in classes]).to_numpy())


def run_demo(workspace: Workspace, config: DemoRunConfig, log: Callable[[str], None] | None = None) -> DemoRunResult:
    """The main job on the demo collection: every stage, every recipe, a submission and a report."""
    # imported when the job runs: they load torch, xgboost and optuna, and OpenCV
    from ..features.aggregates.aggregate import set_name
    from ..meta.stack import StackConfig, stack
    from ..meta.tuning import TuneConfig
    from .generate import make_demo

    say = log or (lambda _line: None)
    seconds: dict[str, float] = {}

    def timed(stage: str, fn):
        started = time.monotonic()
        say(f"== {stage}")
        out = fn()
        seconds[stage] = time.monotonic() - started
        return out

    demo_config = DemoConfig(seed=config.seed, n_train=config.n_train, n_test=config.n_test)
    manifest = timed("demo collection", lambda: make_demo(config.directory, demo_config, workers=2, progress=True))
    say(f"{len(manifest.train_clips)} labelled and {len(manifest.test_clips)} test clips in {manifest.directory}")

    def _ingest():
        train = ingest(workspace, manifest.directory / "train", IngestConfig(),
                       labels=LabelsConfig(path=str(manifest.train_labels)),
                       folds=FoldsConfig(k=config.folds, seed=config.seed))
        return train, ingest(workspace, manifest.directory / "test", IngestConfig())

    for part, summary in zip(("train", "test"), timed("ingest", _ingest)):
        if summary.error:  # the labels or folds of the train clips: nothing after this could be scored
            raise InputError(f"ingest of the demo's {part} clips: {summary.error}")
    # motion boxes only: the demo's animals are drawn, not photographed (MegadetectorLite added nothing
    # there), and the demo's time stays the same with the detector's weights cached or not
    timed("featurize", lambda: featurize_default(workspace, config.frames, detector=False))
    sets = [set_name("meta")] + [set_name(kind, DEFAULT_SOURCE, i) for kind, i in
                                 (("stats", 0), ("minmax", 0), ("minmax", 1), ("attention", 0))]
    timed("aggregate", lambda: ensure_feature_sets(workspace, sets, frames=config.frames, log=say,
                                                   optional=crop_sets(DEFAULT_SOURCE)))

    scores = []
    for recipe in config.recipes:
        started = time.monotonic()
        say(f"== stack --recipe {recipe}")
        tune = TuneConfig(trials=config.trials, seed=config.seed, max_rounds=config.max_rounds,
                          early_stopping_rounds=20)
        result = stack(workspace, StackConfig(recipe=recipe, tune=tune, pca=config.pca),
                       log=say)
        features = " + ".join(",".join(n for n, _ in m.features) for m in result.members)
        scores.append(RecipeScore(recipe, features, result.log_loss, result.accuracy, result.macro_f1,
                                  time.monotonic() - started, result.model_id))
        seconds[f"stack {recipe}"] = time.monotonic() - started
    best = min(scores, key=lambda s: s.log_loss)
    choose_model(workspace, best.model_id, f"the demo's best recipe ({best.recipe}), out-of-fold log loss "
                                           f"{best.log_loss:.4f}")
    submission = config.submission or workspace.root / "submission.csv"
    timed("predict", lambda: predict(workspace, model=best.model_id, out=submission))
    report = timed("report", lambda: write_report(workspace, model=best.model_id))
    return DemoRunResult(scores, prior_log_loss(workspace), best.recipe, submission, Path(report),
                         _test_log_loss(manifest.test_labels, submission), seconds)
