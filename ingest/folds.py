"""Cross-validation folds: multi-label stratified K-fold, optionally grouped by site.

:func:`stratified_folds` is iterative stratification (Sechidis, Tsoumakas & Vlahavas, 2011) over
*units*: single videos, or whole groups (sites) when ``groups`` is given, so that one camera never
sits on both sides of a split. Labels are taken rarest first; each unit carrying the label goes
to the fold that still wants most of that label (ties: the fold that wants most videos, then a
seeded random choice). Large groups are placed first, as in bin packing, so they do not unbalance
the folds at the end. Units without any positive label fill the folds by size.

:func:`make_folds` applies it to the labelled videos of a workspace (status 'ok') and stores
the result: one row in ``fold_schemes`` (scheme, k, group_by, seed, created_at) and one row per
video in ``folds`` (scheme, video_id, fold 0..k-1), replacing an earlier scheme of the same name.

:func:`ensure_default_folds` is what a labels import runs when no folds were asked for: a
labelled workspace without a ``'default'`` scheme gets one, recorded like any other. Its settings
(:func:`auto_folds_config`): 5 folds, seeded; grouped by site when the labelled clips come from at
least 2 sites per fold (10 sites), because with fewer each fold would be one or two cameras and
the classes could not be balanced; fewer folds when there are fewer than 5 labelled clips (no
scheme below 2), each change said in a note. An existing scheme is never changed by it: when
labelled clips are missing from it, the note says how to remake it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
from pydantic import model_validator

from ..config import JungleConfig
from ..errors import InputError
from ..store.db import connect, transaction
from ..store.labels import fold_assignment, read_fold_scheme, read_labelled, write_fold_scheme
from ..store.videos import read_videos
from ..store.workspace import Workspace

__all__ = ["FoldsError", "FoldsConfig", "FoldsSummary", "AutoFolds", "GROUP_BY", "AUTO_K", "SITES_PER_FOLD",
           "stratified_folds", "make_folds", "auto_folds_config", "ensure_default_folds"]

#: What folds can be grouped by: a column of ``videos``.
GROUP_BY = ("site",)
#: Folds of the scheme a labels import makes by itself.
AUTO_K = 5
#: Sites per fold the automatic scheme needs before it groups by site.
SITES_PER_FOLD = 2


class FoldsError(InputError):
    """Folds cannot be made as asked; the message says why and what to do."""


class FoldsConfig(JungleConfig):
    """A fold scheme.

    Attributes:
        k: number of folds (>= 2).
        group_by: None, or ``'site'``: keep each site's videos in one fold.
        seed: random seed of the tie-breaks (same seed + same labels = same folds).
        scheme: the scheme's name in ``fold_schemes``.
    """

    error: ClassVar[type[InputError]] = FoldsError

    k: int = 5
    group_by: str | None = None
    seed: int = 0
    scheme: str = "default"

    @model_validator(mode="after")
    def _valid(self):
        if self.k < 2:
            raise FoldsError(f"k must be at least 2 folds, not {self.k}")
        if self.group_by is not None and self.group_by not in GROUP_BY:
            raise FoldsError(f"cannot group folds by {self.group_by!r}; choose one of: {', '.join(GROUP_BY)}")
        if not self.scheme:
            raise FoldsError("the fold scheme needs a name")
        return self


class AutoFolds(JungleConfig):
    """The scheme a labels import makes when none was asked for (see :func:`auto_folds_config`).

    Attributes:
        seed: random seed of the tie-breaks.
        scheme: the scheme's name; made only when the workspace has no scheme of that name.
        group_by: ``'auto'`` (by site when there are enough sites), ``'site'`` or None (never).
        k: folds wanted; fewer when there are fewer labelled clips (or sites, grouped).
    """

    error: ClassVar[type[InputError]] = FoldsError

    seed: int = 0
    scheme: str = "default"
    group_by: str | None = "auto"
    k: int = AUTO_K

    @model_validator(mode="after")
    def _valid(self):
        if self.group_by not in (None, "auto", *GROUP_BY):
            raise FoldsError(f"cannot group folds by {self.group_by!r}; choose one of: auto, {', '.join(GROUP_BY)}")
        return self


@dataclass
class FoldsSummary:
    """The stored scheme: per-fold videos, groups and positive labels."""

    scheme: str
    k: int
    group_by: str | None
    seed: int
    fold_videos: list[int]
    fold_groups: list[int]
    fold_positives: list[int]

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["scheme", "fold", "videos", "groups", "positives"]
        return columns, [(self.scheme, f, self.fold_videos[f], self.fold_groups[f], self.fold_positives[f])
                         for f in range(self.k)]


def _pick_fold(wanted_label: np.ndarray, wanted_size: np.ndarray, rng: np.random.Generator) -> int:
    """The fold that wants this label most; ties: wants most videos; then a seeded random one."""
    best = np.flatnonzero(wanted_label == wanted_label.max())
    if len(best) > 1:
        sizes = wanted_size[best]
        best = best[sizes == sizes.max()]
    return int(best[0] if len(best) == 1 else rng.choice(best))


def stratified_folds(labels: np.ndarray, k: int, groups: Sequence | None = None, seed: int = 0) -> np.ndarray:
    """Assign each row of a multi-label matrix to one of ``k`` folds.

    Args:
        labels: (n, C) 0/1 matrix (videos x classes).
        k: number of folds.
        groups: optional group of each row (e.g. its site); a group never spans two folds.
        seed: seed of the random tie-breaks.

    Returns:
        (n,) int array of folds 0..k-1.

    Raises:
        FoldsError: fewer units (rows, or groups) than folds.
    """
    y = np.asarray(labels).astype(bool)
    if y.ndim != 2:
        raise FoldsError(f"labels must be a (videos, classes) matrix, got shape {y.shape}")
    n = len(y)
    if groups is None:
        unit_of = np.arange(n)
    else:
        _, unit_of = np.unique(np.asarray([str(g) for g in groups], dtype=object), return_inverse=True)
    n_units = int(unit_of.max()) + 1 if n else 0
    if n_units < k:
        what = "groups" if groups is not None else "labelled videos"
        raise FoldsError(f"{k} folds need at least {k} {what}, there are {n_units}")
    unit_labels = np.zeros((n_units, y.shape[1]), dtype=np.int64)
    np.add.at(unit_labels, unit_of, y)
    unit_sizes = np.bincount(unit_of, minlength=n_units)
    rng = np.random.default_rng(seed)
    rank = rng.permutation(n_units)  # random order among equal-sized units
    wanted_labels = np.tile(y.sum(axis=0) / k, (k, 1)).astype(np.float64)
    wanted_size = np.full(k, n / k)
    fold_of_unit = np.full(n_units, -1, dtype=np.int64)

    def place(units: np.ndarray, label: int | None) -> None:
        for unit in units[np.lexsort((rank[units], -unit_sizes[units]))]:
            wanted = wanted_labels[:, label] if label is not None else wanted_size
            fold = _pick_fold(wanted, wanted_size, rng)
            fold_of_unit[unit] = fold
            wanted_labels[fold] -= unit_labels[unit]
            wanted_size[fold] -= unit_sizes[unit]

    while True:
        open_units = fold_of_unit < 0
        left = unit_labels[open_units].sum(axis=0)
        active = np.flatnonzero(left > 0)
        if active.size == 0:
            break
        label = int(active[np.argmin(left[active])])  # the rarest label still to place
        place(np.flatnonzero(open_units & (unit_labels[:, label] > 0)), label)
    place(np.flatnonzero(fold_of_unit < 0), None)
    return fold_of_unit[unit_of]


def _labelled_videos(con) -> tuple[list[str], list, np.ndarray]:
    """(video ids, sites, label matrix) of the labelled videos with status 'ok', sorted by id."""
    labelled = read_labelled(con, None, required=False)
    readable = read_videos(con, ("video_id", "site"), ok_only=True, video_ids=labelled.video_ids.tolist())
    ids = [video_id for video_id, _ in readable]
    Y, _ = labelled.aligned(ids, labelled.classes)
    return ids, [site for _, site in readable], Y.astype(np.int8)


def _group_of(sites: Sequence) -> list[str]:
    return [site if site is not None else "" for site in sites]


def _store_folds(con, config: FoldsConfig, ids: list[str], sites: list, matrix: np.ndarray) -> FoldsSummary:
    """Assign ``ids`` to folds as ``config`` says and replace the scheme's rows, in one transaction."""
    groups = _group_of(sites) if config.group_by == "site" else None
    folds = stratified_folds(matrix, config.k, groups=groups, seed=config.seed)
    with transaction(con):
        write_fold_scheme(con, config.scheme, config.k, config.group_by, config.seed, ids, folds)
    unit = np.asarray(groups, dtype=object) if groups is not None else np.asarray(ids, dtype=object)
    return FoldsSummary(
        scheme=config.scheme, k=config.k, group_by=config.group_by, seed=config.seed,
        fold_videos=[int((folds == f).sum()) for f in range(config.k)],
        fold_groups=[len(set(unit[folds == f])) for f in range(config.k)],
        fold_positives=[int(matrix[folds == f].sum()) for f in range(config.k)],
    )


def make_folds(workspace: Workspace, config: FoldsConfig) -> FoldsSummary:
    """Assign the labelled videos (status 'ok') of ``workspace`` to folds and store the scheme.

    Raises:
        FoldsError: no labelled videos, or fewer videos / sites than folds.
    """
    with connect(workspace) as con:
        ids, sites, matrix = _labelled_videos(con)
        if not ids:
            raise FoldsError("no labelled videos with status 'ok' to split into folds. "
                             "Import labels first (jungle ingest DIR --labels FILE, or jungle labels FILE).")
        return _store_folds(con, config, ids, sites, matrix)


def _folds_command(k: int, group_by: str | None, seed: int, scheme: str) -> str:
    """The `jungle folds` command line that makes a scheme with these settings."""
    return (f"jungle folds {k}" + (f" --group-by {group_by}" if group_by else "") + f" --seed {seed}"
            + (f" --scheme {scheme}" if scheme != "default" else ""))


def auto_folds_config(request: AutoFolds, videos: int, sites: int) -> tuple[FoldsConfig | None, list[str]]:
    """The settings of an automatic scheme over ``videos`` labelled clips from ``sites`` sites.

    ``request.k`` folds; grouped by site (``group_by='auto'``) when there are at least
    :data:`SITES_PER_FOLD` sites per fold; fewer folds when there are fewer units (clips, or
    sites when grouped) than folds; no scheme below 2 units.

    Returns:
        (the config, or None when no scheme can be made; notes that say what differs from
        ``request.k`` folds and why).
    """
    notes: list[str] = []
    group_by = request.group_by
    if group_by == "auto":
        wanted = SITES_PER_FOLD * request.k
        group_by = "site" if sites >= wanted else None
        if group_by is None and sites > 1:
            notes.append(f"not grouped by site: the labelled clips come from {sites} sites, and grouping "
                         f"needs {wanted} ({SITES_PER_FOLD} per fold); "
                         f"`{_folds_command(min(request.k, sites), 'site', request.seed, request.scheme)}` "
                         "groups them anyway")
    units, unit_name = (sites, "sites") if group_by == "site" else (videos, "labelled clips")
    if units < 2:
        command = _folds_command(request.k, group_by, request.seed, request.scheme)
        notes.append(f"no fold scheme made: {units} {unit_name} with status 'ok' (cross-validation needs at "
                     f"least 2). Label more clips, then run `{command}`")
        return None, notes
    k = min(request.k, units)
    if k < request.k:
        notes.append(f"{k} folds, not {request.k}: there are only {units} {unit_name}")
    return FoldsConfig(k=k, group_by=group_by, seed=request.seed, scheme=request.scheme), notes


def ensure_default_folds(workspace: Workspace,
                         request: AutoFolds = AutoFolds()) -> tuple[FoldsSummary | None, list[str]]:
    """Make the scheme ``request.scheme`` automatically when the workspace lacks it (see the module docstring).

    Returns:
        (the scheme made, or None when it existed or cannot be made; notes for the user: how the
        scheme was made, why it differs from ``request.k`` folds, or which labelled clips an
        existing scheme lacks and how to remake it). Too few clips or sites is a note, not an error.
    """
    with connect(workspace) as con:
        ids, sites, matrix = _labelled_videos(con)
        existing = read_fold_scheme(con, request.scheme)
        if existing is not None:
            in_scheme = fold_assignment(con, request.scheme)
            outside = sum(1 for vid in ids if vid not in in_scheme)
            if not outside:
                return None, []
            k, group_by, seed = existing
            return None, [f"the {request.scheme!r} fold scheme was made before and lacks {outside} of the "
                          f"{len(ids)} labelled clips; it was left as it is. Remake it to include them: "
                          f"`{_folds_command(k, group_by, seed, request.scheme)}`"]
        config, notes = auto_folds_config(request, len(ids), len(set(_group_of(sites))))
        if config is None:
            return None, notes
        summary = _store_folds(con, config, ids, sites, matrix)
    grouping = f"grouped by site ({len(set(_group_of(sites)))} sites)" if config.group_by else "not grouped"
    made = (f"made the {config.scheme!r} fold scheme by itself: {config.k} stratified folds of the {len(ids)} "
            f"labelled clips, {grouping}, seed {config.seed}; `jungle folds` makes another")
    return summary, [made, *notes]
