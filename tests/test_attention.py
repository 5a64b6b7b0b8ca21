"""Attention pooling (and its GRU variant): out of fold, blind to padded frames, learns the signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _aggregate_helpers import CLASSES, fill_invalid, flip_label, make_labelled_workspace
from jungle.features.aggregates.aggregate import AggregateConfig, aggregate
from jungle.features.aggregates.attention import AttentionConfig, fit_attention, meta_inputs, predict_attention
from jungle.features.aggregates.inputs import load_frame_rows
from jungle.features.aggregates.oof import load_fold_plan
from jungle.store import registry
from jungle.store.db import connect

ATTENTION = AttentionConfig(hidden=8, epochs=8, batch_size=16, lr=2e-2, with_meta=False)


@pytest.fixture(scope="module")
def attention_ws(tmp_path_factory):
    from jungle.store.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.resolve(tmp_path_factory.mktemp("attention") / "ws")
    data = make_labelled_workspace(ws, n_videos=40, n_frames=8, dims=16, block=8, seed=3)
    return ws, data


def _run(ws, data, config=ATTENTION, meta=None):
    with connect(ws) as con:
        source = load_frame_rows(con, data.fs)
        plan = load_fold_plan(con)
    ensemble = fit_attention(ws, [source], plan, config, meta)
    out = {}
    for ids, probs, vectors, weights in predict_attention(ws, [source], ensemble, plan, config, meta):
        for i, video_id in enumerate(ids):
            out[video_id] = (probs[i], vectors[i], weights[i])
    return out


def _auc(out, data, indices):
    from sklearn.metrics import roc_auc_score

    scores = np.array([out[data.video_ids[i]][0] for i in indices])
    labels = data.labels[indices]
    return np.mean([roc_auc_score(labels[:, c], scores[:, c]) for c in range(len(CLASSES))
                    if 0 < labels[:, c].sum() < len(labels)])


def test_weights_ignore_padded_frames_and_the_vector_is_their_weighted_mean(attention_ws):
    ws, data = attention_ws
    out = _run(ws, data)
    assert set(out) == {data.video_ids[i] for i in np.flatnonzero(data.done)}
    for i in np.flatnonzero(data.done):
        probs, vector, weights = out[data.video_ids[i]]
        valid = data.valid[i]
        assert probs.shape == (len(CLASSES),) and ((probs > 0) & (probs < 1)).all()
        assert (weights[~valid] == 0).all() and (weights[valid] > 0).all()
        assert weights.sum() == pytest.approx(1.0, abs=1e-5)
        expected = (weights[valid, None] * data.embedding[i, valid].astype(np.float32)).sum(0)
        np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-4)
    labelled = np.flatnonzero(data.labelled & data.done)
    assert _auc(out, data, labelled) > 0.8                            # out of fold, so this is honest


def test_garbage_in_padded_frames_changes_nothing(attention_ws):
    ws, data = attention_ws
    first = _run(ws, data)
    fill_invalid(data, -2.5)
    try:
        second = _run(ws, data)
    finally:
        fill_invalid(data, None)
    for video_id, (probs, vector, weights) in first.items():
        np.testing.assert_array_equal(second[video_id][0], probs)
        np.testing.assert_array_equal(second[video_id][1], vector)


@pytest.mark.parametrize("recurrent", [False, True], ids=["attention", "gru"])
def test_a_video_label_never_reaches_its_own_prediction(tmp_path, recurrent):
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(tmp_path / "ws")
    data = make_labelled_workspace(ws, n_videos=32, n_frames=6, dims=8, block=8, seed=4, stage_dims=None)
    config = ATTENTION.model_copy(update={"recurrent": recurrent, "epochs": 4})
    before = _run(ws, data, config)
    target = 6                                                        # fold 2
    flip_label(data, target)
    after = _run(ws, data, config)
    fold = [data.video_ids[i] for i in np.flatnonzero(data.done) if data.folds[i] == data.folds[target]]
    for video_id in fold:
        for got, expected in zip(after[video_id], before[video_id]):
            np.testing.assert_array_equal(got, expected)
    others = [data.video_ids[i] for i in np.flatnonzero(data.done) if data.folds[i] != data.folds[target]]
    assert any(not np.array_equal(after[v][0], before[v][0]) for v in others)


def test_gru_variant_learns(attention_ws):
    ws, data = attention_ws
    out = _run(ws, data, ATTENTION.model_copy(update={"recurrent": True}))
    assert _auc(out, data, np.flatnonzero(data.labelled & data.done)) > 0.75


def test_metadata_inputs_are_standardised_and_missing_values_zero():
    import polars as pl

    table = pl.DataFrame({"video_id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "y": [None, 4.0, 8.0],
                          "z": [None, None, None], "name": ["p", "q", "r"]}, schema_overrides={"z": pl.Float64})
    got = meta_inputs(table)
    np.testing.assert_allclose(got["a"], [-np.sqrt(1.5), 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(got["c"], [np.sqrt(1.5), 1.0, 0.0], rtol=1e-6)


def test_aggregate_materialises_attention_sets_with_metadata(attention_ws):
    ws, data = attention_ws
    config = AggregateConfig(kinds=("attention",), attention=ATTENTION.model_copy(update={"with_meta": True}))
    results = aggregate(ws, config)
    names = [fs.name for fs in results]
    assert names == ["meta", "attn_lite0", "attnvec_lite0"]            # meta is built as a dependency
    sets = {fs.name: fs for fs in results}
    probs = registry.read_video_table(ws, sets["attn_lite0"])
    vectors = registry.read_video_table(ws, sets["attnvec_lite0"])
    assert probs.columns == ["video_id", "blank", "chimpanzee", "other_primate", "duiker"]
    assert vectors.columns == ["video_id", *[f"v{j:04d}" for j in range(16)]]
    assert probs.height == vectors.height == int(data.done.sum())
    assert {"name": "meta", "version": 1} in sets["attn_lite0"].inputs
    assert sets["attn_lite0"].fold_scheme == "default" and sets["attnvec_lite0"].config["with_meta"] is True
