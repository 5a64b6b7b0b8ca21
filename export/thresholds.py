"""Per-class thresholds: which probabilities become observations.

Either one fixed threshold for every class (``--threshold 0.5``), or per class the lowest
threshold whose precision on the model's out-of-fold predictions reaches a target
(``--target-precision 0.9``): on the labelled videos the model never saw while training, the
videos at or above it are the class at least that often. A class that never reaches the target
gets no threshold and is never reported by the machine. Which rule, and each class's value, is
recorded in the export.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..config import JungleConfig
from ..errors import InputError

__all__ = ["ThresholdConfig", "fit_precision_thresholds", "resolve_thresholds", "passes"]


class ThresholdConfig(JungleConfig):
    """How the threshold of each class is chosen.

    Attributes:
        threshold: the fixed threshold (used when ``target_precision`` is None).
        target_precision: fit per-class thresholds on the out-of-fold predictions for this precision.
    """

    threshold: float = Field(0.5, ge=0.0, le=1.0)
    target_precision: float | None = Field(None, gt=0.0, le=1.0)

    @property
    def rule(self) -> Literal["fixed", "fitted"]:
        return "fixed" if self.target_precision is None else "fitted"



def fit_precision_thresholds(P: np.ndarray, Y: np.ndarray, target: float) -> list[float | None]:
    """Per class, the lowest probability t with precision(P >= t) >= ``target`` on (P, Y); None
    when no t reaches it.

    Args:
        P: (n, c) out-of-fold probabilities.
        Y: (n, c) 0/1 labels.
        target: the wanted precision.
    """
    out: list[float | None] = []
    for p, y in zip(np.asarray(P, dtype=np.float64).T, np.asarray(Y).T):
        order = np.argsort(-p, kind="stable")
        p_sorted, y_sorted = p[order], y[order]
        hits = np.cumsum(y_sorted)
        counted = np.arange(1, len(p) + 1)
        last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # a threshold takes every tied score
        ok = last_of_tie & (hits / counted >= target) & (hits > 0)
        out.append(float(p_sorted[np.flatnonzero(ok)[-1]]) if ok.any() else None)
    return out


def resolve_thresholds(config: ThresholdConfig, classes: list, oof: tuple[np.ndarray, np.ndarray] | None
                       ) -> dict[str, float | None]:
    """The threshold of every class: fixed, or fitted on ``oof`` = (probabilities, labels)."""
    if config.target_precision is None:
        return {c: config.threshold for c in classes}
    P, Y = oof
    if len(P) == 0:
        raise InputError("--target-precision fits thresholds on the model's out-of-fold predictions of labelled "
                         "videos, and this model has none. Use a fixed --threshold instead.")
    return dict(zip(classes, fit_precision_thresholds(P, Y, config.target_precision)))


def passes(probabilities: np.ndarray, thresholds: dict, classes: list) -> np.ndarray:
    """(n, c) bool: probability >= the class's threshold (never for a class without one)."""
    limits = np.array([np.inf if thresholds[c] is None else thresholds[c] for c in classes])
    return np.asarray(probabilities) >= limits
