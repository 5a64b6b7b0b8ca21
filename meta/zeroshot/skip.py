"""The blank filter applied to a model's predictions: ``jungle predict --max-animal-loss X``.

After any model (stacked, re-fit, zero-shot) predicts a set of clips, :func:`apply_blank_filter`
chooses the threshold (:mod:`.blank_filter`): on the labelled clips' out-of-fold probabilities of
the same model when it has them for enough labelled animal and blank clips (the cost is then
measured out of fold), else by the label-free rule on the predicted clips' own probabilities (the
cost is an expectation, not yet measured). It writes which clips to skip to the ``blank_filter``
table (:mod:`jungle.store.blank_filter`) and to a CSV (``filepath, filename, site, p_animal, skip``,
least likely animal first), and says what the filter costs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...store.blank_filter import write_blank_filter
from ...store.db import connect, transaction
from ...store.labels import read_labelled
from ...store.predictions import read_predictions
from ...store.videos import read_videos
from ...store.workspace import Workspace
from ...userfiles import write_user_text
from .blank_filter import BLANK, MIN_LABELS, BlankFilter, animal_probability, fit_filter, rule_threshold

__all__ = ["SkipList", "labelled_out_of_fold", "check_max_animal_loss", "apply_blank_filter", "default_skip_path"]


@dataclass
class SkipList:
    """What :func:`apply_blank_filter` chose and wrote."""

    model_id: str
    filter: BlankFilter
    clips: int
    skipped: int
    path: Path

    def summary(self) -> list[str]:
        """The lines ``jungle predict`` prints."""
        return [f"Blank filter (at most {self.filter.max_animal_loss:.0%} of animal clips lost): skip {self.skipped} "
                f"of {self.clips} clips.",
                self.filter.describe() + ".",
                f"Written: the skip list {self.path}; table blank_filter (model {self.model_id})."]


def default_skip_path(workspace: Workspace, model_id: str) -> Path:
    """Where the skip list goes without ``--skip-list``: ``<workspace>/blank-filter/<model id>.csv``."""
    return workspace.root / "blank-filter" / f"{model_id}.csv"


def labelled_out_of_fold(con, model_id: str, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(P(animal), is animal) of the labelled clips the model has out-of-fold probabilities for."""
    blank = classes.index(BLANK)
    oof: dict[str, float] = {}
    for video_id, cls, probability, _kind, _ in read_predictions(con, model_id, kinds=("oof",)):
        if cls == BLANK:
            oof[video_id] = 1.0 - probability
    labelled = read_labelled(con, None, required=False)
    if not oof or not len(labelled):
        return np.zeros(0), np.zeros(0, bool)
    ids = [v for v in labelled.video_ids.tolist() if v in oof]
    Y, known = labelled.aligned(ids, classes)
    keep = np.asarray(known, bool)
    return (np.array([oof[v] for v in ids])[keep], (np.asarray(Y)[keep, blank] == 0))


def check_max_animal_loss(max_animal_loss: float) -> None:
    """Refuse a ``--max-animal-loss`` that is not a share strictly between 0 and 1 (before any work).

    Raises:
        InputError: naming the value and an example.
    """
    from ...errors import InputError

    if not 0.0 < max_animal_loss < 1.0:
        raise InputError(f"--max-animal-loss must be a share between 0 and 1 (0.05: lose at most 5% of animal "
                         f"clips), not {max_animal_loss}.")


def apply_blank_filter(workspace: Workspace, model_id: str, classes: list[str], video_ids: list[str],
                       P: np.ndarray, max_animal_loss: float, path: Path | None = None) -> SkipList:
    """Choose the threshold for ``max_animal_loss`` and write which of ``video_ids`` (predicted ``P``) to skip.

    Raises:
        NoBlankClass: the model has no blank class.
        InputError: ``max_animal_loss`` is not between 0 and 1.
    """
    check_max_animal_loss(max_animal_loss)
    p_animal = animal_probability(classes, P)
    with connect(workspace, read_only=True) as con:
        p_labelled, is_animal = labelled_out_of_fold(con, model_id, classes)
        rows = {r[0]: r[1:] for r in read_videos(con, ("video_id", "path", "filename", "site"))}
    if is_animal.sum() >= MIN_LABELS and (~is_animal).sum() >= MIN_LABELS:
        chosen = fit_filter(p_labelled, is_animal, max_animal_loss)
    else:
        threshold, expected = rule_threshold(p_animal, max_animal_loss)
        chosen = BlankFilter(threshold, max_animal_loss, "model", expected_loss=expected)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["filepath", "filename", "site", "p_animal", "skip"])
    for i in np.argsort(p_animal, kind="stable"):
        filepath, filename, site = rows.get(video_ids[i], ("", "", ""))
        writer.writerow([filepath, filename, site, f"{p_animal[i]:.6f}", "true" if p_animal[i] < chosen.threshold
                         else "false"])
    path = write_user_text(path if path is not None else default_skip_path(workspace, model_id), text.getvalue())
    with connect(workspace) as con, transaction(con):
        skipped = write_blank_filter(con, model_id, video_ids, p_animal, chosen.threshold, max_animal_loss,
                                     chosen.basis)
    return SkipList(model_id, chosen, len(video_ids), skipped, path)
