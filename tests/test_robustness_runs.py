"""Runs that stop half-way: a full disk during ingest and featurize, Ctrl-C during featurize and
ingest. The real cause is one line (no traceback), nothing finished is lost, and the same command
afterwards ends with exactly what an uninterrupted run makes. Real clips, real CLI subprocesses,
real (tmpfs) file systems."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.featurize.markers import progress_dir
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _errors import says
from _ingest_helpers import ZAMBA, link_corpus, zamba_clips
from _robustness_helpers import (TINY_FEATURIZE, error_line, feature_rows, frame_arrays, ingest_corpus, jungle_cli,
                                 leave_free, takes_ctrl_c, tmpfs, used_kb, video_rows)

pytestmark = pytest.mark.slow  # full disks and Ctrl-C on real runs in subprocesses (~60 s)

N_VIDEOS = 24  # 12 blocks of 2


def _featurize_in_process(workspace) -> None:
    result = CliRunner().invoke(app, ["featurize", "-w", str(workspace.root), *TINY_FEATURIZE, "--workers", "0"])
    assert result.exit_code == 0, result.output


def _markers(workspace) -> dict[str, str]:
    """Block markers of the resnet10t set: file name -> content."""
    with connect(workspace, read_only=True) as con:
        fs = registry.get(con, "resnet10t", 1)
    return {p.name: p.read_text() for p in sorted(progress_dir(workspace, fs).glob("*.json"))}


def _marker_files(workspace) -> list[Path]:
    return sorted((workspace.root / "features.zarr" / "resnet10t").glob("v1.progress/*.json"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media) -> Path:
    """N_VIDEOS links to the real zamba clips, 12 per site folder."""
    root = tmp_path_factory.mktemp("corpus")
    link_corpus(root, zamba_clips(media), per_site=12, n_files=N_VIDEOS)
    return root


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    """An uninterrupted featurize of the corpus on a tmpfs: its arrays, rows and the KiB it wrote."""
    with tmpfs(tmp_path_factory.mktemp("reference"), 32768) as disk:
        workspace = Workspace.resolve(disk / "ws")
        ingest_corpus(workspace, corpus)
        before = used_kb(disk)
        _featurize_in_process(workspace)
        yield {"arrays": frame_arrays(workspace), "rows": feature_rows(workspace), "kb": used_kb(disk) - before}


def _assert_same_as_reference(workspace, reference) -> None:
    assert feature_rows(workspace) == reference["rows"]
    arrays = frame_arrays(workspace)
    assert arrays.keys() == reference["arrays"].keys()
    for name, values in arrays.items():
        np.testing.assert_array_equal(values, reference["arrays"][name], err_msg=name)


# ----------------------------------------------------------------------------- a full disk
def test_featurize_on_a_full_disk_says_so_keeps_finished_blocks_and_the_rerun_finishes(tmp_path, corpus, reference):
    with tmpfs(tmp_path / "disk", 32768) as disk:
        workspace = Workspace.resolve(disk / "ws")
        ingest_corpus(workspace, corpus)
        filler = leave_free(disk, reference["kb"] * 2 // 3)  # room for the plan and some blocks, not all
        failed = jungle_cli("featurize", "-w", workspace.root, *TINY_FEATURIZE, "--workers", "1")
        assert failed.returncode == 1
        line = error_line(failed.stderr)
        assert re.fullmatch(rf"Error: disk full while writing {re.escape(str(workspace.root))}/\S+: free space and "
                            r"run the same command again \(nothing finished is lost\)\.", line), line
        finished = _markers(workspace)
        assert 0 < len(finished) < N_VIDEOS // 2, f"the disk filled up outside the pass ({len(finished)} blocks)"
        for marker in finished:  # each finished block holds what the uninterrupted run computed
            start = int(marker.removesuffix(".json"))
            for name, values in frame_arrays(workspace).items():
                np.testing.assert_array_equal(values[start:start + 2], reference["arrays"][name][start:start + 2])

        filler.unlink()  # free space, run the same command again
        _featurize_in_process(workspace)
        assert {name: text for name, text in _markers(workspace).items() if name in finished} == finished
        _assert_same_as_reference(workspace, reference)


def test_ingest_on_a_full_disk_says_so_and_the_rerun_finishes(tmp_path, media):
    source = media / ZAMBA
    full = Workspace.resolve(tmp_path / "full")
    command = ["ingest", source, "--workers", "1", "--batch", "2", "-q", "-f", "csv"]
    assert jungle_cli(*command, "-w", full.root).returncode == 0
    with tmpfs(tmp_path / "disk", 4096) as disk:
        workspace = Workspace.resolve(disk / "ws")
        with connect(workspace):  # a fresh database (~800 KiB); then room for two pages of its write-ahead log
            pass
        filler = leave_free(disk, 8)  # (a fixed tmpfs size made the room depend on the length of the paths)
        failed = jungle_cli(*command, "-w", workspace.root)
        assert failed.returncode == 1
        says(error_line(failed.stderr), "Error: disk full", f"{workspace.db_path}.wal", "free space",
             "run the same command again")
        filler.unlink()  # free space
        with connect(workspace, read_only=True) as con:
            kept = con.execute("SELECT count(*) FROM videos").fetchone()[0]
        assert 0 < kept < 19, f"the disk filled up outside the batches ({kept} rows)"
        rerun = jungle_cli(*command, "-w", workspace.root)
        assert rerun.returncode == 0, rerun.stderr
        found, new, changed, retried, unchanged = map(int, rerun.stdout.splitlines()[1].split(",")[:5])
        assert (found, new, unchanged) == (19, 19 - kept, kept)
        assert video_rows(workspace) == video_rows(full)


# ----------------------------------------------------------------------------- Ctrl-C
def _group_alive(group: int) -> list[int]:
    """Processes of a process group that are not zombies."""
    alive = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else None
        except OSError:
            continue
        if fields and int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _start(*args) -> subprocess.Popen:
    """The CLI in a session of its own, so that a Ctrl-C reaches it and its workers, as from a terminal."""
    return subprocess.Popen([sys.executable, "-m", "jungle.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=takes_ctrl_c,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _ctrl_c_when(child: subprocess.Popen, ready, what: str) -> tuple[str, str]:
    """Wait until ``ready()``, send SIGINT to the child's whole process group, return (stdout, stderr)."""
    deadline = time.monotonic() + 120
    while not ready():
        assert child.poll() is None, f"the command ended before {what}: {child.stderr.read()}"
        assert time.monotonic() < deadline, f"no {what} within 120 s"
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGINT)
    try:
        out, err = child.communicate(timeout=60)
    finally:
        if _group_alive(child.pid):
            os.killpg(child.pid, signal.SIGKILL)
    gone_by = time.monotonic() + 10
    while _group_alive(child.pid) and time.monotonic() < gone_by:
        time.sleep(0.05)
    assert not _group_alive(child.pid), "worker processes outlived the interrupted command"
    return out, err


def test_ctrl_c_during_featurize_stops_quietly_and_the_same_command_resumes(tmp_path, corpus, reference):
    workspace = Workspace.resolve(tmp_path / "ws")
    ingest_corpus(workspace, corpus)
    child = _start("featurize", "-w", workspace.root, *TINY_FEATURIZE, "--workers", "1")
    _, err = _ctrl_c_when(child, lambda: _marker_files(workspace), "a finished block")
    assert child.returncode == 130, err
    line = error_line(err)
    done = re.fullmatch(rf"Error: interrupted after (\d+) of {N_VIDEOS} videos \(finished blocks are kept\); run "
                        r"the same command to resume\.", line)
    assert done and 2 <= int(done.group(1)) < N_VIDEOS, line
    finished = _markers(workspace)
    _featurize_in_process(workspace)
    assert {name: text for name, text in _markers(workspace).items() if name in finished} == finished
    _assert_same_as_reference(workspace, reference)


def test_ctrl_c_during_ingest_stops_quietly_and_the_same_command_resumes(tmp_path, shared_media):
    chimp = shared_media / "camera_trap" / "chimp_waterhole_320x180.mp4"  # slower to decode: the run lasts
    link_corpus(tmp_path / "corpus", zamba_clips(shared_media) + [chimp] * 4, per_site=20, n_files=60)
    workspace = Workspace.resolve(tmp_path / "ws")
    child = _start("ingest", tmp_path / "corpus", "-w", workspace.root, "--workers", "2", "--batch", "4", "-q")
    _, err = _ctrl_c_when(child, lambda: len(_group_alive(child.pid)) >= 3 and workspace.db_path.exists(),
                          "worker processes")
    assert child.returncode == 130, err
    line = error_line(err)
    assert re.fullmatch(r"Error: interrupted after \d+ of 60 videos \(every written batch is kept\); run the same "
                        r"command to resume\.", line), line
    rerun = CliRunner().invoke(app, ["ingest", str(tmp_path / "corpus"), "-w", str(workspace.root), "--workers", "0",
                                     "-q"])
    assert rerun.exit_code == 0, rerun.output
    full = Workspace.resolve(tmp_path / "full")
    uninterrupted = CliRunner().invoke(app, ["ingest", str(tmp_path / "corpus"), "-w", str(full.root),
                                             "--workers", "0", "-q"])
    assert uninterrupted.exit_code == 0, uninterrupted.output
    assert video_rows(workspace) == video_rows(full)
