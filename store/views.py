"""SQL views that make every video-level artefact reachable from ``jungle sql``, and the lockdown of
connections that only read.

Every connection gets, besides a view per feature set (:func:`register_views`), the workspace's
own views (:func:`create_workspace_views`): ``current_predictions`` (what the current model says
about each clip, out of sample, with the labels beside), ``events`` and ``event_predictions``
(:mod:`jungle.store.events`).

Views are TEMP (recreated on every connection), so a workspace can be moved or copied and the
views still point inside it, and a read-only connection can create them.

A workspace may come from someone else, so what its database says is data, never SQL: a
feature-set name becomes a view only when it matches :data:`VIEW_NAME` (and is quoted as an
identifier all the same), and its table only when the location is a regular file inside the
workspace's ``tables/``. Anything else gets no view and one note on stderr naming the set. A
read-only connection is locked down (:func:`lock_down`) before the first view is made, so even a
view could read nothing outside ``tables/`` and write nothing anywhere.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from .frame_tables import block_tables
from .model_choices import CURRENT_MODEL_SQL
from .predictions import out_of_sample_sql
from .workspace import Workspace

__all__ = ["VIEW_NAME", "CURRENT_PREDICTIONS_SQL", "create_workspace_views", "lock_down", "quote_identifier",
           "quote_string", "register_views", "table_file"]

VIEW_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""The feature-set names that become views (the registry's rule for names, with a length cap)."""

_MAX_VERSION = 10**6
_told: set[tuple[str, str]] = set()


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier: in double quotes, inner quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_string(text) -> str:
    """``text`` as a SQL string literal: in single quotes, inner quotes doubled."""
    return "'" + str(text).replace("'", "''") + "'"


def lock_down(con, tables_dir, memory_limit: str | None = None) -> None:
    """Limit ``con`` to reading: files only under ``tables_dir``, nothing spilled to disk, no
    extensions, settings locked.

    The order matters: ``allowed_directories`` and ``temp_directory`` must be set while external
    access is still on, and the lock comes last so that nothing run later can change any of these
    back. ``memory_limit`` (DuckDB's syntax, e.g. ``'2GB'``) bounds the memory of every query.
    """
    folders = dict.fromkeys(str(folder).rstrip(os.sep) + os.sep for folder in (tables_dir, Path(tables_dir).resolve()))
    allowed = ", ".join(quote_string(folder) for folder in folders)
    settings = [f"allowed_directories = [{allowed}]", "temp_directory = ''"]
    if memory_limit is not None:
        settings.append(f"memory_limit = {quote_string(memory_limit)}")
    settings += ["enable_external_access = false", "autoinstall_known_extensions = false",
                 "autoload_known_extensions = false", "lock_configuration = true"]
    for setting in settings:
        con.execute(f"SET {setting}")


def table_file(workspace: Workspace, location: str) -> Path:
    """The Parquet file of a video-level set at ``location`` (relative to the workspace root).

    Raises:
        FileNotFoundError: there is nothing at the location (the set is not built here).
        ValueError: the location is absolute, leaves ``tables/``, or is not a regular file (a
            FIFO, a device, a folder), saying which.
    """
    location = str(location)
    if os.path.isabs(location) or "\x00" in location:
        raise ValueError(f"its location {location!r} is not a path inside the workspace")
    tables = workspace.tables_dir.resolve()
    path = (workspace.root / location).resolve()
    if not path.is_relative_to(tables):
        raise ValueError(f"its location {location!r} points outside {workspace.tables_dir}")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"its table {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"its table {path} is not a regular file")
    return path


def _note(workspace: Workspace, name: str, version, why: str) -> None:
    """One line on stderr per refused set and process."""
    key = (str(workspace.db_path), f"{name!r}@{version!r}")
    if key in _told:
        return
    _told.add(key)
    shown = repr(name if len(name) <= 80 else name[:80] + "...")
    print(f"note: feature set {shown} (version {version!r}) in {workspace.db_path}: {why}; it gets no SQL view. "
          "Rebuild it with jungle's own commands, or use a workspace you trust.", file=sys.stderr, flush=True)


def register_views(con, workspace: Workspace) -> list[str]:
    """Create a TEMP view per complete video-level feature set, and per complete frame-level set with
    a long table (:mod:`jungle.store.frame_tables`, e.g. ``boxes``); return the view names.

    ``NAME`` is the latest version, ``NAME_vN`` each version. Sets whose name, version or table
    location is not safe (see the module docstring) are skipped with a note.
    """
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'feature_sets'"
    ).fetchone()[0]
    if not exists:
        return []
    rows = con.execute(
        "SELECT name, version, kind, location FROM feature_sets "
        "WHERE status = 'complete' ORDER BY name, version"
    ).fetchall()
    made: list[str] = []
    latest: dict[str, str] = {}
    for name, version, kind, location in rows:
        if not isinstance(name, str) or not VIEW_NAME.match(name):
            _note(workspace, str(name), version, "its name is not lower-case letters, digits and '_'")
            continue
        if not isinstance(version, int) or not 1 <= version < _MAX_VERSION:
            _note(workspace, name, version, "its version is not a whole number from 1")
            continue
        try:
            if kind == "frames":  # a long table beside the arrays, one file per block (e.g. boxes)
                files = [table_file(workspace, f"{block.relative_to(workspace.root)}")
                         for block in block_tables(workspace, name, version)]
                if not files:
                    continue
                source = "[" + ", ".join(quote_string(f) for f in files) + "]"
            else:
                source = quote_string(table_file(workspace, location))
        except FileNotFoundError:
            continue  # not built here (yet): nothing to show
        except ValueError as exc:
            _note(workspace, name, version, str(exc))
            continue
        view = f"{name}_v{version}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_identifier(view)} AS SELECT * FROM read_parquet({source})")
        made.append(view)
        latest[name] = view
    for name, view in latest.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_identifier(name)} AS SELECT * FROM {quote_identifier(view)}")
        made.append(name)
    return made


CURRENT_PREDICTIONS_SQL = f"""
    WITH labelled AS (SELECT video_id, any_value(source) AS label_source FROM labels GROUP BY video_id)
    SELECT p.video_id, p.class, p.probability, p.kind, p.model_id, p.created_at,
           CASE WHEN labelled.video_id IS NULL THEN NULL ELSE coalesce(l.value, 0) END AS label,
           labelled.label_source
    FROM ({out_of_sample_sql(CURRENT_MODEL_SQL)}) p
    LEFT JOIN labelled USING (video_id)
    LEFT JOIN labels l USING (video_id, class)"""
"""The ``current_predictions`` view: per clip and class the current model's out-of-sample
probability (``oof`` for clips it was fitted on, ``predict`` for the others), its kind and model,
and the clip's label (1/0; NULL when the clip is unlabelled) with its source."""


def _tables(con) -> set[str]:
    return {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def create_workspace_views(con) -> list[str]:
    """Create the TEMP views ``current_predictions``, ``events`` and ``event_predictions``, and the
    count views (:func:`jungle.store.counts.create_count_views`) (those whose tables this database
    has: an older one opened read-only lacks some); return their names."""
    from .counts import create_count_views
    from .events import create_event_views

    tables = _tables(con)
    made = []
    if {"predictions", "model_choices", "labels"} <= tables:
        con.execute(f"CREATE OR REPLACE TEMP VIEW current_predictions AS {CURRENT_PREDICTIONS_SQL}")
        made.append("current_predictions")
    if {"videos", "predictions"} <= tables:
        made += create_event_views(con)
    made += create_count_views(con)
    return made
