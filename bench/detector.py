"""Benchmark of MegadetectorLite inference on CPU: input size and conv+BN fusion.

Scores the same real frames (the Pri-matrix-format cat clip at 4 fps, 720x404, 50 px cropped off
the bottom as zamba does) with five detectors, interleaved round by round so that the load of a
shared machine hits all of them alike, and prints for each:

- frames/s of the forward pass plus preprocessing (decoding excluded; measured separately), and
  the CPU seconds per frame (all threads; less sensitive than wall time to other processes),
- the ratios against the baseline: 640x640 unfused in PyTorch's default (NCHW) memory format,
  which is how zamba 2.7.2 runs the model (the others use channels-last),
- the largest per-frame score difference against the baseline (640x384 pads less, it does not
  shrink the image of a 16:9 or 4:3 frame),
- the peak resident memory of the process.

With ``--workspace DIR`` (a workspace where ``jungle demo`` ran, then
``jungle featurize -w DIR --detector megadetector-lite``) it also stacks the ``all`` recipe twice
on the same folds, trials and seed: over every video-level set except the detector's
(``det_*``), the baseline, and over every set; and prints the out-of-fold log loss, accuracy and
the ``blank`` class's log loss and AUC of both.

Usage: ``python bench/detector.py [--frames 32] [--rounds 3] [--threads 2] [--batch 8]
[--workspace DIR [--trials 5] [--pca 64]]``
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MEDIA = REPO.parent / "shared" / "media"
CLIP = MEDIA / "camera_trap" / "ACP0006s6f-small-cat.mp4"
VARIANTS = [  # (label, input height, fuse, channels-last); the first is the baseline
    ("640x640 as zamba runs it", 640, False, False),
    ("640x640 unfused", 640, False, True),
    ("640x640 fused", 640, True, True),
    ("640x384 unfused", 384, False, True),
    ("640x384 fused", 384, True, True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32, help="frames scored per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the best round counts)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch", type=int, default=8, help="frames per forward pass")
    parser.add_argument("--workspace", default=None, help="a demo workspace with detector features: also "
                        "compare the `all` recipe's OOF log loss with and without them")
    parser.add_argument("--trials", type=int, default=5, help="Optuna trials per stack (with --workspace)")
    parser.add_argument("--pca", type=int, default=64, help="PCA components of wide sets (0: off; with --workspace)")
    args = parser.parse_args()

    import torch

    from jungle.features.models.detector import Detector, DetectorConfig
    from jungle.features.video.sampling import Fps
    from jungle.features.video.decode import index_video, read_frames
    from jungle.features.models.weights import weights_path

    torch.set_num_threads(args.threads)
    index = index_video(CLIP)
    wanted = Fps(fps=4.0, seconds=index.duration).choose(index)[: args.frames]
    start = time.perf_counter()
    images = read_frames(CLIP, wanted, index=index).images
    decode_fps = len(images) / (time.perf_counter() - start)
    path = weights_path("megadetector-lite")
    detectors = [Detector.load(DetectorConfig(input_height=height, fuse=fuse, channels_last=nhwc,
                                              batch_size=args.batch), weights_file=path)
                 for _, height, fuse, nhwc in VARIANTS]
    for detector in detectors:  # warm-up: first-call allocations and kernel selection
        detector.detect(images[: args.batch])

    best = [float("inf")] * len(detectors)
    cpu = [float("inf")] * len(detectors)
    scores = [None] * len(detectors)
    for _ in range(args.rounds):
        for i, detector in enumerate(detectors):
            start, start_cpu = time.perf_counter(), time.process_time()
            scores[i] = detector.detect(images).score
            best[i] = min(best[i], time.perf_counter() - start)
            cpu[i] = min(cpu[i], time.process_time() - start_cpu)

    print(f"MegadetectorLite (YOLOX-tiny) on {len(images)} frames of {CLIP.name} (720x404, 50 px cropped), "
          f"{args.threads} torch threads, batch {args.batch}, best of {args.rounds} rounds")
    print(f"decode only (read_frames, 4 fps of 24): {decode_fps:.1f} frames/s")
    print(f"{'variant':26s} {'frames/s':>9s} {'vs baseline':>12s} {'CPU s/frame':>12s} {'vs baseline':>12s} "
          f"{'max |score diff|':>17s}")
    for (label, *_), seconds, cpu_seconds, score in zip(VARIANTS, best, cpu, scores):
        print(f"{label:26s} {len(images) / seconds:9.2f} {best[0] / seconds:11.2f}x "
              f"{cpu_seconds / len(images):12.3f} {cpu[0] / cpu_seconds:11.2f}x "
              f"{float(np.abs(score - scores[0]).max()):17.2e}")
    print(f"frames detected (score >= 0.25) at baseline: {int((scores[0] >= 0.25).sum())} of {len(images)}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
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
