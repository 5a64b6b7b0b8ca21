"""Benchmark of MegadetectorLite on the CPU: every way of running it, side by side, and how well they agree.

Speed: the same real frames (the Pri-matrix-format cat clip, 720x404, at 4 fps; 50 px cropped off
the bottom as zamba does) go through each way in interleaved rounds, so that the load of a shared
machine hits all of them alike; the best round counts. Each way is ``Detector.detect``: letterbox,
network, boxes (decoding excluded). Printed: frames/s, the ratio to the baseline (zamba's way:
PyTorch at 640x640, BatchNorm not folded, NCHW), and CPU milliseconds per frame (all threads).

Agreement, on real frames: the cat clip at 4 fps, the chimpanzee clip at 1 fps, 4 frames of each
of the 19 small zamba clips, and the camera-trap stills of ``../shared/media/camera_trap_images``.
For each way: its boxes against PyTorch's at the same input (the backend's fidelity: boxes paired,
smallest IoU, largest score difference; boxes kept from 0.25 minus the precision's score tolerance on
both sides, counted from 0.25; pass or fail at the tolerance the detector checks backends with,
``detector_backends.TOLERANCE``) and against zamba's way (the recall of its boxes at IoU >= 0.5, by
box area: under 1% of the frame, 1-5%, 5% and more).

int8 (``--int8``): calibrated on frames of the three clips of ``../shared/media/other_video``,
which are not among the frames measured, then checked against PyTorch like the others. A way whose
export fails the detector's own check (``Detector.load`` refuses it: featurize would fall back to
another backend) is still measured, from a copy of the export cache in a temporary folder with the
check waived, and marked ``(refused)``: what it would have given.

``--smoke``: 8 frames, one round, three ways, a handful of agreement frames (under a minute once
the exports are cached). ``--workspace DIR`` (a demo workspace after ``jungle featurize -w DIR
--detector megadetector-lite``) also stacks the ``all`` recipe with and without the detector's
video-level set.

Usage: ``python bench/detector.py [--frames 32] [--rounds 3] [--threads 2] [--int8] [--smoke]
[--workspace DIR [--trials 5] [--pca 64]]``
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

from common import shared_media  # bench/common.py

MEDIA = shared_media()
CLIP = MEDIA / "camera_trap" / "ACP0006s6f-small-cat.mp4"
#: The detector's confidence (boxes count from it).
CONFIDENCE = 0.25
#: A tolerance nothing fails: the check waived for a way the detector refuses, to measure it anyway.
WAIVED = {"min_iou": 0.0, "max_score_diff": 1.0}


def _ways(args):
    """(label, DetectorConfig) of every way measured; the first is the baseline."""
    from jungle.features.models.detector import DEFAULT_INPUT, DetectorConfig

    width, height = DEFAULT_INPUT
    default = f"{width}x{height}"
    ways = [("zamba: torch 640x640 unfused NCHW", DetectorConfig(backend="torch", input_width=640, input_height=640,
                                                                 fuse=False, channels_last=False)),
            ("torch 640x384 fused", DetectorConfig(backend="torch", input_width=640, input_height=384)),
            (f"openvino fp32 {default} (default)", DetectorConfig(backend="openvino"))]
    if args.smoke:
        return ways
    ways += [(f"onnxruntime fp32 {default}", DetectorConfig(backend="onnxruntime")),
             (f"torch {default} fused", DetectorConfig(backend="torch"))]
    if DEFAULT_INPUT != (640, 384):
        ways.append(("openvino fp32 640x384", DetectorConfig(backend="openvino", input_width=640, input_height=384)))
    if args.int8:
        ways += [(f"openvino int8 {default}", DetectorConfig(backend="openvino", precision="int8")),
                 (f"onnxruntime int8 {default}", DetectorConfig(backend="onnxruntime", precision="int8"))]
    return [(label, config.model_copy(update={"batch_size": args.batch})) for label, config in ways]


def _agreement_frames(smoke: bool) -> list[np.ndarray]:
    """The real frames the ways are compared on, one array per clip or still (see the docstring)."""
    from PIL import Image, ImageOps

    from jungle.features.video.decode import index_video, read_frames
    from jungle.features.video.sampling import Fps, spread_indices

    groups = []
    for clip, fps in ((CLIP, 4.0), (MEDIA / "camera_trap" / "chimp_waterhole_320x180.mp4", 1.0)):
        index = index_video(clip)
        groups.append(read_frames(clip, Fps(fps=fps, seconds=index.duration).choose(index), index=index).images)
    if smoke:
        return [groups[0][:8], groups[1][:4]]
    for clip in sorted(p for p in (MEDIA / "camera_trap" / "zamba_test_clips").rglob("*") if p.is_file()
                       and p.suffix.lower() in (".avi", ".mp4", ".asf")):
        index = index_video(clip)
        groups.append(read_frames(clip, spread_indices(index.n_frames, 4), index=index).images)
    for still in sorted((MEDIA / "camera_trap_images").rglob("*")):
        if still.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and "truncated" not in still.name:
            groups.append(np.asarray(ImageOps.exif_transpose(Image.open(still)).convert("RGB"))[None])
    return groups


def _calibration(folder: Path):
    """int8 calibration frames from a workspace of the other_video clips (none of them is measured)."""
    from jungle.features.featurize.calibration import calibration_set
    from jungle.ingest.run import IngestConfig, ingest
    from jungle.store.workspace import Workspace

    workspace = Workspace.resolve(folder / "calibration-ws")
    ingest(workspace, MEDIA / "other_video", IngestConfig(workers=0, stats=False), progress=False)
    return lambda: calibration_set(workspace, frames=96, per_video=32)


def _unchecked_cache(folder: Path) -> Path:
    """A weights cache in ``folder`` holding a copy of the detector's cached exports (a waived check then
    neither re-exports nor writes a record into the real cache)."""
    import shutil

    from jungle.features.models.weights import default_weights_dir

    cache = folder / "unchecked-cache"
    if not cache.exists():
        for export in (default_weights_dir() / "exports").glob("megadetector-lite-*"):
            shutil.copytree(export, cache / "exports" / export.name)
    return cache


def _above(boxes: list[np.ndarray], score: float) -> list[np.ndarray]:
    return [b[b[:, 4] >= score] for b in boxes]


def _recall_by_area(reference: list[np.ndarray], other: list[np.ndarray]) -> str:
    """Recall of the reference boxes scoring >= 0.25 at IoU >= 0.5 (``other``: its boxes that count), by
    box area (fraction of the frame)."""
    from jungle.features.models.boxes import iou_matrix

    bins = {"<1%": [0, 0], "1-5%": [0, 0], ">=5%": [0, 0]}
    for ref, oth in zip(reference, other):
        ref = ref[ref[:, 4] >= CONFIDENCE]
        overlaps = iou_matrix(ref, oth) if len(ref) and len(oth) else np.zeros((len(ref), len(oth)))
        for box, row in zip(ref, overlaps):
            area = (box[2] - box[0]) * (box[3] - box[1])
            counts = bins["<1%" if area < 0.01 else "1-5%" if area < 0.05 else ">=5%"]
            counts[1] += 1
            counts[0] += int(len(row) > 0 and row.max() >= 0.5)
    return " ".join(f"{key} {hit}/{total}" for key, (hit, total) in bins.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32, help="frames scored per way and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the best round counts)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime")
    parser.add_argument("--batch", type=int, default=8, help="frames per forward pass")
    parser.add_argument("--int8", action="store_true", help="also int8 (calibrated on the other_video clips)")
    parser.add_argument("--smoke", action="store_true", help="8 frames, 1 round, 3 ways, few agreement frames")
    parser.add_argument("--workspace", default=None, help="a demo workspace with detector features: also "
                        "compare the `all` recipe's OOF log loss with and without them")
    parser.add_argument("--trials", type=int, default=5, help="Optuna trials per stack (with --workspace)")
    parser.add_argument("--pca", type=int, default=64, help="PCA components of wide sets (0: off; with --workspace)")
    args = parser.parse_args()
    if args.smoke:
        args.frames, args.rounds, args.int8 = min(args.frames, 8), 1, False

    import tempfile

    import torch

    from jungle.features.models.backends import BackendMismatch
    from jungle.features.models.boxes import box_agreement
    from jungle.features.models.detector import Detector
    from jungle.features.models.detector_backends import TOLERANCE
    from jungle.features.video.decode import index_video, read_frames
    from jungle.features.video.sampling import Fps

    torch.set_num_threads(args.threads)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    index = index_video(CLIP)
    images = read_frames(CLIP, Fps(fps=4.0, seconds=index.duration).choose(index)[: args.frames], index=index).images
    ways = _ways(args)
    with tempfile.TemporaryDirectory() as folder:
        sample = _calibration(Path(folder)) if args.int8 else None
        detectors, loads = [], []
        for i, (label, config) in enumerate(ways):
            started = time.perf_counter()
            try:
                detectors.append(Detector.load(config, sample=sample, threads=args.threads))
            except BackendMismatch as exc:
                print(f"note: {label} refused by the detector's check: {str(exc).split('; needed')[0]}; "
                      "measured anyway with the check waived")
                ways[i] = (f"{label} (refused)", config)
                detectors.append(Detector.load(config, sample=sample, threads=args.threads,
                                               cache=_unchecked_cache(Path(folder)), tolerance=WAIVED))
            loads.append(time.perf_counter() - started)
    for detector in detectors:  # warm-up: first-call allocations and kernel selection
        detector.detect(images[: args.batch])

    best, cpu = [float("inf")] * len(ways), [float("inf")] * len(ways)
    for _ in range(args.rounds):
        for i, detector in enumerate(detectors):
            start, start_cpu = time.perf_counter(), time.process_time()
            detector.detect(images)
            best[i] = min(best[i], time.perf_counter() - start)
            cpu[i] = min(cpu[i], time.process_time() - start_cpu)

    print(f"MegadetectorLite (YOLOX-tiny) on {len(images)} frames of {CLIP.name} (720x404, 50 px cropped), "
          f"{args.threads} threads, batch {args.batch}, best of {args.rounds} rounds")
    print(f"{'way':36s} {'frames/s':>9s} {'x zamba':>8s} {'CPU ms/frame':>13s} {'load s':>7s}")
    for (label, _), seconds, cpu_seconds, load in zip(ways, best, cpu, loads):
        print(f"{label:36s} {len(images) / seconds:9.1f} {best[0] / seconds:7.2f}x "
              f"{cpu_seconds / len(images) * 1000:13.1f} {load:7.1f}")

    groups = _agreement_frames(args.smoke)
    floor = CONFIDENCE - max(t["max_score_diff"] for t in TOLERANCE.values())
    for detector in detectors:  # keep boxes below the confidence too (NMS keeps the same stronger boxes)
        detector.config = detector.config.model_copy(update={"confidence": floor})
    found = [[b for frames in groups for b in detector.detect(frames).boxes] for detector in detectors]
    same_input = {}
    for i, (_, config) in enumerate(ways):  # the PyTorch way at the same input and crop, fused
        key = (config.input_width, config.input_height)
        if config.backend == "torch" and config.fuse:
            same_input.setdefault(key, i)
    print(f"agreement on {len(found[0])} real frames ({len(groups)} clips and stills; "
          f"{sum(int((b[:, 4] >= CONFIDENCE).sum()) for b in found[0])} zamba boxes >= {CONFIDENCE})")
    print(f"{'way':36s} {'vs torch at the same input: paired/boxes, min IoU, max |score diff|, check':60s} "
          "recall of zamba's boxes by area")
    for i, (label, config) in enumerate(ways):
        reference = same_input.get((config.input_width, config.input_height))
        fidelity = "-"
        if reference is not None and reference != i:
            tolerance = TOLERANCE[config.precision]
            kept = CONFIDENCE - tolerance["max_score_diff"]
            agreement = box_agreement(_above(found[reference], kept), _above(found[i], kept), min_score=CONFIDENCE)
            verdict = "pass" if agreement.passes(**tolerance) else "FAIL"
            fidelity = (f"{agreement.matched}/{agreement.boxes}, {agreement.min_iou:.4f}, "
                        f"{agreement.max_score_diff:.4f}, {verdict} (IoU >= {tolerance['min_iou']}, "
                        f"diff <= {tolerance['max_score_diff']})")
        print(f"{label:36s} {fidelity:60s} {_recall_by_area(found[0], _above(found[i], CONFIDENCE))}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.workspace:
        stacked_with_and_without(Path(args.workspace), args.trials, args.pca or None)


def stacked_with_and_without(root: Path, trials: int, pca: int | None) -> None:
    """Out-of-fold metrics of the ``all`` recipe without (baseline) and with the detector's sets."""
    from jungle.meta.stack import StackConfig, stack
    from jungle.meta.tuning import TuneConfig
    from jungle.store import registry
    from jungle.store.db import connect
    from jungle.store.workspace import Workspace

    workspace = Workspace.resolve(root)
    with connect(workspace, read_only=True) as con:
        sets = sorted({s.name for s in registry.list_sets(con, "video") if s.status == "complete"})
        classes = [r[0] for r in con.execute("SELECT class FROM classes ORDER BY position").fetchall()]
    detector = [n for n in sets if n.startswith("det_")]
    if not detector:
        print(f"no detector feature set in {root}: run `jungle featurize -w {root} --detector megadetector-lite`")
        return
    blank = classes.index("blank") if "blank" in classes else None
    tune = TuneConfig(trials=trials, seed=0, max_rounds=300, early_stopping_rounds=20)
    print(f"`all` recipe on {root}: {trials} Optuna trials, seed 0, PCA {pca or 'off'}")
    print(f"{'level-2 features':44s} {'OOF log loss':>12s} {'vs baseline':>12s} {'accuracy':>9s} "
          f"{'blank log loss':>15s} {'blank AUC':>10s} {'seconds':>8s}")
    base = None
    for label, members in (("every set except " + ",".join(detector), [n for n in sets if n not in detector]),
                           ("every set (with the detector's)", sets)):
        started = time.perf_counter()
        result = stack(workspace, StackConfig(members=(tuple(members),), pca=pca, tune=tune))
        ev = result.evaluation
        base = base or result.log_loss
        blank_ll = f"{ev.class_log_loss[blank]:.4f}" if blank is not None else "-"
        blank_auc = f"{ev.class_auc[blank]:.4f}" if blank is not None else "-"
        print(f"{label:44s} {result.log_loss:12.4f} {result.log_loss / base:11.3f}x {result.accuracy:9.4f} "
              f"{blank_ll:>15s} {blank_auc:>10s} {time.perf_counter() - started:8.1f}", flush=True)


if __name__ == "__main__":
    main()
