"""Benchmark `jungle ingest`: videos per second against one `ffprobe` process per file.

Builds a corpus of symbolic links to real clips (every video under ``--media``, by default
../shared/media; >= 1,000 links spread over site folders) in a temporary directory, then times, in
this process:

- baseline: `ffprobe -show_format -show_streams -of json FILE`, one process per file, run on a
  subset (every clip, ``--ffprobe-files`` in all) and extrapolated per file to the corpus;
- metadata only: :func:`jungle.ingest.run.ingest` with ``stats=False`` into a fresh workspace
  (discovery, header probe + frame count by demuxing, DuckDB writes: the whole run);
- metadata + camera statistics (8 sampled frames decoded per video);
- a re-run on the unchanged corpus (every file skipped).

Usage: python bench/ingest.py [--files 1200] [--workers 2] [--ffprobe-files 48] [--media DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jungle.ingest.discover import discover
from jungle.ingest.run import IngestConfig, ingest
from jungle.store.workspace import Workspace

from common import machine, ratio, shared_media


def build_corpus(root: Path, n_files: int, media: Path) -> list[Path]:
    """``n_files`` symlinks to the videos under ``media``, 50 per site folder."""
    clips = [c.path for c in discover(media).candidates]
    links = []
    for i in range(n_files):
        clip = Path(clips[i % len(clips)])
        folder = root / f"site_{i // 50:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / f"{i:05d}_{clip.name}"
        link.symlink_to(clip)
        links.append(link)
    return links


def time_ffprobe(files: list[Path]) -> float:
    """Seconds per file for one ffprobe process per file."""
    started = time.perf_counter()
    for path in files:
        subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                       check=True, capture_output=True)
    return (time.perf_counter() - started) / len(files)


def time_ingest(corpus: Path, workspace: Path, config: IngestConfig) -> tuple[float, int]:
    summary = ingest(Workspace.resolve(workspace), corpus, config, progress=False)
    if summary.failed:
        raise SystemExit(f"bench: {summary.failed} failures, e.g. {summary.failures[:2]}")
    return summary.seconds, summary.found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ffprobe-files", type=int, default=48)
    parser.add_argument("--media", type=Path, default=None,
                        help="folder of real clips (default ../shared/media; tests/media is the committed set)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jungle-bench-ingest-") as tmp:
        tmp = Path(tmp)
        links = build_corpus(tmp / "corpus", args.files, args.media or shared_media())
        subset = links[: args.ffprobe_files]
        per_file = time_ffprobe(subset)
        baseline_rate = 1.0 / per_file
        print(f"corpus: {len(links)} symlinks to {len({os.path.realpath(p) for p in links})} clips; "
              f"{args.workers} workers; {machine()}")
        print(f"ffprobe per file (1 process each): {per_file * 1000:.1f} ms/file on {len(subset)} files "
              f"-> {baseline_rate:.1f} videos/s, extrapolated {per_file * len(links):.1f} s for the corpus")
        runs = [
            ("metadata only", tmp / "ws-meta", IngestConfig(workers=args.workers, stats=False)),
            ("metadata + camera stats", tmp / "ws-stats", IngestConfig(workers=args.workers, stats=True)),
            ("re-run, all unchanged", tmp / "ws-meta", IngestConfig(workers=args.workers, stats=False)),
        ]
        for label, workspace, config in runs:
            seconds, found = time_ingest(tmp / "corpus", workspace, config)
            rate = found / seconds
            print(f"{label:<24} {found} videos in {seconds:6.2f} s = {rate:8.1f} videos/s "
                  f"= {ratio(rate, baseline_rate)} ffprobe-per-file")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
