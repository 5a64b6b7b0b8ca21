"""The blank filter's arithmetic and the zero-shot re-calibration, on probability arrays whose answers
are known by construction (the end-to-end runs on real clips are in tests/test_zeroshot.py)."""

from __future__ import annotations

import numpy as np
import pytest

from jungle.errors import InputError
from jungle.meta.zeroshot.blank_filter import (NoBlankClass, animal_probability, filter_curve, fit_filter,
                                               largest_threshold, rule_threshold)
from jungle.meta.zeroshot.calibration import RecalibrationConfig, fit_correction, recalibrate_out_of_fold

from _errors import says


def _clips(n_animal=200, n_blank=300, seed=0):
    """P(animal) of clips: animals around 0.7, blanks around 0.3, overlapping."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.beta(5, 2, n_animal), rng.beta(2, 5, n_blank)])
    return p, np.concatenate([np.ones(n_animal, bool), np.zeros(n_blank, bool)])


def test_the_curve_runs_from_skipping_nothing_to_skipping_everything():
    p, animal = _clips()
    curve = filter_curve(p, animal)
    assert curve.animal_loss[0] == 0 and curve.blanks_removed[0] == 0
    assert curve.animal_loss[-1] == 1 and curve.blanks_removed[-1] == 1
    assert (np.diff(curve.animal_loss) >= 0).all() and (np.diff(curve.blanks_removed) >= 0).all()
    t = largest_threshold(p, animal, 0.05)
    lost, removed = (p[animal] < t).mean(), (p[~animal] < t).mean()
    assert lost <= 0.05 and (p[animal] < np.nextafter(t, 1)).mean() > 0.05   # the largest such threshold
    assert curve.at_loss(0.05) == pytest.approx(removed)


def test_a_threshold_fitted_on_labels_keeps_its_promise_out_of_fold():
    p, animal = _clips(seed=1)
    chosen = fit_filter(p, animal, 0.05)
    assert chosen.basis == "labels" and chosen.labelled_animals == 200 and chosen.labelled_blanks == 300
    assert chosen.measured_loss <= 0.08          # out of fold: near the target, not exactly on it
    fresh, fresh_animal = _clips(2000, 3000, seed=2)   # new clips from the same source
    assert (fresh[fresh_animal] < chosen.threshold).mean() == pytest.approx(chosen.measured_loss, abs=0.03)
    assert (fresh[~fresh_animal] < chosen.threshold).mean() == pytest.approx(chosen.blanks_removed, abs=0.06)
    assert "measured out of fold" in chosen.describe()


def test_too_few_labels_to_fit_a_threshold():
    with pytest.raises(InputError) as caught:
        fit_filter(np.array([0.1, 0.9, 0.8]), np.array([False, True, True]), 0.05)
    assert says(str(caught.value), "4 labelled animal", "4 labelled blank", "have 2 and 1")


def test_without_labels_the_models_own_probabilities_bound_the_expected_loss():
    p, _ = _clips()
    threshold, expected = rule_threshold(p, 0.05)
    assert expected <= 0.05 and p[p < threshold].sum() / p.sum() == pytest.approx(expected)
    assert p[p <= threshold].sum() / p.sum() > 0.05 - 1e-9 or threshold > p.max()   # the largest such threshold
    assert rule_threshold(np.array([]), 0.05) == (0.0, 0.0)


def test_a_model_without_a_blank_class_has_no_filter():
    assert animal_probability(["blank", "gorilla"], np.array([[0.2, 0.8]])) == pytest.approx([0.8])
    with pytest.raises(NoBlankClass) as caught:
        animal_probability(["gorilla", "chimpanzee"], np.array([[0.2, 0.8]]))
    assert says(str(caught.value), "'blank'", "gorilla")


def test_recalibration_stays_near_the_rule_with_few_labels_and_follows_many():
    rng = np.random.default_rng(3)
    truth = rng.random((4000, 2))
    Y = (rng.random((4000, 2)) < truth).astype(int)
    cubed = truth[:, 1] ** 3 / (truth[:, 1] ** 3 + (1 - truth[:, 1]) ** 3)   # class 1 overconfident: 3 x its logit
    P = np.column_stack([truth[:, 0], cubed])
    few = fit_correction(P[:6], Y[:6], strength=2.0)
    assert abs(few.slope[0] - 1) < 0.5 and abs(few.intercept[0]) < 0.5
    many = fit_correction(P, Y, strength=2.0)
    assert many.slope[0] == pytest.approx(1.0, abs=0.15) and many.slope[1] == pytest.approx(1 / 3, abs=0.1)
    logloss = lambda Q: -np.mean(Y * np.log(Q) + (1 - Y) * np.log(1 - Q))  # noqa: E731
    assert logloss(many.apply(P)) < logloss(np.clip(P, 1e-6, 1 - 1e-6))


def test_labelled_clips_get_out_of_fold_probabilities():
    rng = np.random.default_rng(4)
    P = rng.random((300, 3)) * 0.9 + 0.05
    Y = (rng.random((300, 3)) < P).astype(int)
    labelled = np.arange(300) < 200
    config = RecalibrationConfig(folds=5, seed=0)
    out, correction, fold = recalibrate_out_of_fold(P, Y, labelled, config)
    flipped = Y.copy()
    flipped[7] = 1 - flipped[7]                              # one labelled clip's labels changed
    out2, _, _ = recalibrate_out_of_fold(P, flipped, labelled, config)
    np.testing.assert_array_equal(out[7], out2[7])           # its own probabilities did not see them
    np.testing.assert_allclose(out[200:], correction.apply(P[200:]))
    assert sorted(set(fold.tolist())) == [0, 1, 2, 3, 4]


def test_a_stacked_models_filter_is_fitted_on_its_out_of_fold_probabilities(stacked, tmp_path):
    """Any model with a blank class: the threshold comes from its labelled clips' out-of-fold
    probabilities, the cost is measured, and the skip list and the table say which clips to skip."""
    import shutil

    from typer.testing import CliRunner

    from jungle.cli import app
    from jungle.store.db import connect
    from jungle.store.workspace import Workspace

    sw, result = stacked
    ws = Workspace.resolve(tmp_path / "ws")
    shutil.copytree(sw.workspace.root, ws.root)
    out = tmp_path / "skip.csv"
    run = CliRunner().invoke(app, ["predict", "--model", result.model_id, "--max-animal-loss", "0.1",
                                   "--skip-list", str(out), "-w", str(ws.root)])
    assert run.exit_code == 0, run.output
    assert "measured out of fold on" in run.output and "not yet measured" not in run.output
    with connect(ws, read_only=True) as con:
        rows = con.execute("SELECT p_animal, skip, threshold, basis FROM blank_filter WHERE model_id = ?",
                           [result.model_id]).fetchall()
    assert len(rows) == 30 and {r[3] for r in rows} == {"labels"}          # the 30 unlabelled clips predicted
    assert all(skip == (p < threshold) for p, skip, threshold, _ in rows)
    lines = out.read_text().splitlines()
    assert len(lines) == 31 and sum(line.endswith(",true") for line in lines) == sum(r[1] for r in rows)
    bad = CliRunner().invoke(app, ["predict", "--max-animal-loss", "1.5", "-w", str(ws.root)])
    assert bad.exit_code == 1 and "between 0 and 1" in bad.output
    assert "Written" not in bad.output                                  # refused before predicting
    alone = CliRunner().invoke(app, ["predict", "--skip-list", str(out), "-w", str(ws.root)])
    assert alone.exit_code == 1 and "--skip-list needs --max-animal-loss" in alone.output
    assert "Written" not in alone.output
