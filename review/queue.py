"""The review queue: which clip to look at next, as pure functions of probabilities and labels.

Every rule takes the model's probability matrix ``P`` (clips x classes) and what is known about the
clips, and returns clip indices in the order a reviewer should see them:

- **uncertainty** (the default): clips whose predicted class distribution is least decided
  first: the entropy of the row (normalised to sum to 1), or ``1 - (p1 - p2)``, the margin
  between the two most probable classes.
- **likely**: clips ranked by the probability of one class ("show me all probable leopards").
- **disagreement**: labelled clips whose labels the model finds improbable first (label-noise
  hunting): the mean binary log loss of the clip's labels under ``P``.
- **site_time**: by site, then recording time, then file name.
- **random**: a seeded shuffle.

Filters (site, labelled or not, class, probability band) select rows before ranking. Each order
has a default for the labelled filter: uncertainty and likely look at unlabelled clips,
disagreement at labelled ones, site_time and random at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from ..errors import InputError

__all__ = [
    "ORDERS",
    "QueueRequest",
    "QueueError",
    "uncertainty_scores",
    "likely_scores",
    "disagreement_scores",
    "select",
    "rank",
    "queue_order",
]

Order = Literal["uncertainty", "likely", "disagreement", "site_time", "random"]
ORDERS: tuple[str, ...] = ("uncertainty", "likely", "disagreement", "site_time", "random")
_DEFAULT_LABELLED = {"uncertainty": False, "likely": False, "disagreement": True, "site_time": None, "random": None}
_EPS = 1e-6


class QueueError(InputError):
    """A queue request names an unknown order, class or filter value."""


@dataclass(frozen=True)
class QueueRequest:
    """One queue: the order and the filters.

    Attributes:
        order: one of :data:`ORDERS`.
        class_index: the class of ``likely`` (required there); with other orders, keeps clips
            labelled with that class or whose most probable class it is.
        site: keep only clips of this site.
        labelled: True (labelled clips only), False (unlabelled only), None (the order's default);
            pass ``"all"`` through :meth:`resolved_labelled` for every clip.
        band: (low, high) inclusive band of the probability of ``class_index`` (else of the most
            probable class).
        method: ``entropy`` or ``margin`` (uncertainty only).
        seed: the shuffle of ``random``.
    """

    order: str = "uncertainty"
    class_index: int | None = None
    site: str | None = None
    labelled: bool | str | None = None
    band: tuple[float, float] | None = None
    method: str = "entropy"
    seed: int = 0

    def __post_init__(self):
        if self.order not in ORDERS:
            raise QueueError(f"unknown queue order {self.order!r}: use one of {', '.join(ORDERS)}")
        if self.order == "likely" and self.class_index is None:
            raise QueueError("the likely order needs a class: pass class=NAME")
        if self.method not in ("entropy", "margin"):
            raise QueueError(f"unknown uncertainty method {self.method!r}: use entropy or margin")
        if self.labelled not in (True, False, None, "all"):
            raise QueueError(f"labelled must be yes, no or all, not {self.labelled!r}")
        if self.band is not None and not (0.0 <= self.band[0] <= self.band[1] <= 1.0):
            raise QueueError(f"the probability band {self.band} must satisfy 0 <= low <= high <= 1")

    def resolved_labelled(self) -> bool | None:
        """True/False to keep only labelled/unlabelled clips, None for every clip."""
        if self.labelled == "all":
            return None
        return _DEFAULT_LABELLED[self.order] if self.labelled is None else self.labelled


def uncertainty_scores(P: np.ndarray, method: str = "entropy") -> np.ndarray:
    """How undecided each row of ``P`` is; larger is less sure.

    Args:
        P: (n, C) probabilities (rows need not sum to 1: they are normalised first).
        method: ``entropy`` (in nats, of the normalised row) or ``margin`` (``1 - (p1 - p2)``).
    """
    P = np.clip(np.asarray(P, dtype=np.float64), _EPS, 1.0)
    Q = P / P.sum(axis=1, keepdims=True)
    if method == "entropy":
        return -(Q * np.log(Q)).sum(axis=1)
    if P.shape[1] < 2:
        return np.zeros(len(P))
    top2 = np.sort(Q, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def likely_scores(P: np.ndarray, class_index: int) -> np.ndarray:
    """The probability of class ``class_index`` per clip."""
    return np.asarray(P, dtype=np.float64)[:, class_index]


def disagreement_scores(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Mean binary log loss of each clip's labels ``Y`` (0/1) under ``P``; larger is more surprising."""
    P = np.clip(np.asarray(P, dtype=np.float64), _EPS, 1.0 - _EPS)
    Y = np.asarray(Y, dtype=np.float64)
    return -(Y * np.log(P) + (1.0 - Y) * np.log(1.0 - P)).mean(axis=1)


def select(request: QueueRequest, P: np.ndarray, Y: np.ndarray, labelled: np.ndarray,
           sites: Sequence[str | None]) -> np.ndarray:
    """Boolean mask of the clips the request's filters keep.

    Args:
        request: the queue request.
        P: (n, C) probabilities.
        Y: (n, C) 0/1 labels (rows of unlabelled clips are ignored).
        labelled: (n,) bool, which clips have labels.
        sites: (n,) site of each clip.
    """
    P = np.asarray(P)
    labelled = np.asarray(labelled, dtype=bool)
    keep = np.ones(len(P), dtype=bool)
    want_labelled = request.resolved_labelled()
    if want_labelled is not None:
        keep &= labelled == want_labelled
    if request.site is not None:
        keep &= np.asarray([s == request.site for s in sites], dtype=bool)
    if request.class_index is not None and request.order != "likely":
        c = request.class_index
        keep &= (labelled & (np.asarray(Y)[:, c] == 1)) | (P.argmax(axis=1) == c)
    if request.band is not None:
        column = P[:, request.class_index] if request.class_index is not None else P.max(axis=1)
        keep &= (column >= request.band[0]) & (column <= request.band[1])
    return keep


def rank(request: QueueRequest, P: np.ndarray, Y: np.ndarray, sites: Sequence[str | None],
         times: Sequence[float], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every clip's index in queue order, and the score that ordered it (NaN for site_time/random).

    Ties are broken by file name, so the order is deterministic.
    """
    n = len(P)
    names_order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    tiebreak = np.empty(n, dtype=np.int64)
    tiebreak[names_order] = np.arange(n)
    if request.order == "random":
        order = np.random.default_rng(request.seed).permutation(n)
        return order, np.full(n, np.nan)
    if request.order == "site_time":
        site_key = np.asarray(["" if s is None else str(s) for s in sites], dtype=object)
        time_key = np.nan_to_num(np.asarray(times, dtype=np.float64), nan=np.inf)
        return np.lexsort((tiebreak, time_key, site_key)), np.full(n, np.nan)
    if request.order == "uncertainty":
        scores = uncertainty_scores(P, request.method)
    elif request.order == "likely":
        scores = likely_scores(P, request.class_index)
    else:
        scores = disagreement_scores(P, Y)
    return np.lexsort((tiebreak, -scores)), scores


def queue_order(request: QueueRequest, P: np.ndarray, Y: np.ndarray, labelled: np.ndarray,
                sites: Sequence[str | None], times: Sequence[float], names: Sequence[str]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The kept clips' indices in queue order, with their scores (:func:`select` then :func:`rank`)."""
    order, scores = rank(request, P, Y, sites, times, names)
    keep = select(request, P, Y, labelled, sites)
    chosen = order[keep[order]]
    return chosen, scores[chosen]
