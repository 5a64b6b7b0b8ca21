"""The level-2 model: a scikit-learn style XGBoost classifier over stacked video-level features.

Two label shapes:

* ``multiclass``: every video has exactly one label. One ``multi:softprob`` booster (the 1st
  place's choice); probabilities sum to one over classes.
* ``binary``: videos may have several labels. One binary (logistic) model per class, held in one
  XGBoost multi-output booster with ``multi_strategy='one_output_per_tree'``: every class gets
  its own trees, trained in lockstep so that one Optuna trial can be pruned as a whole.

``label_mode='auto'`` picks ``multiclass`` when every training video has exactly one label.

Rare classes: with 3-7 positives a class's trees never split and return its prior, although a
level-1 head (the frame head's video max, attention pooling's probability) ranks it well. With
``rare_positives`` set, every class with at most that many positive training videos and a
level-1 probability column (``rare_columns``, see :func:`rare_score_columns`) also gets a
one-feature logistic calibration of that probability's logit, and its prediction is
``(1 - rare_weight) * trees + rare_weight * calibration``. :func:`oof_rare_blend` chooses
``rare_weight`` out of fold. The calibrations are stored in the booster file (an XGBoost
attribute), so a saved model predicts exactly what was evaluated.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import InputError
from ..features.aggregates.frame_stats import class_slug
from .metrics import competition_log_loss, is_single_label

__all__ = ["Level2Classifier", "resolve_label_mode", "training_matrix", "mcll_metric", "auto_max_bin", "LABEL_MODES",
           "rare_score_columns", "fit_rare_calibration", "oof_rare_blend", "RARE_WEIGHTS"]

#: The blend weights :func:`oof_rare_blend` chooses from.
RARE_WEIGHTS: tuple[float, ...] = tuple(round(w, 2) for w in np.linspace(0, 1, 11))
_RARE_ATTR = "jungle_rare_calibration"

LABEL_MODES = ("auto", "multiclass", "binary")


def resolve_label_mode(label_mode: str, Y: np.ndarray) -> str:
    """``multiclass`` or ``binary`` for labels ``Y`` (videos x classes) under ``label_mode``."""
    if label_mode not in LABEL_MODES:
        raise InputError(f"label_mode must be one of {', '.join(LABEL_MODES)}, not {label_mode!r}")
    single = is_single_label(Y)
    if label_mode == "auto":
        return "multiclass" if single else "binary"
    if label_mode == "multiclass" and not single:
        bad = int((np.asarray(Y).sum(axis=1) != 1).sum())
        raise InputError(
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
        rare_positives: classes with at most this many positive training videos blend in a
            calibrated level-1 probability (0: never; see the module docstring).
        rare_weight: the calibration's weight in that blend.
        rare_columns: per class, the column index of its level-1 probability, comma-separated
            (-1: none); empty: no class has one.
    """

    def __init__(self, label_mode: str = "auto", n_estimators: int = 200, learning_rate: float = 0.1,
                 max_depth: int = 4, min_child_weight: float = 1.0, subsample: float = 0.8,
                 colsample_bytree: float = 0.8, reg_lambda: float = 1.0, reg_alpha: float = 0.0,
                 gamma: float = 0.0, max_bin: int | None = None, tree_method: str = "hist",
                 n_jobs: int | None = None, random_state: int = 0, rare_positives: int = 0,
                 rare_weight: float = 0.0, rare_columns: str = ""):
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
        self.rare_positives = rare_positives
        self.rare_weight = rare_weight
        self.rare_columns = rare_columns

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
        self.rare_ = fit_rare_calibration(X, Y, _parse_columns(self.rare_columns, Y.shape[1]), self.rare_positives)
        return self.booster_params(self.mode_, self.n_classes_, len(Y)), Y

    def predict_parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tree probabilities, calibrated level-1 probabilities: NaN for classes without one)."""
        import xgboost as xgb

        proba = self.booster_.predict(xgb.DMatrix(X, nthread=self.n_jobs or -1)).reshape(len(X), self.n_classes_)
        return proba, _apply_calibration(X, getattr(self, "rare_", {}), self.n_classes_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of every class, shape (videos, classes)."""
        trees, calibrated = self.predict_parts(X)
        return _blend_rare(trees, calibrated, self.rare_weight)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class index of every video."""
        return self.predict_proba(X).argmax(axis=1)

    def save(self, path) -> None:
        """Write the booster as XGBoost JSON (with the rare-class calibrations as an attribute)."""
        self.booster_.set_attr(**{_RARE_ATTR: json.dumps({str(c): v for c, v in getattr(self, "rare_", {}).items()})})
        self.booster_.save_model(str(path))

    @classmethod
    def load(cls, path, params: dict, mode: str, n_classes: int) -> "Level2Classifier":
        """A fitted estimator from a booster JSON file written by :meth:`save` (a path, or the file's
        bytes as a ``bytearray``)."""
        import xgboost as xgb

        model = cls(**params)
        model.booster_ = xgb.Booster(model_file=path if isinstance(path, bytearray) else str(path))
        model.mode_, model.n_classes_ = mode, n_classes
        model.classes_ = np.arange(n_classes)
        model.n_features_in_ = model.booster_.num_features()
        stored = json.loads(model.booster_.attr(_RARE_ATTR) or "{}")
        model.rare_ = {int(c): (int(v[0]), float(v[1]), float(v[2])) for c, v in stored.items()}
        return model

    def gain_by_feature(self) -> dict[int, float]:
        """Total gain of every feature index used by the trees."""
        scores = self.booster_.get_score(importance_type="total_gain")
        return {int(name[1:]): float(value) for name, value in scores.items() if name.startswith("f")}


def _parse_columns(text: str, n_classes: int) -> list[int]:
    if not text:
        return [-1] * n_classes
    columns = [int(v) for v in str(text).split(",")]
    if len(columns) != n_classes:
        raise ValueError(f"rare_columns names {len(columns)} columns for {n_classes} classes")
    return columns


def rare_score_columns(columns: list[str], classes: Iterable[str]) -> str:
    """Per class, the index of its level-1 probability among ``columns`` (``<set>.<column>`` names),
    as :class:`Level2Classifier`'s ``rare_columns``: the frame head's video maximum
    (``hist_*.<class>_max``), else attention pooling's probability (``attn_*.<class>``), else -1."""
    from ..features.aggregates.aggregate import set_name  # the aggregate stage loads torch: only when stacking

    hist, attention = set_name("stats"), set_name("attention")  # the sets' names before their source's
    index = {name: i for i, name in enumerate(columns)}
    chosen = []
    for cls in classes:
        slug = class_slug(cls)
        candidates = [i for name, i in index.items() if name.startswith(hist) and name.endswith(f".{slug}_max")]
        candidates += [i for name, i in index.items() if name.startswith(attention) and name.split(".", 1)[1] == slug]
        chosen.append(candidates[0] if candidates else -1)
    return ",".join(str(c) for c in chosen)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.nan_to_num(np.asarray(p, dtype=np.float64), nan=0.0), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def fit_rare_calibration(X: np.ndarray, Y: np.ndarray, columns: list[int], max_positives: int
                         ) -> dict[int, tuple[int, float, float]]:
    """class -> (column, slope, intercept) of a logistic regression of the class on the logit of its
    level-1 probability, for classes with 1..``max_positives`` positives and a column."""
    from sklearn.linear_model import LogisticRegression

    fitted = {}
    for cls, column in enumerate(columns):
        positives = int(np.asarray(Y)[:, cls].sum())
        if column < 0 or not 0 < positives <= max_positives or positives == len(Y):
            continue
        model = LogisticRegression(C=1.0).fit(_logit(X[:, column])[:, None], np.asarray(Y)[:, cls])
        fitted[cls] = (int(column), float(model.coef_[0, 0]), float(model.intercept_[0]))
    return fitted


def _apply_calibration(X: np.ndarray, calibration: dict, n_classes: int) -> np.ndarray:
    out = np.full((len(X), n_classes), np.nan)
    for cls, (column, slope, intercept) in calibration.items():
        out[:, cls] = 1 / (1 + np.exp(-(slope * _logit(X[:, column]) + intercept)))
    return out


def _blend_rare(trees: np.ndarray, calibrated: np.ndarray, weight: float) -> np.ndarray:
    return np.where(np.isnan(calibrated), trees, (1 - weight) * trees + weight * np.nan_to_num(calibrated))


def oof_rare_blend(model: Level2Classifier, X: np.ndarray, Y: np.ndarray,
                   pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                   score: Callable[[np.ndarray, np.ndarray], float]) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities of ``model`` with ``rare_weight`` chosen out of fold.

    Each fold is predicted by a clone fitted on the other folds (trees and calibrations alike);
    the weight from :data:`RARE_WEIGHTS` that minimises ``score(Y, oof)`` is kept.

    Returns:
        (OOF probabilities with that weight, the weight).
    """
    from sklearn.base import clone

    trees = np.zeros(Y.shape, dtype=np.float64)
    calibrated = np.full(Y.shape, np.nan)
    for train, valid in pairs:
        trees[valid], calibrated[valid] = clone(model).fit(X[train], Y[train]).predict_parts(X[valid])
    if np.isnan(calibrated).all():
        return trees, float(model.rare_weight)
    losses = {w: score(Y, _blend_rare(trees, calibrated, w)) for w in RARE_WEIGHTS}
    weight = min(losses, key=lambda w: (losses[w], w))
    return _blend_rare(trees, calibrated, weight), float(weight)
