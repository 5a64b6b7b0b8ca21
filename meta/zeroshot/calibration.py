"""Re-calibrating the zero-shot model once labels exist: per class, a logistic correction of its logit.

The zero-shot rule (:mod:`.rule`) is calibrated without labels. Once some clips are labelled (the
review page's labels are enough), each class's probability ``p`` is corrected to
``sigmoid(a * logit(p) + b)``, with ``(a, b)`` fitted by penalised maximum likelihood on the
labelled clips and pulled towards the identity ``(1, 0)`` by an L2 penalty of weight
:attr:`Recalibration.strength` per parameter. With a few labels the correction stays close to the
rule; with many it follows the labels; a class nobody has labelled positive still learns from
its negatives (its intercept goes down).

The labelled clips' own probabilities are out of fold (:func:`recalibrate_out_of_fold`): each
fold's correction is fitted on the other folds, so the scores a report or a blank filter shows for
them are honest; the correction used for the unlabelled clips is fitted on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from ...config import JungleConfig

__all__ = ["RecalibrationConfig", "Correction", "fit_correction", "recalibrate_out_of_fold", "logit"]

_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with ``p`` kept inside [1e-6, 1 - 1e-6]."""
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class RecalibrationConfig(JungleConfig):
    """How labels re-calibrate the zero-shot probabilities.

    Attributes:
        strength: L2 weight pulling each class's (slope, intercept) towards (1, 0), in units of
            labelled clips (2.0: the rule counts like two clips of evidence per parameter).
        folds: folds of the out-of-fold probabilities of the labelled clips.
        min_labels: fewest labelled clips before labels are used at all.
        seed: seed of the folds.
    """

    strength: float = Field(2.0, gt=0)
    folds: int = Field(5, ge=2)
    min_labels: int = Field(10, ge=2)
    seed: int = 0


@dataclass
class Correction:
    """Per class ``sigmoid(slope * logit(p) + intercept)``: (C,) arrays."""

    slope: np.ndarray
    intercept: np.ndarray

    @classmethod
    def identity(cls, classes: int) -> "Correction":
        return cls(np.ones(classes), np.zeros(classes))

    def apply(self, P: np.ndarray) -> np.ndarray:
        """Corrected probabilities of ``P`` (videos x classes)."""
        z = self.slope * logit(P) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def _fit_class(z: np.ndarray, y: np.ndarray, strength: float) -> tuple[float, float]:
    """(slope, intercept) minimising the binary log loss of ``sigmoid(slope*z + intercept)`` on
    ``y`` plus ``strength * ((slope - 1)^2 + intercept^2) / 2`` (Newton's method; the problem is convex)."""
    X = np.column_stack([z, np.ones_like(z)])
    prior = np.array([1.0, 0.0])

    def objective(w: np.ndarray) -> float:
        s = X @ w
        return float(np.sum(np.logaddexp(0.0, s) - y * s) + strength * np.sum((w - prior) ** 2) / 2)

    w = prior.copy()
    value = objective(w)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -40, 40)))
        gradient = X.T @ (p - y) + strength * (w - prior)
        hessian = (X * (p * (1 - p))[:, None]).T @ X + strength * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6 and objective(w - scale * step) > value:   # backtracking: never uphill
            scale /= 2
        w, new = w - scale * step, objective(w - scale * step)
        if value - new < 1e-10:
            break
        value = new
    return float(w[0]), float(w[1])


def fit_correction(P: np.ndarray, Y: np.ndarray, strength: float = 2.0) -> Correction:
    """The per-class correction fitted on labelled clips' probabilities ``P`` and labels ``Y`` (0/1)."""
    Z = logit(P)
    Y = np.asarray(Y, np.float64)
    fitted = [_fit_class(Z[:, c], Y[:, c], strength) for c in range(Z.shape[1])]
    return Correction(np.array([a for a, _ in fitted]), np.array([b for _, b in fitted]))


def _folds(n: int, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each of ``n`` labelled clips: a seeded shuffle dealt round-robin."""
    fold = np.empty(n, np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return fold


def recalibrate_out_of_fold(P: np.ndarray, Y: np.ndarray, labelled: np.ndarray,
                            config: RecalibrationConfig = RecalibrationConfig()
                            ) -> tuple[np.ndarray, Correction, np.ndarray]:
    """Re-calibrated probabilities of every clip: out of fold for the labelled ones.

    Args:
        P: (n, C) the rule's probabilities.
        Y: (n, C) labels (rows of unlabelled clips are ignored).
        labelled: (n,) bool.
        config: strength, folds and seed.

    Returns:
        (probabilities, the correction fitted on every labelled clip, fold of each labelled clip).
    """
    labelled = np.asarray(labelled, bool)
    P = np.asarray(P, np.float64)
    lab = np.flatnonzero(labelled)
    k = min(config.folds, len(lab))
    fold = _folds(len(lab), k, config.seed)
    out = P.copy()
    for f in range(k):
        train, test = lab[fold != f], lab[fold == f]
        out[test] = fit_correction(P[train], Y[train], config.strength).apply(P[test])
    correction = fit_correction(P[lab], Y[lab], config.strength)
    rest = np.flatnonzero(~labelled)
    out[rest] = correction.apply(P[rest])
    return out, correction, fold
