"""Folds: multi-label stratification keeps class proportions, grouping never splits a site,
schemes stored in the workspace."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from jungle.ingest.folds import AutoFolds, FoldsConfig, FoldsError, auto_folds_config, stratified_folds
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
        schemes = con.execute("SELECT scheme, k, group_by, seed FROM fold_schemes").fetchall()
        assert schemes == [("default", 4, "site", 3)]
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


# --------------------------------------------------------------------------- the scheme a labels import makes
def _labelled_corpus(root, clips, n_files: int, per_site: int, classes=("gorilla", "chimpanzee", "blank")):
    """``n_files`` linked clips in sites of ``per_site`` and a long label file for them (relative keys)."""
    links = link_corpus(root / "corpus", clips, per_site=per_site, n_files=n_files)
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filepath", "label"])
        for i, link in enumerate(links):
            writer.writerow([link.relative_to(root).as_posix(), classes[i % len(classes)]])
    return root / "corpus", labels


def _schemes(ws) -> list[tuple]:
    with connect(Workspace.resolve(ws), read_only=True) as con:
        return con.execute("SELECT s.scheme, s.k, s.group_by, s.seed, count(f.video_id) FROM fold_schemes s "
                           "LEFT JOIN folds f USING (scheme) GROUP BY ALL ORDER BY 1").fetchall()


def test_auto_folds_settings_follow_clips_and_sites():
    def settings(videos, sites, **request):
        config, notes = auto_folds_config(AutoFolds(**request), videos, sites)
        return (None if config is None else (config.k, config.group_by)), notes

    assert settings(400, 10) == ((5, "site"), [])
    assert settings(400, 1) == ((5, None), [])
    assert settings(400, 9) == ((5, None), [
        "not grouped by site: the labelled clips come from 9 sites, and grouping needs 10 (2 per fold); "
        "`jungle folds 5 --group-by site --seed 0` groups them anyway"])
    assert settings(3, 1) == ((3, None), ["3 folds, not 5: there are only 3 labelled clips"])
    assert settings(1, 1, seed=4) == (None, [
        "no fold scheme made: 1 labelled clips with status 'ok' (cross-validation needs at least 2). "
        "Label more clips, then run `jungle folds 5 --seed 4`"])
    assert settings(400, 3, group_by="site") == ((3, "site"), ["3 folds, not 5: there are only 3 sites"])
    assert settings(400, 30, group_by=None) == ((5, None), [])
    with pytest.raises(FoldsError, match="cannot group folds by 'camera'; choose one of: auto, site"):
        AutoFolds(group_by="camera")


def test_ingest_with_labels_makes_the_default_scheme_by_site(media, tmp_path):
    corpus, labels = _labelled_corpus(tmp_path, zamba_clips(media), n_files=48, per_site=4)  # 12 sites
    ws = tmp_path / "ws"
    result = jungle("ingest", corpus, "-w", ws, "--no-stats", "-q", "--labels", labels,
                    "--classes", "gorilla,chimpanzee,blank", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert _schemes(ws) == [("default", 5, "site", 0, 48)]
    with connect(Workspace.resolve(ws), read_only=True) as con:
        assert con.execute("SELECT site FROM folds JOIN videos USING (video_id) GROUP BY site "
                           "HAVING count(DISTINCT fold) > 1").fetchall() == []
    assert "scheme,fold,videos,groups,positives" in result.stdout
    assert ("note: made the 'default' fold scheme by itself: 5 stratified folds of the 48 labelled clips, "
            "grouped by site (12 sites), seed 0; `jungle folds` makes another\n") in result.output

    more, more_labels = _labelled_corpus(tmp_path / "more", zamba_clips(media)[:4], n_files=4, per_site=4)
    again = jungle("ingest", more, "-w", ws, "--no-stats", "-q", "--labels", more_labels,
                   "--classes", "gorilla,chimpanzee,blank")
    assert again.exit_code == 0, again.output
    assert _schemes(ws) == [("default", 5, "site", 0, 48)]  # an existing scheme is never changed silently
    assert ("note: the 'default' fold scheme was made before and lacks 4 of the 52 labelled clips; it was left "
            "as it is. Remake it to include them: `jungle folds 5 --group-by site --seed 0`") in again.output
    remade = jungle("folds", "5", "--group-by", "site", "-w", ws)
    assert remade.exit_code == 0 and _schemes(ws) == [("default", 5, "site", 0, 52)]


def test_few_clips_get_fewer_folds_and_labels_command_makes_the_scheme(media, tmp_path):
    corpus, labels = _labelled_corpus(tmp_path, zamba_clips(media), n_files=3, per_site=3)
    ws = tmp_path / "ws"
    assert jungle("ingest", corpus, "-w", ws, "--no-stats", "-q").exit_code == 0
    assert _schemes(ws) == []  # no labels, no folds
    result = jungle("labels", labels, "-w", ws, "--classes", "gorilla,chimpanzee,blank", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert _schemes(ws) == [("default", 3, None, 0, 3)]
    assert "note: 3 folds, not 5: there are only 3 labelled clips\n" in result.output
    assert result.stdout.splitlines()[-4:] == ["scheme,fold,videos,groups,positives", "default,0,1,1,1",
                                               "default,1,1,1,1", "default,2,1,1,1"]
    relabel = jungle("labels", labels, "-w", ws, "--classes", "gorilla,chimpanzee,blank", "-f", "csv")
    assert relabel.exit_code == 0 and "note:" not in relabel.output  # the scheme covers every clip: kept
