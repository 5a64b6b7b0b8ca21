"""Folds: multi-label stratification keeps class proportions, grouping never splits a site,
schemes stored in the workspace."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from jungle.ingest.folds import FoldsConfig, FoldsError, stratified_folds
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _ingest_helpers import jungle, link_corpus, zamba_clips


def _primatrix_like(n: int, seed: int) -> np.ndarray:
    """Mostly one label per video (blank the largest class), 10 % with a second label."""
    rng = np.random.default_rng(seed)
    n_classes = 24
    share = np.r_[0.4, rng.dirichlet(np.ones(n_classes - 1)) * 0.6]
    y = np.eye(n_classes, dtype=np.int8)[rng.choice(n_classes, size=n, p=share)]
    extra = rng.random(n) < 0.1
    y[extra, rng.integers(0, n_classes, extra.sum())] = 1
    return y


def test_stratification_keeps_class_proportions_per_fold():
    y = _primatrix_like(600, seed=1)
    folds = stratified_folds(y, 5, seed=0)
    counts = np.stack([y[folds == f].sum(axis=0) for f in range(5)])
    assert np.abs(counts - y.sum(axis=0) / 5).max() <= 1.0  # every class within one video of its share
    assert np.bincount(folds).min() >= 600 // 5 - 6 and np.bincount(folds).max() <= 600 // 5 + 6
    shuffled = np.random.default_rng(0).permutation(np.arange(600) % 5)  # a plain random split, for contrast
    random_counts = np.stack([y[shuffled == f].sum(axis=0) for f in range(5)])
    assert np.abs(random_counts - y.sum(axis=0) / 5).max() > 2.0


def test_folds_are_seeded():
    y = _primatrix_like(300, seed=2)
    assert np.array_equal(stratified_folds(y, 4, seed=7), stratified_folds(y, 4, seed=7))
    assert not np.array_equal(stratified_folds(y, 4, seed=7), stratified_folds(y, 4, seed=8))


def test_grouped_folds_never_split_a_group_and_stay_stratified():
    y = _primatrix_like(800, seed=3)
    groups = np.random.default_rng(3).integers(0, 40, 800)
    folds = stratified_folds(y, 5, groups=groups, seed=0)
    for group in np.unique(groups):
        assert len(set(folds[groups == group])) == 1
    assert set(folds) == set(range(5))
    counts = np.stack([y[folds == f].sum(axis=0) for f in range(5)])
    common = y.sum(axis=0) >= 50  # classes common enough to judge proportions with 40 groups
    share = counts[:, common] / counts[:, common].sum(axis=0)
    assert np.abs(share - 0.2).max() < 0.12


def test_fold_errors():
    with pytest.raises(FoldsError, match="at least 2 folds"):
        FoldsConfig(k=1)
    with pytest.raises(FoldsError, match="cannot group folds by 'camera'"):
        FoldsConfig(group_by="camera")
    with pytest.raises(FoldsError, match="5 folds need at least 5 groups, there are 2"):
        stratified_folds(np.ones((10, 2)), 5, groups=["a"] * 5 + ["b"] * 5)


def test_ingest_with_grouped_folds_stores_scheme(media, tmp_path):
    clips = zamba_clips(media)
    links = link_corpus(tmp_path / "corpus", clips, per_site=5, n_files=40)  # 8 sites of 5 videos
    labels = tmp_path / "labels.csv"
    classes = ["gorilla", "chimpanzee", "blank"]
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filepath", "label"])
        for i, link in enumerate(links):
            writer.writerow([link.relative_to(tmp_path).as_posix(), classes[i % 3]])
    ws = tmp_path / "ws"
    result = jungle("ingest", tmp_path / "corpus", "-w", ws, "--no-stats", "-q", "--labels", labels,
                    "--classes", ",".join(classes), "--folds", "4", "--group-by", "site", "--seed", "3", "-f", "csv")
    assert result.exit_code == 0, result.output
    with connect(Workspace.resolve(ws), read_only=True) as con:
        assert con.execute("SELECT scheme, k, group_by, seed FROM fold_schemes").fetchall() == [("default", 4, "site", 3)]
        split = con.execute("SELECT site FROM folds JOIN videos USING (video_id) GROUP BY site "
                            "HAVING count(DISTINCT fold) > 1").fetchall()
        assert split == []
        sizes = con.execute("SELECT fold, count(*) FROM folds GROUP BY fold ORDER BY fold").fetchall()
    assert [f for f, _ in sizes] == [0, 1, 2, 3] and sum(n for _, n in sizes) == 40
    assert "scheme,fold,videos,groups,positives" in result.stdout

    again = jungle("folds", "5", "-w", ws, "--scheme", "plain", "-f", "csv")  # ungrouped, a second scheme
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[1:] == [f"plain,{f},8,8,8" for f in range(5)]
    status = jungle("status", "-w", ws)
    assert "default  4  site      40" in status.stdout and "plain    5            40" in status.stdout


def test_folds_without_labels_say_what_to_do(media, tmp_path):
    ws = tmp_path / "ws"
    assert jungle("ingest", zamba_clips(media)[0], "-w", ws, "--no-stats", "-q").exit_code == 0
    result = jungle("folds", "3", "-w", ws)
    assert result.exit_code == 1
    assert "no labelled videos with status 'ok'" in result.output and "jungle labels FILE" in result.output
