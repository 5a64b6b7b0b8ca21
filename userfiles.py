"""Reading the files a user names on the command line (label and key files, video lists, class
lists, deployments, taxonomy and metadata files) and writing the ones a command makes for them
(reports, submissions).

A path may name anything: ``/dev/zero`` (endless), a FIFO (blocks until a writer comes), a folder,
a name longer than the file system allows. :func:`read_user_file` opens without blocking, reads
only a regular file, and at most ``limit`` bytes, so each of those is one jungle error line naming
the path and what to give instead, never a hang, a memory blow-up or a traceback.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import InputError

__all__ = ["MAX_USER_FILE", "check_output_file", "is_user_file", "read_user_file", "read_user_text", "write_user_text"]

MAX_USER_FILE = 256 * 2**20
"""The most bytes read of one file a user names (a key file of millions of rows fits)."""


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words ("a FIFO", "a folder", ...)."""
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def is_user_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an existing regular file (False for anything else, and for names no
    file can have: too long, a NUL byte)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_capped(fd: int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes from the open file ``fd``, read in 1 MiB pieces (one byte more than
    ``limit`` says the file is larger, whatever its size claimed)."""
    chunks, left = [], limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_user_file(path: str | os.PathLike, what: str, error: type[InputError] = InputError,
                   limit: int = MAX_USER_FILE) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in messages, e.g. "labels file").

    Raises:
        error: the path is missing, not a regular file (a folder, a FIFO, a device), unreadable, or
            larger than ``limit``.
    """
    shown = str(path) if len(str(path)) <= 200 else str(path)[:200] + "..."
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:
        reason = "no such file" if getattr(exc, "errno", None) == errno.ENOENT else \
            getattr(exc, "strerror", None) or str(exc)
        raise error(f"cannot read the {what} {shown}: {reason}. Check the path.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"the {what} {shown} is {file_kind(info.st_mode)}, not a file: give the path of a file.")
        if info.st_size > limit:
            raise error(f"the {what} {shown} is {info.st_size} bytes, more than the {limit} jungle reads: "
                        "check it is the right file.")
        data = read_capped(fd, limit)
    except OSError as exc:
        raise error(f"cannot read the {what} {shown}: {exc.strerror or exc}. Check the path.") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"the {what} {shown} is more than the {limit} bytes jungle reads: check it is the right file.")
    return data


def read_user_text(path: str | os.PathLike, what: str, error: type[InputError] = InputError,
                   limit: int = MAX_USER_FILE) -> str:
    """:func:`read_user_file` decoded as UTF-8 (a byte-order mark dropped).

    Raises:
        error: as :func:`read_user_file`, or the file is not UTF-8 text.
    """
    data = read_user_file(path, what, error, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"the {what} {Path(path)} is not UTF-8 text (byte {exc.start}): save it as UTF-8.") from None


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a file a command may write: missing, or a regular file (replaced whole), never a
    folder, FIFO or device. Commands call it before their work, so a bad ``--out`` costs nothing.

    Raises:
        InputError: ``path`` is a folder, a FIFO or a device.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return path  # nothing there yet (or a name the write itself names in its error)
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is {file_kind(mode)}, not a file: give the name of a file to write (it is replaced "
                         "whole).")
    return path


def write_user_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed into place: a reader
    never sees half a file, and a failure (a full or read-only disk, a folder in the way) leaves no
    temporary file and the earlier file as it was.

    Raises:
        DiskFull, WorkspaceNotWritable: no room, or no right to write there.
        InputError: ``path`` is a folder, a FIFO or a device (never replaced).
    """
    import tempfile

    from .store.failures import storage_error

    path = check_output_file(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise (storage_error(exc, path=path) or exc) from None
    return path
