"""Zarr I/O for frame-level feature sets: (videos, frames, ...) arrays, one group per set version.

A group lives at ``<workspace>/features.zarr/<name>/v<version>`` and holds any number of arrays
whose first two axes are (video row, frame slot), e.g. ``embedding`` (V, F, D) float16,
``valid`` (V, F) bool, ``timestamps`` (V, F) float32. Rows align with ``feature_rows.row`` in
DuckDB. Arrays are chunked by blocks of ``block`` videos along the first axis: a block is the
unit of work, and every block has exactly one writer at a time (Zarr loses data when two
processes write one chunk). The group's attributes hold the configuration that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .failures import storage_errors
from .registry import FeatureSet
from .workspace import Workspace

__all__ = ["ArraySpec", "create_group", "open_group", "ensure_rows", "write_rows", "read_rows",
           "iter_blocks", "block_ranges"]


@dataclass(frozen=True)
class ArraySpec:
    """One array of a frame-level group: its per-(video, frame) trailing shape and dtype."""

    trailing: tuple[int, ...] = ()
    dtype: str = "float16"
    fill_value: float | int | bool = 0


def _group_path(workspace: Workspace, fs: FeatureSet):
    return workspace.root / fs.location


def create_group(
    workspace: Workspace,
    fs: FeatureSet,
    n_rows: int,
    n_frames: int,
    arrays: Mapping[str, ArraySpec],
    block: int = 64,
    attrs: dict | None = None,
):
    """Create (or reopen, when it exists with the same arrays) the Zarr group of ``fs``.

    Raises:
        DiskFull, WorkspaceNotWritable: the group cannot be written (see :mod:`jungle.store.failures`).
    """
    path = _group_path(workspace, fs)
    with storage_errors(workspace.root, path):
        return _create_group(path, fs, n_rows, n_frames, arrays, block, attrs)


def _create_group(path, fs: FeatureSet, n_rows: int, n_frames: int, arrays: Mapping[str, ArraySpec], block: int,
                  attrs: dict | None):
    import zarr
    from zarr.codecs import BloscCodec

    group = zarr.open_group(str(path), mode="a")
    group.attrs.update({"feature_set": fs.name, "version": fs.version, "config": fs.config,
                        "block": block, "n_frames": n_frames, **(attrs or {})})
    for name, spec in arrays.items():
        if name in group:
            continue
        shape = (n_rows, n_frames, *spec.trailing)
        group.create_array(
            name,
            shape=shape,
            chunks=(block, n_frames, *spec.trailing),
            dtype=spec.dtype,
            fill_value=spec.fill_value,
            compressors=BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle" if spec.dtype == "bool" else "shuffle"),
        )
    return group


def open_group(workspace: Workspace, fs: FeatureSet, mode: str = "r"):
    import zarr

    path = _group_path(workspace, fs)
    if not path.exists():
        raise FileNotFoundError(
            f"feature set {fs.ref} has no arrays at {path}. It may still be building, or the "
            "workspace was copied without features.zarr/."
        )
    return zarr.open_group(str(path), mode=mode)


def _location(group) -> str:
    """The folder of a Zarr group on disk (or its store path), for messages."""
    root = getattr(group.store, "root", None)
    return str(Path(root) / group.path) if root is not None else str(group.store_path)


def ensure_rows(group, n_rows: int) -> None:
    """Grow every array of the group to at least ``n_rows`` rows (new videos appended at the end)."""
    with storage_errors(path=_location(group)):
        for _, array in group.arrays():
            if array.shape[0] < n_rows:
                array.resize((n_rows, *array.shape[1:]))


def write_rows(group, start: int, data: Mapping[str, np.ndarray]) -> None:
    """Write rows ``start:start+len`` of each named array. Callers write whole blocks per writer.

    Zarr writes each chunk to a new file and renames it, so a failed write leaves the old chunk.

    Raises:
        DiskFull, WorkspaceNotWritable: the chunks cannot be written (see :mod:`jungle.store.failures`).
    """
    with storage_errors(path=_location(group)):
        for name, values in data.items():
            array = group[name]
            array[start:start + len(values)] = values.astype(array.dtype, copy=False)


def read_rows(group, name: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
    array = group[name]
    if rows is None:
        return array[:]
    if isinstance(rows, slice):
        return array[rows]
    return array.get_orthogonal_selection((np.asarray(rows),) + (slice(None),) * (array.ndim - 1))


def block_ranges(n_rows: int, block: int) -> list[tuple[int, int]]:
    """[(start, stop), ...] for each chunk-aligned block of rows."""
    return [(s, min(s + block, n_rows)) for s in range(0, n_rows, block)]


def iter_blocks(group, name: str, block: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start row, array block) over the first axis, one chunk-aligned block at a time."""
    array = group[name]
    block = block or array.chunks[0]
    for start, stop in block_ranges(array.shape[0], block):
        yield start, array[start:stop]
