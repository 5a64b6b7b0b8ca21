"""What the aggregates read: the done rows of frame-level sets, aligned blocks of frames, fingerprints.

A frame-level feature set (see :mod:`jungle.store.arrays`) holds (video row, frame slot, ...)
arrays; ``feature_rows`` says which row belongs to which video and whether it is done. The
aggregates read such sets block by block (whole Zarr chunks, so memory stays bounded however many
videos there are), for one set or for several sets aligned by ``video_id`` (features of several
encoders side by side), with the next block read in a background thread while the current one is
reduced (Blosc and NumPy release the GIL).

Lineage: :func:`fingerprint` hashes the rows a query returns, so a feature set's registry key
changes exactly when what it was computed from changes (new videos, a relabelled video, new folds).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ...errors import InputError
from ...store import arrays
from ...store.registry import FeatureSet
from ...store.rows import done_rows
from ...store.workspace import Workspace

__all__ = ["FrameRows", "FrameBlock", "load_frame_rows", "iter_frame_blocks", "prefetched"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FrameRows:
    """The done videos of one frame-level feature set, in Zarr row order.

    Attributes:
        fs: the feature set.
        video_ids: video ids (str), one per done row.
        rows: the Zarr row of each video (int64, increasing).
        fingerprint: a hash of (video_id, row, n_valid) of the done rows, for lineage.
    """

    fs: FeatureSet
    video_ids: np.ndarray
    rows: np.ndarray
    fingerprint: str

    def lineage(self) -> dict:
        """How this input is recorded in a derived set's ``inputs``."""
        return {"name": self.fs.name, "version": self.fs.version, "rows": int(len(self.rows)),
                "fingerprint": self.fingerprint}

    def __len__(self) -> int:
        return len(self.rows)


def load_frame_rows(con, fs: FeatureSet) -> FrameRows:
    """The done rows (with at least one valid frame, when recorded) of the frame-level set ``fs``."""
    if fs.kind != "frames":
        raise InputError(f"feature set {fs.ref} is video-level; aggregates read frame-level sets")
    found, rows_fingerprint = done_rows(con, fs)
    video_ids = np.array([r[0] for r in found], dtype=object)
    rows = np.array([r[1] for r in found], dtype=np.int64)
    return FrameRows(fs, video_ids, rows, rows_fingerprint)


@dataclass
class FrameBlock:
    """Frames of a block of videos.

    Attributes:
        video_ids: (B,) video ids.
        rows: (B,) the videos' rows in the first source.
        values: (B, F, D) the sources' arrays, concatenated on the last axis (or, read ``along``
            frames, on the frame axis: (B, F1 + F2 + ..., D)).
        valid: (B, F) bool, valid in every source (along frames: each source's slots).
        extras: further arrays of the first source (along frames: of every source), by name.
        source_rows: (B,) rows of the block's videos in each source.
    """

    video_ids: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    valid: np.ndarray
    extras: dict = field(default_factory=dict)
    source_rows: tuple = ()

    def __len__(self) -> int:
        return len(self.video_ids)


def prefetched(items: Iterable[T], load: Callable[[T], R], depth: int = 1) -> Iterator[R]:
    """``load(item)`` for each item, in order, with up to ``depth`` loads running ahead in a thread."""
    if depth <= 0:
        for item in items:
            yield load(item)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jungle-read") as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(load, item))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _read(array, rows: np.ndarray) -> np.ndarray:
    """Rows of a Zarr array: one slice when they are contiguous, else an orthogonal selection."""
    if rows[-1] - rows[0] + 1 == len(rows):
        return array[int(rows[0]):int(rows[-1]) + 1]
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    if len(rows) * 2 >= hi - lo:  # dense enough: read the span, keep the rows
        return array[lo:hi][rows - lo]
    return array.get_orthogonal_selection((rows,) + (slice(None),) * (array.ndim - 1))


def iter_frame_blocks(
    workspace: Workspace,
    sources: Sequence[FrameRows],
    names: str | Sequence[str] = "embedding",
    video_ids: Iterable[str] | None = None,
    videos_per_block: int = 256,
    prefetch: int = 1,
    extras: Sequence[str] = (),
    shuffle: np.random.Generator | None = None,
    along: str = "features",
) -> Iterator[FrameBlock]:
    """Blocks of frames of the videos done in every source, in the first source's row order.

    Args:
        workspace: the workspace.
        sources: one or more frame-level sets (same frame slots); their arrays are concatenated
            on the last axis, and a frame slot is valid only where it is valid in every source.
            With ``along="frames"`` they are concatenated on the frame axis instead (sets of one
            encoder, e.g. a video's whole frames and its crops: one bag), each slot keeping its
            own validity, and ``extras`` are read from every source.
        names: the array(s) to read from each source (e.g. ``embedding``, ``stages``, ``probs``).
        video_ids: read only these videos (default: all done in every source).
        videos_per_block: rows per block, rounded to whole Zarr chunks of the first source.
        prefetch: blocks read ahead in a background thread (0: none).
        extras: arrays of the first source to return alongside (``FrameBlock.extras``).
        shuffle: visit the blocks in an order drawn from this generator (default: row order).

    Yields:
        FrameBlock with ``values`` in the arrays' dtype (float16 for embeddings).
    """
    names = [names] if isinstance(names, str) else list(names)
    primary = sources[0]
    keep = np.ones(len(primary), dtype=bool)
    other_rows = []
    for source in sources[1:]:
        lookup = dict(zip(source.video_ids, source.rows))
        rows = np.array([lookup.get(v, -1) for v in primary.video_ids], dtype=np.int64)
        keep &= rows >= 0
        other_rows.append(rows)
    if video_ids is not None:
        wanted = set(video_ids)
        keep &= np.fromiter((v in wanted for v in primary.video_ids), dtype=bool, count=len(primary))
    groups = [arrays.open_group(workspace, s.fs) for s in sources]
    first = groups[0][names[0]]
    chunk = first.chunks[0]
    span = max(chunk, videos_per_block // chunk * chunk)
    positions = np.flatnonzero(keep)
    starts = primary.rows[positions] // span
    plan = [positions[starts == s] for s in np.unique(starts)]
    if shuffle is not None:
        plan = [plan[i] for i in shuffle.permutation(len(plan))]

    frames = along == "frames"
    if frames and len(names) != 1:
        raise ValueError(f"reading along frames takes one array, not {names}")

    def load(block_positions: np.ndarray) -> FrameBlock:
        parts, masks, extra, source_rows = [], [], {}, []
        for index, group in enumerate(groups):
            rows = primary.rows[block_positions] if index == 0 else other_rows[index - 1][block_positions]
            source_rows.append(rows)
            order = np.argsort(rows, kind="stable")
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            sorted_rows = rows[order]
            for name in names:
                parts.append(_read(group[name], sorted_rows)[inverse])
            masks.append(_read(group["valid"], sorted_rows)[inverse])
            if index == 0 or frames:
                for name in extras:
                    read = _read(group[name], sorted_rows)[inverse]
                    extra[name] = np.concatenate([extra[name], read], axis=1) if name in extra else read
        if frames:
            values, valid = np.concatenate(parts, axis=1), np.concatenate(masks, axis=1)
        else:
            values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
            valid = np.logical_and.reduce(masks)
        return FrameBlock(primary.video_ids[block_positions], primary.rows[block_positions], values,
                          np.asarray(valid, dtype=bool), extra, tuple(source_rows))

    yield from prefetched(plan, load, depth=prefetch)
