"""Level-2 parameter search: the Optuna study (:mod:`.search`) and the dashboard over it
(:mod:`.dashboard`). The search's public names are importable from here."""

from .search import (CVResult, PerTrialSampler, TuneConfig, TuneResult, cross_validate, default_threads,
                     fail_abandoned_trials, fold_pairs, metric_name, open_storage, run_trials, study_result,
                     suggest_params, trial_seed, tune)

__all__ = ["CVResult", "PerTrialSampler", "TuneConfig", "TuneResult", "cross_validate", "default_threads",
           "fail_abandoned_trials", "fold_pairs", "metric_name", "open_storage", "run_trials", "study_result",
           "suggest_params", "trial_seed", "tune"]
