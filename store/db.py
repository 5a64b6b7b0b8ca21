"""The DuckDB connection: one writer, short transactions, migrations on open.

DuckDB 2.0 lets one process hold the file; while it does, no other process can open it, not even
read-only. :func:`connect` therefore waits for a while when the file is locked (saying so once on
stderr), and every writer should keep its connection open only as long as it writes. The wait is
``timeout`` seconds, by default ``$JUNGLE_LOCK_TIMEOUT`` or 60.

Every write transaction goes through :func:`transaction`. A full disk or a read-only workspace
surfaces as :class:`~jungle.store.failures.DiskFull` or
:class:`~jungle.store.failures.WorkspaceNotWritable`, naming the file and what to do.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from ..errors import BusyError, WorkspaceError
from .failures import storage_errors
from .frames import registered
from .schema import MIGRATIONS
from .views import create_workspace_views, lock_down, register_views
from .workspace import Workspace, WorkspaceMissing

__all__ = ["connect", "transaction", "registered", "migrate", "schema_version", "WorkspaceLocked",
           "WorkspaceMissing", "LOCK_TIMEOUT_ENV"]

#: Environment variable: seconds :func:`connect` waits for another process's lock (default 60).
LOCK_TIMEOUT_ENV = "JUNGLE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 60.0


class WorkspaceLocked(BusyError):
    """Another process holds the workspace database."""


def lock_timeout() -> float:
    """Seconds to wait for the database lock: ``$JUNGLE_LOCK_TIMEOUT``, else 60."""
    text = os.environ.get(LOCK_TIMEOUT_ENV)
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return max(0.0, float(text))
    except ValueError:
        raise WorkspaceError(f"{LOCK_TIMEOUT_ENV}={text!r} is not a number of seconds; "
                             "set it to e.g. 120, or unset it for the default 60.") from None


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()  # "Could not set lock on file ...: Conflicting lock is held"


def _open(path, read_only: bool, timeout: float):
    """Connect to ``path``, waiting up to ``timeout`` seconds while another process holds it; say
    once on stderr that it waits."""
    import duckdb

    deadline = time.monotonic() + timeout
    delay, told = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() > deadline:
                raise WorkspaceLocked(
                    f"{path} is still held by another jungle process after {timeout:.0f} s (DuckDB lets one "
                    f"process open it at a time): wait for that process to finish, or set {LOCK_TIMEOUT_ENV} "
                    "to wait longer, then run the same command again.") from None
            if not told:
                print(f"waiting for {path} (held by another jungle process) ...", file=sys.stderr, flush=True)
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def transaction(con) -> Iterator:
    """Run the block in one DuckDB transaction: COMMIT at the end, ROLLBACK on any exception.

    The block's own error, or the COMMIT's, is what surfaces: a COMMIT that fails (a full disk)
    has already ended the transaction, so the ROLLBACK after it fails too ("no transaction is
    active"), and that second error would hide the cause.
    """
    import duckdb

    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the transaction already ended (failed COMMIT) or the connection broke: keep the cause
        raise


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
        with transaction(con):
            fn(con)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [number, name, datetime.now(timezone.utc).replace(tzinfo=None)],
            )
        current = number
    return current


@contextmanager
def connect(workspace: Workspace, read_only: bool = False, timeout: float | None = None,
            memory_limit: str | None = None) -> Iterator:
    """Open the workspace database; a writable open creates and migrates it.

    A read-only connection is locked down (:func:`jungle.store.views.lock_down`: files only under
    ``tables/``, no spilling, no extensions, settings locked) before anything from the database
    is used, the feature-set views included.

    A full disk or an unwritable workspace, here or in the block, raises
    :class:`~jungle.store.failures.DiskFull` or :class:`~jungle.store.failures.WorkspaceNotWritable`.

    Args:
        workspace: the workspace.
        read_only: open read-only (``jungle sql``, ``jungle status``); the database must exist.
        timeout: seconds to wait for another process's lock (None: :func:`lock_timeout`).
        memory_limit: DuckDB's memory limit of a read-only connection (e.g. ``'2GB'``; None: DuckDB's).

    Raises:
        WorkspaceMissing: ``read_only`` and there is no database.
        WorkspaceLocked: another process held the database for all of ``timeout``.
    """
    if read_only:
        workspace.require()
    with storage_errors(workspace.root):
        if not read_only:
            workspace.ensure()
        con = _open(workspace.db_path, read_only, lock_timeout() if timeout is None else timeout)
        try:
            if read_only:
                lock_down(con, workspace.tables_dir, memory_limit)
            else:
                migrate(con)
            register_views(con, workspace)
            create_workspace_views(con)
            yield con
        except BaseException:
            _close_after_error(con)
            raise
        con.close()


def _close_after_error(con) -> None:
    """Close a connection whose user failed, keeping that failure (closing may fail the same way)."""
    import duckdb

    try:
        con.close()
    except duckdb.Error:
        pass
