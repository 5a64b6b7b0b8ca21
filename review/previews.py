"""What the page shows of a clip: the file itself where a browser plays it, else a strip of frames.

Browsers play H.264 in MP4/MOV; for anything else (AVI, ASF, MPEG-4 Part 2, ...) the page shows a
strip of evenly spaced frames, decoded on demand with the project's video loader
(:func:`jungle.features.video.decode.read_frames`) and cached as a JPEG under
``<workspace>/review/previews/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..features.video.decode import index_video, read_frames
from ..store.workspace import Workspace

__all__ = ["ClipMissing", "browser_playable", "missing_message", "preview_path", "strip_indices", "strip_frames",
           "frame_strip", "cached_strip"]

_PLAYABLE_CODECS = ("h264",)
_PLAYABLE_PIX_FMTS = (None, "yuv420p", "yuvj420p")


class ClipMissing(MediaError):
    """The clip's file is gone from the path recorded at ingest."""


def browser_playable(container: str | None, codec: str | None, pix_fmt: str | None) -> bool:
    """True for H.264 (8-bit 4:2:0) in an MP4/MOV container: what every browser's <video> plays."""
    return bool(container) and "mp4" in container and codec in _PLAYABLE_CODECS and pix_fmt in _PLAYABLE_PIX_FMTS


def missing_message(path: str) -> str:
    """What the page says when a clip's file has vanished."""
    return (f"The file {path} is missing: it was moved or deleted after ingest. Restore it, or re-run "
            "`jungle ingest` on its folder. Its labels and predictions are kept.")


def preview_path(workspace: Workspace, video_id: str, frames: int, height: int) -> Path:
    """The cached strip of ``video_id`` (the id comes from the workspace's ``videos`` table)."""
    return workspace.root / "review" / "previews" / f"{video_id}-{frames}x{height}.jpg"


def strip_indices(n_frames: int, frames: int = 8) -> list[int]:
    """The display indices of the frames a strip of a clip of ``n_frames`` frames shows, left to right."""
    count = max(n_frames, 1)
    return [int(i) for i in np.unique(np.linspace(0, count - 1, num=min(frames, count)).round().astype(int))]


def strip_frames(path: str | Path, frames: int = 8) -> list[int]:
    """:func:`strip_indices` of the clip at ``path``."""
    return strip_indices(index_video(path).n_frames, frames)


def frame_strip(path: str | Path, frames: int = 8, height: int = 120) -> bytes:
    """A JPEG of ``frames`` evenly spaced frames of ``path`` side by side, ``height`` pixels tall.

    Raises:
        ClipMissing: the file does not exist.
        VideoReadError: the file cannot be decoded.
    """
    import cv2

    if not Path(path).exists():
        raise ClipMissing(missing_message(str(path)))
    index = index_video(path)
    wanted = strip_indices(index.n_frames, frames)
    width = max(1, round(index.width * height / max(index.height, 1)))
    decoded = read_frames(path, wanted, size=(width, height), index=index, threads=1)
    strip = np.concatenate(list(decoded.images), axis=1)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise MediaError(f"could not encode the preview of {path} as JPEG")
    return jpeg.tobytes()


def cached_strip(workspace: Workspace, video_id: str, path: str, frames: int = 8, height: int = 120) -> Path:
    """The strip's cached file, decoded and written first when it is not there yet."""
    target = preview_path(workspace, video_id, frames, height)
    if not target.exists():
        data = frame_strip(path, frames, height)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return target
