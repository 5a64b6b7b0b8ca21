"""The `jungle` command line: each command parses options, builds a config, calls one library
function and renders the result. Heavy libraries are imported inside the commands so that
`jungle --help` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .render import Format, render_rows

app = typer.Typer(
    name="jungle",
    help="Camera-trap videos to calibrated per-species probabilities.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
features_app = typer.Typer(help="List and describe feature sets.", no_args_is_help=True)
demo_app = typer.Typer(help="A generated, labelled demo collection and the one-command main job.",
                       invoke_without_command=True)
weights_app = typer.Typer(help="Fetch and verify model weights for offline use.", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(demo_app, name="demo")
app.add_typer(weights_app, name="weights")

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", envvar="JUNGLE_WORKSPACE",
                 help="Workspace directory [default: ./jungle-workspace].", show_default=False),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def _workspace(path: Optional[Path]):
    from .store.workspace import Workspace

    return Workspace.resolve(path)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _echo(text: str) -> None:
    typer.echo(text, nl=False)


# --------------------------------------------------------------------------- store: sql, status
@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run, read-only, against the workspace.")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run a read-only SQL query over videos, labels, folds, feature sets and predictions."""
    from .store.db import WorkspaceMissing
    from .store.query import run_query

    try:
        columns, rows = run_query(_workspace(workspace), query)
    except WorkspaceMissing as exc:
        _fail(str(exc))
    except Exception as exc:  # duckdb errors: syntax, read-only refusal, unknown table
        _fail(f"{type(exc).__name__}: {exc}")
    _echo(render_rows(columns, rows, fmt))


@app.command()
def status(workspace: WorkspaceOpt = None, fmt: FormatOpt = Format.table) -> None:
    """What is in the workspace: videos by status, labels, folds, feature sets, and what failed."""
    from .store.db import WorkspaceMissing
    from .store.query import workspace_status

    try:
        report = workspace_status(_workspace(workspace))
    except WorkspaceMissing as exc:
        _fail(str(exc))
    for title, (columns, rows) in report.items():
        if fmt == Format.table:
            typer.echo(f"\n{title}")
        _echo(render_rows(columns, rows, fmt))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
