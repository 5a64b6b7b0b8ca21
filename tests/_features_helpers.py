"""Helpers for the features tests: workspaces holding real videos, clips generated with PyAV."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from jungle.ingest.discover import video_id
from jungle.store.db import connect

__all__ = ["add_videos", "write_clip", "frame_number", "ZAMBA"]

ZAMBA = Path("camera_trap/zamba_test_clips/data/raw")


def add_videos(workspace, paths) -> list[str]:
    """Insert ``paths`` into the workspace's ``videos`` table as readable videos; return their ids.

    Uses ``jungle.ingest`` only for identity (:func:`jungle.ingest.discover.video_id`), so the
    featurize tests do not depend on the ingest stage's metadata probing.
    """
    ids = []
    with connect(workspace) as con:
        for path in paths:
            path = Path(path).resolve()
            vid = video_id(path)
            size = path.stat().st_size if path.exists() else 0
            mtime = datetime.fromtimestamp(path.stat().st_mtime) if path.exists() else None
            con.execute(
                "INSERT INTO videos (video_id, path, relpath, filename, site, bytes, mtime, captured_at, "
                "utc_offset_minutes, time_source, status, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'mtime', 'ok', ?)",
                [vid, str(path), path.name, path.name, path.parent.name, size, mtime, mtime, datetime.now()])
            ids.append(vid)
    return ids


def write_clip(path, frames: int = 12, size=(64, 48), fps: int = 8, codec: str = "libx264", gop: int = 4,
               seed: int = 0) -> Path:
    """Write a small real video with PyAV: a bright square moving over noise; frame i carries its number
    in two grey bands at the bottom (see :func:`frame_number`)."""
    import av

    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        stream.gop_size = gop
        background = rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8)
        for i in range(frames):
            image = background.copy()
            x = (i * 5) % max(1, size[0] - 12)
            image[10:22, x:x + 12] = 255
            half = size[0] // 2
            image[-6:, :half] = (i % 12) * 20   # the frame number, readable back by frame_number()
            image[-6:, half:] = (i // 12) * 20
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_number(image: np.ndarray) -> int:
    """The frame number painted by :func:`write_clip` into a decoded RGB frame (any size)."""
    height, width = image.shape[:2]
    band = image[-max(1, height // 16):]
    low = float(band[:, : width // 2 - 1].mean()) / 20
    high = float(band[:, width // 2 + 1:].mean()) / 20
    return int(round(low)) + 12 * int(round(high))
