"""Finding the videos of a collection: walk a folder, or read a list of paths.

Every entry whose name ends in a video extension becomes a :class:`Candidate`, including the
ones that can never be a video (a directory named ``x.mp4``, a broken symbolic link, a FIFO):
those carry a ``problem`` so that the runner records them as error rows instead of skipping them
silently. Nothing here opens a file; :mod:`jungle.ingest.probe` does that in worker processes.

Identity: ``video_id`` is the first 16 hex digits of the SHA-1 of the absolute path (made
absolute, not symlink-resolved: two links to one file are two videos, as they are two entries
of the collection). ``relpath`` is relative to the folder given (or to the list file's folder);
``site`` is the parent folder of ``relpath`` (the camera / site in the usual layouts), None for
files directly in the root.
"""

from __future__ import annotations

import csv
import errno
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..userfiles import read_user_text
from ..hashing import path_key

__all__ = [
    "VIDEO_EXTENSIONS",
    "LIST_EXTENSIONS",
    "Candidate",
    "Discovery",
    "video_id",
    "is_video_name",
    "discover",
    "walk_directory",
    "read_path_list",
]

#: Video containers met in camera-trap collections (matched case-insensitively).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".asf", ".wmv", ".m4v", ".mts")

#: File types read as a list of paths instead of a video.
LIST_EXTENSIONS: tuple[str, ...] = (".csv", ".txt", ".lst", ".list")

#: Column names, in order of preference, that hold the paths in a CSV list.
_PATH_COLUMNS = ("filepath", "path", "file", "filename")

_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Candidate:
    """One entry of the collection that may be a video.

    Attributes:
        path: absolute path (not symlink-resolved).
        relpath: POSIX path relative to the ingest root.
        site: parent folder of ``relpath``; None when the file sits in the root.
        bytes: file size; None when the entry is not a regular file.
        mtime: modification time (UTC, microseconds); None when it cannot be read.
        problem: why the entry cannot be a video (None for a regular file, which only the probe
            can judge).
    """

    path: str
    relpath: str
    site: str | None
    bytes: int | None
    mtime: datetime | None
    problem: str | None = None

    @property
    def video_id(self) -> str:
        return video_id(self.path)

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found.

    Attributes:
        root: the folder relpaths are relative to.
        candidates: video-named entries, sorted by path, no path twice.
        warnings: things that are not videos but that the user should hear about (an unreadable
            folder, a blank line of a list).
    """

    root: str
    candidates: tuple[Candidate, ...]
    warnings: tuple[str, ...] = ()


def video_id(path: str | os.PathLike) -> str:
    """The stable id of a video: SHA-1 of its absolute path, 16 hex digits (:func:`~jungle.hashing.path_key`)."""
    return path_key(path)


def is_video_name(name: str) -> bool:
    """True when ``name`` ends in one of :data:`VIDEO_EXTENSIONS`, any case."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _mtime(st: os.stat_result) -> datetime:
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


def _describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "it is a directory, not a video file. Rename it or move it out of the collection"
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"it is {kind}, not a video file; it cannot be read like one. Remove it from the collection"


def _stat_problem(path: str, exc: OSError) -> str:
    """A readable reason why ``os.stat(path)`` failed."""
    if os.path.islink(path):
        if exc.errno == errno.ELOOP:
            return "it is a symbolic link loop (too many levels of symbolic links). Fix or remove the link"
        target = os.readlink(path)
        return f"it is a broken symbolic link (its target {target} does not exist). Fix or remove the link"
    if exc.errno == errno.ENOENT:
        return "the file does not exist. Check the path, or remove it from the list"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied. Make the file readable (chmod) for the user running jungle"
    return f"it cannot be accessed ({exc.strerror or exc}). Check the file and the disk"


def _relative(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return PurePosixPath(Path(path)).as_posix()
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return Path(path).as_posix()
    return Path(rel).as_posix()


def _printable(text: str) -> str:
    """``text`` with bytes that are not UTF-8 (kept by Python as surrogates) shown as \\xNN."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _candidate(path: str, root: str) -> Candidate:
    """Stat one entry (following symlinks) and describe it."""
    path = os.path.abspath(path)
    relpath = _relative(path, root)
    parent = str(PurePosixPath(relpath).parent)
    site = None if parent in (".", "") else parent
    if _printable(path) != path:  # the database stores text: such a name cannot be stored or found again
        return Candidate(_printable(path), _printable(relpath), site and _printable(site), None, None,
                         "its name is not valid UTF-8 text. Rename the file (e.g. `convmv -f latin1 -t utf8`)")
    try:
        st = os.stat(path)
    except OSError as exc:
        try:
            mtime = _mtime(os.lstat(path))
        except OSError:
            mtime = None
        return Candidate(path, relpath, site, None, mtime, _stat_problem(path, exc))
    if not stat.S_ISREG(st.st_mode):
        return Candidate(path, relpath, site, None, _mtime(st), _describe_kind(st.st_mode))
    return Candidate(path, relpath, site, st.st_size, _mtime(st))


def walk_directory(root: str | os.PathLike) -> Discovery:
    """Every video-named entry under ``root``, recursively.

    Symbolic links to folders are followed (each real folder once, so link loops end);
    unreadable folders are reported in ``warnings``.
    """
    root = os.path.abspath(root)
    found: list[Candidate] = []
    warnings: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(folder))
        except OSError as exc:
            warnings.append(f"cannot list folder {folder}: {exc.strerror or exc}; its videos were not ingested")
            continue
        for entry in entries:
            if is_video_name(entry.name):
                found.append(_candidate(entry.path, root))
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(entry.path)
            except OSError:
                pass  # broken link or loop: already recorded above when video-named
    found.sort(key=lambda c: c.path)
    return Discovery(root, tuple(found), tuple(warnings))


def _read_list_paths(list_file: Path) -> tuple[list[str], list[str]]:
    """Paths in a CSV (a column named filepath/path/file/filename) or a plain one-per-line list."""
    lines = read_user_text(list_file, "list of paths").splitlines()  # a regular file: no FIFO, no /dev/zero
    if list_file.suffix.lower() != ".csv":
        return [line.strip() for line in lines if line.strip()], []
    reader = csv.DictReader(lines)
    header = {name.strip().lower(): name for name in reader.fieldnames or []}
    column = next((header[c] for c in _PATH_COLUMNS if c in header), None)
    if column is None:
        raise InputError(f"{list_file}: no path column; expected one of {', '.join(_PATH_COLUMNS)} "
                         f"in the header, found {', '.join(header) or 'nothing'}")
    paths, warnings = [], []
    for row in reader:
        path = (row.get(column) or "").strip()
        if path:
            paths.append(path)
        else:
            warnings.append(f"{list_file}: line {reader.line_num} has no {column}; skipped")
    return paths, warnings


def read_path_list(list_file: str | os.PathLike) -> Discovery:
    """The videos named in a list file (CSV with a path column, or one path per line).

    Relative paths are relative to the list file's folder, which is also the root of relpaths.
    Every listed path becomes a candidate, whatever its extension (the list is explicit), and
    a path that does not exist gets a problem.
    """
    list_file = Path(list_file).absolute()
    root = str(list_file.parent)
    paths, warnings = _read_list_paths(list_file)
    by_path: dict[str, Candidate] = {}
    for raw in paths:
        path = os.path.abspath(os.path.join(root, os.path.expanduser(raw)))
        if path not in by_path:
            by_path[path] = _candidate(path, root)
    found = sorted(by_path.values(), key=lambda c: c.path)
    return Discovery(root, tuple(found), tuple(warnings))


def discover(source: str | os.PathLike) -> Discovery:
    """Candidates from a folder (walked recursively) or a list file (CSV / text of paths).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: ``source`` is a file that is neither a folder nor a list of paths.
    """
    source = Path(source)
    if source.is_dir():
        return walk_directory(source)
    if not source.exists():
        raise InputError(f"{source} does not exist. Give a folder of videos or a CSV/text list of paths")
    if source.suffix.lower() in LIST_EXTENSIONS:
        return read_path_list(source)
    if is_video_name(source.name):
        return Discovery(str(source.absolute().parent), (_candidate(str(source), str(source.absolute().parent)),))
    raise InputError(f"{source} is neither a folder nor a list of paths ({', '.join(LIST_EXTENSIONS)}). "
                     "Give a folder of videos or a CSV/text list of paths")
