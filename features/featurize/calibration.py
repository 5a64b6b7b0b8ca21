"""Real frames of the workspace's own videos for the inference backends: int8 calibration and checks.

The backends (:mod:`jungle.features.models.backends`, :mod:`jungle.features.models.detector_backends`)
are pure runtime: they take frames and return models. Which frames is the featurize side's
choice, made here: the videos come from the store (:func:`jungle.store.videos.read_videos`, the readable ones),
the frames from :mod:`jungle.features.video`.

The calibration videos are drawn (``seed``) from the readable videos on the first run with these
settings and recorded in the workspace (``backends/int8-calibration-<frames>-<seed>-<per_video>.json``),
so ingesting more videos later keeps the calibration, and the sets made with it, the same.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from ...hashing import text_sha256
from ...store.db import connect
from ...store.videos import read_videos
from ..models.backends import BackendError, Calibration
from ..video.decode import VideoReadError
from ..video.sampling import parse_sampling, sample_frames

__all__ = ["calibration_videos", "calibration_set", "calibration_frames"]


def calibration_videos(workspace, frames: int = 256, seed: int = 0, per_video: int = 8) -> list[tuple[str, str]]:
    """(video id, path) of the calibration videos: those recorded in the workspace by the first run
    with these settings, else ``frames // per_video`` drawn with ``seed`` from the readable videos
    (and recorded).

    Raises:
        BackendError: the workspace has no readable video.
    """
    with connect(workspace, read_only=True) as con:
        videos = read_videos(con, ("video_id", "path"), ok_only=True)
    record_path = workspace.root / "backends" / f"int8-calibration-{frames}-{seed}-{per_video}.json"
    paths = dict(videos)
    try:
        recorded = json.loads(record_path.read_text())["video_ids"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if recorded and all(v in paths for v in recorded):
        return [(v, paths[v]) for v in recorded]
    if not videos:
        raise BackendError(f"--precision int8 calibrates on the workspace's own videos, and {workspace.root} has "
                           "none readable. Run `jungle ingest DIR` first.")
    count = min(len(videos), max(1, -(-frames // per_video)))
    chosen = sorted(np.random.default_rng(seed).choice(len(videos), size=count, replace=False).tolist())
    record_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=record_path.parent, suffix=".tmp", delete=False) as handle:
        json.dump({"seed": seed, "frames": frames, "per_video": per_video,
                   "video_ids": [videos[i][0] for i in chosen]}, handle, indent=2)
    os.replace(handle.name, record_path)
    return [videos[i] for i in chosen]


def calibration_set(workspace, frames: int = 256, seed: int = 0, per_video: int = 8,
                    size: tuple[int, int] | None = None) -> tuple[Calibration, list[np.ndarray]]:
    """``per_video`` uniformly spaced frames of each calibration video (:func:`calibration_videos`),
    one uint8 array per video that decodes, at ``size`` (width, height) or their native size (None),
    at most ``frames`` in all; with the :class:`~jungle.features.models.backends.Calibration` record.

    Raises:
        BackendError: the workspace has no readable video, or none of the drawn ones decodes.
    """
    sampling = parse_sampling(f"uniform:{per_video}")
    decoded: list[tuple[str, np.ndarray]] = []
    left = frames
    for video_id, path in calibration_videos(workspace, frames, seed, per_video):
        try:
            sampled = sample_frames(path, sampling, size)
        except (VideoReadError, OSError):
            continue
        images = sampled.frames.images[: min(sampled.n_valid, left)]
        if len(images):
            decoded.append((video_id, images))
            left -= len(images)
        if left <= 0:
            break
    if not decoded:
        raise BackendError("none of the videos drawn for int8 calibration could be decoded; run `jungle "
                           "videos` to check the collection, or leave out --precision int8.")
    ids = "\n".join(sorted(video_id for video_id, _ in decoded))
    record = Calibration(frames=sum(len(images) for _, images in decoded), seed=seed,
                         video_ids_sha256=text_sha256(ids), sampling=sampling.spec())
    return record, [images for _, images in decoded]


def calibration_frames(workspace, input_size: int, frames: int = 256, seed: int = 0,
                       per_video: int = 8) -> tuple[Calibration, np.ndarray]:
    """The calibration frames of an encoder: :func:`calibration_set` at ``input_size`` squared, stacked."""
    record, per_video_frames = calibration_set(workspace, frames, seed, per_video, (input_size, input_size))
    return record, np.concatenate(per_video_frames)
