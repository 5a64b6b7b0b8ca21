"""`jungle predict`: saved model round trip, submission format, predictions table, version refusal."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import polars as pl
from typer.testing import CliRunner

from _errors import cli_error
from _stack_helpers import write_set
from jungle.cli import app
from jungle.meta.models.blend import ClipLimits, blend
from jungle.meta.dataset import feature_matrix, load_training_data, parse_refs
from jungle.meta.level2 import Level2Classifier
from jungle.meta.predict import predict
from jungle.store import registry
from jungle.store.db import connect

runner = CliRunner()


def test_saved_model_predicts_exactly_what_a_fresh_fit_predicts(stacked, tmp_path):
    sw, result = stacked
    ws = sw.workspace
    predicted = predict(ws, model="latest", out=tmp_path / "submission.csv")
    assert predicted.model_id == result.model_id and predicted.videos == len(sw.unlabelled)

    # Refit the level-2 model from the manifest on the same data, in memory, and predict.
    manifest = json.loads((ws.models_dir / result.model_id / "manifest.json").read_text())
    entry = manifest["members"][0]
    data = load_training_data(ws, parse_refs("meta,hist_lite0"))
    assert data.columns == entry["columns"]
    fresh = Level2Classifier(**{**entry["params"], "n_jobs": 1}).fit(data.X, data.Y)
    with connect(ws, read_only=True) as con:
        sets = [registry.get(con, "meta"), registry.get(con, "hist_lite0")]
    X_new, _, _ = feature_matrix(ws, sets, predicted.video_ids, entry["columns"])
    expected = ClipLimits.from_json(manifest["clip"]).apply(blend([fresh.predict_proba(X_new)], [1.0]))
    assert np.array_equal(predicted.probabilities, expected)

    # The CSV holds the same numbers, exactly, in the competition's format.
    with open(tmp_path / "submission.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["filename", *sw.classes]
    filenames = [r[0] for r in rows[1:]]
    first = len(sw.labelled)
    assert filenames == sorted(f"clip{i:05d}.mp4" for i in range(first, first + len(sw.unlabelled)))
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert np.array_equal(values, predicted.probabilities)  # rows in filename order, like video_ids
    assert np.all((values > 0) & (values < 1))


def test_predictions_table_is_reachable_from_sql(stacked):
    sw, result = stacked
    predict(sw.workspace, videos="all")
    query = ("SELECT kind, count(DISTINCT video_id) AS videos, count(DISTINCT class) AS classes FROM predictions "
             f"WHERE model_id = '{result.model_id}' GROUP BY kind ORDER BY kind")
    out = runner.invoke(app, ["sql", query, "-w", str(sw.workspace.root), "-f", "csv"])
    assert out.exit_code == 0, out.output
    n = len(sw.labelled) + len(sw.unlabelled)
    assert out.output == f"kind,videos,classes\noof,{len(sw.labelled)},4\npredict,{n},4\n"


def test_predict_refuses_a_feature_set_version_the_model_was_not_trained_on(stacked, tmp_path):
    sw, result = stacked
    root = tmp_path / "ws"
    shutil.copytree(sw.workspace.root, root)
    ws = type(sw.workspace).resolve(root)
    table = registry.read_video_table(ws, _current(ws, "hist_lite0"))
    write_set(ws, "hist_lite0", {"bins": 20}, table)  # a new configuration: version 2
    out = runner.invoke(app, ["predict", "--out", str(tmp_path / "s.csv"), "-w", str(root)])
    assert out.exit_code == 1
    cli_error(out.output, '"hist_lite0"', "version 2", result.model_id, "version 1", "`jungle stack`",
              "`jungle predict --model ID`")
    assert not (tmp_path / "s.csv").exists()


def _current(ws, name):
    with connect(ws, read_only=True) as con:
        return registry.get(con, name)


def test_predict_without_a_model_or_videos_says_what_to_do(stacked, tmp_path):
    from jungle.store.workspace import Workspace

    empty = Workspace.resolve(tmp_path / "empty")
    with connect(empty):
        pass
    out = runner.invoke(app, ["predict", "-w", str(empty.root)])
    assert out.exit_code == 1
    cli_error(out.output, empty.models_dir, "`jungle stack --features ...`", "`jungle stack --recipe NAME`")
    sw, _ = stacked
    bad = runner.invoke(app, ["predict", "--videos", "some", "-w", str(sw.workspace.root)])
    assert bad.exit_code == 1 and "--videos must be unlabelled, labelled or all" in bad.output


def test_cli_predict_writes_submission(stacked, tmp_path):
    sw, result = stacked
    out = runner.invoke(app, ["predict", "--model", result.model_id, "--out", str(tmp_path / "sub.csv"),
                              "-w", str(sw.workspace.root), "-f", "csv"])
    assert out.exit_code == 0, out.output
    frame = pl.read_csv(tmp_path / "sub.csv")
    assert frame.columns == ["filename", *sw.classes] and frame.height == len(sw.unlabelled)
    # the most probable class of each clip, counted: what the submission says
    top = pl.Series(np.asarray(sw.classes)[frame.select(sw.classes).to_numpy().argmax(axis=1)]).value_counts()
    counts = dict(zip(top[:, 0].to_list(), top[:, 1].to_list()))
    lines = out.output.splitlines()
    assert lines[0] == "top_class,clips" and {c: int(n) for c, n in (r.split(",") for r in lines[1:])} == counts
    table = runner.invoke(app, ["predict", "--model", result.model_id, "--out", str(tmp_path / "sub.csv"),
                                "-w", str(sw.workspace.root)])
    first, second, third = table.output.splitlines()
    assert first == f"Predicted {len(sw.unlabelled)} unlabelled clips with model {result.model_id}."
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    assert second.startswith(f"Most probable class: {ranked[0][0]} {ranked[0][1]}, ")
    assert third == (f"Written: {len(sw.unlabelled) * 4} rows to the predictions table (model {result.model_id}, "
                     f"kind 'predict'); the submission CSV {tmp_path / 'sub.csv'}.")
