"""Reading frames from video files: the project's one video-loading module.

Frames are addressed by their **display index**: 0 for the first frame the decoder outputs, 1 for
the next, and so on. That is a count of real, decodable frames, so a container header that lies
about its length (``opencv_tree_foliage_hand.avi`` claims 444 frames, 68 decode) does not matter:
indices past the real end are simply absent from the result.

How frames are found (PyAV, which bundles FFmpeg):

1. :func:`index_video` demuxes the stream without decoding (a few milliseconds for a 1 MB clip)
   and lists every frame's presentation timestamp and the keyframes. Its length is the real frame
   count.
2. :func:`plan_decode` walks the requested indices and, for each one, either keeps decoding
   forward or seeks to the keyframe before it, whichever decodes fewer frames. On long-GOP H.264
   (one keyframe per 10 s) this is plain decode-and-skip; on short GOPs and intra-only codecs
   (MJPEG) it seeks straight to each frame.
3. Decoded frames are recognised by their timestamps, and the decoder is told to drop the
   non-reference frames nobody asked for (nothing depends on them; a third of H.264's frames).
   Where timestamps cannot be trusted (AVI carries decode-order timestamps, which are scrambled
   for codecs that reorder frames, e.g. H.264 or MPEG-4 ASP in AVI) every frame is decoded and
   counted; for codecs that never reorder (MJPEG, MS-MPEG4, ...) AVI timestamps are used.
4. With several cores and frames after several keyframes, :func:`split_plan` cuts the request
   into runs that start at different keyframes, and the runs are decoded side by side.

Only requested frames are converted to RGB (and resized on decode, by FFmpeg's swscale), and
only those are kept, so memory is bounded by the request, not by the clip's length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Sequence

import numpy as np
from ...errors import MediaError
from ...runtime import available_cores

__all__ = [
    "VideoReadError",
    "Frames",
    "VideoIndex",
    "DecodePlan",
    "index_video",
    "plan_decode",
    "split_plan",
    "read_frames",
    "iter_frames",
    "SEEK_COST_FRAMES",
]

_METHODS = ("auto", "seek", "sequential", "count")

#: What one seek costs, in frames decoded: used to choose seeking vs decoding forward.
SEEK_COST_FRAMES = 8

#: Decoders run side by side (one per run of keyframe segments, :func:`split_plan`) only when the
#: longest run decodes at most this share of what one decoder would, ...
PARALLEL_GAIN = 0.8
#: ... and when there are at least this many frames to decode (below, opening more decoders costs more).
PARALLEL_MIN_FRAMES = 48

#: Containers whose packet timestamps are presentation timestamps (safe to seek and match by pts).
_PTS_CONTAINERS = ("mov", "mp4", "matroska", "webm", "asf", "flv", "mpegts", "ogg", "nut")


class VideoReadError(MediaError):
    """A video file could not be read. The message names the file, the reason and what to do."""

    def __init__(self, path: str | os.PathLike, reason: str, advice: str | None = None):
        self.path = str(path)
        self.reason = reason
        advice = advice or ("Check that the file is a complete video (e.g. `ffprobe FILE`); "
                            "re-copy or re-export it, or remove it from the collection.")
        super().__init__(f"cannot read video {self.path}: {reason}. {advice}")


@dataclass
class Frames:
    """Decoded frames of one video.

    Attributes:
        images: (n, H, W, 3) uint8 RGB.
        indices: (n,) int64 display indices of the frames (sorted, unique).
        timestamps: (n,) float64 seconds from the start of the stream.
        n_frames: frames in the video as far as known (the demuxed count, or the decoded count when
            decoding reached the end first); None when unknown.
        method: how they were found: "seek", "sequential" (forward, frames recognised by
            timestamp, unrequested non-reference frames skipped) or "count" (every frame decoded and counted).
        warning: set when decoding stopped early on damaged data (the frames returned are good).
        runs: decoders that ran side by side, each from its own keyframe (:func:`split_plan`).
        also: the same frames at the further sizes :func:`read_frames` was asked for (``also``).
    """

    images: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray
    n_frames: int | None = None
    method: str = "sequential"
    warning: str | None = None
    runs: int = 1
    also: tuple[np.ndarray, ...] = ()

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class VideoIndex:
    """What demuxing (no decoding) tells about a video stream.

    Attributes:
        path: the file.
        container: FFmpeg's format name (e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi").
        codec: video codec name.
        width, height: coded frame size.
        fps: average frame rate (frames per second; 0.0 when unknown).
        frames_claimed: the frame count the header states (0 when absent).
        pts: (n,) int64 presentation timestamps of the frames in display order (n = real count).
        keyframes: (k,) int64 display indices of keyframes.
        time_base: seconds per pts tick.
        start_pts: pts of the first frame.
        seekable: True when frames can be located by timestamp after a seek.
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frames_claimed: int
    pts: np.ndarray
    keyframes: np.ndarray
    time_base: Fraction
    start_pts: int
    seekable: bool

    @property
    def n_frames(self) -> int:
        return len(self.pts)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame, plus one frame."""
        if not self.n_frames:
            return 0.0
        span = float((int(self.pts[-1]) - self.start_pts) * self.time_base)
        return span + (1.0 / self.fps if self.fps else 0.0)

    def timestamps(self, indices: np.ndarray) -> np.ndarray:
        """Seconds of the given display indices (from pts where they are trusted, else index/fps)."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.seekable:
            return (self.pts[indices] - self.start_pts).astype(np.float64) * float(self.time_base)
        return indices / self.fps if self.fps else indices.astype(np.float64)


@dataclass(frozen=True)
class DecodePlan:
    """How :func:`read_frames` will find the requested frames.

    Attributes:
        steps: one (seek_to_index or None, wanted indices) per run of decoding; None = keep going.
        cost: frames the plan decodes.
        sequential_cost: frames plain decode-and-skip would decode.
    """

    steps: tuple[tuple[int | None, tuple[int, ...]], ...]
    cost: int
    sequential_cost: int

    @property
    def method(self) -> str:
        return "seek" if any(seek is not None for seek, _ in self.steps) else "sequential"


def _open(path: str | os.PathLike):
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoReadError(path, "the file does not exist", "Check the path, or re-run `jungle ingest`.")
    if os.path.isdir(path):
        raise VideoReadError(path, "it is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "the file is empty (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoReadError(path, f"FFmpeg cannot open it ({exc.strerror or exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "it has no video stream", "Remove it from the collection.")
    return container


def _pts_trusted(container, stream) -> bool:
    """Whether packet timestamps are presentation timestamps. AVI's are decode-order ones, which
    are presentation order too when the codec cannot reorder frames (intra-only codecs such as
    MJPEG, and MS-MPEG4, Cinepak, VP8...: FFmpeg's codec descriptor lacks the REORDER property)."""
    codec = stream.codec_context.codec
    in_order = bool(codec.intra_only) or not bool(getattr(codec, "reorder", True))
    return in_order or any(name in container.format.name.split(",") for name in _PTS_CONTAINERS)


def index_video(path: str | os.PathLike) -> VideoIndex:
    """Demux the video stream of ``path`` (no decoding) and index its frames.

    Raises:
        VideoReadError: the file is missing, empty, not a media file, or has no video frames.
    """
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        pts, keys, order_ok = [], [], True
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.pts is None:
                    order_ok = False
                pts.append(packet.pts if packet.pts is not None else len(pts))
                keys.append(bool(packet.is_keyframe))
        except av.error.FFmpegError:
            pass  # damaged tail: the packets read so far are the index
        if not pts:
            raise VideoReadError(path, "it contains no video frames")
        pts_arr = np.asarray(pts, dtype=np.int64)
        order = np.argsort(pts_arr, kind="stable")
        unique = len(np.unique(pts_arr)) == len(pts_arr)
        fmt = container.format.name
        seekable = bool(order_ok and unique and _pts_trusted(container, stream))
        rate = stream.average_rate or stream.guessed_rate
        return VideoIndex(
            path=os.fspath(path),
            container=fmt,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            fps=float(rate) if rate else 0.0,
            frames_claimed=int(stream.frames or 0),
            pts=pts_arr[order] if seekable else pts_arr,
            keyframes=np.flatnonzero(np.asarray(keys)[order] if seekable else np.asarray(keys)).astype(np.int64),
            time_base=stream.time_base or Fraction(1, 1),
            start_pts=int(pts_arr.min()),
            seekable=seekable,
        )
    finally:
        container.close()


def plan_decode(index: VideoIndex, indices: Sequence[int], seek_cost: int = SEEK_COST_FRAMES) -> DecodePlan:
    """Choose, per requested frame, between decoding forward and seeking to its keyframe.

    Args:
        index: the video's index (:func:`index_video`).
        indices: requested display indices (any order, duplicates allowed; out-of-range ignored).
        seek_cost: what a seek costs, in decoded frames.
    """
    wanted = sorted({int(i) for i in indices if 0 <= int(i) < index.n_frames})
    if not wanted:
        return DecodePlan((), 0, 0)
    sequential_cost = wanted[-1] + 1
    if not index.seekable or len(index.keyframes) == 0:
        return DecodePlan(((None, tuple(wanted)),), sequential_cost, sequential_cost)
    keyframes = index.keyframes
    steps: list[tuple[int | None, list[int]]] = []
    position, cost = 0, 0  # next frame the decoder would output without a seek
    for target in wanted:
        keyframe = int(keyframes[np.searchsorted(keyframes, target, side="right") - 1]) if target >= keyframes[0] else 0
        forward = target - position + 1 if position <= target else None
        via_seek = target - keyframe + 1 + seek_cost
        if steps and forward is not None and forward <= via_seek:
            steps[-1][1].append(target)
            cost += forward
        elif not steps and (keyframe == 0 or forward <= via_seek):
            steps.append((None, [target]))
            cost += forward
        else:
            steps.append((keyframe, [target]))
            cost += via_seek
        position = target + 1
    if cost >= sequential_cost:
        return DecodePlan(((None, tuple(wanted)),), sequential_cost, sequential_cost)
    return DecodePlan(tuple((s, tuple(w)) for s, w in steps), cost, sequential_cost)


def split_plan(index: VideoIndex, indices: Sequence[int], parts: int, seek_cost: int = SEEK_COST_FRAMES,
               min_frames: int = PARALLEL_MIN_FRAMES) -> tuple[DecodePlan, ...]:
    """Split the decoding of ``indices`` into up to ``parts`` plans that can run side by side.

    Each keyframe starts an independent stretch of decoding (what follows a keyframe in display
    order needs nothing before it), so the requested frames are grouped by the keyframe before
    them, and consecutive groups are cut into runs of balanced cost (frames to decode). Each run is
    planned by :func:`plan_decode` (it seeks to its first keyframe). A 15 s H.264 clip with a
    keyframe every 250 frames splits into two runs; a long video into as many as ``parts``.

    Returns one plan (the whole request) when splitting would not shorten the longest stretch to
    at most :data:`PARALLEL_GAIN` of it, when there are fewer than ``min_frames`` to decode, or when
    frames cannot be located by timestamp.
    """
    whole = plan_decode(index, indices, seek_cost)
    wanted = sorted({i for _, targets in whole.steps for i in targets})
    if parts < 2 or not index.seekable or len(index.keyframes) < 2 or whole.cost < min_frames:
        return (whole,)
    groups: list[tuple[int, list[int]]] = []  # (the keyframe before them, requested frames)
    for target in wanted:
        position = int(np.searchsorted(index.keyframes, target, side="right")) - 1
        keyframe = int(index.keyframes[position]) if position >= 0 else 0
        if groups and groups[-1][0] == keyframe:
            groups[-1][1].append(target)
        else:
            groups.append((keyframe, [target]))
    if len(groups) < 2:
        return (whole,)
    costs = [targets[-1] - keyframe + 1 for keyframe, targets in groups]
    runs = _balanced_runs([targets for _, targets in groups], costs, parts)
    plans = tuple(plan_decode(index, run, seek_cost) for run in runs)
    if len(plans) < 2 or max(plan.cost for plan in plans) > PARALLEL_GAIN * whole.cost:
        return (whole,)
    return plans


def _balanced_runs(groups: list[list[int]], costs: list[int], parts: int) -> list[list[int]]:
    """Consecutive ``groups`` cut into at most ``parts`` runs, minimising the costliest run."""

    def cut(cap: int) -> list[list[int]]:
        runs, total = [], None
        for group, cost in zip(groups, costs):
            if total is None or total + cost > cap:
                runs.append(list(group))
                total = cost
            else:
                runs[-1].extend(group)
                total += cost
        return runs

    low, high = max(costs), sum(costs)
    while low < high:  # the smallest cap that needs at most ``parts`` runs
        middle = (low + high) // 2
        low, high = (low, middle) if len(cut(middle)) <= parts else (middle + 1, high)
    return cut(low)


def _configure(stream, threads: int) -> None:
    stream.thread_type = "AUTO"
    if threads:
        stream.codec_context.thread_count = threads


def _decoded(container, stream) -> Iterator:
    """Frames of ``stream`` in display order from the container's current position."""
    for packet in container.demux(stream):
        yield from packet.decode()


def _converter(size: tuple[int, int] | None, fmt: str = "rgb24", interpolation: str = "AREA",
               threads: int = 0) -> Callable[..., np.ndarray]:
    """frame -> (H, W, C) uint8 array in ``fmt``, resized to ``size`` (width, height) when given.

    One FFmpeg scaler serves every frame of the call (``frame.to_ndarray(width=...)`` would build
    and initialise a new one per frame: about a fifth of the conversion's cost, same pixels).
    ``threads=1`` (a decoder confined to one thread, as in the decode workers) scales on one thread
    too; 0 lets FFmpeg choose."""
    from av.video.reformatter import VideoReformatter

    scaler = VideoReformatter()
    width, height = size if size is not None else (None, None)
    return lambda frame: scaler.reformat(frame, width=width, height=height, format=fmt,
                                         interpolation=interpolation,
                                         threads=1 if threads == 1 else 0).to_ndarray()


def _converters(sizes: Sequence[tuple[int, int] | None], threads: int = 0) -> Callable[..., tuple[np.ndarray, ...]]:
    """frame -> one RGB array per size in ``sizes`` (each with its own reused scaler)."""
    each = [_converter(size, threads=threads) for size in sizes]
    return lambda frame: tuple(convert(frame) for convert in each)


def _stack(images: list[np.ndarray], size: tuple[int, int] | None, index: VideoIndex | None) -> np.ndarray:
    if images:
        return np.stack(images)
    if size is not None:
        return np.zeros((0, size[1], size[0], 3), np.uint8)
    height, width = (index.height, index.width) if index else (0, 0)
    return np.zeros((0, height, width, 3), np.uint8)


def _read_sequential(container, stream, wanted: list[int], to_rgb, index: VideoIndex | None):
    """Decode from the start, counting frames; keep the wanted ones.

    Returns:
        (images, indices, pts of the kept frames or Nones when the decoded timestamps were not
        increasing, i.e. not to be trusted, frames decoded when the stream ended early, warning).
    """
    import av

    wanted_set, last = set(wanted), wanted[-1] if wanted else -1
    images, found, pts_list, count, warning = [], [], [], 0, None
    previous, increasing = None, True
    try:
        for frame in _decoded(container, stream):
            if frame.pts is None or (previous is not None and frame.pts <= previous):
                increasing = False
            previous = frame.pts
            if count in wanted_set:
                images.append(to_rgb(frame))
                found.append(count)
                pts_list.append(frame.pts)
            count += 1
            if count > last:
                break
    except av.error.FFmpegError as exc:
        if not count:
            raise VideoReadError(index.path if index else container.name, f"decoding failed ({exc})") from exc
        warning = f"decoding stopped after {count} frames on damaged data ({exc})"
    if not increasing:
        pts_list = [None] * len(pts_list)
    reached_end = count <= last
    return images, found, pts_list, (count if reached_end or warning else None), warning


def _read_by_pts(container, stream, plan: DecodePlan, to_rgb, index: VideoIndex, skip_unwanted: bool = True):
    """Follow ``plan`` (seeks to keyframes, decoding forward) and recognise frames by their timestamps.

    With ``skip_unwanted``, the decoder is told to drop non-reference frames (e.g. most B-frames)
    that are not requested: nothing depends on them, so the requested frames decode exactly the
    same, and H.264 decodes a third fewer frames.
    """
    rank = {int(p): i for i, p in enumerate(index.pts)}
    wanted_all = {i for _, targets in plan.steps for i in targets}
    ctx = stream.codec_context
    images, found, pts_list = [], [], []

    skipping = False  # what the decoder was last told (setting it costs an enum conversion: only on change)

    def frames_from_here():
        nonlocal skipping
        for packet in container.demux(stream):
            if skip_unwanted:
                position = rank.get(packet.pts) if packet.pts is not None else None
                skip = position is not None and position not in wanted_all
                if skip != skipping:
                    ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            yield from packet.decode()

    generator = frames_from_here()
    try:
        for seek_to, targets in plan.steps:
            if seek_to is not None:
                container.seek(int(index.pts[seek_to]), stream=stream, backward=True, any_frame=False)
                generator = frames_from_here()
            remaining = set(targets)
            for frame in generator:
                position = rank.get(frame.pts)
                if position is None:
                    raise LookupError(f"frame pts {frame.pts} is not in the index")
                if position in remaining:
                    images.append(to_rgb(frame))
                    found.append(position)
                    pts_list.append(frame.pts)
                    remaining.discard(position)
                if position >= targets[-1]:
                    break
            if remaining and seek_to is not None and min(remaining) < seek_to:
                raise LookupError("seek landed after the requested frame")
    finally:
        ctx.skip_frame = "DEFAULT"
    return images, found, pts_list


def _read_runs(path, index: VideoIndex, runs: tuple[DecodePlan, ...], sizes, threads: int):
    """Follow each plan in its own decoder, side by side when there are several (FFmpeg decodes
    without holding the GIL, so threads suffice). Returns (images, indices, pts) of all runs."""
    from concurrent.futures import ThreadPoolExecutor

    each = threads if len(runs) == 1 else max(1, (threads or available_cores()) // len(runs))

    def read(plan: DecodePlan):
        container = _open(path)
        try:
            stream = container.streams.video[0]
            _configure(stream, each)
            return _read_by_pts(container, stream, plan, _converters(sizes, threads=each), index)
        finally:
            container.close()

    if len(runs) == 1:
        return read(runs[0])
    with ThreadPoolExecutor(len(runs), thread_name_prefix="jungle-decode") as pool:
        parts = list(pool.map(read, runs))
    return tuple([item for part in parts for item in part[field]] for field in range(3))


def read_frames(
    path: str | os.PathLike,
    indices: Sequence[int],
    size: tuple[int, int] | None = None,
    *,
    index: VideoIndex | None = None,
    method: str = "auto",
    threads: int = 0,
    also: Sequence[tuple[int, int] | None] = (),
) -> Frames:
    """Decode the requested frames of a video.

    Args:
        path: the video file.
        indices: display indices to decode (any order; duplicates and indices past the real end
            are dropped: they are simply absent from the result).
        size: (width, height) to resize to on decode, or None for the coded size.
        index: the video's :func:`index_video` result, when the caller already has it.
        method: "auto" (the cheapest plan), "seek" (seek to every requested frame's keyframe),
            "sequential" (decode forward from the start) or "count" (decode every frame and count:
            the slow reference). Where timestamps cannot be trusted, every method counts.
        threads: cores to decode with (0: all this process may use). With "auto", stretches that
            start at different keyframes are decoded side by side on up to that many decoders
            (:func:`split_plan`), each given its share of the threads; one stretch gets them all
            (FFmpeg's own threading; 0 = FFmpeg's choice). 1 decodes on one thread, as the
            featurize workers do (each decodes one video at a time, side by side).
        also: further sizes (width, height; None: the coded size) to convert the same frames to, in
            the same decoding (``Frames.also``): e.g. the encoder's input and the frame for crops.

    Returns:
        :class:`Frames`, sorted by index.

    Raises:
        VideoReadError: the file cannot be opened or no frame at all decodes.
    """
    import av

    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")
    index = index or index_video(path)
    plan = plan_decode(index, indices, seek_cost=0 if method == "seek" else SEEK_COST_FRAMES)
    wanted = sorted({i for _, targets in plan.steps for i in targets})
    if method == "sequential" and wanted:
        plan = DecodePlan(((None, tuple(wanted)),), wanted[-1] + 1, wanted[-1] + 1)
    by_pts = method != "count" and index.seekable and bool(wanted)
    runs = split_plan(index, wanted, threads or available_cores()) if by_pts and method == "auto" else (plan,)
    used = ("seek" if any(run.method == "seek" for run in runs) else "sequential") if by_pts else "count"
    warning, n_frames = None, index.n_frames
    sizes = (size, *also)
    if by_pts:
        try:
            images, found, pts_list = _read_runs(path, index, runs, sizes, threads)
        except (LookupError, av.error.FFmpegError):
            by_pts, used, runs = False, "count", (plan,)  # timestamps did not match the index: count frames
    if not by_pts:
        container = _open(path)
        try:
            stream = container.streams.video[0]
            _configure(stream, threads)
            images, found, pts_list, decoded_count, warning = _read_sequential(
                container, stream, wanted, _converters(sizes, threads=threads), index)
        finally:
            container.close()
        if decoded_count is not None:
            n_frames = min(n_frames, decoded_count)
    order = np.argsort(found, kind="stable")
    found_arr = np.asarray(found, dtype=np.int64)[order]
    pts_sorted = [pts_list[i] for i in order]
    stacked = [_stack([images[i][part] for i in order], part_size, index) for part, part_size in enumerate(sizes)]
    return Frames(
        images=stacked[0],
        also=tuple(stacked[1:]),
        indices=found_arr,
        timestamps=_timestamps(index, found_arr, pts_sorted),
        n_frames=n_frames,
        method=used,
        warning=warning,
        runs=len(runs),
    )


def _timestamps(index: VideoIndex, found: np.ndarray, pts: list) -> np.ndarray:
    """Seconds per frame: decoded pts when present and increasing, else index / fps."""
    if len(found) and all(p is not None for p in pts):
        values = np.asarray(pts, dtype=np.int64)
        if len(values) < 2 or np.all(np.diff(values) > 0):
            return (values - index.start_pts).astype(np.float64) * float(index.time_base)
    return index.timestamps(found) if index.seekable else (
        found / index.fps if index.fps else found.astype(np.float64))


def iter_frames(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    *,
    fmt: str = "rgb24",
    threads: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (display index, seconds, image) for every frame, one at a time (bounded memory).

    Args:
        path: the video file.
        size: (width, height) to resize to on decode, or None.
        fmt: FFmpeg pixel format of the yielded arrays ("rgb24" or "gray" for cheap scoring).
        threads: decoder threads (0: FFmpeg's choice).
        stop: stop before this index.

    Raises:
        VideoReadError: the file cannot be opened or its first frame does not decode.
    """
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        _configure(stream, threads)
        time_base = float(stream.time_base or 1)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        count, start, last_pts = 0, None, None
        trusted = _pts_trusted(container, stream)
        convert = _converter(size, fmt, interpolation="BILINEAR", threads=threads)
        try:
            for frame in _decoded(container, stream):
                if stop is not None and count >= stop:
                    break
                if trusted and frame.pts is not None and (last_pts is None or frame.pts > last_pts):
                    start = frame.pts if start is None else start
                    seconds = (frame.pts - start) * time_base
                    last_pts = frame.pts
                else:
                    seconds = count / fps if fps else float(count)
                yield count, seconds, convert(frame)
                count += 1
        except av.error.FFmpegError as exc:
            if not count:
                raise VideoReadError(path, f"decoding failed ({exc})") from exc
    finally:
        container.close()
