"""The workspace: one directory that holds every artefact of a jungle project.

Layout::

    <root>/jungle.duckdb      videos, labels, folds, feature-set registry, predictions
    <root>/features.zarr/     frame-level feature sets (one Zarr group each)
    <root>/tables/            video-level feature sets (Parquet, one folder each)
    <root>/models/            saved level-2 models (XGBoost JSON + manifest)
    <root>/optuna.db          Optuna study storage (SQLite)
    <root>/reports/           HTML reports
    <root>/weights/           locally fetched model weights
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkspaceError

__all__ = ["Workspace", "WorkspaceMissing", "DEFAULT_WORKSPACE", "WORKSPACE_ENV"]

WORKSPACE_ENV = "JUNGLE_WORKSPACE"
DEFAULT_WORKSPACE = Path("jungle-workspace")


class WorkspaceMissing(WorkspaceError):
    """The workspace has no database yet."""


@dataclass(frozen=True)
class Workspace:
    """Paths of one jungle workspace. Creating the object does no I/O; :meth:`ensure` makes the folders."""

    root: Path

    @classmethod
    def resolve(cls, root: str | os.PathLike | None = None) -> "Workspace":
        """The workspace named by ``root``, else ``$JUNGLE_WORKSPACE``, else ``./jungle-workspace``."""
        chosen = root or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        return cls(Path(chosen).expanduser().resolve())

    @property
    def db_path(self) -> Path:
        return self.root / "jungle.duckdb"

    @property
    def zarr_path(self) -> Path:
        return self.root / "features.zarr"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    @property
    def optuna_path(self) -> Path:
        return self.root / "optuna.db"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.optuna_path}"

    def exists(self) -> bool:
        return self.db_path.exists()

    def require(self) -> "Workspace":
        """Self, when the workspace has a database.

        Raises:
            WorkspaceMissing: it has none (the message says how to make one or name another).
        """
        if not self.exists():
            raise WorkspaceMissing(f"No jungle workspace at {self.root}. Run `jungle ingest DIR` first, "
                                   f"or point --workspace / ${WORKSPACE_ENV} at an existing one.")
        return self

    def ensure(self) -> "Workspace":
        """Create the workspace folders (idempotent) and return self.

        Raises:
            WorkspaceError: the workspace path is a file (or a FIFO, a device), not a folder.
        """
        if self.root.exists() and not self.root.is_dir():
            from ..errors import WorkspaceError

            raise WorkspaceError(f"the workspace {self.root} is a file, not a folder: point --workspace at a folder "
                                 "(a new one is made).")
        for path in (self.root, self.tables_dir, self.models_dir, self.reports_dir, self.weights_dir):
            path.mkdir(parents=True, exist_ok=True)
        return self
