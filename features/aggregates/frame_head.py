"""The frame-level classifier (the 1st place's core idea): class probabilities for every frame.

Every valid frame of a labelled video inherits its video's labels; a small multi-label head
(linear, or an MLP with one hidden layer) on the frozen per-frame embeddings learns them. The
head is trained out of fold with :class:`jungle.features.aggregates.oof.FoldEnsemble`: a labelled video's
frames are predicted by the copy that never saw its fold, and unlabelled (test) videos by the
copy trained on all labelled data (``unlabelled='full'``, the default; ``'fold_mean'`` averages
the fold copies instead). Embeddings are standardised per dimension with the mean and std of all
valid frames (no labels involved).

:func:`write_frame_probs` writes the predictions as a frame-level feature set (``probs``
(V, F, C) float16, ``valid``, ``timestamps``, ``frame_index``), row-aligned with its source, so
:mod:`jungle.features.aggregates.frame_stats` can summarise it like any other frame-level set.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from pydantic import Field
from torch import nn

from jungle.store import arrays
from jungle.store.registry import FeatureSet
from jungle.store.workspace import Workspace

from .frame_stats import frame_moments
from .inputs import FrameBlock, FrameRows, iter_frame_blocks
from .oof import Batch, FoldEnsemble, FoldPlan, ShuffleBuffer, TrainingConfig

__all__ = ["FrameHeadConfig", "FrameHead", "fit_frame_head", "predict_frames", "write_frame_probs"]


class FrameHeadConfig(TrainingConfig):
    """How the frame head is built and trained (see :class:`~jungle.features.aggregates.oof.TrainingConfig`).

    Attributes:
        hidden: hidden units of the MLP (0: a linear head).
        buffer_frames: frames held in memory for shuffling (all of them when they fit: then
            they are read from Zarr once, not every epoch).
    """

    hidden: int = Field(256, ge=0)
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(2e-3, gt=0)
    buffer_frames: int = Field(131072, ge=1)


class FrameHead(nn.Module):
    """Standardise each dimension, then a linear or one-hidden-layer MLP head.

    Args:
        mean, std: (D,) per-dimension standardisation.
        n_classes: outputs.
        hidden: hidden units (0: linear).
        dropout: dropout after the hidden layer.
        prior: (C,) positive rate of the training rows; the output bias starts at its log-odds.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, n_classes: int, hidden: int, dropout: float,
                 prior: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        dims = len(mean)
        if hidden:
            self.net = nn.Sequential(nn.Linear(dims, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, n_classes))
        else:
            self.net = nn.Sequential(nn.Linear(dims, n_classes))
        with torch.no_grad():
            self.net[-1].bias.copy_(torch.as_tensor(np.log(prior / (1 - prior)), dtype=torch.float32))

    def forward(self, x):
        """Logits (rows, C) of frames ``x`` (rows, D)."""
        return self.net((x - self.mean) / self.std)


def fit_frame_head(workspace: Workspace, source: FrameRows, plan: FoldPlan, config: FrameHeadConfig,
                   progress: Callable[[], None] | None = None) -> FoldEnsemble:
    """Train the ``k + 1`` frame heads on the labelled videos of ``source`` (see the module docstring)."""
    labelled = [v for v in source.video_ids if v in plan.folds]
    if not labelled:
        raise LookupError(f"no labelled video of scheme {plan.scheme!r} has frames in {source.fs.ref}; "
                          "featurize the labelled videos first.")
    mean, std = frame_moments((b.values, b.valid) for b in iter_frame_blocks(workspace, [source], config.embedding))
    n_classes = len(plan.classes)

    def read(rng: np.random.Generator):
        for block in iter_frame_blocks(workspace, [source], config.embedding, video_ids=labelled, shuffle=rng):
            folds, targets = plan.targets(block.video_ids)
            video, frame = np.nonzero(block.valid)
            yield {"x": block.values[video, frame], "y": targets[video], "fold": folds[video]}

    buffer = ShuffleBuffer(read, config.buffer_frames, config.batch_size, config.seed)

    def epoch_batches(epoch: int):
        for rows in buffer.epoch(epoch):
            yield Batch((torch.from_numpy(rows["x"]).float(),), rows["y"], rows["fold"])

    video_folds, video_targets = plan.targets(labelled)
    ensemble = config.ensemble(lambda prior: FrameHead(mean, std, n_classes, config.hidden, config.dropout, prior),
                               plan.k)
    return ensemble.fit(epoch_batches, video_folds, video_targets, progress=progress)


def predict_frames(ensemble: FoldEnsemble, plan: FoldPlan, block: FrameBlock) -> np.ndarray:
    """(B, F, C) float32 probabilities of a block's valid frames (0 in invalid slots), out of fold."""
    video, frame = np.nonzero(block.valid)
    folds, _ = plan.targets(block.video_ids)
    probs = np.zeros((*block.valid.shape, len(plan.classes)), dtype=np.float32)
    if len(video):
        x = torch.from_numpy(block.values[video, frame]).float()
        probs[video, frame] = ensemble.predict((x,), folds[video])["probs"]
    return probs


def write_frame_probs(workspace: Workspace, source: FrameRows, target: FeatureSet, ensemble: FoldEnsemble,
                      plan: FoldPlan, config: FrameHeadConfig,
                      progress: Callable[[int], None] | None = None) -> dict[str, tuple[int, int]]:
    """Predict every valid frame of ``source`` and write the frame-level set ``target``.

    ``target`` gets the same rows as ``source``; invalid slots hold probability 0 and
    ``valid = False``.

    Returns:
        video_id -> (row, number of valid frames), for the rows written.
    """
    group = arrays.open_group(workspace, source.fs)
    n_rows, n_frames = group["valid"].shape
    chunk = group["valid"].chunks[0]
    n_classes = len(plan.classes)
    extras = [name for name in ("timestamps", "frame_index") if name in group]
    out = arrays.create_group(
        workspace, target, n_rows, n_frames,
        {"probs": arrays.ArraySpec((n_classes,), "float16", 0),
         "valid": arrays.ArraySpec((), "bool", False),
         "timestamps": arrays.ArraySpec((), "float32", float("nan")),
         "frame_index": arrays.ArraySpec((), "int32", -1)},
        block=chunk, attrs={"classes": list(plan.classes), "source": source.fs.ref})
    written: dict[str, tuple[int, int]] = {}
    for block in iter_frame_blocks(workspace, [source], config.embedding, extras=extras):
        start = int(block.rows[0]) // chunk * chunk
        stop = min((int(block.rows[-1]) // chunk + 1) * chunk, n_rows)
        local = block.rows - start
        probs = np.zeros((stop - start, n_frames, n_classes), dtype=np.float16)
        valid = np.zeros((stop - start, n_frames), dtype=bool)
        timestamps = np.full((stop - start, n_frames), np.nan, dtype=np.float32)
        frame_index = np.full((stop - start, n_frames), -1, dtype=np.int32)
        probs[local] = predict_frames(ensemble, plan, block).astype(np.float16)
        valid[local] = block.valid
        if "timestamps" in block.extras:
            timestamps[local] = block.extras["timestamps"]
        if "frame_index" in block.extras:
            frame_index[local] = block.extras["frame_index"]
        arrays.write_rows(out, start, {"probs": probs, "valid": valid, "timestamps": timestamps,
                                       "frame_index": frame_index})
        counts = block.valid.sum(axis=1)
        written.update({v: (int(r), int(n)) for v, r, n in zip(block.video_ids, block.rows, counts)})
        if progress:
            progress(len(block))
    return written
