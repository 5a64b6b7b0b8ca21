"""``jungle count``: the animals of every clip that shows one, followed through its sampled frames.

For each clip the featurize run's boxes say something is in (:mod:`.frames`), the detector
(MegadetectorLite) looks at every candidate frame (4 per second), the tracker links its boxes into
tracks (:mod:`.tracker`), and the counts follow from the tracks (:mod:`.counting`). Clips are
decoded in worker processes while the detector runs here. Results go to the workspace database
(:mod:`jungle.store.counts`) a few clips at a time, each write one short transaction, so an
interrupted run resumes where it stopped (the clips counted with the same configuration are left
alone; ``recount`` redoes them). Once the clips are counted, the tracks get their classes from the
frame head's crop probabilities when there are some (:mod:`.classes`).
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from ...config import JungleConfig
from ...errors import Interrupted
from ...progress import progress_bar
from ...runtime import WorkerPool
from ...hashing import config_key
from ...store.counts import counted_videos, record_run, stored_boxes, write_counts
from ...store.db import connect, transaction
from ...store.registry import code_version
from ...store.videos import read_videos
from ..models.detector import DetectorConfig, load_detector
from ..models.weights import weights_path
from .classes import assign_classes
from .counting import ClipCount, count_clip
from .frames import ClipPlan, DecodedClip, decode_clip, detect_clip, plan_clips
from .tracker import Track, TrackerConfig, track_clip

__all__ = ["CountConfig", "CountSummary", "count_workspace", "CountedClip"]


class CountConfig(JungleConfig):
    """How clips are counted (its key names a counting run; part of every count's lineage).

    Attributes:
        detector: MegadetectorLite's settings (boxes down to score 0.1 are kept, so the tracker can
            extend a track with a weaker box; the whole frame goes in, the bottom is cut here).
        bottom: share of each frame's height cut off its bottom before the detector (a camera's
            information bar; 0.07 is zamba's 50 px of a 720 px frame).
        tracker: how boxes become tracks.
        select: ``boxes``: only the clips whose featurize boxes show something; ``all``: every clip.
        fps: frames per second the detector looks at (4: a quarter of a second apart).
        max_seconds: the longest stretch of a clip counted, from its start.
        workers: decode processes (0: decode here).
    """

    detector: DetectorConfig = DetectorConfig(input_height=384, crop_bottom=0, confidence=0.1)
    bottom: float = Field(0.07, ge=0.0, lt=0.5)
    tracker: TrackerConfig = TrackerConfig()
    select: Literal["boxes", "all"] = "boxes"
    fps: float = Field(4.0, gt=0, le=60)
    max_seconds: float = Field(600.0, gt=0)
    workers: int = Field(1, ge=0, le=64)

    def lineage(self) -> dict:
        return {"detector": self.detector.lineage(), "bottom": self.bottom, "tracker": self.tracker.lineage(),
                "select": self.select, "fps": self.fps, "max_seconds": self.max_seconds}

    def boxes_key(self) -> str:
        """The key of how boxes are found (detector, bottom cut, frames; not the tracker or the selection)."""
        return config_key({"detector": self.detector.lineage(), "bottom": self.bottom, "fps": self.fps,
                           "max_seconds": self.max_seconds})


@dataclass
class CountedClip:
    """One clip's result: every box per frame, its tracks and its counts."""

    video_id: str
    frame_index: np.ndarray
    timestamps: np.ndarray
    boxes: list[np.ndarray]
    tracks: list[Track]
    count: ClipCount
    seconds: float


@dataclass
class CountSummary:
    """What a run did."""

    run_key: str
    boxes_set: str | None
    clips: int = 0
    counted: int = 0
    skipped: int = 0
    errors: int = 0
    already: int = 0
    retracked: int = 0
    frames: int = 0
    animals: int = 0
    seconds: float = 0.0
    step_seconds: dict = field(default_factory=lambda: {"decode": 0.0, "detector": 0.0, "tracks": 0.0})
    classes: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns = ["clips", "counted", "tracked_again", "skipped", "errors", "already_counted", "frames", "animals",
                   "seconds"]
        return columns, [(self.clips, self.counted, self.retracked, self.skipped, self.errors, self.already,
                          self.frames, self.animals, round(self.seconds, 1))]


# ----------------------------------------------------------------------------------------------- rows
_CLIP_SCHEMA = {"video_id": pl.String, "run_key": pl.String, "status": pl.String, "reason": pl.String,
                "frames": pl.Int32, "frame_indices": pl.List(pl.Int32), "maxn": pl.Int32, "tracks": pl.Int32,
                "best_frame_index": pl.Int32,
                "bbox_x": pl.Float64, "bbox_y": pl.Float64, "bbox_w": pl.Float64, "bbox_h": pl.Float64,
                "best_frame_boxes": pl.Int32, "max_frame_boxes": pl.Int32, "seconds": pl.Float64,
                "counted_at": pl.Datetime("us")}
_TRACK_SCHEMA = {"video_id": pl.String, "track_id": pl.Int32, "first_frame": pl.Int32, "last_frame": pl.Int32,
                 "first_s": pl.Float64, "last_s": pl.Float64, "boxes": pl.Int32, "mean_score": pl.Float64,
                 "moving": pl.Float64, "counted": pl.Boolean}
_BOX_SCHEMA = {"video_id": pl.String, "frame_index": pl.Int32, "timestamp": pl.Float64, "track_id": pl.Int32,
               "score": pl.Float64, "moving": pl.Float64, "x": pl.Float64, "y": pl.Float64, "w": pl.Float64,
               "h": pl.Float64}


def _clip_row(video_id: str, run_key: str, status: str, reason: str | None = None, clip: CountedClip | None = None,
              seconds: float = 0.0) -> dict:
    from datetime import datetime, timezone

    row = dict.fromkeys(_CLIP_SCHEMA)
    row.update(video_id=video_id, run_key=run_key, status=status, reason=reason, seconds=seconds,
               counted_at=datetime.now(timezone.utc).replace(tzinfo=None))
    if clip is not None:
        count = clip.count
        row.update(frames=len(clip.boxes), frame_indices=[int(f) for f in clip.frame_index], maxn=count.maxn,
                   tracks=count.tracks,
                   best_frame_boxes=count.best_frame_boxes, max_frame_boxes=count.max_frame_boxes)
        if count.best_frame is not None:
            row["best_frame_index"] = int(clip.frame_index[count.best_frame])
            row.update(zip(("bbox_x", "bbox_y", "bbox_w", "bbox_h"), count.best_box))
    return row


def _track_rows(clip: CountedClip, min_moving: float) -> tuple[list[dict], list[dict]]:
    """The clip's ``tracks`` rows and ``track_boxes`` rows (every box, with its track or None)."""
    owner: dict[tuple[int, int], int] = {}
    tracks = []
    for number, track in enumerate(clip.tracks, start=1):
        owner.update({(f, d): number for f, d in zip(track.frames, track.detections)})
        tracks.append({"video_id": clip.video_id, "track_id": number,
                       "first_frame": int(clip.frame_index[track.first]),
                       "last_frame": int(clip.frame_index[track.last]),
                       "first_s": float(clip.timestamps[track.first]), "last_s": float(clip.timestamps[track.last]),
                       "boxes": len(track.frames), "mean_score": track.mean_score,
                       "moving": None if np.isnan(track.typical_moving) else track.typical_moving,
                       "counted": not track.still(min_moving)})
    boxes = []
    for f, found in enumerate(clip.boxes):
        for d, (x1, y1, x2, y2, score, moving) in enumerate(np.asarray(found, np.float64).reshape(-1, 6)):
            boxes.append({"video_id": clip.video_id, "frame_index": int(clip.frame_index[f]),
                          "timestamp": float(clip.timestamps[f]), "track_id": owner.get((f, d)), "score": score,
                          "moving": None if np.isnan(moving) else moving, "x": x1, "y": y1, "w": x2 - x1,
                          "h": y2 - y1})
    return tracks, boxes


class _Writer:
    """Buffers results and writes them every ``every`` clips, one short transaction each."""

    def __init__(self, workspace, every: int = 16):
        self.workspace, self.every = workspace, every
        self.clips: list[dict] = []
        self.tracks: list[dict] = []
        self.boxes: list[dict] = []

    def add(self, clip_row: dict, tracks: list[dict] = (), boxes: list[dict] = ()) -> None:
        self.clips.append(clip_row)
        self.tracks += tracks
        self.boxes += boxes
        if len(self.clips) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.clips:
            return
        frames = (pl.DataFrame(self.clips, schema=_CLIP_SCHEMA), pl.DataFrame(self.tracks, schema=_TRACK_SCHEMA),
                  pl.DataFrame(self.boxes, schema=_BOX_SCHEMA))
        with connect(self.workspace) as con, transaction(con):
            write_counts(con, *frames)
        self.clips, self.tracks, self.boxes = [], [], []


# ----------------------------------------------------------------------------------------------- the run
def _decode_task(task: tuple) -> DecodedClip:
    return decode_clip(*task)


def _decoded(plans: list[ClipPlan], config: CountConfig, box: tuple[int, int]):
    """The plans' decoded clips, in order, decoded ``config.workers`` at a time ahead."""
    tasks = [(p.path, config.fps, config.max_seconds, box) for p in plans]
    if not config.workers or len(tasks) < 2:
        for task in tasks:
            yield _decode_task(task)
        return
    with WorkerPool(min(config.workers, len(tasks)), preload=("jungle.features.tracks.frames", "av", "numpy")) as pool:
        waiting: deque = deque()
        queued = iter(tasks)
        for task in queued:
            waiting.append(pool.submit(_decode_task, task))
            if len(waiting) >= 2 * config.workers:
                break
        while waiting:
            result = waiting.popleft().result()
            for task in queued:
                waiting.append(pool.submit(_decode_task, task))
                break
            yield result


def _counted(video_id: str, frame_index: np.ndarray, timestamps: np.ndarray, boxes: list[np.ndarray],
             config: CountConfig, seconds: float) -> CountedClip:
    """A clip's tracks and counts from its boxes (the still tracks kept, not counted)."""
    tracks = track_clip(boxes, config.tracker)
    counted = [track for track in tracks if not track.still(config.tracker.min_moving)]
    return CountedClip(video_id, frame_index, timestamps, boxes, tracks,
                       count_clip(boxes, counted, config.tracker.min_score), seconds)


def _from_store(video_id: str, frames: list[int], rows: list[tuple], config: CountConfig) -> CountedClip:
    """A clip counted again from the boxes stored by a run that found them the same way."""
    started = time.perf_counter()
    position = {f: i for i, f in enumerate(frames)}
    boxes = [[] for _ in frames]
    timestamps = np.full(len(frames), np.nan)
    for frame, timestamp, score, moving, x, y, w, h in rows:
        i = position[frame]
        timestamps[i] = timestamp
        boxes[i].append((x, y, x + w, y + h, score, np.nan if moving is None else moving))
    boxes = [np.asarray(b, np.float64).reshape(-1, 6) for b in boxes]
    clip = _counted(video_id, np.asarray(frames, np.int32), timestamps, boxes, config, 0.0)
    clip.seconds = time.perf_counter() - started
    return clip


def count_workspace(workspace, config: CountConfig | None = None, *, recount: bool = False,
                    progress: bool = True) -> CountSummary:
    """Count the animals of the workspace's clips (see the module docstring).

    A clip counted before with the same detector and frames but another tracker is tracked again
    from its stored boxes, without decoding it (``recount`` decodes it again).

    Raises:
        WeightsError: the detector's weights are not cached (the message says how to fetch them).
        Interrupted: Ctrl-C; the clips written so far are kept, and the same command resumes.
    """
    config = config or CountConfig()
    weights_path(config.detector.weights)  # before any work: a missing file fails once, saying what to do
    started = time.perf_counter()
    run_key, boxes_key = config.key(), config.boxes_key()
    with connect(workspace) as con:
        videos = [(v, p) for v, p in read_videos(con, ("video_id", "path"), ok_only=True)]
        done = set() if recount else counted_videos(con, run_key)
        todo = [(v, p) for v, p in videos if v not in done]
        again = {} if recount else stored_boxes(con, boxes_key, [v for v, _ in todo])
        plans, boxes_set = plan_clips(con, workspace, [(v, p) for v, p in todo if v not in again], config.select)
    summary = CountSummary(run_key, boxes_set, clips=len(videos), already=len(videos) - len(todo))
    detector = load_detector(config.detector)
    with connect(workspace) as con, transaction(con):
        record_run(con, run_key, boxes_key, json.dumps(config.lineage()), json.dumps(detector.lineage()),
                   code_version())
    writer = _Writer(workspace)
    for video_id, (frames, rows) in again.items():
        clip = _from_store(video_id, frames, rows, config)
        writer.add(_clip_row(video_id, run_key, "counted", clip=clip, seconds=clip.seconds),
                   *_track_rows(clip, config.tracker.min_moving))
        summary.counted += 1
        summary.retracked += 1
        summary.frames += len(frames)
        summary.animals += clip.count.maxn
        summary.step_seconds["tracks"] += clip.seconds
    for plan in (p for p in plans if p.skip):
        writer.add({**_clip_row(plan.video_id, run_key, "skipped", plan.skip), "frames": len(plan.looked),
                    "frame_indices": list(plan.looked)})
        summary.skipped += 1
    counting = [p for p in plans if not p.skip]
    bar = progress_bar(len(counting), "count", show=progress)
    box = (config.detector.input_width, config.detector.input_height)
    try:
        for plan, decoded in zip(counting, _decoded(counting, config, box)):
            summary.step_seconds["decode"] += decoded.seconds
            if decoded.error:
                writer.add(_clip_row(plan.video_id, run_key, "error", decoded.error, seconds=decoded.seconds))
                summary.errors += 1
                summary.failures.append((plan.path, decoded.error))
                bar.update(1)
                continue
            began = time.perf_counter()
            boxes = detect_clip(detector, decoded.images, config.bottom, decoded.moving)
            middle = time.perf_counter()
            clip = _counted(plan.video_id, decoded.frame_index, decoded.timestamps, boxes, config, 0.0)
            ended = time.perf_counter()
            summary.step_seconds["detector"] += middle - began
            summary.step_seconds["tracks"] += ended - middle
            clip.seconds = decoded.seconds + ended - began
            writer.add(_clip_row(plan.video_id, run_key, "counted", clip=clip, seconds=clip.seconds),
                       *_track_rows(clip, config.tracker.min_moving))
            summary.counted += 1
            summary.frames += len(boxes)
            summary.animals += clip.count.maxn
            bar.update(1)
        writer.flush()
    except KeyboardInterrupt:
        writer.flush()
        raise Interrupted(f"interrupted after {summary.counted} of {len(counting)} clips (those are kept); "
                          "run the same command to resume.") from None
    finally:
        bar.close()
    summary.classes = assign_classes(workspace)
    summary.seconds = time.perf_counter() - started
    return summary
