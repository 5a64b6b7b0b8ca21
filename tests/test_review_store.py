"""Review label writes (labels + label_events, undo), the fast re-fit, and `jungle review` options."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from typer.testing import CliRunner

from _errors import cli_error
from _review_helpers import review_workspace
from jungle.cli import app
from jungle.meta.metrics import competition_log_loss
from jungle.review.labels_store import NothingToUndo, UnknownClasses, UnknownVideo, set_labels, undo_last
from jungle.meta.models.linear import Standardiser
from jungle.review.retrain import NotEnoughLabels, RetrainConfig, fit_predict, load_features, retrain
from jungle.store.db import connect
from jungle.store.predictions import read_out_of_sample

runner = CliRunner()


def _labels(ws, video_id):
    with connect(ws, read_only=True) as con:
        return con.execute("SELECT class, value, source FROM labels WHERE video_id = ? ORDER BY class",
                           [video_id]).fetchall()


def test_blank_workspace_gets_the_label_events_table(workspace):
    with connect(workspace) as con:
        names = [r[0] for r in con.execute("SELECT name FROM schema_version ORDER BY version").fetchall()]
        columns = [r[0] for r in con.execute("DESCRIBE label_events").fetchall()]
    assert "m003_label_events" in names
    assert columns == ["event_id", "changed_at", "video_id", "action", "classes", "source", "previous",
                       "previous_source", "session", "undoes", "reviewer"]


def test_set_then_undo_restores_the_imported_labels(stacked, tmp_path, media):
    rw = review_workspace(stacked, tmp_path, media, real_clips=0)
    ws, clip = rw.workspace, rw.stacked.labelled[0]
    imported = _labels(ws, clip)
    assert {r[2] for r in imported} == {"test"}

    set_labels(ws, clip, ["elephant"], session="s1")
    assert _labels(ws, clip) == [("blank", 0, "review"), ("chimpanzee", 0, "review"), ("duiker", 0, "review"),
                                 ("elephant", 1, "review")]
    set_labels(ws, clip, ["elephant", "duiker", "elephant"], session="s1")      # repeats collapse
    assert [r[0] for r in _labels(ws, clip) if r[1]] == ["duiker", "elephant"]
    with pytest.raises(NothingToUndo):
        undo_last(ws, "another-session")                                        # one run's undo is its own

    assert undo_last(ws, "s1").after.classes == ("elephant",)
    change = undo_last(ws, "s1")
    assert change.after.source == "test" and _labels(ws, clip) == imported
    with pytest.raises(NothingToUndo, match="nothing to undo"):
        undo_last(ws, "s1")

    new = rw.stacked.unlabelled[0]
    set_labels(ws, new, ["blank"], session="s1")
    undo_last(ws, "s1")
    assert _labels(ws, new) == []                                               # unlabelled again: no rows
    with connect(ws, read_only=True) as con:
        events = con.execute("SELECT video_id, action, classes, previous, previous_source, undoes FROM label_events "
                             "ORDER BY event_id").fetchall()
    assert [(e[1], e[2], e[3]) for e in events] == [
        ("set", ["elephant"], [imported_class(imported)]), ("set", ["duiker", "elephant"], ["elephant"]),
        ("undo", ["elephant"], ["duiker", "elephant"]), ("undo", [imported_class(imported)], ["elephant"]),
        ("set", ["blank"], None), ("undo", None, ["blank"]),
    ]
    assert [e[5] for e in events] == [None, None, 2, 1, None, 5]


def imported_class(rows) -> str:
    return next(r[0] for r in rows if r[1] == 1)


def test_unknown_class_or_video_writes_nothing(stacked, tmp_path, media):
    rw = review_workspace(stacked, tmp_path, media, real_clips=0)
    clip = rw.stacked.unlabelled[0]
    with pytest.raises(UnknownClasses, match=rf"'leopard' .*{clip}.* blank, chimpanzee, duiker, elephant"):
        set_labels(rw.workspace, clip, ["blank", "leopard"])
    with pytest.raises(UnknownVideo, match=r"no video with id 'nope'"):
        set_labels(rw.workspace, "nope", ["blank"])
    with connect(rw.workspace, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM label_events").fetchone()[0] == 0
    assert _labels(rw.workspace, clip) == []


def test_fit_predict_learns_single_and_multi_label_data():
    rng = np.random.default_rng(0)
    n, C = 300, 4
    hidden = rng.integers(0, C, n)
    Y = np.eye(C, dtype=np.int8)[hidden]
    X = np.concatenate([2.0 * Y + rng.normal(size=(n, C)), rng.normal(size=(n, 100))], axis=1)
    assert Standardiser.fit(X, components=16).transform(X).shape == (n, 16)   # wide sets: principal components
    Z = Standardiser.fit(X).transform(X)
    labelled = np.arange(n) < 200
    prior = competition_log_loss(Y[labelled], np.tile(Y[labelled].mean(axis=0), (200, 1)))
    single = fit_predict(Z, Y, labelled)
    assert single.mode == "multiclass" and single.oof_log_loss < 0.8 * prior
    assert np.allclose(single.P.sum(axis=1), 1.0)
    assert (single.P[~labelled].argmax(axis=1) == hidden[~labelled]).mean() > 0.6   # unlabelled: predicted
    Y2 = Y.copy()
    Y2[np.arange(0, n, 3), (hidden[::3] + 1) % C] = 1                                 # a third get a 2nd class
    X2 = 2.0 * Y2 + rng.normal(size=(n, C))
    multi = fit_predict(Standardiser.fit(X2).transform(X2), Y2, labelled)
    assert multi.mode == "binary" and multi.oof_log_loss < 0.8 * competition_log_loss(
        Y2[labelled], np.tile(Y2[labelled].mean(axis=0), (200, 1)))
    with pytest.raises(NotEnoughLabels, match="^only 3 labelled clip"):
        fit_predict(Z, Y, np.arange(n) < 3, RetrainConfig(folds=5))


@pytest.mark.slow  # two re-fits (~3 s each)
def test_retrain_saves_a_new_model_and_keeps_the_better_one_current(stacked, tmp_path, media):
    from jungle.meta.model_io import load_model, model_dir

    rw = review_workspace(stacked, tmp_path, media, real_clips=0)
    ws, new = rw.workspace, rw.stacked.unlabelled[:6]
    for clip in new:
        set_labels(ws, clip, ["blank"], session="s")
    first = retrain(ws)
    n_lab, n_all = len(rw.stacked.labelled), len(rw.stacked.labelled) + len(rw.stacked.unlabelled)
    assert (first.before.labelled, first.after.labelled, first.clips) == (n_lab, n_lab + 6, n_lab + 6)
    assert first.after.counts["blank"] - first.before.counts["blank"] == 6
    assert first.seconds < 60
    stacked_score, refit_score = first.scores
    assert stacked_score.model_id == rw.model_id and refit_score.model_id == first.refit_id
    Y = rw.stacked.Y
    prior = competition_log_loss(Y, np.tile(Y.mean(axis=0), (len(Y), 1)))
    assert refit_score.log_loss < prior                       # the re-fit learns from the features
    better = min(first.scores, key=lambda s: s.log_loss)
    assert first.current == better.model_id and [s.current for s in first.scores] == [s is better
                                                                                      for s in first.scores]
    # Nothing is lost: the stacked model is still there, and `refit` names the re-fit.
    assert load_model(ws, rw.model_id).manifest.kind == "stack"
    assert model_dir(ws, "refit").name == first.refit_id and model_dir(ws, "current").name == first.current
    with connect(ws, read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(DISTINCT video_id) FROM predictions WHERE model_id = ? "
                                 "GROUP BY kind", [first.refit_id]).fetchall())
    assert kinds == {"oof": n_lab + 6, "predict": n_all - n_lab - 6}
    # The saved re-fit predicts the unlabelled clips exactly as it did when it was fitted.
    loaded, video_ids, matrices = load_features(ws, first.refit_id)
    assert loaded.manifest.refit.base_model == rw.model_id and loaded.recipe == "refit"
    with connect(ws, read_only=True) as con:
        written = {(v, c): p for v, c, p, _, _ in read_out_of_sample(con, first.refit_id)}
    unlabelled = [i for i, v in enumerate(video_ids) if v in set(rw.stacked.unlabelled[6:])]
    assert len(unlabelled) == n_all - n_lab - 6
    assert np.allclose(loaded.predict_proba(matrices)[unlabelled],
                       [[written[video_ids[i], c] for c in loaded.classes] for i in unlabelled], atol=1e-12)

    second = retrain(ws)                                      # compared with whichever model is current now
    assert second.scores[0].model_id == first.current
    assert second.scores[0].log_loss == pytest.approx(better.log_loss)


def test_cli_retrain_prints_both_models_on_the_same_clips(stacked, tmp_path, media):
    rw = review_workspace(stacked, tmp_path, media, real_clips=0)
    set_labels(rw.workspace, rw.stacked.unlabelled[0], ["elephant"], session="s")
    out = runner.invoke(app, ["review", "--retrain", "-w", str(rw.workspace.root), "-f", "csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["model", "recipe", "oof_log_loss (241 labelled clips)", "current"]
    assert [r[0] for r in rows[1:]][0] == rw.model_id and rows[2][0].startswith("refit-") and rows[2][1] == "refit"
    assert sorted(r[3] for r in rows[1:]) == ["", "yes"] and all(0 < float(r[2]) < 1.4 for r in rows[1:])
    assert f"saved as {rows[2][0]}; current model: " in out.stderr and "jungle models use" in out.stderr
    table = runner.invoke(app, ["review", "--retrain", "-w", str(rw.workspace.root)])
    assert "(clips labelled)  240            241" in table.stdout and "elephant" in table.stdout, table.stdout


def test_cli_refuses_another_host_without_the_flag(stacked, tmp_path, media):
    rw = review_workspace(stacked, tmp_path, media, real_clips=0)
    out = runner.invoke(app, ["review", "--host", "0.0.0.0", "--no-browser", "-w", str(rw.workspace.root)])
    assert out.exit_code == 1
    cli_error(out.output, "--host 0.0.0.0", "other machines", "--allow-remote", "127.0.0.1")


def test_review_help():
    out = runner.invoke(app, ["review", "--help"])
    assert out.exit_code == 0 and "Review clips in a local web page" in out.output and "--retrain" in out.output
