"""The featurize runner: sampled frames of every video through per-frame models into Zarr.

One pass over the workspace's videos decodes each video's sampled frames once (in worker
processes, overlapped with the forward passes in this process) and runs every configured
per-frame model (timm encoders; any object with the :class:`FrameModel` interface) on batches
that span videos. Each model writes its own frame-level feature set ``features.zarr/<name>/vN``:
its outputs (``embedding`` (V, F, D) float16, ``stages`` (V, F, S) float16, ...) plus ``valid``
(V, F) bool, ``timestamps`` (V, F) float32 (NaN where invalid) and ``frame_index`` (V, F) int32
(-1 where invalid).

Work is done in chunk-aligned blocks of videos. A block's arrays are written by one process,
then a marker file (``vN.progress/<first row>.json``: the status of each row) is written atomically.
Markers make the run resumable (a restarted run does the blocks, and rows, that have none) and
shardable (``Shard(i, n)`` takes every n-th block). DuckDB is touched twice per run, briefly: by
:func:`plan` at the start (register or find the sets, give new videos rows, size the Zarr
groups) and by :func:`reconcile` at the end (fold all markers into ``feature_rows``, complete the
set when every row is done). A coordinator can do both itself and hand each worker its part of
the :class:`FeaturizePlan` (``run_models(..., work=..., record=False)``): the workers then never
open DuckDB (the Dask path does this). Frames are batched in row order within a block, so
a resumed run computes exactly what an uninterrupted one does. Parallel work on one feature set
goes through shards; a run holds ``flock`` locks beside the markers for its whole length, so a
second unsharded run of a set, or a second run of the same shard, stops at once with
:class:`FeaturizeBusy` instead of writing the same blocks.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...errors import BusyError, InputError, Interrupted, NotFoundError
from ...store.failures import storage_errors
from ..models.encoders import EncoderConfig
from ..video.sampling import Sampling, parse_sampling, sample_frames
from ...runtime import WorkerPool, available_cores
from ..video.decode import VideoReadError, read_frames

__all__ = [
    "FeaturizeConfig",
    "FeaturizeBusy",
    "Shard",
    "FrameModel",
    "ModelSpec",
    "PlannedSet",
    "FeaturizePlan",
    "plan",
    "SetSummary",
    "FeaturizeSummary",
    "featurize",
    "run_models",
    "load_models",
    "reconcile",
    "progress_dir",
    "decode_video",
    "DecodedVideo",
    "DecodePool",
    "decode_size",
]


class FeaturizeConfig(BaseModel):
    """What to compute and how to run it.

    Attributes:
        encoders: the encoders; each writes its own feature set (named by its alias).
        frames: frame sampling, as parsed by :func:`jungle.features.video.sampling.parse_sampling`.
        batch_size: frames per forward pass (None: 32 on the CPU, 256 on a GPU, where 256 runs lite0
            2.3x faster than 32: 14,200 against 6,100 frames/s on an H100, ``bench/encode.py``).
        workers: decode worker processes (0: decode in this process; None: one per 2 CPU cores, at
            least 1; with a CUDA device, all cores but one).
        block: videos per Zarr chunk, the unit of work, resume and sharding (new sets only).
        device: "cpu" or "cuda" (mixed precision, channels-last).
        torch_threads: intra-op threads of the forward pass (None: all cores).
        decode_threads: threads per decoding video (``read_frames``' ``threads``; 0: all cores, with the
            stretches after different keyframes decoded side by side; None: 1 per worker process when
            there are workers, which then decode videos side by side, else 0).
        backend: who runs the encoders' forward pass (:mod:`jungle.features.models.backends`): None picks
            the fastest installed CPU backend that passes its check against PyTorch (PyTorch on a GPU).
        precision: "fp32", or "int8" (OpenVINO/ONNX Runtime, calibrated on the workspace's own frames).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    encoders: tuple[EncoderConfig, ...] = (EncoderConfig(),)
    frames: str = "uniform:32"
    batch_size: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=0)
    block: int = Field(default=64, ge=1)
    device: str = "cpu"
    torch_threads: int | None = Field(default=None, ge=1)
    decode_threads: int | None = Field(default=None, ge=0)
    backend: Literal["torch", "openvino", "onnxruntime"] | None = None
    precision: Literal["fp32", "int8"] = "fp32"

    @field_validator("frames")
    @classmethod
    def _parseable(cls, value: str) -> str:
        return parse_sampling(value).spec()

    @field_validator("encoders")
    @classmethod
    def _distinct_names(cls, value):
        names = [e.feature_set_name() for e in value]
        if not value or len(set(names)) != len(names):
            raise ValueError(f"give at least one encoder, each with its own feature-set name (got {names})")
        return value

    @property
    def sampling(self) -> Sampling:
        return parse_sampling(self.frames)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as in ``--shard 3/8``): every count-th block."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            index, count = (int(p) for p in text.split("/"))
        except ValueError:
            raise InputError(f"shard {text!r} is not I/N, e.g. 3/8 (the 3rd of 8 shards)") from None
        if not 1 <= index <= count:
            raise InputError(f"shard {text!r}: I must be between 1 and N")
        return cls(index, count)

    def owns(self, block_number: int) -> bool:
        return block_number % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class FrameModel(Protocol):
    """What the runner needs from a per-frame model (an :class:`~jungle.features.models.encoders.Encoder`, a detector).

    ``input_size``: the square side it takes (or give ``frame_size`` (width, height) instead, see
    :func:`decode_size`); ``set_name``: the frame-level feature set it writes; ``output_specs``:
    {array: (per-frame trailing shape, dtype)}; ``encode``: (n, H, W, 3) uint8 RGB frames to
    {array: (n, ...)}; ``describe``: its lineage (goes into the set's config and key);
    ``registry_meta``: the ``feature_sets`` columns it fills (encoder, weights_sha256, input_size, dims, ...).
    """

    input_size: int

    @property
    def set_name(self) -> str: ...

    def output_specs(self) -> dict[str, tuple[tuple[int, ...], str]]: ...

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]: ...

    def describe(self) -> dict: ...

    def registry_meta(self) -> dict: ...


@dataclass
class SetSummary:
    """What one run did to one feature set."""

    name: str
    version: int
    rows: int
    processed: int = 0
    errors: int = 0
    frames: int = 0
    complete: bool = False
    created: bool = False


@dataclass
class FeaturizeSummary:
    """What a run did: per feature set, timings and the videos that failed."""

    sets: list[SetSummary]
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    shard: str | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["feature_set", "version", "rows", "processed", "errors", "frames", "status"]
        return columns, [(s.name, s.version, s.rows, s.processed, s.errors, s.frames,
                          "complete" if s.complete else "building") for s in self.sets]


# ----------------------------------------------------------------------------- decoding (workers)
@dataclass
class DecodedVideo:
    """One video's sampled frames, laid out in slots, or its error."""

    images: np.ndarray | None
    valid: np.ndarray
    frame_index: np.ndarray
    timestamps: np.ndarray
    error: str | None = None
    seconds: float = 0.0

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


    @classmethod
    def failed(cls, sampling: Sampling, error: str, seconds: float = 0.0) -> "DecodedVideo":
        """A video that gave no frames: every slot invalid, and a readable error."""
        slots = sampling.slots
        return cls(None, np.zeros(slots, bool), np.full(slots, -1, np.int32), np.full(slots, np.nan, np.float32),
                   error=error, seconds=seconds)


def _unreadable(path, reason: str) -> str:
    return f"cannot read video {path}: {reason}. Check the file with `ffprobe`; re-export or remove it."


def decode_video(path: str, sampling: Sampling, size: tuple[int, int] | None, threads: int = 0) -> DecodedVideo:
    """Decode one video's sampled frames; any failure becomes a recorded error, never an exception."""
    start = time.perf_counter()
    try:
        sampled = sample_frames(path, sampling, size, reader=partial(read_frames, threads=threads))
    except VideoReadError as exc:
        return DecodedVideo.failed(sampling, str(exc), time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
        return DecodedVideo.failed(sampling, _unreadable(path, f"{type(exc).__name__}: {exc}"),
                                   time.perf_counter() - start)
    if sampled.n_valid == 0:
        return DecodedVideo.failed(sampling, _unreadable(path, f"no frame decoded for sampling {sampling.spec()}"),
                                   time.perf_counter() - start)
    return DecodedVideo(sampled.frames.images, sampled.valid, sampled.frame_index, sampled.timestamps,
                        seconds=time.perf_counter() - start)


def _decode_task(task: tuple) -> DecodedVideo:
    return decode_video(*task)


#: Modules decode workers need, imported once in the fork server.
_PRELOAD = ("jungle.features.featurize.runner", "jungle.features.video.decode", "av", "numpy")


def _pool(workers: int, niceness: int) -> WorkerPool:
    """Decode workers (:class:`jungle.runtime.WorkerPool`: they ignore Ctrl-C, die with this process
    and run one torch thread each, so that a sampling that runs a model in them, ``detector:N``,
    does not oversubscribe the cores)."""
    return WorkerPool(workers, preload=_PRELOAD, niceness=niceness)


class DecodePool:
    """Decode worker processes, started ahead of time so that they import while the models load.

    ``niceness`` > 0 runs the workers at a lower priority (the forward pass keeps the cores; on a
    busy shared machine it starves the decoders, hence off by default). A worker that dies
    (a decoder crash) costs only the video it was decoding: that one is retried alone, then
    recorded as an error. ``workers=0`` decodes in the calling process.
    """

    def __init__(self, workers: int, prefetch: int | None = None, niceness: int = 0):
        import multiprocessing

        if multiprocessing.current_process().daemon:
            workers = 0  # a daemon process (e.g. a Dask worker) may not start children: decode here
        self.workers, self.niceness = workers, niceness
        self.prefetch = prefetch or max(4, 2 * workers)
        self._pool = _pool(workers, niceness) if workers else None

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool:
            self._pool.close()
            self._pool = None

    def decoded_in_order(self, tasks: Iterable[tuple]) -> Iterator[DecodedVideo]:
        """Decode ``tasks`` ((path, sampling, size, threads) each), yielding in task order, at most
        ``prefetch`` videos in flight (bounded memory)."""
        from concurrent.futures.process import BrokenProcessPool

        if not self.workers:
            for task in tasks:
                yield _decode_task(task)
            return
        in_flight: deque = deque()
        iterator = iter(tasks)
        while True:
            for task in iterator:
                in_flight.append((task, self._pool.submit(_decode_task, task)))
                if len(in_flight) >= self.prefetch:
                    break
            if not in_flight:
                return
            task, future = in_flight.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                self._pool.close()
                with _pool(1, self.niceness) as alone:
                    try:
                        result = alone.submit(_decode_task, task).result()
                    except BrokenProcessPool:
                        result = DecodedVideo.failed(task[1], _unreadable(task[0], "the decoder process crashed on it"))
                self._pool = _pool(self.workers, self.niceness)
                in_flight = deque((t, self._pool.submit(_decode_task, t)) for t, _ in in_flight)
            yield result


# ----------------------------------------------------------------------------- markers (resume, shards)
def progress_dir(workspace, fs) -> Path:
    """Folder of a frame-level set's block markers (beside its Zarr group)."""
    group = workspace.root / fs.location
    return group.parent / f"{group.name}.progress"


def _read_markers(folder: Path, keep: Callable[[int], bool] | None = None) -> dict[int, tuple[str, str | None, int]]:
    """{row: (status, error, valid frames)} from the block markers (of the blocks whose first row ``keep`` accepts)."""
    rows: dict[int, tuple[str, str | None, int]] = {}
    if not folder.exists():
        return rows
    for marker in sorted(folder.glob("*.json")):
        if keep is not None and not keep(int(marker.stem)):
            continue
        for row, (status, error, n_valid) in json.loads(marker.read_text()).items():
            rows[int(row)] = (status, error, int(n_valid))
    return rows


def _write_marker(folder: Path, start: int, rows: dict[int, tuple[str, str | None, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{start:012d}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps({str(r): list(v) for r, v in sorted(rows.items())}))
        tmp.replace(path)
    except BaseException:  # a full disk, Ctrl-C: no half-written file is left beside the markers
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- registry and rows (DB)
@dataclass(frozen=True)
class ModelSpec:
    """What planning needs to know of a per-frame model, without the model (small, picklable).

    Attributes:
        set_name, outputs, description, registry: the model's ``set_name``, ``output_specs()``,
            ``describe()`` and ``registry_meta()``.
        frame_size: (width, height) it takes.
        native_frames: it wants frames at their coded size (see :func:`decode_size`).
    """

    set_name: str
    outputs: dict
    description: dict
    registry: dict
    frame_size: tuple[int, int] | None
    native_frames: bool = False

    @classmethod
    def of(cls, model: FrameModel) -> "ModelSpec":
        size = getattr(model, "frame_size", None) or (model.input_size, model.input_size)
        return cls(model.set_name, model.output_specs(), model.describe(), model.registry_meta(), tuple(size),
                   bool(getattr(model, "native_frames", False)))


@dataclass(frozen=True)
class PlannedSet:
    """One feature set of a plan: the registered set, its rows (video id -> row) and chunking."""

    fs: object
    created: bool
    rows: dict[str, int]
    n_rows: int
    block: int


@dataclass(frozen=True)
class FeaturizePlan:
    """The DuckDB side of a featurize run, read and written once by one process (:func:`plan`):
    every model's feature set with its rows, and the path of every video."""

    sets: tuple[PlannedSet, ...]
    paths: dict[str, str]

    def for_shard(self, shard: Shard) -> "FeaturizePlan":
        """Only the videos of the blocks ``shard`` owns (what one worker needs to receive)."""
        primary = self.sets[0]
        keep = {v for v, r in primary.rows.items() if shard.owns(r // primary.block)}
        sets = tuple(PlannedSet(p.fs, p.created, {v: r for v, r in p.rows.items() if v in keep}, p.n_rows, p.block)
                     for p in self.sets)
        return FeaturizePlan(sets, {v: self.paths[v] for v in keep if v in self.paths})


@dataclass
class _SetState:
    model: FrameModel
    fs: object
    created: bool
    rows: dict[str, int]          # video_id -> row
    n_rows: int
    group: object = None
    block: int = 64
    done: dict[int, tuple] = field(default_factory=dict)


def _set_config(spec: ModelSpec, sampling: Sampling, frame_size: tuple[int, int] | None) -> dict:
    return {"model": spec.description, "sampling": sampling.spec(), "sampling_config": sampling.model_dump(),
            "slots": sampling.slots, "frame_size": list(frame_size) if frame_size else None}


def plan(workspace, specs: list[ModelSpec], sampling: Sampling, block: int = 64) -> FeaturizePlan:
    """Register (or find) each model's feature set, give new videos rows and size the Zarr groups,
    in one short DuckDB transaction; return what the workers need.

    Raises:
        NotFoundError: the workspace has no readable video.
    """
    from jungle.store import arrays, registry
    from jungle.store.db import connect, transaction

    frame_size = decode_size(specs)
    planned: list[PlannedSet] = []
    with connect(workspace) as con:
        with transaction(con):
            for spec in specs:
                config = _set_config(spec, sampling, frame_size)
                fs, created = registry.register(con, spec.set_name, "frames", config, [],
                                                sampling=sampling.spec(), **spec.registry)
                start = con.execute("SELECT coalesce(max(row) + 1, 0) FROM feature_rows WHERE name = ? AND version = ?",
                                    [fs.name, fs.version]).fetchone()[0]
                new = con.execute(
                    "SELECT video_id FROM videos WHERE status = 'ok' AND video_id NOT IN "
                    "(SELECT video_id FROM feature_rows WHERE name = ? AND version = ?) ORDER BY path",
                    [fs.name, fs.version]).fetchall()
                if new:
                    con.executemany(
                        "INSERT INTO feature_rows (name, version, video_id, row, status) VALUES (?, ?, ?, ?, 'pending')",
                        [[fs.name, fs.version, vid, start + i] for i, (vid,) in enumerate(new)])
                    con.execute("UPDATE feature_sets SET status = 'building' WHERE name = ? AND version = ?",
                                [fs.name, fs.version])
                rows = dict(con.execute("SELECT video_id, row FROM feature_rows WHERE name = ? AND version = ?",
                                        [fs.name, fs.version]).fetchall())
                n_rows = max(rows.values(), default=-1) + 1
                if not n_rows:
                    raise NotFoundError(f"the workspace {workspace.root} has no readable videos to featurize. "
                                     "Run `jungle ingest DIR` first (see `jungle status`).")
                array_specs = {name: arrays.ArraySpec(shape, dtype) for name, (shape, dtype) in spec.outputs.items()}
                array_specs.update(valid=arrays.ArraySpec((), "bool", False),
                                   timestamps=arrays.ArraySpec((), "float32", float("nan")),
                                   frame_index=arrays.ArraySpec((), "int32", -1))
                existing_block = None
                if (workspace.root / fs.location / "zarr.json").exists():
                    existing_block = arrays.open_group(workspace, fs).attrs.get("block")
                group = arrays.create_group(workspace, fs, n_rows, sampling.slots, array_specs,
                                            block=existing_block or block,
                                            attrs={"sampling": sampling.spec(),
                                                   "frame_size": list(frame_size) if frame_size else None,
                                                   "model": spec.description})
                arrays.ensure_rows(group, n_rows)
                planned.append(PlannedSet(fs, created, rows, n_rows, int(group.attrs["block"])))
        paths = dict(con.execute("SELECT video_id, path FROM videos").fetchall())
    return FeaturizePlan(tuple(planned), paths)


def _states(workspace, models: list[FrameModel], work: FeaturizePlan) -> list[_SetState]:
    """The run's per-set state from a plan, with the Zarr groups opened for writing (no DuckDB)."""
    from jungle.store import arrays

    names = [p.fs.name for p in work.sets]
    if names != [m.set_name for m in models]:
        raise ValueError(f"the plan is for feature sets {names}, not for these models' "
                         f"{[m.set_name for m in models]}")
    return [_SetState(model, p.fs, p.created, dict(p.rows), p.n_rows, arrays.open_group(workspace, p.fs, mode="r+"),
                      p.block) for model, p in zip(models, work.sets)]


def reconcile(workspace, fs) -> tuple[int, int, int]:
    """Fold a set's block markers into ``feature_rows``; complete the set when every row is done.

    Safe to call from any process at any time (short transaction, retried on the DuckDB lock).

    Returns:
        (rows done, rows with errors, rows still pending).
    """
    import polars as pl

    from jungle.store import registry
    from jungle.store.db import connect, transaction

    markers = _read_markers(progress_dir(workspace, fs))
    frame = pl.DataFrame({
        "row": list(markers), "status": [v[0] for v in markers.values()],
        "error": [v[1] for v in markers.values()], "n_valid": [v[2] for v in markers.values()],
    }, schema={"row": pl.Int32, "status": pl.Utf8, "error": pl.Utf8, "n_valid": pl.Int32})
    with connect(workspace) as con:
        with transaction(con):
            con.register("markers", frame)
            con.execute(
                "UPDATE feature_rows SET status = m.status, error = m.error, n_valid = m.n_valid FROM markers m "
                "WHERE feature_rows.name = ? AND feature_rows.version = ? AND feature_rows.row = m.row",
                [fs.name, fs.version])
            con.unregister("markers")
            counts = dict(con.execute(
                "SELECT status, count(*) FROM feature_rows WHERE name = ? AND version = ? GROUP BY status",
                [fs.name, fs.version]).fetchall())
            total = sum(counts.values())
            if counts.get("pending", 0) == 0 and total:
                registry.mark_complete(con, fs, total)
    return counts.get("done", 0), counts.get("error", 0), counts.get("pending", 0)


# ----------------------------------------------------------------------------- the pass
@dataclass
class _Video:
    video_id: str
    path: str
    targets: list[tuple[int, int]]  # (set position, row)
    decoded: DecodedVideo | None = None
    outputs: list[dict] = field(default_factory=list)
    filled: int = 0


class _BlockWriter:
    """Collects finished videos per (set, block) and writes each block once all its missing rows are in."""

    def __init__(self, workspace, states: list[_SetState], expected: dict[tuple[int, int], set[int]], slots: int):
        self.workspace, self.states, self.slots = workspace, states, slots
        self.expected = expected
        self.results: dict[tuple[int, int], dict[int, dict]] = {key: {} for key in expected}

    def add(self, video: _Video) -> None:
        for position, row in video.targets:
            state = self.states[position]
            key = (position, row - row % state.block)
            self.results[key][row] = self._row_arrays(video, position)
            if len(self.results[key]) == len(self.expected[key]):
                self._write(key)

    def _row_arrays(self, video: _Video, position: int) -> dict:
        decoded = video.decoded
        specs = self.states[position].model.output_specs()
        out = {"valid": decoded.valid, "timestamps": decoded.timestamps, "frame_index": decoded.frame_index,
               "_status": ("error" if decoded.error else "done", decoded.error, decoded.n_valid)}
        for name, (shape, dtype) in specs.items():
            values = np.zeros((self.slots, *shape), dtype=dtype)
            if not decoded.error:
                values[: decoded.n_valid] = np.concatenate(video.outputs[position][name])
            out[name] = values
        return out

    def _write(self, key: tuple[int, int]) -> None:
        from jungle.store import arrays

        position, start = key
        state = self.states[position]
        rows = sorted(self.results[key])
        names = [n for n in self.results[key][rows[0]] if not n.startswith("_")]
        run_start = rows[0]
        for i, row in enumerate(rows):  # one write per contiguous run of rows
            if i + 1 == len(rows) or rows[i + 1] != row + 1:
                chunk = [self.results[key][r] for r in range(run_start, row + 1)]
                arrays.write_rows(state.group, run_start, {n: np.stack([c[n] for c in chunk]) for n in names})
                if i + 1 < len(rows):
                    run_start = rows[i + 1]
        marker = {r: v for r, v in state.done.items() if start <= r < start + state.block}
        marker.update({r: self.results[key][r]["_status"] for r in rows})
        _write_marker(progress_dir(self.workspace, state.fs), start, marker)
        state.done.update(marker)
        del self.results[key]


def _plan_work(states: list[_SetState], shard: Shard | None):
    """Videos to decode, in row order of the first set, and the rows each block still misses."""
    primary = states[0]
    if shard is not None and len(states) > 1:
        for state in states[1:]:
            if any(state.rows.get(v) != r for v, r in primary.rows.items()):
                raise InputError(
                    f"shards need every feature set to share row numbers, but {state.fs.ref} and "
                    f"{primary.fs.ref} differ. Run these encoders in separate `jungle featurize --shard` runs.")
    by_video: dict[str, list[tuple[int, int]]] = {}
    expected: dict[tuple[int, int], set[int]] = {}
    order: dict[str, int] = {}
    for position, state in enumerate(states):
        for video_id, row in state.rows.items():
            if row in state.done:
                continue
            block_number = row // state.block
            if shard is not None and not shard.owns(block_number):
                continue
            by_video.setdefault(video_id, []).append((position, row))
            expected.setdefault((position, block_number * state.block), set()).add(row)
            order.setdefault(video_id, primary.rows.get(video_id, row))
    ordered = sorted(by_video, key=lambda v: order[v])
    return ordered, by_video, expected


def decode_size(models: list[FrameModel]) -> tuple[int, int] | None:
    """(width, height) to decode frames at for all ``models`` at once: the largest any of them takes.

    A model says what it takes with ``frame_size`` (width, height), else ``input_size`` (square);
    a model given larger frames resizes them itself (an :class:`~jungle.features.models.encoders.Encoder`
    does, with antialiasing). None (the coded size) when any model sets ``native_frames`` (the
    detector keeps the aspect ratio and crops the timestamp bar itself).
    """
    if any(getattr(m, "native_frames", False) for m in models):
        return None
    sizes = [tuple(getattr(m, "frame_size", None) or (m.input_size, m.input_size)) for m in models]
    return max(w for w, _ in sizes), max(h for _, h in sizes)


class _Batcher:
    """Feeds decoded frames to the models in batches that span videos (but never blocks), and hands
    each video to the writer once all its frames are through."""

    def __init__(self, models: list[FrameModel], batch_size: int, writer: _BlockWriter,
                 summary: FeaturizeSummary, bar):
        self.models, self.batch_size, self.writer, self.summary, self.bar = models, batch_size, writer, summary, bar
        self.pending: list[tuple[_Video, np.ndarray]] = []
        self.size = 0

    def add(self, video: _Video) -> None:
        video.outputs = [{} for _ in self.models]
        if video.decoded.error:
            self.finish(video)
            return
        images = video.decoded.images
        if self.pending and self.pending[0][1].shape[1:] != images.shape[1:]:
            self.flush()  # a batch never mixes frame sizes (native-size frames differ by video)
        while len(images):
            room = self.batch_size - self.size
            self.pending.append((video, images[:room]))
            self.size += len(images[:room])
            images = images[room:]
            if self.size >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        images = np.concatenate([part for _, part in self.pending])
        start = time.perf_counter()
        outputs = [model.encode(images) for model in self.models]
        self.summary.encode_seconds += time.perf_counter() - start
        offset = 0
        for video, part in self.pending:
            n = len(part)
            for position, out in enumerate(outputs):
                for name, values in out.items():
                    video.outputs[position].setdefault(name, []).append(values[offset:offset + n])
            video.filled += n
            offset += n
            if video.filled == video.decoded.n_valid:
                self.finish(video)
        self.pending, self.size = [], 0

    def finish(self, video: _Video) -> None:
        self.writer.add(video)
        summary, decoded = self.summary, video.decoded
        summary.videos += 1
        summary.frames += decoded.n_valid
        if decoded.error:
            summary.failures.append((video.path, decoded.error))
        for position, _ in video.targets:
            summary.sets[position].processed += 1
            summary.sets[position].errors += bool(decoded.error)
            summary.sets[position].frames += decoded.n_valid
        decoded.images = None
        self.bar.update(1)


def run_models(
    workspace,
    models: list[FrameModel],
    sampling: Sampling,
    *,
    shard: Shard | None = None,
    batch_size: int = 32,
    workers: int = 1,
    block: int = 64,
    decode_threads: int = 0,
    progress: bool = True,
    pool: DecodePool | None = None,
    work: FeaturizePlan | None = None,
    record: bool = True,
) -> FeaturizeSummary:
    """Run per-frame ``models`` over the workspace's videos sampled by ``sampling`` (the runner's core).

    Each model gets (or resumes) its own feature set; see the module docstring. ``pool``: decode
    workers already started (else ``workers`` are started here and stopped at the end).
    ``work``: the run's plan made by a coordinator with :func:`plan` (None: plan here, in
    DuckDB). ``record``: fold the markers into DuckDB at the end (False: leave that to the
    coordinator; the summary's sets are then not marked complete).

    Raises:
        Interrupted: Ctrl-C; the decode workers are stopped, finished blocks are kept.
        DiskFull, WorkspaceNotWritable: a write failed (see :mod:`jungle.store.failures`); finished
            blocks are kept, and the same run resumes once there is room.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    frame_size = decode_size(models)
    work = work or plan(workspace, [ModelSpec.of(m) for m in models], sampling, block)
    states, paths = _states(workspace, models, work), work.paths
    with _claim(workspace, [state.fs for state in states], shard):  # held until the markers are folded in
        for state in states:
            owned = (lambda start, b=state.block: shard.owns(start // b)) if shard is not None else None
            state.done = _read_markers(progress_dir(workspace, state.fs), owned)
        ordered, targets, expected = _plan_work(states, shard)
        summary = FeaturizeSummary([SetSummary(s.fs.name, s.fs.version, s.n_rows, created=s.created) for s in states],
                                   shard=str(shard) if shard else None)
        videos = [_Video(v, paths[v], targets[v]) for v in ordered]
        tasks = ((video.path, sampling, frame_size, decode_threads) for video in videos)
        primary = states[0]
        bar = tqdm(total=len(videos), unit="video", desc="featurize", file=sys.stderr,
                   disable=not progress or not sys.stderr.isatty())
        batcher = _Batcher(models, batch_size, _BlockWriter(workspace, states, expected, sampling.slots), summary, bar)
        own_pool = pool is None
        pool = pool or DecodePool(workers if videos else 0)
        try:
            with storage_errors(workspace.root):
                _pass(videos, pool.decoded_in_order(tasks), primary, batcher, summary)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted after {summary.videos} of {len(videos)} videos (finished blocks are "
                              "kept); run the same command to resume.") from None
        finally:
            bar.close()
            if own_pool:
                pool.close()
        if record:
            for position, state in enumerate(states):
                summary.sets[position].complete = reconcile(workspace, state.fs)[2] == 0
    summary.seconds = time.perf_counter() - started
    return summary


def _pass(videos: list[_Video], decoded: Iterator[DecodedVideo], primary: _SetState, batcher: _Batcher,
          summary: FeaturizeSummary) -> None:
    """Feed each decoded video to the models; a block's batches end with the block."""
    previous_block = None
    for video, frames in zip(videos, decoded):
        block_number = primary.rows.get(video.video_id, video.targets[0][1]) // primary.block
        if block_number != previous_block:  # batches never span blocks: a resumed block computes the same
            batcher.flush()
            previous_block = block_number
        video.decoded = frames
        summary.decode_seconds += frames.seconds
        batcher.add(video)
    batcher.flush()


class FeaturizeBusy(BusyError):
    """Another featurize run holds the blocks this run would write."""


@contextmanager
def _claim(workspace, sets: list, shard: Shard | None) -> Iterator[None]:
    """Hold each set's run lock (exclusive for an unsharded run, shared for a shard) and, for a shard,
    its own shard lock, for the whole run: two runs never write the same blocks.

    Locks are ``flock`` locks on files beside the markers, released by the OS if the process dies.

    Raises:
        FeaturizeBusy: another run holds a conflicting lock.
    """
    import fcntl

    names = [("run.lock", fcntl.LOCK_SH if shard else fcntl.LOCK_EX)]
    if shard is not None:
        names.append((f"shard-{shard.index}of{shard.count}.lock", fcntl.LOCK_EX))
    handles = []
    try:
        for fs, (name, mode) in ((fs, n) for fs in sets for n in names):
            folder = progress_dir(workspace, fs)
            with storage_errors(workspace.root):
                folder.mkdir(parents=True, exist_ok=True)
                handle = open(folder / name, "a+")
            handles.append(handle)
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                what = f"shard {shard} of" if shard is not None else "the blocks of"
                raise FeaturizeBusy(
                    f"another featurize run is already working on {what} feature set {fs.ref} (lock "
                    f"{folder / name}). Wait for it to finish, or split the work between runs with "
                    "--shard i/n (each run its own i).") from None
        yield
    finally:
        for handle in handles:
            handle.close()


def default_workers(device: str = "cpu", cores: int | None = None) -> int:
    """Decode processes: one per 2 cores when the forward pass shares the CPU; on a GPU, which
    leaves the cores to decoding (the bottleneck there), all but one (the one that feeds the GPU)."""
    cores = cores or available_cores()
    return max(1, cores - 1) if device.startswith("cuda") else max(1, cores // 2)


def load_models(workspace, config: FeaturizeConfig, work: FeaturizePlan | None = None) -> list[FrameModel]:
    """The configured encoders, each on its backend (see :mod:`jungle.features.models.backends`).

    A coordinator's plan (``work``) fixes the backend and precision each set was registered with:
    the workers then compute what the plan's lineage says.
    """
    from ..models.backends import calibration_frames, choose_backend, load_fastest
    from ..models.encoders import load_encoder

    models = []
    for position, encoder_config in enumerate(config.encoders):
        backend, precision = config.backend, config.precision
        if work is not None:
            planned = work.sets[position].fs.config.get("model", {})
            backend, precision = planned.get("backend", "torch"), ("int8" if planned.get("precision") == "int8" else "fp32")
        encoder = load_encoder(encoder_config, device=config.device)
        calibration = calibration_frames(workspace, encoder.input_size) if precision == "int8" else None
        models.append(load_fastest(encoder, choose_backend(backend, config.device), precision, calibration=calibration))
    return models


def featurize(workspace, config: FeaturizeConfig | None = None, shard: Shard | str | None = None,
              progress: bool = True, work: FeaturizePlan | None = None, record: bool = True) -> FeaturizeSummary:
    """Featurize every ingested video of ``workspace`` with ``config`` (the pipeline's entry point).

    Args:
        workspace: a :class:`jungle.store.workspace.Workspace`.
        config: encoders, sampling and run settings (default: ``lite0``, ``uniform:32``, CPU).
        shard: only this shard's blocks (``Shard`` or "I/N").
        progress: show a progress bar on a terminal.
        work, record: a coordinator's plan, and whether to record the result in DuckDB here (see
            :func:`run_models`).

    Returns:
        A :class:`FeaturizeSummary`.

    Raises:
        EncoderError: an encoder or its weights cannot be loaded.
    """
    import torch

    config = config or FeaturizeConfig()
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    require_weights = getattr(config.sampling, "require_weights", None)
    if require_weights is not None:  # detector:N: a missing weights file fails once, before any worker starts
        require_weights()
    torch.set_num_threads(config.torch_threads or os.cpu_count() or 1)
    workers = default_workers(config.device) if config.workers is None else config.workers
    decode_threads = config.decode_threads if config.decode_threads is not None else (1 if workers else 0)
    with DecodePool(workers) as pool:  # workers start (and import) while the models load
        models = load_models(workspace, config, work)
        batch_size = config.batch_size or (256 if config.device.startswith("cuda") else 32)
        return run_models(workspace, models, config.sampling, shard=shard, batch_size=batch_size,
                          block=config.block, decode_threads=decode_threads, progress=progress, pool=pool,
                          work=work, record=record)
