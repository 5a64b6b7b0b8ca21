"""One error path in the command line: every jungle error is one "Error: ..." line on stderr with
the error's exit code, whichever command raised it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from jungle.cli import app
from jungle.store.workspace import WorkspaceMissing

MISSING_WORKSPACE_COMMANDS = [
    ["labels", "labels.csv"], ["folds", "3"], ["featurize"], ["aggregate"], ["status"],
    ["sql", "SELECT 1"], ["review", "--retrain"],
]


def test_a_missing_workspace_is_one_line_and_the_same_line_everywhere(tmp_path):
    missing = tmp_path / "nowhere"
    outputs = set()
    for command in MISSING_WORKSPACE_COMMANDS:
        result = CliRunner().invoke(app, [*command, "--workspace", str(missing)])
        assert result.exit_code == WorkspaceMissing.exit_code, (command, result.output)
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, (command, result.output)
        assert str(missing) in result.output and "jungle ingest DIR" in result.output
        outputs.add(result.output)
    assert len(outputs) == 1, outputs
    assert not missing.exists()  # no command made the workspace it could not use


@pytest.mark.parametrize("args, fact", [
    (["ingest", "videos", "--classes", "a,b"], "--labels FILE"),
    (["stack"], "--recipe"),
    (["predict", "--videos", "some"], "--videos"),
])
def test_option_errors_are_one_line(tmp_path, args, fact):
    result = CliRunner().invoke(app, [*args, "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1 and fact in result.output
