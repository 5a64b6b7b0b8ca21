"""CSV files keyed by video (label files, capture-time files): reading the text, and matching each
key to exactly one ingested video.

Every such file is read the same way, whatever it holds:

- the text is UTF-8 (a byte-order mark is fine) or UTF-16/UTF-32 with a byte-order mark (as Excel
  writes "Unicode text"); binary files, UTF-16 without a byte-order mark and other encodings are
  refused with what to do;
- the delimiter is read from the header line: comma, tab or semicolon;
- the key column is ``filepath``, ``path`` or ``filename`` (any case, in that order of preference);
- a key is matched by its absolute path (relative keys are relative to the file's folder), else by
  path suffix (``site/clip.mp4`` matches ``/data/site/clip.mp4``; a bare file name matches by
  name), and it must match exactly one video.

Problems are collected by kind and raised together (:class:`Problems`), so one error lists every bad
row; what the file is called in messages, and the error class, come from its :class:`KeyFileKind`.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from ..errors import InputError
from ..userfiles import read_user_file

__all__ = ["KeyFileKind", "Problems", "KEY_COLUMNS", "DELIMITERS", "decode_text", "sniff_delimiter",
           "duplicated_columns", "read_rows", "key_column", "match_keys"]

#: Column names, in order of preference, that hold the video key.
KEY_COLUMNS = ("filepath", "path", "filename")
#: Delimiters recognised in a header line, with how messages name them.
DELIMITERS = {",": "comma-separated", "\t": "tab-separated", ";": "semicolon-separated"}
_SHOWN = 5  # examples shown per kind of problem
_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_SAVE_AS = "Save it as UTF-8 CSV (in Excel: Save As > 'CSV UTF-8')."


@dataclass(frozen=True)
class KeyFileKind:
    """What a kind of key file is called in messages, and what it raises.

    Attributes:
        noun: the file, as messages name it (``label file``).
        what: what it imports (``labels``).
        header: an example header for messages (``\\`filepath,label\\```).
        error: the :class:`~jungle.errors.InputError` subclass raised.
    """

    noun: str
    what: str
    header: str
    error: type[InputError]


class Problems:
    """Problems grouped by kind, each with examples (line numbers), raised as one message."""

    def __init__(self, kind: KeyFileKind, path: str):
        self.kind = kind
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
        lines = [f"the {self.kind.noun} {self.path} has problems; no {self.kind.what} were imported:"]
        for kind, examples in self.kinds.items():
            more = f"; and {len(examples) - _SHOWN} more" if len(examples) > _SHOWN else ""
            shown = "; ".join(examples[:_SHOWN]) + more
            advice = f". {self.advice[kind]}" if kind in self.advice else ""
            count = f" ({len(examples)})" if len(examples) > 1 else ""
            lines.append(f"  - {kind}{count}: {shown}{advice}")
        raise self.kind.error("\n".join(lines))


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


def decode_text(kind: KeyFileKind, path: Path, data: bytes) -> str:
    """The text of a key file: UTF-8 (with or without a byte-order mark), or UTF-16/32 with one.

    Raises:
        kind.error: binary data, UTF-16 without a byte-order mark, or bytes that are not UTF-8.
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise kind.error(f"the {kind.noun} {path} starts like {name} text but byte {exc.start} is not "
                                 f"{name}. {_SAVE_AS}") from exc
    problem = _binary_problem(data[:4096])
    if problem == "UTF-16":
        raise kind.error(f"the {kind.noun} {path} looks like UTF-16 text without a byte-order mark, which "
                         f"cannot be read reliably. UTF-16: {_SAVE_AS[0].lower()}{_SAVE_AS[1:]}")
    if problem:
        raise kind.error(f"the {kind.noun} {path} is not a text file ({problem}). Give a CSV file: a header "
                         f"line such as {kind.header}, then one line per video.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise kind.error(f"the {kind.noun} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}; "
                         f"perhaps Latin-1 or Windows-1252). {_SAVE_AS}") from exc


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV from its header line: the most frequent of comma, tab and semicolon
    (comma when none occurs, or on a tie with it)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
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


def read_rows(kind: KeyFileKind, path: Path) -> tuple[list[str], list[tuple[int, dict]], str]:
    """(header, (line, row dict) per data row, delimiter) of a key file.

    Raises:
        kind.error: the file cannot be read, is not text, or is empty.
    """
    data = read_user_file(path, kind.noun, kind.error)  # a regular file of a sane size: no FIFO, no /dev/zero
    text = decode_text(kind, path, data)
    if not text.strip():
        raise kind.error(f"the {kind.noun} {path} is empty. Give a header line such as {kind.header}, then one "
                         "line per video.")
    delimiter = sniff_delimiter(text.splitlines()[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    rows = [(reader.line_num, dict(zip(header, values))) for values in reader if values]
    return header, rows, delimiter


def key_column(header: Sequence[str]) -> str | None:
    """The header's key column (see :data:`KEY_COLUMNS`), as written; None without one."""
    lowered = {h.lower(): h for h in header}
    return next((lowered[c] for c in KEY_COLUMNS if c in lowered), None)


def match_keys(kind: KeyFileKind, path: str, keys: Sequence[str], lines: Sequence[int],
               videos: Sequence[tuple[str, str]], allow_missing: bool = False,
               problems: Problems | None = None) -> tuple[list[str | None], list[str]]:
    """The video id of each key (None when skipped as not ingested).

    Args:
        kind: the kind of file (for messages).
        path: the file (relative keys are relative to its folder).
        keys: the keys, unique, in file order; ``lines`` the line of each.
        videos: (video_id, absolute path) of every ingested video.
        allow_missing: skip keys that match no video instead of failing.
        problems: add the problems here (the caller raises them with its own) instead of raising.

    Returns:
        (video id or None per key, the skipped keys).

    Raises:
        kind.error: keys that match several videos, two keys for one video, or (unless
            ``allow_missing``) keys that match none; not when ``problems`` is given.
    """
    base = os.path.dirname(path)
    by_path = {p: vid for vid, p in videos}
    by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for vid, p in videos:
        by_name[os.path.basename(p)].append((vid, PurePosixPath(Path(p)).as_posix()))
    collected = problems if problems is not None else Problems(kind, path)
    matched: list[str | None] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}
    for key, line in zip(keys, lines):
        exact = by_path.get(os.path.abspath(os.path.join(base, key)))
        if exact is not None:
            hits = [exact]
        else:
            parts = PurePosixPath(key.replace("\\", "/")).parts
            suffix = "/" + "/".join(part for part in parts if part != "/")
            hits = [vid for vid, posix in by_name.get(os.path.basename(key.replace("\\", "/")), [])
                    if posix.endswith(suffix)]
        if len(hits) > 1:
            collected.add("keys that match several videos", f"{key} (line {line}, {len(hits)} videos)",
                         f"Use a longer path (e.g. site/clip.mp4) in the {kind.noun}.")
        elif not hits:
            if allow_missing:
                skipped.append(key)
                matched.append(None)
                continue
            collected.add(f"{kind.what} for videos that are not ingested", f"{key} (line {line})",
                         f"Ingest those videos first, or pass --allow-missing to skip their {kind.what}.")
        elif hits[0] in seen:
            collected.add("duplicate rows", f"{seen[hits[0]]} and {key} are the same video (line {line})",
                         "Keep one row per video.")
        else:
            seen[hits[0]] = key
        matched.append(hits[0] if len(hits) == 1 else None)
    if problems is None:
        collected.raise_if_any()
    return matched, skipped
