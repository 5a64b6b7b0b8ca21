"""Learned pooling over frames (the 3rd place): attention weights per frame, then a head.

Each frame's embedding (one or several frame-level sets side by side, standardised) is projected
to ``hidden`` units; a small scorer gives every valid frame a weight (softmax over the video's
valid frames; invalid slots get weight 0 and never enter); the weighted sum of the projected
frames, optionally with the video's metadata features, feeds a multi-label head. The GRU variant
(``recurrent=True``) runs a bidirectional GRU over the valid frames, in time order, before
scoring, so a frame's weight can depend on its neighbours.

Trained out of fold like the frame head (:class:`jungle.features.aggregates.oof.FoldEnsemble`). Two
video-level outputs:

- ``probs``: (C,) class probabilities, out of fold for labelled videos.
- ``vector``: the attention-weighted mean of the video's raw frame embeddings (D,). It is taken
  in the input space, not the model's hidden space, so vectors from different fold models share
  one coordinate system (hidden units of separately trained models do not), while the weights
  still come from the out-of-fold model.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from pydantic import Field
from torch import nn

from jungle.store.workspace import Workspace

from ...errors import NotFoundError
from .frame_stats import frame_moments
from .inputs import FrameRows, iter_frame_blocks
from .oof import Batch, FoldEnsemble, FoldPlan, ShuffleBuffer, TrainingConfig

__all__ = ["AttentionConfig", "AttentionPooling", "meta_inputs", "fit_attention", "predict_attention"]


class AttentionConfig(TrainingConfig):
    """How the attention-pooling model is built and trained
    (see :class:`~jungle.features.aggregates.oof.TrainingConfig`).

    Attributes:
        hidden: units of the frame projection (and of the GRU, both directions together).
        recurrent: the GRU variant.
        batch_size: videos per batch.
        buffer_videos: videos held in memory for shuffling (all of them when they fit).
        with_meta: feed the ``meta`` feature set to the head as well.
    """

    hidden: int = Field(128, ge=2)
    recurrent: bool = False
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    buffer_videos: int = Field(2048, ge=1)
    with_meta: bool = True


class AttentionPooling(nn.Module):
    """Attention pooling over a video's valid frames (optionally after a bidirectional GRU).

    Inputs of ``forward``/``outputs``: ``x`` (B, F, D) float32 raw embeddings (invalid slots may
    hold anything), ``valid`` (B, F) bool, ``meta`` (B, M) float32 (M may be 0).

    Args:
        mean, std: (D,) standardisation of the frames.
        n_classes: outputs.
        hidden: projection units.
        dropout: dropout rate.
        recurrent: add the GRU.
        meta_dims: M.
        prior: (C,) positive rate of the training rows, for the output bias.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, n_classes: int, hidden: int, dropout: float,
                 recurrent: bool, meta_dims: int, prior: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.project = nn.Sequential(nn.Linear(len(mean), hidden), nn.ReLU(), nn.Dropout(dropout))
        self.gru = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True) if recurrent else None
        width = 2 * (hidden // 2) if recurrent else hidden
        self.score = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width + meta_dims, n_classes))
        with torch.no_grad():
            self.head[-1].bias.copy_(torch.as_tensor(np.log(prior / (1 - prior)), dtype=torch.float32))

    def attend(self, x, valid, meta):
        """(logits (B, C), weights (B, F) summing to 1 over valid frames, cleaned x (B, F, D))."""
        valid = valid.bool()
        x = torch.where(valid[..., None], x, torch.zeros((), dtype=x.dtype))
        h = self.project((x - self.mean) / self.std)
        if self.gru is not None:
            # the GRU reads only the valid frames, in time order: move them to the front, run, move back
            order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)[..., None].expand_as(h)
            lengths = valid.sum(dim=1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(torch.gather(h, 1, order), lengths, batch_first=True,
                                                       enforce_sorted=False)
            out, _ = self.gru(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
            h = torch.zeros_like(out).scatter(1, order[..., :out.shape[-1]], out)
        scores = self.score(h).squeeze(-1).masked_fill(~valid, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = (weights[..., None] * h).sum(dim=1)
        return self.head(torch.cat([pooled, meta], dim=1)), weights, x

    def forward(self, x, valid, meta):
        return self.attend(x, valid, meta)[0]

    def outputs(self, x, valid, meta) -> dict:
        """``probs`` (B, C), ``vector`` (B, D): attention-weighted mean of raw frames, ``weights`` (B, F)."""
        logits, weights, clean = self.attend(x, valid, meta)
        return {"probs": torch.sigmoid(logits), "vector": (weights[..., None] * clean).sum(dim=1),
                "weights": weights}


def meta_inputs(table) -> dict[str, np.ndarray]:
    """video_id -> standardised numeric metadata vector (missing values 0) from a polars table."""
    import polars as pl

    columns = [c for c, t in table.schema.items() if c != "video_id" and (t.is_numeric() or t == pl.Boolean)]
    if not columns:
        return {}
    matrix = table.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy()
    present = np.isfinite(matrix)
    counts = np.maximum(present.sum(axis=0), 1)
    filled = np.where(present, matrix, 0.0)
    mean = filled.sum(axis=0) / counts
    std = np.sqrt(np.where(present, (filled - mean) ** 2, 0.0).sum(axis=0) / counts)
    matrix = np.where(present, (filled - mean) / np.where(std > 0, std, 1.0), 0.0).astype(np.float32)
    return dict(zip(table["video_id"].to_list(), matrix))


def _meta_rows(meta: dict[str, np.ndarray] | None, video_ids: Sequence[str]) -> np.ndarray:
    if not meta:
        return np.zeros((len(video_ids), 0), dtype=np.float32)
    width = len(next(iter(meta.values())))
    empty = np.zeros(width, dtype=np.float32)
    return np.stack([meta.get(v, empty) for v in video_ids]).astype(np.float32)


def _tensors(x: np.ndarray, valid: np.ndarray, meta: np.ndarray) -> tuple:
    return (torch.from_numpy(np.ascontiguousarray(x)).float(), torch.as_tensor(valid), torch.as_tensor(meta))


def fit_attention(workspace: Workspace, sources: Sequence[FrameRows], plan: FoldPlan, config: AttentionConfig,
                  meta: dict[str, np.ndarray] | None = None,
                  progress: Callable[[], None] | None = None) -> FoldEnsemble:
    """Train the ``k + 1`` attention models on the labelled videos done in every source."""
    def blocks(**options):
        return iter_frame_blocks(workspace, sources, config.embedding, **options)

    mean, std = frame_moments((b.values, b.valid) for b in blocks())
    labelled = [v for v in sources[0].video_ids if v in plan.folds]
    if not labelled:
        raise NotFoundError(f"no labelled video of scheme {plan.scheme!r} has frames in "
                          f"{', '.join(s.fs.ref for s in sources)}; featurize the labelled videos first.")
    meta_dims = len(next(iter(meta.values()))) if meta else 0

    def read(rng: np.random.Generator):
        for block in blocks(video_ids=labelled, shuffle=rng):
            keep = block.valid.any(axis=1)
            video_ids, valid = block.video_ids[keep], block.valid[keep]
            folds, targets = plan.targets(video_ids)
            x = np.where(valid[..., None], block.values[keep], 0).astype(np.float16)
            yield {"x": x, "valid": valid, "meta": _meta_rows(meta, video_ids), "y": targets, "fold": folds}

    buffer = ShuffleBuffer(read, config.buffer_videos, config.batch_size, config.seed)

    def epoch_batches(epoch: int):
        for rows in buffer.epoch(epoch):
            yield Batch(_tensors(rows["x"], rows["valid"], rows["meta"]), rows["y"], rows["fold"])

    video_folds, video_targets = plan.targets(labelled)
    ensemble = config.ensemble(lambda prior: AttentionPooling(mean, std, len(plan.classes), config.hidden,
                                                             config.dropout, config.recurrent, meta_dims, prior),
                               plan.k)
    return ensemble.fit(epoch_batches, video_folds, video_targets, progress=progress)


def predict_attention(workspace: Workspace, sources: Sequence[FrameRows], ensemble: FoldEnsemble,
                      plan: FoldPlan, config: AttentionConfig, meta: dict[str, np.ndarray] | None = None,
                      ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per block of videos done in every source: (video_ids, probs (B, C), vector (B, D), weights (B, F))."""
    for block in iter_frame_blocks(workspace, sources, config.embedding):
        keep = block.valid.any(axis=1)
        video_ids = block.video_ids[keep]
        folds, _ = plan.targets(video_ids)
        out = ensemble.predict(_tensors(block.values[keep], block.valid[keep], _meta_rows(meta, video_ids)), folds)
        yield video_ids, out["probs"], out["vector"], out["weights"]
