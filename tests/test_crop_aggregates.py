"""Crops and boxes in the aggregate and stack stages: the crop sets are sources like any embedding set
(frame head strictly out of fold on them too), the boxes become detection features, and the recipes
take the crop sets when the workspace has them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _aggregate_helpers import flip_label, make_labelled_workspace
from jungle.features.aggregates.aggregate import AggregateConfig, aggregate, kinds_making
from jungle.features.aggregates.frame_head import FrameHeadConfig
from jungle.features.featurize.crops import boxes_array_specs
from jungle.features.video.boxes import SOURCES
from jungle.meta.recipes import get_recipe, optional_sets, resolve_recipe
from jungle.store import arrays, registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

pytestmark = pytest.mark.slow  # frame heads trained out of fold on real crops: ~4 s a test

HEAD = FrameHeadConfig(hidden=8, epochs=4, batch_size=4, lr=1e-2)
QUICK = dict(frame_head=HEAD, attention={"epochs": 2, "hidden": 8}, videos_per_block=16)


def _add_frame_set(data, name: str, values: np.ndarray, valid: np.ndarray, extra: dict | None = None,
                   config: dict | None = None):
    """A real frame-level set ``name`` over the videos of ``data`` (same rows), as featurize writes it."""
    ws = data.workspace
    n_videos, n_frames = valid.shape
    with connect(ws) as con:
        fs, _ = registry.register(con, name, "frames", config or {"helper": name}, [], encoder="helper-net",
                                  sampling=f"uniform:{n_frames}", dims=values.shape[-1] if values is not None else 0)
        specs = {"valid": arrays.ArraySpec((), "bool", False),
                 "timestamps": arrays.ArraySpec((), "float32", float("nan")),
                 "frame_index": arrays.ArraySpec((), "int32", -1)}
        stored = {"valid": valid, "timestamps": np.where(valid, np.arange(n_frames) * 0.25, np.nan).astype(np.float32),
                  "frame_index": np.where(valid, np.arange(n_frames) * 6, -1).astype(np.int32)}
        if values is not None:
            specs["embedding"] = arrays.ArraySpec((values.shape[-1],), "float16")
            stored["embedding"] = values
        for key, (shape, dtype, fill, value) in (extra or {}).items():
            specs[key] = arrays.ArraySpec(shape, dtype, fill)
            stored[key] = value
        group = arrays.create_group(ws, fs, n_videos, n_frames, specs, block=8)
        arrays.write_rows(group, 0, stored)
        con.executemany("INSERT INTO feature_rows (name, version, video_id, row, status, error, n_valid) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [[fs.name, fs.version, v, i, "done" if data.done[i] else "error", None, int(valid[i].sum())]
                         for i, v in enumerate(data.video_ids)])
        return registry.mark_complete(con, fs, n_videos)


def _crops_workspace(tmp_path):
    """lite0 (whole frames) and crops_lite0: the crops carry the class far more clearly than the frames."""
    torch.set_num_threads(1)
    ws = Workspace.resolve(tmp_path / "ws")
    data = make_labelled_workspace(ws, n_videos=40, n_frames=8, dims=16, block=8, signal=0.3)
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 3, (len(data.classes), 16)).astype(np.float32)
    crops = (np.maximum(data.labels, 0) @ centres)[:, None, :] + rng.normal(0, 1, (40, 4, 16))
    valid = np.ones((40, 4), bool)
    valid[:, 3] = False
    valid[~data.done] = False
    _add_frame_set(data, "crops_lite0", crops.astype(np.float16), valid)
    return ws, data


@pytest.mark.parametrize("crops", ["own", "bag"])
def test_crop_sets_are_aggregated_beside_their_source_and_stay_out_of_fold(tmp_path, crops):
    """``own``: the crops get a head of their own; ``bag``: the frames' head learns from frames and crops
    together and predicts both. Either way a flipped label never reaches its own video's predictions."""
    ws, data = _crops_workspace(tmp_path)
    quick = {**QUICK, "frame_head": HEAD.model_copy(update={"crops": crops})}
    made = aggregate(ws, AggregateConfig(kinds=("frame-head", "stats", "minmax"), **quick))
    names = [fs.name for fs in made]
    assert sorted(names) == ["frameprobs_crops_lite0", "frameprobs_lite0", "hist_crops_lite0", "hist_lite0",
                             "minmax_crops_lite0", "minmax_lite0", "minmax_stages_lite0"]
    probs = {fs.name: fs for fs in made if fs.name.startswith("frameprobs_")}
    assert [i["name"] for i in probs["frameprobs_crops_lite0"].inputs] == \
        (["crops_lite0", "labels"] if crops == "own" else ["lite0", "crops_lite0", "labels"])
    before = {name: arrays.open_group(ws, fs)["probs"][:] for name, fs in probs.items()}
    assert before["frameprobs_crops_lite0"].shape == (40, 4, len(data.classes))
    target = 5
    flip_label(data, target)
    again = aggregate(ws, AggregateConfig(kinds=("frame-head",), **quick))
    for name, fs in probs.items():
        after_fs = next(made for made in again if made.name == name)
        assert after_fs.version == fs.version + 1
        after = arrays.open_group(ws, after_fs)["probs"][:]
        np.testing.assert_array_equal(after[target], before[name][target])      # its own label never reached it
        same_fold = [i for i in np.flatnonzero(data.done) if data.folds[i] == data.folds[target]]
        for i in same_fold:
            np.testing.assert_array_equal(after[i], before[name][i])
        other = [i for i in np.flatnonzero(data.done) if data.folds[i] not in (-1, data.folds[target])]
        assert not np.array_equal(after[other], before[name][other])
    # without crops, only the whole frames' sets
    plain = aggregate(ws, AggregateConfig(kinds=("minmax",), crops=False, **QUICK))
    assert [fs.name for fs in plain] == ["minmax_lite0", "minmax_stages_lite0"]


def test_boxes_become_detection_features(tmp_path):
    ws = Workspace.resolve(tmp_path / "ws")
    data = make_labelled_workspace(ws, n_videos=12, n_frames=8, dims=4, block=8, n_unlabelled=2)
    k, n = 2, 6
    source = np.zeros((12, n, k), np.int8)
    score = np.zeros((12, n, k), np.float32)
    box = np.full((12, n, k, 4), np.nan, np.float32)
    area = np.zeros((12, n), np.float32)
    source[0, 1:4, 0], score[0, 1:4, 0], box[0, 1:4, 0] = SOURCES["detector"], 0.8, (0.1, 0.1, 0.5, 0.4)
    source[0, 1, 1], score[0, 1, 1] = SOURCES["detector"], 0.3
    source[1, :, 0], score[1, :, 0], box[1, :, 0], area[1] = SOURCES["motion"], 0.02, (0, 0, 0.2, 0.1), 0.02
    specs = boxes_array_specs(k)
    extra = {"box": (specs["box"][0], "float32", float("nan"), box),
             "box_score": (specs["box_score"][0], "float32", 0.0, score),
             "box_source": (specs["box_source"][0], "int8", 0, source),
             "motion_area": ((), "float32", 0.0, area), "detected": ((), "bool", False, np.ones((12, n), bool))}
    _add_frame_set(data, "boxes", None, np.ones((12, n), bool) & data.done[:, None], extra)
    made = aggregate(ws, AggregateConfig(kinds=("detector",)))
    assert [fs.name for fs in made] == ["det_boxes"]
    table = registry.read_video_table(ws, made[0]).to_pandas().set_index("video_id")
    first, second = table.loc[data.video_ids[0]], table.loc[data.video_ids[1]]
    assert first["det_max"] == np.float32(0.8) and first["det_n_over_50"] == 3 and first["det_longest_run"] == 3
    assert first["det_area_max"] == np.float32(0.2) and first["det_boxes_max"] == 2
    assert first["det_first_s"] == np.float32(0.25) and first["motion_mean"] == 0
    assert second["det_max"] == 0 and second["motion_mean"] == pytest.approx(0.02) and second["motion_frac"] == 1
    assert kinds_making("det_boxes") == ("boxes", ("detector",))


def test_recipes_take_the_crop_sets_when_the_workspace_has_them(tmp_path):
    ws, _ = _crops_workspace(tmp_path)
    first = get_recipe("first-place")
    assert optional_sets(first) == ["hist_crops_lite0"]
    assert "det_boxes" in optional_sets(get_recipe("all")) and "attn_crops_lite0" in optional_sets(get_recipe("all"))
    aggregate(ws, AggregateConfig(kinds=("meta", "frame-head", "stats"), crops=False, **QUICK))
    members = resolve_recipe(ws, first)
    assert [[ref.name for ref in member] for member in members] == [["hist_lite0", "meta"]]
    aggregate(ws, AggregateConfig(kinds=("frame-head", "stats"), **QUICK))
    members = resolve_recipe(ws, first)
    assert [[ref.name for ref in member] for member in members] == [["hist_lite0", "meta", "hist_crops_lite0"]]
