"""The ingest runner: find videos, probe them in worker processes, write ``videos`` in batches.

How a run goes:

1. :func:`~jungle.ingest.discover.discover` lists the candidates (a folder walk or a list file).
2. The parent reads ``(path, bytes, mtime)`` of what the workspace already holds and keeps only
   new and changed files (and, when statistics are wanted, rows that lack them). Unchanged files
   are skipped, so a re-run costs one ``stat`` per file, except rows an older probe wrote
   (``probe_version``): their headers are read again for what the probe added since (the capture
   time), without counting frames or decoding.
3. Worker processes (:class:`jungle.runtime.WorkerPool`) probe the container
   headers (:mod:`~jungle.ingest.probe`) and, unless ``stats=False``, decode a few sampled frames
   through :func:`jungle.features.video.decode.read_frames` for the camera statistics
   (:mod:`~jungle.ingest.camera`). A worker never raises: a bad file becomes an error row. The
   capture time is the container's where it has one, else the file's modification time; times
   the user gave (:mod:`~jungle.ingest.times`) win over both when the row is written.
4. The parent is the only DuckDB writer. It writes the rows in batches, each batch one short
   transaction (delete + insert by ``video_id``), so a run killed at any moment keeps every
   committed batch, and a restarted run skips those and does the rest: it ends with the same table
   as an uninterrupted run, without a duplicate (``video_id`` is the primary key, ``path`` unique).

A worker process that dies (a decoder crash) does not stop the run either: its chunk is retried
one file at a time in a fresh pool, and the file that kills a worker again gets an error row.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

from pydantic import Field

from ..config import JungleConfig
from ..errors import EnvironmentProblem, Interrupted
from ..features.video.decode import VideoReadError, read_frames
from ..progress import progress_bar
from ..runtime import WorkerPool, available_cores
from ..store.capture_times import apply_user_times, update_container_times
from ..store.db import connect, transaction
from ..store.videos import read_videos, write_videos
from ..store.workspace import Workspace
from .camera import bytes_per_second, camera_stats, sample_indices
from .discover import Candidate, Discovery, discover
from .folds import AutoFolds, FoldsConfig, FoldsError, FoldsSummary, ensure_default_folds, make_folds
from .labels import LabelsConfig, LabelsError, LabelsSummary, import_labels
from .probe import PROBE_VERSION, probe_video
from .times import TimesConfig, TimesError, TimesSummary, file_time, import_times, read_capture_time

__all__ = ["IngestConfig", "IngestSummary", "VIDEO_COLUMNS", "ingest", "ingest_videos", "process_candidate"]

#: Columns of ``videos`` in table order (m001, m004).
VIDEO_COLUMNS: tuple[str, ...] = (
    "video_id", "path", "relpath", "filename", "site", "bytes", "mtime", "status", "error", "container",
    "video_codec", "pix_fmt", "width", "height", "fps", "frames", "frames_decodable", "duration", "bit_rate",
    "bytes_per_second", "has_audio", "audio_codec", "brightness", "is_night", "colourfulness", "motion_energy",
    "stats_frames", "ingested_at", "captured_at", "utc_offset_minutes", "time_source", "probe_version",
)

class IngestConfig(JungleConfig):
    """How to ingest.

    Attributes:
        workers: worker processes; None = one per CPU core; 0 = probe in this process.
        stats: decode sampled frames for the camera statistics (slower: a decode per video).
        stats_frames: frames sampled per video for the statistics (evenly spaced).
        stats_width: width the sampled frames are resized to (never enlarged).
        chunk: files per task sent to a worker (amortises inter-process overhead).
        batch_rows: rows per database write.
        batch_seconds: longest time between database writes.
    """

    workers: int | None = Field(None, ge=0)
    stats: bool = True
    stats_frames: int = Field(8, ge=1)
    stats_width: int = Field(160, ge=2)
    chunk: int = Field(16, ge=1)
    batch_rows: int = Field(512, ge=1)
    batch_seconds: float = Field(2.0, gt=0)

    @property
    def worker_count(self) -> int:
        return available_cores() if self.workers is None else self.workers


@dataclass
class IngestSummary:
    """What one ingest run did.

    Attributes:
        source: the folder or list ingested.
        found: video-named entries found.
        new, changed: rows written for paths not seen before / whose size or mtime changed (or
            that lacked the camera statistics asked for).
        retried: earlier failures checked again (every run re-checks them: the cause may be fixed).
        unchanged: entries skipped because the workspace already holds them as they are.
        upgraded: of the unchanged, rows an older probe wrote whose headers were read again for
            what it lacked (the capture time).
        ok, failed: of the rows written, how many are status 'ok' / 'error'.
        seconds: wall time.
        failures: (path, error) of the rows written with status 'error'.
        warnings: things worth telling that are not rows (an unreadable folder, ...).
        labels, folds, times: summaries of the labels import, fold assignment and times import,
            when asked for (folds are made automatically with labels).
        fold_notes: what the automatic fold scheme did and why (fewer folds, not grouped, kept).
        error: why the labels, folds or times request failed (the videos are written regardless).
    """

    source: str
    found: int = 0
    new: int = 0
    changed: int = 0
    retried: int = 0
    unchanged: int = 0
    upgraded: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    labels: LabelsSummary | None = None
    folds: FoldsSummary | None = None
    times: TimesSummary | None = None
    fold_notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def written(self) -> int:
        return self.ok + self.failed

    @property
    def videos_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> tuple[list[str], list[tuple]]:
        """The summary as one table row (for ``render_rows``)."""
        columns = ["found", "new", "changed", "retried", "unchanged", "upgraded", "ok", "error", "seconds",
                   "videos_per_s"]
        return columns, [(self.found, self.new, self.changed, self.retried, self.unchanged, self.upgraded, self.ok,
                          self.failed, round(self.seconds, 2), round(self.videos_per_second, 1))]


# --------------------------------------------------------------------------- one file (worker side)
def _base_row(candidate: Candidate) -> dict:
    row = dict.fromkeys(VIDEO_COLUMNS)
    row.update(video_id=candidate.video_id, path=candidate.path, relpath=candidate.relpath,
               filename=candidate.filename, site=candidate.site, bytes=candidate.bytes, mtime=candidate.mtime,
               probe_version=PROBE_VERSION)
    found = file_time(candidate.mtime)
    if found is not None:
        row.update(found.columns())
    return row


def _error_row(candidate: Candidate, message: str) -> dict:
    row = _base_row(candidate)
    row.update(status="error", error=message)
    return row


def _stats_size(width: int | None, height: int | None, max_width: int) -> tuple[int, int] | None:
    """(width, height) for the sampled frames: ``max_width`` wide at most, aspect kept, even sizes."""
    if not width or not height:
        return None
    out_w = min(max_width, width)
    out_h = max(2, int(round(out_w * height / width / 2)) * 2)
    return max(2, out_w - out_w % 2), out_h


def process_candidate(candidate: Candidate, stats: bool = True, stats_frames: int = 8,
                      stats_width: int = 160) -> dict:
    """The ``videos`` row of one candidate (without ``ingested_at``). Never raises.

    Args:
        candidate: the entry to probe.
        stats: also decode ``stats_frames`` sampled frames for the camera statistics.
        stats_frames: frames to sample.
        stats_width: width to decode them at.
    """
    if candidate.problem:
        return _error_row(candidate, f"cannot read video {candidate.path}: {candidate.problem}.")
    try:
        probe = probe_video(candidate.path)
    except VideoReadError as exc:
        return _error_row(candidate, str(exc))
    except Exception as exc:  # anything FFmpeg or the OS throws at a strange file
        return _error_row(candidate, f"cannot read video {candidate.path}: {type(exc).__name__}: {exc}. "
                                     "Check the file (e.g. `ffprobe FILE`) or remove it from the collection.")
    row = _base_row(candidate)
    row.update({name: getattr(probe, name) for name in (
        "container", "video_codec", "pix_fmt", "width", "height", "fps", "frames", "frames_decodable",
        "duration", "bit_rate", "has_audio", "audio_codec")})
    row.update(status="ok", bytes_per_second=bytes_per_second(candidate.bytes, probe.duration))
    if probe.capture_time is not None:
        row.update(probe.capture_time.columns())
    if not stats:
        return row
    try:
        frames = read_frames(candidate.path, sample_indices(probe.frames_decodable or 0, stats_frames),
                             size=_stats_size(probe.width, probe.height, stats_width), threads=1)
    except Exception as exc:
        message = str(exc) if isinstance(exc, VideoReadError) else (
            f"cannot read video {candidate.path}: decoding sampled frames failed ({type(exc).__name__}: {exc}). "
            "Check the file (e.g. `ffmpeg -i FILE -f null -`) or remove it from the collection.")
        row.update(status="error", error=message)
        return row
    row["stats_frames"] = len(frames)
    if len(frames):
        values = camera_stats(frames.images)
        row.update(brightness=values.brightness, is_night=values.is_night, colourfulness=values.colourfulness,
                   motion_energy=values.motion_energy)
    return row


def times_row(candidate: Candidate) -> dict:
    """The capture-time columns of an unchanged, readable candidate, read from its headers only
    (the container's time, else the file's). Never raises."""
    try:
        found = read_capture_time(candidate.path)
    except Exception:  # it was readable when probed; now unreadable, it keeps the file's time
        found = None
    found = found or file_time(candidate.mtime)
    return {"video_id": candidate.video_id, **(found.columns() if found else dict.fromkeys(
        ("captured_at", "utc_offset_minutes", "time_source")))}


def _process_chunk(candidates: Sequence[Candidate], times_only: bool = False, **options) -> list[dict]:
    if times_only:
        return [times_row(c) for c in candidates]
    return [process_candidate(c, **options) for c in candidates]


#: Modules ingest workers need, imported once in the fork server.
_PRELOAD = ("jungle.ingest.run", "jungle.ingest.probe", "jungle.features.video.decode", "av")


def _pool(workers: int) -> WorkerPool:
    """Ingest's worker processes (see :class:`jungle.runtime.WorkerPool`: they ignore Ctrl-C and die
    with this process)."""
    return WorkerPool(workers, preload=_PRELOAD)


def _chunks(items: Sequence[Candidate], size: int) -> list[list[Candidate]]:
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def _noop() -> None:
    return None


def _check_pool_starts() -> None:
    """Raise when worker processes cannot run at all (then no file is to blame)."""
    with _pool(1) as pool:
        try:
            pool.submit(_noop).result()
        except BrokenProcessPool as exc:
            raise EnvironmentProblem("jungle ingest cannot start worker processes; run it with --workers 0 "
                                     "to probe in the main process") from exc


def _crashed_row(candidate: Candidate, options: dict) -> dict:
    """The row of a candidate whose worker died on it."""
    if options.get("times_only"):  # a probe read it before: it keeps its row and the file's time
        found = file_time(candidate.mtime)
        return {"video_id": candidate.video_id, **(found.columns() if found else {})}
    return _error_row(candidate, f"cannot read video {candidate.path}: the decoder crashed on it (the worker process "
                                 "died). Check the file with `ffprobe FILE` or remove it from the collection.")


def _run_isolated(chunk: list[Candidate], options: dict) -> Iterator[list[dict]]:
    """Retry a chunk whose worker died, one file per fresh pool, so the culprit is known."""
    _check_pool_starts()
    for candidate in chunk:
        with _pool(1) as pool:
            try:
                yield pool.submit(_process_chunk, [candidate], **options).result()
            except BrokenProcessPool:
                yield [_crashed_row(candidate, options)]


def _process_all(todo: Sequence[Candidate], config: IngestConfig, times_only: bool = False) -> Iterator[list[dict]]:
    """Rows of every candidate (or, ``times_only``, their capture-time columns), in completion order,
    one list per chunk."""
    options = dict(stats=config.stats, stats_frames=config.stats_frames, stats_width=config.stats_width,
                   times_only=times_only)
    chunks = _chunks(todo, config.chunk)
    if config.worker_count == 0:
        for chunk in chunks:
            yield _process_chunk(chunk, **options)
        return
    position, limit = 0, 4 * config.worker_count
    while position < len(chunks):
        broken: list[list[Candidate]] = []
        with _pool(config.worker_count) as pool:
            in_flight: dict[Future, list[Candidate]] = {}
            while True:
                while len(in_flight) < limit and position < len(chunks) and not broken:
                    in_flight[pool.submit(_process_chunk, chunks[position], **options)] = chunks[position]
                    position += 1
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk = in_flight.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken.append(chunk)
        for chunk in broken:
            yield from _run_isolated(chunk, options)


# --------------------------------------------------------------------------- the database (parent side)
def _existing(workspace: Workspace) -> dict[str, tuple]:
    """path -> (bytes, mtime, status, error, stats_frames, probe_version) of every video the workspace holds."""
    with connect(workspace) as con:
        rows = read_videos(con, ("path", "bytes", "mtime", "status", "error", "stats_frames", "probe_version"))
    return {row[0]: row[1:] for row in rows}


def _needs_work(candidate: Candidate, known: tuple | None, config: IngestConfig) -> bool:
    if known is None:
        return True
    n_bytes, mtime, status, error, stats_frames, _ = known
    if status != "ok":  # failures are re-checked every run: they are few, and the cause may be fixed
        return True
    if (n_bytes, mtime) != (candidate.bytes, candidate.mtime):
        return True
    return config.stats and stats_frames is None


def _older_probe(known: tuple) -> bool:
    """Whether an unchanged row was written by a probe older than this one."""
    return (known[5] or 0) < PROBE_VERSION


def _write_batch(workspace: Workspace, rows: list[dict]) -> None:
    """Upsert ``rows`` into ``videos`` in one transaction (delete + insert by video_id); times the
    user gave for those videos replace the probed ones."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with connect(workspace) as con, transaction(con):
        write_videos(con, [{**row, "ingested_at": now} for row in rows])
        apply_user_times(con, [row["video_id"] for row in rows])


def _write_times(workspace: Workspace, rows: list[dict]) -> None:
    """Set the capture times read again for unchanged rows, in one transaction."""
    with connect(workspace) as con, transaction(con):
        update_container_times(con, [(r["video_id"], r.get("captured_at"), r.get("utc_offset_minutes"),
                                      r.get("time_source")) for r in rows], PROBE_VERSION)


def _batches(results: Iterable[list[dict]], config: IngestConfig) -> Iterator[list[dict]]:
    """Group result rows into database batches: ``batch_rows`` rows (a worker's chunk may fill several),
    or what came in ``batch_seconds``, whichever first."""
    pending: list[dict] = []
    started = time.monotonic()
    for rows in results:
        pending.extend(rows)
        while len(pending) >= config.batch_rows:
            yield pending[:config.batch_rows]
            pending, started = pending[config.batch_rows:], time.monotonic()
        if pending and time.monotonic() - started >= config.batch_seconds:
            yield pending
            pending, started = [], time.monotonic()
    if pending:
        yield pending


def ingest_videos(workspace: Workspace, discovery: Discovery, config: IngestConfig = IngestConfig(),
                  progress: bool = True) -> IngestSummary:
    """Probe the new and changed candidates of ``discovery`` and write their ``videos`` rows; read
    the capture time of unchanged rows an older probe wrote.

    Args:
        workspace: the workspace (created when missing).
        discovery: what :func:`~jungle.ingest.discover.discover` found.
        config: workers, statistics, batching.
        progress: show a progress bar on stderr (when it is a terminal).
    """
    started = time.monotonic()
    summary = IngestSummary(source=discovery.root, found=len(discovery.candidates), warnings=list(discovery.warnings))
    known = _existing(workspace)
    todo = [c for c in discovery.candidates if _needs_work(c, known.get(c.path), config)]
    summary.unchanged = summary.found - len(todo)
    summary.new = sum(1 for c in todo if c.path not in known)
    summary.retried = sum(1 for c in todo if c.path in known and known[c.path][2] != "ok")
    summary.changed = len(todo) - summary.new - summary.retried
    probing = {c.path for c in todo}
    upgrade = [c for c in discovery.candidates if c.path not in probing and _older_probe(known[c.path])]
    bar = progress_bar(len(todo) + len(upgrade), "ingest", show=progress)
    batches = _batches(_process_all(todo, config), config)
    try:
        for rows in batches:
            _write_batch(workspace, rows)
            for row in rows:
                if row["status"] == "ok":
                    summary.ok += 1
                else:
                    summary.failed += 1
                    summary.failures.append((row["path"], row["error"]))
            bar.update(len(rows))
        batches = _batches(_process_all(upgrade, config, times_only=True), config)
        for rows in batches:
            _write_times(workspace, rows)
            summary.upgraded += len(rows)
            bar.update(len(rows))
    except KeyboardInterrupt:
        batches.close()  # stops the worker pool
        raise Interrupted(f"interrupted after {summary.written + summary.upgraded} of {len(todo) + len(upgrade)} "
                          "videos (every written batch is kept); run the same command to resume.") from None
    finally:
        bar.close()
    summary.failures.sort()
    summary.seconds = time.monotonic() - started
    return summary


def ingest(workspace: Workspace, source: str | os.PathLike, config: IngestConfig = IngestConfig(),
           labels: LabelsConfig | None = None, folds: FoldsConfig | AutoFolds | None = None,
           progress: bool = True, times: TimesConfig | None = None) -> IngestSummary:
    """``jungle ingest``: record the videos of ``source``, then optionally import capture times and
    labels and make folds.

    Args:
        workspace: the workspace (created when missing).
        source: a folder (walked recursively) or a CSV/text list of paths.
        config: how to probe.
        labels: a :class:`~jungle.ingest.labels.LabelsConfig` to import after the videos, or None.
        folds: a :class:`~jungle.ingest.folds.FoldsConfig` to assign after the labels; an
            :class:`~jungle.ingest.folds.AutoFolds` (the default when ``labels`` is given) makes
            the 'default' scheme when the workspace has none; None: no folds.
        progress: progress bar on stderr.
        times: a :class:`~jungle.ingest.times.TimesConfig` to import after the videos, or None.

    Returns:
        The summary. When the times, labels or folds request is invalid, the videos are still
        written and ``summary.error`` says what was wrong with it (nothing after it is done).

    Raises:
        FileNotFoundError, ValueError: ``source`` is missing or not a folder or list.
        Interrupted: Ctrl-C; every written batch is kept and the same command resumes.
        DiskFull, WorkspaceNotWritable: the workspace cannot be written (see :mod:`jungle.store.failures`).
    """
    summary = ingest_videos(workspace, discover(source), config, progress=progress)
    if labels is not None and folds is None:
        folds = AutoFolds()
    try:
        if times is not None:
            summary.times = import_times(workspace, times)
        if labels is not None:
            summary.labels = import_labels(workspace, labels)
        if isinstance(folds, AutoFolds):
            summary.folds, summary.fold_notes = ensure_default_folds(workspace, folds)
        elif folds is not None:
            summary.folds = make_folds(workspace, folds)
    except (TimesError, LabelsError, FoldsError) as exc:
        summary.error = str(exc)
    return summary
