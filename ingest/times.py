"""Capture times: when each clip was recorded, from the best source there is.

Sources, best first (``videos.time_source``; the columns are described in
:mod:`jungle.store.capture_times`):

1. ``csv``: a times file the user gives (``jungle times FILE``, ``jungle ingest DIR --times FILE``):
   ``filename,time[,timezone]``, see :func:`read_times_file`. Kept in ``capture_times``, so these
   times win again whenever ingest rewrites a row.
2. ``container``: the video's own metadata, read with the headers (:func:`container_time`).
3. ``mtime``: the file's modification time, only as a last resort: copying a file changes it.

Container tags read, in this order (the first usable one wins):

================================== ===================================================================
``com.apple.quicktime.creationdate`` QuickTime ``Keys`` (ExifTool ``CreationDate``): ISO 8601 with the
                                   offset of the camera's zone, e.g. ``2019-05-04T08:07:08+0200``
``date``                           QuickTime user data ``©day`` (ExifTool ``ContentCreateDate``) or
                                   RIFF ``INFO/ICRD`` (``DateCreated``): used when it holds a time of day
``creation_time`` (format)         MP4/MOV ``mvhd`` (ExifTool ``CreateDate``), Matroska ``DateUTC``,
                                   AVI ``IDIT`` (``DateTimeOriginal``: the camera's clock, no zone;
                                   FFmpeg turns ``Mon Mar 10 15:04:43 2003`` into ``2003-03-10 15:04:43``)
``creation_time`` (streams)        MP4/MOV ``tkhd``/``mdhd``, the video stream first
ASF File Properties creation date  100-ns ticks since 1601 (UTC), read from the ASF header here:
                                   FFmpeg does not expose it
================================== ===================================================================

What a tag says is recorded as it says it: a time with ``Z`` or an offset is stored with that
offset; one without (AVI ``IDIT``) as a clock reading with the zone unknown. MP4's
``creation_time`` is UTC by specification, but many cameras write their local clock there: it is
stored as UTC, which is what the file claims. Times before 1980 are treated as absent: 0 in
``mvhd`` (1904-01-01), the POSIX epoch (1970-01-01, what the two ASF clips in the test media hold)
and unset clocks.

Not read: trail-camera makers document their metadata for stills only (Reconyx's maker notes, in
ExifTool's Reconyx tables, live in JPEG EXIF); no public document describes Bushnell's or
Browning's video metadata, and the ``IDIT`` atom some dash cameras put in MP4 user data is not
exposed by FFmpeg. Times burnt into the frames (an information bar) are not read.
"""

from __future__ import annotations

import os
import re
import struct
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

from pydantic import model_validator

from ..config import JungleConfig
from ..errors import InputError
from ..store.capture_times import record_user_times
from ..store.db import connect, transaction
from ..store.rows import video_paths
from ..store.workspace import Workspace
from .keyfile import KeyFileKind, Problems, duplicated_columns, key_column, match_keys, read_rows

__all__ = ["CaptureTime", "TimesError", "TimesConfig", "TimesFile", "TimesSummary", "TIMES_FILE", "container_time",
           "asf_creation_time", "read_container_time", "read_capture_time", "file_time", "parse_zone",
           "read_times_file", "import_times"]

#: The earliest time taken as real; earlier ones are epochs and unset clocks.
EARLIEST = datetime(1980, 1, 1)
_ISO_HINT = "Write times as ISO 8601: 2016-09-27 07:10:08, with an offset (2016-09-27T07:10:08+01:00) or Z if known."
_TIME_COLUMNS = ("time", "timestamp")
_HAS_TIME_OF_DAY = re.compile(r"\s*\d{4}-?\d{2}-?\d{2}[T ]\d{2}")
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_ASF_HEADER = uuid.UUID("75B22630-668E-11CF-A6D9-00AA0062CE6C").bytes_le
_ASF_FILE_PROPERTIES = uuid.UUID("8CABDCA1-A947-11CF-8EE4-00C00C205365").bytes_le
_FILETIME_EPOCH = datetime(1601, 1, 1)


@dataclass(frozen=True)
class CaptureTime:
    """When a clip was recorded.

    Attributes:
        captured_at: the moment in UTC (naive); with ``utc_offset`` None, the clock reading as if UTC.
        utc_offset: the camera clock's offset from UTC; None when the source gave no zone.
        source: ``csv``, ``container`` or ``mtime``.
    """

    captured_at: datetime
    utc_offset: timedelta | None
    source: str

    @classmethod
    def of(cls, moment: datetime, source: str) -> "CaptureTime":
        """From a time as a source gives it: aware (its offset kept) or naive (zone unknown)."""
        offset = moment.utcoffset()
        if offset is None:
            return cls(moment.replace(tzinfo=None), None, source)
        return cls((moment - offset).replace(tzinfo=None), offset, source)

    @property
    def offset_minutes(self) -> int | None:
        """The offset in whole minutes (as ``videos.utc_offset_minutes`` holds it), None when unknown."""
        return None if self.utc_offset is None else round(self.utc_offset.total_seconds() / 60)

    def columns(self) -> dict:
        """The ``videos`` columns."""
        return {"captured_at": self.captured_at, "utc_offset_minutes": self.offset_minutes, "time_source": self.source}


def file_time(mtime: datetime | None) -> CaptureTime | None:
    """The last resort: a file's modification time (UTC), or None without one."""
    return None if mtime is None else CaptureTime(mtime, timedelta(0), "mtime")


# --------------------------------------------------------------------------- container metadata
def _container_moment(text: str | None) -> datetime | None:
    """A container tag's time, or None when it is missing, not a time of day, unparsable or before 1980."""
    if not text:
        return None
    text = text.strip().strip("\0").strip()
    if re.match(r"\d{4}:\d{2}:\d{2} ", text):  # EXIF style 2019:05:04 06:07:08
        text = text[:4] + "-" + text[5:7] + "-" + text[8:]
    if not _HAS_TIME_OF_DAY.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.replace(tzinfo=None) < EARLIEST else moment


def container_time(metadata: Mapping[str, str], streams: Sequence[Mapping[str, str]] = (),
                   asf_created: datetime | None = None) -> CaptureTime | None:
    """The capture time a container's metadata gives (see the module docstring for the order).

    Args:
        metadata: the format-level tags, as FFmpeg reports them.
        streams: each stream's tags, the video stream first.
        asf_created: the ASF header's creation date (UTC), for ASF files.
    """
    candidates = [metadata.get("com.apple.quicktime.creationdate"), metadata.get("date"),
                  metadata.get("creation_time"), *(s.get("creation_time") for s in streams)]
    for text in candidates:
        moment = _container_moment(text)
        if moment is not None:
            return CaptureTime.of(moment, "container")
    if asf_created is not None and asf_created >= EARLIEST:
        return CaptureTime(asf_created, timedelta(0), "container")
    return None


def asf_creation_time(path: str | os.PathLike) -> datetime | None:
    """The creation date of an ASF file's File Properties object (UTC), or None without one.

    The ASF header object (GUID ``75B22630-...``) holds child objects; File Properties
    (``8CABDCA1-...``) has the creation date 40 bytes after its 24-byte object header, as a 64-bit
    count of 100-ns intervals since 1601-01-01 UTC (ASF specification 3.2; ExifTool ``CreationDate``).
    """
    with open(path, "rb") as handle:
        head = handle.read(30)
        if len(head) < 30 or head[:16] != _ASF_HEADER:
            return None
        size, count = struct.unpack("<QI", head[16:28])
        data = head + handle.read(max(0, min(size, 1 << 20) - 30))
    position = 30
    for _ in range(count):
        if position + 24 > len(data):
            return None
        object_size = struct.unpack("<Q", data[position + 16:position + 24])[0]
        if data[position:position + 16] == _ASF_FILE_PROPERTIES and position + 56 <= len(data):
            ticks = struct.unpack("<Q", data[position + 48:position + 56])[0]
            return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10) if ticks else None
        if object_size < 24:
            return None
        position += object_size
    return None


def read_container_time(container, path: str | os.PathLike) -> CaptureTime | None:
    """The capture time of an open PyAV ``container`` (of the file ``path``), or None."""
    streams = sorted(container.streams, key=lambda s: s.type != "video")
    asf = asf_creation_time(path) if container.format.name == "asf" else None
    return container_time(dict(container.metadata), [dict(s.metadata) for s in streams], asf)


def read_capture_time(path: str | os.PathLike) -> CaptureTime | None:
    """The capture time in the headers of the video at ``path``, or None (a few milliseconds: no
    frame is read).

    Raises:
        OSError, av.error.FFmpegError: the file cannot be opened as a video.
    """
    import av

    with av.open(os.fspath(path), metadata_errors="ignore") as container:
        return read_container_time(container, path)


# --------------------------------------------------------------------------- the times file
class TimesError(InputError):
    """The times file (or the request) is invalid; the message lists every problem and what to do."""


TIMES_FILE = KeyFileKind(noun="times file", what="times", header="`filename,time,timezone`", error=TimesError)


def parse_zone(text: str) -> tzinfo:
    """A time zone from an IANA name (``Africa/Kinshasa``), an offset (``+01:00``, ``-0530``,
    ``UTC+2``) or ``Z``/``UTC``/``GMT``.

    Raises:
        ValueError: none of those.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = text.strip()
    if text.upper() in ("Z", "UTC", "GMT"):
        return timezone.utc
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset >= timedelta(hours=24) or (minutes and int(minutes) >= 60):
            raise ValueError(f"{text!r} is not a UTC offset")
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder (America), a name too long
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise ValueError(f"{shown!r} is neither an IANA time zone nor a UTC offset") from None


class TimesConfig(JungleConfig):
    """A times import.

    Attributes:
        path: the CSV file (``filename,time[,timezone]``).
        timezone: the zone of times that have neither an offset nor a timezone cell (IANA name or
            offset); None: their zone stays unknown.
        allow_missing: skip rows of videos that are not ingested (default: refuse the file).
    """

    error: ClassVar[type[InputError]] = TimesError

    path: str
    timezone: str | None = None
    allow_missing: bool = False

    @model_validator(mode="after")
    def _valid(self):
        if self.timezone is not None:
            try:
                parse_zone(self.timezone)
            except ValueError as exc:
                raise TimesError(f"--timezone: {exc}. Give an IANA name (Africa/Kinshasa) or an offset "
                                 "(+01:00).") from None
        return self


@dataclass(frozen=True)
class TimesFile:
    """A parsed, validated times file: per key (file order, unique) its line and capture time."""

    path: str
    keys: tuple[str, ...]
    lines: tuple[int, ...]
    times: tuple[CaptureTime, ...]


@dataclass
class TimesSummary:
    """What an import did."""

    path: str
    videos: int
    zone_unknown: int
    skipped: list[str] = field(default_factory=list)

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["times_file", "videos", "zone_unknown", "skipped_not_ingested"]
        return columns, [(self.path, self.videos, self.zone_unknown, len(self.skipped))]


def _in_zone(naive: datetime, zone: tzinfo) -> datetime | None:
    """``naive`` read in ``zone``; None when that wall time is ambiguous or skipped there (a DST change)."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        return None
    return first


def _row_time(text: str, zone_text: str, default: tzinfo | None, line: int, problems: Problems) -> CaptureTime | None:
    """The capture time of one row, or None after adding its problem."""
    if not _HAS_TIME_OF_DAY.match(text):
        problems.add("times that are not ISO 8601 date-times", f"{text!r} (line {line})", _ISO_HINT)
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.add("times that are not ISO 8601 date-times", f"{text!r} (line {line})", _ISO_HINT)
        return None
    zone = default
    if zone_text:
        try:
            zone = parse_zone(zone_text)
        except ValueError:
            problems.add("unknown time zones", f"{zone_text!r} (line {line})",
                         "Give an IANA name (Africa/Kinshasa) or an offset (+01:00).")
            return None
    if moment.replace(tzinfo=None) < EARLIEST:
        problems.add("times before 1980", f"{text!r} (line {line})", "Is the camera's clock unset? Give the real time.")
        return None
    if moment.tzinfo is not None:
        if zone_text and moment.astimezone(zone).utcoffset() != moment.utcoffset():
            problems.add("offsets that disagree with the timezone column",
                         f"{text!r} in {zone_text} (line {line}, which is "
                         f"{moment.astimezone(zone).isoformat(timespec='seconds')})",
                         "Give the time without an offset, or fix the offset or the zone.")
            return None
        return CaptureTime.of(moment, "csv")
    if zone is None:
        return CaptureTime.of(moment, "csv")
    local = _in_zone(moment, zone)
    if local is None:
        problems.add("local times that are ambiguous or skipped in their zone (a daylight-saving change)",
                     f"{text!r} in {zone} (line {line})",
                     "Give those times with their offset, e.g. 2021-10-31T02:30:00+01:00.")
        return None
    return CaptureTime.of(local, "csv")


def read_times_file(path: str | os.PathLike, default_zone: str | None = None,
                    problems: Problems | None = None) -> TimesFile:
    """Parse and validate a times file: a key column (``filepath``, ``path`` or ``filename``), a
    ``time`` (or ``timestamp``) column of ISO 8601 date-times, and optionally a ``timezone`` column
    (IANA name or offset) for times written without an offset.

    Args:
        path: the CSV file.
        default_zone: the zone of times with neither an offset nor a timezone cell (None: unknown).
        problems: collect the rows' problems here (the caller raises them, with more of its own)
            instead of raising; the file then holds the good rows.

    Raises:
        TimesError: the file cannot be read or lacks a key or time column; else every problem
            found, in one message (unless ``problems`` is given).
    """
    path = Path(path)
    header, rows, _ = read_rows(TIMES_FILE, path)
    lowered = {h.lower(): h for h in header}
    key = key_column(header)
    time_column = next((lowered[c] for c in _TIME_COLUMNS if c in lowered), None)
    zone_column = lowered.get("timezone")
    if key is None or time_column is None:
        raise TimesError(f"the times file {path} needs a filename (or filepath) column and a time column (header: "
                         f"{', '.join(header) or 'empty'}). Expected `filename,time[,timezone]`.")
    columns = Problems(TIMES_FILE, str(path))
    read = [c for c in (key, time_column, zone_column) if c]
    for name, positions in duplicated_columns(header, [c.lower() for c in read], fold_case=read).items():
        where = ", ".join(map(str, positions[:-1])) + f" and {positions[-1]}"
        columns.add("duplicated columns", f"{name!r} (columns {where})", "Keep one of each.")
    columns.raise_if_any()
    collected = problems if problems is not None else Problems(TIMES_FILE, str(path))
    default = parse_zone(default_zone) if default_zone else None
    first_line: dict[str, int] = {}
    found: dict[str, tuple[int, CaptureTime]] = {}
    for line, row in rows:
        name, text = (row.get(key) or "").strip(), (row.get(time_column) or "").strip()
        zone_text = (row.get(zone_column) or "").strip() if zone_column else ""
        if not name:
            collected.add("rows without a video", f"line {line}")
            continue
        if name in first_line:
            collected.add("duplicate rows", f"{name} (lines {first_line[name]} and {line})", "Keep one row per video.")
            continue
        first_line[name] = line
        if not text:
            collected.add("rows without a time", f"{name} (line {line})")
            continue
        moment = _row_time(text, zone_text, default, line, collected)
        if moment is not None:
            found[name] = (line, moment)
    if not rows:
        collected.add("no rows", "the file has a header but no times")
    if problems is None:
        collected.raise_if_any()
    keys = tuple(found)
    return TimesFile(str(path.absolute()), keys, tuple(found[k][0] for k in keys), tuple(found[k][1] for k in keys))


def import_times(workspace: Workspace, config: TimesConfig) -> TimesSummary:
    """Validate ``config.path`` against the ingested videos and make its times theirs.

    Raises:
        TimesError: the file or the request is invalid (every bad row listed: bad times, unknown
            zones, rows of videos that are not ingested or match several); nothing was written.
    """
    problems = Problems(TIMES_FILE, str(config.path))
    times = read_times_file(config.path, config.timezone, problems)
    with connect(workspace) as con:
        videos = list(video_paths(con).items())
        ids, skipped = match_keys(TIMES_FILE, times.path, times.keys, times.lines, videos, config.allow_missing,
                                  problems)
        problems.raise_if_any()
        rows = [(vid, t.captured_at, t.offset_minutes, line)
                for vid, t, line in zip(ids, times.times, times.lines) if vid is not None]
        with transaction(con):
            record_user_times(con, rows, times.path)
    unknown = sum(1 for vid, t in zip(ids, times.times) if vid is not None and t.utc_offset is None)
    return TimesSummary(path=times.path, videos=len(rows), zone_unknown=unknown, skipped=skipped)
