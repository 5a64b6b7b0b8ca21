"""Reading the files a user names on the command line: label and key files, video lists, class
lists, deployments, taxonomy and metadata files.

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

__all__ = ["MAX_USER_FILE", "is_user_file", "read_user_file", "read_user_text"]

MAX_USER_FILE = 256 * 2**20
"""The most bytes read of one file a user names (a key file of millions of rows fits)."""


def _kind(mode: int) -> str:
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
            raise error(f"the {what} {shown} is {_kind(info.st_mode)}, not a file: give the path of a file.")
        if info.st_size > limit:
            raise error(f"the {what} {shown} is {info.st_size} bytes, more than the {limit} jungle reads: "
                        "check it is the right file.")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise error(f"cannot read the {what} {shown}: {exc.strerror or exc}. Check the path.") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
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
