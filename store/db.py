"""The DuckDB connection: one writer, short transactions, migrations on open.

DuckDB 2.0 lets one process hold the file; while it does, no other process can open it, not even
read-only. :func:`connect` therefore retries for a while when the file is locked, and every
writer should keep its connection open only as long as it writes.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from ..errors import BusyError, WorkspaceError
from .schema import MIGRATIONS
from .workspace import Workspace

__all__ = ["connect", "migrate", "schema_version", "WorkspaceLocked", "WorkspaceMissing"]


class WorkspaceLocked(BusyError):
    """Another process holds the workspace database."""


class WorkspaceMissing(WorkspaceError):
    """The workspace has no database yet."""


def _open(path, read_only: bool, timeout: float):
    import duckdb

    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:  # "Could not set lock on file"
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                if "lock" in str(exc).lower():
                    raise WorkspaceLocked(
                        f"The workspace database {path} is in use by another jungle process. "
                        "Wait for it to finish (DuckDB allows one process at a time), then retry."
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def schema_version(con) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(con) -> int:
    """Apply every migration the database lacks, each in its own transaction; return the version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
    )
    current = schema_version(con)
    for number, name, fn in MIGRATIONS:
        if number <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            fn(con)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [number, name, datetime.now(timezone.utc).replace(tzinfo=None)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        current = number
    return current


@contextmanager
def connect(workspace: Workspace, read_only: bool = False, timeout: float = 60.0) -> Iterator:
    """Open the workspace database; a writable open creates and migrates it.

    Args:
        workspace: the workspace.
        read_only: open read-only (``jungle sql``); the database must exist.
        timeout: seconds to wait for another process's lock.
    """
    if read_only and not workspace.db_path.exists():
        raise WorkspaceMissing(
            f"No jungle workspace at {workspace.root}. Run `jungle ingest DIR` first, "
            "or point --workspace / $JUNGLE_WORKSPACE at an existing one."
        )
    if not read_only:
        workspace.ensure()
    con = _open(workspace.db_path, read_only, timeout)
    try:
        if not read_only:
            migrate(con)
        from .views import register_views

        register_views(con, workspace)
        yield con
    finally:
        con.close()
