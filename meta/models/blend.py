"""Blending several level-2 models and clipping probabilities, both fitted on out-of-fold predictions.

* Blend weights: non-negative, summing to one, chosen to minimise the competition log loss of the
  weighted mean of the members' out-of-fold probabilities.
* Clip limits: per class, a floor and a ceiling chosen from a grid to minimise that class's
  out-of-fold log loss (the 3rd place gained from this); or one fixed limit for every class
  (the 1st place clipped at 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import competition_log_loss, per_class_log_loss

__all__ = ["CLIP_GRID", "ClipLimits", "fit_blend_weights", "blend", "fit_clip_limits", "fixed_clip_limits"]

CLIP_GRID: tuple[float, ...] = (0.0, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 5e-2)
"""Candidate distances from 0 (floors) and from 1 (ceilings) tried per class."""


def blend(members: list[np.ndarray] | np.ndarray, weights) -> np.ndarray:
    """The weighted mean of members' probabilities (members x videos x classes)."""
    stacked = np.asarray(members, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    return np.tensordot(weights / weights.sum(), stacked, axes=1)


def fit_blend_weights(members: list[np.ndarray], Y: np.ndarray) -> np.ndarray:
    """Blend weights (summing to one) minimising the log loss of the blended OOF probabilities."""
    from scipy.optimize import minimize

    count = len(members)
    if count == 1:
        return np.ones(1)

    def loss(logits: np.ndarray) -> float:
        weights = np.exp(logits - logits.max())
        return competition_log_loss(Y, blend(members, weights))

    found = minimize(loss, np.zeros(count), method="Nelder-Mead",
                     options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 400 * count})
    weights = np.exp(found.x - found.x.max())
    weights = weights / weights.sum()
    equal = np.full(count, 1.0 / count)
    return weights if loss(np.log(weights)) <= loss(np.log(equal)) else equal


@dataclass(frozen=True)
class ClipLimits:
    """Per-class floors and ceilings of probabilities."""

    low: np.ndarray
    high: np.ndarray

    def apply(self, P: np.ndarray) -> np.ndarray:
        """``P`` clipped class by class."""
        return np.clip(P, self.low[None, :], self.high[None, :])

    def to_json(self) -> dict:
        return {"low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_json(cls, data: dict) -> "ClipLimits":
        return cls(np.asarray(data["low"], dtype=np.float64), np.asarray(data["high"], dtype=np.float64))


def fixed_clip_limits(n_classes: int, limit: float) -> ClipLimits:
    """Every class clipped to [limit, 1 - limit] (the 1st place used 1e-4)."""
    return ClipLimits(np.full(n_classes, limit), np.full(n_classes, 1.0 - limit))


def fit_clip_limits(P: np.ndarray, Y: np.ndarray, grid: tuple[float, ...] = CLIP_GRID) -> ClipLimits:
    """Per-class limits from ``grid`` minimising each class's OOF log loss.

    The floor and the ceiling act on disjoint cells (below 0.5 and above it), so each is chosen
    on its own.
    """
    P = np.asarray(P, dtype=np.float64)
    distances = np.asarray(grid, dtype=np.float64)
    floor_losses = np.stack([per_class_log_loss(Y, np.clip(P, g, 1.0)) for g in distances])
    ceiling_losses = np.stack([per_class_log_loss(Y, np.clip(P, 0.0, 1.0 - g)) for g in distances])
    return ClipLimits(distances[floor_losses.argmin(axis=0)], 1.0 - distances[ceiling_losses.argmin(axis=0)])
