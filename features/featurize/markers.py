"""Block markers and run locks beside a frame-level set's Zarr group.

A block's arrays are written by one process, then a marker file (``vN.progress/<first row>.json``:
the status of each row) is written atomically: markers make a run resumable and shardable.
``flock`` locks beside them keep two runs from writing the same blocks.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ...errors import BusyError
from ...store.failures import storage_errors

if TYPE_CHECKING:
    from .config import Shard

__all__ = ["progress_dir", "read_markers", "write_marker", "FeaturizeBusy", "claim"]


def progress_dir(workspace, fs) -> Path:
    """Folder of a frame-level set's block markers (beside its Zarr group)."""
    group = workspace.root / fs.location
    return group.parent / f"{group.name}.progress"


def read_markers(folder: Path, keep: Callable[[int], bool] | None = None) -> dict[int, tuple[str, str | None, int]]:
    """{row: (status, error, valid frames)} from the block markers (of the blocks whose first row ``keep`` accepts)."""
    rows: dict[int, tuple[str, str | None, int]] = {}
    if not folder.exists():
        return rows
    for marker in sorted(folder.glob("*.json")):
        if keep is not None and not keep(int(marker.stem)):
            continue
        for row, (status, error, n_valid) in json.loads(marker.read_text()).items():
            rows[int(row)] = (status, error, int(n_valid))
    return rows


def write_marker(folder: Path, start: int, rows: dict[int, tuple[str, str | None, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{start:012d}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps({str(r): list(v) for r, v in sorted(rows.items())}))
        tmp.replace(path)
    except BaseException:  # a full disk, Ctrl-C: no half-written file is left beside the markers
        tmp.unlink(missing_ok=True)
        raise


class FeaturizeBusy(BusyError):
    """Another featurize run holds the blocks this run would write."""


@contextmanager
def claim(workspace, sets: list, shard: Shard | None) -> Iterator[None]:
    """Hold each set's run lock (exclusive for an unsharded run, shared for a shard) and, for a shard,
    its own shard lock, for the whole run: two runs never write the same blocks.

    Locks are ``flock`` locks on files beside the markers, released by the OS if the process dies.

    Raises:
        FeaturizeBusy: another run holds a conflicting lock.
    """
    import fcntl

    names = [("run.lock", fcntl.LOCK_SH if shard else fcntl.LOCK_EX)]
    if shard is not None:
        names.append((f"shard-{shard.index}of{shard.count}.lock", fcntl.LOCK_EX))
    handles = []
    try:
        for fs, (name, mode) in ((fs, n) for fs in sets for n in names):
            folder = progress_dir(workspace, fs)
            with storage_errors(workspace.root):
                folder.mkdir(parents=True, exist_ok=True)
                handle = open(folder / name, "a+")
            handles.append(handle)
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                what = f"shard {shard} of" if shard is not None else "the blocks of"
                raise FeaturizeBusy(
                    f"another featurize run is already working on {what} feature set {fs.ref} (lock "
                    f"{folder / name}). Wait for it to finish, or split the work between runs with "
                    "--shard i/n (each run its own i).") from None
        yield
    finally:
        for handle in handles:
            handle.close()
