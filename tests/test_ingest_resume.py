"""A `jungle ingest` killed with SIGKILL mid-run and started again ends with the same table as an
uninterrupted run, and leaves no worker process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from jungle.store.db import WorkspaceLocked, connect
from jungle.store.workspace import Workspace

from _ingest_helpers import jungle, link_corpus, video_rows, zamba_clips

pytestmark = pytest.mark.slow  # kills and resumes a 240-file ingest (~15 s)

N_FILES = 240


def _committed(ws: Workspace) -> int:
    if not ws.db_path.exists():
        return 0
    try:
        with connect(ws, read_only=True, timeout=0) as con:  # one try: the writer holds it between batches
            return con.execute("SELECT count(*) FROM videos").fetchone()[0]
    except (WorkspaceLocked, duckdb.Error):  # the writer is creating or migrating it; bugs still raise
        return 0


def _live_members(group: int) -> list[int]:
    """Processes of a process group that are not zombies."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _without_time(rows: dict) -> dict:
    return {path: {k: v for k, v in row.items() if k != "ingested_at"} for path, row in rows.items()}


def test_sigkill_mid_run_then_rerun_equals_uninterrupted_run(shared_media, tmp_path):
    chimp = shared_media / "camera_trap" / "chimp_waterhole_320x180.mp4"  # a slower clip to decode
    link_corpus(tmp_path / "corpus", zamba_clips(shared_media) + [chimp, chimp], per_site=20, n_files=N_FILES)
    killed = Workspace.resolve(tmp_path / "killed")
    command = [sys.executable, "-m", "jungle.cli", "ingest", str(tmp_path / "corpus"), "-w", str(killed.root),
               "--workers", "2", "--batch", "10", "-q"]
    child = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while _committed(killed) == 0:
            assert child.poll() is None, f"ingest ended before it could be killed: {child.stderr.read().decode()}"
            assert time.monotonic() < deadline, "ingest wrote nothing within 90 s"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        gone_by = time.monotonic() + 10
        while _live_members(child.pid) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert not _live_members(child.pid), "worker processes outlived the killed ingest"
    finally:
        if _live_members(child.pid):
            os.killpg(child.pid, signal.SIGKILL)
        child.stderr.close()
    partial = _committed(killed)
    assert 0 < partial < N_FILES, f"the kill did not land mid-run ({partial} of {N_FILES} rows written)"
    print(f"killed after {partial} of {N_FILES} rows were written")

    resumed = jungle("ingest", tmp_path / "corpus", "-w", killed.root, "--workers", "2", "-f", "json", "-q")
    assert resumed.exit_code == 0, resumed.output
    (counts,) = json.loads(resumed.stdout)
    assert (counts["found"], counts["new"], counts["unchanged"]) == (N_FILES, N_FILES - partial, partial)

    full = Workspace.resolve(tmp_path / "full")
    uninterrupted = jungle("ingest", tmp_path / "corpus", "-w", full.root, "--workers", "2", "-q")
    assert uninterrupted.exit_code == 0, uninterrupted.output
    after_resume, reference = video_rows(killed), video_rows(full)
    assert len(after_resume) == N_FILES and all(r["status"] == "ok" for r in after_resume.values())
    assert _without_time(after_resume) == _without_time(reference)
