"""The zero-shot model as saved: what its folder holds, applied to evidence columns.

A zero-shot model (``kind: zero-shot``; :mod:`.build` makes it) has no trained members: its manifest's
:class:`~jungle.meta.manifest.ZeroShotRecord` holds the rule's constants and what the class map covers,
and ``calibration.npz`` (only when labels re-calibrated it) the per-class correction.
:class:`ZeroShotModel` turns the rows of its evidence set (``zeroshot_<src>``, the columns
:func:`rule_columns` names) into probabilities exactly as they were when it was built, so
``jungle predict``, the exports, the report and the review page use it like any saved model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError, ModelError
from ...features.aggregates.frame_stats import class_slug
from ..manifest import ZERO_SHOT_RECIPE
from ..model_check import check_npz, read_model_file
from .calibration import Correction
from .rule import ZeroShotRule, zero_shot_probabilities

__all__ = ["ZERO_SHOT", "RULE_COLUMNS", "CALIBRATION_FILE", "ZeroShotModel", "rule_columns", "load_zero_shot"]

ZERO_SHOT = ZERO_SHOT_RECIPE
"""The zero-shot model's recipe name and kind: ``--model zero-shot``."""
RULE_COLUMNS = ("det_max", "det_frac", "motion_max", "mapped_max")
"""The evidence columns P(animal) reads (the per-class masses follow them)."""
CALIBRATION_FILE = "calibration.npz"
_REMAKE = "Make it again with `jungle predict --model zero-shot`."


def rule_columns(classes) -> list[str]:
    """The evidence columns a zero-shot model reads, in order: :data:`RULE_COLUMNS`, then one
    per class (its slug); its manifest names them qualified by the set (``zeroshot_lite0.det_max``)."""
    return [*RULE_COLUMNS, *(class_slug(c) for c in classes)]


@dataclass
class ZeroShotModel:
    """What a zero-shot model folder holds, ready to apply to evidence columns.

    Attributes:
        classes: the taxonomy, in order.
        rule: the constants.
        imagenet_classes: per class, how many ImageNet classes the map sends there.
        covered: per class, whether the map covers it.
        correction: the labels' re-calibration (None: the rule alone).
    """

    classes: list[str]
    rule: ZeroShotRule
    imagenet_classes: np.ndarray
    covered: np.ndarray
    correction: Correction | None = None

    def rule_probabilities(self, X: np.ndarray) -> np.ndarray:
        """The rule's probabilities of evidence rows ``X`` (columns :func:`rule_columns`)."""
        X = np.asarray(X, np.float64)
        k = len(RULE_COLUMNS)
        evidence = {name: X[:, i] for i, name in enumerate(RULE_COLUMNS)}
        return zero_shot_probabilities(self.rule, evidence, self.classes, np.nan_to_num(X[:, k:]),
                                       self.imagenet_classes, self.covered)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of evidence rows ``X``: the rule's, re-calibrated when labels made a correction."""
        P = self.rule_probabilities(X)
        if self.correction is not None:
            P = np.clip(self.correction.apply(P), self.rule.floor, 1.0 - self.rule.floor)
        return P


def load_zero_shot(folder: Path, manifest) -> ZeroShotModel:
    """The :class:`ZeroShotModel` of a saved folder (its calibration file read once and checked).

    Raises:
        ModelError: the rule's constants are not valid, or the calibration file is damaged.
    """
    record = manifest.zero_shot
    n = len(manifest.classes)
    try:
        rule = ZeroShotRule.model_validate(record.rule)
    except InputError as exc:
        raise ModelError(f"model manifest {folder / 'manifest.json'} holds a zero-shot rule that is not valid "
                         f"({exc}). {_REMAKE}") from None
    correction = None
    if record.file is not None:
        path = folder / record.file
        raw = read_model_file(folder, record.file, "projection")
        check_npz(raw, path)
        with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
            slope, intercept = arrays.get("slope"), arrays.get("intercept")
            if slope is None or intercept is None or slope.shape != (n,) or intercept.shape != (n,) \
                    or not (np.isfinite(slope).all() and np.isfinite(intercept).all()):
                raise ModelError(f"calibration file {path} does not hold {n} finite slopes and intercepts. {_REMAKE}")
            correction = Correction(slope.astype(np.float64), intercept.astype(np.float64))
    return ZeroShotModel(list(manifest.classes), rule, np.asarray(record.imagenet_classes, np.float64),
                         np.asarray(record.covered, bool), correction)
