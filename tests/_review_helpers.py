"""A review workspace: the shared stacked workspace, copied, with some clips pointing at real media.

The stacked workspace (the session fixture ``stacked``) records videos at ``/data/cam/...``,
paths that do not exist: to the review page those clips have vanished. Here the first unlabelled
clips are pointed at real files of ``tests/media`` (through symbolic links in the test's
temporary folder, one per clip since ``videos.path`` is unique; never copied), alternately
an H.264 MP4 the browser plays and an AVI it cannot (shown as a strip of frames), with the
metadata ingest's probe reads from them. The last unlabelled clip stays missing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from _stack_helpers import StackWorkspace
from jungle.ingest.probe import probe_video
from jungle.store.db import connect
from jungle.store.workspace import Workspace

PLAYABLE = "camera_trap/zamba_test_clips/data/raw/benjamin/04250002.MP4"  # H.264 (yuvj420p) in MP4
NOT_PLAYABLE = ("camera_trap/zamba_test_clips/data/raw/lope/Theo_codification_gorilla videos/2015/T37.0314.1632/"
                "EK000059.AVI")


@dataclass
class ReviewWorkspace:
    workspace: Workspace
    stacked: StackWorkspace
    model_id: str
    playable: list[str]       # video ids now pointing at the MP4
    frames: list[str]         # video ids now pointing at the AVI
    missing: str              # an unlabelled clip whose file does not exist


def review_workspace(stacked, tmp_path, media, real_clips: int = 28) -> ReviewWorkspace:
    """A copy of the stacked workspace with ``real_clips`` unlabelled clips on real media."""
    sw, result = stacked
    root = tmp_path / "ws"
    shutil.copytree(sw.workspace.root, root)
    ws = Workspace.resolve(root)
    playable, frames = [], []
    links = tmp_path / "media"
    links.mkdir()
    with connect(ws) as con:
        for k, video_id in enumerate(sw.unlabelled[:real_clips]):
            source = media / (PLAYABLE if k % 2 == 0 else NOT_PLAYABLE)
            path = links / f"{video_id}{source.suffix}"
            path.symlink_to(source)
            probe = probe_video(path)
            con.execute("UPDATE videos SET path = ?, container = ?, video_codec = ?, pix_fmt = ?, width = ?, "
                        "height = ?, fps = ?, duration = ? WHERE video_id = ?",
                        [str(path), probe.container, probe.video_codec, probe.pix_fmt, probe.width, probe.height,
                         probe.fps, probe.duration, video_id])
            (playable if k % 2 == 0 else frames).append(video_id)
    return ReviewWorkspace(ws, sw, result.model_id, playable, frames, sw.unlabelled[-1])
