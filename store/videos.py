"""The ``videos`` table: one reader and one writer for every stage.

Ingest writes rows (:func:`write_videos`: insert or replace by ``video_id``, every column cast to
the table's own type, so a column a migration adds is written as soon as ingest fills it); every
other stage reads them through :func:`read_videos`, naming the columns it needs, or queries the
readable ones through the relation :func:`readable_videos` gives.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .db import registered

__all__ = ["video_columns", "read_videos", "readable_videos", "write_videos"]


def video_columns(con) -> dict[str, str]:
    """The columns of ``videos`` in table order, with their DuckDB types."""
    return dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'videos' ORDER BY ordinal_position").fetchall())


def _checked(con, columns: Iterable[str]) -> list[str]:
    columns, known = list(columns), video_columns(con)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(f"videos has no column(s) {', '.join(unknown)} (it has {', '.join(known)})")
    return columns


def read_videos(con, columns: Sequence[str], ok_only: bool = False,
                video_ids: Sequence[str] | None = None) -> list[tuple]:
    """Rows of ``videos`` as tuples of ``columns``, sorted by ``video_id``.

    Args:
        con: a workspace connection.
        columns: the columns to read, in the order the tuples hold them.
        ok_only: only videos that were read (``status = 'ok'``).
        video_ids: only these videos (None: all).
    """
    where, params = [], []
    if ok_only:
        where.append("status = 'ok'")
    if video_ids is not None:
        where.append("video_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(video_ids))
    query = (f"SELECT {', '.join(_checked(con, columns))} FROM videos"
             + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY video_id")
    return con.execute(query, params).fetchall()


def readable_videos(con):
    """The rows of the readable videos (``status = 'ok'``, every column) as a DuckDB relation, for
    a computation that keeps its own SQL over them: ``readable_videos(con).query("videos", sql)``
    runs ``sql`` with ``videos`` meaning these rows (the metadata features do)."""
    return con.sql("SELECT * FROM videos WHERE status = 'ok'")


def write_videos(con, rows: list[dict]) -> None:
    """Insert ``rows`` into ``videos``, replacing the rows of the same ``video_id``. Keys name
    columns (a column no row names is NULL); call it inside :func:`~jungle.store.db.transaction`."""
    import pyarrow as pa

    types = video_columns(con)
    _checked(con, {key for row in rows for key in row})
    batch = pa.table({name: [row.get(name) for row in rows] for name in types})
    select = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in types.items())
    with registered(con, batch=batch):
        con.execute("DELETE FROM videos WHERE video_id IN (SELECT video_id FROM batch)")
        con.execute(f"INSERT INTO videos BY NAME SELECT {select} FROM batch")
