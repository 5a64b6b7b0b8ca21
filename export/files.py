"""Deterministic, atomic file writing for exports.

Every export first renders its files as text (CSV with fixed columns and ``\\n`` line ends, JSON
with fixed indentation and no ``NaN``), checks them, and only then writes them:

* a single-file export (CSV, MegaDetector JSON) and its record go to temporary names beside their
  targets and are renamed into place together;
* a package (Camtrap DP) is written into a temporary folder beside the target folder, which is
  then renamed over it.

A failure (a full disk, a read-only place, a target that is a file where a folder is wanted) is
one :class:`ExportWriteError` line; the temporary files are removed, and an earlier export at the
target stays as it was.

Cells are written exactly as the data holds them, also when a text starts with ``=``, ``+``,
``-`` or ``@`` (spreadsheet programs may run such a cell as a formula): Camtrap DP data and the
submission's filenames must stay exact. :func:`formula_cells` counts them so the command can say so.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from pydantic import BaseModel

from ..errors import EnvironmentProblem, InputError
from ..store.registry import code_version
from ..userfiles import check_output_file

__all__ = ["ExportWriteError", "FORMULA_STARTS", "cell", "check_file_target", "csv_text", "formula_cells",
           "formula_note", "json_text", "record_path", "record_text", "replace_folder", "write_files"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet program read a text cell as a formula."""


class ExportWriteError(EnvironmentProblem):
    """An export's files could not be written where asked; nothing at the target changed."""


def cell(value: Any) -> str:
    """A CSV cell: empty for None, ``true``/``false`` for booleans, shortest round-trip repr for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(columns: Sequence[str], rows: Sequence[dict]) -> str:
    """``rows`` (dicts; missing keys are empty cells) under ``columns``, in the order given, as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[cell(row.get(c)) for c in columns] for row in rows])
    return out.getvalue()


def json_text(data: Any, what: str = "the export") -> str:
    """``data`` as indented JSON (keys in the order given) ending with a newline.

    Raises:
        InputError: a value is NaN or infinite, which JSON cannot hold.
    """
    try:
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:
        raise InputError(f"{what} would hold NaN or an infinite number, which JSON cannot hold: check the numbers "
                         "given (coordinates, --metadata) and the model's probabilities.") from None


def formula_cells(rows: Sequence[dict], columns: Sequence[str]) -> int:
    """Text cells (not numbers) that start like a spreadsheet formula."""
    return sum(1 for row in rows for c in columns
               if isinstance(row.get(c), str) and row[c].startswith(FORMULA_STARTS) and not _number(row[c]))


def formula_note(count: int, where) -> tuple[str, ...]:
    """The note a command prints when ``count`` cells of ``where`` start like a formula (none for 0)."""
    if not count:
        return ()
    return (f"{count} text cell{'s' if count != 1 else ''} in {where} start with =, +, -, @, a tab or a carriage "
            "return and are written exactly; a spreadsheet program may run such a cell as a formula: import the "
            "file as text rather than opening it directly.",)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def record_path(output: Path) -> Path:
    """Where the record of a single-file export goes: ``NAME.export.json`` beside ``NAME.EXT``."""
    output = Path(output)
    return output.with_name(output.stem + ".export.json")


def check_file_target(out: Path) -> Path:
    """``out`` and its record (:func:`record_path`) as files a single-file export may write, checked
    before any work: missing or regular files, never a folder (``''`` is the current folder), FIFO or device.

    Raises:
        InputError: naming the path and what to give instead.
    """
    out = check_output_file(out)
    if out.name in ("", ".", ".."):
        raise InputError(f"{out} names a folder, not a file: give the name of a file to write.")
    check_output_file(record_path(out))
    return out


def record_text(config: BaseModel, **facts: Any) -> str:
    """The export's typed configuration, the code version and what was decided from the data
    (model, thresholds, counts) as JSON text."""
    return json_text({"export": type(config).__name__, "code_version": code_version(),
                      "config": config.model_dump(mode="json"), **facts}, "the export record")


# --------------------------------------------------------------------------- failures
_WHY = {errno.ENOSPC: ("the disk is full", "free space"), errno.EDQUOT: ("the disk quota is exceeded", "free space"),
        errno.EROFS: ("the file system is read-only", "choose a writable place"),
        errno.EACCES: ("permission denied", "choose a place you may write"),
        errno.EPERM: ("permission denied", "choose a place you may write"),
        errno.EISDIR: ("it is a folder", "give a file name"),
        errno.ENOTDIR: ("a part of the path is a file, not a folder", "give a path through folders"),
        errno.ENAMETOOLONG: ("the name is too long", "give a shorter path")}


def _failed(path: Path, exc: OSError, what: str) -> ExportWriteError:
    why, remedy = _WHY.get(exc.errno, (exc.strerror or type(exc).__name__, "check the path"))
    return ExportWriteError(f"cannot write {path}: {why}; {remedy} and run the same command again. Nothing was "
                            f"changed ({what}, if any, is as it was).")


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass


# --------------------------------------------------------------------------- writing
def write_files(texts: dict[Path, str]) -> list[Path]:
    """Write every (path, text): all to temporary names beside their targets first, then each
    renamed into place; on a failure the temporary files are removed and the targets untouched.

    Raises:
        ExportWriteError: a target is a folder, or a file cannot be written (disk full, read-only, ...).
    """
    written: list[tuple[Path, Path]] = []
    path = Path()
    try:
        for path, text in texts.items():
            path = Path(path)
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
            if path.exists() and not path.is_file():  # a FIFO or a device is never replaced
                raise ExportWriteError(f"{path} exists and is not a regular file: give the name of a file to write. "
                                       "Nothing was written.")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            written.append((Path(name), path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        for tmp, path in written:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in written:
            _remove(tmp)
        raise _failed(path, exc, "the earlier file") from None
    return [path for _, path in written]


@contextmanager
def replace_folder(out_dir: Path, names: Sequence[str]) -> Iterator[Path]:
    """A fresh temporary folder beside ``out_dir`` to write the files ``names`` into; when the block
    ends without error it replaces ``out_dir`` (rename), else it is removed.

    ``out_dir`` may be missing, empty, or an earlier export holding only ``names``: a folder with
    other files, or a file, is refused before anything is written, so nothing of the user's is lost.

    Raises:
        ExportWriteError: ``out_dir`` is a file or holds other files, or writing fails.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise ExportWriteError(f"{out_dir} is a file, not a folder: give the package a new folder (or an earlier "
                                   "package's). Nothing was written.")
        others = sorted(set(os.listdir(out_dir)) - set(names))
        if others:
            raise ExportWriteError(f"{out_dir} holds other files ({', '.join(others[:5])}): give the package a new "
                                   "or empty folder (or an earlier package's). Nothing was written.")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    except OSError as exc:
        raise _failed(out_dir, exc, "the earlier package") from None
    try:
        yield tmp
        _swap(tmp, out_dir)
    except OSError as exc:
        _remove(tmp)
        raise _failed(out_dir, exc, "the earlier package") from None
    except BaseException:
        _remove(tmp)
        raise


def _swap(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``, replacing an earlier one: the earlier folder is moved aside
    first and put back if the rename fails."""
    if not target.exists():
        os.rename(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, aside / "package")
    try:
        os.rename(new, target)
    except OSError:
        os.rename(aside / "package", target)
        _remove(aside)
        raise
    _remove(aside)
