"""Every command and option of the CLI, fed invalid values of its type: zero tracebacks, zero hangs,
and for values no option may take (negative, huge, infinite or NaN numbers, an unknown choice, a
5,000-character value, /dev/zero, a FIFO) a non-zero exit with one ``Error:`` line. Texts and paths
are also fed a 300-character value (under the CLI's cap, over a file name's), and options that the
base arguments would never reach (the zero-shot model's --class-map, the Camtrap DP package's
licences, contributors, --media-root, ...) are fuzzed with arguments that take the command there.

The matrix runs in one child process (CliRunner, an alarm per case, the address space capped; see
tests/_cli_fuzz.py) on a copy of a real workspace with a saved model and predictions; the special
files are real (a FIFO, a character device made like /dev/zero). The input files a user names are
also fed the real /dev/zero and a real FIFO through the real ``jungle`` command in its own process."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from _export_helpers import copy_workspace, write_deployments

HERE = Path(__file__).resolve().parent
OUTPUTS = {"--out", "out_dir", "out", "directory", "--data", "--dir"}


@pytest.fixture(scope="module")
def places(predicted, tmp_path_factory):
    """Everything the cases point at: a workspace copy, special files, a held port."""
    _, _, source = predicted
    root = tmp_path_factory.mktemp("fuzz")
    ws = copy_workspace(source, root / "ws")
    (root / "empty").mkdir()
    (root / "folder").mkdir()
    (root / "weights").mkdir()
    os.mkfifo(root / "fifo")
    try:  # a character device like /dev/zero that the cases may overwrite without harm
        os.mknod(root / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
        zero = root / "zero"
    except PermissionError:
        pytest.skip("mknod is not permitted here: run as root to fuzz with a /dev/zero-like device")
    (root / "latin1.csv").write_bytes("filename,blank\ncl\xe9p.mp4,1\n".encode("latin-1"))
    (root / "labels.csv").write_text("filename,blank\nnot-ingested.mp4,1\n")
    (root / "times.csv").write_text("filename,time\nclip00000.mp4,2016-09-27 07:10:08\n")
    write_deployments(root / "deployments.csv")
    (root / "bogus.pth").write_bytes(b"not the weights")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    try:
        yield {"workspace": str(ws.root), "empty": str(root / "empty"), "folder": str(root / "folder"),
               "fifo": str(root / "fifo"), "zero": str(zero), "missing": str(root / "missing" / "file.csv"),
               "latin1": str(root / "latin1.csv"), "labels": str(root / "labels.csv"),
               "times": str(root / "times.csv"), "deployments": str(root / "deployments.csv"),
               "weights": str(root / "weights"), "bogus_weights": str(root / "bogus.pth"),
               "package": str(root / "package"), "mdjson": str(root / "md.json"), "csv": str(root / "wide.csv"),
               "port": holder.getsockname()[1], "outputs": sorted(OUTPUTS), "root": str(root)}
    finally:
        holder.close()


def _problems(results: list[dict]) -> dict[str, list[str]]:
    """Each rule's breaking cases."""
    problems: dict[str, list[str]] = {"hung": [], "traceback": [], "error lines": [], "exit 0": []}
    for r in results:
        if r["hung"]:
            problems["hung"].append(r["id"])
            continue
        if r["traceback"]:
            problems["traceback"].append(f"{r['id']}: {r['stderr'][-1:]}")
        elif r["exit_code"] != 0 and (r["error_lines"] != 1 or not r["last_is_error"]):
            problems["error lines"].append(f"{r['id']}: {r['stderr']}")
        elif r["exit_code"] == 0 and r["serious"]:
            problems["exit 0"].append(r["id"])
    return {rule: ids for rule, ids in problems.items() if ids}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_option_of_every_command_refuses_invalid_values_in_one_line(places, tmp_path):
    sys.path.insert(0, str(HERE))
    from _cli_fuzz import cases

    todo = cases(places)
    commands = {" ".join(case["argv"][:2]) for case in todo}
    assert len(todo) > 400 and len(commands) >= 20, (len(todo), commands)
    (tmp_path / "cases.json").write_text(json.dumps(todo))
    env = {k: v for k, v in os.environ.items() if k != "JUNGLE_WORKSPACE"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2", PYTHONPATH=os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, str(HERE / "_cli_fuzz.py"), str(tmp_path / "cases.json"),
                           str(tmp_path / "results.json")], cwd=places["root"], env=env, capture_output=True,
                          text=True, timeout=840)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == len(todo)
    problems = _problems(results)
    assert not problems, json.dumps(problems, indent=1)[:20000]


# --------------------------------------------------------------------------- real special files, real processes
def _jungle(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("JUNGLE_WORKSPACE", None)
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=cwd)


def _inputs(places, tmp_path, special: str) -> dict[str, list]:
    ws = ["-w", places["workspace"]]
    return {
        "ingest list": ["ingest", special, "-w", tmp_path / "new-ws"],
        "ingest labels": ["ingest", places["empty"], "--labels", special, "-w", tmp_path / "new-ws"],
        "labels": ["labels", special, *ws],
        "classes file": ["labels", places["labels"], "--classes", special, *ws],
        "deployments": ["export", "camtrap-dp", tmp_path / "pkg", "--deployments", special, *ws],
        "taxonomy": ["export", "camtrap-dp", tmp_path / "pkg", "--taxonomy", special, *ws],
        "weights --from": ["weights", "fetch", "megadetector-lite", "--from", special, "--dir", tmp_path / "w"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("special", ["dev-zero", "fifo"])
def test_real_special_files_as_inputs_are_one_line(places, tmp_path, special):
    path = "/dev/zero" if special == "dev-zero" else tmp_path / "fifo"
    if special == "fifo":
        os.mkfifo(path)
    failures = []
    for name, args in _inputs(places, tmp_path, path).items():
        done = _jungle(*args, cwd=tmp_path)
        lines = done.stderr.splitlines()
        if done.returncode == 0 or "Traceback" in done.stderr or not lines or not lines[-1].startswith("Error: ") \
                or sum(line.startswith("Error: ") for line in lines) != 1:
            failures.append(f"{name}: {done.returncode} {lines[-3:]}")
    assert not failures, failures
