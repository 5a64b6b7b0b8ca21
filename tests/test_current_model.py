"""Models by name and one set of predictions, through real `jungle` processes on a real workspace.

A copy of the stacked workspace gets two recipe models (``metadata-only`` and ``first-place``,
really stacked); every ``--model`` option then takes a recipe name, ``latest`` or ``current``;
``jungle models use`` chooses the current model; ``jungle status`` lists models and predictions.
The ``current_predictions`` view, the CSV export and the review page's API give the same
probabilities for the same clip (out of fold for a labelled clip, with its label beside); SQL errors
keep DuckDB's hint; the ``events`` view exists on every connection.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

import duckdb
import pytest

from jungle.store.db import connect
from jungle.store.schema import MIGRATIONS
from jungle.store.workspace import Workspace

pytestmark = pytest.mark.slow  # real jungle processes: two stacks, a review server (~2 min)


def _jungle(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _sql(ws, query: str) -> list[dict]:
    return list(csv.DictReader(_ok(_jungle("sql", "-w", ws.root, "-f", "csv", query)).splitlines()))


@pytest.fixture(scope="module")
def recipes(stacked, tmp_path_factory):
    """(StackWorkspace, Workspace, {recipe: model id}): a copy of the stacked workspace with a
    metadata-only and then a first-place model stacked by the real CLI (first-place is current)."""
    sw, result = stacked
    ws = Workspace.resolve(shutil.copytree(sw.workspace.root, tmp_path_factory.mktemp("recipes") / "ws"))
    ids = {"features": result.model_id}
    for recipe in ("metadata-only", "first-place"):
        out = _ok(_jungle("stack", "--recipe", recipe, "--trials", "1", "--max-rounds", "40", "--no-build",
                          "--threads", "1", "-q", "-w", ws.root, "-f", "csv"))
        ids[recipe] = list(csv.DictReader(out.splitlines()))[-1]["model"]
    return sw, ws, ids


def test_recipe_names_latest_and_current_in_every_model_option(recipes, tmp_path):
    sw, ws, ids = recipes
    # predict, report, export: a recipe name is that recipe's newest model
    out = _ok(_jungle("predict", "--model", "metadata-only", "-w", ws.root))
    assert out.startswith(f"Predicted {len(sw.unlabelled)} unlabelled clips with model {ids['metadata-only']} "
                          "(metadata-only).\n")
    assert _ok(_jungle("report", "--model", "first-place", "-w", ws.root)).strip() == \
        str(ws.reports_dir / f"{ids['first-place']}.html")
    _ok(_jungle("export", "csv", tmp_path / "p.csv", "--model", "metadata-only", "--only-predicted", "-w", ws.root))
    assert json.loads((tmp_path / "p.export.json").read_text())["model"] == ids["metadata-only"]
    # latest is the newest saved, current the one chosen last: stacking chose first-place
    assert _sql(ws, "SELECT model_id FROM model_choices ORDER BY choice_id DESC LIMIT 1")[0]["model_id"] == \
        ids["first-place"]
    assert _ok(_jungle("predict", "--model", "latest", "-w", ws.root)).startswith(
        f"Predicted {len(sw.unlabelled)} unlabelled clips with model {ids['first-place']} (first-place).")
    # a recipe no model was made with says what to run; a name that is nothing lists the saved models
    missing = _jungle("predict", "--model", "third-place", "-w", ws.root)
    assert missing.returncode == 1 and missing.stderr.startswith(
        f'Error: no saved model of recipe "third-place" in {ws.models_dir}: run `jungle stack --recipe third-place` '
        "first."), missing.stderr
    unknown = _jungle("report", "--model", "fifth-place", "-w", ws.root)
    assert unknown.returncode == 1 and f"{ids['metadata-only']} (metadata-only)" in unknown.stderr

    # jungle models use: the default of every --model follows it
    chosen = _ok(_jungle("models", "use", "metadata-only", "-w", ws.root))
    assert chosen.startswith(f"current model: {ids['metadata-only']} (metadata-only), out-of-fold log loss 0.")
    assert _ok(_jungle("predict", "-w", ws.root)).startswith(
        f"Predicted {len(sw.unlabelled)} unlabelled clips with model {ids['metadata-only']} (metadata-only).")
    models = list(csv.DictReader(_ok(_jungle("models", "list", "-w", ws.root, "-f", "csv")).splitlines()))
    assert [(m["model"], m["recipe"], m["current"]) for m in models] == [
        (ids["features"], "-", ""), (ids["metadata-only"], "metadata-only", "yes"),
        (ids["first-place"], "first-place", "")]
    assert models[2]["members"] == "hist_lite0+meta"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", models[2]["created"])
    manifest = json.loads((ws.models_dir / ids["first-place"] / "manifest.json").read_text())
    assert (manifest["recipe"], manifest["kind"]) == ("first-place", "stack")
    _ok(_jungle("models", "use", "first-place", "-w", ws.root))


def test_status_lists_models_and_predictions_in_human_units(recipes):
    _, ws, ids = recipes
    out = _ok(_jungle("status", "-w", ws.root))
    assert "\nModels\n" in out and "\nPredictions\n" in out
    assert "Failed videos" not in out and "Featurize failures" not in out      # no empty failure tables
    assert re.search(r"^ok\s+270\s+257\.5 MiB$", out, re.MULTILINE), out
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", out)                         # no microseconds
    assert re.search(rf"^{ids['first-place']}\s+first-place\s+\d{{4}}-\d\d-\d\d \d\d:\d\d\s+0\.\d{{4}}\s+"
                     r"hist_lite0\+meta\s+yes$", out, re.MULTILINE), out
    assert re.search(rf"^{ids['first-place']}\s+oof\s+240\s+", out, re.MULTILINE), out


def test_current_predictions_agree_with_the_csv_export_and_the_review_page(recipes, tmp_path):
    sw, ws, ids = recipes
    model = ids["first-place"]
    _ok(_jungle("predict", "-w", ws.root))                              # the unlabelled clips
    _ok(_jungle("export", "csv", tmp_path / "p.csv", "-w", ws.root))
    with open(tmp_path / "p.csv", newline="") as handle:
        exported = {row["filename"]: row for row in csv.DictReader(handle)}
    view = _sql(ws, "SELECT v.filename, c.video_id, c.class, c.probability, c.kind, c.model_id, c.label "
                    "FROM current_predictions c JOIN videos v USING (video_id)")
    assert {r["model_id"] for r in view} == {model}
    assert len(view) == (len(sw.labelled) + len(sw.unlabelled)) * len(sw.classes)

    process = subprocess.Popen([sys.executable, "-m", "jungle.cli", "review", "--port", "0", "--no-browser",
                                "-w", str(ws.root)], stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stderr.readline()).group(1)
        labelled, unlabelled = sw.labelled[7], sw.unlabelled[3]
        for video_id, kind in ((labelled, "oof"), (unlabelled, "predict")):
            with urllib.request.urlopen(f"{url}api/clips/{video_id}", timeout=60) as response:
                page = json.load(response)
            rows = {r["class"]: r for r in view if r["video_id"] == video_id}
            row = exported[page["filename"]]
            assert {r["kind"] for r in rows.values()} == {kind} and row["probabilities"] == kind
            for c in sw.classes:
                sql = float(rows[c]["probability"])
                assert page["probabilities"][c] == round(min(max(sql, 1e-6), 1 - 1e-6), 6)
                assert row[c] == f"{page['probabilities'][c]:.6f}"
            assert row["top_class"] == page["top"][0][0] == max(rows, key=lambda c: float(rows[c]["probability"]))
            positives = sorted(c for c, r in rows.items() if r["label"] == "1")
            assert (page["labels"] or []) == positives and row["label"] == ";".join(positives)
            assert all((r["label"] == "") == (kind == "predict") for r in rows.values())
    finally:
        process.terminate()
        process.wait(timeout=20)

    # The question, asked of each: clips where chimpanzee is over 0.5, one model, one number.
    counted = _sql(ws, "SELECT count(*) AS n FROM current_predictions WHERE class = 'chimpanzee' "
                       "AND probability > 0.5")[0]["n"]
    assert int(counted) == sum(float(r["chimpanzee"]) > 0.5 for r in exported.values())
    # The history keeps every model and kind on every row.
    history = _sql(ws, "SELECT count(DISTINCT model_id) AS models, count(*) FILTER (WHERE model_id IS NULL "
                       "OR kind IS NULL) AS unnamed FROM predictions")[0]
    assert int(history["models"]) == 3 and history["unnamed"] == "0"


def test_sql_errors_keep_duckdbs_hint_and_events_exist_on_every_connection(recipes):
    _, ws, _ = recipes
    wrong = _jungle("sql", "-w", ws.root, "SELECT * FROM vidoes")
    assert wrong.returncode == 1
    assert wrong.stderr == ('Error: the query failed: Catalog Error: Table with name vidoes does not exist! '
                            'Did you mean "videos"?\n')
    column = _jungle("sql", "-w", ws.root, "SELECT filenam FROM videos")
    assert 'Candidate bindings: "filename"' in column.stderr and "LINE 1" not in column.stderr
    # no export ran in this workspace, and still:
    assert _sql(ws, "SELECT count(*) AS n FROM events")[0]["n"] == "0"      # (its clips have no times)
    assert [r["name"] for r in _sql(ws, "SELECT view_name AS name FROM duckdb_views() WHERE temporary "
                                        "AND view_name IN ('events', 'event_predictions', 'current_predictions') "
                                        "ORDER BY 1")] == ["current_predictions", "event_predictions", "events"]


def test_a_workspace_stacked_before_model_choices_gets_its_newest_stack_as_current(stacked, tmp_path):
    """The migration that adds model choices records the model whose out-of-fold rows are newest."""
    sw, result = stacked
    ws = Workspace.resolve(shutil.copytree(sw.workspace.root, tmp_path / "ws"))
    number = next(n for n, name, _ in MIGRATIONS if name == "m005_model_choices_reviewers")
    con = duckdb.connect(str(ws.db_path))
    con.execute("DROP TABLE model_choices")
    con.execute("DROP SEQUENCE model_choice_ids")
    con.execute("ALTER TABLE label_events DROP COLUMN reviewer")
    con.execute("DROP TABLE blank_filter")                  # made by a later migration (m006), run again too
    for table in ("count_runs", "clip_counts", "tracks", "track_boxes", "clip_class_counts", "count_labels",
                  "count_events"):                      # m007's, run again too
        con.execute(f"DROP TABLE {table}")
    con.execute("DROP SEQUENCE count_event_ids")
    con.execute("DELETE FROM schema_version WHERE version >= ?", [number])
    con.execute("INSERT INTO predictions SELECT 'review-' || model_id, kind, video_id, class, probability, "
                "created_at + INTERVAL 1 HOUR FROM predictions")  # an old review re-fit, newer: not a stack
    con.close()
    with connect(ws) as con:
        rows = con.execute("SELECT model_id, reason FROM model_choices").fetchall()
    assert rows == [(result.model_id, "the newest stacked model when model choices began to be recorded")]
