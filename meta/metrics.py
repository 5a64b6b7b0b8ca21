"""Metrics of per-class probabilities: the competition's log loss and the numbers people ask next.

Labels are a 0/1 matrix ``Y`` of shape (videos, classes) in the configured class order, and
predictions a matrix of the same shape. The Pri-matrix metric is the mean over classes of the
binary log loss of each class column; :func:`competition_log_loss` computes exactly that (and a
test checks it against ``sklearn.metrics.log_loss`` class by class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EPS",
    "Evaluation",
    "per_class_log_loss",
    "competition_log_loss",
    "top1_accuracy",
    "macro_f1",
    "per_class_auc",
    "calibration",
    "confusion",
    "is_single_label",
    "evaluate",
]

EPS = float(np.finfo(np.float64).eps)
"""Probabilities are clipped to [EPS, 1 - EPS] before the logarithm, as scikit-learn does."""


def _check(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Y = np.asarray(Y, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    if Y.ndim != 2 or Y.shape != P.shape:
        raise ValueError(f"labels {Y.shape} and probabilities {P.shape} must both be (videos, classes)")
    return Y, P


def per_class_log_loss(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Binary log loss of every class column: shape (classes,)."""
    Y, P = _check(Y, P)
    P = np.clip(P, EPS, 1.0 - EPS)
    return -(Y * np.log(P) + (1.0 - Y) * np.log1p(-P)).mean(axis=0)


def competition_log_loss(Y: np.ndarray, P: np.ndarray) -> float:
    """The Pri-matrix metric: the mean over classes of the binary log loss of each class."""
    return float(per_class_log_loss(Y, P).mean())


def is_single_label(Y: np.ndarray) -> bool:
    """True when every video has exactly one positive class (a multi-class problem)."""
    Y = np.asarray(Y)
    return bool(Y.size) and bool(np.all(Y.sum(axis=1) == 1))


def top1_accuracy(Y: np.ndarray, P: np.ndarray) -> float:
    """Share of videos whose most probable class is one of their labels."""
    Y, P = _check(Y, P)
    top = P.argmax(axis=1)
    return float(Y[np.arange(len(Y)), top].mean()) if len(Y) else float("nan")


def macro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    """Macro F1 over classes: of the argmax for single-label data, of ``P >= 0.5`` otherwise."""
    from sklearn.metrics import f1_score

    Y, P = _check(Y, P)
    if is_single_label(Y):
        labels = list(range(Y.shape[1]))
        return float(f1_score(Y.argmax(1), P.argmax(1), labels=labels, average="macro", zero_division=0))
    return float(f1_score(Y.astype(int), (P >= 0.5).astype(int), average="macro", zero_division=0))


def per_class_auc(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """ROC AUC of every class column; NaN where a class has only positives or only negatives."""
    from sklearn.metrics import roc_auc_score

    Y, P = _check(Y, P)
    out = np.full(Y.shape[1], np.nan)
    for c in range(Y.shape[1]):
        if 0 < Y[:, c].sum() < len(Y):
            out[c] = roc_auc_score(Y[:, c], P[:, c])
    return out


def calibration(Y: np.ndarray, P: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Reliability curve over all (video, class) cells pooled, in equal-width probability bins.

    Returns:
        ``predicted`` (mean predicted probability per non-empty bin), ``observed`` (share of
        positives in it) and ``count`` (cells in it).
    """
    Y, P = _check(Y, P)
    y, p = Y.ravel(), np.clip(P.ravel(), 0.0, 1.0)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    predicted = np.bincount(bins, weights=p, minlength=n_bins)[keep] / count[keep]
    observed = np.bincount(bins, weights=y, minlength=n_bins)[keep] / count[keep]
    return {"predicted": predicted, "observed": observed, "count": count[keep]}


def confusion(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Confusion matrix (true class x predicted class) of the argmax of labels and predictions.

    For videos with several labels the first labelled class in class order counts as the truth.
    """
    Y, P = _check(Y, P)
    n = Y.shape[1]
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (Y.argmax(1), P.argmax(1)), 1)
    return matrix


@dataclass(frozen=True)
class Evaluation:
    """Every metric of one set of predictions against labels."""

    log_loss: float
    accuracy: float
    macro_f1: float
    class_log_loss: np.ndarray
    class_auc: np.ndarray
    calibration: dict = field(repr=False)
    confusion: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, float]:
        """The headline numbers as plain floats."""
        auc = self.class_auc[~np.isnan(self.class_auc)]
        return {
            "log_loss": self.log_loss,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "mean_auc": float(auc.mean()) if auc.size else float("nan"),
        }


def evaluate(Y: np.ndarray, P: np.ndarray, n_bins: int = 10) -> Evaluation:
    """All metrics of probabilities ``P`` against 0/1 labels ``Y`` (both videos x classes)."""
    class_ll = per_class_log_loss(Y, P)
    return Evaluation(
        log_loss=float(class_ll.mean()),
        accuracy=top1_accuracy(Y, P),
        macro_f1=macro_f1(Y, P),
        class_log_loss=class_ll,
        class_auc=per_class_auc(Y, P),
        calibration=calibration(Y, P, n_bins),
        confusion=confusion(Y, P),
    )
