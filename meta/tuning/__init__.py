"""Level-2 parameter search: the Optuna study (:mod:`.search`) and the dashboard over it
(:mod:`.dashboard`). The search's public names are importable from here."""

from .search import (CVResult, TuneConfig, TuneResult, cross_validate, default_threads, fold_pairs, metric_name,
                     open_storage, run_trials, study_result, suggest_params, tune)

__all__ = ["CVResult", "TuneConfig", "TuneResult", "cross_validate", "default_threads", "fold_pairs", "metric_name",
           "open_storage", "run_trials", "study_result", "suggest_params", "tune"]
