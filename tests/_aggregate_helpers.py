"""Helpers for the aggregate tests: a real workspace with a labelled, featurized-looking collection.

:func:`make_labelled_workspace` inserts real rows into ``videos``, ``classes``, ``labels``,
``fold_schemes`` and ``folds`` of a real DuckDB workspace, and writes a real frame-level feature
set (Zarr ``embedding`` (+ ``stages``), ``valid``, ``timestamps``, ``frame_index``; rows in
``feature_rows``) the way ``jungle featurize`` lays it out. Embeddings carry signal (a mean per
class plus noise) and every video has some padded, invalid frame slots filled with garbage
(NaN, +-60000) that no statistic may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from jungle.store import arrays, registry
from jungle.store.db import connect

__all__ = ["LabelledSet", "make_labelled_workspace", "CLASSES", "fill_invalid", "flip_label"]

CLASSES = ("blank", "chimpanzee", "other (primate)", "duiker")
GARBAGE = (np.nan, 60000.0, -60000.0, np.inf)


@dataclass
class LabelledSet:
    """What :func:`make_labelled_workspace` wrote (arrays exactly as stored, garbage included)."""

    workspace: object
    fs: registry.FeatureSet
    video_ids: list            # in Zarr row order
    done: np.ndarray           # (V,) bool: row status 'done' with valid frames
    labels: np.ndarray         # (V, C) 0/1 (zeros for unlabelled videos)
    folds: np.ndarray          # (V,) fold 0..k-1, -1 for unlabelled videos
    embedding: np.ndarray      # (V, F, D) float16
    stages: np.ndarray | None  # (V, F, S) float16
    valid: np.ndarray          # (V, F) bool
    classes: tuple = CLASSES

    @property
    def labelled(self) -> np.ndarray:
        return self.folds >= 0


def _garbage(shape, rng) -> np.ndarray:
    return rng.choice(np.array(GARBAGE, dtype=np.float32), size=shape).astype(np.float16)


def make_labelled_workspace(workspace, n_videos: int = 40, n_frames: int = 8, dims: int = 16, k: int = 4,
                            n_unlabelled: int = 8, stage_dims: tuple[int, ...] | None = (4, 6), block: int = 8,
                            name: str = "lite0", seed: int = 0, signal: float = 2.0) -> LabelledSet:
    """Fill ``workspace`` with ``n_videos`` videos (the last ``n_unlabelled`` unlabelled) and a frame set.

    Video ``n_videos - 2`` failed to decode (row status 'error'); video ``n_videos - 1`` decoded no
    frame (status 'done', n_valid 0, all slots invalid). Every other video has 2..F valid frames.
    """
    rng = np.random.default_rng(seed)
    n_classes = len(CLASSES)
    video_ids = [f"{i:04d}{seed:04d}aaaabbbb" for i in range(n_videos)]
    labelled = np.arange(n_videos) < n_videos - n_unlabelled
    primary = rng.integers(0, n_classes, n_videos)
    labels = np.zeros((n_videos, n_classes), dtype=np.float32)
    labels[np.arange(n_videos), primary] = 1
    labels[labelled & (rng.random(n_videos) < 0.15), 0] = 1           # a few videos carry two labels
    labels[~labelled] = 0
    folds = np.where(labelled, np.arange(n_videos) % k, -1)
    n_valid = rng.integers(2, n_frames + 1, n_videos)
    n_valid[: n_videos // 4] = n_frames
    n_valid[n_videos - 1] = 0
    valid = np.arange(n_frames)[None, :] < n_valid[:, None]

    def frames(width: int) -> np.ndarray:
        centres = rng.normal(0, signal, (n_classes, width)).astype(np.float32)
        hidden_labels = np.zeros((n_videos, n_classes), np.float32)
        hidden_labels[np.arange(n_videos), primary] = 1                  # unlabelled videos have a class too
        hidden_labels = np.maximum(hidden_labels, labels)
        values = hidden_labels @ centres
        values = values[:, None, :] + rng.normal(0, 1, (n_videos, n_frames, width)).astype(np.float32)
        values = values.astype(np.float16)
        values[~valid] = _garbage((int((~valid).sum()), width), rng)
        return values

    embedding = frames(dims)
    stages = frames(sum(stage_dims)) if stage_dims else None
    timestamps = np.where(valid, np.arange(n_frames, dtype=np.float32)[None, :] * 0.5, np.nan).astype(np.float32)
    frame_index = np.where(valid, np.arange(n_frames)[None, :] * 12, -1).astype(np.int32)
    done = np.ones(n_videos, dtype=bool)
    done[[n_videos - 2, n_videos - 1]] = False

    start = datetime(2016, 3, 1, 6, 0, 0)
    with connect(workspace) as con:
        con.executemany("INSERT INTO classes VALUES (?, ?)", [[i, c] for i, c in enumerate(CLASSES)])
        for i, video_id in enumerate(video_ids):
            site = f"site{i % 3}"
            width, height = [(320, 180), (360, 240), (480, 270)][i % 3]
            duration = 15.0 if i % 5 else 7.5
            size = int(200_000 + 50_000 * primary[i] + rng.integers(0, 20_000))
            con.execute(
                "INSERT INTO videos (video_id, path, relpath, filename, site, bytes, captured_at, time_source, "
                "status, container, video_codec, width, height, fps, frames, duration, bit_rate, bytes_per_second, "
                "has_audio, brightness, is_night, colourfulness, motion_energy, stats_frames, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'container', 'ok', 'mp4', 'h264', "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 8, ?)",
                [video_id, f"/data/{site}/clip{i:03d}.mp4", f"{site}/clip{i:03d}.mp4", f"clip{i:03d}.mp4", site,
                 size, start + timedelta(minutes=int(7 * i + rng.integers(0, 5))), width, height, 24.0,
                 int(24 * duration), duration, int(size * 8 / duration), size / duration, bool(i % 2),
                 float(rng.uniform(20, 200)), bool(i % 4 == 0), float(rng.uniform(0, 50)),
                 float(rng.uniform(0, 10)) if i % 7 else None, datetime(2026, 1, 1)])
        con.executemany("INSERT INTO labels VALUES (?, ?, ?, 'test')",
                        [[video_ids[i], c, int(labels[i, j])] for i in np.flatnonzero(labelled)
                         for j, c in enumerate(CLASSES)])
        con.execute("INSERT INTO fold_schemes VALUES ('default', ?, 'site', 0, ?)", [k, datetime(2026, 1, 1)])
        con.executemany("INSERT INTO folds VALUES ('default', ?, ?)",
                        [[video_ids[i], int(folds[i])] for i in np.flatnonzero(labelled)])
        fs, _ = registry.register(con, name, "frames", {"helper": "make_labelled_workspace", "seed": seed}, [],
                                  encoder="helper-net", sampling=f"uniform:{n_frames}", dims=dims,
                                  stage_dims=list(stage_dims) if stage_dims else None)
        specs = {"embedding": arrays.ArraySpec((dims,), "float16"), "valid": arrays.ArraySpec((), "bool", False),
                 "timestamps": arrays.ArraySpec((), "float32", float("nan")),
                 "frame_index": arrays.ArraySpec((), "int32", -1)}
        data = {"embedding": embedding, "valid": valid, "timestamps": timestamps, "frame_index": frame_index}
        if stages is not None:
            specs["stages"] = arrays.ArraySpec((sum(stage_dims),), "float16")
            data["stages"] = stages
        group = arrays.create_group(workspace, fs, n_videos, n_frames, specs, block=block)
        for lo, hi in arrays.block_ranges(n_videos, block):
            arrays.write_rows(group, lo, {key: value[lo:hi] for key, value in data.items()})
        con.executemany(
            "INSERT INTO feature_rows (name, version, video_id, row, status, error, n_valid) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[fs.name, fs.version, v, i, "error" if i == n_videos - 2 else "done",
              "decode failed" if i == n_videos - 2 else None, int(n_valid[i])] for i, v in enumerate(video_ids)])
        fs = registry.mark_complete(con, fs, n_videos)
    return LabelledSet(workspace, fs, video_ids, done, labels, folds, embedding, stages, valid)


def fill_invalid(data: LabelledSet, value: float | None, array: str = "embedding") -> None:
    """Overwrite every invalid slot of ``array`` in the stored Zarr group with ``value``.

    ``value=None`` puts back the original garbage (``data.embedding`` / ``data.stages``).
    """
    group = arrays.open_group(data.workspace, data.fs, mode="a")
    stored = getattr(data, array).copy()
    if value is not None:
        stored[~data.valid] = value
    group[array][:] = stored


def flip_label(data: LabelledSet, index: int) -> None:
    """Give labelled video ``index`` a different single class, in the database."""
    current = int(np.argmax(data.labels[index]))
    new = (current + 1) % len(data.classes)
    with connect(data.workspace) as con:
        con.execute("UPDATE labels SET value = CASE WHEN class = ? THEN 1 ELSE 0 END WHERE video_id = ?",
                    [data.classes[new], data.video_ids[index]])
    data.labels[index] = 0
    data.labels[index, new] = 1
