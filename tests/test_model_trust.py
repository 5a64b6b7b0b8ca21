"""A model folder received from someone: nothing in it runs code or writes outside, a damaged or
foreign manifest is a one-line error, and feature sets that match the model's by version number
but not by configuration are refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from _errors import cli_error, says
from _stack_helpers import FAST, make_stack_workspace
from jungle.cli import app
from jungle.errors import ModelError
from jungle.meta.model_io import load_model
from jungle.meta.predict import predict
from jungle.meta.report import write_report
from jungle.meta.stack import StackConfig, stack
from jungle.meta.tuning import TuneConfig

runner = CliRunner()
REMAKE = "Re-make the model with `jungle stack`, or ask whoever sent the folder for the one jungle wrote, unchanged."


class _WritesMarker:
    """Unpickling this creates the file ``path``: what a crafted model file could do, made harmless."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _cli(*args) -> subprocess.CompletedProcess:
    """The real ``jungle`` command in a fresh process (``main()``: jungle's errors as one line)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def pca_model(tmp_path_factory):
    """A small workspace and the folder of a real model with a projection file (``--pca``)."""
    sw = make_stack_workspace(tmp_path_factory.mktemp("pca") / "ws", n_labelled=80, n_unlabelled=10)
    result = stack(sw.workspace, StackConfig(members=(("meta", "hist_lite0"),), pca=2, pca_min_columns=3,
                                             tune=TuneConfig(trials=0, **FAST)))
    return sw, sw.workspace.models_dir / result.model_id


def _received(folder, tmp_path):
    """A copy of the model folder outside any workspace, as if it came from someone else."""
    return shutil.copytree(folder, tmp_path / "received" / folder.name)


def _edit_manifest(folder, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.slow  # CLI subprocesses (~5 s)
def test_a_crafted_projection_file_runs_no_code_in_predict_or_report(pca_model, tmp_path):
    sw, folder = pca_model
    received = _received(folder, tmp_path)
    projection = received / "member-0-projection.npz"
    assert predict(sw.workspace, model=str(received), videos="all").videos == 90  # the real folder works

    marker, proof = tmp_path / "code-ran", tmp_path / "code-ran-proof"
    np.savez(projection, input_columns=np.array([_WritesMarker(str(marker))], dtype=object),
             names=np.array([_WritesMarker(str(marker))], dtype=object), explained=np.zeros(1))
    crafted = np.array([_WritesMarker(str(proof))], dtype=object)
    np.savez(tmp_path / "proof.npz", names=crafted)
    with np.load(tmp_path / "proof.npz", allow_pickle=True) as data:  # the attack is real: pickle runs it
        data["names"]
    assert proof.exists()

    error = (f"Error: projection file {projection} holds pickled Python objects, which jungle does not load "
             "because unpickling can run code. Re-make the model with `jungle stack` (with --pca as before).\n")
    for command in (["predict", "--model", received, "--videos", "all"], ["report", "--model", received]):
        done = _cli(*command, "-w", sw.workspace.root)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", error), command
        assert not marker.exists(), command


def test_projection_files_hold_no_python_objects(pca_model):
    _, folder = pca_model
    with np.load(folder / "member-0-projection.npz", allow_pickle=False) as data:
        kinds = {key: data[key].dtype.kind for key in data.files}
    assert kinds["names"] == kinds["input_columns"] == "U" and "O" not in kinds.values()


def test_a_damaged_projection_file_is_a_model_error(pca_model, tmp_path):
    sw, folder = pca_model
    received = _received(folder, tmp_path)
    path = received / "member-0-projection.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match=f"^projection file {path} is damaged or not a projection"):
        load_model(sw.workspace, str(received))
    with np.load(folder / "member-0-projection.npz") as data:  # widths that do not fit the columns
        arrays = {key: data[key] for key in data.files}
    np.savez(path, **{**arrays, "mean_0": arrays["mean_0"][:-1]})
    with pytest.raises(ModelError, match="do not fit its 8 input columns"):
        load_model(sw.workspace, str(received))


def _drop(key):
    return lambda m: m.pop(key)


def _set_member(key, value):
    return lambda m: m["members"][0].__setitem__(key, value)


@pytest.mark.parametrize("change, problem", [
    (_drop("classes"), "classes: Field required"),
    (_set_member("rounds", "many"),
     "members.0.rounds: Input should be a valid integer, unable to parse string as an integer"),
    (_set_member("file", "../../outside.json"),
     "members.0.file: must be a plain file name inside the model folder ending in .json, "
     "not '../../outside.json'"),
    (lambda m: m.__setitem__("model_id", "../../../home/x"), "model_id: String should match pattern"),
    (lambda m: m["feature_sets"][0].pop("config_key"), "manifest: a feature set has no config_key"),
    (lambda m: m["blend_weights"].append(1.0), "manifest: 2 blend weights for 1 members"),
])
def test_an_invalid_manifest_names_the_file_and_the_problem(stacked, tmp_path, change, problem):
    sw, result = stacked
    received = _received(sw.workspace.models_dir / result.model_id, tmp_path)
    _edit_manifest(received, change)
    with pytest.raises(ModelError) as caught:
        load_model(sw.workspace, str(received))
    message = str(caught.value)
    assert message.startswith(f"model manifest {received / 'manifest.json'} is not valid: {problem}")
    assert message.endswith(REMAKE) and "\n" not in message


@pytest.mark.parametrize("text, facts", [
    ('{"name": "not a model"}', ("not a jungle model manifest", "no model_id and members", "`jungle stack` saved")),
    ("[1, 2", ("not valid JSON", "line 1 column 6", REMAKE)),
    ('{"model_id": "m", "members": [], "manifest_version": 9}', ("version 9", "newer", "Upgrade jungle")),
])
def test_a_file_that_is_not_a_jungle_manifest_says_so(workspace, tmp_path, text, facts):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    with pytest.raises(ModelError) as caught:
        load_model(workspace, str(folder))
    says(str(caught.value), folder / "manifest.json", *facts)


@pytest.mark.slow  # a CLI subprocess (~5 s)
def test_report_on_a_broken_manifest_prints_one_line(stacked, tmp_path):
    sw, result = stacked
    received = _received(sw.workspace.models_dir / result.model_id, tmp_path)
    _edit_manifest(received, _drop("members"))
    done = _cli("report", "--model", received, "-w", sw.workspace.root)
    assert (done.returncode, done.stdout) == (1, "")
    cli_error(done.stderr, received / "manifest.json", "not a jungle model manifest", "`jungle stack` saved")


def test_a_manifest_written_before_fingerprints_still_predicts(stacked, tmp_path):
    sw, result = stacked
    received = _received(sw.workspace.models_dir / result.model_id, tmp_path)

    def version_1(manifest):
        manifest["model_id"] += "-v1"  # another id: a changed copy under the local id would shadow that model
        manifest.pop("manifest_version")
        manifest["feature_sets"] = [{"name": s["name"], "version": s["version"]} for s in manifest["feature_sets"]]
    _edit_manifest(received, version_1)
    loaded = load_model(sw.workspace, str(received))
    assert loaded.manifest.manifest_version == 1 and loaded.feature_sets()[0].config_key is None
    expected = predict(sw.workspace, model=result.model_id).probabilities
    assert np.array_equal(predict(sw.workspace, model=str(received)).probabilities, expected)


def test_predict_refuses_sets_of_the_same_version_made_with_another_configuration(stacked, tmp_path):
    sw, result = stacked
    folder = sw.workspace.models_dir / result.model_id
    manifest = json.loads((folder / "manifest.json").read_text())
    keys = {s["name"]: s["config_key"] for s in manifest["feature_sets"]}

    other = make_stack_workspace(tmp_path / "other", n_labelled=40, n_unlabelled=8, seed=1)  # meta@1, seed 1
    theirs = {s: _config_key(other.workspace, s) for s in keys}
    assert theirs["meta"] != keys["meta"] and theirs["hist_lite0"] != keys["hist_lite0"]
    out = runner.invoke(app, ["predict", "--model", str(folder), "--out", str(tmp_path / "s.csv"),
                              "-w", str(other.workspace.root)])
    assert out.exit_code == 1
    line = cli_error(out.output, '"hist_lite0@1"', '"meta@1"', result.model_id, "another configuration",
                     "`jungle stack`", "`jungle features show NAME`")
    for name in ("hist_lite0", "meta"):  # both fingerprints of both sets, this workspace's first
        assert line.index(theirs[name]) < line.index(keys[name]), line
    assert not (tmp_path / "s.csv").exists()

    same = make_stack_workspace(tmp_path / "same", n_labelled=40, n_unlabelled=8, seed=0)  # same configurations
    assert predict(same.workspace, model=str(folder)).videos == 8


def _config_key(workspace, name):
    from jungle.store import registry
    from jungle.store.db import connect

    with connect(workspace, read_only=True) as con:
        return registry.get(con, name).config_key


@pytest.mark.slow  # a CLI subprocess (~5 s)
def test_report_of_a_received_folder_opens_no_storage_it_names(stacked, tmp_path):
    sw, result = stacked
    received = _received(sw.workspace.models_dir / result.model_id, tmp_path)
    elsewhere = tmp_path / "elsewhere" / "optuna.db"
    _edit_manifest(received, lambda m: m["members"][0]["study"].__setitem__("storage", f"sqlite:///{elsewhere}"))
    _edit_manifest(received, lambda m: m.__setitem__("model_id", "received"))  # not the local model's id
    page = write_report(sw.workspace, model=str(received), out=tmp_path / "r.html").read_text()
    assert f"storage sqlite:///{elsewhere} not opened: the model folder is not one of this workspace&#x27;s " \
           "models and the storage is not the workspace&#x27;s own" in page
    assert not elsewhere.parent.exists()

    # A model of this workspace whose storage file is gone: the report says so and creates nothing.
    ws = type(sw.workspace).resolve(shutil.copytree(sw.workspace.root, tmp_path / "ws"))
    shutil.copytree(received, ws.models_dir / "moved-storage")
    page = write_report(ws, model="moved-storage", out=tmp_path / "r2.html").read_text()
    assert f"FileNotFoundError: the study storage file {elsewhere} does not exist" in page
    assert not elsewhere.parent.exists()
