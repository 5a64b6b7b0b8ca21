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

**From zero labels** (``--zero-start``): a workspace of the realistic benchmark's clips with no labels
(``bench/zeroshot.py`` makes one) and its zero-shot model. The reviewer starts with nothing: round 0's
probabilities are the zero-shot model's (``jungle predict --model zero-shot``). Each round they label
``--k`` clips of the pool (the ``--split``'s training clips; its test clips are scored) chosen by the
review page's queues (``queue``: half from the "likely X" queues, one class after another, half from
the uncertainty queue), by the uncertainty queue alone, or at random; then the re-fit over the
zero-shot evidence and the crop embeddings (``--features``) is fitted on those labels, and, as the
review page's retrain does, whichever of the re-fit and the zero-shot model scores better out of fold
on the labels so far gives the next probabilities. Answers come from the collection's ``clips.csv``.
It prints the curves, how many labels each strategy needs to reach random labelling's final log loss
(target: the queue with at least 40% fewer), and to reach the quality of a re-fit on every pool label.

    python bench/active.py --workspace jungle-workspace            # after `jungle demo`
    python bench/active.py --workspace ws --png active.png --repeats 3
    python bench/active.py --zero-start --workspace bench-realistic-zeroshot-ws --collection bench-realistic
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jungle.meta.metrics import competition_log_loss
from jungle.meta.models.linear import Standardiser
from jungle.review.queue import QueueRequest, queue_order, uncertainty_scores
from jungle.review.retrain import NotEnoughLabels, RetrainConfig, fit_predict, load_features, load_labels
from jungle.store.db import connect
from jungle.store.workspace import Workspace


def prepare(X: np.ndarray, components: int = 128, seed: int = 0) -> np.ndarray:
    """The re-fit's preparation of a feature matrix (median fill, standardisation, principal components)."""
    return Standardiser.fit(X, components, seed).transform(X)


def load_collection(root: str, model: str):
    """(prepared features, labels) of the workspace's labelled clips with the model's features."""
    ws = Workspace.resolve(root)
    loaded, video_ids, matrices = load_features(ws, model)
    with connect(ws, read_only=True) as con:
        Y, labelled = load_labels(con, video_ids, loaded.classes)
    X = np.concatenate(matrices, axis=1)
    return prepare(X)[labelled], Y[labelled]


# --------------------------------------------------------------------------- from zero labels
def load_zero_start(root: str, collection: str, split: str, features: list[str]) -> dict:
    """The clips of a workspace without labels: prepared re-fit features, the zero-shot model's
    probabilities, the collection's answers, and the split's pool (training) and test clips."""
    import polars as pl

    from jungle.meta.dataset import feature_matrix
    from jungle.meta.model_io import load_model
    from jungle.pipeline import zero_shot_model
    from jungle.store import registry
    from jungle.store.videos import read_videos

    ws = Workspace.resolve(root)
    built = zero_shot_model(ws)
    loaded, video_ids, matrices = load_features(ws, built.model_id)
    P0 = load_model(ws, built.model_id).predict_proba(matrices)
    with connect(ws, read_only=True) as con:
        sets = [registry.latest(con, name) for name in features]
        names = dict(read_videos(con, ("video_id", "filename")))
    X = feature_matrix(ws, sets, video_ids)[0]
    clips = pl.read_csv(f"{collection}/clips.csv").select(["filename", "label", f"{split}_split"])
    side = dict(zip(clips["filename"], clips[f"{split}_split"].fill_null("")))
    label = dict(zip(clips["filename"], clips["label"]))
    files = [names[v] for v in video_ids]
    classes = loaded.classes
    Y = np.array([[int(label[f] == c) for c in classes] for f in files], dtype=np.int8)
    pool = np.array([i for i, f in enumerate(files) if side[f] == "train"])
    test = np.array([i for i, f in enumerate(files) if side[f] == "test"])
    return {"Z": prepare(X), "Y": Y, "P0": P0, "pool": pool, "test": test, "classes": classes,
            "zero_shot": built.model_id}


def _likely_round_robin(P: np.ndarray, known: np.ndarray, classes: list[str], k: int, start: int) -> list[int]:
    """Up to ``k`` unlabelled clips: the most probable one of each class but blank in turn (the page's
    "likely X" queues, one class after another), starting at class ``start``."""
    chosen: list[int] = []
    animal = [j for j, c in enumerate(classes) if c != "blank"]
    taken = known.copy()
    for step in range(len(animal) * k):
        if len(chosen) >= k or taken.all():
            break
        j = animal[(start + step) % len(animal)]
        order = np.argsort(-P[:, j], kind="stable")
        pick = next((int(i) for i in order if not taken[i]), None)
        if pick is not None:
            chosen.append(pick)
            taken[pick] = True
    return chosen


def simulate_from_zero(data: dict, strategy: str, k: int, rounds: int, seed: int,
                       config: RetrainConfig) -> tuple[list[int], list[float], list[str]]:
    """Per round, starting from no label: labels used, test log loss, and the model whose probabilities
    gave that loss (round 0: the zero-shot model; later, the better of the re-fit and the zero-shot model)."""
    rng = np.random.default_rng(seed)
    Z, Y, P0, pool, test = data["Z"], data["Y"], data["P0"], data["pool"], data["test"]
    rows = np.concatenate([pool, test])
    known = np.zeros(len(pool), dtype=bool)
    P = P0[rows]
    used, losses, models = [], [], ["zero-shot"]      # models[i]: the model whose probabilities gave losses[i]
    for round_ in range(rounds + 1):
        used.append(int(known.sum()))
        losses.append(competition_log_loss(Y[test], P[len(pool):]))
        if round_ == rounds or known.all():
            break
        P_pool = P[:len(pool)]
        if strategy == "random":
            chosen = list(rng.permutation(np.flatnonzero(~known))[:k])
        else:
            likely = _likely_round_robin(P_pool, known, data["classes"], k // 2 if strategy == "queue" else 0,
                                         round_)
            mask = known.copy()
            mask[likely] = True
            order, _ = queue_order(QueueRequest("uncertainty"), P_pool, Y[pool], mask, [None] * len(pool),
                                   [0.0] * len(pool), [str(i) for i in range(len(pool))])
            chosen = likely + [int(i) for i in order[: k - len(likely)]]
        known[chosen] = True
        labelled = np.concatenate([known, np.zeros(len(test), dtype=bool)])
        try:
            fit = fit_predict(Z[rows], Y[rows], labelled, config)
        except NotEnoughLabels:
            models.append(models[-1])                    # too few labels to re-fit: the same model goes on
            continue
        lab = np.flatnonzero(labelled)
        zero_loss = competition_log_loss(Y[rows][lab], P0[rows][lab])
        better = fit.oof_log_loss < zero_loss          # the review page's retrain: the better one is current
        P = fit.P if better else P0[rows]
        models.append("re-fit" if better else "zero-shot")
    return used, losses, models


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
    parser.add_argument("--zero-start", action="store_true", help="start from no label, on the zero-shot model")
    parser.add_argument("--collection", help="with --zero-start: the realistic collection (its clips.csv answers)")
    parser.add_argument("--split", default="photo", help="with --zero-start: the split whose train clips are the pool")
    parser.add_argument("--features", default="zeroshot_lite0,minmax_crops_lite0",
                        help="with --zero-start: the video-level sets the re-fit reads")
    args = parser.parse_args()
    config = RetrainConfig(folds=3)
    if args.zero_start:
        return zero_start(args, config)

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


def zero_start(args, config: RetrainConfig) -> None:
    """The --zero-start run: queue, uncertainty and random from no label (see the module docstring)."""
    data = load_zero_start(args.workspace, args.collection, args.split, args.features.split(","))
    print(f"from zero labels: pool {len(data['pool'])} clips ({args.split} split's training clips), test "
          f"{len(data['test'])}, {data['Z'].shape[1]} prepared features; round 0: zero-shot model {data['zero_shot']}")
    curves, models = {}, {}
    for strategy in ("queue", "uncertainty", "random"):
        runs = [simulate_from_zero(data, strategy, args.k, args.rounds, seed, config) for seed in range(args.repeats)]
        steps = min(len(r[0]) for r in runs)
        curves[strategy] = (runs[0][0][:steps], list(np.mean([r[1][:steps] for r in runs], axis=0)))
        models[strategy] = runs[0][2]
    print(f"{'labels':>7}  {'queue':>8}  {'uncertainty':>11}  {'random':>8}  model (queue / random)")
    for i, n in enumerate(curves["queue"][0]):
        print(f"{n:>7}  {curves['queue'][1][i]:>8.4f}  {curves['uncertainty'][1][i]:>11.4f}  "
              f"{curves['random'][1][i]:>8.4f}  {models['queue'][i]} / {models['random'][i]}")
    pool, rows = data["pool"], np.concatenate([data["pool"], data["test"]])
    full = fit_predict(data["Z"][rows], data["Y"][rows], np.arange(len(rows)) < len(pool), config)
    full_loss = competition_log_loss(data["Y"][data["test"]], full.P[len(pool):])
    final_n, final_loss = curves["random"][0][-1], curves["random"][1][-1]
    print(f"zero-shot alone: {curves['random'][1][0]:.4f}; a re-fit on all {len(pool)} pool labels: {full_loss:.4f}; "
          f"random's final ({final_n} labels): {final_loss:.4f}")
    for strategy in ("queue", "uncertainty"):
        needed = labels_to_reach(*curves[strategy], final_loss)
        reach_full = labels_to_reach(*curves[strategy], full_loss)
        saving = "never" if needed is None else f"{needed} labels, {1 - needed / final_n:.0%} fewer"
        print(f"{strategy}: reaches random's final log loss with {saving} (target: 40% fewer); the all-label "
              f"re-fit's with {reach_full if reach_full is not None else 'never within the rounds'}")
    plot(args.png, curves, f"from zero labels: {len(pool)} pool clips, +{args.k} per round, {args.repeats} runs")
    print(f"curve: {args.png}")


if __name__ == "__main__":
    main()
