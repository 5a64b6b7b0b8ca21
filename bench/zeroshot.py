"""The zero-shot model and the blank filter, measured with no labels: the realistic benchmark's test
clips and the real clips of ``../shared/media``.

**Realistic benchmark** (``bench/realistic.py``, its default 1,000 clips, seed 0): every clip of the
pool is ingested into one workspace without labels and featurized with jungle's defaults
(``jungle featurize --frames uniform:16``: whole frames, boxes from MegadetectorLite and motion, crops
around them), then ``jungle predict --model zero-shot --videos all --max-animal-loss 0.05``. Only the
test clips of each split are scored (the ``photo`` split's: held-out photographs; the ``site``
split's: held-out photographs at held-out cameras); nothing is tuned on them.

``--fit-rule`` fits the rule's constants (:mod:`jungle.meta.zeroshot.rule`) on the *training*
clips that both splits train on (training sites, training photographs) and prints them: the
P(animal) logistic functions per kind of evidence (with the detector and motion; detector only;
motion only; images only, whole frames), and the species constants (temperature, ImageNet prior,
smoothing) by grid search on the training animal clips' log likelihood. No test clip is read.

**Real clips** (``--real``): the clips of ``../shared/media`` whose content is known (its README):
the small cat, the chimpanzees at the waterhole, the zamba clips with a true hint (baboons, hyena,
eland, chimpanzees, gorillas), the OpenCV people clip (human), and two blank stretches cut from real
footage (the small-cat clip after the cat has left, 10-15 s; the OpenCV foliage clip before the
hand enters, 0-3.3 s).

Targets: the blank filter removes at least 80% of blank clips while losing at most 5% of animal
clips; top-1 of at least 50% on animal clips of classes the class map covers.

    python bench/zeroshot.py                      # measure (makes the collection when missing)
    python bench/zeroshot.py --fit-rule           # the rule's constants from the training clips
    python bench/zeroshot.py --real               # the real clips
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (bench/quality.py: the jungle runner and the label files)
import realistic  # noqa: E402  (bench/realistic.py: the collection)

from jungle.classes import PRIMATRIX_CLASSES  # noqa: E402

BLANK = "blank"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "media"
FRAMES = "uniform:16"
MAX_LOSS = 0.05
REAL = {  # ../shared/media path (relative) -> the class it shows (the media README's true hints)
    "camera_trap/ACP0006s6f-small-cat.mp4": "small cat",
    "camera_trap/chimp_waterhole_320x180.mp4": "chimpanzee",
    "camera_trap/zamba_test_clips/data/raw/savanna/Gorongosa_Mozambique/2017 Videos/F13_Cam027/Baboon/07120049.AVI":
        "other (primate)",
    "camera_trap/zamba_test_clips/data/raw/savanna/Grumeti_Tanzania/K38_check3/09190048_Hyena.AVI": "hyena",
    "camera_trap/zamba_test_clips/data/raw/savanna/Grumeti_Tanzania/G41_check2/09100029_Eland.MP4": "large ungulate",
    "camera_trap/zamba_test_clips/data/raw/goualougo_2013/chimp_MPI_FID_2013/MPI_FID_31_Abel/06-May-2013/"
    "FID_31_Abel_2013-5-6_0027.AVI": "chimpanzee",
    "camera_trap/zamba_test_clips/data/raw/goualougo_2013/gorillas_2013/MPI_FID_20_Duboscia/14-Jun-2013/"
    "FID_20_Duboscia_2013-6-14_0083.AVI": "gorilla",
    "camera_trap/zamba_test_clips/data/raw/lope/Theo_codification_gorilla videos/2015/T37.0314.1632/EK000059.AVI":
        "gorilla",
    "other_video/opencv_vtest_static_cam_people.avi": "human",
}
#: Blank stretches cut from real footage: (source, start s, end s, file name).
BLANK_STRETCHES = (("camera_trap/ACP0006s6f-small-cat.mp4", 10.0, 15.0, "small-cat-empty-10-15s.mp4"),
                   ("other_video/opencv_tree_foliage_hand.avi", 0.0, 3.3, "foliage-before-hand-0-3s.mp4"))


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- evidence and truth
def evidence_table(workspace: Path, images: str = "crops"):
    """The newest zero-shot evidence set of ``workspace`` made from ``images`` (crops or frames), with
    each clip's file name."""
    import polars as pl

    from jungle.store import registry
    from jungle.store.db import connect
    from jungle.store.videos import read_videos
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(workspace)
    with connect(ws, read_only=True) as con:
        versions = [fs for fs in registry.list_sets(con, "video") if fs.name.startswith("zeroshot_")
                    and fs.status == "complete" and (fs.config or {}).get("images") == images]
        names = pl.DataFrame(read_videos(con, ("video_id", "filename", "relpath")), orient="row",
                             schema=["video_id", "filename", "relpath"])
    if not versions:
        raise SystemExit(f"{workspace} has no zero-shot evidence from {images}: "
                         "run `jungle aggregate --kind zero-shot`")
    newest = max(versions, key=lambda fs: fs.version)
    return registry.read_video_table(ws, newest).join(names, on="video_id"), newest


def truth(collection: Path):
    """clips.csv: file name, label, and which side of each split a clip is on."""
    import polars as pl

    return pl.read_csv(collection / "clips.csv").select(["filename", "label", "photo_split", "site_split",
                                                         "width_frac", "night"])


# --------------------------------------------------------------------------- fitting the rule
def _animal_features(table, kind: str) -> np.ndarray:
    from jungle.meta.zeroshot.rule import FEATURES, _features  # noqa: PLC2701 (the rule's own features)

    evidence = {c: table[c].to_numpy().astype(np.float64) for c in ("det_max", "det_frac", "motion_max", "mapped_max")}
    features = _features(evidence)
    return np.column_stack([features[name] for name in FEATURES[kind]])


def fit_animal(table, is_animal: np.ndarray, kind: str, C: float = 1.0) -> tuple[float, ...]:
    """(intercept, *weights) of a logistic regression of ``is_animal`` on the kind's features."""
    from sklearn.linear_model import LogisticRegression

    X = _animal_features(table, kind)
    model = LogisticRegression(C=C, max_iter=1000).fit(X, is_animal)
    return (float(model.intercept_[0]), *(float(w) for w in model.coef_[0]))


def fit_species(table, labels: list[str], setup: dict, classes=PRIMATRIX_CLASSES) -> dict:
    """Temperature, ImageNet prior and smoothing maximising the mean log P(true class | animal) of the
    animal clips of covered classes (grid search)."""
    from jungle.features.aggregates.frame_stats import class_slug
    from jungle.meta.zeroshot.rule import AnimalRule, ZeroShotRule, class_probabilities

    covered = np.array([c in set(setup["class_map"]["covered"]) for c in classes])
    k = np.asarray(setup["imagenet_classes"], float)
    keep = np.array([c != BLANK for c in classes])
    rows = np.array([lab in set(np.array(classes)[covered]) for lab in labels])
    masses = table.select([class_slug(c) for c in classes]).to_numpy()[rows][:, keep]
    target = np.array([[c for c in classes if c != BLANK].index(lab) for lab in np.array(labels)[rows]])
    dummy = AnimalRule(coefficients={"detector+motion": (0,) * 5, "detector": (0,) * 4, "motion": (0,) * 3,
                                     "images": (0,) * 2})
    best = None
    for temperature in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0):
        for prior in (0.0, 0.25, 0.5, 0.75, 1.0):
            for smoothing in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5):
                rule = ZeroShotRule(animal=dummy, temperature=temperature, imagenet_prior=prior, smoothing=smoothing)
                P = class_probabilities(rule, masses, k[keep], covered[keep])
                score = float(np.mean(np.log(P[np.arange(len(P)), target])))
                top1 = float(np.mean(P.argmax(axis=1) == target))
                if best is None or score > best[0]:
                    best = (score, {"temperature": temperature, "imagenet_prior": prior, "smoothing": smoothing},
                            top1)
    say(f"species constants: {best[1]} (mean log likelihood {best[0]:.3f}, top-1 {best[2]:.3f} on "
        f"{int(rows.sum())} training animal clips of covered classes)")
    return best[1]


def frames_evidence(workspace: Path):
    """The evidence of every clip from its whole frames alone, with no boxes (what a run with
    ``--no-crops --no-detector`` gives), computed here without registering a set."""
    import polars as pl

    from jungle.features.aggregates.inputs import load_frame_rows
    from jungle.features.aggregates.zeroshot import evidence_columns, iter_evidence, zero_shot_setup
    from jungle.store import registry
    from jungle.store.db import connect
    from jungle.store.videos import read_videos
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(workspace)
    with connect(ws, read_only=True) as con:
        frames = load_frame_rows(con, registry.get(con, "lite0"))
        names = pl.DataFrame(read_videos(con, ("video_id", "filename")), orient="row", schema=["video_id", "filename"])
    setup = zero_shot_setup(ws, frames.fs, None, False)
    columns = evidence_columns(setup.class_map.classes)
    parts = [pl.DataFrame({"video_id": ids.tolist(), **{c: cols[c] for c in columns}})
             for ids, cols in iter_evidence(ws, frames, None, setup, None)]
    return pl.concat(parts).join(names, on="video_id")


def fit_rule(workspace: Path, collection: Path) -> dict:
    """The rule's constants from the training clips of both splits (training sites and photographs)."""
    import polars as pl

    crops, crops_set = evidence_table(workspace, "crops")
    frames = frames_evidence(workspace)
    clips = truth(collection)
    train = clips.filter((pl.col("photo_split") == "train") & (pl.col("site_split") == "train"))
    crops = crops.join(train, on="filename").sort("filename")
    frames = frames.join(train, on="filename").sort("filename")
    animal = (crops["label"] != BLANK).to_numpy()
    say(f"fitting on {crops.height} training clips ({int(animal.sum())} with an animal); no test clip read")
    coefficients = {kind: fit_animal(crops, animal, kind) for kind in ("detector+motion", "detector", "motion")}
    coefficients["images"] = fit_animal(frames, (frames["label"] != BLANK).to_numpy(), "images")
    species = fit_species(crops, crops["label"].to_list(), crops_set.config)
    constants = {"animal": {"coefficients": {k: [round(v, 4) for v in c] for k, c in coefficients.items()}},
                 **species}
    print(json.dumps(constants, indent=2))
    return constants


# --------------------------------------------------------------------------- scoring
def split_scores(P: np.ndarray, labels: list[str], covered: set[str], max_loss: float = MAX_LOSS,
                 threshold: float | None = None) -> dict:
    """Blank filter and top-1 of probabilities ``P`` (clips x PRIMATRIX_CLASSES) on labelled clips."""
    from jungle.meta.zeroshot.blank_filter import filter_curve

    classes = list(PRIMATRIX_CLASSES)
    labels = np.asarray(labels)
    animal = labels != BLANK
    p_animal = 1.0 - P[:, classes.index(BLANK)]
    curve = filter_curve(p_animal, animal)
    out = {"clips": len(labels), "animal_clips": int(animal.sum()),
           "best_blanks_removed_at_5pct": curve.at_loss(max_loss)}
    if threshold is not None:
        skipped = p_animal < threshold
        out.update({"rule_threshold": threshold, "rule_animal_loss": float(skipped[animal].mean()),
                    "rule_blanks_removed": float(skipped[~animal].mean())})
    species = [c for c in classes if c != BLANK]
    rows = np.array([lab in covered for lab in labels])
    if rows.any():
        top = np.array(species)[P[:, [classes.index(c) for c in species]].argmax(axis=1)]
        out["species_top1_covered"] = float((top[rows] == labels[rows]).mean())
        out["top1_covered"] = float((np.array(classes)[P.argmax(axis=1)][rows] == labels[rows]).mean())
        out["covered_animal_clips"] = int(rows.sum())
    Y = (labels[:, None] == np.array(classes)[None]).astype(float)
    from jungle.meta.metrics import competition_log_loss

    out["log_loss"] = competition_log_loss(Y, P)
    return out


def predictions(workspace: Path, model_id: str):
    """The model's probabilities of every clip (out of sample), PRIMATRIX_CLASSES order, by file name."""
    from jungle.store.db import connect
    from jungle.store.predictions import read_out_of_sample
    from jungle.store.videos import read_videos
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(workspace)
    classes = list(PRIMATRIX_CLASSES)
    with connect(ws, read_only=True) as con:
        names = dict(read_videos(con, ("video_id", "filename")))
        rows = read_out_of_sample(con, model_id)
    out: dict[str, np.ndarray] = {}
    for video_id, cls, p, _kind, _ in rows:
        out.setdefault(names[video_id], np.zeros(len(classes)))[classes.index(cls)] = p
    return out


def zero_shot_run(workspace: Path) -> tuple[str, float]:
    """``jungle predict --model zero-shot --videos all --max-animal-loss 0.05`` on ``workspace``: the
    model id and the blank filter's label-free threshold."""
    from jungle.store.db import connect
    from jungle.store.workspace import Workspace

    quality.jungle("predict", "--model", "zero-shot", "--videos", "all", "--max-animal-loss", str(MAX_LOSS),
                   "-w", str(workspace))
    with connect(Workspace.resolve(workspace), read_only=True) as con:
        model_id, threshold = con.execute("SELECT model_id, max(threshold) FROM blank_filter GROUP BY ALL "
                                          "ORDER BY max(created_at) DESC LIMIT 1").fetchone()
    return model_id, threshold


def measure(workspace: Path, collection: Path) -> dict:
    """The targets on each split's test clips (nothing else is read)."""
    import polars as pl

    model_id, threshold = zero_shot_run(workspace)
    P = predictions(workspace, model_id)
    clips = truth(collection)
    with_crops, setup = evidence_table(workspace, "crops")
    covered = set(setup.config["class_map"]["covered"])
    results = {}
    for split in realistic.SPLITS:
        test = clips.filter(pl.col(f"{split}_split") == "test")
        names, labels = test["filename"].to_list(), test["label"].to_list()
        results[split] = split_scores(np.stack([P[n] for n in names]), labels, covered, threshold=threshold)
    return {"model": model_id, "threshold": threshold, "splits": results}


def real_clips(shared: Path, root: Path) -> dict:
    """The real clips (:data:`REAL`) and blank stretches (:data:`BLANK_STRETCHES`): one workspace, no labels."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from _zeroshot_helpers import cut_stretch

    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    truth_of = {}
    for index, (relative, label) in enumerate(REAL.items()):
        target = clips / f"{index:02d}-{Path(relative).name}"
        if not target.exists():
            target.symlink_to(shared / relative)
        truth_of[target.name] = label
    for source, start, end, name in BLANK_STRETCHES:
        if not (clips / name).exists():
            cut_stretch(shared / source, start, end, clips / name)
        truth_of[name] = BLANK
    workspace = root / "ws"
    if not (workspace / "jungle.duckdb").exists():
        quality.jungle("ingest", str(clips), "-q", "-w", str(workspace))
    quality.jungle("featurize", "--frames", FRAMES, "-q", "-w", str(workspace))
    model_id, threshold = zero_shot_run(workspace)
    P = predictions(workspace, model_id)
    classes = list(PRIMATRIX_CLASSES)
    rows = []
    for name, label in sorted(truth_of.items()):
        p = P[name]
        species = [c for c in classes if c != BLANK]
        top = max(species, key=lambda c: p[classes.index(c)])
        rows.append({"clip": name, "truth": label, "p_animal": round(1 - p[classes.index(BLANK)], 3),
                     "skipped": bool(1 - p[classes.index(BLANK)] < threshold), "top_species": top,
                     "p_top": round(float(p[classes.index(top)]), 3)})
    return {"model": model_id, "threshold": threshold, "clips": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, default=Path("bench-realistic"))
    parser.add_argument("--workspace", type=Path, default=None, help="default: COLLECTION-zeroshot-ws")
    parser.add_argument("--fit-rule", action="store_true")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shared", type=Path, default=SHARED, help="../shared/media")
    args = parser.parse_args()
    started = time.monotonic()
    if args.real:
        print(json.dumps(real_clips(args.shared, Path(args.workspace or "zeroshot-real")), indent=2))
        say(f"[{time.monotonic() - started:.0f} s]")
        return
    workspace = args.workspace or Path(f"{args.collection}-zeroshot-ws")
    if not (workspace / "jungle.duckdb").exists():
        realistic.make_collection(args.collection, realistic.BenchConfig(), workers=args.workers, log=say)
        quality.jungle("ingest", str(Path(args.collection) / "clips"), "-q", "-w", str(workspace))
    quality.jungle("featurize", "--frames", FRAMES, "-q", "-w", str(workspace))
    quality.jungle("aggregate", "--kind", "zero-shot", "-q", "-w", str(workspace))
    if args.fit_rule:
        fit_rule(workspace, Path(args.collection))
    else:
        print(json.dumps(measure(workspace, Path(args.collection)), indent=2))
    say(f"[{time.monotonic() - started:.0f} s]")


if __name__ == "__main__":
    main()
