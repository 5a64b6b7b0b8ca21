"""``jungle dashboard``: optuna-dashboard over the workspace's study storage, on localhost."""

from __future__ import annotations

from ..errors import EnvironmentProblem
from ..store.workspace import Workspace

__all__ = ["DashboardError", "dashboard_storage", "dashboard_url", "list_studies", "serve"]


class DashboardError(EnvironmentProblem):
    """There is nothing to show, or the storage cannot be opened."""


def dashboard_storage(workspace: Workspace, storage: str | None = None) -> str:
    """The storage URL to show: ``storage`` or the workspace's SQLite file, which must exist."""
    if storage:
        return storage
    if not workspace.optuna_path.exists():
        raise DashboardError(
            f"no Optuna studies in {workspace.optuna_path}: run `jungle stack --trials N` first "
            "(or pass --storage URL)."
        )
    return workspace.optuna_url


def list_studies(storage: str) -> list[str]:
    """Names of the studies in ``storage``."""
    import optuna

    from .tuning import open_storage

    return [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)]


def dashboard_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/dashboard"


def serve(storage: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run optuna-dashboard on ``host:port`` for ``storage`` until interrupted (blocking)."""
    from optuna_dashboard import run_server

    from .tuning import open_storage

    run_server(open_storage(storage), host=host, port=port)
