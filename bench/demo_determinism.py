"""Demo determinism under load: the same small collection, made many times with 1 and 2 workers
while another process keeps a core busy, must give the same bytes every time.

Each round makes the collection in a fresh directory (workers alternating 1, 2), hashes every
file it wrote (clips, label tables, clips.csv) and counts, per file, the distinct versions seen
over all rounds. A background process runs a NumPy loop the whole time (``--no-load`` turns it
off), so the workers are preempted at different points in every round.

``--mbtree`` encodes as the generator did before issue 13 (x264's MB-tree on): then the clips'
bytes change from round to round, whatever the number of workers.

    python bench/demo_determinism.py                  # 40 rounds, one busy core
    python bench/demo_determinism.py --rounds 10 --mbtree
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import tempfile
import time
from collections import defaultdict
from pathlib import Path

#: The collection of the determinism tests (tests/test_demo_generate.py: TINY).
TINY = dict(seed=5, n_train=12, n_test=2, duration=1.0, fps=6, scale=0.15, n_cameras=2, min_per_class=0)
TABLES = ("train_labels.csv", "test_labels.csv", "submission_format.csv", "clips.csv")


def _busy(stop) -> None:
    """Keep one core busy with NumPy work until ``stop`` is set."""
    import numpy as np

    a = np.random.default_rng(0).random((300, 300))
    while not stop.is_set():
        a = np.tanh(a @ a.T / 300)


def _digests(manifest) -> dict[str, str]:
    files = [*manifest.train_clips, *manifest.test_clips, *(manifest.directory / name for name in TABLES)]
    return {str(p.relative_to(manifest.directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="collections to make (workers alternate 1, 2)")
    parser.add_argument("--no-load", action="store_true", help="no busy background process")
    parser.add_argument("--mbtree", action="store_true", help="encode with x264's MB-tree on (before issue 13)")
    args = parser.parse_args()

    import jungle.demo.generate as generate
    from jungle.demo.config import DemoConfig

    x264 = {**generate.X264_OPTIONS, "x264-params": "mbtree=1"} if args.mbtree else generate.X264_OPTIONS
    config = DemoConfig(**TINY)
    stop = mp.Event()
    load = None if args.no_load else mp.Process(target=_busy, args=(stop,), daemon=True)
    if load:
        load.start()
    versions: dict[str, set[str]] = defaultdict(set)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.rounds):
                manifest = generate.make_demo(Path(tmp) / f"round{i}", config, workers=1 + i % 2, x264=x264)
                for name, digest in _digests(manifest).items():
                    versions[name].add(digest)
    finally:
        stop.set()
        if load:
            load.join()
    varied = sorted(name for name, seen in versions.items() if len(seen) > 1)
    print(f"{args.rounds} rounds (workers 1 and 2), {'no load' if args.no_load else 'one core busy'}, "
          f"x264 {x264}, {time.perf_counter() - started:.0f} s")
    print(f"files: {len(versions)}; with more than one version: {len(varied)}"
          + "".join(f"\n  {name}: {len(versions[name])} versions" for name in varied))


if __name__ == "__main__":
    main()
