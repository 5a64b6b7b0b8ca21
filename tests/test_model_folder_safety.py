"""A model folder received from someone cannot crash native code, exhaust memory, read outside the
folder, give probabilities outside [0, 1], or replace a local model's results: every file is checked
before XGBoost or NumPy sees it, and each refusal is one line naming the file.

Each attack runs the real ``jungle`` command in its own process on a crafted copy of a real saved
model (the XGBoost segfaults are first shown to be real: XGBoost alone, in a subprocess, dies)."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from _stack_helpers import FAST, make_stack_workspace
from jungle.errors import ModelError
from jungle.meta.model_io import load_model
from jungle.meta.stack import StackConfig, stack
from jungle.meta.tuning import TuneConfig

pytestmark = pytest.mark.slow  # real stacks and CLI subprocesses on crafted model folders: ~1-9 s a test

MEMORY_CAP = 3 * 2**30
"""Address-space limit of the crafted runs: a refusal needs far less, an allocation of a crafted size far more."""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _jungle(*args, timeout: float = 120, cap_memory: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, preexec_fn=_limit_memory if cap_memory else None)


def _one_line_error(done: subprocess.CompletedProcess, *facts: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr[-2000:]
    for fact in facts:
        assert fact in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(workspace, folder) of a real multiclass model with a projection file (``--pca``)."""
    sw = make_stack_workspace(tmp_path_factory.mktemp("safety") / "ws", n_labelled=80, n_unlabelled=10)
    result = stack(sw.workspace, StackConfig(members=(("meta", "hist_lite0"),), pca=2, pca_min_columns=3,
                                             tune=TuneConfig(trials=0, **FAST)))
    return sw.workspace, sw.workspace.models_dir / result.model_id


def _received(folder: Path, tmp_path: Path, model_id: str = "received-model") -> Path:
    """A copy of ``folder`` outside the workspace, under another model id (so only the crafted file matters)."""
    copy = Path(shutil.copytree(folder, tmp_path / "received" / model_id))
    _edit(copy / "manifest.json", lambda m: m.__setitem__("model_id", model_id))
    return copy


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _predict(ws, folder, **kwargs) -> subprocess.CompletedProcess:
    return _jungle("predict", "--model", folder, "--videos", "all", "-w", ws.root, **kwargs)


def _refused(ws, folder, *facts: str) -> None:
    """``load_model`` (what predict, report and review call first) refuses ``folder`` in one line with ``facts``."""
    with pytest.raises(ModelError) as caught:
        load_model(ws, str(folder))
    message = str(caught.value)
    assert "\n" not in message and all(fact in message for fact in facts), message


def test_the_unchanged_received_copy_predicts(model, tmp_path):
    ws, folder = model
    done = _predict(ws, _received(folder, tmp_path))
    assert done.returncode == 0 and "received-model" in done.stdout, done.stderr


# --------------------------------------------------------------------------- XGBoost JSON that crashes XGBoost
def _tree0(change):
    return lambda doc: change(doc["learner"]["gradient_booster"]["model"]["trees"][0])


def _cycle(tree) -> None:
    child = tree["left_children"][0]
    tree["left_children"][child], tree["right_children"][child] = 0, tree["right_children"][0]


CRASHES = {
    "child-out-of-range": (_tree0(lambda t: t["left_children"].__setitem__(0, 10**6)), "has children 1000000"),
    "self-loop": (_tree0(lambda t: t["left_children"].__setitem__(0, 0)), "node 0 has children 0"),
    "cycle": (_tree0(_cycle), "has children 0"),
    "negative-child": (_tree0(lambda t: t["right_children"].__setitem__(0, -5)), "and -5"),
    "split-past-features": (_tree0(lambda t: t["split_indices"].__setitem__(0, 10**6)),
                            "splits on feature 1000000, but the model has"),
}


@pytest.mark.slow
@pytest.mark.parametrize("attack", list(CRASHES))
def test_a_crafted_booster_is_refused_before_xgboost_reads_it(model, tmp_path, attack):
    ws, folder = model
    received = _received(folder, tmp_path)
    change, fact = CRASHES[attack]
    _edit(received / "member-0.json", change)
    proof = subprocess.run(  # the attack is real: XGBoost itself dies of this file
        [sys.executable, "-c", "import sys, numpy, xgboost; b = xgboost.Booster(model_file=sys.argv[1]); "
         "b.predict(xgboost.DMatrix(numpy.ones((4, b.num_features()), dtype='float32')))",
         str(received / "member-0.json")], capture_output=True, timeout=120)
    assert proof.returncode < 0, f"XGBoost survived {attack}: {proof.returncode}"
    for command in ("predict", "report") if attack == "self-loop" else ("predict",):
        args = ("--videos", "all") if command == "predict" else ("--out", tmp_path / "r.html")
        done = _jungle(command, "--model", received, *args, "-w", ws.root)
        _one_line_error(done, f"model file {received / 'member-0.json'} is not a booster jungle can load safely",
                        fact)


@pytest.mark.parametrize("change, fact", [
    (lambda d: d["learner"]["learner_model_param"].__setitem__("num_class", "100000000"), "num_class 100000000"),
    (lambda d: d["learner"]["gradient_booster"]["model"]["tree_info"].__setitem__(0, 99), "tree_info names an output"),
    (lambda d: d["learner"]["attributes"].__setitem__("jungle_rare_calibration", '{"0": [999, 1.0, 0.0]}'),
     "a rare-calibration column 999 is outside"),
    (lambda d: d["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"].__setitem__(0, float("nan")),
     "split_conditions holds a value that is not a finite number"),
    (lambda d: d["learner"]["objective"].__setitem__("name", "reg:squarederror"), "its objective is"),
])
def test_booster_fields_outside_their_range_are_refused(model, tmp_path, change, fact):
    ws, folder = model
    received = _received(folder, tmp_path)
    _edit(received / "member-0.json", change)
    _refused(ws, received, str(received / "member-0.json"), fact)


def test_every_booster_jungle_saves_passes_the_check(model, tmp_path):
    """Multiclass (with a projection) and binary (one model per class)."""
    import xgboost

    from jungle.meta.model_check import check_booster

    ws, folder = model
    sw = make_stack_workspace(tmp_path / "multi", n_labelled=80, n_unlabelled=4, multilabel=True)
    result = stack(sw.workspace, StackConfig(members=(("meta", "hist_lite0"),), label_mode="binary",
                                             tune=TuneConfig(trials=0, **FAST)))
    for path, mode in ((folder / "member-0.json", "multiclass"),
                       (sw.workspace.models_dir / result.model_id / "member-0.json", "binary")):
        features = xgboost.Booster(model_file=str(path)).num_features()
        assert check_booster(path.read_bytes(), path, mode, 4) == features
        with pytest.raises(ModelError, match="but a .* model needs"):
            check_booster(path.read_bytes(), path, "binary" if mode == "multiclass" else "multiclass", 4)


# --------------------------------------------------------------------------- files that are not what they seem
def test_a_manifest_symlinked_to_dev_zero_is_refused_at_once(model, tmp_path):
    ws, folder = model
    received = _received(folder, tmp_path)
    (received / "manifest.json").unlink()
    (received / "manifest.json").symlink_to("/dev/zero")
    _one_line_error(_predict(ws, received, timeout=60, cap_memory=True), str(received / "manifest.json"),
                    "is a symbolic link")


def test_a_fifo_as_a_member_file_hangs_nothing(model, tmp_path):
    ws, folder = model
    received = _received(folder, tmp_path)
    (received / "member-0.json").unlink()
    os.mkfifo(received / "member-0.json")
    _one_line_error(_predict(ws, received, timeout=60), str(received / "member-0.json"),
                    "is not a regular file (a FIFO)")


def test_a_fifo_as_the_oof_file_hangs_no_report(model, tmp_path):
    ws, folder = model
    received = _received(folder, tmp_path)
    (received / "oof.parquet").unlink()
    os.mkfifo(received / "oof.parquet")
    _one_line_error(_jungle("report", "--model", received, "--out", tmp_path / "r.html", "-w", ws.root, timeout=60),
                    str(received / "oof.parquet"), "is not a regular file (a FIFO)")


def test_a_member_symlinked_outside_the_folder_is_refused(model, tmp_path):
    ws, folder = model
    received = _received(folder, tmp_path)
    outside = tmp_path / "elsewhere.json"
    shutil.move(received / "member-0.json", outside)
    (received / "member-0.json").symlink_to(outside)
    _one_line_error(_predict(ws, received), str(received / "member-0.json"), "is a symbolic link")


def test_an_oversized_manifest_is_refused_unread(model, tmp_path):
    ws, folder = model
    received = _received(folder, tmp_path)
    with open(received / "manifest.json", "a") as handle:
        handle.write(" " * (5 * 2**20))
    _one_line_error(_predict(ws, received), str(received / "manifest.json"), "more than the 4194304")


def _npz_with_header(arrays: dict, crafted: str, shape: tuple) -> bytes:
    """An .npz of ``arrays`` whose member ``crafted`` declares ``shape`` but holds 16 bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            if name == crafted:
                np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": shape})
                member.write(b"\0" * 16)
            else:
                np.lib.format.write_array(member, array, allow_pickle=False)
            archive.writestr(name + ".npy", member.getvalue())
    return out.getvalue()


def test_an_npz_with_a_huge_declared_shape_allocates_nothing(model, tmp_path):
    ws, folder = model
    received = _received(folder, tmp_path)
    path = received / "member-0-projection.npz"
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    path.write_bytes(_npz_with_header(arrays, "components_0", (2**20, 2**20)))  # 8 TiB declared
    _one_line_error(_predict(ws, received, cap_memory=True), str(path), "components_0.npy",
                    "declares 1099511627776 elements")


# --------------------------------------------------------------------------- values that break the maths
@pytest.mark.parametrize("change, fact", [
    (lambda m: m["clip"].update(low=[2.0] * 4, high=[3.0] * 4), "clip limits [2.0, 3.0]"),
    (lambda m: m["clip"].update(low=[-1.0] * 4), "clip limits [-1.0, 1.0]"),
    (lambda m: m["clip"].update(low=[0.9] * 4, high=[0.1] * 4), "clip limits [0.9, 0.1]"),
    (lambda m: m.__setitem__("blend_weights", [float("nan")]), "blend weights [nan]"),
    (lambda m: m.__setitem__("blend_weights", [0.0]), "blend weights [0.0]"),
    (lambda m: m["members"][0]["params"].__setitem__("rare_weight", 7.0), "rare_weight 7.0"),
    (lambda m: m["members"][0]["params"].__setitem__("n_jobs", 100000), "n_jobs"),
])
def test_manifest_values_that_would_give_probabilities_outside_0_1_are_refused(model, tmp_path, change, fact):
    ws, folder = model
    received = _received(folder, tmp_path)
    _edit(received / "manifest.json", change)
    _refused(ws, received, f"model manifest {received / 'manifest.json'} is not valid", fact)


# --------------------------------------------------------------------------- a received model with a local id
def _predictions(ws, model_id: str) -> list:
    from jungle.store.db import connect

    with connect(ws, read_only=True) as con:
        return con.execute("SELECT video_id, class, probability FROM predictions WHERE model_id = ? "
                           "ORDER BY ALL", [model_id]).fetchall()


@pytest.mark.slow
def test_a_received_model_with_a_local_id_replaces_nothing(model, tmp_path):
    ws, folder = model
    assert _jungle("predict", "--model", folder.name, "--videos", "all", "-w", ws.root).returncode == 0
    before = _predictions(ws, folder.name)
    impostor = Path(shutil.copytree(folder, tmp_path / "impostor" / folder.name))
    _edit(impostor / "manifest.json", lambda m: m["clip"].update(low=[0.5] * 4, high=[0.5] * 4))
    for command in (["predict", "--videos", "all"], ["report", "--out", tmp_path / "r.html"],
                    ["export", "csv", tmp_path / "out.csv"]):
        done = _jungle(*command[:2 if command[0] == "export" else 1], "--model", impostor,
                       *command[2 if command[0] == "export" else 1:], "-w", ws.root)
        _one_line_error(done, f"model folder {impostor} has the id {folder.name!r} of another model saved in this "
                              "workspace", "change model_id in its manifest.json")
    assert _predictions(ws, folder.name) == before
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "r.html").exists()
    copy = shutil.copytree(folder, tmp_path / "copy" / folder.name)  # the same model, copied: allowed
    assert _jungle("predict", "--model", copy, "--videos", "all", "-w", ws.root).returncode == 0
    assert _predictions(ws, folder.name) == before


def test_a_latest_alias_that_is_not_an_id_is_refused(model, tmp_path):
    ws, folder = model
    copy = type(ws).resolve(shutil.copytree(ws.root, tmp_path / "ws"))
    latest = copy.models_dir / "latest"
    latest.unlink()
    latest.symlink_to("/dev/zero")
    _one_line_error(_jungle("predict", "--model", "latest", "-w", copy.root, timeout=60, cap_memory=True),
                    str(latest), "is a symbolic link")
    latest.unlink()
    latest.write_text("../../../../etc\n")
    _one_line_error(_jungle("predict", "--model", "latest", "-w", copy.root), str(latest), "does not hold a model id")
