"""Rare classes at level 2: a calibrated level-1 probability blended with the trees, weight chosen out of fold."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from _stack_helpers import FAST, make_stack_workspace, write_set
from jungle.meta.level2 import Level2Classifier, oof_rare_blend, rare_score_columns
from jungle.meta.metrics import competition_log_loss, per_class_log_loss
from jungle.meta.tuning import fold_pairs

CLASSES = ("blank", "chimpanzee", "duiker", "lion")


def _rare_problem(n: int = 240, positives: int = 5, informative: bool = True, seed: int = 0):
    """Labels with a common class and a rare one (``positives`` videos); column 0 is noise, column 1 the
    rare class's level-1 probability (informative: high for its positives), column 2 the common class's."""
    rng = np.random.default_rng(seed)
    Y = np.zeros((n, 2), dtype=np.float32)
    Y[:, 0] = rng.random(n) < 0.4
    Y[rng.choice(n, positives, replace=False), 1] = 1
    rare_score = np.where(Y[:, 1] == 1, rng.uniform(0.5, 0.95, n), rng.uniform(0.0, 0.3, n)) if informative \
        else rng.uniform(0, 1, n)
    common = np.clip(0.6 * Y[:, 0] + rng.uniform(0, 0.4, n), 0, 1)
    X = np.column_stack([rng.normal(size=n), rare_score, common]).astype(np.float32)
    folds = np.arange(n) % 4
    return X, Y, folds


def _model(**rare):
    return Level2Classifier(label_mode="binary", n_estimators=20, max_depth=2, n_jobs=1, **rare)


def test_rare_score_columns_prefer_the_frame_head_maximum_then_attention():
    columns = ["meta.bytes", "hist_lite0.blank_mean", "hist_lite0.blank_max", "attn_lite0.blank",
               "attn_lite0.lion", "hist_lite0.other_primate_max"]
    assert rare_score_columns(columns, ["blank", "lion", "other (primate)", "duiker"]) == "2,4,5,-1"


def test_an_informative_level1_probability_is_blended_in_for_the_rare_class():
    X, Y, folds = _rare_problem()
    trees_only, _ = oof_rare_blend(_model(), X, Y, fold_pairs(folds), competition_log_loss)
    blended, weight = oof_rare_blend(_model(rare_positives=10, rare_columns="2,1"), X, Y, fold_pairs(folds),
                                     competition_log_loss)
    assert weight > 0
    before, after = per_class_log_loss(Y, trees_only), per_class_log_loss(Y, blended)
    assert after[1] < 0.8 * before[1]                          # the rare class gains
    np.testing.assert_array_equal(blended[:, 0], trees_only[:, 0])   # the common class (many positives) untouched


def test_a_noise_probability_adds_nothing_but_the_prior():
    """A level-1 column unrelated to the rare class: its calibration is flat (about the class prior),
    and the chosen blend is no worse than the trees out of fold."""
    X, Y, folds = _rare_problem(informative=False)
    model = _model(rare_positives=10, rare_columns="2,1")
    trees_only, _ = oof_rare_blend(_model(), X, Y, fold_pairs(folds), competition_log_loss)
    blended, _ = oof_rare_blend(model, X, Y, fold_pairs(folds), competition_log_loss)
    assert competition_log_loss(Y, blended) <= competition_log_loss(Y, trees_only)
    _, calibrated = model.fit(X, Y).predict_parts(X)
    assert calibrated[:, 1].std() < 0.01 and abs(calibrated[:, 1].mean() - Y[:, 1].mean()) < 0.01


def test_each_fold_is_calibrated_without_its_own_labels():
    """Flip a rare positive's label: with the weight fixed, its own OOF probability does not move."""
    X, Y, folds = _rare_problem()
    model = _model(rare_positives=10, rare_columns="2,1", rare_weight=0.7)
    target = int(np.flatnonzero(Y[:, 1])[0])
    flipped = Y.copy()
    flipped[target, 1] = 0
    parts = []
    for labels in (Y, flipped):
        oof = np.zeros_like(labels, dtype=np.float64)
        for train, valid in fold_pairs(folds):
            oof[valid] = model.__class__(**model.get_params()).fit(X[train], labels[train]).predict_proba(X[valid])
        parts.append(oof)
    np.testing.assert_array_equal(parts[0][target], parts[1][target])
    assert not np.array_equal(parts[0][folds != folds[target]], parts[1][folds != folds[target]])


def test_saved_model_predicts_the_blend(tmp_path):
    X, Y, _ = _rare_problem()
    model = _model(rare_positives=10, rare_columns="2,1", rare_weight=0.5).fit(X, Y)
    assert set(model.rare_) == {1}
    model.save(tmp_path / "member-0.json")
    loaded = Level2Classifier.load(tmp_path / "member-0.json", model.get_params(), "binary", 2)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)
    trees, calibrated = model.predict_parts(X)
    assert np.isnan(calibrated[:, 0]).all() and not np.isnan(calibrated[:, 1]).any()
    assert not np.allclose(model.predict_proba(X)[:, 1], trees[:, 1])


@pytest.fixture(scope="module")
def rare_ws(tmp_path_factory):
    """A real stacking workspace where 'lion' has 5 labelled videos and hist_lite0 holds per-class maxima."""
    from jungle.store.db import connect

    sw = make_stack_workspace(tmp_path_factory.mktemp("rare") / "ws", n_labelled=200, classes=CLASSES)
    rng = np.random.default_rng(3)
    Y = sw.Y.copy()
    lions = rng.choice(np.flatnonzero(Y[:, 0] == 1), 5, replace=False)
    Y[:, 3] = 0
    Y[lions] = [0, 0, 0, 1]
    with connect(sw.workspace) as con:
        con.execute("UPDATE labels SET value = 0 WHERE class = 'lion'")
        con.executemany("UPDATE labels SET value = ? WHERE video_id = ? AND class = ?",
                        [[int(Y[i, c]), sw.labelled[i], cls] for i in lions for c, cls in enumerate(CLASSES)])
    n_all = len(sw.labelled) + len(sw.unlabelled)
    truth = np.vstack([Y, np.zeros((len(sw.unlabelled), len(CLASSES)))])
    scores = np.clip(0.55 * truth + rng.uniform(0, 0.4, truth.shape), 0, 1)
    hist = pl.DataFrame({"video_id": sw.labelled + sw.unlabelled,
                         **{f"{c}_max": scores[:, j].astype(np.float32) for j, c in enumerate(CLASSES)},
                         "n_valid": np.full(n_all, 8, dtype=np.int32)})
    write_set(sw.workspace, "hist_lite0", {"bins": 10, "rare-test": True}, hist)
    return sw, Y


@pytest.mark.slow  # a tuned stack (~4 s)
def test_stack_records_the_rare_blend_in_the_manifest(rare_ws):
    from jungle.meta.model_io import load_model
    from jungle.meta.stack import StackConfig, stack
    from jungle.meta.tuning import TuneConfig

    sw, Y = rare_ws
    tune = TuneConfig(trials=1, **FAST)
    on = stack(sw.workspace, StackConfig(members=(("hist_lite0",),), tune=tune, clip="none"))
    off = stack(sw.workspace, StackConfig(members=(("hist_lite0",),), tune=tune, clip="none", rare_positives=0))
    loaded = load_model(sw.workspace, on.model_id)
    params = loaded.manifest.members[0].params
    assert params["rare_positives"] == 10 and params["rare_weight"] > 0
    columns = loaded.manifest.members[0].columns
    assert [columns[int(i)] for i in params["rare_columns"].split(",")] == [f"hist_lite0.{c}_max" for c in CLASSES]
    assert set(loaded.members[0].rare_) == {3}                 # only lion (5 positives) is rare
    assert on.evaluation.class_log_loss[3] < off.evaluation.class_log_loss[3]
    assert on.evaluation.class_auc[3] > off.evaluation.class_auc[3]
