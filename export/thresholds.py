"""Per-class thresholds: which probabilities become observations.

Either one fixed threshold for every class (``--threshold 0.5``), or per class the lowest
threshold whose precision on the model's out-of-fold predictions reaches a target
(``--target-precision 0.9``): on the labelled videos the model never saw while training, the
videos at or above it are the class at least that often.

A class that never reaches the target falls back, stated, to the fixed :data:`FALLBACK_THRESHOLD`
(0.5: reported when the model finds it more likely than not), never to a lower threshold. (The
threshold of a class's best reachable precision was tried: for rare classes it sat at the
probability floor, where its precision was 1%, and would have reported them on nearly every
clip.) The export prints one warning line listing these classes with their out-of-fold precision
at 0.5, and records each fallback (threshold, that precision, the clips it counts, the best
precision the class does reach and where) beside the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from ..config import JungleConfig
from ..errors import InputError

__all__ = ["FALLBACK_THRESHOLD", "Thresholds", "ThresholdConfig", "best_precision_thresholds",
           "fit_precision_thresholds", "resolve_thresholds", "passes"]

FALLBACK_THRESHOLD = 0.5
"""The threshold of a class that has no out-of-fold hit at any threshold (nothing better is known)."""


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



def _precision_curve(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate thresholds, precision at each, hits at each) of one class, highest threshold first;
    a threshold takes every tied score."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    hits = np.cumsum(y_sorted)
    last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    counted = np.arange(1, len(p) + 1)
    return p_sorted[last_of_tie], (hits / counted)[last_of_tie], hits[last_of_tie]


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
        thresholds, precision, hits = _precision_curve(p, y)
        ok = (precision >= target) & (hits > 0)
        out.append(float(thresholds[np.flatnonzero(ok)[-1]]) if ok.any() else None)
    return out


def best_precision_thresholds(P: np.ndarray, Y: np.ndarray) -> list[tuple[float, float]]:
    """Per class (threshold, precision): the lowest threshold at which its out-of-fold precision is
    highest; (:data:`FALLBACK_THRESHOLD`, 0.0) when no threshold has a hit."""
    out = []
    for p, y in zip(np.asarray(P, dtype=np.float64).T, np.asarray(Y).T):
        thresholds, precision, hits = _precision_curve(p, y)
        precision = np.where(hits > 0, precision, 0.0)
        if not len(precision) or precision.max() <= 0:
            out.append((FALLBACK_THRESHOLD, 0.0))
            continue
        best = np.flatnonzero(precision == precision.max())[-1]
        out.append((float(thresholds[best]), float(precision[best])))
    return out


def _precision_at(p: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float | None, int]:
    """(precision, clips) of one class at ``threshold`` (precision None when no clip reaches it)."""
    above = p >= threshold
    return (float(y[above].mean()) if above.any() else None), int(above.sum())


@dataclass
class Thresholds:
    """The threshold of every class and, for classes that could not reach the target precision,
    the stated fallback: ``{class: {"threshold", "precision", "clips", "best_precision",
    "best_threshold"}}`` (out of fold; ``precision`` None when no clip reaches the threshold)."""

    values: dict[str, float]
    fallbacks: dict[str, dict] = field(default_factory=dict)

    def warning(self, target: float | None) -> str | None:
        """The one line that lists the classes on the fallback (None when there are none)."""
        if not self.fallbacks:
            return None
        listed = ", ".join(f"{c} {f['precision']:.2f}" if f["precision"] is not None else f"{c} (none above)"
                           for c, f in self.fallbacks.items())
        return (f"{len(self.fallbacks)} of {len(self.values)} classes cannot reach precision {target:g} out of fold; "
                f"they use the fixed threshold {FALLBACK_THRESHOLD} instead (their out-of-fold precision there: "
                f"{listed}).")


def resolve_thresholds(config: ThresholdConfig, classes: list, oof: tuple[np.ndarray, np.ndarray] | None
                       ) -> Thresholds:
    """The threshold of every class: fixed, or fitted on ``oof`` = (probabilities, labels), with
    the stated fallback for classes that cannot reach the target."""
    if config.target_precision is None:
        return Thresholds({c: config.threshold for c in classes})
    P, Y = oof
    if len(P) == 0:
        raise InputError("--target-precision fits thresholds on the model's out-of-fold predictions of labelled "
                         "videos, and this model has none. Use a fixed --threshold instead.")
    P, Y = np.asarray(P, dtype=np.float64), np.asarray(Y)
    fitted = fit_precision_thresholds(P, Y, config.target_precision)
    best = best_precision_thresholds(P, Y)
    values, fallbacks = {}, {}
    for j, (c, value) in enumerate(zip(classes, fitted)):
        values[c] = value if value is not None else FALLBACK_THRESHOLD
        if value is None:
            precision, clips = _precision_at(P[:, j], Y[:, j], FALLBACK_THRESHOLD)
            fallbacks[c] = {"threshold": FALLBACK_THRESHOLD, "precision": None if precision is None else
                            round(precision, 4), "clips": clips, "best_precision": round(best[j][1], 4),
                            "best_threshold": best[j][0]}
    return Thresholds(values, fallbacks)


def passes(probabilities: np.ndarray, thresholds: dict, classes: list) -> np.ndarray:
    """(n, c) bool: probability >= the class's threshold."""
    limits = np.array([thresholds[c] for c in classes], dtype=np.float64)
    return np.asarray(probabilities) >= limits
