"""Decoding the sampled frames of videos in worker processes, in order, with bounded memory; a video
that cannot be read becomes a recorded error, and a decoder crash costs only its own video."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Iterable, Iterator

import numpy as np

from ...runtime import WorkerPool
from ..video.decode import VideoReadError, read_frames
from ..video.sampling import Sampling, sample_frames

__all__ = ["DecodedVideo", "decode_video", "DecodePool"]


@dataclass
class DecodedVideo:
    """One video's sampled frames, laid out in slots, or its error."""

    images: np.ndarray | None
    valid: np.ndarray
    frame_index: np.ndarray
    timestamps: np.ndarray
    error: str | None = None
    seconds: float = 0.0

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


    @classmethod
    def failed(cls, sampling: Sampling, error: str, seconds: float = 0.0) -> "DecodedVideo":
        """A video that gave no frames: every slot invalid, and a readable error."""
        slots = sampling.slots
        return cls(None, np.zeros(slots, bool), np.full(slots, -1, np.int32), np.full(slots, np.nan, np.float32),
                   error=error, seconds=seconds)


def _unreadable(path, reason: str) -> str:
    return f"cannot read video {path}: {reason}. Check the file with `ffprobe`; re-export or remove it."


def decode_video(path: str, sampling: Sampling, size: tuple[int, int] | None, threads: int = 0) -> DecodedVideo:
    """Decode one video's sampled frames; any failure becomes a recorded error, never an exception."""
    start = time.perf_counter()
    try:
        sampled = sample_frames(path, sampling, size, reader=partial(read_frames, threads=threads))
    except VideoReadError as exc:
        return DecodedVideo.failed(sampling, str(exc), time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
        return DecodedVideo.failed(sampling, _unreadable(path, f"{type(exc).__name__}: {exc}"),
                                   time.perf_counter() - start)
    if sampled.n_valid == 0:
        return DecodedVideo.failed(sampling, _unreadable(path, f"no frame decoded for sampling {sampling.spec()}"),
                                   time.perf_counter() - start)
    return DecodedVideo(sampled.frames.images, sampled.valid, sampled.frame_index, sampled.timestamps,
                        seconds=time.perf_counter() - start)


def _decode_task(task: tuple) -> DecodedVideo:
    return decode_video(*task)


#: Modules decode workers need, imported once in the fork server.
_PRELOAD = ("jungle.features.featurize.decode_pool", "jungle.features.video.decode", "av", "numpy")


def _pool(workers: int, niceness: int) -> WorkerPool:
    """Decode workers (:class:`jungle.runtime.WorkerPool`: they ignore Ctrl-C, die with this process
    and run one torch thread each, so that a sampling that runs a model in them, ``detector:N``,
    does not oversubscribe the cores)."""
    return WorkerPool(workers, preload=_PRELOAD, niceness=niceness)


class DecodePool:
    """Decode worker processes, started ahead of time so that they import while the models load.

    ``niceness`` > 0 runs the workers at a lower priority (the forward pass keeps the cores; on a
    busy shared machine it starves the decoders, hence off by default). A worker that dies
    (a decoder crash) costs only the video it was decoding: that one is retried alone, then
    recorded as an error. ``workers=0`` decodes in the calling process.
    """

    def __init__(self, workers: int, prefetch: int | None = None, niceness: int = 0):
        import multiprocessing

        if multiprocessing.current_process().daemon:
            workers = 0  # a daemon process (e.g. a Dask worker) may not start children: decode here
        self.workers, self.niceness = workers, niceness
        self.prefetch = prefetch or max(4, 2 * workers)
        self._pool = _pool(workers, niceness) if workers else None

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool:
            self._pool.close()
            self._pool = None

    def decoded_in_order(self, tasks: Iterable[tuple]) -> Iterator[DecodedVideo]:
        """Decode ``tasks`` ((path, sampling, size, threads) each), yielding in task order, at most
        ``prefetch`` videos in flight (bounded memory)."""
        from concurrent.futures.process import BrokenProcessPool

        if not self.workers:
            for task in tasks:
                yield _decode_task(task)
            return
        in_flight: deque = deque()
        iterator = iter(tasks)
        while True:
            for task in iterator:
                in_flight.append((task, self._pool.submit(_decode_task, task)))
                if len(in_flight) >= self.prefetch:
                    break
            if not in_flight:
                return
            task, future = in_flight.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                self._pool.close()
                with _pool(1, self.niceness) as alone:
                    try:
                        result = alone.submit(_decode_task, task).result()
                    except BrokenProcessPool:
                        result = DecodedVideo.failed(task[1], _unreadable(task[0], "the decoder process crashed on it"))
                self._pool = _pool(self.workers, self.niceness)
                in_flight = deque((t, self._pool.submit(_decode_task, t)) for t, _ in in_flight)
            yield result
