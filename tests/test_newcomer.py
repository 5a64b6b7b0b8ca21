"""What a new user meets on the way, through the real CLI on a tiny generated collection:
labels bring a fold scheme, `aggregate --kind meta` needs no embeddings, `stack --recipe all`
right after ingest builds the default pipeline's sets (with boxes and crops) and says which it stacked."""

from __future__ import annotations

import csv
import shutil

import pytest

from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _ingest_helpers import jungle

pytestmark = pytest.mark.slow  # end to end from ingest to a stack (~40 s)

FAST_STACK = ("--trials", "1", "--max-rounds", "10", "--threads", "1", "--pca", "8", "-q")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """24 two-frame demo clips from 2 cameras (one per class), ingested with their labels; tests copy it."""
    root = tmp_path_factory.mktemp("newcomer")
    made = jungle("demo", "make", root / "data", "--n-train", "24", "--n-test", "0", "--duration", "0.5",
                  "--fps", "4", "--min-per-class", "1", "--cameras", "2", "--workers", "1", "-q")
    assert made.exit_code == 0, made.output
    result = jungle("ingest", root / "data" / "train", "--labels", root / "data" / "train_labels.csv",
                    "-w", root / "ws", "-q", "--workers", "0")
    assert result.exit_code == 0, result.output
    return root / "ws", result.output


def _copy(ingested, tmp_path) -> Workspace:
    return Workspace.resolve(shutil.copytree(ingested[0], tmp_path / "ws"))


def _sets(ws: Workspace) -> list[str]:
    with connect(ws, read_only=True) as con:
        return [r[0] for r in con.execute("SELECT DISTINCT name FROM feature_sets ORDER BY 1").fetchall()]


def test_labels_bring_the_default_fold_scheme_and_say_how(ingested):
    ws, output = ingested
    with connect(Workspace.resolve(ws), read_only=True) as con:
        assert con.execute("SELECT scheme, k, group_by, seed FROM fold_schemes").fetchall() == [("default", 5, None, 0)]
        assert con.execute("SELECT count(*) FROM folds").fetchone()[0] == 24
    assert ("note: made the 'default' fold scheme by itself: 5 stratified folds of the 24 labelled clips, "
            "not grouped, seed 0; `jungle folds` makes another\n") in output
    assert ("note: not grouped by site: the labelled clips come from 2 sites, and grouping needs 10 (2 per "
            "fold); `jungle folds 2 --group-by site --seed 0` groups them anyway\n") in output


def test_aggregate_kind_meta_builds_meta_alone(ingested, tmp_path):
    ws = _copy(ingested, tmp_path)
    result = jungle("aggregate", "--kind", "meta", "-w", ws.root, "-q", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert [line.split(",")[:4] for line in result.stdout.splitlines()[:2]] == [
        ["name", "version", "kind", "rows"], ["meta", "1", "video", "24"]]
    assert _sets(ws) == ["meta"]  # no embeddings were needed, none were made


def test_stack_all_right_after_ingest_builds_the_default_sets_and_names_them(ingested, tmp_path):
    ws = _copy(ingested, tmp_path)
    result = jungle("stack", "--recipe", "all", "-w", ws.root, *FAST_STACK, "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()))
    video_sets = ["attn_crops_lite0", "attn_lite0", "attnvec_crops_lite0", "attnvec_lite0", "det_boxes",
                  "hist_crops_lite0", "hist_lite0", "meta", "minmax_crops_lite0", "minmax_lite0",
                  "minmax_stages_crops_lite0", "minmax_stages_lite0"]          # with the boxes' and the crops'
    assert rows[0]["features"] == ",".join(f"{name}@1" for name in video_sets)
    assert _sets(ws) == sorted(video_sets + ["boxes", "crops_lite0", "frameprobs_crops_lite0", "frameprobs_lite0",
                                             "lite0"])
    without_building = jungle("stack", "--recipe", "all", "--no-build", "-w", _copy(ingested, tmp_path / "b").root,
                              *FAST_STACK)
    assert without_building.exit_code == 1
    assert "stacks every video-level feature set, but the workspace has none" in without_building.output
