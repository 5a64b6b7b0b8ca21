"""Statistics over a video's valid frames: class-probability summaries and embedding pooling.

Two families, both computed on blocks of videos (see :func:`jungle.features.aggregates.inputs.iter_frame_blocks`)
so memory stays bounded, and both blind to invalid (padded) frame slots, whatever they hold:

- :func:`prob_stats`: per class, over the valid frames' predicted probabilities: mean, median,
  min, max, std (population), 10th and 90th percentile (linear interpolation, as
  ``numpy.percentile``) and a histogram of ``bins`` equal bins on [0, 1] as fractions of the
  valid frames (the 1st place's features; 7 + 10 = 17 per class, 408 for 24 classes). Computed
  in DuckDB SQL (``quantile_cont``, ``stddev_pop``, ``count(*) FILTER``) over a long table of the
  valid frames only.
- :func:`pool_embeddings`: per embedding dimension: mean, max, min and max - min (the 3rd place's
  "min-max layer"). Computed in NumPy on float32 copies (converted from float16 by torch, which
  uses the CPU's F16C instructions): this is the throughput-critical reduction
  (``bench/aggregate.py``), where SQL over one row per (frame, dimension) would be two orders of
  magnitude slower.
- :func:`frame_moments`: per-dimension mean and std over valid frames (to standardise inputs of
  the learned heads).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from ...errors import InputError
from ...runtime import torch_threads
from ...store.db import registered

__all__ = ["PROB_STATS", "EMBEDDING_POOLS", "class_slug", "prob_stat_columns", "prob_stats",
           "pool_columns", "pool_embeddings", "frame_moments", "as_float32"]

PROB_STATS: tuple[str, ...] = ("mean", "median", "min", "max", "std", "p10", "p90")
EMBEDDING_POOLS: tuple[str, ...] = ("mean", "max", "min", "range")

_SQL_STAT = {
    "mean": "avg(p)",
    "median": "quantile_cont(p, 0.5)",
    "min": "min(p)",
    "max": "max(p)",
    "std": "stddev_pop(p)",
}
_PERCENTILE = re.compile(r"^p(\d{1,2})$")


def class_slug(name: str) -> str:
    """A column-name form of a class: ``"other (non-primate)"`` -> ``other_non_primate``."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    return slug or "class"


def _stat_sql(stat: str) -> str:
    if stat in _SQL_STAT:
        return _SQL_STAT[stat]
    match = _PERCENTILE.match(stat)
    if match:
        return f"quantile_cont(p, {int(match.group(1)) / 100})"
    raise InputError(f"unknown frame statistic {stat!r}: use {', '.join(PROB_STATS)} or pNN (a percentile)")


def prob_stat_columns(classes: Sequence[str], stats: Sequence[str] = PROB_STATS, bins: int = 10) -> list[str]:
    """Column names of :func:`prob_stats`, class-major: ``blank_mean, ..., blank_h0, ..., bird_mean, ...``."""
    return [f"{class_slug(c)}_{name}" for c in classes
            for name in [*stats, *(f"h{i}" for i in range(bins))]]


def prob_stats(probs: np.ndarray, valid: np.ndarray, stats: Sequence[str] = PROB_STATS, bins: int = 10,
               con=None) -> np.ndarray:
    """Per-class statistics and histograms of frame probabilities over each video's valid frames.

    Args:
        probs: (B, F, C) probabilities in [0, 1].
        valid: (B, F) bool; invalid slots are never read into a statistic.
        stats: statistic names (see :data:`PROB_STATS`; ``pNN`` is any percentile).
        bins: equal-width histogram bins on [0, 1]; the last bin includes 1.0 (as ``numpy.histogram``).
        con: a DuckDB connection to compute on (default: a new in-memory one).

    Returns:
        (B, C * (len(stats) + bins)) float32, columns as :func:`prob_stat_columns`. A video without
        valid frames gets NaN.
    """
    import duckdb
    import polars as pl

    n_videos, _, n_classes = probs.shape
    width = len(stats) + bins
    out = np.full((n_videos, n_classes, width), np.nan, dtype=np.float32)
    video, frame = np.nonzero(valid)
    if len(video) == 0:
        return out.reshape(n_videos, -1)
    values = probs[video, frame].astype(np.float64)          # (n valid frames, C): only valid frames
    long = pl.DataFrame({
        "b": np.repeat(video.astype(np.int32), n_classes),
        "c": np.tile(np.arange(n_classes, dtype=np.int32), len(video)),
        "p": values.reshape(-1),
    })
    hist = ", ".join(f"count(*) FILTER (WHERE bin = {i}) / count(*)" for i in range(bins))
    query = (f"SELECT b, c, {', '.join(_stat_sql(s) for s in stats)}{', ' if bins else ''}{hist} "
             f"FROM (SELECT b, c, p, least(floor(p * {bins}), {bins - 1}) AS bin FROM long) GROUP BY b, c")
    own = con is None
    con = duckdb.connect() if own else con
    try:
        with registered(con, long=long):
            result = con.execute(query).fetchnumpy()
    finally:
        if own:
            con.close()
    columns = list(result)
    b, c = result[columns[0]], result[columns[1]]
    for k, column in enumerate(columns[2:]):
        out[b, c, k] = np.asarray(result[column], dtype=np.float64)
    return out.reshape(n_videos, -1)


def pool_columns(dims: int, pools: Sequence[str] = EMBEDDING_POOLS,
                 stage_dims: Sequence[int] | None = None) -> list[str]:
    """Column names of :func:`pool_embeddings`: ``max_0000`` or, per stage, ``max_s1_0000``."""
    if stage_dims:
        if sum(stage_dims) != dims:
            raise ValueError(f"stage dims {list(stage_dims)} do not add up to the array's {dims} dimensions")
        names = [f"s{s}_{j:04d}" for s, d in enumerate(stage_dims, start=1) for j in range(d)]
    else:
        names = [f"{j:04d}" for j in range(dims)]
    return [f"{pool}_{name}" for pool in pools for name in names]


def pool_embeddings(values: np.ndarray, valid: np.ndarray, pools: Sequence[str] = EMBEDDING_POOLS,
                    videos_per_step: int = 16, out: np.ndarray | None = None) -> np.ndarray:
    """Mean / max / min / max-min of each dimension over each video's valid frames.

    Args:
        values: (B, F, D) embeddings (any float dtype; reduced in float32).
        valid: (B, F) bool.
        pools: any of ``mean``, ``max``, ``min``, ``range`` (max - min), in output order.
        videos_per_step: videos converted and reduced at a time: small steps keep the float32
            copy in the CPU cache (and out of fresh pages), which is most of the speed.
        out: a (B, len(pools) * D) float32 array (or view) to write into, instead of a new one.

    Returns:
        (B, len(pools) * D) float32, pool-major as :func:`pool_columns`. A video without valid
        frames gets NaN.
    """
    unknown = set(pools) - set(EMBEDDING_POOLS)
    if unknown:
        raise InputError(f"unknown pooling {sorted(unknown)}: use {', '.join(EMBEDDING_POOLS)}")
    n_videos, _, dims = values.shape
    if out is None:
        out = np.empty((n_videos, len(pools) * dims), dtype=np.float32)
    counts = valid.sum(axis=1)
    with torch_threads(1):  # the steps are too small to share, and idle OpenMP threads spin
        for lo in range(0, n_videos, videos_per_step):
            hi = min(lo + videos_per_step, n_videos)
            pooled = _pool_step(as_float32(values[lo:hi]), valid[lo:hi], counts[lo:hi], pools)
            for i, pool in enumerate(pools):
                out[lo:hi, i * dims:(i + 1) * dims] = pooled[pool]
    out[counts == 0] = np.nan
    return out


def _pool_step(x: np.ndarray, valid: np.ndarray, counts: np.ndarray, pools: Sequence[str]) -> dict[str, np.ndarray]:
    """Pools of a float32 block ``x`` (modified in place: invalid slots are overwritten)."""
    invalid = ~valid
    padded = bool(invalid.any())
    result: dict[str, np.ndarray] = {}
    if padded:
        x[invalid] = 0.0                            # garbage (even NaN/inf) must not reach the sums
    if "mean" in pools:
        with np.errstate(invalid="ignore", divide="ignore"):
            result["mean"] = np.matmul(valid.astype(np.float32)[:, None, :], x)[:, 0] / counts[:, None]
    if "max" in pools or "range" in pools:
        if padded:
            x[invalid] = -np.inf
        result["max"] = x.max(axis=1)
    if "min" in pools or "range" in pools:
        if padded:
            x[invalid] = np.inf
        result["min"] = x.min(axis=1)
    if "range" in pools:
        result["range"] = result["max"] - result["min"]
    return result


def as_float32(values: np.ndarray) -> np.ndarray:
    """A float32 copy of ``values``; float16 goes through torch, whose F16C conversion is ~10x NumPy's."""
    if values.dtype == np.float16:
        import torch

        return torch.from_numpy(np.ascontiguousarray(values)).to(torch.float32).numpy()
    return values.astype(np.float32)


def frame_moments(blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std (population) over the valid frames of ``(values, valid)`` blocks.

    Returns:
        (mean, std) float32 (D,); std is floored at 1e-6 so it can divide.
    """
    total = squares = None
    count = 0
    for values, valid in blocks:
        frames = as_float32(values[valid]).astype(np.float64)
        if total is None:
            total = np.zeros(values.shape[-1])
            squares = np.zeros(values.shape[-1])
        total += frames.sum(axis=0)
        squares += np.square(frames).sum(axis=0)
        count += len(frames)
    if not count:
        raise ValueError("no valid frames to standardise on")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)
