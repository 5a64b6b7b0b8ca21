"""Benchmark of the inference backends against PyTorch on the CPU, in one process, on real frames.

Prints, for lite0 (or ``--encoder``) on the CPU:

1. encoder-only frames/s of PyTorch and of each installed backend and precision (fp32; int8 with
   ``--int8``, calibrated on the real camera-trap clips of ``../shared/media``), measured in
   interleaved rounds (each round times every backend once, so that a change of the machine's load
   hits them alike) and reported as the median of the per-round ratios to PyTorch;
2. the cosine similarity of each backend's embeddings to PyTorch's on the same real frames
   (smallest and mean over frames);
3. with ``--end-to-end``: ``jungle featurize`` frames/s on the four real clips of
   ``bench/featurize.py`` (``--copies`` each) per backend, in fresh workspaces, against PyTorch.

The machine's load average is printed first and last: on a shared machine, absolute numbers
move, ratios much less.

Usage: ``python bench/backends.py [--encoder lite0] [--batch 32] [--rounds 3] [--seconds 3] [--int8]
[--end-to-end] [--copies 2]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REAL_CLIPS, link_collection, machine, ratio, real_clips, register_videos, shared_media


def _rate(encode, frames: np.ndarray, batch: int, seconds: float) -> float:
    """Frames per second of ``encode`` over the real frames in batches, for about ``seconds``."""
    encode(frames[:batch])  # warm-up
    done, start, offset = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds or done < 2 * batch:
        chunk = frames[offset:offset + batch]
        if len(chunk) < batch:
            offset, chunk = 0, frames[:batch]
        encode(chunk)
        done, offset = done + len(chunk), offset + batch
    return done / (time.perf_counter() - start)


def _cosines(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    a, b = reference.astype(np.float64), other.astype(np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosine.min()), float(cosine.mean())


def _real_frames(size: int, per_clip: int = 32) -> np.ndarray:
    from jungle.features.featurize.decode_pool import decode_video
    from jungle.features.video.sampling import parse_sampling

    sampling = parse_sampling(f"uniform:{per_clip}")
    return np.concatenate([decode_video(str(clip), sampling, (size, size)).images for clip in real_clips()])


def _calibration(size: int, folder: Path):
    """int8 calibration frames drawn from a workspace of the real camera-trap clips (not the measured ones)."""
    from jungle.features.featurize.calibration import calibration_frames
    from jungle.store.workspace import Workspace

    folder_of_clips = shared_media() / "camera_trap"
    clips = sorted(p for p in folder_of_clips.rglob("*") if p.suffix.lower() in (".mp4", ".avi", ".asf"))
    workspace = Workspace.resolve(folder / "calibration-ws")
    register_videos(workspace, clips)
    return calibration_frames(workspace, size)


def _end_to_end(args, names: list[str], folder: Path) -> dict[str, float]:
    """featurize frames/s per backend on fresh workspaces of the four real clips (interleaved order)."""
    from jungle.features.featurize.config import FeaturizeConfig
    from jungle.features.featurize.runner import featurize
    from jungle.features.models.backends import BackendMismatch
    from jungle.features.models.encoders import EncoderConfig
    from jungle.store.workspace import Workspace

    paths = link_collection(folder / "videos", real_clips(), args.copies)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.e2e_rounds):
        for name in names:
            backend, _, precision = name.partition(":")
            workspace = Workspace.resolve(folder / f"ws-{name.replace(':', '-')}-{round_number}")
            register_videos(workspace, paths)
            config = FeaturizeConfig(encoders=(EncoderConfig(name=args.encoder),), batch_size=args.batch,
                                     backend=backend, precision=precision or "fp32")
            try:
                summary = featurize(workspace, config, progress=False)
            except BackendMismatch as exc:  # a backend the check refuses is reported, not measured
                print(f"  end to end {name:18s} refused: {exc}", flush=True)
                continue
            rates[name].append(summary.frames_per_second)
            print(f"  end to end {name:18s} round {round_number + 1}: {summary.frames_per_second:6.1f} frames/s "
                  f"({summary.frames} frames in {summary.seconds:.1f} s, after loading)", flush=True)
    return {name: statistics.median(values) for name, values in rates.items() if values}


def _recipe_log_loss(args, names: list[str], folder: Path) -> dict[str, float]:
    """OOF log loss of the ``all`` recipe on the demo collection (the demo's own settings: uniform:8
    with stages, 5 trials, 64 principal components) with lite0 featurized by each backend."""
    from jungle.demo.config import DemoConfig
    from jungle.demo.generate import make_demo
    from jungle.demo.run import DemoRunConfig
    from jungle.features.featurize.config import FeaturizeConfig
    from jungle.features.featurize.runner import featurize
    from jungle.features.models.encoders import EncoderConfig
    from jungle.ingest.folds import FoldsConfig
    from jungle.ingest.labels import LabelsConfig
    from jungle.ingest.run import IngestConfig, ingest
    from jungle.meta.stack import StackConfig, stack
    from jungle.meta.tuning import TuneConfig
    from jungle.pipeline import DEFAULT_SOURCE, ensure_feature_sets
    from jungle.store.workspace import Workspace

    demo = DemoRunConfig(directory=Path(args.demo))
    demo_config = DemoConfig(seed=demo.seed, n_train=demo.n_train, n_test=demo.n_test)
    manifest = make_demo(demo.directory, demo_config, workers=2)
    losses = {}
    for name in names:
        backend, _, precision = name.partition(":")
        workspace = Workspace.resolve(folder / f"demo-{name.replace(':', '-')}")
        ingest(workspace, manifest.directory / "train", IngestConfig(),
               labels=LabelsConfig(path=str(manifest.train_labels)), folds=FoldsConfig(k=demo.folds, seed=demo.seed))
        start = time.perf_counter()
        featurize(workspace, FeaturizeConfig(encoders=(EncoderConfig(stages="all"),), frames=demo.frames,
                                             backend=backend, precision=precision or "fp32"), progress=False)
        featurized = time.perf_counter() - start
        ensure_feature_sets(workspace, ["meta", f"hist_{DEFAULT_SOURCE}", f"minmax_{DEFAULT_SOURCE}",
                                        f"minmax_stages_{DEFAULT_SOURCE}", f"attn_{DEFAULT_SOURCE}"],
                            frames=demo.frames)
        tune = TuneConfig(trials=demo.trials, seed=demo.seed, max_rounds=demo.max_rounds, early_stopping_rounds=20)
        losses[name] = stack(workspace, StackConfig(recipe="all", tune=tune, pca=demo.pca)).log_loss
        print(f"  demo `all` recipe {name:18s} OOF log loss {losses[name]:.4f} (featurize {featurized:.0f} s)",
              flush=True)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="lite0")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per backend per round")
    parser.add_argument("--int8", action="store_true", help="also int8 (quantisation takes ~0.5 min per backend)")
    parser.add_argument("--end-to-end", action="store_true", help="also featurize the four real clips per backend")
    parser.add_argument("--copies", type=int, default=2, help="copies of each clip end to end")
    parser.add_argument("--e2e-rounds", type=int, default=1)
    parser.add_argument("--demo", default=None, help="demo collection folder (made if missing): also the `all` "
                                                     "recipe's OOF log loss per backend (minutes per backend)")
    args = parser.parse_args()

    import torch

    from jungle.features.models.backends import accelerate, backend_version, installed_backends
    from jungle.features.models.encoders import EncoderConfig, load_encoder
    from jungle.runtime import available_cores

    threads = available_cores()
    torch.set_num_threads(threads)
    print(f"{machine()} at start; {threads} threads; encoder {args.encoder}, batch {args.batch}; "
          + ", ".join(f"{name} {backend_version(name)}" for name in installed_backends()), flush=True)
    with tempfile.TemporaryDirectory(prefix="jungle-bench-backends-") as tmp:
        os.environ.setdefault("JUNGLE_WEIGHTS_DIR", str(Path(tmp) / "weights"))  # exports timed from scratch
        encoder = load_encoder(EncoderConfig(name=args.encoder))
        frames = _real_frames(encoder.input_size)
        models = {"torch": encoder}
        calibration = _calibration(encoder.input_size, Path(tmp)) if args.int8 else None
        for name in installed_backends():
            for precision in ("fp32", "int8") if args.int8 else ("fp32",):
                if name == "torch":
                    continue
                start = time.perf_counter()
                models[f"{name}:{precision}"] = accelerate(encoder, name, precision, calibration=calibration,
                                                           tolerance=0.0)
                print(f"  prepared {name}:{precision} in {time.perf_counter() - start:.1f} s "
                      f"(export{', quantisation' if precision == 'int8' else ''}, load, verification)", flush=True)
        reference = encoder.encode(frames)["embedding"]
        ratios: dict[str, list[float]] = {name: [] for name in models}
        rates: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):
            base = _rate(encoder.encode, frames, args.batch, args.seconds)
            for name, model in models.items():
                rate = base if name == "torch" else _rate(model.encode, frames, args.batch, args.seconds)
                rates[name].append(rate)
                ratios[name].append(rate / base)
        print(f"\n{len(frames)} real frames of {len(REAL_CLIPS)} clips at {encoder.input_size}px; median of "
              f"{args.rounds} interleaved rounds\n| backend | frames/s | x PyTorch | cosine to PyTorch (min / mean) |\n"
              "| --- | --- | --- | --- |")
        for name, model in models.items():
            low, mean = _cosines(reference, model.encode(frames)["embedding"]) if name != "torch" else (1.0, 1.0)
            print(f"| {name} | {statistics.median(rates[name]):.1f} | {statistics.median(ratios[name]):.2f}x | "
                  f"{low:.5f} / {mean:.5f} |", flush=True)
        variants = list(models)
        del models, encoder  # no idle runtime threads left beside the runs below
        if args.end_to_end:
            e2e = _end_to_end(args, variants, Path(tmp))
            print(f"\nend to end, {args.copies} x {len(REAL_CLIPS)} real clips, uniform:32\n"
                  "| backend | frames/s | x PyTorch |\n| --- | --- | --- |")
            for name, rate in e2e.items():
                print(f"| {name} | {rate:.1f} | {ratio(rate, e2e['torch'])} |")
        if args.demo:
            names = [n for n in variants if n in ("torch", "openvino:fp32", "openvino:int8")]
            losses = _recipe_log_loss(args, names, Path(tmp))
            print("\n| backend | `all` OOF log loss | vs PyTorch |\n| --- | --- | --- |")
            for name, loss in losses.items():
                print(f"| {name} | {loss:.4f} | {100 * (loss / losses['torch'] - 1):+.1f}% |")
    print(f"{machine()} at the end")


if __name__ == "__main__":
    main()
