"""Benchmark of jungle on Dask: scaling from 1 to 2 local workers, and a capacity estimate.

Prints, in one run:

1. featurize in this process (the baseline), then on a ``LocalCluster`` of 1 and of 2 worker
   processes (one thread each), over the same real clips (symlinked copies of ../shared/media
   clips): frames per wall-clock second and per CPU-second, as ratios to the baseline;
2. level-2 training with ``xgb.train`` in this process (the baseline), then ``xgboost.dask`` on 1
   and 2 workers, same data and parameters: row-rounds per second and per CPU-second;
3. for both, the 1 -> 2 worker scaling: the wall-clock efficiency ``rate(2) / (2 x rate(1))``
   (1.0 = perfect) and the CPU work efficiency (work per CPU-second with 2 workers over that with
   1: what distribution costs in extra work, which other load on the machine does not change;
   the wall-clock efficiency idle cores would give is at most this);
4. the single-core costs, as CPU time of one thread so that other load does not inflate them
   (decode of one Pri-matrix-format clip, the default ``lite0`` encoder per frame, XGBoost per
   row-round), and from them a capacity estimate for the full Pri-matrix collection (400k clips x
   32 frames) per worker type (CPU core; one GPU, whose encode rate was measured on an H100 by
   ``bench/encode.py --device cuda`` and is given as ``--gpu-frames-per-s``) and how the cost
   grows with clips, frames and encoders.

Cluster start-up and first imports are not timed (each cluster and this process are warmed
first). The machine's load average is printed: on a shared machine the wall-clock figures are
only as good as the idle cores it had.

Usage: ``python bench/scale.py [--copies 3] [--frames uniform:16] [--encoder lite0] [--rows 50000]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import (PRIMATRIX_CLIP, REAL_CLIPS, link_collection, machine, ratio, real_clips, register_videos,
                    shared_media)

FULL_COLLECTION = 400_000
FULL_FRAMES = 32
CLASSES = 24
# MEASURED ELSEWHERE (this machine has no GPU): `python bench/encode.py --device cuda` on one NVIDIA
# H100 80GB (2026-11-25): lite0 in float16 autocast, channels-last, 224 px, batch 256, host-to-device
# copy and results back included: 14,193 frames/s (13,411 with stage features). --gpu-frames-per-s
# overrides it. Decoding stays on the GPU host's CPU cores.
GPU_FRAMES_PER_S = 14_193
GPU_HOST_DECODE_CORES = 16


@dataclass
class Run:
    """One timed run: wall-clock seconds, CPU seconds of the processes doing the work, work done."""

    label: str
    wall: float
    cpu: float
    work: float


def _worker_cpu(client) -> float:
    return sum(client.run(time.process_time).values())


def _on_cluster(label: str, n_workers: int, warm, job) -> Run:
    """``job(client)`` (returning its amount of work) on a fresh local cluster, warmed by ``warm(client)``."""
    from jungle.features.featurize.distributed import client_for

    with client_for("local", n_workers=n_workers) as client:
        warm(client)
        cpu, start = _worker_cpu(client), time.perf_counter()
        work = job(client)
        wall = time.perf_counter() - start
        return Run(label, wall, _worker_cpu(client) - cpu, work)


def _in_process(label: str, job) -> Run:
    cpu, start = time.process_time(), time.perf_counter()
    work = job()
    return Run(label, time.perf_counter() - start, time.process_time() - cpu, work)


def report(runs: list[Run], unit: str) -> None:
    """Print each run against the first (the in-process baseline), then the 1 -> 2 worker scaling."""
    base = runs[0]
    for run in runs:
        print(f"  {run.label:26s} {run.work / run.wall:11,.1f} {unit}/s ({ratio(run.wall, base.wall)} the baseline's "
              f"time), {run.work / run.cpu:11,.1f} {unit} per CPU-s ({ratio(run.work / run.cpu, base.work / base.cpu)}"
              " the baseline's)")
    one, two = runs[1], runs[2]
    wall = (two.work / two.wall) / (2 * one.work / one.wall)
    work = (two.work / two.cpu) / (one.work / one.cpu)
    print(f"  scaling 1 -> 2 workers: wall-clock efficiency {wall:.2f} (speed-up {2 * wall:.2f}x); "
          f"CPU work efficiency {work:.2f} (the wall-clock efficiency idle cores would give, at most)")


def _load_encoders(config) -> None:
    """Import torch and timm and load the encoders once, so that timings exclude first imports."""
    from jungle.features.models.encoders import load_encoder

    for encoder in config.encoders:
        load_encoder(encoder)


def featurize_scaling(config, copies: int) -> list[Run]:
    """Featurize in this process (the baseline), then on local clusters of 1 and 2 workers."""
    from jungle.features.featurize.distributed import featurize_on_dask
    from jungle.features.featurize.runner import featurize
    from jungle.store.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="jungle-scale-") as tmp:
        paths = link_collection(Path(tmp) / "videos", real_clips(), copies)
        print(f"featurize: {len(paths)} videos ({copies} x {len(REAL_CLIPS)} real clips), {config.frames}, "
              f"encoder {config.encoders[0].name}, one torch thread per process, one shard per worker")

        spaces = {n: Workspace.resolve(Path(tmp) / f"ws{n}") for n in (0, 1, 2)}  # 0: the in-process run
        for space in spaces.values():
            register_videos(space, paths)
        _load_encoders(config)
        runs = [_in_process("in this process", lambda: featurize(spaces[0], config, progress=False).frames)]
        for n in (1, 2):
            runs.append(_on_cluster(f"Dask, {n} worker(s)", n, lambda client: client.run(_load_encoders, config),
                                    lambda client: featurize_on_dask(spaces[n], config, client, n_shards=n,
                                                                     progress=False).frames))
    report(runs, "frames")
    return runs


def _training_data(rows: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    hidden = rng.integers(0, CLASSES, rows)
    X = (rng.normal(size=(rows, features)) + rng.normal(size=(CLASSES, features))[hidden]).astype(np.float32)
    return X, np.eye(CLASSES)[hidden]


def xgboost_scaling(rows: int, features: int, rounds: int) -> list[Run]:
    """Level-2 training with xgb.train in this process (the baseline), then with xgboost.dask on 1
    and 2 workers: same data, same parameters; work in row-rounds."""
    from jungle.meta.distributed import DaskLevel2Classifier
    from jungle.meta.level2 import Level2Classifier

    X, Y = _training_data(rows, features)
    params = {"n_estimators": rounds, "subsample": 1.0, "max_bin": 64, "n_jobs": 1}
    print(f"level-2 XGBoost: {rows} rows x {features} features, {CLASSES} classes (multi:softprob), {rounds} rounds")

    def warm(client) -> None:
        DaskLevel2Classifier(**{**params, "n_estimators": 2}).fit(X[:1000], Y[:1000], client=client)

    def train_here() -> int:
        Level2Classifier(**params).fit(X, Y)
        return rows * rounds

    def train_on(client) -> int:
        DaskLevel2Classifier(**params).fit(X, Y, client=client)
        return rows * rounds

    runs = [_in_process("xgb.train in this process", train_here)]
    runs += [_on_cluster(f"xgboost.dask, {n} worker(s)", n, warm, train_on) for n in (1, 2)]
    report(runs, "row-rounds")
    return runs


def _cpu_seconds(fn, repeat: int = 1) -> float:
    """Median CPU time of this process for ``fn()`` (single-threaded work: immune to other load)."""
    spent = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        spent.append(time.process_time() - start)
    return statistics.median(spent)


def single_core_costs(encoder_name: str) -> tuple[float, float, float]:
    """CPU seconds, one thread each: (decode of 32 uniform frames of the Pri-matrix clip, of 8,
    the encoder per frame at its input size)."""
    import torch

    from jungle.features.models.encoders import EncoderConfig, load_encoder
    from jungle.features.featurize.decode_pool import decode_video
    from jungle.features.video.sampling import parse_sampling

    torch.set_num_threads(1)
    clip = str(shared_media() / PRIMATRIX_CLIP)  # 720x404, 15 s, H.264
    encoder = load_encoder(EncoderConfig(name=encoder_name))
    size = (encoder.input_size, encoder.input_size)
    decode = {}
    for frames in (32, 8):
        sampling = parse_sampling(f"uniform:{frames}")
        decode_video(clip, sampling, size, threads=1)  # warm
        decode[frames] = _cpu_seconds(lambda: decode_video(clip, sampling, size, threads=1), 3)
    images = decode_video(clip, parse_sampling("uniform:32"), size, threads=1).images
    encoder.encode(images[:8])  # warm
    return decode[32], decode[8], _cpu_seconds(lambda: encoder.encode(images), 2) / len(images)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.0f} h" if seconds >= 36000 else f"{seconds / 3600:,.1f} h"


def capacity(decode32: float, decode8: float, encode_frame: float, xgb_row_round: float, encoder: str,
             features: int, rounds: int, trials: int, folds: int, gpu_encode: float = GPU_FRAMES_PER_S,
             host_cores: int = GPU_HOST_DECODE_CORES) -> None:
    """Print the capacity estimate for the full collection from the measured single-core costs and
    the GPU encode rate (frames/s) measured by bench/encode.py."""
    per_clip = decode32 + FULL_FRAMES * encode_frame
    core_s = FULL_COLLECTION * per_clip
    host_decode = host_cores * FULL_FRAMES / decode32
    gpu_frames_per_s = min(gpu_encode, host_decode)
    gpu_s = FULL_COLLECTION * FULL_FRAMES / gpu_frames_per_s
    bound = "decode" if host_decode < gpu_encode else "encode"
    fits = trials * folds + folds + 1  # tuning trials (k-fold CV each), out-of-fold refits, final fit
    stack_s = xgb_row_round * FULL_COLLECTION * rounds * fits
    print(f"capacity estimate, full Pri-matrix collection: {FULL_COLLECTION:,} clips x {FULL_FRAMES} frames")
    print(f"  measured CPU time, one thread: decode of a 720x404 15 s H.264 clip {decode32:.2f} s for 32 frames "
          f"({decode8:.2f} s for 8); {encoder} {encode_frame * 1000:.1f} ms/frame; "
          f"XGBoost {xgb_row_round * 1e6:.2f} us per row-round ({features} features, {CLASSES} classes)")
    print(f"  featurize, per CPU core:  {per_clip:.2f} s/clip -> {_hours(core_s)} on one core "
          f"({_hours(core_s / 16)} on 16 cores at perfect scaling)")
    print(f"  featurize, per GPU (encode {gpu_encode:,.0f} frames/s as measured on an H100 by bench/encode.py; "
          f"{host_cores} host cores decode {host_decode:,.0f} frames/s at this machine's per-core rate): "
          f"{gpu_frames_per_s:,.0f} frames/s, {bound}-bound -> {_hours(gpu_s)}")
    print(f"  stack ({trials} trials x {folds}-fold CV + {folds} OOF refits + final fit, {rounds} rounds, "
          f"{features} features, all clips labelled): {_hours(stack_s)} on one core")
    print("  growth: featurize ~ clips x (decode per clip + frames x sum over encoders of encode per frame);")
    print(f"    sequential decode reads the whole clip, so 8 frames cost {decode8 / decode32:.2f}x what 32 cost;")
    print("    a second encoder adds its own per-frame cost (larger EfficientNets ~2-4x lite0 per frame).")
    print("  stack ~ labelled clips x features x rounds x (trials x folds + folds + 1); features grow with")
    print("    encoders x aggregate columns (e.g. 24 classes x 10 histogram bins per frame-prediction set).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="copies of each bench clip")
    parser.add_argument("--frames", default="uniform:16")
    parser.add_argument("--encoder", default="lite0")
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials assumed in the stack estimate")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--stack-features", type=int, default=600, help="level-2 features assumed in the estimate")
    parser.add_argument("--stack-rounds", type=int, default=300, help="boosting rounds assumed in the estimate")
    parser.add_argument("--gpu-frames-per-s", type=float, default=GPU_FRAMES_PER_S,
                        help="GPU encode rate for the estimate (bench/encode.py --device cuda)")
    parser.add_argument("--gpu-host-cores", type=int, default=GPU_HOST_DECODE_CORES,
                        help="decode cores of the GPU host in the estimate")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from jungle.features.models.encoders import EncoderConfig
    from jungle.features.featurize.config import FeaturizeConfig

    print(f"{machine()} at start")
    config = FeaturizeConfig(encoders=(EncoderConfig(name=args.encoder),), frames=args.frames, block=2,
                             torch_threads=1, workers=0)
    featurize_scaling(config, args.copies)
    baseline = xgboost_scaling(args.rows, args.features, args.rounds)[0]
    decode32, decode8, encode_frame = single_core_costs(args.encoder)
    per_feature = baseline.cpu / (baseline.work * args.features)
    capacity(decode32, decode8, encode_frame, per_feature * args.stack_features, args.encoder,
             args.stack_features, args.stack_rounds, args.trials, args.folds, args.gpu_frames_per_s,
             args.gpu_host_cores)
    print(f"{machine()} at the end")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
