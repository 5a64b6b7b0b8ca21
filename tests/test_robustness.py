"""Messages, never tracebacks: store transactions on a full disk, a database held by another
process, a read-only workspace, damaged weights files. Real DuckDB files on real (tmpfs) file
systems, the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from jungle.cli import app
from jungle.errors import InputError
from jungle.store.db import connect, transaction
from jungle.store.failures import DiskFull
from jungle.store.workspace import Workspace

from _errors import cli_error, says
from _ingest_helpers import link_corpus, zamba_clips
from _robustness_helpers import (TINY_FEATURIZE, error_line, ingest_corpus, jungle_cli, remount, takes_ctrl_c,
                                 tmpfs, video_rows)

FILL = "INSERT INTO filler SELECT md5(random()::VARCHAR) || md5(random()::VARCHAR) FROM range(4000)"


# ----------------------------------------------------------------------------- transactions
def test_an_error_in_the_block_rolls_back_and_surfaces(workspace):
    with connect(workspace) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(InputError, match="^bad row$"):
            with transaction(con):
                con.execute("INSERT INTO t VALUES (1)")
                raise InputError("bad row")
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        with transaction(con):
            con.execute("INSERT INTO t VALUES (2)")
    with connect(workspace, read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_a_commit_on_a_full_disk_says_disk_full_and_keeps_what_was_committed(tmp_path):
    """The COMMIT fails with 'No space left on device'; the ROLLBACK after it fails too ('cannot
    rollback - no transaction is active'), and that must not hide the cause."""
    with tmpfs(tmp_path / "disk", 2048) as disk:
        workspace = Workspace.resolve(disk / "ws")
        committed = 0
        with pytest.raises(DiskFull) as caught:
            for _ in range(100):
                with connect(workspace) as con, transaction(con):
                    con.execute("CREATE TABLE IF NOT EXISTS filler (s VARCHAR)")
                    con.execute(FILL)
                committed += 4000
        says(str(caught.value), "disk full", f"{workspace.db_path}.wal", "free space", "run the same command again")
        assert "No space left on device" in str(caught.value.__cause__)
        assert committed > 0
        remount(disk, size_kb=16384)
        with connect(workspace, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM filler").fetchone()[0] == committed


# ----------------------------------------------------------------------------- a database held by another process
HOLD = ("import sys, time, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('held', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n")


def _hold(db_path, seconds: float) -> subprocess.Popen:
    """Another process that holds the database for ``seconds`` (as a running jungle command does)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db_path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


@pytest.fixture()
def small_workspace(tmp_path, media):
    workspace = Workspace.resolve(tmp_path / "ws")
    link_corpus(tmp_path / "clips", zamba_clips(media)[:3], per_site=3, n_files=3)
    ingest_corpus(workspace, tmp_path / "clips")
    return workspace


@pytest.mark.slow  # waits on a held lock (~3 s)
def test_status_waits_for_a_held_database_and_says_so(small_workspace):
    holder = _hold(small_workspace.db_path, 3)
    try:
        status = jungle_cli("status", "-w", small_workspace.root, "-f", "csv", env={"JUNGLE_LOCK_TIMEOUT": "60"})
    finally:
        holder.wait()
    assert status.returncode == 0, status.stderr
    assert status.stderr == f"waiting for {small_workspace.db_path} (held by another jungle process) ...\n"
    assert status.stdout.startswith("status,videos,size\nok,3,")


@pytest.mark.slow  # waits for a lock timeout (~3 s)
def test_status_gives_up_after_the_lock_timeout_with_one_line(small_workspace):
    holder = _hold(small_workspace.db_path, 60)
    try:
        status = jungle_cli("status", "-w", small_workspace.root, env={"JUNGLE_LOCK_TIMEOUT": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert status.returncode == 1
    assert "Traceback" not in status.stderr
    assert status.stderr.splitlines() == [
        f"waiting for {small_workspace.db_path} (held by another jungle process) ...",
        f"Error: {small_workspace.db_path} is still held by another jungle process after 1 s (DuckDB lets one "
        "process open it at a time): wait for that process to finish, or set JUNGLE_LOCK_TIMEOUT to wait longer, "
        "then run the same command again.",
    ]


def test_ctrl_c_while_waiting_prints_one_line_and_exits_130(small_workspace):
    """Any command stopped by Ctrl-C where it has nothing more specific to say (here: waiting for the
    database) prints one line, not a KeyboardInterrupt traceback."""
    holder = _hold(small_workspace.db_path, 60)
    try:
        status = subprocess.Popen([sys.executable, "-m", "jungle.cli", "status", "-w", str(small_workspace.root)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "JUNGLE_LOCK_TIMEOUT": "60"}, preexec_fn=takes_ctrl_c)
        waiting = f"waiting for {small_workspace.db_path} (held by another jungle process) ...\n"
        assert status.stderr.readline() == waiting
        status.send_signal(signal.SIGINT)
        _, rest = status.communicate(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert status.returncode == 130
    assert rest == "Error: interrupted (Ctrl-C) before the command finished.\n"


# ----------------------------------------------------------------------------- a read-only workspace
@pytest.mark.slow  # four CLI subprocesses on a tmpfs (~25 s)
def test_writing_commands_on_a_read_only_workspace_say_so_in_one_line(tmp_path, media):
    clips = tmp_path / "clips"
    link_corpus(clips, zamba_clips(media)[:3], per_site=3, n_files=3)
    labels = tmp_path / "labels.csv"
    labels.write_text("filepath,label\n" + "".join(f"{p},blank\n" for p in sorted(clips.rglob("*.*"))))
    with tmpfs(tmp_path / "disk", 8192) as disk:
        workspace = Workspace.resolve(disk / "ws")
        ingest_corpus(workspace, clips)
        before = video_rows(workspace)
        remount(disk, read_only=True)
        for command in (["ingest", clips, "--workers", "0", "-q"], ["labels", labels],
                        ["featurize", *TINY_FEATURIZE, "--workers", "0"], ["folds", "2"]):
            done = jungle_cli(*command, "-w", workspace.root)
            assert done.returncode == 1, (command, done.stderr)
            assert error_line(done.stderr).startswith("Error: "), command
            says(error_line(done.stderr), workspace.root, "not writable", workspace.db_path, "--workspace DIR",
                 "run the same command again")
        status = jungle_cli("status", "-w", workspace.root)  # reading still works
        assert status.returncode == 0, status.stderr
        remount(disk, read_only=False)
        assert video_rows(workspace) == before


# ----------------------------------------------------------------------------- damaged weights files
@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    """A good small state dict saved both ways, then truncated and garbage (an HTML page) copies of each."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("weights")
    state = {"weight": torch.arange(2048, dtype=torch.float32).reshape(32, 64), "bias": torch.ones(32)}
    files = {}
    for suffix, save in ((".pth", lambda s, p: torch.save(s, p)), (".safetensors", lambda s, p: save_file(s, p))):
        good = folder / f"good{suffix}"
        save(state, str(good))
        data = good.read_bytes()
        files[f"truncated{suffix}"] = folder / f"truncated{suffix}"
        files[f"truncated{suffix}"].write_bytes(data[: len(data) // 2])
        files[f"garbage{suffix}"] = folder / f"garbage{suffix}"  # what a failed download often saves
        files[f"garbage{suffix}"].write_bytes(b"<html><body>404 Not Found</body></html>\n" * 100)
    return files


@pytest.mark.parametrize("name, reason", [
    ("truncated.pth", "it is truncated or unreadable ([Errno 22] Invalid argument)"),
    ("garbage.pth", "it is not a file of plain tensors: damaged, not a PyTorch file, or a pickle that would run "
                    "code (jungle never loads those)"),
    ("truncated.safetensors", "Error while deserializing header: incomplete metadata, file not fully covered"),
    ("garbage.safetensors", "Error while deserializing header: header too large"),
])
def test_a_damaged_weights_file_is_named_with_what_to_do(small_workspace, weights_files, name, reason):
    path = weights_files[name]
    result = CliRunner().invoke(app, ["featurize", "-w", str(small_workspace.root), "--encoder", "resnet10t",
                                      "--weights", str(path), "--workers", "0", "-q"])
    assert result.exit_code == 1
    cli_error(result.output, path, reason, "--weights FILE")


def test_a_weights_pickle_that_would_run_code_is_refused_and_not_run(tmp_path):
    import torch

    from jungle.features.models.weights import WeightsError, load_weights_file

    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {ran}",)

    path = tmp_path / "weights.pth"
    torch.save({"weight": Payload()}, path)
    with pytest.raises(WeightsError, match="a pickle that would run code"):
        load_weights_file(path)
    assert not ran.exists()


def test_damaged_cached_weights_say_how_to_fetch_them_again(tmp_path, small_workspace):
    from jungle.features.models.weights import WEIGHTS, WeightsError, load_weights_file

    spec = WEIGHTS["megadetector-lite"]
    cached = tmp_path / "cache" / spec.filename
    cached.parent.mkdir()
    cached.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsError) as caught:
        load_weights_file(cached)
    assert str(caught.value).endswith(f'Run "jungle weights fetch megadetector-lite" to replace it with a verified '
                                      f"copy (or delete {cached} and fetch it again).")
    listed = CliRunner().invoke(app, ["weights", "list", "--dir", str(cached.parent), "-f", "csv"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[1].startswith(f"megadetector-lite,wrong hash,{cached},")
    result = CliRunner().invoke(app, ["featurize", "-w", str(small_workspace.root), "--detector", "megadetector-lite",
                                      "--workers", "0", "-q"], env={"JUNGLE_WEIGHTS_DIR": str(cached.parent)})
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the megadetector-lite weights file {cached} has sha256 ")
    assert 'it is damaged or not the megadetector-lite weights. Run "jungle weights fetch megadetector-lite"' \
        in result.output
    assert result.output.count("\n") == 1
