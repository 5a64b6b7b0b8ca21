"""The ``feature_rows`` table: which Zarr row of a frame-level feature set holds which video, and
how far each row got (``pending`` | ``done`` | ``error``, with the error and the valid frames).

Stages ask these functions instead of writing SQL on the table, so its rules live in one place:
rows are appended (a video keeps its row for the life of a set version), a set is ``building``
while rows are pending and complete when none is.
"""

from __future__ import annotations

from . import registry
from .db import registered
from .registry import FeatureSet
from .videos import read_videos

__all__ = ["fingerprint", "relation_fingerprint", "assign_rows", "done_rows", "rows_with_status", "record_statuses",
           "replace_done_rows", "status_counts", "video_paths"]

_DONE_ROWS = ("SELECT video_id, row, n_valid FROM feature_rows WHERE name = ? AND version = ? "
              "AND status = 'done' AND coalesce(n_valid, 1) > 0")


_FINGERPRINT = "SELECT md5(coalesce(string_agg(CAST(q AS VARCHAR), '|' ORDER BY CAST(q AS VARCHAR)), '')) FROM ({}) q"


def fingerprint(con, query: str, params: list | None = None) -> str:
    """An md5 of every row ``query`` returns (order-independent of how DuckDB scans).

    The query's first column orders the rows, so it should be a key (``video_id``).
    """
    return con.execute(_FINGERPRINT.format(query), params or []).fetchall()[0][0]


def relation_fingerprint(relation, name: str, query: str) -> str:
    """:func:`fingerprint` of ``query`` run over ``relation``, which the query calls ``name``."""
    return relation.query(name, _FINGERPRINT.format(query)).fetchall()[0][0]


def assign_rows(con, fs: FeatureSet) -> dict[str, int]:
    """Give every readable video without a row in ``fs`` the next rows (in path order, marked
    ``pending``; the set becomes ``building`` when any is new); return video_id -> row of all."""
    start = con.execute("SELECT coalesce(max(row) + 1, 0) FROM feature_rows WHERE name = ? AND version = ?",
                        [fs.name, fs.version]).fetchone()[0]
    new = con.execute(
        "SELECT video_id FROM videos WHERE status = 'ok' AND video_id NOT IN "
        "(SELECT video_id FROM feature_rows WHERE name = ? AND version = ?) ORDER BY path",
        [fs.name, fs.version]).fetchall()
    if new:
        con.executemany(
            "INSERT INTO feature_rows (name, version, video_id, row, status) VALUES (?, ?, ?, ?, 'pending')",
            [[fs.name, fs.version, vid, start + i] for i, (vid,) in enumerate(new)])
        con.execute("UPDATE feature_sets SET status = 'building' WHERE name = ? AND version = ?",
                    [fs.name, fs.version])
    return dict(con.execute("SELECT video_id, row FROM feature_rows WHERE name = ? AND version = ?",
                            [fs.name, fs.version]).fetchall())


def done_rows(con, fs: FeatureSet) -> tuple[list[tuple[str, int, int | None]], str]:
    """(video_id, row, n_valid) of the done rows with a valid frame (when recorded), in row order,
    and a fingerprint of them for lineage."""
    params = [fs.name, fs.version]
    return con.execute(_DONE_ROWS + " ORDER BY row", params).fetchall(), fingerprint(con, _DONE_ROWS, params)


def rows_with_status(con, fs: FeatureSet, status: str = "done") -> list[tuple[str, int]]:
    """(video_id, row) of the rows of ``fs`` with ``status``, in row order (``done`` rows include
    videos where no frame decoded; :func:`done_rows` leaves those out)."""
    return con.execute("SELECT video_id, row FROM feature_rows WHERE name = ? AND version = ? AND status = ? "
                       "ORDER BY row", [fs.name, fs.version, status]).fetchall()


def status_counts(con, fs: FeatureSet) -> dict[str, int]:
    """Rows of ``fs`` per status."""
    return dict(con.execute("SELECT status, count(*) FROM feature_rows WHERE name = ? AND version = ? "
                            "GROUP BY status", [fs.name, fs.version]).fetchall())


def record_statuses(con, fs: FeatureSet, statuses) -> dict[str, int]:
    """Set status, error and n_valid of the rows in ``statuses`` (a frame with ``row, status, error,
    n_valid``); mark ``fs`` complete when no row is pending; return the counts per status."""
    with registered(con, row_statuses=statuses):
        con.execute(
            "UPDATE feature_rows SET status = m.status, error = m.error, n_valid = m.n_valid FROM row_statuses m "
            "WHERE feature_rows.name = ? AND feature_rows.version = ? AND feature_rows.row = m.row",
            [fs.name, fs.version])
    counts = status_counts(con, fs)
    total = sum(counts.values())
    if counts.get("pending", 0) == 0 and total:
        registry.mark_complete(con, fs, total)
    return counts


def replace_done_rows(con, fs: FeatureSet, written) -> FeatureSet:
    """Make the rows of ``fs`` exactly ``written`` (a frame with ``video_id, row, n_valid``), all done,
    and mark the set complete."""
    con.execute("DELETE FROM feature_rows WHERE name = ? AND version = ?", [fs.name, fs.version])
    with registered(con, written_rows=written):
        con.execute("INSERT INTO feature_rows (name, version, video_id, row, status, n_valid) "
                    "SELECT ?, ?, video_id, row, 'done', n_valid FROM written_rows", [fs.name, fs.version])
    return registry.mark_complete(con, fs, written.height)


def video_paths(con) -> dict[str, str]:
    """video_id -> path of every video in the workspace."""
    return dict(read_videos(con, ("video_id", "path")))
