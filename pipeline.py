"""The whole pipeline as library calls: build missing feature sets, and the demo main job.

``ensure_feature_sets`` maps video-level feature-set names to the stages that make them
(featurize with the default encoder, then aggregate), so ``jungle stack --recipe NAME`` can run
what a recipe needs. ``run_demo`` is ``jungle demo run``: generate (or reuse) the demo
collection, ingest it with labels and folds, featurize, aggregate, stack every recipe, predict
the unlabelled clips, write the submission CSV and the report, and return a table of recipes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .store.workspace import Workspace

__all__ = [
    "SetPlan",
    "plan_feature_sets",
    "ensure_feature_sets",
    "DemoRunConfig",
    "RecipeScore",
    "DemoRunResult",
    "run_demo",
    "DEMO_RECIPES",
]

DEFAULT_SOURCE = "lite0"
DEMO_RECIPES = ("metadata-only", "min-max", "first-place", "third-place", "all")

# video-level set prefix -> aggregate kinds that make it (longest prefix first)
_PREFIX_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("minmax_stages_", ("minmax",)),
    ("minmax_", ("minmax",)),
    ("hist_", ("frame-head", "stats")),
    ("frameprobs_", ("frame-head",)),
    ("attnvec_", ("attention",)),
    ("attn_", ("attention",)),
)


@dataclass(frozen=True)
class SetPlan:
    """How to build the requested sets: aggregate ``kinds`` over frame-level ``source`` (None: metadata only)."""

    source: str | None
    kinds: tuple[str, ...]


def plan_feature_sets(names: list[str]) -> list[SetPlan]:
    """Group requested video-level set names by the frame-level source and aggregate kinds they need.

    Raises:
        ValueError: a name no stage of this pipeline makes.
    """
    by_source: dict[str | None, list[str]] = {}
    for name in names:
        if name == "meta":
            by_source.setdefault(None, []).append("meta")
            continue
        for prefix, kinds in _PREFIX_KINDS:
            if name.startswith(prefix) and len(name) > len(prefix):
                wanted = by_source.setdefault(name[len(prefix):], [])
                wanted.extend(k for k in kinds if k not in wanted)
                break
        else:
            raise ValueError(
                f'no pipeline stage makes feature set "{name}": build it yourself '
                "(`jungle featurize`, `jungle aggregate`) or choose another recipe."
            )
    return [SetPlan(source, tuple(kinds)) for source, kinds in by_source.items()]


def _has_complete(workspace: Workspace, name: str) -> bool:
    from .store import registry
    from .store.db import connect

    with connect(workspace, read_only=True) as con:
        return registry.latest(con, name) is not None


def ensure_feature_sets(workspace: Workspace, names: list[str], frames: str = "uniform:32",
                        log: Callable[[str], None] | None = None) -> list:
    """Build the video-level feature sets ``names`` with the stages that make them.

    A frame-level source that is missing is featurized first, but only for the built-in default
    encoder (``lite0``, offline ImageNet weights, with stage features); any other source must
    have been featurized by the user.

    Returns:
        The feature sets ``aggregate`` produced.
    """
    from .features.aggregates.aggregate import AggregateConfig, aggregate

    say = log or (lambda _line: None)
    made = []
    for plan in plan_feature_sets(list(names)):
        if plan.source is not None and not _has_complete(workspace, plan.source):
            if plan.source != DEFAULT_SOURCE:
                raise LookupError(
                    f'frame-level feature set "{plan.source}" does not exist; featurize it first, e.g. '
                    f"`jungle featurize --encoder ... --name {plan.source}`."
                )
            say(f"featurize: {DEFAULT_SOURCE} ({frames}, with stage features)")
            featurize_default(workspace, frames)
        sources = (plan.source,) if plan.source else (DEFAULT_SOURCE,)
        say(f"aggregate: {', '.join(plan.kinds)}" + (f" over {plan.source}" if plan.source else ""))
        made.extend(aggregate(workspace, AggregateConfig(sources=sources, kinds=plan.kinds)))
    return made


def featurize_default(workspace: Workspace, frames: str, progress: bool = True):
    """Featurize every ingested video with the offline default encoder and its stage features."""
    from .features.models.encoders import EncoderConfig
    from .features.featurize.runner import FeaturizeConfig, featurize

    config = FeaturizeConfig(encoders=(EncoderConfig(stages="all"),), frames=frames)
    return featurize(workspace, config, progress=progress)


@dataclass(frozen=True)
class DemoRunConfig:
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
        recipes: recipes to compare; the best (lowest OOF log loss) predicts the test clips.
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

    from .meta.metrics import competition_log_loss
    from .store.db import connect

    with connect(workspace, read_only=True) as con:
        rows = con.execute(
            "SELECT l.video_id, c.position, l.value, f.fold FROM labels l JOIN classes c USING (class) "
            "JOIN folds f ON f.video_id = l.video_id AND f.scheme = ? ORDER BY l.video_id, c.position",
            [fold_scheme],
        ).fetchall()
        n_classes = con.execute("SELECT count(*) FROM classes").fetchone()[0]
    videos = sorted({r[0] for r in rows})
    index = {v: i for i, v in enumerate(videos)}
    Y = np.zeros((len(videos), n_classes))
    folds = np.zeros(len(videos), dtype=int)
    for video_id, position, value, fold in rows:
        Y[index[video_id], position] = value
        folds[index[video_id]] = fold
    P = np.zeros_like(Y)
    for fold in np.unique(folds):
        inside = folds == fold
        P[inside] = Y[~inside].mean(axis=0)
    return competition_log_loss(Y, np.clip(P, 1e-4, 1 - 1e-4))


def _test_log_loss(labels_csv: Path, submission: Path) -> float | None:
    """The competition metric of a submission against the demo's answers for its test clips."""
    import polars as pl

    from .meta.metrics import competition_log_loss

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
    from .demo.config import DemoConfig
    from .demo.generate import make_demo
    from .ingest.folds import FoldsConfig
    from .ingest.labels import LabelsConfig
    from .ingest.run import IngestConfig, ingest
    from .meta.predict import predict
    from .meta.report import write_report
    from .meta.stack import StackConfig, stack
    from .meta.tuning import TuneConfig

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
        ingest(workspace, manifest.directory / "train", IngestConfig(),
               labels=LabelsConfig(path=str(manifest.train_labels)),
               folds=FoldsConfig(k=config.folds, seed=config.seed))
        return ingest(workspace, manifest.directory / "test", IngestConfig())

    summary = timed("ingest", _ingest)
    if getattr(summary, "error", None):
        raise RuntimeError(f"ingest: {summary.error}")
    timed("featurize", lambda: featurize_default(workspace, config.frames))
    timed("aggregate", lambda: ensure_feature_sets(
        workspace, ["meta", f"hist_{DEFAULT_SOURCE}", f"minmax_{DEFAULT_SOURCE}",
                    f"minmax_stages_{DEFAULT_SOURCE}", f"attn_{DEFAULT_SOURCE}"],
        frames=config.frames, log=say))

    scores = []
    for recipe in config.recipes:
        started = time.monotonic()
        say(f"== stack --recipe {recipe}")
        tune = TuneConfig(trials=config.trials, seed=config.seed, max_rounds=config.max_rounds, early_stopping_rounds=20)
        result = stack(workspace, StackConfig(recipe=recipe, tune=tune, pca=config.pca),
                       log=say)
        features = " + ".join(",".join(n for n, _ in m.features) for m in result.members)
        scores.append(RecipeScore(recipe, features, result.log_loss, result.accuracy, result.macro_f1,
                                  time.monotonic() - started, result.model_id))
        seconds[f"stack {recipe}"] = time.monotonic() - started
    best = min(scores, key=lambda s: s.log_loss)
    submission = config.submission or workspace.root / "submission.csv"
    timed("predict", lambda: predict(workspace, model=best.model_id, out=submission))
    report = timed("report", lambda: write_report(workspace, model=best.model_id))
    return DemoRunResult(scores, prior_log_loss(workspace), best.recipe, submission, Path(report),
                         _test_log_loss(manifest.test_labels, submission), seconds)
