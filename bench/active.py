"""Active learning, measured: a simulated reviewer labelling by the uncertainty queue vs at random.

On a labelled collection (a workspace with a saved model, e.g. the demo's: its labelled clips and
the features of the model's feature sets), the clips are split into a test part and a pool. The
reviewer starts from ``--start`` random labels of the pool, then labels ``--k`` more per round,
chosen by the review queue's uncertainty rule (:mod:`jungle.review.queue`, entropy) or at
random; after every round the fast re-fit (:mod:`jungle.review.retrain`) is scored on the test
part (the competition's log loss). The curves are averaged over ``--repeats`` splits.

It prints both curves, how many labels the uncertainty queue needs to reach the random strategy's
final log loss (target: at least 30% fewer), writes a PNG, and times a re-fit plus re-rank of
``--timing-clips`` synthetic clips (target: under 60 s on 2 cores).

    python bench/active.py --workspace jungle-workspace            # after `jungle demo`
    python bench/active.py --workspace ws --png active.png --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jungle.meta.metrics import competition_log_loss
from jungle.review.queue import QueueRequest, queue_order, uncertainty_scores
from jungle.review.retrain import RetrainConfig, fit_predict, load_features, load_labels, prepare
from jungle.store.db import connect
from jungle.store.workspace import Workspace


def load_collection(root: str, model: str):
    """(prepared features, labels) of the workspace's labelled clips with the model's features."""
    ws = Workspace.resolve(root)
    loaded, video_ids, matrices = load_features(ws, model)
    with connect(ws, read_only=True) as con:
        Y, labelled = load_labels(con, video_ids, loaded.classes)
    X = np.concatenate(matrices, axis=1)
    return prepare(X)[labelled], Y[labelled]


def simulate(Z, Y, strategy: str, start: int, k: int, rounds: int, test_share: float, seed: int,
             config: RetrainConfig) -> tuple[list[int], list[float]]:
    """Labels used and test log loss after each round, for one split and one strategy."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(Z))
    n_test = int(round(test_share * len(Z)))
    test, pool = order[:n_test], order[n_test:]
    known = np.zeros(len(pool), dtype=bool)
    known[rng.choice(len(pool), size=start, replace=False)] = True
    used, losses = [], []
    for round_ in range(rounds + 1):
        rows = np.concatenate([pool, test])
        labelled = np.concatenate([known, np.zeros(len(test), dtype=bool)])
        fit = fit_predict(Z[rows], Y[rows], labelled, config)
        used.append(int(known.sum()))
        losses.append(competition_log_loss(Y[test], fit.P[len(pool):]))
        if round_ == rounds or known.all():
            break
        P_pool = fit.P[:len(pool)]
        if strategy == "uncertainty":
            chosen, _ = queue_order(QueueRequest("uncertainty"), P_pool, Y[pool], known,
                                    [None] * len(pool), [0.0] * len(pool), [str(i) for i in range(len(pool))])
        else:
            chosen = rng.permutation(np.flatnonzero(~known))
        known[chosen[:k]] = True
    return used, losses


def labels_to_reach(used: list[int], losses: list[float], target: float) -> int | None:
    """The fewest labels whose log loss is at or below ``target`` (None: never)."""
    return next((n for n, loss in zip(used, losses) if loss <= target + 1e-12), None)


def timing(clips: int, features: int, classes: int, labelled_share: float, config: RetrainConfig) -> dict:
    """Seconds to prepare, re-fit (OOF + unlabelled) and re-rank a synthetic collection."""
    rng = np.random.default_rng(0)
    y = rng.choice(classes, size=clips, p=np.linspace(3, 1, classes) / np.linspace(3, 1, classes).sum())
    X = rng.normal(size=(clips, features)).astype(np.float32)
    X[:, :classes] += 1.5 * np.eye(classes, dtype=np.float32)[y]
    Y = np.eye(classes, dtype=np.int8)[y]
    labelled = rng.random(clips) < labelled_share
    t0 = time.perf_counter()
    Z = prepare(X, config.components, config.seed)
    t1 = time.perf_counter()
    fit = fit_predict(Z, Y, labelled, config)
    t2 = time.perf_counter()
    queue_order(QueueRequest("uncertainty"), fit.P, Y, labelled, ["s"] * clips, [0.0] * clips,
                [f"{i:06d}" for i in range(clips)])
    uncertainty_scores(fit.P)
    t3 = time.perf_counter()
    return {"prepare": t1 - t0, "refit": t2 - t1, "rerank": t3 - t2, "total": t3 - t0,
            "labelled": int(labelled.sum()), "oof_log_loss": fit.oof_log_loss}


def plot(path: str, curves: dict[str, tuple[list[int], list[float]]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    for name, (used, losses) in curves.items():
        ax.plot(used, losses, marker="o", markersize=3, label=name)
    ax.set_xlabel("labelled clips")
    ax.set_ylabel("test log loss (mean binary, per class)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True,
                        help="a workspace with labels and a saved model (e.g. the demo's)")
    parser.add_argument("--model", default="latest")
    parser.add_argument("--start", type=int, default=20, help="random labels to start from")
    parser.add_argument("--k", type=int, default=20, help="labels per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--test-share", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3, help="random splits averaged")
    parser.add_argument("--png", default="active-learning.png")
    parser.add_argument("--timing-clips", type=int, default=5000)
    parser.add_argument("--timing-features", type=int, default=445, help="the demo's hist_lite0 + meta width")
    parser.add_argument("--timing-classes", type=int, default=24)
    args = parser.parse_args()
    config = RetrainConfig(folds=3)

    Z, Y = load_collection(args.workspace, args.model)
    print(f"collection: {len(Z)} labelled clips, {Y.shape[1]} classes, {Z.shape[1]} prepared features")
    curves = {}
    for strategy in ("uncertainty", "random"):
        runs = [simulate(Z, Y, strategy, args.start, args.k, args.rounds, args.test_share, seed, config)
                for seed in range(args.repeats)]
        steps = min(len(r[0]) for r in runs)
        curves[strategy] = (runs[0][0][:steps], list(np.mean([r[1][:steps] for r in runs], axis=0)))
    print(f"{'labels':>7}  {'uncertainty':>11}  {'random':>8}")
    for n, a, b in zip(curves["uncertainty"][0], curves["uncertainty"][1], curves["random"][1]):
        print(f"{n:>7}  {a:>11.4f}  {b:>8.4f}")
    final_n, final_loss = curves["random"][0][-1], curves["random"][1][-1]
    needed = labels_to_reach(*curves["uncertainty"], final_loss)
    if needed is None:
        print(f"uncertainty never reached random's final log loss {final_loss:.4f} ({final_n} labels)")
    else:
        saving = 1 - needed / final_n
        verdict = "meets" if saving >= 0.3 else "misses"
        print(f"uncertainty reaches random's final log loss {final_loss:.4f} ({final_n} labels) with {needed} "
              f"labels: {saving:.0%} fewer ({verdict} the 30% target)")
    plot(args.png, curves, f"{len(Z)} clips, start {args.start}, +{args.k} per round, {args.repeats} splits")
    print(f"curve: {args.png}")

    t = timing(args.timing_clips, args.timing_features, args.timing_classes, 0.4, RetrainConfig())
    print(f"re-fit + re-rank of {args.timing_clips} clips x {args.timing_features} features, {args.timing_classes} "
          f"classes, {t['labelled']} labelled: {t['total']:.1f} s (prepare {t['prepare']:.1f}, re-fit with 5-fold "
          f"OOF {t['refit']:.1f}, re-rank {t['rerank']:.2f}); target under 60 s")


if __name__ == "__main__":
    main()
