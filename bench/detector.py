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

The issue's out-of-fold log loss of the ``all`` recipe with and without the detector features
needs the detector wired into ``jungle featurize``; it is not measured here yet.

Usage: ``python bench/detector.py [--frames 32] [--rounds 3] [--threads 2] [--batch 8]``
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
    args = parser.parse_args()

    import torch

    from jungle.features.detector import Detector, DetectorConfig
    from jungle.features.sampling import Fps
    from jungle.features.video import index_video, read_frames
    from jungle.features.weights import weights_path

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
    print("OOF log loss of the `all` recipe with/without detector features: not measured yet "
          "(needs `jungle featurize --detector`).")


if __name__ == "__main__":
    main()
