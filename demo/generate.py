"""Write a demo collection to disk: H.264 clips per camera folder, the label files, a manifest.

Layout of a collection directory::

    demo.json                how it was made (configuration, cameras, counts, code version)
    train_labels.csv         filename + the 24 classes (0/1), as in the Pri-matrix competition
    submission_format.csv    the test clips' file names + the 24 classes (filled with class priors)
    test_labels.csv          the test clips' answers (the competition kept these secret)
    clips.csv                the generator's ground truth per clip (camera, night, animals seen,
                             frames with an animal on screen, what set off a blank clip, bytes):
                             for checking and teaching, never a feature
    train/<camera>/<name>.mp4   the labelled clips, one folder per camera (cam01, cam02, ...)
    test/<camera>/<name>.mp4    the test clips, same cameras

Ingest ``train/`` and ``test/`` separately: ``site`` in the ``videos`` table (the clip's folder
relative to the ingested directory) is then the camera, the same name in both splits, and folds
grouped by site work unchanged. (Ingesting the whole directory gives sites ``train/cam01``, ...)
Clips are written to a temporary name and renamed when complete, so an interrupted run resumes:
clips already there are kept, the rest are made.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..classes import PRIMATRIX_CLASSES
from ..errors import InputError, JungleError
from ..progress import progress_bar
from ..runtime import WorkerPool
from ..store.registry import code_version
from .config import DemoConfig
from .plan import ClipPlan, CollectionPlan, plan_collection
from .scenes import CameraScene, CameraSpec, ClipScript, build_scene, render_frames, script_clip

__all__ = ["DemoManifest", "DemoError", "make_demo", "read_demo", "write_clip", "clip_script", "MANIFEST_NAME",
           "X264_OPTIONS"]

MANIFEST_NAME = "demo.json"
_FORMAT = "jungle-demo"
#: What the generator writes, in ``demo.json``: 2 = clips carry their recording time (``creation_time``,
#: and the information bar shows the same time). A collection of another version is made again.
_VERSION = 2
_TABLES = ("train_labels.csv", "test_labels.csv", "submission_format.csv", "clips.csv")
_OUR_FILES = (*_TABLES, MANIFEST_NAME)
_SPLITS = ("train", "test")
_CLIP_COLUMNS = ("filename", "split", "site", "width", "height", "fps", "frames", "duration", "night",
                 "species", "animals", "visible_frames", "trigger", "bytes")


class DemoError(JungleError):
    """The demo collection cannot be made or read; the message says why and what to do."""


@dataclass(frozen=True)
class DemoManifest:
    """A demo collection on disk.

    Attributes:
        directory: The collection directory.
        config: How it was made.
        cameras: Its camera sites (folder name, frame size).
        train_clips: Labelled clips, sorted by path.
        test_clips: Unlabelled clips, sorted by path.
        train_labels: ``train_labels.csv``.
        test_labels: ``test_labels.csv`` (the answers for the test clips).
        submission_format: ``submission_format.csv``.
        clips_table: ``clips.csv`` (the generator's ground truth per clip).
        train_counts: Training clips per class (a clip with two species counts for both).
        test_counts: Test clips per class.
        total_bytes: Bytes of all clips.
        written: Clips written by this call (0 when the collection was already complete).
        seconds: Seconds this call took.
    """

    directory: Path
    config: DemoConfig
    cameras: tuple[CameraSpec, ...]
    train_clips: tuple[Path, ...]
    test_clips: tuple[Path, ...]
    train_labels: Path
    test_labels: Path
    submission_format: Path
    clips_table: Path
    train_counts: dict[str, int]
    test_counts: dict[str, int]
    total_bytes: int
    written: int
    seconds: float

    @property
    def train_dir(self) -> Path:
        """The folder of the labelled clips (one subfolder per camera): ingest this one."""
        return self.directory / "train"

    @property
    def test_dir(self) -> Path:
        """The folder of the test clips (one subfolder per camera)."""
        return self.directory / "test"

    def rows(self) -> tuple[list[str], list[list]]:
        """Columns and rows of clips per class (train, test), for rendering."""
        return ["class", "train", "test"], [[c, self.train_counts[c], self.test_counts[c]] for c in PRIMATRIX_CLASSES]


# --------------------------------------------------------------------------- one clip
#: x264's settings for every demo clip. ``threads=1``: no frame, slice or lookahead threads, so
#: nothing depends on thread timing. ``mbtree=0``: with MB-tree rate control on, x264 (core 165,
#: as bundled with PyAV 18) reads uninitialised heap memory, so the same frames gave different
#: files depending on what the process had freed before (one clip: 3,595, 3,609 or 3,615 bytes
#: with the freed heap filled with 0, 255 or 128; 30 of 40 clips at scale 0.15, 28 of 40 at
#: 0.25). That was the ``workers=1`` vs ``workers=2`` difference of issue 13. Without MB-tree the
#: bytes depend on the frames only (0 of 40); files are 2-21% larger.
X264_OPTIONS = {"preset": "fast", "threads": "1", "x264-params": "mbtree=0"}


def write_clip(path: Path, frames: Iterable[np.ndarray], width: int, height: int, fps: int, crf: int,
               x264: Mapping[str, str] | None = None, recorded: datetime | None = None) -> int:
    """Encode ``frames`` (RGB (H, W, 3) or grayscale (H, W) uint8) as H.264 MP4 with PyAV.

    ``recorded`` (naive UTC) becomes the MP4's ``creation_time``, where a camera puts the time it
    recorded the clip (ingest reads it back).

    x264 runs with ``x264`` (default :data:`X264_OPTIONS`: single-threaded, no MB-tree), so the
    same frames give the same bytes in every process. Grayscale frames are written with neutral chroma, so they
    decode with R = G = B. The file appears at ``path`` only once complete.

    Returns:
        The file's size in bytes.
    """
    import av

    path = Path(path)
    part = path.with_name(path.name + ".part")
    with av.open(str(part), "w", format="mp4") as container:
        if recorded is not None:
            container.metadata["creation_time"] = recorded.strftime("%Y-%m-%dT%H:%M:%SZ")
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = 10 * fps
        stream.options = {"crf": str(crf), **(X264_OPTIONS if x264 is None else x264)}
        for image in frames:
            if image.ndim == 2:  # limited-range luma (as swscale maps gray), neutral chroma
                luma = (16 + (image.astype(np.uint16) * 219 + 127) // 255).astype(np.uint8)
                chroma = np.full((height // 2, width), 128, np.uint8)
                frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
            else:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    os.replace(part, path)
    return path.stat().st_size


def clip_script(scene: CameraScene, clip: ClipPlan, fps: int) -> ClipScript:
    """What happens in ``clip`` (filmed by ``scene``, its camera), from the clip's seed only."""
    return script_clip(scene, clip.species, clip.night, clip.frames, fps, np.random.default_rng(clip.seed),
                       started=clip.recorded)


def _make_clips(directory: str, clips: list[ClipPlan], crf: int, fps: int,
                x264: Mapping[str, str] | None = None) -> list[dict]:
    """Make the clips of one camera that are not on disk yet; describe them all (worker task)."""
    scene = build_scene(clips[0].camera)
    out = []
    for clip in clips:
        script = clip_script(scene, clip, fps)
        path = Path(directory) / clip.relpath
        written = not path.exists()
        if written:
            path.parent.mkdir(parents=True, exist_ok=True)
            size = write_clip(path, render_frames(scene, script), clip.camera.width, clip.camera.height, fps, crf,
                              x264, recorded=clip.recorded)
        else:
            size = path.stat().st_size
        os.utime(path, (clip.recorded_at, clip.recorded_at))
        out.append({
            "written": written, "filename": clip.filename, "split": clip.split,
            "site": clip.camera.name, "width": clip.camera.width, "height": clip.camera.height, "fps": fps,
            "frames": clip.frames, "duration": round(clip.frames / fps, 3), "night": int(clip.night),
            "species": ";".join(clip.species) or "blank", "animals": len(script.actors),
            "visible_frames": script.visible_frames() if clip.species else 0, "trigger": script.trigger,
            "bytes": size,
        })
    return out


def _tasks(plan: CollectionPlan, chunk: int = 16) -> list[list[ClipPlan]]:
    """Clips grouped by camera (each task draws its camera once), in chunks for the workers."""
    tasks = []
    for camera in plan.cameras:
        clips = [c for c in plan.clips if c.camera == camera]
        tasks.extend(clips[i:i + chunk] for i in range(0, len(clips), chunk))
    return tasks


# --------------------------------------------------------------------------- files
def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[Iterable]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows(rows)


def _label_rows(clips: Iterable[ClipPlan]) -> list[list]:
    ordered = sorted(clips, key=lambda c: c.filename)
    return [[c.filename] + [int(k in c.labels) for k in PRIMATRIX_CLASSES] for c in ordered]


def _counts(clips: Iterable[ClipPlan]) -> dict[str, int]:
    counts = dict.fromkeys(PRIMATRIX_CLASSES, 0)
    for clip in clips:
        for name in clip.labels:
            counts[name] += 1
    return counts


def _write_tables(directory: Path, plan: CollectionPlan, described: list[dict]) -> None:
    train, test = plan.split("train"), plan.split("test")
    _write_csv(directory / "train_labels.csv", ("filename",) + PRIMATRIX_CLASSES, _label_rows(train))
    _write_csv(directory / "test_labels.csv", ("filename",) + PRIMATRIX_CLASSES, _label_rows(test))
    priors = [round(_counts(train)[k] / max(1, len(train)), 6) for k in PRIMATRIX_CLASSES]
    _write_csv(directory / "submission_format.csv", ("filename",) + PRIMATRIX_CLASSES,
               [[c.filename] + priors for c in sorted(test, key=lambda c: c.filename)])
    rows = sorted(described, key=lambda d: (d["split"] != "train", d["filename"]))
    _write_csv(directory / "clips.csv", _CLIP_COLUMNS, [[d[k] for k in _CLIP_COLUMNS] for d in rows])


def _manifest(directory: Path, plan: CollectionPlan, total_bytes: int, written: int, seconds: float) -> DemoManifest:
    train, test = plan.split("train"), plan.split("test")
    return DemoManifest(
        directory=directory, config=plan.config, cameras=plan.cameras,
        train_clips=tuple(sorted(directory / c.relpath for c in train)),
        test_clips=tuple(sorted(directory / c.relpath for c in test)),
        train_labels=directory / "train_labels.csv", test_labels=directory / "test_labels.csv",
        submission_format=directory / "submission_format.csv", clips_table=directory / "clips.csv",
        train_counts=_counts(train), test_counts=_counts(test), total_bytes=total_bytes, written=written,
        seconds=seconds,
    )


def _record(directory: Path, plan: CollectionPlan, status: str, extra: dict | None = None) -> None:
    data = {"format": _FORMAT, "version": _VERSION, "status": status, "key": plan.config.key(),
            "config": plan.config.model_dump(mode="json"), "code_version": code_version(),
            "cameras": [vars(c) for c in plan.cameras], **(extra or {})}
    tmp = directory / (MANIFEST_NAME + ".part")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / MANIFEST_NAME)


def _read_record(directory: Path) -> dict | None:
    path = directory / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"{path} cannot be read ({exc}); delete the directory or pass --overwrite.") from exc
    if data.get("format") != _FORMAT:
        raise DemoError(f"{path} is not a jungle demo manifest; choose another directory.")
    return data


def _prepare(directory: Path, config: DemoConfig, overwrite: bool) -> None:
    """Refuse to mix collections or touch a directory the generator did not make."""
    record = _read_record(directory)
    if record is None:
        if directory.exists() and any(directory.iterdir()):
            raise DemoError(f"{directory} is not empty and holds no {MANIFEST_NAME}; choose a new or empty "
                            "directory for the demo collection.")
        return
    try:  # recognised by the stored configuration itself, whichever formula made its key
        made = DemoConfig.model_validate(record.get("config"))
    except InputError:
        made = None  # written by a jungle whose demo settings differ from this one's
    if made == config and record.get("version") == _VERSION:
        return
    if not overwrite and made == config:
        raise DemoError(f"{directory} holds a demo collection made by an older jungle (its clips carry no recording "
                        f"time); make it again with `jungle demo make {directory} --overwrite` (and the same "
                        "settings), or choose another directory.")
    if not overwrite:
        diff = "settings this version does not know" if made is None else ", ".join(
            f"{k}={getattr(made, k)!r}" for k in DemoConfig.model_fields
            if k != "frequencies" and getattr(made, k) != getattr(config, k)) or "class frequencies"
        raise DemoError(f"{directory} holds a demo collection made with another configuration ({diff}); "
                        "choose another directory, or pass --overwrite to replace it.")
    for split in _SPLITS:  # only what the generator made
        for camera in record.get("cameras", []):
            shutil.rmtree(directory / split / camera["name"], ignore_errors=True)
        if (directory / split).is_dir() and not any((directory / split).iterdir()):
            (directory / split).rmdir()
    for name in _OUR_FILES:
        (directory / name).unlink(missing_ok=True)


def make_demo(directory: str | os.PathLike, config: DemoConfig | None = None, *, workers: int = 1,
              overwrite: bool = False, progress: bool = False,
              x264: Mapping[str, str] | None = None) -> DemoManifest:
    """Make (or complete) the demo collection described by ``config`` in ``directory``.

    Idempotent: a complete collection with the same configuration is left as it is; an
    interrupted one is completed. A collection with another configuration is refused unless
    ``overwrite``; a non-empty directory that holds no demo collection is always refused.

    Args:
        directory: Where the collection goes (created if missing).
        config: What to make (default: :class:`DemoConfig` defaults).
        workers: Processes drawing and encoding clips (the result does not depend on it).
        overwrite: Replace a collection made with another configuration.
        progress: Show a progress bar on stderr (when it is a terminal).
        x264: x264 options instead of :data:`X264_OPTIONS` (for benchmarks of what makes the bytes
            repeat; the default does).

    Returns:
        The collection's manifest.

    Raises:
        DemoError: The directory holds something else (the message says what to do).
    """
    started = time.perf_counter()
    config = config or DemoConfig()
    directory = Path(directory).resolve()
    _prepare(directory, config, overwrite)
    plan = plan_collection(config)
    record = _read_record(directory)
    if (record and record.get("status") == "complete" and all((directory / t).exists() for t in _TABLES)
            and all((directory / c.relpath).exists() for c in plan.clips)):
        return _manifest(directory, plan, int(record.get("total_bytes", 0)), 0, time.perf_counter() - started)
    directory.mkdir(parents=True, exist_ok=True)
    _record(directory, plan, "incomplete")
    tasks = _tasks(plan)
    described: list[dict] = []
    with progress_bar(len(plan.clips), "demo clips", unit="clip", show=progress) as bar:
        if workers <= 1:
            for task in tasks:
                described.extend(_make_clips(str(directory), task, config.crf, config.fps, x264))
                bar.update(len(task))
        else:
            with WorkerPool(workers) as pool:
                futures = [pool.submit(_make_clips, str(directory), task, config.crf, config.fps, x264)
                           for task in tasks]
                for future in as_completed(futures):
                    result = future.result()
                    described.extend(result)
                    bar.update(len(result))
    _write_tables(directory, plan, described)
    total = sum(d["bytes"] for d in described)
    written = sum(d["written"] for d in described)
    manifest = _manifest(directory, plan, total, written, time.perf_counter() - started)
    _record(directory, plan, "complete", {"clips": len(plan.clips), "total_bytes": total,
                                          "train_counts": manifest.train_counts, "test_counts": manifest.test_counts})
    return manifest


def read_demo(directory: str | os.PathLike) -> DemoManifest:
    """The manifest of the complete demo collection in ``directory``.

    Raises:
        DemoError: There is none, or it is incomplete (run ``jungle demo make DIR`` to finish it).
    """
    directory = Path(directory).resolve()
    record = _read_record(directory)
    if record is None or record.get("status") != "complete":
        state = "no demo collection" if record is None else "an incomplete demo collection"
        raise DemoError(f"{directory} holds {state}; run `jungle demo make {directory}` to make it.")
    plan = plan_collection(DemoConfig.model_validate(record["config"]))
    return _manifest(directory, plan, int(record.get("total_bytes", 0)), 0, 0.0)
