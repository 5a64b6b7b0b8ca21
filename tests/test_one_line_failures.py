"""Failures that used to print a traceback, each now one ``Error:`` line with a non-zero exit, and
nothing half-written left behind: a full disk under a report, a submission or an aggregate table;
study storage URLs Optuna cannot open; class lists longer than a file name; a workspace path that
is a file. Real processes, a real full tmpfs (skipped where this process may not mount)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jungle.store.failures import DiskFull

pytestmark = pytest.mark.slow  # real CLI subprocesses on full disks and unreachable storages: ~2 s a test


def _jungle(*args, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _one_line(done: subprocess.CompletedProcess, *facts: str) -> str:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert lines and lines[0].startswith("Error: "), done.stderr[-3000:]
    assert all(line.startswith("  ") for line in lines[1:]), done.stderr[-3000:]  # only details of that error
    for fact in facts:
        assert fact in done.stderr, done.stderr[-3000:]
    return lines[0]


@pytest.fixture()
def full_disk(tmp_path):
    """A real 400 KiB tmpfs, filled up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): run as root to test a full disk")
    try:
        with open(disk / "fill", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("command", ["report", "predict"])
def test_a_full_disk_under_a_report_or_submission_is_one_line_and_leaves_nothing(stacked, full_disk, command):
    sw, _ = stacked
    out = full_disk / ("report.html" if command == "report" else "submission.csv")
    args = ["report", "--out", out] if command == "report" else ["predict", "--videos", "all", "--out", out]
    _one_line(_jungle(*args, "-w", sw.workspace.root), "disk full while writing", str(out))
    assert sorted(os.listdir(full_disk)) == ["fill"]  # no report, no submission, no .tmp


def test_a_full_disk_under_an_aggregate_table_leaves_no_temporary_file(full_disk):
    from jungle.features.aggregates.tables import VideoTableWriter

    path = full_disk / "tables" / "hist" / "v1.parquet"
    rng = np.random.default_rng(0)
    with pytest.raises(DiskFull):
        with VideoTableWriter(path, [f"c{i}" for i in range(64)]) as writer:
            writer.write([f"v{i}" for i in range(4000)], rng.normal(size=(4000, 64)).astype(np.float32))
    leftovers = [p.name for p in full_disk.rglob("*") if p.is_file() and p.name != "fill"]
    assert leftovers == []


@pytest.mark.parametrize("storage, fact", [
    ("not a url", "is not a database URL"),
    ("sqlite:////no/such/folder/optuna.db", "cannot open the study storage sqlite:////no/such/folder/optuna.db"),
    ("postgresql://jungle@127.0.0.1:1/none", "cannot open the study storage"),
])
def test_storage_urls_optuna_cannot_open_are_one_line(stacked, tmp_path, storage, fact):
    sw, _ = stacked
    ws = shutil.copytree(sw.workspace.root, tmp_path / "ws")
    _one_line(_jungle("stack", "--features", "meta,hist_lite0", "--trials", "1", "--no-build", "-q",
                      "--storage", storage, "-w", ws), fact)
    _one_line(_jungle("dashboard", "--storage", storage, "-w", ws), fact)


def test_a_class_list_longer_than_a_file_name_is_read_as_classes(stacked, tmp_path):
    sw, _ = stacked
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,blank\nclip00000.mp4,1\n")
    classes = ",".join(f"class{i:03d}" for i in range(60))  # 479 characters: more than a file name may have
    _one_line(_jungle("labels", labels, "--classes", classes, "-w", shutil.copytree(sw.workspace.root,
                                                                                     tmp_path / "ws")),
              "unknown classes: column 'blank'")


def test_a_workspace_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "a-file").write_text("not a workspace")
    _one_line(_jungle("ingest", tmp_path / "videos", "-w", tmp_path / "a-file"),
              f"the workspace {tmp_path / 'a-file'} is a file, not a folder")


def test_min_conf_out_of_range_is_one_line(tmp_path):
    _one_line(_jungle("export", "megadetector-json", tmp_path / "x.json", "--min-conf", "1.5", "-w", tmp_path),
              "min_conf")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "99999999999999999999"])
def test_numbers_no_option_takes_are_one_line_before_anything_runs(tmp_path, value):
    _one_line(_jungle("ingest", tmp_path, "--batch", value, "-w", tmp_path / "ws"), "--batch")
    assert not (tmp_path / "ws").exists()


def test_usage_errors_are_one_line(tmp_path):
    _one_line(_jungle("sql"), "Missing argument 'query'", "`jungle sql --help`")
    _one_line(_jungle("sql", "SELECT 1", "--no-such-option"), "No such option: --no-such-option")
    _one_line(_jungle("no-such-command"), "No such command 'no-such-command'")
    assert Path(tmp_path).exists()
