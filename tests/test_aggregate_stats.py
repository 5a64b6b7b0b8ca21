"""Every frame statistic against a plain NumPy computation on the same arrays; padded frames excluded."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from _aggregate_helpers import CLASSES, GARBAGE, fill_invalid, make_labelled_workspace
from jungle.features.aggregates.aggregate import AggregateConfig, aggregate
from jungle.features.aggregates.frame_head import FrameHeadConfig
from jungle.features.aggregates.frame_stats import (class_slug, frame_moments, pool_columns, pool_embeddings,
                                         prob_stat_columns, prob_stats)
from jungle.features.aggregates.inputs import iter_frame_blocks, load_frame_rows
from jungle.store import arrays, registry
from jungle.store.db import connect

TINY_HEAD = FrameHeadConfig(hidden=8, epochs=2, batch_size=64)


def _numpy_prob_stats(probs, valid, bins=10):
    """The reference: per video and class, over valid frames only, with numpy's own functions."""
    rows = []
    for b in range(len(probs)):
        row = []
        for c in range(probs.shape[2]):
            p = probs[b, valid[b], c].astype(np.float64)
            hist = np.histogram(p, bins=bins, range=(0.0, 1.0))[0] / len(p)
            row += [p.mean(), np.median(p), p.min(), p.max(), p.std(), np.percentile(p, 10), np.percentile(p, 90),
                    *hist]
        rows.append(row)
    return np.array(rows)


def _numpy_pool(values, valid):
    rows = []
    for b in range(len(values)):
        x = values[b, valid[b]].astype(np.float32)
        rows.append(np.concatenate([x.mean(0), x.max(0), x.min(0), x.max(0) - x.min(0)]))
    return np.array(rows)


def _with_garbage(shape_values, valid, rng):
    values = shape_values.copy()
    values[~valid] = rng.choice(np.array(GARBAGE, np.float32), size=values[~valid].shape)
    return values


def test_prob_stats_match_numpy_and_ignore_invalid_frames():
    rng = np.random.default_rng(1)
    probs = rng.random((9, 7, 3)).astype(np.float16)
    probs[0, :, 0] = [0.0, 0.5, 1.0, 0.5, 0.0, 1.0, 0.25]           # values on bin edges
    valid = rng.random((9, 7)) < 0.7
    valid[:, 0] = True
    valid[1] = True
    valid[2, 1:] = False                                              # a single valid frame: std 0
    garbage = _with_garbage(probs, valid, rng)
    got = prob_stats(garbage, valid)
    assert got.shape == (9, 3 * 17) and got.dtype == np.float32
    np.testing.assert_allclose(got, _numpy_prob_stats(probs, valid), rtol=1e-5, atol=1e-6)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(prob_stats(np.where(valid[..., None], probs, 0.5), valid), got)
    assert prob_stat_columns(["other (primate)"], bins=2) == [
        "other_primate_mean", "other_primate_median", "other_primate_min", "other_primate_max", "other_primate_std",
        "other_primate_p10", "other_primate_p90", "other_primate_h0", "other_primate_h1"]


def test_prob_stats_of_a_video_without_valid_frames_is_nan_and_other_percentiles_work():
    probs = np.full((2, 4, 1), 0.25, np.float16)
    valid = np.array([[True, True, False, False], [False] * 4])
    got = prob_stats(probs, valid, stats=("p25", "max"), bins=4)
    np.testing.assert_allclose(got[0], [0.25, 0.25, 0, 1, 0, 0])
    assert np.isnan(got[1]).all()
    with pytest.raises(ValueError, match="unknown frame statistic 'iqr'"):
        prob_stats(probs, valid, stats=("iqr",))


def test_pool_embeddings_match_numpy_and_ignore_invalid_frames():
    rng = np.random.default_rng(2)
    values = rng.normal(0, 3, (6, 5, 11)).astype(np.float16)
    valid = rng.random((6, 5)) < 0.6
    valid[:, 2] = True
    valid[5] = False
    garbage = _with_garbage(values, valid, rng)
    got = pool_embeddings(garbage, valid)
    assert got.shape == (6, 44)
    np.testing.assert_allclose(got[:5], _numpy_pool(values[:5], valid[:5]), rtol=1e-6, atol=1e-6)
    assert np.isnan(got[5]).all()
    only_max = pool_embeddings(garbage, valid, ("max",))
    np.testing.assert_array_equal(only_max, got[:, 11:22])
    assert pool_columns(3, ("max",)) == ["max_0000", "max_0001", "max_0002"]
    assert pool_columns(3, ("min",), stage_dims=[1, 2]) == ["min_s1_0000", "min_s2_0000", "min_s2_0001"]


def test_frame_moments_match_numpy_over_valid_frames():
    rng = np.random.default_rng(3)
    values = rng.normal(2, 5, (10, 4, 3)).astype(np.float16)
    valid = rng.random((10, 4)) < 0.5
    valid[0] = True
    garbage = _with_garbage(values, valid, rng)
    mean, std = frame_moments([(garbage[:5], valid[:5]), (garbage[5:], valid[5:])])
    frames = values[valid].astype(np.float64)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, frames.std(0), rtol=1e-4)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(tmp_path_factory.mktemp("stats") / "ws")
    data = make_labelled_workspace(ws, n_videos=36, n_frames=6, dims=10, stage_dims=(3, 5), block=8)
    config = AggregateConfig(kinds=("stats", "minmax"), frame_head=TINY_HEAD)
    results = aggregate(ws, config)
    return ws, data, {fs.name: fs for fs in results}


def test_hist_table_equals_numpy_over_the_stored_frame_probabilities(built):
    ws, data, sets = built
    group = arrays.open_group(ws, sets["frameprobs_lite0"])
    probs, valid = group["probs"][:], group["valid"][:]
    np.testing.assert_array_equal(valid[data.done], data.valid[data.done])
    assert not probs[~valid].any()                                   # nothing written in padded slots
    table = registry.read_video_table(ws, sets["hist_lite0"]).sort("video_id")
    ids = [data.video_ids[i] for i in np.flatnonzero(data.done)]
    assert table["video_id"].to_list() == sorted(ids)
    order = [data.video_ids.index(v) for v in table["video_id"]]
    expected = _numpy_prob_stats(probs[order], valid[order])
    columns = prob_stat_columns(CLASSES)
    assert table.columns == ["video_id", "n_valid", *columns]
    np.testing.assert_allclose(table.select(columns).to_numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table["n_valid"].to_numpy(), data.valid[order].sum(1))
    assert sets["hist_lite0"].dims == 1 + len(CLASSES) * 17 and class_slug(CLASSES[2]) == "other_primate"


def test_minmax_tables_equal_numpy_over_valid_frames(built):
    ws, data, sets = built
    done = np.flatnonzero(data.done)
    for name, values, stage_dims in (("minmax_lite0", data.embedding, None),
                                     ("minmax_stages_lite0", data.stages, [3, 5])):
        table = registry.read_video_table(ws, sets[name])
        order = [data.video_ids.index(v) for v in table["video_id"]]
        assert sorted(order) == list(done)
        columns = pool_columns(values.shape[-1], stage_dims=stage_dims)
        assert table.columns == ["video_id", "n_valid", *columns]
        np.testing.assert_allclose(table.select(columns).to_numpy(),
                                   _numpy_pool(values[order], data.valid[order]), rtol=1e-6, atol=1e-6)


def test_other_garbage_in_padded_slots_gives_identical_tables(built, tmp_path):
    from jungle.features.aggregates.aggregate import write_pooled
    from jungle.features.aggregates.tables import VideoTableWriter

    ws, data, sets = built
    with connect(ws) as con:
        source = load_frame_rows(con, data.fs)
    columns = ["n_valid", *pool_columns(10)]
    before, after = tmp_path / "before.parquet", tmp_path / "after.parquet"
    with VideoTableWriter(before, columns) as writer:
        write_pooled(ws, source, writer, "embedding", ("mean", "max", "min", "range"), videos_per_block=8)
    fill_invalid(data, 7.0)
    try:
        with VideoTableWriter(after, columns) as writer:
            write_pooled(ws, source, writer, "embedding", ("mean", "max", "min", "range"), videos_per_block=16)
    finally:
        fill_invalid(data, None)
    assert pl.read_parquet(before).equals(pl.read_parquet(after))
    assert pl.read_parquet(before).equals(registry.read_video_table(ws, sets["minmax_lite0"]))


def test_blocks_of_several_sources_are_aligned_by_video(built):
    ws, data, _ = built
    rng = np.random.default_rng(5)
    permutation = rng.permutation(len(data.video_ids))                # lite1 stores the videos in another order
    other = rng.normal(size=(len(data.video_ids), 6, 2)).astype(np.float16)
    with connect(ws) as con:
        fs, _ = registry.register(con, "lite1", "frames", {"helper": "permuted"}, [])
        group = arrays.create_group(ws, fs, len(permutation), 6,
                                    {"embedding": arrays.ArraySpec((2,)), "valid": arrays.ArraySpec((), "bool", False)},
                                    block=4)
        valid = data.valid.copy()
        valid[:, 5] = False                                           # valid only where both are
        arrays.write_rows(group, 0, {"embedding": other[permutation], "valid": valid[permutation]})
        con.executemany("INSERT INTO feature_rows VALUES (?, ?, ?, ?, 'done', NULL, 6)",
                        [[fs.name, fs.version, data.video_ids[v], row] for row, v in enumerate(permutation)])
        sources = [load_frame_rows(con, data.fs), load_frame_rows(con, fs)]
    blocks = list(iter_frame_blocks(ws, sources, videos_per_block=8, extras=("timestamps",)))
    seen = np.concatenate([b.video_ids for b in blocks])
    assert sorted(seen) == sorted(data.video_ids[i] for i in np.flatnonzero(data.done))
    for block in blocks:
        index = [data.video_ids.index(v) for v in block.video_ids]
        np.testing.assert_array_equal(block.values[..., :10], data.embedding[index])
        np.testing.assert_array_equal(block.values[..., 10:], other[index])
        np.testing.assert_array_equal(block.valid, valid[index])
        assert block.extras["timestamps"].shape == (len(index), 6)
