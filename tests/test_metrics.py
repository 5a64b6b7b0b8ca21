"""Metrics, blending and clipping against scikit-learn and plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from jungle.meta.models.blend import blend, fit_blend_weights, fit_clip_limits, fixed_clip_limits
from jungle.meta.metrics import (calibration, competition_log_loss, confusion, evaluate, macro_f1,
                                 per_class_auc, per_class_log_loss, top1_accuracy)


def _data(seed=0, n=400, c=5, multilabel=True):
    rng = np.random.default_rng(seed)
    Y = np.eye(c)[rng.integers(0, c, n)]
    if multilabel:
        Y[rng.random(n) < 0.2, 0] = 1
    P = np.clip(0.6 * Y + 0.4 * rng.random((n, c)), 0.001, 0.999)
    return Y, P


def test_metric_is_mean_of_sklearn_binary_log_loss_per_class():
    Y, P = _data()
    expected = np.mean([log_loss(Y[:, k], P[:, k], labels=[0, 1]) for k in range(Y.shape[1])])
    assert competition_log_loss(Y, P) == pytest.approx(expected, rel=1e-12)
    assert per_class_log_loss(Y, P) == pytest.approx(
        [log_loss(Y[:, k], P[:, k], labels=[0, 1]) for k in range(Y.shape[1])], rel=1e-12)


def test_metric_clips_certain_mistakes_like_sklearn():
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    P = np.array([[0.0, 1.0], [1.0, 0.0]])  # confidently wrong everywhere
    expected = np.mean([log_loss(Y[:, k], P[:, k], labels=[0, 1]) for k in range(2)])
    assert np.isfinite(competition_log_loss(Y, P))
    assert competition_log_loss(Y, P) == pytest.approx(expected, rel=1e-9)


def test_accuracy_f1_auc_against_sklearn():
    Y, P = _data(1, multilabel=False)
    assert top1_accuracy(Y, P) == pytest.approx(np.mean(Y.argmax(1) == P.argmax(1)))
    assert macro_f1(Y, P) == pytest.approx(f1_score(Y.argmax(1), P.argmax(1), average="macro"))
    auc = per_class_auc(Y, P)
    assert auc == pytest.approx([roc_auc_score(Y[:, k], P[:, k]) for k in range(Y.shape[1])])
    Y[:, 2] = 0  # a class nobody has: AUC undefined
    assert np.isnan(per_class_auc(Y, P)[2])
    matrix = confusion(Y, P)
    assert matrix.sum() == len(Y) and np.trace(matrix) == (Y.argmax(1) == P.argmax(1)).sum()


def test_multilabel_f1_thresholds_at_half():
    Y, P = _data(2)
    assert macro_f1(Y, P) == pytest.approx(f1_score(Y, (P >= 0.5).astype(int), average="macro", zero_division=0))


def test_calibration_of_calibrated_probabilities_is_diagonal():
    rng = np.random.default_rng(3)
    P = rng.random((20000, 3))
    Y = (rng.random(P.shape) < P).astype(float)
    curve = calibration(Y, P, n_bins=10)
    assert curve["count"].sum() == P.size
    assert np.abs(curve["observed"] - curve["predicted"]).max() < 0.02
    summary = evaluate(Y, P).summary()
    assert set(summary) == {"log_loss", "accuracy", "macro_f1", "mean_auc"}


def test_blend_weights_favour_the_better_member():
    Y, good = _data(4)
    rng = np.random.default_rng(5)
    bad = rng.random(Y.shape)
    weights = fit_blend_weights([good, bad], Y)
    assert weights.sum() == pytest.approx(1.0) and weights[0] > 0.8
    blended = competition_log_loss(Y, blend([good, bad], weights))
    assert blended <= competition_log_loss(Y, blend([good, bad], [0.5, 0.5]))


def test_fitted_clip_limits_never_hurt_oof_and_fixed_clip_is_fixed():
    Y, P = _data(6)
    P[:10, 1] = 1e-9  # overconfident mistakes the clip should soften
    Y[:10, 1] = 1
    limits = fit_clip_limits(P, Y)
    assert np.all(per_class_log_loss(Y, limits.apply(P)) <= per_class_log_loss(Y, P) + 1e-12)
    assert competition_log_loss(Y, limits.apply(P)) < competition_log_loss(Y, P)
    assert limits.low[1] > 0
    fixed = fixed_clip_limits(Y.shape[1], 1e-4)
    assert fixed.apply(np.array([[0.0] * 5, [1.0] * 5])).tolist() == [[1e-4] * 5, [1 - 1e-4] * 5]
