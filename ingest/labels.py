"""Label import: the Pri-matrix wide format and a long ``filepath,label`` format, validated.

Two formats are read (the format is recognised from the header):

- **wide** (Pri-matrix ``train_labels.csv``): a ``filename`` column and one 0/1 column per class,
  the class columns in any order. Values may be written ``0``/``1`` or ``0.0``/``1.0``.
- **long**: a ``filepath`` (or ``path`` / ``filename``) column and a ``label`` column, one row per
  (video, positive class); other columns (e.g. ``split``) are ignored. Classes a video has no row
  for are 0.

The file is read, and its keys matched to videos, as every key file is (:mod:`jungle.ingest.keyfile`):
UTF-8 (a byte-order mark is fine) or UTF-16/UTF-32 with a byte-order mark (as Excel writes "Unicode
text"); the delimiter is read from the header line: comma, tab or semicolon. Binary files, UTF-16
without a byte-order mark and other encodings are refused with what to do. A header
that names a column it reads twice (a class column in the wide format, ``label`` or the key
column in the long format) is refused: a CSV reader would silently keep one of them.

A key is matched to an ingested video by its absolute path (relative keys are relative to the
label file's folder), else by path suffix (``site/clip.mp4`` matches ``/data/site/clip.mp4``; a bare
file name matches by name), and it must match exactly one video.

Validation collects every problem before writing anything, and the error lists them: unknown
class names, class columns missing from a wide file, values other than 0/1, duplicate rows,
empty keys or labels, keys that match several videos, and labels for videos that are not
ingested (skip those instead with ``allow_missing``). Nothing is written unless the file is clean.

Writing: ``classes`` holds the configured class list (default
:data:`jungle.classes.PRIMATRIX_CLASSES`, the competition's column order); ``labels`` gets one
row per (labelled video, class) with every class present, replacing earlier labels of those
videos.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
from pydantic import model_validator

from ..classes import PRIMATRIX_CLASSES
from ..config import JungleConfig
from ..errors import InputError
from ..userfiles import is_user_file, read_user_text
from ..store.db import connect, transaction
from ..store.labels import read_classes, read_labelled, write_classes, write_labels
from ..store.videos import read_videos
from ..store.workspace import Workspace
from .keyfile import (DELIMITERS, KeyFileKind, Problems, decode_text, duplicated_columns, match_keys, read_rows,
                      sniff_delimiter)
from .keyfile import key_column as find_key_column

__all__ = [
    "LabelsError",
    "LabelsConfig",
    "LabelFile",
    "LabelsSummary",
    "parse_classes",
    "decode_label_text",
    "sniff_delimiter",
    "duplicated_columns",
    "read_label_file",
    "match_videos",
    "import_labels",
]

_SHOWN = 5  # examples shown per kind of problem


class LabelsError(InputError):
    """The label file (or the request) is invalid; the message lists every problem and what to do."""


LABEL_FILE = KeyFileKind(noun="label file", what="labels", header="`filename,bird,blank,...` or `filepath,label`",
                         error=LabelsError)


class LabelsConfig(JungleConfig):
    """A labels import.

    Attributes:
        path: the CSV file.
        classes: the class list, in order.
        allow_missing: skip labels of videos that are not ingested (default: refuse the file).
        replace: delete every existing label first (needed to change the class list).
    """

    error: ClassVar[type[InputError]] = LabelsError

    path: str
    classes: tuple[str, ...] = PRIMATRIX_CLASSES
    allow_missing: bool = False
    replace: bool = False

    @model_validator(mode="after")
    def _valid(self):
        if not self.classes:
            raise LabelsError("the class list is empty")
        duplicated = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if duplicated:
            raise LabelsError(f"the class list names {', '.join(map(repr, duplicated))} more than once")
        return self


@dataclass(frozen=True)
class LabelFile:
    """A parsed, validated label file.

    Attributes:
        path: the file.
        format: ``'wide'`` or ``'long'``.
        keys: the video key of each labelled video (file order, unique).
        lines: the (first) line of each key.
        values: (len(keys), len(classes)) int8 matrix of 0/1.
        classes: the class order of ``values``.
    """

    path: str
    format: str
    keys: tuple[str, ...]
    lines: tuple[int, ...]
    values: np.ndarray
    classes: tuple[str, ...]


@dataclass
class LabelsSummary:
    """What an import did."""

    path: str
    format: str
    videos: int
    positives: int
    classes: int
    skipped: list[str] = field(default_factory=list)

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["labels_file", "format", "videos", "positives", "classes", "skipped_not_ingested"]
        return columns, [(self.path, self.format, self.videos, self.positives, self.classes, len(self.skipped))]


def parse_classes(text: str | os.PathLike | None) -> tuple[str, ...]:
    """A class list from a comma-separated string or a file with one class per line (None: Pri-matrix)."""
    if text is None:
        return PRIMATRIX_CLASSES
    if is_user_file(text):
        items = read_user_text(text, "class list file", LabelsError).splitlines()
    elif os.path.lexists(str(text)):
        raise LabelsError(f"--classes {str(text)[:80]} is not a regular file: give a file with one class per line, "
                          "or the classes separated by commas.")
    else:
        items = str(text).split(",")
    classes = tuple(item.strip() for item in items if item.strip())
    if not classes:
        raise LabelsError(f"no class names in {text!r}: give a comma-separated list or a file with one class per line")
    return classes


def _value(text: str) -> int | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number in (0.0, 1.0) else None


def decode_label_text(path: Path, data: bytes) -> str:
    """The text of a label file (see :func:`jungle.ingest.keyfile.decode_text`).

    Raises:
        LabelsError: binary data, UTF-16 without a byte-order mark, or bytes that are not UTF-8.
    """
    return decode_text(LABEL_FILE, path, data)


def _class_list(classes: Sequence[str]) -> str:
    return ", ".join(classes)


def _refuse_duplicated_columns(path: Path, header: Sequence[str], key_column: str, label_column: str | None) -> None:
    """Refuse a header that names a column it reads twice (a reader would keep one silently)."""
    if label_column is not None:
        read, advice = ("label", key_column.lower()), ("Keep one label column: a video with several labels takes "
                                                       "one row per label.")
    else:
        read, advice = None, "Keep one column per class (and one filename column)."
    problems = Problems(LABEL_FILE, str(path))
    for name, positions in duplicated_columns(header, read, fold_case=(key_column, "label")).items():
        where = ", ".join(map(str, positions[:-1])) + f" and {positions[-1]}"
        problems.add("duplicated columns", f"{name!r} (columns {where})", advice)
    problems.raise_if_any()


def read_label_file(path: str | os.PathLike, classes: Sequence[str] = PRIMATRIX_CLASSES) -> LabelFile:
    """Parse and validate a label file against ``classes`` (see the module docstring).

    Raises:
        LabelsError: every problem found, in one message.
    """
    path = Path(path)
    header, rows, delimiter = read_rows(LABEL_FILE, path)
    classes = tuple(classes)
    problems = Problems(LABEL_FILE, str(path))
    known = " Known classes: " + _class_list(classes) + " (set the list with --classes)."
    label_column = next((h for h in header if h.lower() == "label"), None)
    key_column = find_key_column(header)
    if key_column is None:
        raise LabelsError(f"the label file {path} has no filename/filepath column (header, read as "
                          f"{DELIMITERS[delimiter]}: {', '.join(header) or 'empty'}). "
                          "Expected Pri-matrix `filename,<class>,...` or long `filepath,label`.")
    _refuse_duplicated_columns(path, header, key_column, label_column)
    position = {c: i for i, c in enumerate(classes)}
    labelled: dict[str, tuple[int, np.ndarray]] = {}
    first_line: dict[str, int] = {}
    if label_column is not None:
        fmt = "long"
        pairs: dict[tuple[str, str], int] = {}
        unknown: dict[str, list[int]] = defaultdict(list)
        for line, row in rows:
            key, label = (row.get(key_column) or "").strip(), (row.get(label_column) or "").strip()
            if not key:
                problems.add("rows without a video", f"line {line}")
                continue
            if not label:
                problems.add("rows without a label", f"line {line}")
                continue
            if label not in position:
                unknown[label].append(line)
                continue
            if (key, label) in pairs:
                problems.add("duplicate rows", f"{key} {label!r} (lines {pairs[key, label]} and {line})",
                             "Remove the repeated rows.")
                continue
            pairs[key, label] = line
            first_line.setdefault(key, line)
            vector = labelled.setdefault(key, (line, np.zeros(len(classes), np.int8)))[1]
            vector[position[label]] = 1
        for label, lines in unknown.items():
            shown = ", ".join(map(str, lines[:_SHOWN])) + (", ..." if len(lines) > _SHOWN else "")
            problems.add("unknown classes", f"{label!r} ({len(lines)} rows: line {shown})", known.strip())
    else:
        fmt = "wide"
        columns = [h for h in header if h != key_column]
        for name in columns:
            if name not in position:
                problems.add("unknown classes", f"column {name!r}", known.strip())
        missing = [c for c in classes if c not in columns]
        if missing:
            problems.add("class columns missing", ", ".join(map(repr, missing)),
                         "A wide label file needs one 0/1 column per class.")
        usable = [c for c in columns if c in position]
        for line, row in rows:
            key = (row.get(key_column) or "").strip()
            if not key:
                problems.add("rows without a video", f"line {line}")
                continue
            if key in first_line:
                problems.add("duplicate rows", f"{key} (lines {first_line[key]} and {line})",
                             "Keep one row per video.")
                continue
            first_line[key] = line
            vector = np.zeros(len(classes), np.int8)
            for name in usable:
                value = _value((row.get(name) or "").strip())
                if value is None:
                    problems.add("values that are not 0 or 1",
                                 f"{(row.get(name) or '').strip()!r} for {name!r} (line {line})",
                                 "Every class column holds 0 or 1.")
                    continue
                vector[position[name]] = value
            labelled[key] = (line, vector)
    if not rows:
        problems.add("no rows", "the file has a header but no labels")
    problems.raise_if_any()
    keys = tuple(labelled)
    return LabelFile(
        path=str(path.absolute()),
        format=fmt,
        keys=keys,
        lines=tuple(labelled[k][0] for k in keys),
        values=np.stack([labelled[k][1] for k in keys]) if keys else np.zeros((0, len(classes)), np.int8),
        classes=classes,
    )


def match_videos(label_file: LabelFile, videos: Sequence[tuple[str, str]],
                 allow_missing: bool = False) -> tuple[list[str | None], list[str]]:
    """The video id of each key of ``label_file`` (None when skipped as not ingested).

    Args:
        label_file: a parsed label file.
        videos: (video_id, absolute path) of every ingested video.
        allow_missing: skip keys that match no video instead of failing.

    Returns:
        (video id or None per key, the skipped keys).

    Raises:
        LabelsError: keys that match several videos, two keys for one video, or (unless
            ``allow_missing``) keys that match none.
    """
    return match_keys(LABEL_FILE, label_file.path, label_file.keys, label_file.lines, videos, allow_missing)


def _check_classes(con, classes: tuple[str, ...], replace: bool) -> bool:
    """Whether the class list changes; :class:`LabelsError` when it would leave existing labels
    under another class list."""
    current = read_classes(con, required=False)
    if current == classes:
        return False
    if current and not replace and len(read_labelled(con, None, required=False)):
        raise LabelsError(f"the workspace's labels use another class list ({_class_list(current)}). Import with the "
                          "same --classes, or pass --replace to delete every existing label first.")
    return True


def import_labels(workspace: Workspace, config: LabelsConfig) -> LabelsSummary:
    """Validate ``config.path`` against the ingested videos and write ``classes`` and ``labels``.

    Raises:
        LabelsError: the file or the request is invalid; nothing was written.
    """
    label_file = read_label_file(config.path, config.classes)
    with connect(workspace) as con:
        ids, skipped = match_videos(label_file, read_videos(con, ("video_id", "path")), config.allow_missing)
        keep = np.array([vid is not None for vid in ids], dtype=bool)
        values = label_file.values[keep]
        kept_ids = [vid for vid in ids if vid is not None]
        with transaction(con):
            if _check_classes(con, config.classes, config.replace):
                write_classes(con, config.classes)
            write_labels(con, kept_ids, config.classes, values, label_file.path, replace_all=config.replace)
    return LabelsSummary(path=label_file.path, format=label_file.format, videos=int(keep.sum()),
                         positives=int(values.sum()), classes=len(config.classes), skipped=skipped)
