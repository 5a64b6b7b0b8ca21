"""Read-only queries over the workspace: ``jungle sql`` and ``jungle status``.

:func:`run_query` is what ``jungle sql`` (and any other caller) uses to run SQL it did not write.
Two guards stand between that SQL and the workspace, both enforced by DuckDB itself:

1. The text must parse (with DuckDB's own parser) into exactly one statement that reads: SELECT,
   WITH ... SELECT, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of such a statement, or a PRAGMA
   that only reports (``table_info``, ``show_tables``, ``database_size``, ...). Everything else
   (COPY, ATTACH, DETACH, USE, SET, INSTALL, LOAD, EXPORT, CREATE, INSERT, ...) is refused with
   :class:`QueryRefused` before anything runs.
2. The connection is read-only and locked down: file access only inside the workspace's
   ``tables/`` (which the feature-set views read), no extension installs or loads, and the
   configuration locked so the query cannot undo any of it.

DuckDB's ``read_only=True`` alone is not enough: it still allows ATTACH ... (READ_WRITE), COPY TO
and EXPORT DATABASE. And the lockdown alone is not enough either: COPY TO a file inside
``tables/`` would replace a feature table. Hence both.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

from ..errors import InputError
from .db import connect
from .views import lock_down
from .workspace import Workspace

__all__ = ["DEFAULT_MAX_ROWS", "DEFAULT_TIMEOUT", "QueryFailed", "QueryRefused", "QueryTimeout", "check_query",
           "default_memory_limit", "lock_down", "parse_memory_limit", "reading_connection", "run_query",
           "workspace_status"]


class QueryRefused(InputError):
    """The SQL is not exactly one statement that only reads."""


class QueryFailed(InputError):
    """DuckDB could not run the (allowed) query: a syntax error, an unknown table, a refused file."""


READING_STATEMENTS = ("SELECT", "EXPLAIN", "PRAGMA")
"""Statement types that can only read (DESCRIBE, SHOW, SUMMARIZE and VALUES parse as SELECT)."""

READING_PRAGMAS = frozenset({
    "table_info", "show", "show_tables", "show_tables_expanded", "show_databases", "database_list",
    "database_size", "storage_info", "metadata_info", "functions", "collations", "version", "platform",
    "user_agent",
})
"""PRAGMAs that only report; every other PRAGMA (profiling, checkpoint, settings) is refused."""

_ALLOWED = ("jungle sql is read-only: it runs one statement that reads (SELECT, WITH ... SELECT, DESCRIBE, "
            "SHOW, SUMMARIZE, EXPLAIN, PRAGMA table_info/show_tables/database_size/...)")

_WHY = {
    "COPY": "it writes files",
    "EXPORT": "it writes files",
    "ATTACH": "it opens other databases, possibly for writing",
    "DETACH": "it changes which databases the query sees",
    "SET": "it changes the connection's settings (SET, RESET, USE)",
    "VARIABLE_SET": "it changes the connection's state",
    "LOAD": "it adds extensions (INSTALL, LOAD)",
    "CALL": "it runs table functions that may change the database; use SELECT * FROM function(...)",
    "MULTI": "it runs several statements; write SELECT * FROM (PIVOT ...)",
    **dict.fromkeys(("CREATE", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "TRANSACTION", "VACUUM",
                     "PREPARE", "EXECUTE"), "it changes the database or the session"),
}
"""Why each refused statement type is refused; the message names the type and the reason."""


def _refuse(what: str, why: str) -> QueryRefused:
    return QueryRefused(f"refused {what}: {why}. {_ALLOWED}; change the workspace with jungle's own commands.")


def _parse(query: str) -> list:
    import duckdb

    try:
        return duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryFailed(f"jungle sql could not parse the query: {_first_line(exc)}") from None


def _tokens(query: str) -> list[tuple[int, str]]:
    """(offset, text) of each token of ``query`` as DuckDB's tokenizer splits it, comments left out."""
    import duckdb

    tokens = duckdb.tokenize(query)
    ends = [start for start, _ in tokens[1:]] + [len(query)]
    return [(start, query[start:end].strip().strip('"')) for (start, kind), end in zip(tokens, ends)
            if kind != duckdb.token_type.comment]


def _explained(tokens: list[tuple[int, str]], query: str):
    """The one statement that ``EXPLAIN [ANALYZE] ...`` explains (ANALYZE runs it, so it is checked too)."""
    skip = 2 if len(tokens) > 1 and tokens[1][1].upper() == "ANALYZE" else 1
    inner = query[tokens[skip][0]:] if skip < len(tokens) else ""
    try:
        statements = _parse(inner)
    except QueryFailed:
        statements = []
    if len(statements) != 1:
        raise _refuse("this EXPLAIN", "EXPLAIN [ANALYZE] is allowed of one reading statement, without options")
    return statements[0]


def _check_statement(statement) -> None:
    """Raise :class:`QueryRefused` unless ``statement`` (one parsed statement) only reads."""
    kind = statement.type.name
    if kind not in READING_STATEMENTS:
        raise _refuse(f"the {kind} statement", _WHY.get(kind, "it is not a statement that reads"))
    tokens = _tokens(statement.query)
    if kind == "PRAGMA":
        name = tokens[1][1].lower() if len(tokens) > 1 else ""
        if name not in READING_PRAGMAS:
            allowed = ", ".join(sorted(READING_PRAGMAS))
            raise _refuse(f"PRAGMA {name}", f"only PRAGMAs that report are allowed ({allowed})")
    elif kind == "EXPLAIN":
        _check_statement(_explained(tokens, statement.query))


def check_query(query: str):
    """Parse ``query`` with DuckDB and return its one statement if it only reads.

    Raises:
        QueryRefused: no statement, several statements, or one that is not a read.
        QueryFailed: DuckDB cannot parse the text.
    """
    statements = _parse(query)
    if len(statements) != 1:
        got = "no statement" if not statements else f"{len(statements)} statements"
        raise QueryRefused(f"jungle sql runs exactly one statement per call; got {got}. "
                           "Run each statement with its own `jungle sql` call.")
    _check_statement(statements[0])
    return statements[0]


@contextmanager
def reading_connection(workspace: Workspace, memory_limit: str | None = None) -> Iterator:
    """A read-only, locked-down connection to ``workspace`` with its feature-set views (the
    lockdown comes first: see :func:`jungle.store.db.connect`)."""
    with connect(workspace, read_only=True, memory_limit=memory_limit) as con:
        yield con


def _first_line(exc: Exception) -> str:
    """DuckDB's message on one line: its hints kept ("Did you mean "videos"?", "Candidate bindings:
    ..."), the LINE/caret context it appends after them left out (the CLI prints one line)."""
    kept = []
    for line in str(exc).strip().splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            kept.append(line.strip())
    return " ".join(kept) if kept else type(exc).__name__


def _failure_message(exc) -> str:
    import duckdb

    if isinstance(exc, duckdb.PermissionException):
        return (f"jungle sql refused to read outside the workspace: {_first_line(exc)}. Queries read the "
                "workspace's database and its tables/ folder, nothing else.")
    return f"the query failed: {_first_line(exc)}"


DEFAULT_TIMEOUT = 300.0
"""Seconds ``jungle sql`` lets one query run (``--timeout``)."""

MAX_TIMEOUT = 7 * 24 * 3600.0
DEFAULT_MAX_ROWS = 1_000_000
"""Rows ``jungle sql`` returns at most (``--max-rows``): every row is held in memory to be printed."""
MAX_ROWS = 100_000_000
_FETCH_CHUNK = 10_000
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}
_MIN_MEMORY = 16 * 2**20


class QueryTimeout(InputError):
    """The query ran longer than its time limit and was stopped."""


def default_memory_limit() -> str:
    """A quarter of this machine's memory (DuckDB's own default is 80%), as DuckDB reads it."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return f"{max(total // 4, 256 * 2**20) // 2**20}MiB"


def parse_memory_limit(text: str) -> str:
    """``text`` (e.g. ``2GB``, ``512MiB``) checked, in DuckDB's syntax.

    Raises:
        InputError: not a size, or under 16 MiB.
    """
    match = _MEMORY.match(str(text))
    if not match or float(match.group(1)) * _UNITS[match.group(2).lower()] < _MIN_MEMORY:
        raise InputError(f"--memory-limit {str(text)[:40]!r} is not a memory size of at least 16MiB: give a number "
                         "and a unit, e.g. 2GB or 512MiB.")
    return f"{match.group(1)}{match.group(2).upper().replace('I', 'i')}"


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:  # NaN fails both
        raise InputError(f"--timeout {timeout!r} is not a number of seconds from above 0 to {MAX_TIMEOUT:.0f} "
                         f"(7 days); the default is {DEFAULT_TIMEOUT:.0f}.")
    return float(timeout)


def _fetch(result, max_rows: int, timer) -> list[tuple]:
    """At most ``max_rows`` rows of ``result``, fetched in chunks while ``timer`` runs.

    Raises:
        QueryFailed: the result has more rows.
        duckdb.InterruptException: the timer ran out (as DuckDB raises it for a running query).
    """
    import duckdb

    rows: list[tuple] = []
    while True:
        if not timer.is_alive():
            raise duckdb.InterruptException("timed out while fetching rows")
        chunk = result.fetchmany(min(_FETCH_CHUNK, max_rows + 1 - len(rows)))
        if not chunk:
            return rows
        rows += chunk
        if len(rows) > max_rows:
            raise QueryFailed(f"the result has more than {max_rows} rows: add LIMIT (or aggregate), or pass a larger "
                              "--max-rows.")


def run_query(workspace: Workspace, query: str, params: list | None = None, timeout: float = DEFAULT_TIMEOUT,
              memory_limit: str | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> tuple[list[str], list[tuple]]:
    """Run one reading statement on a locked-down read-only connection; return (column names, rows).

    Args:
        workspace: the workspace to query.
        query: exactly one reading statement (see the module docstring).
        params: values for ``?`` placeholders.
        timeout: seconds the query may run (fetching its rows included); then it is stopped.
        max_rows: the most rows returned; a larger result is refused (the rows are held in memory).
        memory_limit: the most memory DuckDB may use for it (e.g. ``'2GB'``; None:
            :func:`default_memory_limit`); nothing is spilled to disk.

    Raises:
        QueryRefused: the query is not exactly one reading statement.
        QueryFailed: DuckDB refused or could not run it (syntax, unknown table, a file outside
            tables/, more memory than the limit).
        QueryTimeout: it ran longer than ``timeout``.
    """
    import threading

    import duckdb

    timeout = _check_timeout(timeout)
    if not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_ROWS:
        raise InputError(f"--max-rows {max_rows!r} is not a whole number from 1 to {MAX_ROWS}.")
    memory_limit = parse_memory_limit(memory_limit) if memory_limit is not None else default_memory_limit()
    statement = check_query(query)
    with reading_connection(workspace, memory_limit) as con:
        timer = threading.Timer(timeout, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            result = con.execute(statement, params or [])
            columns = [d[0] for d in result.description] if result.description else []
            rows = _fetch(result, max_rows, timer) if result.description else []
        except duckdb.InterruptException:
            if timer.is_alive():  # not our timer: Ctrl-C
                raise KeyboardInterrupt from None
            raise QueryTimeout(f"the query ran longer than {timeout:g} s and was stopped: narrow it (WHERE, LIMIT), "
                               "or give it more time with --timeout SECONDS.") from None
        except duckdb.OutOfMemoryException:
            raise QueryFailed(f"the query needs more memory than its limit ({memory_limit}; nothing is spilled to "
                              "disk): narrow it (WHERE, LIMIT, fewer columns), or pass a larger --memory-limit.") \
                from None
        except duckdb.InternalException:
            raise
        except duckdb.Error as exc:
            raise QueryFailed(_failure_message(exc)) from None
        finally:
            timer.cancel()
    return columns, rows


_STATUS_QUERIES = {
    "Videos": "SELECT status, count(*) AS videos, format_bytes(sum(bytes)::BIGINT) AS size FROM videos "
              "GROUP BY ALL ORDER BY 1",
    "Failed videos": "SELECT path, error FROM videos WHERE status <> 'ok' ORDER BY path",
    "Labels": "SELECT count(DISTINCT video_id) AS labelled_videos, count(*) FILTER (WHERE value = 1) AS positives "
              "FROM labels",
    "Fold schemes": "SELECT s.scheme, s.k, s.group_by, count(f.video_id) AS videos FROM fold_schemes s "
                    "LEFT JOIN folds f USING (scheme) GROUP BY ALL ORDER BY 1",
    "Feature sets": "SELECT name, version, kind, status, row_count AS rows, encoder, sampling, "
                    "strftime(created_at, '%Y-%m-%d %H:%M') AS created FROM feature_sets ORDER BY name, version",
    "Featurize failures": "SELECT r.name, r.version, v.path, r.error "
                          "FROM feature_rows r JOIN videos v USING (video_id) "
                          "WHERE r.status = 'error' ORDER BY 1, 2, 3",
    "Predictions": "SELECT model_id AS model, kind, count(DISTINCT video_id) AS clips, "
                   "strftime(max(created_at), '%Y-%m-%d %H:%M') AS written FROM predictions "
                   "GROUP BY ALL ORDER BY max(created_at), model_id, kind",
}
"""The sections of ``jungle status`` (times in UTC to the minute, sizes in binary units)."""

_SHOWN_WHEN_EMPTY = {"Videos", "Labels", "Fold schemes", "Feature sets"}
"""Sections shown without rows; the others (failures, predictions) only when they have some."""


def workspace_status(workspace: Workspace) -> dict[str, tuple[list[str], list[tuple]]]:
    """Sections of the status report, each as (columns, rows); failure and prediction sections
    only when they have rows."""
    out = {}
    with connect(workspace, read_only=True) as con:
        for title, query in _STATUS_QUERIES.items():
            result = con.execute(query)
            columns, rows = [d[0] for d in result.description], result.fetchall()
            if rows or title in _SHOWN_WHEN_EMPTY:
                out[title] = (columns, rows)
    return out
