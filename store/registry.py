"""The feature-set registry: every named, versioned artefact and how it was made.

A feature set is either frame-level (``kind='frames'``: a Zarr group of
(videos, frames, dims) arrays, see :mod:`jungle.store.arrays`) or video-level
(``kind='video'``: a Parquet table keyed by ``video_id``, exposed to ``jungle sql`` as a view).

Versions: registering a name with a configuration (and inputs) it already has returns the
existing version, so unchanged work is skipped; a different configuration makes version N+1.
Nothing is ever overwritten silently.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError, NotFoundError, WorkspaceError
from ..hashing import config_key
from .views import register_views, table_file
from .workspace import Workspace

__all__ = [
    "FeatureSet",
    "FeatureRef",
    "UnknownFeatureSet",
    "code_version",
    "config_key",
    "register",
    "get",
    "latest",
    "list_sets",
    "mark_complete",
    "write_video_table",
    "read_video_table",
    "sql_name",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FeatureSet:
    """One row of ``feature_sets``."""

    name: str
    version: int
    kind: str
    config_key: str
    config: dict
    inputs: list
    location: str
    status: str
    row_count: int | None
    created_at: Any
    encoder: str | None = None
    weights_sha256: str | None = None
    sampling: str | None = None
    input_size: int | None = None
    dims: int | None = None
    stage_dims: list | None = None
    fold_scheme: str | None = None
    code_version: str | None = None

    @property
    def ref(self) -> str:
        """``name@version``, the way manifests and messages name a feature set."""
        return f"{self.name}@{self.version}"


_COLUMNS = [
    "name", "version", "kind", "config_key", "config", "inputs", "location", "status", "row_count",
    "created_at", "encoder", "weights_sha256", "sampling", "input_size", "dims", "stage_dims",
    "fold_scheme", "code_version",
]


class UnknownFeatureSet(NotFoundError, KeyError):
    """No feature set of that name, or not that version (a ``KeyError`` for older callers)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class FeatureRef:
    """A feature set named by ``name`` and optionally pinned to ``version`` (``NAME@VERSION``)."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> "FeatureRef":
        """``"hist_lite0"`` or ``"hist_lite0@2"``; an InputError says what is wrong with anything else."""
        name, _, version = text.strip().partition("@")
        if not name:
            raise InputError(f"empty feature set name in {text!r}")
        if version and not version.isdigit():
            raise InputError(f"feature set {text!r}: the version after '@' must be a number")
        return cls(name, int(version) if version else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, plus the commit when jungle runs from its own git checkout.

    Only a checkout whose top level is jungle's own source folder counts: an installed jungle that
    happens to sit inside some other git repository (a virtual environment in a project folder)
    records the package version alone rather than that repository's commit.
    """
    sha = source_commit(Path(__file__).resolve().parent.parent)
    return f"{__version__}+{sha}" if sha else __version__


def source_commit(root: Path) -> str | None:
    """The short commit of the git work tree whose top level is ``root``, else None."""
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root.resolve():
        return None
    return lines[1]


def sql_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"feature set name {name!r} is not valid: use lower-case letters, digits and '_', "
            "starting with a letter (it becomes a SQL view name)."
        )
    return name


def _row_to_set(row) -> FeatureSet:
    data = dict(zip(_COLUMNS, row))
    for key in ("config", "inputs", "stage_dims"):
        if isinstance(data[key], str):
            data[key] = json.loads(data[key])
    data["config"] = data["config"] or {}
    data["inputs"] = data["inputs"] or []
    return FeatureSet(**data)


def _select(con, where: str, params: list) -> list[FeatureSet]:
    rows = con.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM feature_sets {where} ORDER BY name, version", params
    ).fetchall()
    return [_row_to_set(r) for r in rows]


def get(con, name: str, version: int | None = None) -> FeatureSet:
    """The feature set ``name`` at ``version`` (default: its latest complete version)."""
    if version is None:
        found = latest(con, name)
        if found is None:
            known = ", ".join(sorted({s.name for s in list_sets(con)})) or "none yet"
            raise UnknownFeatureSet(
                f'feature set "{name}" has no complete version. Known feature sets: {known}. '
                'Run "jungle features list" to see them all.'
            )
        return found
    rows = _select(con, "WHERE name = ? AND version = ?", [name, version])
    if not rows:
        raise UnknownFeatureSet(f'feature set "{name}" has no version {version}. Run "jungle features show {name}".')
    return rows[0]


def latest(con, name: str, complete_only: bool = True) -> FeatureSet | None:
    where = "WHERE name = ?" + (" AND status = 'complete'" if complete_only else "")
    rows = _select(con, where, [name])
    return rows[-1] if rows else None


def list_sets(con, kind: str | None = None) -> list[FeatureSet]:
    if kind:
        return _select(con, "WHERE kind = ?", [kind])
    return _select(con, "", [])


def register(
    con,
    name: str,
    kind: str,
    config: dict,
    inputs: list | None = None,
    location: str | None = None,
    **meta: Any,
) -> tuple[FeatureSet, bool]:
    """Find or create the version of ``name`` made by ``config`` from ``inputs``.

    Returns:
        (feature set, created): ``created`` is False when the same configuration and inputs are
        already registered, in which case the caller should reuse (or resume) it.
    """
    sql_name(name)
    if kind not in ("frames", "video"):
        raise ValueError(f"kind must be 'frames' or 'video', not {kind!r}")
    key = config_key(config, inputs)
    existing = _select(con, "WHERE name = ? AND config_key = ?", [name, key])
    if existing:
        return existing[-1], False
    version = con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM feature_sets WHERE name = ?", [name]
    ).fetchone()[0]
    if location is None:
        location = (f"features.zarr/{name}/v{version}" if kind == "frames"
                    else f"tables/{name}/v{version}.parquet")
    values = {
        "name": name, "version": version, "kind": kind, "config_key": key,
        "config": json.dumps(config, sort_keys=True, default=str),
        "inputs": json.dumps(inputs or [], default=str), "location": location,
        "status": "building", "row_count": None,
        "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "code_version": meta.pop("code_version", None) or code_version(),
    }
    if "stage_dims" in meta and meta["stage_dims"] is not None:
        meta["stage_dims"] = json.dumps(meta["stage_dims"])
    unknown = set(meta) - set(_COLUMNS)
    if unknown:
        raise TypeError(f"unknown feature-set fields: {sorted(unknown)}")
    values.update(meta)
    cols = list(values)
    con.execute(
        f"INSERT INTO feature_sets ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [values[c] for c in cols],
    )
    return get(con, name, version), True


def mark_complete(con, fs: FeatureSet, row_count: int) -> FeatureSet:
    con.execute(
        "UPDATE feature_sets SET status = 'complete', row_count = ? WHERE name = ? AND version = ?",
        [row_count, fs.name, fs.version],
    )
    return get(con, fs.name, fs.version)


def write_video_table(workspace: Workspace, con, fs: FeatureSet, frame) -> FeatureSet:
    """Write a video-level feature set (a polars DataFrame with a ``video_id`` column) and complete it.

    The Parquet file is written to a temporary name and renamed, so a killed run never leaves a
    half-written table behind.
    """
    if "video_id" not in frame.columns:
        raise ValueError(f"feature set {fs.ref}: the table needs a video_id column")
    if frame["video_id"].n_unique() != frame.height:
        raise ValueError(f"feature set {fs.ref}: video_id is not unique")
    path = workspace.root / fs.location
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)
    done = mark_complete(con, fs, frame.height)
    register_views(con, workspace)
    return done


def table_path(workspace: Workspace, fs: FeatureSet) -> Path:
    """The Parquet file of the video-level set ``fs``: a regular file inside ``tables/``.

    Raises:
        WorkspaceError: the registry's location leaves ``tables/``, is missing or is not a regular
            file (a received workspace is data: nothing outside it is read, no FIFO is opened).
    """
    try:
        return table_file(workspace, fs.location)
    except FileNotFoundError:
        raise WorkspaceError(f"feature set {fs.ref}: its table {workspace.root / fs.location} is missing. Rebuild it "
                             "(`jungle aggregate`, or the command that made it).") from None
    except ValueError as exc:
        raise WorkspaceError(f"feature set {fs.ref} in {workspace.db_path}: {exc}. Rebuild it with jungle's own "
                             "commands, or use a workspace you trust.") from None


def read_video_table(workspace: Workspace, fs: FeatureSet):
    """The polars DataFrame of a video-level feature set (see :func:`table_path`)."""
    import polars as pl

    if fs.kind != "video":
        raise ValueError(f"{fs.ref} is a frame-level feature set; read it with jungle.store.arrays")
    return pl.read_parquet(table_path(workspace, fs))
