"""Read-only queries over the workspace: ``jungle sql`` and ``jungle status``."""

from __future__ import annotations

from .db import connect
from .workspace import Workspace

__all__ = ["run_query", "workspace_status"]


def run_query(workspace: Workspace, query: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
    """Run ``query`` on a read-only connection; return (column names, rows)."""
    with connect(workspace, read_only=True) as con:
        result = con.execute(query, params or [])
        columns = [d[0] for d in result.description] if result.description else []
        rows = result.fetchall() if result.description else []
    return columns, rows


_STATUS_QUERIES = {
    "Videos": "SELECT status, count(*) AS videos, sum(bytes) AS bytes FROM videos GROUP BY ALL ORDER BY 1",
    "Failed videos": "SELECT path, error FROM videos WHERE status <> 'ok' ORDER BY path",
    "Labels": "SELECT count(DISTINCT video_id) AS labelled_videos, count(*) FILTER (WHERE value = 1) AS positives FROM labels",
    "Fold schemes": "SELECT s.scheme, s.k, s.group_by, count(f.video_id) AS videos FROM fold_schemes s "
                    "LEFT JOIN folds f USING (scheme) GROUP BY ALL ORDER BY 1",
    "Feature sets": "SELECT name, version, kind, status, row_count, encoder, sampling, created_at "
                    "FROM feature_sets ORDER BY name, version",
    "Featurize failures": "SELECT r.name, r.version, v.path, r.error FROM feature_rows r JOIN videos v USING (video_id) "
                          "WHERE r.status = 'error' ORDER BY 1, 2, 3",
}


def workspace_status(workspace: Workspace) -> dict[str, tuple[list[str], list[tuple]]]:
    """Sections of the status report, each as (columns, rows)."""
    out = {}
    with connect(workspace, read_only=True) as con:
        for title, query in _STATUS_QUERIES.items():
            result = con.execute(query)
            out[title] = ([d[0] for d in result.description], result.fetchall())
    return out
