"""Operating-system failures at the workspace's edge, told as what failed and what to do.

A full disk or a read-only workspace shows up deep inside DuckDB, Zarr, Parquet or a plain file
write, as ``IOException ... No space left on device`` or ``PermissionError``. :func:`storage_error`
recognises those (by errno, or by the OS message DuckDB copies into its own errors) and turns them
into :class:`DiskFull` or :class:`WorkspaceNotWritable`, whose messages name the file and say how
to go on. :func:`storage_errors` does it for a block of code; the store's connection, transactions,
array and table writers and the featurize locks use it, so the command line prints one line
instead of a traceback. Anything else passes through unchanged.
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from typing import Iterator

from ..errors import JungleError, WorkspaceError

__all__ = ["DiskFull", "WorkspaceNotWritable", "storage_error", "storage_errors"]


class DiskFull(WorkspaceError):
    """A write failed for lack of space (or a quota or file-size limit); finished work is kept."""


class WorkspaceNotWritable(WorkspaceError):
    """The workspace (or a file in it) cannot be written: permissions or a read-only file system."""


#: errno -> (what happened, how to make room)
_NO_ROOM = {
    errno.ENOSPC: ("disk full", "free space"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota"),
    errno.EFBIG: ("file size limit reached", "raise the limit (`ulimit -f`)"),
}
_NOT_WRITABLE = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                 errno.EROFS: "read-only file system"}
_QUOTED_FILE = re.compile(r'file "([^"]+)"')


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind ``exc``: its own, its cause's, or the OS message a library copied into its text."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError) and candidate.errno in _NO_ROOM.keys() | _NOT_WRITABLE.keys():
            return candidate.errno
    text = str(exc)
    for number in (*_NO_ROOM, *_NOT_WRITABLE):
        if os.strerror(number) in text:
            return number
    return None


def _file_of(exc: BaseException, fallback: str | os.PathLike | None) -> str:
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError) and candidate.filename:
            return os.fsdecode(candidate.filename)
    quoted = _QUOTED_FILE.search(str(exc))  # DuckDB: Could not write file "/ws/jungle.duckdb.wal": ...
    return quoted.group(1) if quoted else str(fallback or "the workspace")


def storage_error(exc: BaseException, root: str | os.PathLike | None = None,
                  path: str | os.PathLike | None = None) -> WorkspaceError | None:
    """The jungle error that explains ``exc`` when it is a full disk or an unwritable workspace, else None.

    Args:
        exc: what a write raised (``OSError``, a DuckDB or Zarr error).
        root: the workspace being written, named in the message (None: only the file is named).
        path: the file or folder being written, named when ``exc`` does not say (Zarr's errors do not).
    """
    if isinstance(exc, JungleError):
        return None
    number = _errno_of(exc)
    if number is None:
        return None
    path = _file_of(exc, path or root)
    if number in _NO_ROOM:
        what, remedy = _NO_ROOM[number]
        return DiskFull(f"{what} while writing {path}: {remedy} and run the same command again "
                        "(nothing finished is lost).")
    where = f"the workspace {root}" if root is not None else path
    how = "remount it read-write" if number == errno.EROFS else f"`chmod -R u+w {root or path}`"
    return WorkspaceNotWritable(
        f"{where} is not writable ({_NOT_WRITABLE[number]}: {path}): make it writable ({how}) or use "
        "another workspace (--workspace DIR), then run the same command again.")


@contextmanager
def storage_errors(root: str | os.PathLike | None = None, path: str | os.PathLike | None = None) -> Iterator[None]:
    """Run the block; a full disk or an unwritable file there raises :class:`DiskFull` or
    :class:`WorkspaceNotWritable` (from the original error), a query DuckDB ended on Ctrl-C raises
    ``KeyboardInterrupt``, anything else passes unchanged.
    ``root`` and ``path`` are as in :func:`storage_error`."""
    try:
        yield
    except Exception as exc:
        if _interrupted_query(exc):  # DuckDB ends a query on Ctrl-C with its own error: it is a Ctrl-C
            raise KeyboardInterrupt from None
        error = storage_error(exc, root, path)
        if error is None:
            raise
        raise error from exc


def _interrupted_query(exc: Exception) -> bool:
    import duckdb

    return isinstance(exc, duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc) == "Query interrupted")
