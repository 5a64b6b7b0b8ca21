"""Benchmark of `jungle featurize` on real clips: every stage timed with the backend the run uses, end to end
with and without boxes and crops, and an ffmpeg-subprocess decoding baseline.

Prints, in one run on the same clips and the same sampled frames:

- per stage, in this process, one video after another (the work a run does, stage by stage):
  ``decode`` (the sampled frames at the encoder's size: what a run without boxes decodes),
  ``decode + working`` (the same decoding, also converting the ``candidates`` frames boxes are found on
  to the working resolution), ``motion`` (their motion boxes and the choice of the ``look`` frames),
  ``detector`` (MegadetectorLite on the ``look`` frames), ``crops`` (choosing and cutting them) and ``encoder`` (whole
  frames, then the crops, through the encoder *on the backend the run uses*: OpenVINO by default);
- end to end, the real runner in fresh workspaces: whole frames only (``--no-crops --no-detector``,
  what featurize did before boxes and crops) and the default (boxes and crops; the detector when its
  weights are cached), with their ratio (target: within 2x);
- each run against its serial bound, the sum of its stages' per-video times: 1.0 means nothing is
  lost between stages, above 1.0 the overlap of decoding (in workers) and the forward pass gains;
- jungle's decoding vs an ffmpeg-subprocess-per-video loader for the same frames, done the way
  zamba 2.7 does it (``ffprobe``, then ``ffmpeg -i FILE -vf select=... -f rawvideo pipe:`` and
  ``cv2.resize``; target >= 3x), in wall time and in CPU time.

Usage: ``python bench/featurize.py [--copies 3] [--frames uniform:32] [--encoder lite0] [--clips FILE_OR_DIR ...]
[--no-detector] [--no-crops] [--no-ffmpeg] [--smallest]`` (``--clips``: your own videos instead of the four
real clips of ``../shared/media``; ``--smallest``: one copy of the two short camera-trap clips, 4 frames,
no ffmpeg baseline: under a minute, for a smoke test).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REAL_CLIPS, cpu_seconds, link_collection, register_videos, shared_media  # bench/common.py

SMALLEST = REAL_CLIPS[:2]


def _clips(given: list[str] | None, smallest: bool = False) -> list[Path]:
    """The clips to measure: the files given (folders searched for videos), else the default four (two)."""
    if not given:
        return [shared_media() / clip for clip in (SMALLEST if smallest else REAL_CLIPS)]
    from jungle.ingest.discover import VIDEO_EXTENSIONS

    found = []
    for item in map(Path, given):
        found += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) if item.is_dir() else [item]
    if not found:
        raise SystemExit(f"no video files in {' '.join(given)}")
    return found


def _zamba_frames(path: Path, indices: list[int], size: int) -> np.ndarray:
    """zamba 2.7's ``load_video_frames`` for explicit frame indices, step for step: ``ffprobe`` for
    the frame size, one ``ffmpeg`` process with a ``select`` filter writing full-size RGB to a pipe,
    then ``cv2.resize`` (INTER_AREA when shrinking) to the model input."""
    import json

    import cv2

    probe = json.loads(subprocess.run(["ffprobe", "-v", "quiet", "-print_format", "json", "-show_streams", str(path)],
                                      capture_output=True, check=True).stdout)
    stream = next(s for s in probe["streams"] if s["codec_type"] == "video")
    width, height = int(stream["width"]), int(stream["height"])
    select = "+".join(f"eq(n\\,{i})" for i in indices)
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-vf", f"select={select}",
               "-vsync", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA if width > size else cv2.INTER_LINEAR)
                     for f in frames])


class Stages:
    """Seconds per stage, summed over videos, and what went through each."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.items: dict[str, int] = {}

    def add(self, stage: str, seconds: float, items: int) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.items[stage] = self.items.get(stage, 0) + items


def _stages(paths, sampling, size: int, stage, model, batch_size: int, ffmpeg: bool) -> tuple[Stages, dict]:
    """Every stage on every video, one video at a time, in this process (see the module docstring)."""
    from jungle.features.featurize.decode_pool import decode_video

    timed, zamba = Stages(), {"ours": {}, "theirs": {}, "gaps": [], "cpu_ours": 0.0, "cpu_theirs": 0.0}
    frames, crops = [], []
    for path in paths:
        cpu_start, start = cpu_seconds(), time.perf_counter()
        plain = decode_video(str(path), sampling, (size, size))
        cpu_middle, middle = cpu_seconds(), time.perf_counter()
        timed.add("decode", middle - start, plain.n_valid)
        zamba["ours"][path.name] = zamba["ours"].get(path.name, 0.0) + middle - start
        zamba["cpu_ours"] += cpu_middle - cpu_start
        if ffmpeg:
            baseline = _zamba_frames(path, plain.frame_index[plain.valid].tolist(), size)
            zamba["theirs"][path.name] = zamba["theirs"].get(path.name, 0.0) + time.perf_counter() - middle
            zamba["cpu_theirs"] += cpu_seconds() - cpu_middle
            assert len(baseline) == plain.n_valid, path
            zamba["gaps"].append(float(np.abs(baseline.astype(np.int16) - plain.images.astype(np.int16)).mean()))
        frames.append(plain.images)
        if stage is None:
            continue
        began = time.perf_counter()
        decoded = decode_video(str(path), sampling, (size, size), working=stage.boxes.working)
        timed.add("decode + working", time.perf_counter() - began - decoded.motion_seconds, decoded.n_valid)
        timed.add("motion", decoded.motion_seconds, len(decoded.candidates))
        before = dict(stage.seconds), stage.frames_detected
        prepared = stage.prepare(decoded)
        timed.add("detector", stage.seconds["detector"] - before[0]["detector"], stage.frames_detected - before[1])
        n_crops = len(prepared.crops) if prepared.crops is not None else 0
        timed.add("crops", stage.seconds["crops"] - before[0]["crops"], n_crops)
        if n_crops:
            crops.append(prepared.crops)
    for name, images in (("encoder: frames", np.concatenate(frames)), ("encoder: crops", _joined(crops, size))):
        if not len(images):
            continue
        model.encode(images[:batch_size])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            model.encode(images[i:i + batch_size])
        timed.add(name, time.perf_counter() - start, len(images))
    return timed, zamba


def _joined(parts: list[np.ndarray], size: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8)


def _end_to_end(root: Path, paths: list[Path], config):
    from jungle.features.featurize.runner import featurize
    from jungle.store.workspace import Workspace

    workspace = Workspace.resolve(root)
    register_videos(workspace, paths)
    return featurize(workspace, config, progress=False)


def _print_stages(timed: Stages, videos: int) -> None:
    print(f"{'stage':22s} {'seconds':>8s} {'s/video':>8s} {'items':>6s} {'items/s':>8s}")
    for stage, seconds in timed.seconds.items():
        items = timed.items[stage]
        rate = f"{items / seconds:8.1f}" if seconds else "       -"
        print(f"{stage:22s} {seconds:8.2f} {seconds / videos:8.3f} {items:6d} {rate}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--clips", nargs="+", default=None, help="video files or folders (default: four real clips)")
    parser.add_argument("--frames", default="uniform:32")
    parser.add_argument("--encoder", default="lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-detector", action="store_true", help="boxes from motion only")
    parser.add_argument("--no-crops", action="store_true", help="boxes, but no crops")
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip the ffmpeg-subprocess baseline")
    parser.add_argument("--smallest", action="store_true",
                        help="one copy of two short clips, uniform:4, no ffmpeg baseline (a smoke test)")
    args = parser.parse_args()
    if args.smallest:
        args.copies, args.frames, args.no_ffmpeg = 1, "uniform:4", True

    import torch

    from jungle.features.featurize.config import FeaturizeConfig
    from jungle.features.featurize.crops import BoxesConfig
    from jungle.features.featurize.runner import load_models, load_stage, resolve_config
    from jungle.features.models.encoders import EncoderConfig

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    encoders = (EncoderConfig(name=args.encoder),)
    today = FeaturizeConfig(encoders=encoders, frames=args.frames, batch_size=args.batch_size, workers=args.workers,
                            boxes=None, crops=None)
    boxes = BoxesConfig(detector=None) if args.no_detector else BoxesConfig()
    default, notes = resolve_config(today.model_copy(update={"boxes": boxes, "crops": None if args.no_crops
                                                             else FeaturizeConfig().crops}))
    for note in notes:
        print(f"note: {note}")
    models = load_models(None, default)
    model, stage = models[0], load_stage(default, models)
    size = model.input_size
    backend = model.describe().get("backend", "torch")
    with tempfile.TemporaryDirectory(prefix="jungle-bench-") as tmp:
        clips = _clips(args.clips, args.smallest)
        paths = link_collection(Path(tmp) / "videos", clips, args.copies)
        detector = "off" if stage.detector is None else \
            f"MegadetectorLite on {stage.detector.network.backend} {stage.detector.network.precision}, " \
            f"on {stage.boxes.look or 'all'} of {stage.boxes.candidates} frames per video"
        print(f"{len(paths)} videos ({args.copies} x {len(clips)} clips), sampling {default.sampling.spec()}, "
              f"encoder {args.encoder} at {size}px on {backend}, detector {detector}, "
              f"crops {'off' if default.crops is None else default.crops.n}, {threads} CPU threads, "
              f"load average {os.getloadavg()[0]:.1f}")
        from jungle.features.featurize.decode_pool import decode_video

        decode_video(str(paths[0]), default.sampling, (size, size))  # warm the imports
        stage.prepare(decode_video(str(paths[0]), default.sampling, (size, size), working=stage.boxes.working))
        # ^ and the detector's first forward pass (its runtime allocates then); _stages times differences
        timed, zamba = _stages(paths, default.sampling, size, stage, model, args.batch_size, not args.no_ffmpeg)
        plain = _end_to_end(Path(tmp) / "ws-frames", paths, today)
        full = _end_to_end(Path(tmp) / "ws-default", paths, default)
        plain_again = _end_to_end(Path(tmp) / "ws-frames-again", paths, today)

    videos = len(paths)
    _print_stages(timed, videos)
    seconds = timed.seconds
    bound_plain = seconds["decode"] + seconds["encoder: frames"]
    bound_full = sum(v for k, v in seconds.items() if k != "decode")
    plain_s = (plain.seconds + plain_again.seconds) / 2
    print(f"\nend to end, whole frames only   {plain_s:7.2f} s  ({plain.seconds:.2f} and {plain_again.seconds:.2f} s, "
          f"before and after the default run; {plain.frames} frames)")
    print(f"end to end, boxes and crops     {full.seconds:7.2f} s  ({full.encoded} images encoded, "
          f"{full.detected} frames detected; inside: {_inside(full)})")
    print(f"boxes and crops / whole frames = {full.seconds / plain_s:.2f}x   (target <= 2x)")
    print(f"serial bound, whole frames      {bound_plain:7.2f} s = decode + encoder;  bound / end to end = "
          f"{bound_plain / plain_s:.2f}")
    print(f"serial bound, boxes and crops   {bound_full:7.2f} s = sum of the stages;  bound / end to end = "
          f"{bound_full / full.seconds:.2f}   (1.0: no time lost between stages; above: the overlap gains)")
    if not args.no_ffmpeg:
        _print_ffmpeg(zamba, timed, args.copies)
    sys.stdout.flush()


def _inside(summary) -> str:
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in summary.stage_seconds.items())
    return (f"forward passes {summary.encode_seconds:.2f} s, decoding (in workers) {summary.decode_seconds:.2f} s, "
            f"{steps}")


def _print_ffmpeg(zamba: dict, timed: Stages, copies: int) -> None:
    ours, theirs = zamba["ours"], zamba["theirs"]
    decode_s, ffmpeg_s = sum(ours.values()), sum(theirs.values())
    n_frames = timed.items["decode"]
    print(f"zamba-style ffmpeg {n_frames / ffmpeg_s:8.1f} frames/s  ({ffmpeg_s:.2f} s; same frames, "
          f"mean |pixel difference| {np.mean(zamba['gaps']):.1f}/255 from the different resize filters)")
    print(f"jungle decode / ffmpeg subprocess = {ffmpeg_s / decode_s:.2f}x   (target >= 3x)")
    print(f"  in CPU time: jungle {zamba['cpu_ours']:.2f} s, zamba-style {zamba['cpu_theirs']:.2f} s = "
          f"{zamba['cpu_theirs'] / zamba['cpu_ours']:.2f}x (the ratio when every core already decodes another video)")
    mp4 = [name for name in ours if name.lower().endswith(".mp4")]
    if mp4:
        print(f"  MP4 clips only (the Pri-matrix format is H.264 MP4): "
              f"{sum(theirs[n] for n in mp4) / sum(ours[n] for n in mp4):.2f}x")
    for name in ours:
        print(f"  {name:40s} jungle {ours[name] / copies:6.3f} s/video   "
              f"zamba-style {theirs[name] / copies:6.3f} s/video   {theirs[name] / ours[name]:5.2f}x")


if __name__ == "__main__":
    main()
