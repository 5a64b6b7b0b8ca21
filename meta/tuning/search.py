"""Optuna search of the level-2 XGBoost parameters, cross-validated on the stored folds.

The study lives in an RDB storage (the workspace's SQLite file by default, any SQLAlchemy URL
such as ``postgresql://...`` accepted), is opened with ``load_if_exists`` and runs until it holds
``trials`` finished trials, so several processes or machines can tune one study and an
interrupted run resumes where it stopped. Sampling is TPE, seeded per trial (:class:`PerTrialSampler`),
and trials a killed run left behind are failed and drawn again, so with ``jobs=1`` a resumed study
(Ctrl-C, SIGKILL, then the same command) ends with the same trials and the same model as one
that was never interrupted; pruning goes through
``optuna_integration.xgboost.XGBoostPruningCallback`` on the cross-validated log loss of every
boosting round. Each trial records the rounds it scored best at and the trees it built.

With ``jobs > 1`` the trials run in that many worker processes (spawned, so no OpenMP state is
forked), each holding a memory-mapped copy of the data; only ``jobs=1`` is bit-for-bit
reproducible, since parallel workers see each other's trials in a timing-dependent order.
"""

from __future__ import annotations

import os
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from optuna.samplers import BaseSampler
from optuna_integration.xgboost import XGBoostPruningCallback
from pydantic import Field, field_validator

from ...config import JungleConfig
from ...errors import EnvironmentProblem, InputError, NotFoundError
from ...hashing import text_sha256
from ...interrupts import ctrl_c_within
from ...runtime import WorkerPool, available_cores, quiet_optuna
from ..level2 import Level2Classifier, mcll_metric, training_matrix

__all__ = [
    "TuneConfig",
    "CVResult",
    "TuneResult",
    "suggest_params",
    "default_threads",
    "fold_pairs",
    "cross_validate",
    "open_storage",
    "check_storage_url",
    "PerTrialSampler",
    "fail_abandoned_trials",
    "run_trials",
    "trial_seed",
    "tune",
    "study_result",
    "metric_name",
]


class TuneConfig(JungleConfig):
    """How to search level-2 parameters.

    Attributes:
        trials: finished trials the study should hold (0: no search, default parameters).
        storage: SQLAlchemy URL of the study storage (None: the workspace's SQLite file).
        study_name: the study (None: derived from the data and this configuration).
        seed: TPE sampler seed and XGBoost seed.
        jobs: worker processes running trials.
        prune: prune unpromising trials through XGBoost's Optuna callback.
        prune_percentile: a trial is pruned when its log loss at a round is worse than this
            percentile of earlier trials at the same round (25: it must stay in the best quarter;
            50 is the median rule).
        prune_startup_trials: trials that are never pruned (they set the reference).
        prune_warmup_rounds: rounds before pruning may stop a trial.
        prune_interval: report the CV log loss to the study (and consider pruning) every this
            many rounds; every report is a write to the storage.
        max_rounds: most boosting rounds of a trial.
        early_stopping_rounds: stop a trial when the CV log loss has not improved for this many rounds.
        nthread: XGBoost threads per worker (None: :func:`default_threads`).
    """

    trials: int = Field(20, ge=0)
    storage: str | None = None
    study_name: str | None = None
    seed: int = 0
    jobs: int = Field(1, ge=1)
    prune: bool = True
    prune_percentile: float = Field(25.0, gt=0, lt=100)
    prune_startup_trials: int = Field(2, ge=0)
    prune_warmup_rounds: int = Field(10, ge=0)
    prune_interval: int = Field(5, ge=1)
    max_rounds: int = Field(1000, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    nthread: int | None = None

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        return None if value is None else check_storage_url(value)


def default_threads(cells: int, jobs: int = 1) -> int:
    """XGBoost threads per worker: one for small data (threads cost more than they save there),
    else the cores divided among the workers."""
    if cells < 2_000_000:
        return 1
    return max(1, available_cores() // jobs)


def suggest_params(trial) -> dict[str, Any]:
    """The search space: Level2Classifier parameters sampled by ``trial``."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.2, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
    }


def fold_pairs(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) for every fold number in ``folds``."""
    folds = np.asarray(folds)
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]


@dataclass(frozen=True)
class CVResult:
    """Cross-validated log loss at the best round, the best round count and the rounds built."""

    value: float
    rounds: int
    rounds_built: int


class _RoundCounter(xgb.callback.TrainingCallback):
    """An XGBoost callback counting the boosting rounds actually built (pruned or not)."""

    def __init__(self):
        super().__init__()
        self.rounds = 0

    def after_iteration(self, model, epoch, evals_log) -> bool:
        self.rounds = epoch + 1
        return False


def _largest_training_fold(folds: np.ndarray) -> int:
    """Rows of the largest cross-validation training fold (what one fold's booster trains on)."""
    return max(len(train) for train, _ in fold_pairs(folds))


def metric_name(mode: str) -> str:
    """The XGBoost evaluation name of the competition metric for ``mode``."""
    return "mcll" if mode == "multiclass" else "logloss"


def cross_validate(model: Level2Classifier, dtrain, folds: np.ndarray, mode: str, n_classes: int,
                   max_rounds: int, early_stopping_rounds: int, callbacks: list | None = None) -> CVResult:
    """``xgb.cv`` of ``model``'s parameters over the stored folds, with early stopping.

    Every fold's booster grows in lockstep; the score of a round is the mean over folds of the
    competition metric on the held-out fold.
    """
    counter = _RoundCounter()
    history = xgb.cv(
        model.booster_params(mode, n_classes, _largest_training_fold(folds)), dtrain, num_boost_round=max_rounds,
        folds=fold_pairs(folds), early_stopping_rounds=early_stopping_rounds,
        custom_metric=mcll_metric if mode == "multiclass" else None,
        callbacks=[counter, *(callbacks or [])], as_pandas=False, seed=model.random_state,
    )
    scores = history[f"test-{metric_name(mode)}-mean"]
    return CVResult(value=float(scores[-1]), rounds=len(scores), rounds_built=counter.rounds)


HEARTBEAT_S = 30
"""Seconds between a running trial's heartbeats; a trial silent for 4 of them is failed (and drawn again)."""


def check_storage_url(url: str) -> str:
    """``url`` if SQLAlchemy can parse it as a database URL.

    Raises:
        InputError: it cannot, saying what a storage URL looks like.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError):
        raise InputError(f"--storage {url[:80]!r} is not a database URL: give e.g. sqlite:///optuna.db or "
                         "postgresql://user@host/jungle (or leave it out for the workspace's optuna.db).") from None
    return url


def open_storage(url: str):
    """An Optuna RDB storage for ``url``; SQLite waits for other writers instead of failing, and
    running trials send heartbeats, so one whose process died anywhere is failed by the next run.

    Raises:
        InputError: ``url`` is not a database URL.
        EnvironmentProblem: the database cannot be opened (no driver, unreachable, a missing folder).
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    check_storage_url(url)
    try:
        with warnings.catch_warnings():  # "heartbeat_interval is an experimental feature": not the user's business
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=4 * HEARTBEAT_S)
    except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EnvironmentProblem(f"cannot open the study storage {url[:120]}: {first}. Check the URL, that its "
                                 "database is reachable and its driver installed.") from None


@dataclass(frozen=True)
class TuneResult:
    """The outcome of a search."""

    study_name: str | None
    storage: str | None
    params: dict[str, Any]
    rounds: int
    value: float
    trials: int
    pruned: int
    trees_per_trial: float


class _IntervalPruningCallback(XGBoostPruningCallback):
    """Optuna's XGBoost pruning callback, consulted every ``interval`` rounds."""

    def __init__(self, trial, observation_key: str, interval: int):
        super().__init__(trial, observation_key)
        self._interval = interval

    def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
        if (epoch + 1) % self._interval:
            return False
        return super().after_iteration(model, epoch, evals_log)


def _objective(X, Y, folds, mode: str, base: dict, cfg: TuneConfig):
    dtrain = training_matrix(X, Y, mode, base.get("n_jobs"))
    n_classes = Y.shape[1]
    trees_per_round = n_classes * len(np.unique(folds))

    def objective(trial) -> float:
        trial.set_user_attr(_WORKER_ATTR, _this_worker())
        model = Level2Classifier(**{**base, **suggest_params(trial)})
        counter = _RoundCounter()
        callbacks = [counter]
        if cfg.prune:
            callbacks.append(_IntervalPruningCallback(trial, f"test-{metric_name(mode)}", cfg.prune_interval))
        try:
            result = cross_validate(model, dtrain, folds, mode, n_classes, cfg.max_rounds,
                                    cfg.early_stopping_rounds, callbacks)
        finally:
            trial.set_user_attr("rounds_built", counter.rounds)
            trial.set_user_attr("trees_built", counter.rounds * trees_per_round)
        trial.set_user_attr("best_rounds", result.rounds)
        return result.value

    return objective


def _pruner(cfg: TuneConfig):
    import optuna

    if not cfg.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.PercentilePruner(cfg.prune_percentile, n_startup_trials=cfg.prune_startup_trials,
                                           n_warmup_steps=cfg.prune_warmup_rounds)


def _finished(study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def trial_seed(seed: int, index: int) -> int:
    """The sampler seed of the trial that becomes the study's ``index``-th finished one."""
    return int(text_sha256(f"jungle-trial:{seed}:{index}")[:8], 16)


class PerTrialSampler(BaseSampler):
    """TPE whose randomness for a trial depends only on the seed and the trial's place: before each
    trial a fresh :class:`~optuna.samplers.TPESampler` is seeded with :func:`trial_seed` of the
    number of trials the study has finished (complete or pruned).

    TPE's choice is then a function of the seed and the finished trials alone, so a study that was
    interrupted (Ctrl-C, SIGKILL) and resumed draws exactly the trials an uninterrupted study
    draws: a trial that never finished is not counted and is drawn again. ``constant_liar`` (for
    several workers on one study) lets running trials steer the others away; with one worker it is
    off, so a trial a killed run left RUNNING steers nothing.
    """

    def __init__(self, seed: int, constant_liar: bool = False):
        self.seed, self.constant_liar = seed, constant_liar
        self._tpe = self._sampler(0)

    def _sampler(self, index: int):
        import optuna

        return optuna.samplers.TPESampler(seed=trial_seed(self.seed, index), constant_liar=self.constant_liar)

    def before_trial(self, study, trial) -> None:
        self._tpe = self._sampler(_finished(study))
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Seeds come from the trial's place only: nothing to reseed."""


_WORKER_ATTR = "jungle_worker"


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_abandoned_trials(study) -> list[int]:
    """Mark FAIL the RUNNING trials whose process, on this machine, is gone (a SIGKILL, a crash);
    return their numbers. Trials of other machines are failed by the storage's heartbeat once it
    stops (:func:`open_storage`)."""
    import optuna

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(_WORKER_ATTR, ""))
        where, _, pid = owner.rpartition(":")
        if where == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
    return failed


def run_trials(X, Y, folds, mode: str, base: dict, cfg: TuneConfig, study_name: str, storage: str,
               seed: int) -> None:
    """Run trials into the shared study until it holds ``cfg.trials`` finished ones.

    Trials a killed run of this machine left RUNNING are failed first (and drawn again: see
    :class:`PerTrialSampler`), so a resumed study ends as an uninterrupted one (``jobs=1``).
    """
    import optuna

    with quiet_optuna(errors_only=True):  # a trial Ctrl-C stops is failed, and drawn again by the next run
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage),
                                  sampler=PerTrialSampler(seed, constant_liar=cfg.jobs > 1), pruner=_pruner(cfg))
        fail_abandoned_trials(study)
        remaining = cfg.trials - _finished(study)
        if remaining <= 0:
            return
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        first_new = len(study.get_trials(deepcopy=False))
        try:
            with ctrl_c_within():  # Optuna's trial runner can fail in its finally while a Ctrl-C unwinds it
                study.optimize(_objective(X, Y, folds, mode, base, cfg), n_trials=remaining,
                               callbacks=[optuna.study.MaxTrialsCallback(cfg.trials, states=states)],
                               catch=(), gc_after_trial=False)
        except KeyboardInterrupt:
            _fail_own_running(study, first_new)
            raise


def _fail_own_running(study, first_new: int) -> None:
    """After a Ctrl-C: fail the RUNNING trials this process started, also one the Ctrl-C caught
    before its objective recorded the owner (a trial no later run could tell from a live one)."""
    import optuna

    me = _this_worker()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(_WORKER_ATTR, ""))
        if owner == me or (not owner and trial.number >= first_new):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def _worker(data_dir: str, mode: str, base: dict, cfg_json: str, study_name: str, storage: str,
            seed: int) -> None:
    """Entry point of a spawned worker process: memory-map the data and run trials."""
    folder = Path(data_dir)
    X = np.load(folder / "X.npy", mmap_mode="r")
    Y = np.load(folder / "Y.npy")
    folds = np.load(folder / "folds.npy")
    run_trials(X, Y, folds, mode, base, TuneConfig.model_validate_json(cfg_json), study_name, storage, seed)


def tune(X: np.ndarray, Y: np.ndarray, folds: np.ndarray, mode: str, cfg: TuneConfig, storage: str,
         study_name: str, base: dict | None = None, scratch: Path | None = None) -> TuneResult:
    """Search level-2 parameters; return the best ones with their number of rounds.

    Args:
        X: features (videos x features), float32.
        Y: 0/1 labels (videos x classes).
        folds: fold number of every video.
        mode: ``multiclass`` or ``binary`` (see :mod:`jungle.meta.level2`).
        cfg: the search configuration (``cfg.trials == 0``: cross-validate the defaults only).
        storage: SQLAlchemy URL of the study storage.
        study_name: the study to create or continue.
        base: fixed Level2Classifier parameters under the searched ones.
        scratch: folder for the worker processes' memory-mapped data (default: system temp).
    """
    import optuna

    nthread = cfg.nthread or default_threads(X.size, cfg.jobs)
    base = {"random_state": cfg.seed, **(base or {}), "label_mode": mode, "n_jobs": nthread}
    if cfg.trials == 0:
        model = Level2Classifier(**base)
        result = cross_validate(model, training_matrix(X, Y, mode, nthread), folds, mode, Y.shape[1],
                                cfg.max_rounds, cfg.early_stopping_rounds)
        trees = result.rounds_built * Y.shape[1] * len(np.unique(folds))
        return TuneResult(None, None, _public(base), result.rounds, result.value, 0, 0, float(trees))

    with quiet_optuna():
        optuna.create_study(study_name=study_name, storage=open_storage(storage), direction="minimize",
                            load_if_exists=True)
    if cfg.jobs == 1:
        run_trials(X, Y, folds, mode, base, cfg, study_name, storage, cfg.seed)
    else:
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix="tune-") as tmp:
            np.save(Path(tmp) / "X.npy", np.ascontiguousarray(X, dtype=np.float32))
            np.save(Path(tmp) / "Y.npy", np.asarray(Y, dtype=np.float32))
            np.save(Path(tmp) / "folds.npy", np.asarray(folds))
            with WorkerPool(cfg.jobs, single_threaded=False) as pool:  # each runs XGBoost on its nthread
                futures = [pool.submit(_worker, tmp, mode, base, cfg.model_dump_json(), study_name, storage,
                                       cfg.seed + worker) for worker in range(cfg.jobs)]
                for future in futures:
                    future.result()
    return study_result(study_name, storage, base)


def _public(params: dict) -> dict:
    """Level-2 parameters worth saving: without the label mode and thread count of this machine."""
    return {k: v for k, v in params.items() if k not in ("label_mode", "n_jobs")}


def study_result(study_name: str, storage: str, base: dict | None = None) -> TuneResult:
    """The best parameters (over ``base``) and trial statistics of a stored study."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise NotFoundError(f"study {study_name!r} in {storage} has no complete trial; run more trials.")
    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                        optuna.trial.TrialState.PRUNED))
    best = study.best_trial
    trees = [t.user_attrs.get("trees_built", 0) for t in finished]
    return TuneResult(
        study_name=study_name, storage=storage,
        params={**_public(base or {}), **best.params},
        rounds=int(best.user_attrs["best_rounds"]), value=float(best.value), trials=len(finished),
        pruned=len(finished) - len(complete), trees_per_trial=float(np.mean(trees)) if trees else 0.0,
    )
