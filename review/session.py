"""One review run: the clips, the model's probabilities, the queue, label writes and re-fits.

The session keeps only what is slow to rebuild in memory (the saved model's features and the
probabilities); labels are read from the workspace on every queue request and written at once,
each in a short transaction, so other jungle commands can use the database between requests.

The probabilities are the model's out-of-sample ones (out of fold for the clips it was fitted
on), as the CSV export and the ``current_predictions`` view read them
(:func:`~jungle.review.retrain.model_probabilities`). :meth:`ReviewSession.retrain` saves a re-fit
as a new model and switches to it when it scores better; :meth:`ReviewSession.use_model` switches
to any saved model (and makes it current).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import NotFoundError
from ..store.capture_times import format_time
from ..meta.model_io import choose_model, current_model_id, list_models, load_model
from ..store.counts import count_history, read_counts, read_track_boxes, read_tracks
from ..store.db import connect
from ..store.label_events import label_history
from ..store.labels import read_labelled
from ..store.predictions import rounded
from ..store.videos import read_videos
from ..store.workspace import Workspace
from . import labels_store
from . import count_store
from .previews import ClipMissing, browser_playable, cached_strip, missing_message, strip_frames
from .queue import QueueError, QueueRequest, queue_order
from .retrain import RetrainConfig, RetrainResult, load_features, model_probabilities, retrain

__all__ = ["Clip", "ReviewSession", "parse_queue_request"]

_TOP = 5
_EPOCH = datetime(1970, 1, 1)
_CLIP_COLUMNS = ("video_id", "filename", "relpath", "path", "site", "captured_at", "utc_offset_minutes",
                 "time_source",
                 "bytes", "container", "video_codec",
                 "pix_fmt", "width", "height", "fps", "duration", "is_night", "brightness", "motion_energy")


@dataclass(frozen=True)
class Clip:
    """A clip's row of ``videos``: what the page shows beside the player."""

    video_id: str
    filename: str
    relpath: str | None
    path: str
    site: str | None
    captured_at: datetime | None
    utc_offset_minutes: int | None
    time_source: str | None
    bytes: int | None
    container: str | None
    video_codec: str | None
    pix_fmt: str | None
    width: int | None
    height: int | None
    fps: float | None
    duration: float | None
    is_night: bool | None
    brightness: float | None
    motion_energy: float | None

    @property
    def playable(self) -> bool:
        return browser_playable(self.container, self.video_codec, self.pix_fmt)

    @property
    def time(self) -> str | None:
        """The capture time as the camera showed it, with its UTC offset when known."""
        return format_time(self.captured_at, self.utc_offset_minutes)

    def metadata(self) -> dict:
        """Everything but the id, JSON-ready (``captured_at`` with its offset as :attr:`time`)."""
        out = {name: getattr(self, name) for name in _CLIP_COLUMNS[1:] if name != "utc_offset_minutes"}
        out["captured_at"] = self.time
        return out


def _yes_no_all(text: str | None) -> bool | str | None:
    mapping = {None: None, "": None, "yes": True, "true": True, "1": True, "no": False, "false": False, "0": False,
               "all": "all"}
    if text not in mapping:
        raise QueueError(f"labelled must be yes, no or all, not {text!r}")
    return mapping[text]


def _band(low: str | None, high: str | None) -> tuple[float, float] | None:
    if not low and not high:
        return None
    try:
        return (float(low) if low else 0.0, float(high) if high else 1.0)
    except ValueError:
        raise QueueError(f"the probability band needs numbers between 0 and 1, not {low!r}..{high!r}") from None


def parse_queue_request(params: dict[str, str], classes: list[str]) -> QueueRequest:
    """A :class:`QueueRequest` from the page's query parameters (``order``, ``class``, ``site``,
    ``labelled``, ``min_p``, ``max_p``, ``method``, ``seed``)."""
    cls = params.get("class") or None
    if cls is not None and cls not in classes:
        raise QueueError(f"unknown class {cls!r}. Known classes: {', '.join(classes)}.")
    try:
        seed = int(params.get("seed") or 0)
    except ValueError:
        raise QueueError(f"seed must be a whole number, not {params.get('seed')!r}") from None
    return QueueRequest(order=params.get("order") or "uncertainty",
                        class_index=None if cls is None else classes.index(cls), site=params.get("site") or None,
                        labelled=_yes_no_all(params.get("labelled")),
                        band=_band(params.get("min_p"), params.get("max_p")),
                        method=params.get("method") or "entropy", seed=seed)


def _columns(loaded) -> list[tuple]:
    """What a model reads: its input blocks' feature sets and columns."""
    return [(tuple(block.features), tuple(block.columns)) for block in loaded.inputs]


class ReviewSession:
    """The state of one ``jungle review`` run; every method is safe to call from several threads."""

    def __init__(self, workspace: Workspace, model: str = "current", config: RetrainConfig = RetrainConfig(),
                 reviewer: str | None = None):
        self.workspace = workspace
        self.config = config
        self.reviewer = reviewer
        self.session_id = secrets.token_hex(8)
        self.lock = threading.RLock()
        self.features = load_features(workspace, model)
        self.model_id = self.features[0].model_id
        self.classes: list[str] = list(self.features[0].classes)
        self.video_ids: list[str] = list(self.features[1])
        self.P, self.origin = model_probabilities(workspace, self.features)
        self.last_retrain: RetrainResult | None = None
        with connect(workspace) as con:
            rows = read_videos(con, _CLIP_COLUMNS)
        by_id = {r[0]: Clip(*r) for r in rows}
        self.clips = [by_id[v] for v in self.video_ids]
        self.row_of = {v: i for i, v in enumerate(self.video_ids)}

    # ------------------------------------------------------------------ reading
    def clip(self, video_id: str) -> Clip:
        """The clip with this id, among the session's clips (never a path from a request)."""
        i = self.row_of.get(video_id)
        if i is None:
            raise NotFoundError(f"no clip with video_id {video_id!r} in this review (clips need the model's features)")
        return self.clips[i]

    def _top(self, i: int) -> list[list]:
        order = np.argsort(-self.P[i], kind="stable")[:_TOP]
        return [[self.classes[j], rounded(self.P[i, j])] for j in order]

    def _labels(self):
        with connect(self.workspace) as con:
            labels = read_labelled(con, None, required=False)
        Y, labelled = labels.aligned(self.video_ids, self.classes)
        return Y.astype(np.int8), labelled, labels.source_of()

    def _entry(self, i: int, Y, labelled, sources, score: float | None = None) -> dict:
        clip = self.clips[i]
        return {
            "video_id": clip.video_id, "filename": clip.filename, "site": clip.site,
            "time": clip.time, "time_source": clip.time_source,
            "labels": [c for c, y in zip(self.classes, Y[i]) if y] if labelled[i] else None,
            "label_source": sources.get(clip.video_id),
            "probabilities": {c: rounded(p) for c, p in zip(self.classes, self.P[i])},
            "top": self._top(i),
            "score": None if score is None or np.isnan(score) else round(float(score), 6),
        }

    def queue(self, request: QueueRequest, limit: int = 100, offset: int = 0) -> dict:
        """The clips of ``request`` in queue order (``limit`` of them from ``offset``) and the total."""
        with self.lock:
            Y, labelled, sources = self._labels()
            order, scores = queue_order(request, self.P, Y, labelled, [c.site for c in self.clips],
                                        [(c.captured_at - _EPOCH).total_seconds() if c.captured_at else np.nan
                                         for c in self.clips],
                                        [c.filename for c in self.clips])
            window = slice(offset, offset + limit)
            return {"order": request.order, "total": int(len(order)),
                    "clips": [self._entry(int(i), Y, labelled, sources, s)
                              for i, s in zip(order[window], scores[window])]}

    def detail(self, video_id: str) -> dict:
        """A clip's queue entry plus its metadata, how to show it, and its label history."""
        clip = self.clip(video_id)
        with self.lock:
            Y, labelled, sources = self._labels()
            with connect(self.workspace) as con:
                history = label_history(con, video_id)
            entry = self._entry(self.row_of[video_id], Y, labelled, sources)
        exists = Path(clip.path).exists()
        media = "video" if exists and clip.playable else ("frames" if exists else None)
        entry.update(metadata=clip.metadata(), history=history, missing=None if exists else missing_message(clip.path),
                     media=media, count=self.count(video_id, strip=media == "frames"))
        return entry

    def count(self, video_id: str, strip: bool = False) -> dict | None:
        """What the page shows of a clip's count: the count that wins (a person's, else ``jungle count``'s
        MaxN), both, the tracks, and the boxes of the counted tracks per sampled frame (``boxes``: time
        ``t``, display index ``f``, track ``id``, ``x``, ``y``, ``w``, ``h``); with ``strip``, the display
        indices of the frame strip's frames (``strip``). None when the clip was never counted."""
        clip = self.clip(video_id)
        with connect(self.workspace) as con:
            row = read_counts(con, [video_id]).get(video_id)
            if row is None:
                return None
            tracks = read_tracks(con, video_id)
            boxes = read_track_boxes(con, [video_id]).get(video_id, [])
            history = count_history(con, video_id)
        counted = {t["track_id"] for t in tracks if t["counted"] is not False}
        out = {"count": row.maxn, "machine": row.machine, "human": row.human, "tracks": row.tracks,
               "status": row.status, "best_frame": row.best_frame_index, "fps": clip.fps,
               "classes": row.classes, "history": [{**h, "changed_at": str(h["changed_at"])} for h in history],
               "boxes": [{"t": b["timestamp"], "f": b["frame_index"], "id": b["track_id"],
                          **{k: round(float(b[k]), 5) for k in ("x", "y", "w", "h")}}
                         for b in boxes if b["track_id"] in counted]}
        if strip and Path(clip.path).exists():
            out["strip"] = strip_frames(clip.path)
        return out

    def preview(self, video_id: str) -> Path:
        """The cached frame strip of a clip (decoded on first use)."""
        clip = self.clip(video_id)
        return cached_strip(self.workspace, clip.video_id, clip.path)

    def video_file(self, video_id: str) -> Path:
        """The clip's own file, for the browser's player.

        Raises:
            ClipMissing: the file is gone.
        """
        clip = self.clip(video_id)
        if not Path(clip.path).exists():
            raise ClipMissing(missing_message(clip.path))
        return Path(clip.path)

    # ------------------------------------------------------------------ writing
    def set_labels(self, video_id: str, classes: list[str] | None) -> dict:
        """Write the clip's labels (source ``review``) and return its new entry."""
        self.clip(video_id)
        with self.lock:
            change = labels_store.set_labels(self.workspace, video_id, classes, session=self.session_id,
                                             reviewer=self.reviewer)
        return {"event_id": change.event_id, "clip": self.detail(video_id)}

    def set_count(self, video_id: str, count: int | None) -> dict:
        """Write a person's count of the clip (None: remove it) and return its new entry."""
        self.clip(video_id)
        with self.lock:
            change = count_store.set_count(self.workspace, video_id, count, self.session_id, self.reviewer)
        return {"event_id": change.event_id, "clip": self.detail(video_id)}

    def undo_count(self) -> dict:
        """Undo this session's latest count change; return the clip it touched."""
        with self.lock:
            change = count_store.undo_count(self.workspace, self.session_id, self.reviewer)
        return {"event_id": change.event_id, "video_id": change.video_id,
                "clip": self.detail(change.video_id) if change.video_id in self.row_of else None}

    def undo(self) -> dict:
        """Undo this session's latest label change; return the clip it touched."""
        with self.lock:
            change = labels_store.undo_last(self.workspace, self.session_id, reviewer=self.reviewer)
        return {"event_id": change.event_id, "video_id": change.video_id,
                "clip": self.detail(change.video_id) if change.video_id in self.row_of else None}

    def retrain(self) -> RetrainResult:
        """Re-fit on the current labels and save the re-fit as a new model; when it scores better
        on the same basis it becomes current and the queue uses it at once."""
        with self.lock:
            result = retrain(self.workspace, self.model_id, self.config, features=self.features, probabilities=self.P)
            if result.current == result.refit_id:
                self.features = (load_model(self.workspace, result.refit_id), *self.features[1:])
                self.model_id, self.P = result.refit_id, result.P
                self.origin = model_probabilities(self.workspace, self.features)[1]
            self.last_retrain = result
        return result

    def use_model(self, model: str) -> dict:
        """Switch to ``model`` (any name ``--model`` takes) and make it current; return :meth:`info`."""
        with self.lock:
            loaded = load_model(self.workspace, model)
            if _columns(loaded) == _columns(self.features[0]) and loaded.classes == self.classes:
                features = (loaded, *self.features[1:])  # the same columns: reuse the matrices
            else:
                features = load_features(self.workspace, loaded.model_id)
                if list(features[1]) != self.video_ids or features[0].classes != self.classes:
                    raise NotFoundError(f"model {loaded.model_id} reads other clips or classes than this review "
                                        f"({loaded.recipe or 'no recipe'}); restart `jungle review --model "
                                        f"{loaded.model_id}` to review with it")
            P, origin = model_probabilities(self.workspace, features)
            who = f" by {self.reviewer}" if self.reviewer else ""
            choose_model(self.workspace, str(loaded.path), f"chosen on the review page{who}")
            self.features, self.model_id, self.P, self.origin = features, loaded.model_id, P, origin
        return self.info()

    def models(self) -> list[dict]:
        """The saved models the page offers: id, recipe, created, saved out-of-fold log loss, current."""
        current = current_model_id(self.workspace)
        return [{"model_id": m.model_id, "recipe": m.recipe, "created_at": m.created_at[:16].replace("T", " "),
                 "log_loss": None if m.manifest.oof_log_loss is None else round(m.manifest.oof_log_loss, 4),
                 "current": m.model_id == current, "shown": m.model_id == self.model_id}
                for m in list_models(self.workspace) if m.manifest is not None]

    def info(self) -> dict:
        """Classes, sites, model and counts for the page's controls."""
        with self.lock:
            _, labelled, _ = self._labels()
            return {"model_id": self.model_id, "recipe": self.features[0].recipe, "origin": self.origin,
                    "classes": self.classes, "sites": sorted({c.site for c in self.clips if c.site is not None}),
                    "clips": len(self.clips), "labelled": int(labelled.sum()), "reviewer": self.reviewer,
                    "models": self.models(),
                    "orders": ["uncertainty", "likely", "disagreement", "site_time", "random"]}
