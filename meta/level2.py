"""The level-2 model: a scikit-learn style XGBoost classifier over stacked video-level features.

Two label shapes:

* ``multiclass``: every video has exactly one label. One ``multi:softprob`` booster (the 1st
  place's choice); probabilities sum to one over classes.
* ``binary``: videos may have several labels. One binary (logistic) model per class, held in one
  XGBoost multi-output booster with ``multi_strategy='one_output_per_tree'``: every class gets
  its own trees, trained in lockstep so that one Optuna trial can be pruned as a whole.

``label_mode='auto'`` picks ``multiclass`` when every training video has exactly one label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .metrics import competition_log_loss, is_single_label

__all__ = ["Level2Classifier", "resolve_label_mode", "training_matrix", "mcll_metric", "auto_max_bin", "LABEL_MODES"]

LABEL_MODES = ("auto", "multiclass", "binary")


def resolve_label_mode(label_mode: str, Y: np.ndarray) -> str:
    """``multiclass`` or ``binary`` for labels ``Y`` (videos x classes) under ``label_mode``."""
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}, not {label_mode!r}")
    single = is_single_label(Y)
    if label_mode == "auto":
        return "multiclass" if single else "binary"
    if label_mode == "multiclass" and not single:
        bad = int((np.asarray(Y).sum(axis=1) != 1).sum())
        raise ValueError(
            f"label_mode 'multiclass' needs exactly one label per video, but {bad} video(s) have "
            "none or several. Use label_mode 'binary' (one model per class) or 'auto'."
        )
    return label_mode


def auto_max_bin(n_rows: int) -> int:
    """Histogram bins per feature for ``n_rows`` training rows: 32 up to ~500 rows, doubling with the
    rows up to XGBoost's usual 256 from ~2,000 rows.

    XGBoost's ``hist`` method builds a (features x bins) histogram for every node of every tree,
    whatever the rows, so on a few hundred videos with thousands of columns 256 bins cost 4-5x
    the time of 32 for the same log loss (measured on the demo's 5,121-column min-max set: 0.0634
    vs 0.0628); with few rows most of 256 bins are empty anyway.
    """
    bins = 2 ** int(np.floor(np.log2(max(n_rows, 1) / 8)))
    return int(min(256, max(32, bins)))


def training_matrix(X: np.ndarray, Y: np.ndarray, mode: str, nthread: int | None = None):
    """The XGBoost DMatrix of ``X`` with labels shaped for ``mode``."""
    import xgboost as xgb

    label = np.asarray(Y).argmax(axis=1) if mode == "multiclass" else np.asarray(Y, dtype=np.float32)
    return xgb.DMatrix(X, label=label, nthread=nthread or -1)


def mcll_metric(predt: np.ndarray, dmatrix) -> tuple[str, float]:
    """XGBoost custom metric ``mcll``: the competition metric of softprob predictions."""
    labels = dmatrix.get_label().astype(int)
    predt = predt.reshape(len(labels), -1)
    onehot = np.zeros_like(predt)
    onehot[np.arange(len(labels)), labels] = 1.0
    return "mcll", competition_log_loss(onehot, predt)


class Level2Classifier(ClassifierMixin, BaseEstimator):
    """XGBoost over stacked features, with a dumb ``__init__`` and state set by ``fit``.

    Args:
        label_mode: ``auto`` | ``multiclass`` | ``binary`` (see the module docstring).
        n_estimators: boosting rounds (trees per class).
        learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, reg_lambda,
            reg_alpha, gamma: XGBoost parameters of the same names.
        max_bin: histogram bins per feature (None: :func:`auto_max_bin` of the training rows).
        tree_method: XGBoost tree method (``hist``).
        n_jobs: threads XGBoost uses (None: all cores).
        random_state: seed of row and column subsampling.
    """

    def __init__(self, label_mode: str = "auto", n_estimators: int = 200, learning_rate: float = 0.1,
                 max_depth: int = 4, min_child_weight: float = 1.0, subsample: float = 0.8,
                 colsample_bytree: float = 0.8, reg_lambda: float = 1.0, reg_alpha: float = 0.0,
                 gamma: float = 0.0, max_bin: int | None = None, tree_method: str = "hist",
                 n_jobs: int | None = None, random_state: int = 0):
        self.label_mode = label_mode
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.tree_method = tree_method
        self.n_jobs = n_jobs
        self.random_state = random_state

    def booster_params(self, mode: str, n_classes: int, n_rows: int | None = None) -> dict[str, Any]:
        """The native XGBoost parameters of this estimator for ``mode``, ``n_classes`` and
        ``n_rows`` training rows (which set ``max_bin`` when it is None)."""
        max_bin = self.max_bin or auto_max_bin(n_rows if n_rows is not None else 10**6)
        params: dict[str, Any] = {
            "eta": self.learning_rate, "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight, "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree, "lambda": self.reg_lambda,
            "alpha": self.reg_alpha, "gamma": self.gamma, "max_bin": max_bin,
            "tree_method": self.tree_method, "seed": self.random_state, "verbosity": 0,
        }
        if self.n_jobs:
            params["nthread"] = self.n_jobs
        if mode == "multiclass":
            params.update(objective="multi:softprob", num_class=n_classes, disable_default_eval_metric=1)
        else:
            params.update(objective="binary:logistic", multi_strategy="one_output_per_tree",
                          eval_metric="logloss")
        return params

    def fit(self, X: np.ndarray, Y: np.ndarray, callbacks: list | None = None) -> "Level2Classifier":
        """Fit on features ``X`` (videos x features) and 0/1 labels ``Y`` (videos x classes)."""
        import xgboost as xgb

        params, Y = self._start_fit(X, Y)
        dtrain = training_matrix(X, Y, self.mode_, self.n_jobs)
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators, callbacks=callbacks or None)
        return self

    def _start_fit(self, X, Y) -> tuple[dict[str, Any], np.ndarray]:
        """Check ``Y``, set the fitted attributes (mode, classes, features) and return the booster
        parameters and ``Y`` as an array; shared by every way of training."""
        Y = np.asarray(Y)
        if Y.ndim != 2:
            raise ValueError("Y must be a 0/1 matrix of shape (videos, classes)")
        self.mode_ = resolve_label_mode(self.label_mode, Y)
        self.n_classes_ = Y.shape[1]
        self.classes_ = np.arange(self.n_classes_)
        self.n_features_in_ = X.shape[1]
        return self.booster_params(self.mode_, self.n_classes_, len(Y)), Y

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of every class, shape (videos, classes)."""
        import xgboost as xgb

        proba = self.booster_.predict(xgb.DMatrix(X, nthread=self.n_jobs or -1))
        return proba.reshape(len(X), self.n_classes_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class index of every video."""
        return self.predict_proba(X).argmax(axis=1)

    def save(self, path) -> None:
        """Write the booster as XGBoost JSON."""
        self.booster_.save_model(str(path))

    @classmethod
    def load(cls, path, params: dict, mode: str, n_classes: int) -> "Level2Classifier":
        """A fitted estimator from a booster JSON file written by :meth:`save`."""
        import xgboost as xgb

        model = cls(**params)
        model.booster_ = xgb.Booster(model_file=str(path))
        model.mode_, model.n_classes_ = mode, n_classes
        model.classes_ = np.arange(n_classes)
        model.n_features_in_ = model.booster_.num_features()
        return model

    def gain_by_feature(self) -> dict[int, float]:
        """Total gain of every feature index used by the trees."""
        scores = self.booster_.get_score(importance_type="total_gain")
        return {int(name[1:]): float(value) for name, value in scores.items() if name.startswith("f")}
