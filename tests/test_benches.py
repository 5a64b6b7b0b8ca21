"""Every bench/ script, run at its smallest size as a real subprocess, so that a benchmark cannot rot unseen.

The contract each script keeps (its owner keeps it when the script changes): run with the
arguments below it exits 0 and prints its result line, the pattern below (for most scripts a
ratio against a baseline measured in the same run, ``1.93x``). A script that needs
``../shared/media`` or the MegadetectorLite weights is skipped with the reason where they are
missing. A new script gets an entry here (``test_every_bench_script_has_a_smoke_run`` fails until it
does); a script that grows a longer default keeps a small-size option for this test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
MEDIA = Path(__file__).resolve().parent / "media"


@dataclass(frozen=True)
class Smoke:
    args: tuple[str, ...]  # the smallest size; {tmp}, {media} and {workspace} are filled in
    prints: str            # a regular expression its output must match (its result line)
    needs: tuple[str, ...] = ()  # fixtures: shared_media, megadetector_file, stacked (a workspace with a model)


#: Scripts that take minutes even at their smallest size: the `bench` lane (`pytest -m bench`), not CI's run.
MINUTES = {"counts.py", "detector.py", "encode.py", "featurize.py", "quality.py", "realistic.py", "scale.py",
           "stack.py"}


RATIO = r"\d+\.\d\dx"
ZAMBA = "camera_trap/zamba_test_clips/data/raw"
SMOKES = {
    "active.py": Smoke(("--workspace", "{workspace}", "--start", "20", "--k", "20", "--rounds", "2", "--repeats", "1",
                        "--png", "{tmp}/active.png", "--timing-clips", "300"),
                       r"uncertainty (reaches|never reached) random's final log loss", ("stacked",)),
    "aggregate.py": Smoke(("--videos", "200", "--repeat", "1"), rf"\n +200 +jungle .* {RATIO}\n"),
    "backends.py": Smoke(("--encoder", "resnet10t", "--batch", "8", "--rounds", "1", "--seconds", "0.2"),
                         rf"\| openvino:fp32 \| [\d.]+ \| {RATIO} \|", ("shared_media",)),
    "counts.py": Smoke(("{tmp}/groups", "--smallest"), r"## test: \d+ clips", ("shared_media", "megadetector_file")),
    "demo_determinism.py": Smoke(("--rounds", "2", "--no-load"), r"files: \d+; with more than one version: 0\n"),
    "detector.py": Smoke(("--frames", "4", "--rounds", "1", "--batch", "4"), rf"640x384 fused +[\d.]+ +{RATIO}",
                         ("shared_media", "megadetector_file")),
    "encode.py": Smoke(("--encoder", "resnet10t", "--input-size", "64", "--batches", "8", "--seconds", "0.2"),
                       rf"\| all \| 8 \| .* \| {RATIO} \|"),
    "featurize.py": Smoke(("--smallest", "--clips", *(f"{{media}}/{ZAMBA}/{clip}" for clip in (
        "benjamin/04250002.MP4", "chimpandsee/Trip_5/card 1.2_location/PICT0074.ASF",
        "noemie/Videos_All/Taï_T124/Taï_cam61_687002_647212_20161106/f4636736.avi"))),
                          rf"boxes and crops / whole frames = {RATIO}"),
    "groups.py": Smoke(("{tmp}/groups", "--clips", "4", "--workers", "1"), r'"clips": 4', ("shared_media",)),
    "ingest.py": Smoke(("--files", "40", "--ffprobe-files", "4", "--media", "{media}"),
                       rf"metadata only +40 videos in .* = +{RATIO} ffprobe-per-file"),
    "quality.py": Smoke(("--smoke", "--collection", "{tmp}/collection"), r"split \([^)]*\):\n\| ", ("shared_media",)),
    "realistic.py": Smoke(("{tmp}/collection", "--clips", "48", "--workers", "1"), r'"clips": 48', ("shared_media",)),
    "scale.py": Smoke(("--copies", "1", "--frames", "uniform:2", "--encoder", "resnet10t", "--rows", "500",
                       "--features", "8", "--rounds", "3"),
                      rf"scaling 1 -> 2 workers: wall-clock efficiency [\d.]+ \(speed-up {RATIO}\)", ("shared_media",)),
    "stack.py": Smoke(("--rows", "300", "--features", "40", "--informative", "10", "--trials", "2",
                       "--worker-trials", "1", "--workers", "1,2", "--max-rounds", "10"),
                      rf"pruning: trees per trial cut {RATIO}"),
    "zeroshot.py": Smoke(("--real", "--workspace", "{tmp}/zeroshot"), r'"threshold": ',
                         ("shared_media", "megadetector_file")),
}


def test_every_bench_script_has_a_smoke_run():
    # a script runs as __main__; the other modules (common.py, realistic_media.py, ...) are what scripts import
    scripts = {p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")}
    assert scripts == set(SMOKES), f"add a Smoke entry for {sorted(scripts - set(SMOKES))}"


@pytest.mark.slow  # 2 to 30 s per script on two idle cores; those in MINUTES 30 s to 3 min
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("script", [pytest.param(name, marks=[pytest.mark.bench] if name in MINUTES else [])
                                    for name in sorted(SMOKES)])
def test_bench_script_runs_at_its_smallest_size(script, request, tmp_path):
    smoke = SMOKES[script]
    fixtures = {name: request.getfixturevalue(name) for name in smoke.needs}  # skips with the reason
    workspace = ""
    if "stacked" in fixtures:  # a copy: a bench never writes into the session's workspace
        workspace = tmp_path / "ws"
        shutil.copytree(fixtures["stacked"][0].workspace.root, workspace)
    args = [a.format(tmp=tmp_path, media=MEDIA, workspace=workspace) for a in smoke.args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1400)
    print(f"{script}: {time.perf_counter() - started:.1f} s")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert re.search(smoke.prints, output), f"{script} did not print {smoke.prints!r}:\n{output[-4000:]}"
