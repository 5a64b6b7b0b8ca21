"""``jungle stack``: tune, cross-validate and save the level-2 meta-model.

For every member (a list of feature sets) of the configuration: assemble the labelled design
matrix, search XGBoost parameters with Optuna on the stored folds, refit each fold with the best
parameters and round count to get honest out-of-fold (OOF) probabilities, and fit the final model
on every labelled video. Several members are blended with weights fitted on the OOF
probabilities; per-class clip limits are fitted on the blended OOF probabilities (or fixed). The
model is saved with its manifest (its recipe named), the OOF probabilities go to
``models/<id>/oof.parquet`` and to the ``predictions`` table (``kind='oof'``), and it becomes the
current model (:mod:`jungle.store.model_choices`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Literal

import numpy as np
from pydantic import Field, model_validator

from ..config import JungleConfig
from ..hashing import config_key
from ..store import registry
from ..store.db import connect, transaction
from ..store.model_choices import record_choice
from ..store.predictions import write_predictions
from ..store.registry import code_version
from ..store.workspace import Workspace
from .models.blend import ClipLimits, blend, fit_blend_weights, fit_clip_limits, fixed_clip_limits
from .dataset import StackData, load_training_data, parse_refs
from .level2 import Level2Classifier, auto_max_bin, oof_rare_blend, rare_score_columns, resolve_label_mode
from .manifest import (ClipRecord, FeatureSetRecord, MemberEntry, ModelManifest, SetVersion, StudyRecord,
                       member_file, projection_file)
from .metrics import Evaluation, competition_log_loss, evaluate
from .model_io import new_model_id, save_model
from .projection import Projection, fit_projection
from .recipes import get_recipe, resolve_recipe
from .tuning import TuneConfig, TuneResult, default_threads, fold_pairs, tune

__all__ = ["StackConfig", "MemberResult", "StackResult", "stack", "oof_predict"]


class StackConfig(JungleConfig):
    """What to stack and how.

    Attributes:
        members: feature sets of each level-2 model (``name`` or ``name@version``); several
            members are blended. Exactly one of ``members`` and ``recipe``.
        recipe: a named recipe (see :mod:`jungle.meta.recipes`).
        encoder: the embedding feature set(s) recipes fill into ``{encoder}`` (``lite0``, or ``lite0,lite1``
            for several encoders: each set a recipe names per encoder is then stacked once per encoder).
        label_mode: ``auto`` | ``multiclass`` | ``binary`` (None: the recipe's, else ``auto``).
        clip: ``fitted`` | ``fixed`` | ``none`` (None: the recipe's, else ``fitted``).
        clip_value: the limit of ``fixed`` clipping.
        fold_scheme: the stored fold scheme to cross-validate on.
        params: fixed level-2 parameters under the searched ones (e.g. ``{"max_bin": 64}``).
        pca: project every feature set of ``pca_min_columns`` or more columns onto its first
            ``pca`` principal components before the level-2 model (None: no projection); see
            :mod:`jungle.meta.projection`.
        pca_min_columns: the narrowest set that ``pca`` projects.
        tune: the Optuna search.
        rare_positives: classes with at most this many positives blend the trees with a calibrated
            level-1 probability, weight chosen out of fold (0: off; see :mod:`jungle.meta.level2`).
    """

    members: tuple[tuple[str, ...], ...] = ()
    recipe: str | None = None
    encoder: str = "lite0"
    label_mode: Literal["auto", "multiclass", "binary"] | None = None
    clip: Literal["fitted", "fixed", "none"] | None = None
    clip_value: float = Field(1e-4, gt=0.0, le=0.5)  # a floor in (0, 0.5], its ceiling 1 - it
    fold_scheme: str = "default"
    params: dict = {}
    pca: int | None = Field(None, ge=1)
    pca_min_columns: int = Field(1024, ge=2)
    tune: TuneConfig = TuneConfig()
    rare_positives: int = Field(10, ge=0)

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.members) == bool(self.recipe):
            raise ValueError("give either feature sets (--features) or a recipe (--recipe), not both or neither")
        if self.recipe:
            get_recipe(self.recipe)
        return self


@dataclass
class MemberResult:
    """One level-2 model of a stack."""

    features: list[tuple[str, int]]
    columns: int
    tuning: TuneResult
    oof_log_loss: float


@dataclass
class StackResult:
    """What ``stack`` made."""

    model_id: str
    model_path: str
    label_mode: str
    videos: int
    log_loss: float
    accuracy: float
    macro_f1: float
    members: list[MemberResult]
    blend_weights: list[float]
    evaluation: Evaluation = field(repr=False)

    def rows(self) -> tuple[list[str], list[tuple]]:
        """A table of the members and the blend, for the CLI."""
        columns = ["model", "features", "trials", "pruned", "rounds", "cv_log_loss", "oof_log_loss", "weight"]
        rows = [
            (f"{self.model_id}/{i}", ",".join(f"{n}@{v}" for n, v in m.features), m.tuning.trials,
             m.tuning.pruned, m.tuning.rounds, m.tuning.value, m.oof_log_loss, w)
            for i, (m, w) in enumerate(zip(self.members, self.blend_weights))
        ]
        rows.append((self.model_id, f"blend+clip: accuracy {self.accuracy:.4f}, macro F1 {self.macro_f1:.4f}",
                     None, None, None, None, self.log_loss, 1.0))
        return columns, rows


def oof_predict(model: Level2Classifier, X: np.ndarray, Y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities: each fold predicted by a clone fitted on the other folds."""
    from sklearn.base import clone

    oof = np.zeros(Y.shape, dtype=np.float64)
    for train, valid in fold_pairs(folds):
        oof[valid] = clone(model).fit(X[train], Y[train]).predict_proba(X[valid])
    return oof


def _members(workspace: Workspace, cfg: StackConfig):
    if cfg.recipe:
        recipe = get_recipe(cfg.recipe)
        refs = resolve_recipe(workspace, recipe, cfg.encoder)
        return refs, cfg.label_mode or recipe.label_mode, cfg.clip or recipe.clip, \
            (recipe.clip_value if cfg.clip is None else cfg.clip_value)
    return tuple(parse_refs(m) for m in cfg.members), cfg.label_mode or "auto", cfg.clip or "fitted", cfg.clip_value


def _study_name(cfg: StackConfig, data: StackData, mode: str, index: int, count: int) -> str:
    if cfg.tune.study_name:
        return cfg.tune.study_name if count == 1 else f"{cfg.tune.study_name}-m{index}"
    sets = "+".join(f"{n}@{v}" for n, v in data.sets)
    payload = f"{sets}|{mode}|{cfg.fold_scheme}|{cfg.tune.seed}|{sorted(cfg.params.items())}|{len(data.video_ids)}"
    if cfg.pca:
        payload += f"|pca{cfg.pca}>={cfg.pca_min_columns}"
    digest = config_key({"study": payload})[:8]
    short = "+".join(n for n, _ in data.sets)
    return f"stack-{short[:60]}-{digest}"


def _project(cfg: StackConfig, data: StackData) -> tuple[np.ndarray, Projection | None]:
    """The member's level-2 matrix: ``data.X``, or its wide sets projected when ``cfg.pca`` is set."""
    if not cfg.pca:
        return data.X, None
    projection = fit_projection(data.X, data.columns, cfg.pca, cfg.pca_min_columns, cfg.tune.seed)
    return projection.transform(data.X), projection


def _rare_params(cfg: StackConfig, data: StackData, projection: Projection | None) -> dict:
    """Level-2 settings of the rare-class calibration: which column holds each class's level-1 probability."""
    columns = rare_score_columns(projection.output_columns if projection else data.columns, data.classes)
    if not cfg.rare_positives or set(columns.split(",")) == {"-1"}:
        return {"rare_positives": 0, "rare_columns": ""}
    return {"rare_positives": cfg.rare_positives, "rare_columns": columns}


def _clip_limits(kind: str, value: float, P: np.ndarray, Y: np.ndarray) -> ClipLimits:
    if kind == "fitted":
        return fit_clip_limits(P, Y)
    if kind == "fixed":
        return fixed_clip_limits(P.shape[1], value)
    return fixed_clip_limits(P.shape[1], 0.0)


def stack(workspace: Workspace, cfg: StackConfig, log: Callable[[str], None] | None = None,
          classifier: type = Level2Classifier, tuner: Callable = tune) -> StackResult:
    """Tune, cross-validate, blend, clip and save a level-2 model; return its OOF metrics.

    Args:
        workspace: the workspace (labels, classes, folds and the feature sets must be there).
        cfg: the stack configuration.
        log: called with one line per step (e.g. ``typer.echo`` to stderr); None: silent.
        classifier: the level-2 estimator class (``DaskLevel2Classifier`` trains on a Dask cluster).
        tuner: the tuning function (``functools.partial(tune_on_dask, client=...)`` on a cluster).
    """
    say = log or (lambda _line: None)
    member_refs, label_mode, clip_kind, clip_value = _members(workspace, cfg)
    storage = cfg.tune.storage or workspace.optuna_url
    datasets = [load_training_data(workspace, refs, cfg.fold_scheme) for refs in member_refs]
    first = datasets[0]
    mode = resolve_label_mode(label_mode, first.Y)
    models, oofs, results, entries, projections = [], [], [], [], []
    for index, data in enumerate(datasets):
        study = _study_name(cfg, data, mode, index, len(datasets))
        X, projection = _project(cfg, data)
        projected = f" ({X.shape[1]} after PCA of {', '.join(p.name for p in projection.sets)})" \
            if projection and projection.sets else ""
        say(f"member {index}: {data.X.shape[1]} features{projected} from "
            f"{', '.join(f'{n}@{v}' for n, v in data.sets)}; {len(data.video_ids)} labelled videos; {mode}; "
            f"study {study if cfg.tune.trials else '(none)'}")
        base = {"random_state": cfg.tune.seed, "max_bin": auto_max_bin(len(data.video_ids)), **cfg.params}
        tuned = tuner(X, data.Y, data.folds, mode, cfg.tune, storage, study, base=base,
                      scratch=workspace.root / "tmp")
        model = classifier(**{**tuned.params, "label_mode": mode, "n_estimators": tuned.rounds,
                              "n_jobs": cfg.tune.nthread or default_threads(X.size),
                              **_rare_params(cfg, data, projection)})
        oof, rare_weight = oof_rare_blend(model, X, data.Y, fold_pairs(data.folds), competition_log_loss)
        if model.rare_positives:
            say(f"member {index}: rare classes (<= {model.rare_positives} positives) blend a calibrated level-1 "
                f"probability with weight {rare_weight} (chosen out of fold)")
        models.append(model.set_params(rare_weight=rare_weight).fit(X, data.Y))
        projections.append(projection)
        oofs.append(oof)
        member_loss = competition_log_loss(data.Y, oof)
        say(f"member {index}: cv log loss {tuned.value:.5f} at {tuned.rounds} rounds, OOF log loss {member_loss:.5f}")
        results.append(MemberResult(data.sets, X.shape[1], tuned, member_loss))
        params = {k: v for k, v in model.get_params().items() if k != "n_jobs"}
        entries.append(MemberEntry(
            features=[SetVersion(name=n, version=v) for n, v in data.sets], columns=data.columns,
            params=params, rounds=tuned.rounds, cv_log_loss=tuned.value, oof_log_loss=member_loss,
            study=StudyRecord(name=tuned.study_name, storage=tuned.storage, trials=tuned.trials,
                              pruned=tuned.pruned, trees_per_trial=tuned.trees_per_trial),
            dropped_columns=data.dropped_columns, missing_rows=data.missing_rows,
            projection=projection.summary() if projection else None,
            file=member_file(index), projection_file=projection_file(index) if projection else None,
        ))
    weights = fit_blend_weights(oofs, first.Y)
    blended = blend(oofs, weights)
    clip = _clip_limits(clip_kind, clip_value, blended, first.Y)
    final = clip.apply(blended)
    evaluation = evaluate(first.Y, final)
    model_id = new_model_id(workspace, cfg.key())
    sets = sorted({(n, v) for data in datasets for n, v in data.sets})
    manifest = ModelManifest(
        model_id=model_id, recipe=cfg.recipe, created_at=datetime.now(timezone.utc).isoformat(),
        code_version=code_version(),
        classes=list(first.classes), label_mode=mode, feature_sets=_feature_set_records(workspace, sets),
        fold_scheme=cfg.fold_scheme, members=entries, blend_weights=[float(w) for w in weights],
        clip=ClipRecord(kind=clip_kind, **clip.to_json()), config=cfg.model_dump(mode="json"),
        metrics={**evaluation.summary(), "videos": len(first.video_ids)},
    )
    folder = save_model(workspace, manifest, models, projections)
    _write_oof(folder, first, oofs, final)
    with connect(workspace) as con, transaction(con):
        write_predictions(con, model_id, "oof", first.video_ids, first.classes, final)
        record_choice(con, model_id, f"stacked ({cfg.recipe or 'features'}), out-of-fold log loss "
                                     f"{evaluation.log_loss:.4f}")
    say(f"saved {folder}: OOF log loss {evaluation.log_loss:.5f}, accuracy {evaluation.accuracy:.4f}; now the "
        "current model")
    return StackResult(model_id, str(folder), mode, len(first.video_ids), evaluation.log_loss,
                       evaluation.accuracy, evaluation.macro_f1, results, [float(w) for w in weights], evaluation)


def _feature_set_records(workspace: Workspace, sets) -> list[FeatureSetRecord]:
    """The manifest's records of ``sets`` ((name, version) pairs): each with the fingerprint of the
    configuration that made it, which ``predict`` compares with the workspace it runs in."""
    with connect(workspace, read_only=True) as con:
        found = [registry.get(con, name, version) for name, version in sets]
    return [FeatureSetRecord(name=fs.name, version=fs.version, config_key=fs.config_key, config=fs.config,
                             inputs=fs.inputs) for fs in found]


def _write_oof(folder, data: StackData, members: list[np.ndarray], final: np.ndarray) -> None:
    """``oof.parquet``: video id, fold, label and final probability lists, and each member's."""
    import polars as pl

    columns = {"video_id": data.video_ids.tolist(), "fold": data.folds.tolist(),
               "label": data.Y.astype(np.int8).tolist(), "probability": final.tolist()}
    for index, member in enumerate(members):
        columns[f"member_{index}"] = member.tolist()
    pl.DataFrame(columns).write_parquet(folder / "oof.parquet")
