"""The DuckDB side of a featurize run, done by one process: :func:`plan` registers (or finds) each
model's feature set, gives new videos rows and sizes the Zarr groups; :func:`reconcile` folds the
block markers into ``feature_rows`` and completes a set when every row is done. A coordinator can do
both and hand each worker its part of the :class:`FeaturizePlan`: the workers then never open DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import NotFoundError
from ...store import arrays, registry
from ...store.db import connect, transaction
from ...store.registry import FeatureSet
from ...store.rows import assign_rows, record_statuses, video_paths
from ..video.sampling import Sampling
from .config import Shard
from .crops import FILLS
from .frame_model import ModelSpec, decode_size
from .markers import progress_dir, read_markers

__all__ = ["PlannedSet", "FeaturizePlan", "plan", "reconcile"]


@dataclass(frozen=True)
class PlannedSet:
    """One feature set of a plan: the registered set, its rows (video id -> row) and chunking."""

    fs: FeatureSet
    created: bool
    rows: dict[str, int]
    n_rows: int
    block: int


@dataclass(frozen=True)
class FeaturizePlan:
    """The DuckDB side of a featurize run, read and written once by one process (:func:`plan`):
    every model's feature set with its rows, and the path of every video."""

    sets: tuple[PlannedSet, ...]
    paths: dict[str, str]

    def for_shard(self, shard: Shard) -> "FeaturizePlan":
        """Only the videos of the blocks ``shard`` owns (what one worker needs to receive)."""
        primary = self.sets[0]
        keep = {v for v, r in primary.rows.items() if shard.owns(r // primary.block)}
        sets = tuple(PlannedSet(p.fs, p.created, {v: r for v, r in p.rows.items() if v in keep}, p.n_rows, p.block)
                     for p in self.sets)
        return FeaturizePlan(sets, {v: self.paths[v] for v in keep if v in self.paths})


def _set_config(spec: ModelSpec, sampling: Sampling, frame_size: tuple[int, int] | None, slots: int) -> dict:
    return {"model": spec.description, "sampling": sampling.spec(), "sampling_config": sampling.lineage(),
            "slots": slots, "frame_size": list(frame_size) if frame_size else None}


def plan(workspace, specs: list[ModelSpec], sampling: Sampling, block: int = 64) -> FeaturizePlan:
    """Register (or find) each model's feature set, give new videos rows and size the Zarr groups,
    in one short DuckDB transaction; return what the workers need.

    Raises:
        NotFoundError: the workspace has no readable video.
    """
    frame_size = decode_size([s for s in specs if s.view == "frames"])
    planned: list[PlannedSet] = []
    with connect(workspace) as con:
        with transaction(con):
            for spec in specs:
                size = frame_size if spec.view != "boxes" else None
                slots = spec.slots or sampling.slots
                config = _set_config(spec, sampling, size, slots)
                fs, created = registry.register(con, spec.set_name, "frames", config, [],
                                                sampling=sampling.spec(), **spec.registry)
                rows = assign_rows(con, fs)
                n_rows = max(rows.values(), default=-1) + 1
                if not n_rows:
                    raise NotFoundError(f"the workspace {workspace.root} has no readable videos to featurize. "
                                     "Run `jungle ingest DIR` first (see `jungle status`).")
                array_specs = {name: arrays.ArraySpec(shape, dtype, FILLS.get(name, 0))
                               for name, (shape, dtype, *_) in spec.outputs.items()}
                array_specs.update(valid=arrays.ArraySpec((), "bool", False),
                                   timestamps=arrays.ArraySpec((), "float32", float("nan")),
                                   frame_index=arrays.ArraySpec((), "int32", -1))
                existing_block = None
                if (workspace.root / fs.location / "zarr.json").exists():
                    existing_block = arrays.open_group(workspace, fs).attrs.get("block")
                group = arrays.create_group(workspace, fs, n_rows, slots, array_specs,
                                            block=existing_block or block,
                                            attrs={"sampling": sampling.spec(), "view": spec.view,
                                                   "frame_size": list(size) if size else None,
                                                   "model": spec.description})
                arrays.ensure_rows(group, n_rows)
                planned.append(PlannedSet(fs, created, rows, n_rows, int(group.attrs["block"])))
        paths = video_paths(con)
    return FeaturizePlan(tuple(planned), paths)


def reconcile(workspace, fs) -> tuple[int, int, int]:
    """Fold a set's block markers into ``feature_rows``; complete the set when every row is done.

    Safe to call from any process at any time (short transaction, retried on the DuckDB lock).

    Returns:
        (rows done, rows with errors, rows still pending).
    """
    import polars as pl

    markers = read_markers(progress_dir(workspace, fs))
    frame = pl.DataFrame({
        "row": list(markers), "status": [v[0] for v in markers.values()],
        "error": [v[1] for v in markers.values()], "n_valid": [v[2] for v in markers.values()],
    }, schema={"row": pl.Int32, "status": pl.Utf8, "error": pl.Utf8, "n_valid": pl.Int32})
    with connect(workspace) as con:
        with transaction(con):
            counts = record_statuses(con, fs, frame)
    return counts.get("done", 0), counts.get("error", 0), counts.get("pending", 0)
