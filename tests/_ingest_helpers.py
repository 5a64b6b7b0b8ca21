"""Helpers for the ingest, labels and folds tests: the CLI, ffprobe as the oracle, test corpora."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from jungle.cli import app
from jungle.store.db import connect

ZAMBA = "camera_trap/zamba_test_clips"


def jungle(*args: str):
    """Run the real CLI in-process; returns the click Result (output = stdout + stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def video_rows(workspace, where: str = "TRUE") -> dict[str, dict]:
    """``videos`` rows by path."""
    with connect(workspace, read_only=True) as con:
        result = con.execute(f"SELECT * FROM videos WHERE {where} ORDER BY path")
        columns = [d[0] for d in result.description]
        return {row[1]: dict(zip(columns, row)) for row in result.fetchall()}


def ffprobe(path: str | os.PathLike, count_frames: bool = False) -> dict:
    """``ffprobe -show_format -show_streams`` as JSON; ``count_frames`` also decodes every frame
    and reports ``nb_read_frames`` per stream."""
    command = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json"]
    if count_frames:
        command.insert(3, "-count_frames")
    result = subprocess.run(command + [str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def ffprobe_many(paths, count_frames: bool = False, workers: int = 2) -> dict[str, dict]:
    """:func:`ffprobe` of many files, ``workers`` processes at a time."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [str(p) for p in paths]
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(paths, pool.map(lambda p: ffprobe(p, count_frames), paths)))


def zamba_clips(media: Path) -> list[Path]:
    return sorted(p for p in (media / ZAMBA).rglob("*") if p.is_file() and p.suffix.lower() in (".avi", ".mp4", ".asf"))


def link_corpus(root: Path, clips: list[Path], per_site: int, n_files: int) -> list[Path]:
    """``n_files`` symlinks to ``clips`` (cycled), ``per_site`` per folder ``site_NN``."""
    links = []
    for i in range(n_files):
        clip = clips[i % len(clips)]
        folder = root / f"site_{i // per_site:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / f"v{i:04d}_{clip.name}"
        link.symlink_to(clip)
        links.append(link)
    return links


def make_clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: int = 6) -> Path:
    """Write a small real video with PyAV (MPEG-4 Part 2; container from the extension)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            image = np.zeros((size[1], size[0], 3), np.uint8)
            image[:, : (i + 1) * size[0] // frames] = (200, 80, 40)  # a coloured bar that grows
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
