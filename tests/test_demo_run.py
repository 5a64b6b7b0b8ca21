"""The main job end to end at a tiny size: `jungle demo run` through the real CLI."""

from __future__ import annotations

import csv

import pytest

from typer.testing import CliRunner

from jungle.classes import PRIMATRIX_CLASSES
from jungle.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the demo end to end (~2 min on 2 cores: crops and boxes)


def test_demo_run_tiny_end_to_end(tmp_path):
    data, ws, out = tmp_path / "data", tmp_path / "ws", tmp_path / "submission.csv"
    result = CliRunner().invoke(app, [
        "demo", "run", "--data", str(data), "-w", str(ws), "--n-train", "72", "--n-test", "12",
        "--frames", "uniform:3", "--trials", "1", "--recipes", "metadata-only,first-place",
        "--out", str(out), "-f", "csv",
    ])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(line for line in result.stdout.splitlines() if line and "," in line))
    by_recipe = {r["recipe"]: float(r["oof_log_loss"]) for r in rows}
    prior = by_recipe.pop("class prior (baseline)")
    assert set(by_recipe) == {"metadata-only", "first-place"}
    assert min(by_recipe.values()) < prior, (by_recipe, prior)

    with out.open(newline="") as handle:
        submission = list(csv.reader(handle))
    assert submission[0] == ["filename", *PRIMATRIX_CLASSES]
    with (data / "submission_format.csv").open(newline="") as handle:
        expected = sorted(r["filename"] for r in csv.DictReader(handle))
    assert sorted(r[0] for r in submission[1:]) == expected
    for row in submission[1:]:
        probs = [float(v) for v in row[1:]]
        assert all(0.0 < p < 1.0 for p in probs)
    assert (ws / "reports").exists() and any((ws / "reports").iterdir())
