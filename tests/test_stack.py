"""`jungle stack` on a real, small, learnable workspace: real XGBoost fits, real Optuna studies."""

from __future__ import annotations

import json

import numpy as np
import optuna
import polars as pl
import pytest
from typer.testing import CliRunner

from _errors import cli_error
from _stack_helpers import FAST, make_stack_workspace
from jungle.cli import app
from jungle.errors import InputError
from jungle.meta.metrics import competition_log_loss
from jungle.meta.stack import StackConfig, stack
from jungle.meta.tuning import TuneConfig

runner = CliRunner()


def _prior_log_loss(Y: np.ndarray) -> float:
    return competition_log_loss(Y, np.tile(Y.mean(axis=0), (len(Y), 1)))


def test_stack_learns_saves_and_keeps_its_study_in_the_rdb_file(stacked):
    sw, result = stacked
    ws = sw.workspace
    assert result.label_mode == "multiclass" and result.videos == len(sw.labelled)
    assert result.log_loss < 0.8 * _prior_log_loss(sw.Y)
    assert result.accuracy > sw.Y.mean(axis=0).max() + 0.1  # beats always-the-commonest-class

    study_name = result.members[0].tuning.study_name
    studies = optuna.get_all_study_summaries(f"sqlite:///{ws.root / 'optuna.db'}")
    assert [s.study_name for s in studies] == [study_name]
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{ws.root / 'optuna.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 4
    assert all(t.user_attrs["trees_built"] > 0 for t in finished)

    manifest = json.loads((ws.models_dir / result.model_id / "manifest.json").read_text())
    assert [(s["name"], s["version"]) for s in manifest["feature_sets"]] == [("hist_lite0", 1), ("meta", 1)]
    assert manifest["classes"] == list(sw.classes)
    assert "meta.codec" in manifest["members"][0]["dropped_columns"]  # text column left out
    assert (ws.models_dir / "latest").read_text().strip() == result.model_id
    assert (ws.models_dir / result.model_id / "member-0.json").exists()

    oof = pl.read_parquet(ws.models_dir / result.model_id / "oof.parquet")
    P = np.asarray(oof["probability"].to_list())
    assert competition_log_loss(np.asarray(oof["label"].to_list()), P) == pytest.approx(result.log_loss)

    query = (f"SELECT count(*) AS n, count(DISTINCT video_id) AS videos FROM predictions "
             f"WHERE model_id = '{result.model_id}' AND kind = 'oof'")
    out = runner.invoke(app, ["sql", query, "-w", str(ws.root), "-f", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output == f"n,videos\n{len(sw.labelled) * len(sw.classes)},{len(sw.labelled)}\n"


def _run(root, **tune):
    sw = make_stack_workspace(root)
    config = StackConfig(members=(("meta", "hist_lite0"),), tune=TuneConfig(**{"trials": 2, "seed": 7, **FAST, **tune}))
    return sw, stack(sw.workspace, config)


@pytest.mark.slow  # two tuned stacks (~12 s)
def test_same_seed_same_study_same_probabilities(tmp_path):
    first_ws, first = _run(tmp_path / "a")
    second_ws, second = _run(tmp_path / "b")
    assert first.members[0].tuning.params == second.members[0].tuning.params
    assert first.log_loss == second.log_loss
    def oof(sw, r):
        return pl.read_parquet(sw.workspace.models_dir / r.model_id / "oof.parquet")["probability"].to_list()

    assert oof(first_ws, first) == oof(second_ws, second)
    # Re-running the same configuration resumes the study: it already holds its 2 trials.
    again = stack(first_ws.workspace, StackConfig(members=(("meta", "hist_lite0"),),
                                                  tune=TuneConfig(trials=2, seed=7, **FAST)))
    assert again.members[0].tuning.trials == 2
    assert again.members[0].tuning.study_name == first.members[0].tuning.study_name


@pytest.mark.slow  # tuning in two worker processes (~12 s)
def test_two_worker_processes_tune_one_study(tmp_path):
    sw, result = _run(tmp_path / "ws", trials=3, jobs=2, study_name="shared")
    study = optuna.load_study(study_name="shared", storage=sw.workspace.optuna_url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 3 <= len(finished) <= 4  # each worker stops once the study holds 3; one may overlap
    assert result.members[0].tuning.trials == len(finished)


def test_several_labels_per_video_fit_one_binary_model_per_class(tmp_path):
    sw = make_stack_workspace(tmp_path / "ws", multilabel=True)
    result = stack(sw.workspace, StackConfig(members=(("hist_lite0",),), tune=TuneConfig(trials=0, **FAST)))
    assert result.label_mode == "binary"
    assert result.log_loss < 0.85 * _prior_log_loss(sw.Y)
    oof = pl.read_parquet(sw.workspace.models_dir / result.model_id / "oof.parquet")
    sums = np.asarray(oof["probability"].to_list()).sum(axis=1)
    assert sums.std() > 0.01  # independent per-class probabilities, not a softmax
    booster = json.loads((sw.workspace.models_dir / result.model_id / "member-0.json").read_text())
    assert booster["learner"]["learner_model_param"]["num_target"] == str(len(sw.classes))

    forced = StackConfig(members=(("hist_lite0",),), label_mode="multiclass", tune=TuneConfig(trials=0, **FAST))
    with pytest.raises(ValueError, match="label_mode 'multiclass' needs exactly one label per video"):
        stack(sw.workspace, forced)


def test_cli_blends_two_models_and_clips(tmp_path):
    sw = make_stack_workspace(tmp_path / "ws")
    args = ["stack", "--features", "meta", "--features", "hist_lite0", "--trials", "0", "--max-rounds", "60",
            "--early-stopping", "5", "--threads", "1", "--clip", "fixed", "-q", "-w", str(sw.workspace.root),
            "-f", "json"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["features"] for r in rows[:2]] == ["meta@1", "hist_lite0@1"]
    assert sum(r["weight"] for r in rows[:2]) == pytest.approx(1.0)
    assert rows[1]["weight"] > rows[0]["weight"]  # the stronger set weighs more
    manifest = json.loads(next(sw.workspace.models_dir.glob("*/manifest.json")).read_text())
    assert manifest["clip"]["low"] == [1e-4] * len(sw.classes)


def test_recipe_names_what_is_missing(tmp_path):
    sw = make_stack_workspace(tmp_path / "ws")
    out = runner.invoke(app, ["stack", "--recipe", "third-place", "--trials", "0", "--no-build",
                              "-w", str(sw.workspace.root)])
    assert out.exit_code == 1
    cli_error(out.output, '"third-place"', "minmax_stages_lite0, attn_lite0", "hist_lite0, meta",
              "`jungle stack --recipe third-place`", "--no-build", "`jungle featurize`", "`jungle aggregate`")
    unknown = runner.invoke(app, ["stack", "--recipe", "fourth-place", "-w", str(sw.workspace.root)])
    assert unknown.exit_code == 1
    cli_error(unknown.output, '"fourth-place"', "metadata-only, min-max, first-place, third-place, all")
    missing = runner.invoke(app, ["stack", "--features", "meta,nope", "-w", str(sw.workspace.root)])
    assert missing.exit_code == 1
    assert "feature set(s) nope not found in the workspace" in missing.output


def test_recipe_metadata_only_and_all(tmp_path):
    sw = make_stack_workspace(tmp_path / "ws")
    fast = TuneConfig(trials=0, **FAST)
    meta_only = stack(sw.workspace, StackConfig(recipe="metadata-only", tune=fast))
    # stack() builds nothing: it stacks what exists
    everything = stack(sw.workspace, StackConfig(recipe="all", tune=fast))
    assert [n for n, _ in meta_only.members[0].features] == ["meta"]
    assert [n for n, _ in everything.members[0].features] == ["hist_lite0", "meta"]
    assert everything.log_loss < meta_only.log_loss


def test_stack_help_lists_its_options():
    out = runner.invoke(app, ["stack", "--help"])
    assert out.exit_code == 0
    for option in ("--features", "--recipe", "--trials", "--storage", "--seed", "--jobs", "--no-prune"):
        assert option in out.output


def test_recipes_take_several_encoders_and_the_pipeline_plans_their_sets():
    from jungle.meta.recipes import get_recipe, recipe_build_sets
    from jungle.pipeline import SetPlan, packaged_encoders, plan_feature_sets

    third = get_recipe("third-place")
    assert third.member_names("lite0,lite1") == (("minmax_stages_lite0", "minmax_stages_lite1", "meta"),
                                                 ("attn_lite0", "attn_lite1", "meta"))
    assert third.member_names("lite0") == (("minmax_stages_lite0", "meta"), ("attn_lite0", "meta"))
    wanted = recipe_build_sets(get_recipe("all"), "lite0, lite1,lite0")
    assert wanted == ["meta", "hist_lite0", "hist_lite1", "minmax_lite0", "minmax_lite1", "attn_lite0", "attn_lite1"]
    assert plan_feature_sets(wanted) == [
        SetPlan(None, ("meta",)), SetPlan("lite0", ("frame-head", "stats", "minmax", "attention")),
        SetPlan("lite1", ("frame-head", "stats", "minmax", "attention"))]
    assert {"lite0", "lite1", "lite2"} <= packaged_encoders()
    with pytest.raises(InputError, match='no pipeline stage makes feature set "umap_lite0"'):
        plan_feature_sets(["umap_lite0"])
