"""The frame-level classifier: out-of-fold guarantee (every training mode, pseudo-labels too),
multiple-instance training, predictions written as a frame-level set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from _aggregate_helpers import CLASSES, fill_invalid, flip_label, make_labelled_workspace
from jungle.features.aggregates.aggregate import AggregateConfig, aggregate
from jungle.features.aggregates.frame_head import (FrameHeadConfig, fit_frame_head, predict_frames, predict_videos,
                                                   pseudo_targets)
from jungle.features.aggregates.inputs import iter_frame_blocks, load_frame_rows
from jungle.features.aggregates.oof import Batch, FoldEnsemble, load_fold_plan, training_mask
from jungle.store import arrays, registry
from jungle.store.db import connect

HEAD = FrameHeadConfig(hidden=8, epochs=6, batch_size=4, lr=1e-2)


def _probs(ws, name="frameprobs_lite0", version=None):
    with connect(ws) as con:
        fs = registry.get(con, name, version)
    group = arrays.open_group(ws, fs)
    return fs, group["probs"][:].astype(np.float32), group["valid"][:]


def _auc(scores, labels):
    from sklearn.metrics import roc_auc_score

    return np.mean([roc_auc_score(labels[:, c], scores[:, c]) for c in range(labels.shape[1])
                    if 0 < labels[:, c].sum() < len(labels)])


@pytest.fixture(scope="module")
def head_ws(tmp_path_factory):
    from jungle.store.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.resolve(tmp_path_factory.mktemp("head") / "ws")
    data = make_labelled_workspace(ws, n_videos=40, n_frames=8, dims=16, block=8)
    aggregate(ws, AggregateConfig(kinds=("frame-head",), frame_head=HEAD))
    return ws, data


def test_training_mask_excludes_the_fold():
    folds = np.array([0, 1, 2, -1, 1, 0])
    assert training_mask(folds, 1, 3).tolist() == [True, False, True, False, False, True]
    assert training_mask(folds, 3, 3).tolist() == [True, True, True, False, True, True]


class _Recorder(nn.Module):
    """A real linear model that also records which rows (column 0 holds the row's video) it trained on."""

    def __init__(self, prior):
        super().__init__()
        self.linear = nn.Linear(2, len(prior))
        self.seen: set[int] = set()

    def forward(self, x):
        if self.training:
            self.seen.update(int(v) for v in x[:, 0])
        return self.linear(x)


def test_each_fold_model_trains_only_on_the_other_folds():
    folds = np.array([0, 0, 1, 1, 2, 2, -1, -1])
    targets = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1, 0, 1]]
    x = torch.tensor([[float(i), 1.0] for i in range(8)])

    def batches(epoch):
        for pick in (np.arange(0, 5), np.arange(5, 8)):
            yield Batch((x[pick],), targets[pick], folds[pick])

    ensemble = FoldEnsemble(_Recorder, k=3, epochs=2, seed=0).fit(batches, folds, targets)
    assert [sorted(m.seen) for m in ensemble.models_] == [[2, 3, 4, 5], [0, 1, 4, 5], [0, 1, 2, 3],
                                                         [0, 1, 2, 3, 4, 5]]


def test_frame_probabilities_are_written_row_aligned_with_lineage(head_ws):
    ws, data = head_ws
    fs, probs, valid = _probs(ws)
    assert fs.kind == "frames" and fs.fold_scheme == "default" and fs.dims == len(CLASSES)
    assert probs.shape == (40, 8, len(CLASSES))
    done = np.flatnonzero(data.done)
    np.testing.assert_array_equal(valid[done], data.valid[done])
    assert not probs[~valid].any() and ((probs[valid] > 0) & (probs[valid] < 1)).all()
    with connect(ws) as con:
        rows = dict(con.execute("SELECT video_id, row FROM feature_rows WHERE name = ? AND version = ? "
                                "AND status = 'done'", [fs.name, fs.version]).fetchall())
    assert rows == {data.video_ids[i]: int(i) for i in done}
    group = arrays.open_group(ws, fs)
    np.testing.assert_array_equal(group["timestamps"][done][data.valid[done]], np.tile(np.arange(8) * 0.5, 40)
                                  .reshape(40, 8)[done][data.valid[done]])
    source, labels = fs.inputs
    assert (source["name"], source["version"], source["rows"]) == ("lite0", 1, len(done))
    assert labels["name"] == "labels" and labels["fold_scheme"] == "default" and len(labels["folds"]) == 32
    assert fs.config["hidden"] == 8 and fs.config["unlabelled"] == "full" and fs.config["training"] == "mil-attention"


def test_out_of_fold_frame_predictions_carry_the_signal(head_ws):
    ws, data = head_ws
    _, probs, valid = _probs(ws)
    labelled = np.flatnonzero(data.labelled & data.done)
    video_scores = np.array([probs[i][valid[i]].mean(0) for i in labelled])
    assert _auc(video_scores, data.labels[labelled]) > 0.8


def _assert_out_of_fold(ws, data, head):
    """Flip one video's label: its OOF frame predictions stay bit-identical; others' change."""
    before_fs, before, _ = _probs(ws)
    target = 5                                                        # fold 1
    flip_label(data, target)
    results = aggregate(ws, AggregateConfig(kinds=("frame-head",), frame_head=head))
    after_fs = results[0]
    assert after_fs.ref in results.computed and after_fs.version == before_fs.version + 1   # changed input
    _, after, _ = _probs(ws, version=after_fs.version)
    np.testing.assert_array_equal(after[target], before[target])
    same_fold = [i for i in np.flatnonzero(data.done) if data.folds[i] == data.folds[target]]
    for i in same_fold:
        np.testing.assert_array_equal(after[i], before[i])            # fold 1's model never saw video 5
    other_folds = [i for i in np.flatnonzero(data.done) if data.folds[i] not in (-1, data.folds[target])]
    assert not np.array_equal(after[other_folds], before[other_folds])
    unlabelled = [i for i in np.flatnonzero(data.done) if data.folds[i] == -1]
    assert not np.array_equal(after[unlabelled], before[unlabelled])  # the full model did see it


def test_a_video_label_never_reaches_its_own_prediction(head_ws):
    ws, data = head_ws
    _assert_out_of_fold(ws, data, HEAD)


@pytest.mark.slow  # a frame head per training mode (~10 s)
@pytest.mark.parametrize("training,pseudo", [("inherit", None), ("mil-lse", None), ("mil-noisy-or", 0.6)])
def test_out_of_fold_holds_for_every_training_and_pseudo_labels(tmp_path, training, pseudo):
    from jungle.store.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.resolve(tmp_path / "ws")
    data = make_labelled_workspace(ws, n_videos=40, n_frames=8, dims=16, block=8)
    head = HEAD.model_copy(update={"training": training, "pseudo_threshold": pseudo})
    first = aggregate(ws, AggregateConfig(kinds=("frame-head",), frame_head=head))[0]
    assert first.config["training"] == training and first.config["pseudo_threshold"] == pseudo
    if pseudo is not None:                                          # pseudo-labels were really used
        with connect(ws) as con:
            source, plan = load_frame_rows(con, data.fs), load_fold_plan(con)
        ensemble = fit_frame_head(ws, source, plan, head.model_copy(update={"pseudo_threshold": None}))
        unlabelled = [v for v in source.video_ids if v not in plan.folds]
        block = next(iter_frame_blocks(ws, [source], video_ids=unlabelled))
        keep = block.valid.any(axis=1)
        found = pseudo_targets(ensemble, [(block.video_ids[keep], block.values[keep], block.valid[keep])], pseudo)
        assert len(found) >= 3
        for targets in found.values():                              # per copy: 0/1 targets or NaN (unused)
            assert targets.shape == (plan.k + 1, len(CLASSES))
            assert all(np.isnan(row).all() or set(np.unique(row)) <= {0.0, 1.0} for row in targets)
    _assert_out_of_fold(ws, data, head)


def _animal_in_few_frames(data, visible: int = 2, seed: int = 1) -> np.ndarray:
    """Rewrite the stored embeddings: every frame is background (the blank centre) except ``visible``
    frames of each animal video, which show its class. Returns (V, F) bool: frame shows the animal."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (len(CLASSES), data.embedding.shape[-1])).astype(np.float32)
    animal = data.labels[:, 1:].argmax(axis=1) + 1
    has_animal = data.labels[:, 1:].any(axis=1)
    shows = np.zeros(data.valid.shape, dtype=bool)
    values = centres[0] + rng.normal(0, 1, data.embedding.shape).astype(np.float32)
    for i in np.flatnonzero(has_animal):
        frames = np.flatnonzero(data.valid[i])[:visible]
        shows[i, frames] = True
        values[i, frames] = centres[animal[i]] + rng.normal(0, 1, (len(frames), values.shape[-1]))
    values = np.where(data.valid[..., None], values, data.embedding.astype(np.float32)).astype(np.float16)
    arrays.open_group(data.workspace, data.fs, mode="a")["embedding"][:] = values
    return shows


@pytest.mark.slow  # two frame heads (~4 s)
def test_multiple_instance_training_says_which_frames_show_the_animal(tmp_path):
    """Animals on screen in 2 frames of 8: MIL frame probabilities are high on those frames and low on
    the empty ones; inherited labels teach the empty frames the species too."""
    from jungle.store.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.resolve(tmp_path / "ws")
    data = make_labelled_workspace(ws, n_videos=64, n_frames=8, dims=16, block=16, n_unlabelled=8)
    shows = _animal_in_few_frames(data)
    with connect(ws) as con:
        source, plan = load_frame_rows(con, data.fs), load_fold_plan(con)
    gaps = {}
    for training in ("mil-attention", "mil-lse", "mil-noisy-or", "inherit"):
        ensemble = fit_frame_head(ws, source, plan, HEAD.model_copy(update={"training": training, "batch_size": 8}))
        blocks = list(iter_frame_blocks(ws, [source]))
        probs = np.concatenate([predict_frames(ensemble, plan, b) for b in blocks])
        rows = np.concatenate([b.rows for b in blocks])
        animal_videos = [r for r in rows if data.labels[r, 1:].any() and data.labelled[r]]
        on = [probs[np.flatnonzero(rows == r)[0]][shows[r]][:, data.labels[r, 1:].argmax() + 1].mean()
              for r in animal_videos]
        off = [probs[np.flatnonzero(rows == r)[0]][data.valid[r] & ~shows[r]][:, data.labels[r, 1:].argmax() + 1]
               .mean() for r in animal_videos if (data.valid[r] & ~shows[r]).any()]
        gaps[training] = (float(np.mean(on)), float(np.mean(off)))
        videos = np.concatenate([predict_videos(ensemble, plan, b) for b in blocks])
        assert videos.shape == (len(rows), len(CLASSES)) and ((videos >= 0) & (videos <= 1)).all()
    inherit_on, inherit_off = gaps["inherit"]
    for training in ("mil-attention", "mil-lse", "mil-noisy-or"):
        on, off = gaps[training]
        assert off < inherit_off, gaps                            # empty frames no longer taught the species
        assert on / off > 1.3 * inherit_on / inherit_off, gaps    # frames told apart better
    assert max(gaps["mil-lse"][1], gaps["mil-noisy-or"][1]) < 0.75 * inherit_off, gaps
    assert gaps["mil-lse"][0] > 0.5, gaps


def test_garbage_in_padded_frames_changes_no_prediction(head_ws):
    ws, data = head_ws
    with connect(ws) as con:
        source = load_frame_rows(con, data.fs)
        plan = load_fold_plan(con)

    def predict():
        ensemble = fit_frame_head(ws, source, plan, HEAD)
        return np.concatenate([predict_frames(ensemble, plan, b) for b in iter_frame_blocks(ws, [source])])

    first = predict()
    fill_invalid(data, 3.0)
    try:
        second = predict()
    finally:
        fill_invalid(data, None)
    np.testing.assert_array_equal(first, second)


def test_unlabelled_videos_from_the_fold_mean_when_asked(head_ws):
    ws, data = head_ws
    with connect(ws) as con:
        source = load_frame_rows(con, data.fs)
        plan = load_fold_plan(con)
    config = HEAD.model_copy(update={"unlabelled": "fold_mean"})
    ensemble = fit_frame_head(ws, source, plan, config)
    block = next(iter_frame_blocks(ws, [source], video_ids=[data.video_ids[i] for i in (1, 33)]))
    probs = predict_frames(ensemble, plan, block)
    x, valid_t = torch.as_tensor(block.values.astype(np.float32)), torch.as_tensor(block.valid)
    with torch.no_grad():
        each = [m.outputs(x, valid_t)["probs"].numpy() for m in ensemble.models_]
    valid = block.valid
    np.testing.assert_allclose(probs[0][valid[0]], each[plan.folds[data.video_ids[1]]][0][valid[0]], rtol=1e-6)
    np.testing.assert_allclose(probs[1][valid[1]], np.mean(each[:4], axis=0)[1][valid[1]], rtol=1e-5)


def _write_detector_set(data, stamps: np.ndarray, scores: np.ndarray, name: str = "megadetector_lite"):
    """A real frame-level detector set (``score``/``valid``/``timestamps``) over every video of ``data``."""
    n_videos, n_frames = scores.shape
    with connect(data.workspace) as con:
        fs, _ = registry.register(con, name, "frames", {"helper": "detector", "frames": "fps:4"}, [],
                                  encoder="megadetector-lite", sampling="fps:4", dims=1)
        group = arrays.create_group(data.workspace, fs, n_videos, n_frames,
                                    {"score": arrays.ArraySpec((), "float32", 0.0),
                                     "valid": arrays.ArraySpec((), "bool", False),
                                     "timestamps": arrays.ArraySpec((), "float32", float("nan"))}, block=8)
        for lo, hi in arrays.block_ranges(n_videos, 8):
            arrays.write_rows(group, lo, {"score": scores[lo:hi], "valid": np.ones((hi - lo, n_frames), bool),
                                          "timestamps": np.tile(stamps, (hi - lo, 1))})
        con.executemany("INSERT INTO feature_rows (name, version, video_id, row, status, error, n_valid) "
                        "VALUES (?, ?, ?, ?, 'done', NULL, ?)",
                        [[fs.name, fs.version, v, i, n_frames] for i, v in enumerate(data.video_ids)])
        return registry.mark_complete(con, fs, n_videos)


@pytest.mark.slow  # two frame heads (~3 s)
def test_detector_scores_become_an_extra_input_of_each_frame(tmp_path):
    """The detector samples its own frames (every 0.25 s): each embedding frame (every 0.5 s) gets the
    score nearest in time; the frame head reads D + 1 inputs and records the detector set in lineage."""
    from jungle.features.aggregates.frame_head import detector_scores, frame_blocks
    from jungle.store.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.resolve(tmp_path / "ws")
    data = make_labelled_workspace(ws, n_videos=24, n_frames=8, dims=16, block=8, n_unlabelled=4)
    stamps = np.arange(16, dtype=np.float32) * 0.25
    scores = np.random.default_rng(0).random((24, 16)).astype(np.float32)
    det = _write_detector_set(data, stamps, scores)
    head = HEAD.model_copy(update={"detector": "megadetector_lite"})
    with connect(ws) as con:
        source, det_rows, plan = load_frame_rows(con, data.fs), load_frame_rows(con, det), load_fold_plan(con)
    found = detector_scores(ws, det_rows)
    block = next(frame_blocks(ws, source, head, found))
    assert block.values.shape[-1] == 17
    for i, row in enumerate(block.rows):
        frames = np.flatnonzero(data.valid[row])
        np.testing.assert_array_equal(block.values[i, frames, -1], scores[row, frames * 2])   # 0.5 s = 2 x 0.25 s
    ensemble = fit_frame_head(ws, source, plan, head, detector=det_rows)
    assert ensemble.models_[0].mean.shape == (17,)
    made = aggregate(ws, AggregateConfig(kinds=("frame-head",), frame_head=head))[0]
    assert made.config["detector"] == "megadetector_lite"
    assert [i["name"] for i in made.inputs] == ["lite0", "labels", "megadetector_lite"]
