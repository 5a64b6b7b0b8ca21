"""The featurize runner: sampled frames of every video through per-frame models into Zarr.

One pass over the workspace's videos decodes each video's sampled frames once (in worker
processes, overlapped with the forward passes in this process) and runs every configured
per-frame model (timm encoders; any object with the :class:`FrameModel` interface) on batches
that span videos. Each model writes its own frame-level feature set ``features.zarr/<name>/vN``:
its outputs (``embedding`` (V, F, D) float16, ``stages`` (V, F, S) float16, ...) plus ``valid``
(V, F) bool, ``timestamps`` (V, F) float32 (NaN where invalid) and ``frame_index`` (V, F) int32
(-1 where invalid).

With a :class:`~.crops.CropStage` (boxes and crops, the default) the same decoding also feeds the
detector and the crops: each video's boxes go to the frame-level set ``boxes`` and, per encoder, its
crops' embeddings to ``crops_<encoder>`` (``crops`` slots instead of the sampling's), the crops
encoded in the same batches as the whole frames (see :mod:`.crops`).

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

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ...errors import InputError, Interrupted
from ...progress import progress_bar
from ...runtime import available_cores, torch_threads
from ...store import arrays
from ...store.failures import storage_errors
from ...store.frame_tables import write_block_table
from ...store.registry import FeatureSet
from ..models.backends import choose_backend, load_fastest
from ..models.encoders import load_encoder
from ..video.boxes import long_rows
from ..video.sampling import Sampling
from .calibration import calibration_frames
from .config import FeaturizeConfig, Shard, default_workers
from .crops import FILLS, CropStage, PreparedVideo, resolve_boxes
from .decode_pool import DecodedVideo, DecodePool
from .frame_model import FrameModel, ModelSpec, decode_size
from .markers import claim, progress_dir, read_markers, write_marker
from .plan import FeaturizePlan, plan, reconcile

if TYPE_CHECKING:
    import zarr

__all__ = ["SetSummary", "FeaturizeSummary", "run_models", "load_models", "load_stage", "resolve_config",
           "run_specs", "featurize"]


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
    #: seconds per step beyond decoding and encoding: ``motion`` (in the workers), ``detector``, ``crops``
    stage_seconds: dict = field(default_factory=dict)
    #: images through the encoders (whole frames and crops) and frames through the detector
    encoded: int = 0
    detected: int = 0
    #: things the user should know (e.g. the detector was off for want of its weights)
    notes: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["feature_set", "version", "rows", "processed", "errors", "frames", "status"]
        return columns, [(s.name, s.version, s.rows, s.processed, s.errors, s.frames,
                          "complete" if s.complete else "building") for s in self.sets]


@dataclass(frozen=True)
class _Target:
    """One feature set a run writes: model ``model``'s outputs on a ``view`` of each video (``frames``:
    the sampled frames, ``crops``: the crops) or, with no model, the view's own arrays (``boxes``)."""

    model: int | None
    view: str
    spec: ModelSpec


def _targets(models: list[FrameModel], stage: CropStage | None) -> list[_Target]:
    """The sets of a run: each model's frames, then (with a stage) each model's crops and the boxes."""
    targets = [_Target(i, "frames", ModelSpec.of(m)) for i, m in enumerate(models)]
    if stage is not None:
        if stage.crops is not None:
            targets += [_Target(t.model, "crops", stage.crop_spec(t.spec)) for t in list(targets)]
        targets.append(_Target(None, "boxes", stage.boxes_spec()))
    return targets


@dataclass
class _SetState:
    target: _Target
    fs: FeatureSet
    created: bool
    rows: dict[str, int]          # video_id -> row
    n_rows: int
    group: zarr.Group | None = None
    block: int = 64
    done: dict[int, tuple] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        return int(self.group["valid"].shape[1])


def _states(workspace, targets: list[_Target], work: FeaturizePlan) -> list[_SetState]:
    """The run's per-set state from a plan, with the Zarr groups opened for writing (no DuckDB)."""
    names = [p.fs.name for p in work.sets]
    if names != [t.spec.set_name for t in targets]:
        raise ValueError(f"the plan is for feature sets {names}, not for this run's "
                         f"{[t.spec.set_name for t in targets]}")
    return [_SetState(target, p.fs, p.created, dict(p.rows), p.n_rows, arrays.open_group(workspace, p.fs, mode="r+"),
                      p.block) for target, p in zip(targets, work.sets)]


# ----------------------------------------------------------------------------- the pass
@dataclass
class _Video:
    video_id: str
    path: str
    targets: list[tuple[int, int]]  # (set position, row)
    decoded: DecodedVideo | None = None
    prepared: PreparedVideo | None = None
    outputs: list[dict] = field(default_factory=list)   # per model: array name -> chunks of all images
    views: dict[str, tuple[int, int]] = field(default_factory=dict)  # view -> (start, stop) among the images
    total: int = 0
    filled: int = 0

    def images(self) -> list[tuple[str, np.ndarray]]:
        """What goes through the encoders: the valid frames, then the cut crops (none when the clip's
        crops are whole frames: those reuse the frames' outputs)."""
        parts = [("frames", self.decoded.images)]
        if self.prepared is not None and self.prepared.crops is not None:
            parts.append(("crops", self.prepared.crops))
        return parts

    def model_outputs(self, model: int, view: str) -> dict[str, np.ndarray]:
        """A model's outputs on one view's images."""
        start, stop = self.views[view]
        return {name: np.concatenate(chunks)[start:stop] for name, chunks in self.outputs[model].items()}


class _BlockWriter:
    """Collects finished videos per (set, block) and writes each block once all its missing rows are in."""

    def __init__(self, workspace, states: list[_SetState], expected: dict[tuple[int, int], set[int]]):
        self.workspace, self.states = workspace, states
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
        state = self.states[position]
        target, slots, decoded = state.target, state.slots, video.decoded
        out = {name: np.full((slots, *shape), FILLS.get(name, 0), dtype=dtype)
               for name, (shape, dtype, *_) in target.spec.outputs.items()}
        out.update(valid=np.zeros(slots, bool), timestamps=np.full(slots, np.nan, np.float32),
                   frame_index=np.full(slots, -1, np.int32))
        if decoded.error:
            out["_status"] = ("error", decoded.error, 0)
            return out
        if target.view == "crops":
            choice, n = video.prepared.choice, video.prepared.choice.count
            picked = choice.slot[:n]
            frames = decoded if choice.whole_frames else decoded.candidates   # where the slots point
            out["valid"][:n] = True
            out["timestamps"][:n] = frames.timestamps[picked]
            out["frame_index"][:n] = frames.frame_index[picked]
            own = video.model_outputs(target.model, "frames" if choice.whole_frames else "crops")
            for name, values in own.items():
                out[name][:n] = values[picked] if choice.whole_frames else values
            out["box"], out["crop"] = choice.box, video.prepared.rects
            out["box_score"], out["box_source"] = choice.score, choice.source
        elif target.view == "boxes":
            candidates, n = decoded.candidates, len(decoded.candidates)
            out["valid"][:n] = True
            out["timestamps"][:n], out["frame_index"][:n] = candidates.timestamps, candidates.frame_index
            for name, values in video.prepared.boxes.arrays().items():
                out[name][:n] = values
        else:
            n = decoded.n_valid
            out["valid"], out["timestamps"], out["frame_index"] = decoded.valid, decoded.timestamps, decoded.frame_index
            for name, values in video.model_outputs(target.model, "frames").items():
                out[name][:n] = values
        out["_status"] = ("done", None, n)
        return out

    def _write(self, key: tuple[int, int]) -> None:
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
        if state.target.view == "boxes":  # the block's rows of the ``boxes`` SQL table, from what is stored
            _write_box_table(self.workspace, state, start, marker)
        write_marker(progress_dir(self.workspace, state.fs), start, marker)
        state.done.update(marker)
        del self.results[key]


def _write_box_table(workspace, state: _SetState, start: int, marker: dict[int, tuple]) -> None:
    """The long table of one block of the ``boxes`` set: one row per stored box of its done rows."""
    import polars as pl

    done = sorted(r for r, (status, _, _) in marker.items() if status == "done")
    by_row = {row: video for video, row in state.rows.items()}
    stop = start + state.block
    read = {name: state.group[name][start:stop] for name in ("frame_index", "timestamps", "valid", "box",
                                                              "box_score", "box_source")}
    local = np.asarray(done, np.int64) - start
    columns = long_rows([by_row[r] for r in done], *(read[name][local] for name in (
        "frame_index", "timestamps", "valid", "box", "box_score", "box_source")))
    schema = {"video_id": pl.String, "frame_index": pl.Int32, "timestamp": pl.Float32, "rank": pl.Int8,
              "source": pl.String, "score": pl.Float32, "x": pl.Float32, "y": pl.Float32, "w": pl.Float32,
              "h": pl.Float32}
    write_block_table(workspace, state.fs.name, state.fs.version, start, pl.DataFrame(columns, schema=schema))


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


class _Batcher:
    """Feeds decoded frames to the models in batches that span videos (but never blocks), and hands
    each video to the writer once all its frames are through."""

    def __init__(self, models: list[FrameModel], batch_size: int, writer: _BlockWriter,
                 summary: FeaturizeSummary, bar, stage: CropStage | None = None):
        self.models, self.batch_size, self.writer, self.summary, self.bar = models, batch_size, writer, summary, bar
        self.stage = stage
        self.pending: list[tuple[_Video, np.ndarray]] = []
        self.size = 0

    def add(self, video: _Video) -> None:
        video.outputs = [{} for _ in self.models]
        if video.decoded.error:
            self.finish(video)
            return
        if self.stage is not None:
            video.prepared = self.stage.prepare(video.decoded)
            video.decoded.candidates.images = None  # the frames for boxes and crops are done with
        parts = video.images()
        for view, images in parts:  # all counted first: a video is finished once all its images are through
            video.views[view] = (video.total, video.total + len(images))
            video.total += len(images)
        for _, images in parts:
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
        self.summary.encoded += len(images)
        offset = 0
        for video, part in self.pending:
            n = len(part)
            for position, out in enumerate(outputs):
                for name, values in out.items():
                    video.outputs[position].setdefault(name, []).append(values[offset:offset + n])
            video.filled += n
            offset += n
            if video.filled == video.total:
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
    stage: CropStage | None = None,
) -> FeaturizeSummary:
    """Run per-frame ``models`` over the workspace's videos sampled by ``sampling`` (the runner's core).

    Each model gets (or resumes) its own feature set; with ``stage`` (boxes and crops) also the
    ``boxes`` set and one crop set per model; see the module docstring. ``pool``: decode
    workers already started (else ``workers`` are started here and stopped at the end).
    ``work``: the run's plan made by a coordinator with :func:`plan` (None: plan here, in
    DuckDB). ``record``: fold the markers into DuckDB at the end (False: leave that to the
    coordinator; the summary's sets are then not marked complete).

    Raises:
        Interrupted: Ctrl-C; the decode workers are stopped, finished blocks are kept.
        DiskFull, WorkspaceNotWritable: a write failed (see :mod:`jungle.store.failures`); finished
            blocks are kept, and the same run resumes once there is room.
    """
    started = time.perf_counter()
    frame_size = decode_size(models)
    targets = _targets(models, stage)
    work = work or plan(workspace, [t.spec for t in targets], sampling, block)
    states, paths = _states(workspace, targets, work), work.paths
    with claim(workspace, [state.fs for state in states], shard):  # held until the markers are folded in
        for state in states:
            owned = (lambda start, b=state.block: shard.owns(start // b)) if shard is not None else None
            state.done = read_markers(progress_dir(workspace, state.fs), owned)
        ordered, rows, expected = _plan_work(states, shard)
        summary = FeaturizeSummary([SetSummary(s.fs.name, s.fs.version, s.n_rows, created=s.created) for s in states],
                                   shard=str(shard) if shard else None)
        videos = [_Video(v, paths[v], rows[v]) for v in ordered]
        working = stage.boxes.working if stage is not None else None
        tasks = ((video.path, sampling, frame_size, decode_threads, working) for video in videos)
        primary = states[0]
        bar = progress_bar(len(videos), "featurize", show=progress)
        batcher = _Batcher(models, batch_size, _BlockWriter(workspace, states, expected), summary, bar, stage)
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
    if stage is not None:
        summary.stage_seconds.update(stage.seconds)
        summary.detected = stage.frames_detected
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
        if frames.candidates is not None:
            summary.stage_seconds["motion"] = summary.stage_seconds.get("motion", 0.0) + frames.motion_seconds
        batcher.add(video)
    batcher.flush()


def load_models(workspace, config: FeaturizeConfig, work: FeaturizePlan | None = None) -> list[FrameModel]:
    """The configured encoders, each on its backend (see :mod:`jungle.features.models.backends`).

    A coordinator's plan (``work``) fixes the backend and precision each set was registered with:
    the workers then compute what the plan's lineage says.
    """
    models = []
    for position, encoder_config in enumerate(config.encoders):
        backend, precision = config.backend, config.precision
        if work is not None:
            planned = work.sets[position].fs.config.get("model", {})
            backend = planned.get("backend", "torch")
            precision = "int8" if planned.get("precision") == "int8" else "fp32"
        encoder = load_encoder(encoder_config, device=config.device)
        calibration = calibration_frames(workspace, encoder.input_size) if precision == "int8" else None
        models.append(load_fastest(encoder, choose_backend(backend, config.device), precision, calibration=calibration))
    return models


def resolve_config(config: FeaturizeConfig) -> tuple[FeaturizeConfig, list[str]]:
    """``config`` with the detector's ``"auto"`` decided (:func:`~.crops.resolve_boxes`), and notes for the user."""
    if config.boxes is None:
        return config, []
    boxes, note = resolve_boxes(config.boxes)
    return config.model_copy(update={"boxes": boxes}), [note] if note else []


def load_stage(config: FeaturizeConfig, models: list[FrameModel]) -> CropStage | None:
    """The boxes-and-crops step of a run with ``config`` (resolved) and its encoders (None: boxes are off).

    Raises:
        WeightsError: the detector is on and its weights are missing or damaged.
    """
    if config.boxes is None:
        return None
    size = decode_size(models)
    return CropStage.load(config.boxes, config.crops, size[0] if size else 224)


def run_specs(workspace, config: FeaturizeConfig) -> list[ModelSpec]:
    """What a run with ``config`` writes, set by set, with the encoders and detector loaded here (on a
    Dask worker: so that the plan records the lineage the workers compute)."""
    config, _ = resolve_config(config)
    models = load_models(workspace, config)
    return [t.spec for t in _targets(models, load_stage(config, models))]


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
        WeightsError: the detector is asked for explicitly and its weights are missing.
    """
    config, notes = resolve_config(config or FeaturizeConfig())
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    require_weights = getattr(config.sampling, "require_weights", None)
    if require_weights is not None:  # detector:N: a missing weights file fails once, before any worker starts
        require_weights()
    workers = default_workers(config.device) if config.workers is None else config.workers
    decode_threads = config.decode_threads if config.decode_threads is not None else (1 if workers else 0)
    with torch_threads(config.torch_threads or available_cores()), DecodePool(workers) as pool:
        models = load_models(workspace, config, work)
        stage = load_stage(config, models)
        batch_size = config.batch_size or (256 if config.device.startswith("cuda") else 32)
        summary = run_models(workspace, models, config.sampling, shard=shard, batch_size=batch_size,
                             block=config.block, decode_threads=decode_threads, progress=progress, pool=pool,
                             work=work, record=record, stage=stage)
    summary.notes = notes
    return summary
