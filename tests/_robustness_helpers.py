"""Helpers for the robustness tests: real small file systems (tmpfs), the CLI as a subprocess,
workspaces of real clips, and comparisons with an uninterrupted run.

A full disk is a real tmpfs (``mount -t tmpfs``, which needs root; tests and CI run as root) filled
with a file that leaves the room a test asks for; freeing space is deleting that file. A read-only
workspace is a tmpfs remounted read-only (root ignores ``chmod``). Without permission to mount the
tests skip: a file-size limit (``RLIMIT_FSIZE``) is no stand-in, since DuckDB skips a checkpoint it
cannot write and keeps the rows in its WAL (measured: an ingest under a 1,000 KiB limit succeeded).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from jungle.store.db import connect

__all__ = ["tmpfs", "remount", "leave_free", "free_kb", "used_kb", "jungle_cli", "error_line", "ingest_corpus",
           "frame_arrays", "feature_rows", "video_rows", "TINY_FEATURIZE"]

#: A small, fast featurize run (random-init resnet10t at 64 px, 8 frames, 2 videos per block).
TINY_FEATURIZE = ["--encoder", "resnet10t", "--input-size", "64", "--frames", "uniform:8", "--block", "2",
                  "--batch-size", "12", "--threads", "1", "--no-crops", "--no-detector", "-q"]


def takes_ctrl_c() -> None:
    """``preexec_fn`` of a child the test stops with SIGINT: Ctrl-C at its default, as under a terminal.

    A test runner started in the background by a script (``cmd &`` without job control) has SIGINT
    ignored, children inherit that, and Python then installs no KeyboardInterrupt handler: the
    child would never see the Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    """A fresh tmpfs of ``size_kb`` KiB mounted at ``path`` for the block; skips the test when this
    process may not mount (not root, or no CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); a full disk and a "
                    "read-only workspace need one (run the tests as root, as CI does)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, *, size_kb: int | None = None, read_only: bool | None = None) -> None:
    """Change a mounted tmpfs: its size, or read-only / read-write."""
    options = [o for o in (f"size={size_kb}k" if size_kb else None,
                           None if read_only is None else ("ro" if read_only else "rw")) if o]
    done = _mount("-o", ",".join(["remount", *options]), str(path))
    assert done.returncode == 0, done.stderr


def free_kb(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize // 1024


def used_kb(path: Path) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024


def leave_free(path: Path, kb: int) -> Path:
    """Fill the file system of ``path`` with one file so that ``kb`` KiB stay free; return the file
    (delete it to free the space)."""
    filler = path / "filler"
    size = (free_kb(path) - kb) * 1024
    assert size > 0, f"only {free_kb(path)} KiB free, cannot leave {kb}"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, size)
    return filler


def jungle_cli(*args, env: dict | None = None, **options) -> subprocess.CompletedProcess:
    """Run ``python -m jungle.cli ARGS`` (the real entry point, ``main()``) to the end."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=300, **options)


def error_line(stderr: str) -> str:
    """The one line a failed command printed, after checking that it is one line and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def ingest_corpus(workspace, source: Path) -> None:
    """Record the videos of ``source`` (headers only, in this process)."""
    from jungle.ingest.run import IngestConfig, ingest

    ingest(workspace, source, IngestConfig(workers=0, stats=False), progress=False)


def frame_arrays(workspace, name: str = "resnet10t", version: int = 1) -> dict[str, np.ndarray]:
    """Every array of a frame-level set."""
    import zarr

    group = zarr.open_group(str(workspace.root / f"features.zarr/{name}/v{version}"), mode="r")
    return {key: array[:] for key, array in group.arrays()}


def feature_rows(workspace, name: str = "resnet10t", version: int = 1) -> list[tuple]:
    """(path, row, status, n_valid, error) of a set's rows, and the set's status, from DuckDB."""
    with connect(workspace, read_only=True) as con:
        rows = con.execute(
            "SELECT v.path, r.row, r.status, r.n_valid, r.error FROM feature_rows r JOIN videos v USING (video_id) "
            "WHERE name = ? AND version = ? ORDER BY r.row", [name, version]).fetchall()
        status = con.execute("SELECT status FROM feature_sets WHERE name = ? AND version = ?",
                             [name, version]).fetchone()
    return rows + [status]


def video_rows(workspace) -> list[tuple]:
    """The ``videos`` table without the time of ingest."""
    with connect(workspace, read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (ingested_at) FROM videos ORDER BY path").fetchall()
