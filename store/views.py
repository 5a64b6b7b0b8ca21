"""SQL views that make every video-level artefact reachable from ``jungle sql``.

Views are TEMP (recreated on every connection), so a workspace can be moved or copied and the
views still point inside it, and a read-only connection can create them.
"""

from __future__ import annotations

from .workspace import Workspace

__all__ = ["register_views"]


def _quote(path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def register_views(con, workspace: Workspace) -> list[str]:
    """Create a TEMP view per complete video-level feature set; return the view names.

    ``NAME`` is the latest version, ``NAME_vN`` each version.
    """
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'feature_sets'"
    ).fetchone()[0]
    if not exists:
        return []
    rows = con.execute(
        "SELECT name, version, location FROM feature_sets "
        "WHERE kind = 'video' AND status = 'complete' ORDER BY name, version"
    ).fetchall()
    made: list[str] = []
    latest: dict[str, str] = {}
    for name, version, location in rows:
        path = workspace.root / location
        if not path.exists():
            continue
        view = f"{name}_v{version}"
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{view}" AS SELECT * FROM read_parquet({_quote(path)})')
        made.append(view)
        latest[name] = view
    for name, view in latest.items():
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM "{view}"')
        made.append(name)
    return made
