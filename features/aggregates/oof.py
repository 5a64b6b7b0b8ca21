"""Out-of-fold training of the learned aggregates (frame head, attention pooling).

A learned feature must never have seen the label of the video it describes, or the level-2 model
learns from leaked labels. :class:`FoldEnsemble` trains ``k + 1`` copies of a PyTorch model in one
pass over the data: copy ``m < k`` on the labelled videos outside fold ``m``, copy ``k`` on every
labelled video. A labelled video of fold ``m`` is then predicted by copy ``m`` only (out of fold),
and a video without a label (or without a fold in the scheme) by copy ``k``, the model trained on
all labelled data (``unlabelled='full'``, the default), or by the mean of the ``k`` fold copies
(``unlabelled='fold_mean'``).

Every copy sees the same batches in the same order (the order depends on the seed and the folds,
never on label values), and its loss, output-bias prior and updates use only its own training
rows; so changing the labels of fold ``m`` leaves copy ``m`` bit-identical. The tests check
exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
from pydantic import Field

from ...config import JungleConfig
from ...store.labels import folds_fingerprint, labels_fingerprint, read_labelled

__all__ = ["FoldPlan", "load_fold_plan", "training_mask", "FoldEnsemble", "Batch", "shuffled_batches",
           "ShuffleBuffer", "TrainingConfig"]

Unlabelled = Literal["full", "fold_mean"]


class TrainingConfig(JungleConfig):
    """Settings every out-of-fold head shares (subclasses set their own defaults and add their own).

    Attributes:
        dropout: dropout rate.
        epochs, batch_size, lr, weight_decay: AdamW training.
        seed: initialisation, dropout and shuffling.
        unlabelled: predictions for videos without labels: ``full`` (the model on all labelled
            data) or ``fold_mean`` (the mean of the fold models).
        embedding: the array read from the source set(s) (``embedding`` or ``stages``).
    """

    dropout: float = Field(0.2, ge=0, lt=1)
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 0
    unlabelled: Unlabelled = "full"
    embedding: str = "embedding"

    def ensemble(self, build: Callable, k: int) -> "FoldEnsemble":
        """An untrained :class:`FoldEnsemble` of ``build`` with these settings."""
        return FoldEnsemble(build, k, epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                            seed=self.seed, unlabelled=self.unlabelled)


@dataclass(frozen=True)
class FoldPlan:
    """Labels and folds of the labelled videos under one fold scheme.

    Attributes:
        scheme: fold scheme name.
        k: number of folds (fold numbers are mapped to 0..k-1 in sorted order).
        classes: class order (table ``classes``).
        folds: video_id -> fold index, for labelled videos in the scheme.
        labels: video_id -> (C,) float32 0/1 targets, for the same videos.
        lineage: hashes of the labels and folds, recorded in the inputs of derived sets.
    """

    scheme: str
    k: int
    classes: tuple[str, ...]
    folds: dict
    labels: dict
    lineage: dict

    def targets(self, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(folds, Y) for ``video_ids``: fold -1 and zero targets for videos outside the plan."""
        folds = np.array([self.folds.get(v, -1) for v in video_ids], dtype=np.int64)
        empty = np.zeros(len(self.classes), dtype=np.float32)
        labels = np.stack([self.labels.get(v, empty) for v in video_ids]) if len(video_ids) else \
            np.zeros((0, len(self.classes)), np.float32)
        return folds, labels


def load_fold_plan(con, scheme: str = "default") -> FoldPlan:
    """Read classes, labels and the fold scheme ``scheme`` from the workspace
    (:func:`jungle.store.labels.read_labelled`: the same rules as every other stage).

    Raises:
        LabelsMissing, LabelsInconsistent, FoldsMissing: see :mod:`jungle.store.labels`.
    """
    labelled = read_labelled(con, scheme)
    fold_values = sorted(set(labelled.folds.tolist()))
    fold_index = {f: i for i, f in enumerate(fold_values)}
    folds = {v: fold_index[int(f)] for v, f in zip(labelled.video_ids.tolist(), labelled.folds)}
    labels = dict(zip(labelled.video_ids.tolist(), labelled.Y))
    lineage = {
        "fold_scheme": scheme,
        "folds": folds_fingerprint(con, scheme),
        "labels": labels_fingerprint(con),
        "classes": list(labelled.classes),
    }
    return FoldPlan(scheme, len(fold_values), labelled.classes, folds, labels, lineage)


def training_mask(folds: np.ndarray, model: int, k: int) -> np.ndarray:
    """Rows copy ``model`` trains on: labelled rows outside fold ``model`` (all labelled rows for ``k``)."""
    folds = np.asarray(folds)
    return (folds >= 0) & (folds != model) if model < k else folds >= 0


@dataclass
class Batch:
    """One training batch: model inputs (first axis = rows), targets (rows, C), fold of each row.

    ``pseudo`` (optional, (k + 1, rows, C)): per-copy targets of rows that copy trains on although
    they carry no label of their own (pseudo-labels); NaN where the copy does not use the row.
    """

    inputs: tuple
    targets: np.ndarray
    folds: np.ndarray
    pseudo: np.ndarray | None = None


def shuffled_batches(arrays: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator) -> Iterable[dict]:
    """Split row-aligned arrays into shuffled batches of ``batch_size`` rows."""
    n = len(next(iter(arrays.values())))
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        pick = order[start:start + batch_size]
        yield {name: values[pick] for name, values in arrays.items()}


class ShuffleBuffer:
    """Training rows streamed from blocks and shuffled within a bounded buffer.

    Rows are whatever the caller reads (frames for the frame head, videos for attention pooling)
    as dicts of row-aligned arrays. When one epoch's rows fit in ``buffer_rows`` they are kept in
    memory for the later epochs; otherwise every epoch streams the blocks again (in a new order)
    and shuffles within each buffer-full, so memory stays bounded.

    Args:
        read: ``read(rng) -> iterable of dicts``: one epoch's rows, block by block (use ``rng`` to
            order the blocks).
        buffer_rows: rows held at most (plus one block).
        batch_size: rows per batch.
        seed: epoch ``e`` shuffles with ``default_rng([seed, e])``.
    """

    def __init__(self, read: Callable[[np.random.Generator], Iterable[dict]], buffer_rows: int, batch_size: int,
                 seed: int = 0):
        self.read, self.buffer_rows, self.batch_size, self.seed = read, buffer_rows, batch_size, seed
        self._cache: dict | None = None

    def epoch(self, epoch: int) -> Iterable[dict]:
        rng = np.random.default_rng([self.seed, epoch])
        if self._cache is not None:
            yield from shuffled_batches(self._cache, self.batch_size, rng)
            return
        pending: list[dict] = []
        held, flushed = 0, False
        for part in self.read(rng):
            pending.append(part)
            held += len(next(iter(part.values())))
            if held >= self.buffer_rows:
                flushed = True
                yield from shuffled_batches(_concat(pending), self.batch_size, rng)
                pending, held = [], 0
        if pending:
            data = _concat(pending)
            if not flushed:
                self._cache = data
            yield from shuffled_batches(data, self.batch_size, rng)


def _concat(parts: list[dict]) -> dict:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


class FoldEnsemble:
    """``k`` out-of-fold copies of a model plus one trained on all labelled data, trained together.

    Args:
        build: ``build(prior) -> torch.nn.Module``; ``prior`` is the (C,) positive rate of that copy's
            own training rows (to initialise the output bias). The module's ``forward(*inputs)``
            returns logits (rows, C); an optional ``loss(*inputs, targets)`` replaces the default
            binary cross-entropy of those logits (e.g. frame-level losses of video rows); an
            optional ``outputs(*inputs) -> dict`` gives named outputs for :meth:`predict` (default
            ``{"probs": sigmoid(logits)}``).
        k: number of folds.
        epochs, lr, weight_decay: AdamW training settings.
        seed: seeds model initialisation and dropout.
        unlabelled: ``full`` or ``fold_mean`` (see the module docstring).
    """

    def __init__(self, build: Callable, k: int, epochs: int = 4, lr: float = 1e-3, weight_decay: float = 1e-4,
                 seed: int = 0, unlabelled: Unlabelled = "full"):
        self.build, self.k, self.epochs = build, k, epochs
        self.lr, self.weight_decay, self.seed, self.unlabelled = lr, weight_decay, seed, unlabelled

    def fit(self, epoch_batches: Callable[[int], Iterable[Batch]], video_folds: np.ndarray,
            video_targets: np.ndarray, progress: Callable[[], None] | None = None) -> "FoldEnsemble":
        """Train all copies.

        Args:
            epoch_batches: ``epoch -> batches``; the same rows in the same order for every copy.
            video_folds, video_targets: fold (-1: not training) and targets of each video, for the
                copies' output-bias priors.
            progress: called after every batch.
        """
        import torch

        self.models_ = []
        for model_index in range(self.k + 1):
            use = training_mask(video_folds, model_index, self.k)
            prior = video_targets[use].mean(axis=0) if use.any() else np.full(video_targets.shape[1], 0.5)
            torch.manual_seed(self.seed)
            self.models_.append(self.build(np.clip(prior, 1e-4, 1 - 1e-4)))
        optimisers = [torch.optim.AdamW(m.parameters(), lr=self.lr, weight_decay=self.weight_decay)
                      for m in self.models_]
        # every copy draws its dropout from its own random stream, so how many rows another copy
        # trains on (which may depend on labels, e.g. with pseudo-labels) never shifts this one's
        rng_states = [torch.Generator().manual_seed(self.seed + 1000 * m).get_state()
                      for m in range(self.k + 1)]
        outer_state = torch.get_rng_state()
        for model in self.models_:
            model.train()
        for epoch in range(self.epochs):
            for batch in epoch_batches(epoch):
                targets = torch.as_tensor(batch.targets, dtype=torch.float32)
                for model_index, (model, optimiser) in enumerate(zip(self.models_, optimisers)):
                    use, copy_targets = self._copy_rows(batch, targets, model_index)
                    if not use.any():
                        continue
                    pick = torch.as_tensor(np.flatnonzero(use))
                    torch.set_rng_state(rng_states[model_index])
                    loss = self._loss(model, tuple(t[pick] for t in batch.inputs), copy_targets[pick])
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    rng_states[model_index] = torch.get_rng_state()
                if progress:
                    progress()
        torch.set_rng_state(outer_state)
        for model in self.models_:
            model.eval()
        return self

    def _copy_rows(self, batch: Batch, targets, model_index: int):
        """(rows copy ``model_index`` trains on, its targets): its labelled rows plus its pseudo rows."""
        import torch

        use = training_mask(batch.folds, model_index, self.k)
        if batch.pseudo is None:
            return use, targets
        pseudo = batch.pseudo[model_index]
        extra = ~np.isnan(pseudo).any(axis=1) & ~use
        if not extra.any():
            return use, targets
        mixed = torch.where(torch.as_tensor(extra)[:, None], torch.as_tensor(np.nan_to_num(pseudo)).float(), targets)
        return use | extra, mixed

    @staticmethod
    def _loss(model, inputs: tuple, targets):
        import torch

        if hasattr(model, "loss"):
            return model.loss(*inputs, targets)
        return torch.nn.functional.binary_cross_entropy_with_logits(model(*inputs), targets)

    def predict(self, inputs: tuple, folds: np.ndarray) -> dict[str, np.ndarray]:
        """Named outputs for rows with ``folds`` (-1: not labelled), each from the right copy.

        Row ``i`` of fold ``m >= 0`` is predicted by copy ``m``; rows with fold -1 by the full copy
        or the mean of the fold copies, as configured.
        """
        import torch

        folds = np.asarray(folds)
        groups = [(m, np.flatnonzero(folds == m)) for m in range(self.k)]
        unlabelled = np.flatnonzero(folds < 0)
        if self.unlabelled == "full":
            groups.append((self.k, unlabelled))
        result: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for model_index, rows in groups:
                if len(rows):
                    self._scatter(result, rows, self._outputs(self.models_[model_index], inputs, rows), len(folds))
            if self.unlabelled == "fold_mean" and len(unlabelled):
                mean_parts = [self._outputs(self.models_[m], inputs, unlabelled) for m in range(self.k)]
                averaged = {name: np.mean([p[name] for p in mean_parts], axis=0) for name in mean_parts[0]}
                self._scatter(result, unlabelled, averaged, len(folds))
        return result

    @staticmethod
    def _scatter(result: dict, rows: np.ndarray, outputs: dict, n: int) -> None:
        for name, values in outputs.items():
            if name not in result:
                result[name] = np.zeros((n, *values.shape[1:]), dtype=values.dtype)
            result[name][rows] = values

    @staticmethod
    def _outputs(model, inputs: tuple, rows: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        pick = torch.as_tensor(rows)
        chosen = tuple(t[pick] for t in inputs)
        if hasattr(model, "outputs"):
            return {k: v.float().numpy() for k, v in model.outputs(*chosen).items()}
        return {"probs": torch.sigmoid(model(*chosen)).float().numpy()}
