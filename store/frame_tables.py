"""Long tables beside frame-level sets: per-frame data that SQL should see, one Parquet file per block.

DuckDB cannot read Zarr, so a frame-level set whose rows are worth querying (the ``boxes`` set:
one row per box) also writes a long table under ``tables/<name>/v<version>/``, one file per Zarr
block (``<first row>.parquet``), written by the block's one writer after its arrays and before its
marker: a resumed or sharded run rewrites exactly the blocks it redoes. Once the set is complete,
:func:`jungle.store.views.register_views` makes the files the SQL views ``<name>`` (latest) and
``<name>_v<version>``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .failures import storage_errors
from .workspace import Workspace

__all__ = ["table_dir", "block_tables", "write_block_table"]


def table_dir(workspace: Workspace, name: str, version: int) -> Path:
    """The folder of a frame-level set's long table (``tables/<name>/v<version>/``)."""
    return workspace.tables_dir / name / f"v{version}"


def block_tables(workspace: Workspace, name: str, version: int) -> list[Path]:
    """The block files of a frame-level set's long table, in block order (none: it has no table)."""
    folder = table_dir(workspace, name, version)
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def write_block_table(workspace: Workspace, name: str, version: int, start: int, frame) -> Path:
    """Write the rows of the block starting at row ``start`` (a polars DataFrame) of version ``version``
    of the frame-level set ``name``, replacing any earlier file of that block; written to a temporary
    name and renamed, never half-written.

    Raises:
        DiskFull, WorkspaceNotWritable: see :mod:`jungle.store.failures`.
    """
    folder = table_dir(workspace, name, version)
    path = folder / f"{start:012d}.parquet"
    with storage_errors(workspace.root, path):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            frame.write_parquet(tmp)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path
