"""Aggregation throughput: min-max pooling of stored embeddings vs a plain NumPy reduction.

Builds a real workspace with one frame-level set of N videos x 32 frames x 1,280 float16
embeddings (Zarr, chunked by 64 videos, Blosc/zstd as ``jungle featurize`` writes them; 10% of
the videos padded, with garbage in the invalid slots), then, each in a fresh process so that peak
RSS is its own:

(imports are done before the clock starts; peak RSS is shown with the RSS after imports)

- ``numpy``: read the same arrays block by block with Zarr and reduce them with NumPy
  (float32 mean / max / min / max - min over frames, no mask, nothing written): the baseline;
- ``jungle``: ``aggregate(kinds=('minmax',))``: masked pooling, the 5,121-column Parquet table
  written and registered (``minmax_<set>``), exactly what ``jungle aggregate --kind minmax`` runs.

Run for 10,000 and 20,000 videos (the smaller set is the first half of the larger one), it
prints videos/s, GB/s read (uncompressed float16 and bytes on disk), peak RSS, and the ratio
jungle/numpy (target >= 0.8), and shows peak RSS does not grow with the number of videos.

    python bench/aggregate.py                       # 10k and 20k videos, in a temporary folder
    python bench/aggregate.py --videos 2000 --keep --dir /tmp/aggbench
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, ratio  # bench/common.py

FRAMES, DIMS, CHUNK, BLOCK = 32, 1280, 64, 256


def _set_name(n: int) -> str:
    return f"bench{n // 1000}k" if n % 1000 == 0 else f"bench{n}"


def build(root: Path, sizes: list[int], seed: int = 0) -> None:
    """One Zarr group of max(sizes) videos; a registered frame-level set per size over its first rows."""
    from jungle.store import arrays, registry
    from jungle.store.db import connect
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(root)
    largest = max(sizes)
    rng = np.random.default_rng(seed)
    with connect(ws) as con:
        if con.execute("SELECT count(*) FROM feature_sets").fetchone()[0]:
            return
        full, _ = registry.register(con, "benchdata", "frames", {"bench": largest}, [], dims=DIMS)
        group = arrays.create_group(ws, full, largest, FRAMES, {
            "embedding": arrays.ArraySpec((DIMS,), "float16"), "valid": arrays.ArraySpec((), "bool", False),
            "timestamps": arrays.ArraySpec((), "float32", float("nan"))}, block=CHUNK)
        n_valid = np.where(rng.random(largest) < 0.1, rng.integers(20, FRAMES, largest), FRAMES)
        started = time.perf_counter()
        for lo, hi in arrays.block_ranges(largest, CHUNK):
            values = np.abs(rng.standard_normal((hi - lo, FRAMES, DIMS), dtype=np.float32)).astype(np.float16)
            valid = np.arange(FRAMES)[None, :] < n_valid[lo:hi, None]
            values[~valid] = np.float16(60000)
            arrays.write_rows(group, lo, {"embedding": values, "valid": valid,
                                          "timestamps": np.tile(np.arange(FRAMES, dtype=np.float32), (hi - lo, 1))})
        print(f"wrote {largest} videos in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        ids = [f"{i:016x}" for i in range(largest)]
        for n in sizes:
            fs, _ = registry.register(con, _set_name(n), "frames", {"bench": n}, [], location=full.location, dims=DIMS)
            con.executemany("INSERT INTO feature_rows VALUES (?, ?, ?, ?, 'done', NULL, ?)",
                            [[fs.name, fs.version, ids[i], i, int(n_valid[i])] for i in range(n)])
            registry.mark_complete(con, fs, n)


def child_numpy(root: Path, n: int) -> dict:
    import zarr

    yield  # imports done: the timed part starts
    group = zarr.open_group(str(root / "features.zarr/benchdata/v1"), mode="r")
    array = group["embedding"]
    checksum = 0.0
    for lo in range(0, n, BLOCK):
        x = array[lo:min(lo + BLOCK, n)].astype(np.float32)
        top, bottom = x.max(axis=1), x.min(axis=1)
        pooled = np.concatenate([x.mean(axis=1), top, bottom, top - bottom], axis=1)
        checksum += float(pooled[:, 0].sum())
    yield {"checksum": checksum}


def child_jungle(root: Path, n: int) -> dict:
    import pyarrow.parquet  # noqa: F401  (imports before the clock starts)
    import zarr  # noqa: F401

    from jungle.features.aggregates.aggregate import AggregateConfig, PoolingConfig, aggregate
    from jungle.store.workspace import Workspace

    config = AggregateConfig(sources=(_set_name(n),), kinds=("minmax",), pooling=PoolingConfig(stages=False),
                             videos_per_block=BLOCK)
    yield  # imports done: the timed part starts
    results = aggregate(Workspace.resolve(root), config)
    yield {"rows": results[0].row_count, "computed": sorted(results.computed)}


def run_child(kind: str, root: Path, n: int) -> dict:
    if kind == "jungle":  # forget the previous run's table, so that it is computed again
        from jungle.store.db import connect
        from jungle.store.workspace import Workspace

        with connect(Workspace.resolve(root)) as con:
            con.execute("DELETE FROM feature_sets WHERE name LIKE 'minmax_%'")
        shutil.rmtree(root / "tables", ignore_errors=True)
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--dir", str(root), "--videos", str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", default="10000,20000", help="comma-separated collection sizes")
    parser.add_argument("--dir", type=Path, default=None, help="workspace folder (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    parser.add_argument("--child", choices=["numpy", "jungle"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(v) for v in args.videos.split(",")]

    if args.child:
        steps = (child_numpy if args.child == "numpy" else child_jungle)(args.dir, sizes[0])
        next(steps)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started, cpu = time.perf_counter(), time.process_time()
        info = next(steps)
        info["seconds"] = time.perf_counter() - started
        info["cpu_seconds"] = time.process_time() - cpu
        info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        info["import_rss_mb"] = base_rss
        print(json.dumps(info))
        return

    root = args.dir or Path(tempfile.mkdtemp(prefix="jungle-aggbench-"))
    try:
        build(root, sizes)
        disk = sum(p.stat().st_size for p in (root / "features.zarr/benchdata/v1/embedding").rglob("*") if p.is_file())
        largest = max(sizes)
        print(f"{machine()}; embeddings {FRAMES} frames x "
              f"{DIMS} float16, {disk / largest / 1e3:.0f} kB/video on disk ({FRAMES * DIMS * 2 / 1e3:.0f} kB raw)")
        header = f"{'videos':>7} {'run':>7} {'seconds':>8} {'videos/s':>9} {'GB/s raw':>9} {'GB/s disk':>10} " \
                 f"{'peak RSS MB':>12} {'after imports':>14} {'cpu s':>7} {'vs numpy':>9}"
        print(header)
        for n in sizes:
            best = {}
            for _ in range(args.repeat):
                for kind in ("numpy", "jungle"):
                    info = run_child(kind, root, n)
                    if kind not in best or info["seconds"] < best[kind]["seconds"]:
                        best[kind] = info
            raw = n * FRAMES * (DIMS * 2 + 1)
            on_disk = disk * n / largest
            for kind in ("numpy", "jungle"):
                info = best[kind]
                print(f"{n:>7} {kind:>7} {info['seconds']:>8.2f} {n / info['seconds']:>9.0f} "
                      f"{raw / info['seconds'] / 1e9:>9.2f} {on_disk / info['seconds'] / 1e9:>10.2f} "
                      f"{info['peak_rss_mb']:>12.0f} {info['import_rss_mb']:>14.0f} {info['cpu_seconds']:>7.1f} "
                      f"{ratio(best['numpy']['seconds'], info['seconds']):>9}")
            assert best["jungle"]["rows"] == n, best["jungle"]
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
