"""Benchmark of the level-2 search: worker processes and pruning, on synthetic stacked features.

Prints, for one synthetic problem (default 20,000 videos x 1,000 features, a few informative):

* the study's wall time and best CV log loss with 1, 2 and 4 worker processes (same trials,
  pruning on), as ratios against 1 worker;
* the same study with and without pruning (1 worker): trees built per trial, wall time and the
  best log loss, as ratios against the unpruned study.

The first ``TPESampler`` trials are random draws from the seed, so with ``--trials`` at most 10
the pruned and unpruned studies try the same parameters and differ only by what pruning stops.

    python bench/stack.py                       # the full size (15-40 minutes on 2 cores)
    python bench/stack.py --rows 4000 --features 200 --trials 6   # a quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic(rows: int, features: int, classes: int, informative: int, seed: int):
    """Features with a class signal in ``informative`` columns and noise elsewhere; labels; folds."""
    rng = np.random.default_rng(seed)
    y = rng.choice(classes, size=rows, p=np.linspace(2, 1, classes) / np.linspace(2, 1, classes).sum())
    X = rng.normal(size=(rows, features)).astype(np.float32)
    centres = rng.normal(scale=0.6, size=(classes, informative)).astype(np.float32)
    X[:, :informative] += centres[y]
    X[:, informative:2 * informative] += 0.5 * np.tanh(X[:, :informative]) * (y[:, None] % 2)  # interactions
    Y = np.eye(classes, dtype=np.float32)[y]
    folds = rng.permutation(np.arange(rows) % 3)
    return X, Y, folds


def run(X, Y, folds, storage: str, name: str, args, jobs: int, prune: bool, trials: int):
    from jungle.meta.tuning import TuneConfig, tune

    cfg = TuneConfig(trials=trials, seed=args.seed, jobs=jobs, prune=prune, max_rounds=args.max_rounds,
                     early_stopping_rounds=args.early_stopping, nthread=max(1, args.cores // jobs),
                     prune_percentile=args.prune_percentile, prune_startup_trials=args.prune_startup,
                     prune_warmup_rounds=args.prune_warmup, prune_interval=args.prune_interval)
    start = time.perf_counter()
    result = tune(X, Y, folds, "multiclass", cfg, storage, name, base={"max_bin": args.max_bin},
                  scratch=Path(tempfile.gettempdir()))
    return time.perf_counter() - start, result


def main() -> None:
    from jungle.meta.tuning import TuneConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=1_000)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--informative", type=int, default=20)
    parser.add_argument("--trials", type=int, default=6, help="trials of the pruning comparison (<= 10)")
    parser.add_argument("--worker-trials", type=int, default=2, help="trials of each worker-count study")
    parser.add_argument("--max-rounds", type=int, default=100)
    parser.add_argument("--early-stopping", type=int, default=10)
    parser.add_argument("--max-bin", type=int, default=32)
    defaults = TuneConfig()
    parser.add_argument("--prune-percentile", type=float, default=defaults.prune_percentile)
    parser.add_argument("--prune-startup", type=int, default=defaults.prune_startup_trials)
    parser.add_argument("--prune-warmup", type=int, default=defaults.prune_warmup_rounds)
    parser.add_argument("--prune-interval", type=int, default=defaults.prune_interval)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to time, comma-separated")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="XGBoost threads shared by the workers (each worker gets cores / workers, at least 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X, Y, folds = synthetic(args.rows, args.features, args.classes, args.informative, args.seed)
    print(f"data: {args.rows} rows x {args.features} features, {args.classes} classes, 3 folds; "
          f"{args.trials} trials, <= {args.max_rounds} rounds, early stopping {args.early_stopping}, "
          f"max_bin {args.max_bin}; {args.cores} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/bench.db"
        unpruned_wall, unpruned = run(X, Y, folds, storage, "no-pruning", args, 1, False, args.trials)
        pruned_wall, pruned = run(X, Y, folds, storage, "pruning", args, 1, True, args.trials)
        print("\nstudy       wall_s  best_log_loss  trees_per_trial  trials  pruned")
        for label, wall, result in (("no pruning", unpruned_wall, unpruned), ("pruning", pruned_wall, pruned)):
            print(f"{label:10s}  {wall:6.1f}  {result.value:13.5f}  {result.trees_per_trial:15.0f}  "
                  f"{result.trials:6d}  {result.pruned:6d}")
        cut = unpruned.trees_per_trial / max(pruned.trees_per_trial, 1)
        loss_ratio = pruned.value / unpruned.value
        print(f"pruning: trees per trial cut {cut:.2f}x (target >= 2), wall time {unpruned_wall / pruned_wall:.2f}x "
              f"faster, best log loss ratio {loss_ratio:.4f} (target <= 1.02): "
              f"{'PASS' if cut >= 2 and loss_ratio <= 1.02 else 'FAIL'}", flush=True)

        print(f"\n{args.worker_trials} trials, pruning on\nworkers  wall_s  best_log_loss  trials  pruned  time_vs_1",
              flush=True)
        base_time = None
        for jobs in (int(j) for j in args.workers.split(",")):
            wall, result = run(X, Y, folds, storage, f"workers-{jobs}", args, jobs, True, args.worker_trials)
            base_time = base_time or wall
            print(f"{jobs:7d}  {wall:6.1f}  {result.value:13.5f}  {result.trials:6d}  {result.pruned:6d}  "
                  f"{wall / base_time:9.2f}", flush=True)


if __name__ == "__main__":
    main()
