"""The zero-shot rule: a clip's evidence (``zeroshot_<src>``) as probabilities, without labels.

Two parts, multiplied:

1. **P(animal)**, the probability that anything is in the clip (``blank`` is its complement): a
   logistic function of the evidence the run has (the detector's best score and share of frames
   with a box, the largest moving share of a frame, the most any image puts on mapped ImageNet
   classes). Which columns exist depends on the run (a detector or not, motion or not), so the
   rule holds one set of coefficients per kind of evidence (:class:`AnimalRule`).
2. **P(class | animal)** for the classes the class map covers: each class's pooled ImageNet mass
   ``q`` (over the ImageNet classes mapped to it), divided by ``k ** imagenet_prior`` where ``k``
   is how many ImageNet classes the map sends there (ImageNet's own prior is uniform over its
   1,000 classes, so a class made of 129 dog breeds would otherwise collect mass from the prior
   alone), sharpened or flattened by the ``temperature`` and mixed with a uniform share
   ``smoothing``. Classes the map does not cover get the stated ``uncovered`` floor each and
   nothing more.

The constants are fixed, not learned from the workspace: :data:`DEFAULT_RULE` was fitted once on
the training clips of the realistic benchmark (``bench/zeroshot.py --fit-rule``: the clips at
training sites with training photographs; no test clip), and is shipped with the code. Labels,
once there are some, re-calibrate the result (:mod:`.calibration`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from pydantic import Field, model_validator

from ...config import JungleConfig

__all__ = ["EVIDENCE_KINDS", "AnimalRule", "ZeroShotRule", "DEFAULT_RULE", "evidence_kind", "animal_probability",
           "class_probabilities", "zero_shot_probabilities"]

#: The kinds of evidence a run can have, by which box columns are present (not NaN).
EVIDENCE_KINDS = ("detector+motion", "detector", "motion", "images")
#: The features each kind's logistic function reads, in order.
FEATURES = {
    "detector+motion": ("det_max", "det_frac", "log_motion", "mapped_logit"),
    "detector": ("det_max", "det_frac", "mapped_logit"),
    "motion": ("log_motion", "mapped_logit"),
    "images": ("mapped_logit",),
}
_EPS = 1e-4


class AnimalRule(JungleConfig):
    """P(animal) = sigmoid(intercept + sum of coefficient x feature), per kind of evidence.

    Attributes:
        coefficients: per evidence kind, ``[intercept, *weights]`` over :data:`FEATURES` of that kind.
    """

    coefficients: dict[str, tuple[float, ...]]

    @model_validator(mode="after")
    def _shapes(self):
        for kind in EVIDENCE_KINDS:
            values = self.coefficients.get(kind)
            if values is None or len(values) != len(FEATURES[kind]) + 1 or not all(map(math.isfinite, values)):
                raise ValueError(f"the animal rule needs {len(FEATURES[kind]) + 1} finite coefficients for "
                                 f"{kind!r} ({', '.join(('intercept',) + FEATURES[kind])})")
        return self


class ZeroShotRule(JungleConfig):
    """Every constant of the zero-shot rule (see the module docstring).

    Attributes:
        animal: the P(animal) logistic functions.
        temperature: divides the log of each class's corrected mass (above 1 flattens).
        imagenet_prior: power of the number of ImageNet classes a class is made of, divided out.
        smoothing: share of P(class | animal) spread evenly over the covered classes.
        uncovered: P(class | animal) of each class the map does not cover (the stated floor).
        floor: every probability is kept inside [floor, 1 - floor].
    """

    animal: AnimalRule
    temperature: float = Field(1.0, gt=0)
    imagenet_prior: float = Field(0.5, ge=0, le=2)
    smoothing: float = Field(0.1, ge=0, lt=1)
    uncovered: float = Field(0.01, ge=0, lt=0.5)
    floor: float = Field(1e-4, gt=0, lt=0.01)


def _features(evidence: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    mapped = np.clip(np.nan_to_num(np.asarray(evidence["mapped_max"], np.float64)), _EPS, 1 - _EPS)
    return {"det_max": np.asarray(evidence["det_max"], np.float64),
            "det_frac": np.asarray(evidence["det_frac"], np.float64),
            "log_motion": np.log(np.asarray(evidence["motion_max"], np.float64) + 1e-3),
            "mapped_logit": np.log(mapped) - np.log1p(-mapped)}


def evidence_kind(evidence: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per clip, which kind of evidence it has (an entry of :data:`EVIDENCE_KINDS`)."""
    detector = np.isfinite(np.asarray(evidence["det_max"], np.float64))
    motion = np.isfinite(np.asarray(evidence["motion_max"], np.float64))
    return np.where(detector & motion, "detector+motion", np.where(detector, "detector",
                                                                   np.where(motion, "motion", "images")))


def animal_probability(rule: AnimalRule, evidence: Mapping[str, np.ndarray]) -> np.ndarray:
    """P(animal) of each clip from its evidence columns."""
    features = _features(evidence)
    kinds = evidence_kind(evidence)
    out = np.empty(len(kinds))
    for kind in EVIDENCE_KINDS:
        rows = kinds == kind
        if not rows.any():
            continue
        intercept, *weights = rule.coefficients[kind]
        z = intercept + sum(w * features[name][rows] for w, name in zip(weights, FEATURES[kind]))
        out[rows] = 1.0 / (1.0 + np.exp(-z))
    return out


def class_probabilities(rule: ZeroShotRule, masses: np.ndarray, imagenet_classes: Sequence[int],
                        covered: Sequence[bool]) -> np.ndarray:
    """P(class | animal) for every taxonomy class but blank.

    Args:
        rule: the constants.
        masses: (n, C) pooled ImageNet mass of each class (0 where uncovered).
        imagenet_classes: (C,) how many ImageNet classes the map sends to each class.
        covered: (C,) whether the map covers the class.

    Returns:
        (n, C) rows summing to 1 (when at least one class is covered).
    """
    covered = np.asarray(covered, bool)
    k = np.maximum(np.asarray(imagenet_classes, np.float64), 1.0)
    n_uncovered = int((~covered).sum())
    share = 1.0 - rule.uncovered * n_uncovered
    score = (np.log(np.asarray(masses, np.float64) + _EPS) - rule.imagenet_prior * np.log(k)) / rule.temperature
    score = np.where(covered, score, -np.inf)
    score -= score.max(axis=1, keepdims=True)
    weights = np.where(covered, np.exp(score), 0.0)
    spread = weights / weights.sum(axis=1, keepdims=True)
    spread = (1 - rule.smoothing) * spread + rule.smoothing * covered / max(covered.sum(), 1)
    return np.where(covered, share * spread, rule.uncovered)


def zero_shot_probabilities(rule: ZeroShotRule, evidence: Mapping[str, np.ndarray], classes: Sequence[str],
                            masses: np.ndarray, imagenet_classes: Sequence[int], covered: Sequence[bool],
                            blank: str = "blank") -> np.ndarray:
    """The probabilities of every class of the taxonomy (``blank`` = 1 - P(animal)).

    Args:
        rule: the constants.
        evidence: the evidence columns (``det_max``, ``det_frac``, ``motion_max``, ``mapped_max``), (n,) each.
        classes: the taxonomy, in order (with ``blank``).
        masses, imagenet_classes, covered: per class as :func:`class_probabilities` takes them
            (the blank column is ignored).

    Returns:
        (n, C) probabilities, kept inside [floor, 1 - floor].
    """
    p_animal = animal_probability(rule.animal, evidence)
    keep = np.array([c != blank for c in classes])
    P = np.zeros((len(p_animal), len(classes)))
    conditional = class_probabilities(rule, np.asarray(masses)[:, keep], np.asarray(imagenet_classes)[keep],
                                      np.asarray(covered, bool)[keep])
    P[:, keep] = p_animal[:, None] * conditional
    if not keep.all():
        P[:, ~keep] = 1.0 - p_animal[:, None]
    return np.clip(P, rule.floor, 1.0 - rule.floor)


DEFAULT_RULE = ZeroShotRule(animal=AnimalRule(coefficients={
    "detector+motion": (-1.0, 5.0, 2.0, 0.2, 0.2),
    "detector": (-1.0, 5.0, 2.0, 0.2),
    "motion": (0.5, 0.2, 0.2),
    "images": (0.0, 0.3),
}))
"""Provisional constants set by hand (a detection counts most; motion and the ImageNet animal mass a
little), until ``bench/zeroshot.py --fit-rule`` replaces them with the fitted ones."""
