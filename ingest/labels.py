"""Label import: the Pri-matrix wide format and a long ``filepath,label`` format, validated.

Two formats are read (the format is recognised from the header):

- **wide** (Pri-matrix ``train_labels.csv``): a ``filename`` column and one 0/1 column per class,
  the class columns in any order. Values may be written ``0``/``1`` or ``0.0``/``1.0``.
- **long**: a ``filepath`` (or ``path`` / ``filename``) column and a ``label`` column, one row per
  (video, positive class); other columns (e.g. ``split``) are ignored. Classes a video has no row
  for are 0.

The file is UTF-8 (a byte-order mark is fine) or UTF-16/UTF-32 with a byte-order mark (as Excel
writes "Unicode text"); the delimiter is read from the header line: comma, tab or semicolon. Binary
files, UTF-16 without a byte-order mark and other encodings are refused with what to do. A header
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

import codecs
import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar, Sequence

import numpy as np
from pydantic import model_validator

from ..classes import PRIMATRIX_CLASSES
from ..config import JungleConfig
from ..errors import InputError
from ..store.db import connect, transaction
from ..store.workspace import Workspace

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

_KEY_COLUMNS = ("filepath", "path", "filename")
_SHOWN = 5  # examples shown per kind of problem


class LabelsError(InputError):
    """The label file (or the request) is invalid; the message lists every problem and what to do."""


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


class _Problems:
    """Problems grouped by kind, each with examples (line numbers), rendered as one message."""

    def __init__(self, path: str):
        self.path = path
        self.kinds: dict[str, list[str]] = defaultdict(list)
        self.advice: dict[str, str] = {}

    def add(self, kind: str, example: str, advice: str = "") -> None:
        self.kinds[kind].append(example)
        if advice:
            self.advice[kind] = advice

    def raise_if_any(self) -> None:
        if not self.kinds:
            return
        lines = [f"the label file {self.path} has problems; no labels were imported:"]
        for kind, examples in self.kinds.items():
            more = f"; and {len(examples) - _SHOWN} more" if len(examples) > _SHOWN else ""
            shown = "; ".join(examples[:_SHOWN]) + more
            advice = f". {self.advice[kind]}" if kind in self.advice else ""
            count = f" ({len(examples)})" if len(examples) > 1 else ""
            lines.append(f"  - {kind}{count}: {shown}{advice}")
        raise LabelsError("\n".join(lines))


def parse_classes(text: str | os.PathLike | None) -> tuple[str, ...]:
    """A class list from a comma-separated string or a file with one class per line (None: Pri-matrix)."""
    if text is None:
        return PRIMATRIX_CLASSES
    candidate = Path(text)
    if candidate.is_file():
        items = candidate.read_text(encoding="utf-8-sig").splitlines()
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


_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_DELIMITERS = {",": "comma-separated", "\t": "tab-separated", ";": "semicolon-separated"}
_SAVE_AS = "Save it as UTF-8 CSV (in Excel: Save As > 'CSV UTF-8')."


def _binary_problem(sample: bytes) -> str | None:
    """Why ``sample`` (the file's first bytes, no byte-order mark) is not text, or None if it may be."""
    nul = sample.find(b"\0")
    if nul < 0:
        controls = sum(1 for b in sample if b < 32 and b not in b"\t\n\r\f")
        return f"{controls} control bytes in its first {len(sample)}" if controls > len(sample) // 20 else None
    if sample.count(0) > len(sample) // 3 and (sample[1::2].count(0) > len(sample) // 3
                                                or sample[0::2].count(0) > len(sample) // 3):
        return "UTF-16"
    return f"a NUL byte at byte {nul}"


def decode_label_text(path: Path, data: bytes) -> str:
    """The text of a label file: UTF-8 (with or without a byte-order mark), or UTF-16/32 with one.

    Raises:
        LabelsError: binary data, UTF-16 without a byte-order mark, or bytes that are not UTF-8.
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise LabelsError(f"the label file {path} starts like {name} text but byte {exc.start} is not "
                                  f"{name}. {_SAVE_AS}") from exc
    problem = _binary_problem(data[:4096])
    if problem == "UTF-16":
        raise LabelsError(f"the label file {path} looks like UTF-16 text without a byte-order mark, which "
                          f"cannot be read reliably. UTF-16: {_SAVE_AS[0].lower()}{_SAVE_AS[1:]}")
    if problem:
        raise LabelsError(f"the label file {path} is not a text file ({problem}). Give a CSV file: a header "
                          "line such as `filename,bird,blank,...` or `filepath,label`, then one line per video.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LabelsError(f"the label file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}; "
                          f"perhaps Latin-1 or Windows-1252). {_SAVE_AS}") from exc


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV from its header line: the most frequent of comma, tab and semicolon
    (comma when none occurs, or on a tie with it)."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def duplicated_columns(header: Sequence[str], read: Sequence[str] | None = None,
                       fold_case: Sequence[str] = ()) -> dict[str, list[int]]:
    """Column names that occur more than once in ``header``, with their 1-based positions.

    Args:
        header: the header, as written.
        read: only these names count (None: every name).
        fold_case: names compared without case (``Label`` repeats ``label``).
    """
    folded = {name.lower() for name in fold_case}
    positions: dict[str, list[int]] = defaultdict(list)
    for position, name in enumerate(header, start=1):
        key = name.lower() if name.lower() in folded else name
        if read is None or key in read or name in read:
            positions[key].append(position)
    return {name: where for name, where in positions.items() if len(where) > 1}


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]], str]:
    """(header, (line, row dict) per data row, delimiter) of a label file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabelsError(f"cannot read the label file {path}: {exc.strerror or exc}. Check the path.") from exc
    text = decode_label_text(path, data)
    if not text.strip():
        raise LabelsError(f"the label file {path} is empty. Give a header line such as `filename,bird,blank,...` "
                          "or `filepath,label`, then one line per video.")
    delimiter = sniff_delimiter(text.splitlines()[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    rows = [(reader.line_num, dict(zip(header, values))) for values in reader if values]
    return header, rows, delimiter


def _key_column(header: Sequence[str]) -> str | None:
    lowered = {h.lower(): h for h in header}
    return next((lowered[c] for c in _KEY_COLUMNS if c in lowered), None)


def _class_list(classes: Sequence[str]) -> str:
    return ", ".join(classes)


def _refuse_duplicated_columns(path: Path, header: Sequence[str], key_column: str, label_column: str | None) -> None:
    """Refuse a header that names a column it reads twice (a reader would keep one silently)."""
    if label_column is not None:
        read, advice = ("label", key_column.lower()), ("Keep one label column: a video with several labels takes "
                                                       "one row per label.")
    else:
        read, advice = None, "Keep one column per class (and one filename column)."
    problems = _Problems(str(path))
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
    header, rows, delimiter = _read_rows(path)
    classes = tuple(classes)
    problems = _Problems(str(path))
    known = " Known classes: " + _class_list(classes) + " (set the list with --classes)."
    label_column = next((h for h in header if h.lower() == "label"), None)
    key_column = _key_column(header)
    if key_column is None:
        raise LabelsError(f"the label file {path} has no filename/filepath column (header, read as "
                          f"{_DELIMITERS[delimiter]}: {', '.join(header) or 'empty'}). "
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
    base = os.path.dirname(label_file.path)
    by_path = {path: vid for vid, path in videos}
    by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for vid, path in videos:
        by_name[os.path.basename(path)].append((vid, PurePosixPath(Path(path)).as_posix()))
    problems = _Problems(label_file.path)
    matched: list[str | None] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}
    for key, line in zip(label_file.keys, label_file.lines):
        exact = by_path.get(os.path.abspath(os.path.join(base, key)))
        if exact is not None:
            hits = [exact]
        else:
            parts = PurePosixPath(key.replace("\\", "/")).parts
            suffix = "/" + "/".join(part for part in parts if part != "/")
            hits = [vid for vid, posix in by_name.get(os.path.basename(key.replace("\\", "/")), [])
                    if posix.endswith(suffix)]
        if len(hits) > 1:
            problems.add("keys that match several videos", f"{key} (line {line}, {len(hits)} videos)",
                         "Use a longer path (e.g. site/clip.mp4) in the label file.")
        elif not hits:
            if allow_missing:
                skipped.append(key)
                matched.append(None)
                continue
            problems.add("labels for videos that are not ingested", f"{key} (line {line})",
                         "Ingest those videos first, or pass --allow-missing to skip their labels.")
        elif hits[0] in seen:
            problems.add("duplicate rows", f"{seen[hits[0]]} and {key} are the same video (line {line})",
                         "Keep one row per video.")
        else:
            seen[hits[0]] = key
        matched.append(hits[0] if len(hits) == 1 else None)
    problems.raise_if_any()
    return matched, skipped


def _write_classes(con, classes: tuple[str, ...], replace: bool) -> None:
    current = tuple(r[0] for r in con.execute("SELECT class FROM classes ORDER BY position").fetchall())
    if current == classes:
        return
    has_labels = con.execute("SELECT count(*) FROM labels").fetchone()[0] > 0
    if current and has_labels and not replace:
        raise LabelsError(f"the workspace's labels use another class list ({_class_list(current)}). Import with the "
                          "same --classes, or pass --replace to delete every existing label first.")
    con.execute("DELETE FROM classes")
    con.executemany("INSERT INTO classes VALUES (?, ?)", list(enumerate(classes)))


def import_labels(workspace: Workspace, config: LabelsConfig) -> LabelsSummary:
    """Validate ``config.path`` against the ingested videos and write ``classes`` and ``labels``.

    Raises:
        LabelsError: the file or the request is invalid; nothing was written.
    """
    import pyarrow as pa

    label_file = read_label_file(config.path, config.classes)
    with connect(workspace) as con:
        videos = con.execute("SELECT video_id, path FROM videos").fetchall()
        ids, skipped = match_videos(label_file, videos, config.allow_missing)
        keep = np.array([vid is not None for vid in ids], dtype=bool)
        values = label_file.values[keep]
        kept_ids = np.array([vid for vid in ids if vid is not None], dtype=object)
        n_classes = len(config.classes)
        batch = pa.table({  # noqa: F841  (read by DuckDB through the local variable)
            "video_id": np.repeat(kept_ids, n_classes).astype(str),
            "class": np.tile(np.array(config.classes, dtype=object), len(kept_ids)).astype(str),
            "value": values.reshape(-1).astype(np.int8),
            "source": [label_file.path] * (len(kept_ids) * n_classes),
        })
        with transaction(con):
            if config.replace:
                con.execute("DELETE FROM labels")
            _write_classes(con, config.classes, config.replace)
            con.execute("DELETE FROM labels WHERE video_id IN (SELECT DISTINCT video_id FROM batch)")
            con.execute("INSERT INTO labels (video_id, class, value, source) SELECT * FROM batch")
    return LabelsSummary(path=label_file.path, format=label_file.format, videos=int(keep.sum()),
                         positives=int(values.sum()), classes=n_classes, skipped=skipped)
