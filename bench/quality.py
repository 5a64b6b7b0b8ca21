"""Recipe quality on the realistic benchmark (bench/realistic.py), both splits, from scratch, against a crop baseline.

Makes (or reuses) the collection, then runs the README's commands in this process on fresh
workspaces: ``jungle ingest`` of the pool's clips (once), ``jungle featurize --stages all`` (once
per jungle variant), and for each split ``jungle labels`` (its training clips; the default folds),
``jungle aggregate``, then ``jungle stack --recipe R`` and ``jungle predict`` for every recipe. The
test clips of a split are unlabelled in its workspace and their answers are read only to score the
submissions: nothing is tuned on them. Options are jungle's defaults except the frames sampled
(``--frames``), the search (``--trials``, ``--pca 64``, 300 rounds) and the seeds.

``--before`` also runs jungle with the options in :data:`BEFORE` (detector-guided crops off:
whole frames only) on the same clips, so one run prints the before/after table.

The plain crop baseline (``bench/crop_baseline.py``: lite0, mean+max over 8 images per clip,
multinomial logistic regression with C chosen by cross-validation on the training clips) runs on
the same clips and splits, on 8 uniform whole frames, 8 motion crops, and both.

Prints, per split, one table: recipe, test log loss (mean over classes of the binary log loss),
accuracy (top class), accuracy on the clips with an animal, macro F1, mean ROC AUC (classes with
positives and negatives in test), seconds; and the time of every stage.

    python bench/quality.py                          # 1000 clips, both splits (~20 min on 2 idle cores)
    python bench/quality.py --before                 # and jungle without crops, same clips
    python bench/quality.py --smoke                  # the smallest run (60 clips, 4 frames, 1 trial)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crop_baseline  # noqa: E402  (bench/crop_baseline.py, beside this file)
import realistic  # noqa: E402  (bench/realistic.py)

RECIPES = ("metadata-only", "min-max", "first-place", "third-place", "all")
#: jungle's options that turn detector-guided crops off, per command ("before": whole frames only).
BEFORE: dict[str, tuple[str, ...]] = {"featurize": ("--no-crops", "--no-detector"), "aggregate": ("--no-crops",),
                                      "stack": ()}
COLUMNS = ("recipe", "log_loss", "accuracy", "animal_accuracy", "macro_f1", "mean_auc", "seconds")
SMOKE = {"clips": 48, "frames": "uniform:4", "trials": 1, "baseline_images": 2, "recipes": "min-max,all"}


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Stages:
    """Wall-clock seconds of each named stage, printed as they finish."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        began = time.monotonic()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - began
        _say(f"[{name}: {time.monotonic() - began:.0f} s]")


def jungle(*args: str) -> None:
    """Run one ``jungle`` command in this process (its output goes to stderr); stop on failure."""
    from jungle.cli import app

    _say("$ jungle " + " ".join(args))
    with contextlib.redirect_stdout(sys.stderr):
        code = app(list(args), standalone_mode=False)
    if code:
        raise SystemExit(f"`jungle {' '.join(args)}` failed (exit {code}); see above")


# --------------------------------------------------------------------------- scores
def _labels(path: Path) -> tuple[list[str], np.ndarray]:
    import polars as pl

    from jungle.classes import PRIMATRIX_CLASSES

    table = pl.read_csv(path).sort("filename")
    return table["filename"].to_list(), table.select(list(PRIMATRIX_CLASSES)).to_numpy().astype(float)


def scores(Y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    """The table's metrics of probabilities ``P`` against one-label answers ``Y`` (clips x classes)."""
    from jungle.classes import PRIMATRIX_CLASSES
    from jungle.meta.metrics import evaluate

    summary = evaluate(Y, P).summary()
    animal = Y[:, PRIMATRIX_CLASSES.index("blank")] == 0
    right = P.argmax(axis=1) == Y.argmax(axis=1)
    return {"log_loss": summary["log_loss"], "accuracy": summary["accuracy"],
            "animal_accuracy": float(right[animal].mean()) if animal.any() else float("nan"),
            "macro_f1": summary["macro_f1"], "mean_auc": summary["mean_auc"]}


def submission_scores(submission: Path, test_labels: Path) -> dict[str, float]:
    """Metrics of a submission CSV on the test clips of ``test_labels`` (it may hold other clips too)."""
    import polars as pl

    from jungle.classes import PRIMATRIX_CLASSES

    names, Y = _labels(test_labels)
    predicted = pl.read_csv(submission).filter(pl.col("filename").is_in(names)).sort("filename")
    if predicted["filename"].to_list() != names:
        raise SystemExit(f"{submission} lacks some test clips of {test_labels}")
    return scores(Y, predicted.select(list(PRIMATRIX_CLASSES)).to_numpy())


def _prior(train_labels: Path, test_labels: Path) -> dict[str, float]:
    """The class-prior baseline: every test clip gets the training share of every class."""
    _, Y_train = _labels(train_labels)
    _, Y = _labels(test_labels)
    return scores(Y, np.tile(np.clip(Y_train.mean(axis=0), 1e-4, 1 - 1e-4), (len(Y), 1)))


# --------------------------------------------------------------------------- jungle
def _extra(variant: dict, command: str) -> list[str]:
    return list(variant.get(command, ()))


def featurized_workspace(base: Path, target: Path, frames: str, variant: dict) -> Path:
    """A copy of the ingested ``base`` workspace, featurized with the variant's options."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target)
    jungle("featurize", "--frames", frames, "--stages", "all", "-q", "-w", str(target), *_extra(variant, "featurize"))
    return target


def jungle_rows(featurized: Path, target: Path, split_dir: Path, args, variant: dict, name: str,
                stages: Stages) -> list[tuple]:
    """Every recipe of one jungle variant on one split: labels, aggregate, stack, predict, score."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(featurized, target)
    ws = ["-w", str(target)]
    with stages(f"{name}labels + aggregate"):
        jungle("labels", str(split_dir / "train_labels.csv"), *ws)
        jungle("aggregate", "-q", "--seed", str(args.seed), *ws, *_extra(variant, "aggregate"))
    rows = []
    for recipe in args.recipes.split(","):
        began = time.monotonic()
        with stages(f"{name}stack + predict"):
            jungle("stack", "--recipe", recipe, "--trials", str(args.trials), "--pca", "64", "--seed",
                   str(args.seed), "--max-rounds", "300", "--early-stopping", "20", "-q", *ws,
                   *_extra(variant, "stack"))
            out = target / f"submission-{recipe}.csv"
            jungle("predict", "--model", "latest", "--out", str(out), *ws)
        rows.append((f"{name}{recipe}", *submission_scores(out, split_dir / "test_labels.csv").values(),
                     time.monotonic() - began))
    return rows


# --------------------------------------------------------------------------- the crop baseline
def baseline_rows(embedded: dict[str, np.ndarray], names: list[str], split_dir: Path, seed: int) -> list[tuple]:
    """The crop baseline's rows on one split (features of every pool clip in ``names`` order)."""
    from jungle.classes import PRIMATRIX_CLASSES

    index = {n: i for i, n in enumerate(names)}
    train_names, Y_train = _labels(split_dir / "train_labels.csv")
    test_names, Y_test = _labels(split_dir / "test_labels.csv")
    rows = []
    for kind in crop_baseline.KINDS:
        began = time.monotonic()
        X = np.concatenate([embedded["whole"], embedded["motion"]], axis=1) if kind == "both" else embedded[kind]
        P, C = crop_baseline.fit_predict(X[[index[n] for n in train_names]], Y_train.argmax(axis=1),
                                         X[[index[n] for n in test_names]], len(PRIMATRIX_CLASSES), seed)
        rows.append((f"baseline {kind} (C={C:g})", *scores(Y_test, np.clip(P, 1e-4, 1 - 1e-4)).values(),
                     time.monotonic() - began))
    return rows


# --------------------------------------------------------------------------- the run
def render(rows: list[tuple]) -> str:
    """A Markdown table: metrics to 4 decimals, seconds whole."""
    def cell(value, column: str) -> str:
        if isinstance(value, str):
            return value
        return f"{value:.0f}" if column == "seconds" else f"{value:.4f}"

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, COLUMNS)) + " |" for row in rows]
    return "\n".join(lines)


def run_benchmark(args) -> dict[str, list[tuple]]:
    """Every row of every split's table (see the module docstring)."""
    stages = Stages()
    started = time.monotonic()
    config = realistic.BenchConfig(seed=args.seed, clips=args.clips)
    with stages("collection"):
        record = realistic.make_collection(args.collection, config, workers=args.workers, log=_say)
    collection = Path(args.collection).resolve()
    splits = json.loads((collection / "splits.json").read_text(encoding="utf-8"))
    _say(realistic.render_description(splits))
    _say(f"collection: {record['clips']} clips in {collection} (made in {record['seconds']} s)")
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)  # from scratch
    out.mkdir(parents=True)
    base = out / "ws-ingested"
    with stages("ingest"):
        jungle("ingest", str(collection / "clips"), "-q", "-w", str(base))
    variants = {"after": {}}
    if args.before:
        if any(BEFORE.values()):
            variants = {"before": BEFORE, "after": {}}
        else:
            _say("note: this jungle has no crop options (BEFORE is empty): before and after are the same run")
    featurized = {}
    for name, variant in variants.items():
        with stages(f"{name}: featurize"):
            featurized[name] = featurized_workspace(base, out / f"ws-{name}-featurized", args.frames, variant)
    with stages("baseline: images + lite0"):
        import polars as pl

        pool = pl.read_csv(collection / "clips.csv").sort("filename")
        names = pool["filename"].to_list()
        embedded = crop_baseline.embed_clips([collection / p for p in pool["relpath"]], out / "baseline.npz",
                                             args.baseline_images, progress=_say)
    tables = {}
    for split in args.splits.split(","):
        split_dir = collection / split
        rows = [("class prior", *_prior(split_dir / "train_labels.csv", split_dir / "test_labels.csv").values(), 0.0)]
        for name, variant in variants.items():
            label = f"{name}: " if len(variants) > 1 else ""
            rows += jungle_rows(featurized[name], out / f"ws-{name}-{split}", split_dir, args, variant, label,
                                stages)
        with stages(f"baseline: {split} fits"):
            rows += baseline_rows(embedded, names, split_dir, args.seed)
        tables[split] = rows
        _say(f"\n{split} split:\n" + render(rows))
    stages.seconds["total"] = time.monotonic() - started
    _say("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in stages.seconds.items()))
    (out / "results.json").write_text(json.dumps({"config": config.model_dump(mode="json"), "args": vars(args),
                                                  "seconds": stages.seconds, "splits": splits,
                                                  "tables": {s: [list(r) for r in rows] for s, rows in tables.items()}},
                                                 indent=2, default=str) + "\n", encoding="utf-8")
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, default=None, help="default: bench-realistic[-smoke]")
    parser.add_argument("--out", type=Path, default=None, help="workspaces and results (default: COLLECTION-out)")
    parser.add_argument("--clips", type=int, default=realistic.BenchConfig().clips)
    parser.add_argument("--splits", default=",".join(realistic.SPLITS))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--frames", default="uniform:16")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--baseline-images", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes making the collection")
    parser.add_argument("--before", action="store_true", help="also jungle with crops off (BEFORE), same clips")
    parser.add_argument("--smoke", action="store_true", help="the smallest run: " + str(SMOKE))
    args = parser.parse_args()
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.collection = args.collection or Path("bench-realistic-smoke" if args.smoke else "bench-realistic")
    args.out = args.out or Path(f"{args.collection}-out")
    tables = run_benchmark(args)
    print(realistic.render_description(json.loads((args.collection / "splits.json").read_text(encoding="utf-8"))))
    for split, rows in tables.items():
        held = {"photo": "test photographs never in training",
                "site": "test sites and photographs never in training"}.get(split, "")
        print(f"\n{split} split ({held}):\n{render(rows)}")


if __name__ == "__main__":
    main()
