"""Recipe quality on the realistic benchmark (bench/realistic.py), from scratch, through jungle's library API.

Makes (or reuses) the collection, then in a fresh workspace: ingest train/ with its labels and 5
seeded folds and test/ without labels, featurize (lite0 with stage features, plus any further
``--encoders``), aggregate the default pipeline's sets, stack every recipe with the same seeded
search, predict the test clips with each model and score them against ``test_labels.csv``
(never seen before scoring: no tuning on test). With several encoders, the ``all`` recipe is
stacked again after each further encoder's sets are built (``all +lite1``): what it adds.

Prints one table: recipe, test log loss (mean over classes of the binary log loss), accuracy
(top class), macro F1, mean ROC AUC (classes with positives and negatives in test), seconds; and
with ``--demo`` the same for the demo collection out of fold (``jungle demo``'s run).

    python bench/quality.py                                 # 490 train / 210 test clips
    python bench/quality.py --encoders lite0,lite1 --demo
    python bench/quality.py --train 120 --test 60 --trials 2   # a quick look
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realistic  # noqa: E402  (bench/realistic.py, beside this file)

RECIPES = ("metadata-only", "min-max", "first-place", "third-place", "all")
SETS = ("meta", "hist_{e}", "minmax_{e}", "minmax_stages_{e}", "attn_{e}")
COLUMNS = ("recipe", "test_log_loss", "accuracy", "macro_f1", "mean_auc", "seconds")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _labels(path: Path) -> tuple[list[str], np.ndarray]:
    import polars as pl

    from jungle.classes import PRIMATRIX_CLASSES

    table = pl.read_csv(path).sort("filename")
    return table["filename"].to_list(), table.select(list(PRIMATRIX_CLASSES)).to_numpy().astype(float)


def _scores(Y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    from jungle.meta.metrics import evaluate

    return evaluate(Y, P).summary()


def _test_scores(submission: Path, test_labels: Path) -> dict[str, float]:
    """Metrics of a submission CSV against the collection's test answers (rows matched by file name)."""
    import polars as pl

    from jungle.classes import PRIMATRIX_CLASSES

    names, Y = _labels(test_labels)
    predicted = pl.read_csv(submission).sort("filename")
    if predicted["filename"].to_list() != names:
        raise SystemExit(f"{submission} does not hold exactly the test clips of {test_labels}")
    return _scores(Y, predicted.select(list(PRIMATRIX_CLASSES)).to_numpy())


def _prior_scores(train_labels: Path, test_labels: Path) -> dict[str, float]:
    """The class-prior baseline: every test clip gets the training share of every class."""
    _, Y_train = _labels(train_labels)
    _, Y = _labels(test_labels)
    prior = np.clip(Y_train.mean(axis=0), 1e-4, 1 - 1e-4)
    return _scores(Y, np.tile(prior, (len(Y), 1)))


def _pipeline(workspace, collection: Path, encoders: list[str], frames: str, folds: int, seed: int,
              timings: dict) -> None:
    """Ingest, featurize every encoder and aggregate the first encoder's sets."""
    from jungle.features.featurize.config import FeaturizeConfig
    from jungle.features.featurize.runner import featurize
    from jungle.features.models.encoders import EncoderConfig
    from jungle.ingest.folds import FoldsConfig
    from jungle.ingest.labels import LabelsConfig
    from jungle.ingest.run import IngestConfig, ingest
    from jungle.pipeline import ensure_feature_sets

    started = time.monotonic()
    ingest(workspace, collection / "train", IngestConfig(),
           labels=LabelsConfig(path=str(collection / "train_labels.csv")), folds=FoldsConfig(k=folds, seed=seed))
    ingest(workspace, collection / "test", IngestConfig())
    timings["ingest"] = time.monotonic() - started
    started = time.monotonic()
    config = FeaturizeConfig(encoders=tuple(EncoderConfig(name=e, stages="all") for e in encoders), frames=frames)
    featurize(workspace, config, progress=True)
    timings["featurize"] = time.monotonic() - started
    started = time.monotonic()
    ensure_feature_sets(workspace, [s.format(e=encoders[0]) for s in SETS], frames=frames, log=_say)
    timings["aggregate"] = time.monotonic() - started


def _stack_and_score(workspace, recipe: str, encoder: str, trials: int, seed: int, out: Path,
                     test_labels: Path) -> dict[str, float]:
    from jungle.meta.predict import predict
    from jungle.meta.stack import StackConfig, stack
    from jungle.meta.tuning import TuneConfig

    tune = TuneConfig(trials=trials, seed=seed, max_rounds=300, early_stopping_rounds=20)
    result = stack(workspace, StackConfig(recipe=recipe, encoder=encoder, tune=tune, pca=64), log=_say)
    predict(workspace, model=result.model_id, out=out)
    return _test_scores(out, test_labels)


def run_benchmark(args) -> list[tuple]:
    """Every row of the benchmark's table (see the module docstring)."""
    from jungle.features.aggregates.aggregate import AggregateConfig, aggregate
    from jungle.store.workspace import Workspace

    started = time.monotonic()
    config = realistic.BenchConfig(seed=args.seed, n_train=args.train, n_test=args.test)
    record = realistic.make_collection(args.collection, config, workers=args.workers)
    _say(f"collection: {record['clips']} clips in {args.collection} (made in {record['seconds']} s)")
    collection = Path(args.collection).resolve()
    shutil.rmtree(args.workspace, ignore_errors=True)  # from scratch
    workspace = Workspace.resolve(args.workspace)
    timings: dict[str, float] = {"collection": time.monotonic() - started}
    encoders = args.encoders.split(",")
    _pipeline(workspace, collection, encoders, args.frames, args.folds, args.seed, timings)
    prior = _prior_scores(collection / "train_labels.csv", collection / "test_labels.csv")
    rows = [("class prior", *prior.values(), 0.0)]
    for recipe in RECIPES:
        began = time.monotonic()
        scores = _stack_and_score(workspace, recipe, encoders[0], args.trials, args.seed,
                                  workspace.root / f"submission-{recipe}.csv", collection / "test_labels.csv")
        rows.append((recipe, *scores.values(), time.monotonic() - began))
    for extra in encoders[1:]:
        began = time.monotonic()
        aggregate(workspace, AggregateConfig(sources=(extra,), kinds=("frame-head", "stats", "minmax", "attention")))
        scores = _stack_and_score(workspace, "all", encoders[0], args.trials, args.seed,
                                  workspace.root / f"submission-all-{extra}.csv", collection / "test_labels.csv")
        rows.append((f"all +{extra}", *scores.values(), time.monotonic() - began))
    timings["total"] = time.monotonic() - started
    _say("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    return rows


def demo_rows(args) -> list[tuple]:
    """The demo collection's recipes, out of fold, with the mean AUC from the stored OOF predictions."""
    from jungle.demo.run import DemoRunConfig, run_demo
    from jungle.store.db import connect
    from jungle.store.workspace import Workspace

    shutil.rmtree(args.demo_workspace, ignore_errors=True)
    workspace = Workspace.resolve(args.demo_workspace)
    result = run_demo(workspace, DemoRunConfig(directory=Path(args.demo_collection)), log=_say)
    rows = [("demo: class prior (OOF)", result.prior_log_loss, None, None, None, 0.0)]
    with connect(workspace, read_only=True) as con:
        for score in result.scores:
            cells = con.execute(
                "SELECT p.video_id, p.class, p.probability, l.value FROM predictions p JOIN labels l "
                "ON l.video_id = p.video_id AND l.class = p.class WHERE p.model_id = ? AND p.kind = 'oof' "
                "ORDER BY p.video_id, p.class", [score.model_id]).fetchall()
            videos = sorted({c[0] for c in cells})
            classes = sorted({c[1] for c in cells})
            P = np.array([c[2] for c in cells]).reshape(len(videos), len(classes))
            Y = np.array([c[3] for c in cells], float).reshape(len(videos), len(classes))
            summary = _scores(Y, P)
            rows.append((f"demo: {score.recipe} (OOF)", score.log_loss, score.accuracy, score.macro_f1,
                         summary["mean_auc"], score.seconds))
    return rows


def _render(rows: list[tuple]) -> str:
    """A Markdown table: metrics to 4 decimals, seconds whole."""
    def cell(value, column: str) -> str:
        if value is None:
            return "-"
        if isinstance(value, str):
            return value
        return f"{value:.0f}" if column == "seconds" else f"{value:.4f}"

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, COLUMNS)) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, default=Path("bench-realistic"))
    parser.add_argument("--workspace", type=Path, default=Path("bench-realistic-ws"))
    parser.add_argument("--train", type=int, default=490)
    parser.add_argument("--test", type=int, default=210)
    parser.add_argument("--encoders", default="lite0", help="comma-separated; the first fills the recipes")
    parser.add_argument("--frames", default="uniform:16")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes making the collection")
    parser.add_argument("--demo", action="store_true", help="also the demo collection, out of fold")
    parser.add_argument("--demo-collection", type=Path, default=Path("bench-demo"))
    parser.add_argument("--demo-workspace", type=Path, default=Path("bench-demo-ws"))
    args = parser.parse_args()
    rows = run_benchmark(args)
    if args.demo:
        rows += demo_rows(args)
    print(_render(rows))


if __name__ == "__main__":
    main()
