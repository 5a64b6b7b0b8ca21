"""The blank filter: which clips to skip, at a stated cost in animal clips lost.

Most camera-trap video is empty. Any model with a ``blank`` class gives each clip
``P(animal) = 1 - P(blank)``; skipping every clip below a threshold removes blank clips and loses
the animal clips that fall below it too. The threshold is chosen for a largest acceptable share of
animal clips lost (``max_animal_loss``):

- **with labels** (:func:`fit_filter`): on the labelled clips' out-of-fold probabilities, the
  largest threshold that loses at most that share of the labelled animal clips. How well that
  choice carries to new clips is measured out of fold as well: the labelled clips are split in
  folds, a threshold is chosen on the other folds and applied to each one, and the animal clips
  lost and blanks removed are counted over all of them (``measured_loss``, ``blanks_removed``);
- **without labels** (:func:`rule_threshold`): the model's own probabilities stand in for the labels.
  The expected number of animal clips among the skipped ones is the sum of their ``P(animal)``;
  the threshold is the largest whose expected loss is at most ``max_animal_loss`` of the expected
  animal clips. This is only as good as the model's calibration, so the cost is *not measured*:
  label a few clips (a few blank, a few not) and run again.

:func:`filter_curve` gives the whole trade-off (blanks removed against animal clips lost) over
every threshold, for reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ...errors import InputError

__all__ = ["BLANK", "NoBlankClass", "FilterCurve", "BlankFilter", "animal_probability", "filter_curve",
           "largest_threshold", "rule_threshold", "fit_filter", "MIN_LABELS"]

BLANK = "blank"
MIN_LABELS = 4
"""Fewest labelled animal clips and labelled blank clips before a threshold is fitted on labels."""


class NoBlankClass(InputError):
    """The model has no ``blank`` class, so it gives no probability of an empty clip."""


def animal_probability(classes: list[str], P: np.ndarray) -> np.ndarray:
    """``1 - P(blank)`` per clip.

    Raises:
        NoBlankClass: ``classes`` has no ``blank``.
    """
    if BLANK not in classes:
        raise NoBlankClass(f"the model's classes have no {BLANK!r} class ({', '.join(classes[:5])}, ...), so it "
                           "cannot say which clips are empty: a blank filter needs a model with a blank class.")
    return 1.0 - np.asarray(P, np.float64)[:, classes.index(BLANK)]


@dataclass
class FilterCurve:
    """The trade-off over thresholds: skipping clips with P(animal) < ``threshold[i]`` loses
    ``animal_loss[i]`` of the animal clips and removes ``blanks_removed[i]`` of the blank ones."""

    threshold: np.ndarray
    animal_loss: np.ndarray
    blanks_removed: np.ndarray

    def at_loss(self, loss: float) -> float:
        """The largest share of blanks removed while losing at most ``loss`` of the animal clips."""
        ok = self.animal_loss <= loss + 1e-12
        return float(self.blanks_removed[ok].max()) if ok.any() else 0.0


def filter_curve(p_animal: np.ndarray, is_animal: np.ndarray) -> FilterCurve:
    """The curve on labelled clips: one point per distinct threshold (each clip's own P(animal),
    and above the largest), from skipping nothing to skipping everything."""
    p = np.asarray(p_animal, np.float64)
    animal = np.asarray(is_animal, bool)
    cuts = np.unique(np.concatenate([p, [np.inf]]))
    n_animal, n_blank = max(animal.sum(), 1), max((~animal).sum(), 1)
    animals_lost = np.searchsorted(np.sort(p[animal]), cuts, side="left") / n_animal
    blanks_removed = np.searchsorted(np.sort(p[~animal]), cuts, side="left") / n_blank
    return FilterCurve(cuts, animals_lost, blanks_removed)


def largest_threshold(p_animal: np.ndarray, is_animal: np.ndarray, max_animal_loss: float) -> float:
    """The largest threshold (skip P(animal) < threshold) that loses at most ``max_animal_loss`` of
    the animal clips; 0 (skip nothing) when there is none."""
    p = np.sort(np.asarray(p_animal, np.float64)[np.asarray(is_animal, bool)])
    if not len(p):
        return 0.0
    allowed = int(np.floor(max_animal_loss * len(p) + 1e-9))   # animal clips that may be lost
    return float(p[allowed]) if allowed < len(p) else float(np.nextafter(p[-1], np.inf))


def rule_threshold(p_animal: np.ndarray, max_animal_loss: float) -> tuple[float, float]:
    """The label-free threshold: the largest whose expected animal loss (the sum of P(animal) of
    the skipped clips over the sum of all) is at most ``max_animal_loss``; and that expected loss."""
    p = np.sort(np.asarray(p_animal, np.float64))
    if not len(p) or p.sum() <= 0:
        return 0.0, 0.0
    lost = np.concatenate([[0.0], np.cumsum(p)]) / p.sum()     # lost[i]: skipping the i lowest
    i = int(np.searchsorted(lost, max_animal_loss + 1e-12, side="right")) - 1
    threshold = float(p[i]) if i < len(p) else float(np.nextafter(p[-1], np.inf))
    # clips tied at the threshold stay (skip is strictly below it)
    kept_lost = p[p < threshold].sum() / p.sum()
    return threshold, float(kept_lost)


@dataclass
class BlankFilter:
    """A chosen threshold and what it is expected to cost.

    Attributes:
        threshold: skip clips with P(animal) below it.
        max_animal_loss: the share of animal clips the user accepts to lose.
        basis: ``labels`` (fitted on labelled clips, out of fold) or ``model`` (the label-free rule).
        labelled_animals, labelled_blanks: labelled clips it was fitted on (0 with the rule).
        measured_loss: share of labelled animal clips lost, thresholds chosen out of fold (None: not
            measured, the rule).
        blanks_removed: share of labelled blank clips removed, the same way (None with the rule).
        expected_loss: the rule's expected share of animal clips lost (None with labels).
        curve: the labelled clips' curve (None with the rule).
    """

    threshold: float
    max_animal_loss: float
    basis: Literal["labels", "model"]
    labelled_animals: int = 0
    labelled_blanks: int = 0
    measured_loss: float | None = None
    blanks_removed: float | None = None
    expected_loss: float | None = None
    curve: FilterCurve | None = field(default=None, repr=False)

    def describe(self) -> str:
        """One line saying what the filter costs, and how that is known."""
        head = f"Skipping P(animal) < {self.threshold:.4g}: "
        if self.basis == "labels":
            return (head + f"measured out of fold on {self.labelled_animals} labelled animal and "
                    f"{self.labelled_blanks} blank clips, it loses {self.measured_loss:.1%} of animal clips and "
                    f"removes {self.blanks_removed:.1%} of blanks (target: at most {self.max_animal_loss:.1%} lost)")
        return (head + f"the model's own probabilities expect {self.expected_loss:.1%} of animal clips lost; the "
                "cost is not yet measured (no labels): label a few blank and a few animal clips, then predict again")


def _split(n: int, k: int, seed: int) -> np.ndarray:
    fold = np.empty(n, np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return fold


def fit_filter(p_animal: np.ndarray, is_animal: np.ndarray, max_animal_loss: float, folds: int = 5,
               seed: int = 0) -> BlankFilter:
    """The threshold fitted on labelled clips (their out-of-fold ``p_animal``), and its cost measured
    out of fold (see the module docstring).

    Raises:
        InputError: fewer than :data:`MIN_LABELS` labelled animal or blank clips.
    """
    p = np.asarray(p_animal, np.float64)
    animal = np.asarray(is_animal, bool)
    if animal.sum() < MIN_LABELS or (~animal).sum() < MIN_LABELS:
        raise InputError(f"a blank filter fitted on labels needs at least {MIN_LABELS} labelled animal and "
                         f"{MIN_LABELS} labelled blank clips (have {int(animal.sum())} and {int((~animal).sum())})")
    k = int(min(folds, animal.sum(), (~animal).sum()))
    fold = _split(len(p), k, seed)
    skipped = np.zeros(len(p), bool)
    for f in range(k):
        held = fold == f
        skipped[held] = p[held] < largest_threshold(p[~held], animal[~held], max_animal_loss)
    return BlankFilter(largest_threshold(p, animal, max_animal_loss), max_animal_loss, "labels",
                       int(animal.sum()), int((~animal).sum()), float(skipped[animal].mean()),
                       float(skipped[~animal].mean()), None, filter_curve(p, animal))
