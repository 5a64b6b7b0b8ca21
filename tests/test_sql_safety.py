"""`jungle sql` reads and never writes: every attack from issue 13 is refused, by the library
function and by the real CLI, against a real workspace (DuckDB file + Parquet feature tables), and
leaves the videos table and every file exactly as they were."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from _stack_helpers import make_stack_workspace
from jungle.errors import InputError
from jungle.store.query import QueryFailed, QueryRefused, reading_connection, run_query

N_VIDEOS = 12
READ_ONLY = ("jungle sql is read-only: it runs one statement that reads (SELECT, WITH ... SELECT, DESCRIBE, SHOW, "
             "SUMMARIZE, EXPLAIN, PRAGMA table_info/show_tables/database_size/...); change the workspace with "
             "jungle's own commands.")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding a real workspace ``ws`` (videos, labels, folds, the ``meta`` and ``hist_lite0``
    Parquet tables), a second workspace ``other`` and an ``outside`` folder that attacks aim at."""
    root = tmp_path_factory.mktemp("sql-safety")
    make_stack_workspace(root / "ws", n_labelled=10, n_unlabelled=2, folds=2)
    make_stack_workspace(root / "other", n_labelled=4, n_unlabelled=0, folds=2)
    (root / "outside").mkdir()
    return root


def _files(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path (new, changed or deleted files all show)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _attacks(site: Path) -> dict[str, tuple[str, str]]:
    """Attack name -> (SQL, the start of the refusal message)."""
    ws, table = site / "ws", site / "ws" / "tables" / "meta" / "v1.parquet"
    other_table = site / "other" / "tables" / "meta" / "v1.parquet"
    one_statement = "jungle sql runs exactly one statement per call; got"
    return {
        "attach-chain": (f"ATTACH ':memory:' AS m (READ_WRITE); USE m; DETACH jungle; "
                         f"ATTACH '{ws / 'jungle.duckdb'}' AS j (READ_WRITE); DELETE FROM j.videos",
                         f"{one_statement} 5 statements."),
        "attach-memory": ("ATTACH ':memory:' AS m (READ_WRITE)",
                          "refused the ATTACH statement: it opens other databases, possibly for writing."),
        "attach-own-db": (f"ATTACH '{ws / 'jungle.duckdb'}' AS j (READ_WRITE)", "refused the ATTACH statement"),
        "attach-other-workspace": (f"ATTACH '{site / 'other' / 'jungle.duckdb'}' AS o (READ_WRITE)",
                                   "refused the ATTACH statement"),
        "use": ("USE memory", "refused the SET statement: it changes the connection's settings (SET, RESET, USE)."),
        "detach": ("DETACH jungle", "refused the DETACH statement"),
        "delete": ("DELETE FROM videos", "refused the DELETE statement: it changes the database or the session."),
        "drop": ("DROP TABLE videos", "refused the DROP statement"),
        "copy-outside": (f"COPY (SELECT 'x') TO '{site / 'outside' / 'leak.csv'}'",
                         "refused the COPY statement: it writes files."),
        "copy-over-feature-table": (f"COPY (SELECT 'x' AS video_id) TO '{table}' (FORMAT parquet)",
                                    "refused the COPY statement: it writes files."),
        "explain-analyze-copy": (f"EXPLAIN ANALYZE COPY (SELECT 'x' AS video_id) TO '{table}' (FORMAT parquet)",
                                 "refused the COPY statement: it writes files."),
        "export": (f"EXPORT DATABASE '{site / 'outside' / 'export'}'",
                   "refused the EXPORT statement: it writes files."),
        "install": ("INSTALL httpfs", "refused the LOAD statement: it adds extensions (INSTALL, LOAD)."),
        "load": ("LOAD parquet", "refused the LOAD statement: it adds extensions (INSTALL, LOAD)."),
        "two-selects": ("SELECT 1; SELECT 2", f"{one_statement} 2 statements."),
        "set-external-access": ("SET enable_external_access = true", "refused the SET statement"),
        "unlock-configuration": ("SET lock_configuration = false", "refused the SET statement"),
        "pragma-that-sets": ("PRAGMA enable_profiling", "refused PRAGMA enable_profiling: only PRAGMAs that report"),
        "checkpoint": ("CHECKPOINT", "refused the CALL statement"),
        "read-passwd": ("SELECT * FROM read_csv('/etc/passwd')",
                        'jungle sql refused to read outside the workspace: Permission Error: Cannot access file '
                        '"/etc/passwd" - file system operations are disabled by configuration. Queries read the '
                        "workspace's database and its tables/ folder, nothing else."),
        "read-other-workspace-table": (f"SELECT * FROM read_parquet('{other_table}')",
                                       "jungle sql refused to read outside the workspace: Permission Error"),
    }


ATTACKS = list(_attacks(Path("/x")))


def _videos(site: Path) -> int:
    return run_query(_workspace(site), "SELECT count(*) FROM videos")[1][0][0]


def _workspace(site: Path):
    from jungle.store.workspace import Workspace

    return Workspace.resolve(site / "ws")


def _jungle_sql(site: Path, query: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jungle.cli", "sql", query, "-w", str(site / "ws"), "-f", "csv"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("attack", ATTACKS)
def test_library_refuses_the_attack_and_nothing_changes(site, attack):
    query, message = _attacks(site)[attack]
    before = _files(site)
    with pytest.raises(InputError) as refused:
        run_query(_workspace(site), query)
    assert isinstance(refused.value, (QueryRefused, QueryFailed))
    assert str(refused.value).startswith(message), str(refused.value)
    assert _files(site) == before
    assert _videos(site) == N_VIDEOS


@pytest.mark.parametrize("attack", ATTACKS)
def test_cli_refuses_the_attack_in_one_line_and_nothing_changes(site, attack):
    query, message = _attacks(site)[attack]
    before = _files(site)
    done = _jungle_sql(site, query)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"Error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert _files(site) == before
    assert _videos(site) == N_VIDEOS


def test_refusal_says_why_and_what_is_allowed_verbatim(site):
    done = _jungle_sql(site, f"COPY videos TO '{site / 'outside' / 'videos.csv'}'")
    assert done.stderr == f"Error: refused the COPY statement: it writes files. {READ_ONLY}\n"


READS = {
    "SELECT count(*) AS n FROM meta": f"n\n{N_VIDEOS}\n",
    "SELECT count(*) AS n FROM hist_lite0_v1 JOIN videos USING (video_id)": f"n\n{N_VIDEOS}\n",
    "WITH s AS (SELECT site FROM videos) SELECT site, count(*) AS n FROM s GROUP BY site": f"site,n\ncam,{N_VIDEOS}\n",
    "SELECT count(*) AS n FROM read_parquet('{ws}/tables/meta/v1.parquet')": f"n\n{N_VIDEOS}\n",
    "DESCRIBE SELECT video_id, codec FROM meta": "column_name,column_type,null,key,default,extra\n"
                                                "video_id,VARCHAR,YES,,,\ncodec,VARCHAR,YES,,,\n",
    "SELECT name FROM (SHOW TABLES) WHERE name = 'videos'": "name\nvideos\n",
    "SELECT column_name, count FROM (SUMMARIZE videos) WHERE column_name = 'site'":
        f"column_name,count\nsite,{N_VIDEOS}\n",
    "SELECT name, type FROM pragma_table_info('folds') ORDER BY cid":
        "name,type\nscheme,VARCHAR\nvideo_id,VARCHAR\nfold,INTEGER\n",
    "PRAGMA table_info('folds')": None,
    "PRAGMA show_tables": None,
    "PRAGMA database_size": None,
    "EXPLAIN SELECT * FROM meta": None,
    "EXPLAIN ANALYZE SELECT count(*) FROM videos": None,
    "VALUES (1, 'a')": "col0,col1\n1,a\n",
}


@pytest.mark.parametrize("query", list(READS))
def test_reading_statements_still_run_through_the_cli(site, query):
    before = _files(site)
    done = _jungle_sql(site, query.format(ws=site / "ws"))
    assert done.returncode == 0, done.stderr
    if READS[query] is not None:
        assert done.stdout == READS[query]
    else:
        assert done.stdout.count("\n") >= 2  # a header and at least one row
    assert _files(site) == before


def test_parquet_views_read_the_same_rows_as_the_feature_table(site):
    import polars as pl

    columns, rows = run_query(_workspace(site), "SELECT * FROM meta ORDER BY video_id")
    table = pl.read_parquet(site / "ws" / "tables" / "meta" / "v1.parquet").sort("video_id")
    assert columns == table.columns
    assert rows == table.rows()


def test_params_still_bind(site):
    assert run_query(_workspace(site), "SELECT ? + 1 AS x", [41]) == (["x"], [(42,)])


@pytest.mark.parametrize("statement, refused_by", [
    ("COPY (SELECT 1) TO '{outside}/copy.csv'", duckdb.PermissionException),
    ("EXPORT DATABASE '{outside}/export'", duckdb.PermissionException),
    ("SELECT * FROM read_csv('/etc/passwd')", duckdb.PermissionException),
    ("INSTALL httpfs", duckdb.PermissionException),
    ("SET enable_external_access = true", duckdb.InvalidInputException),
    ("SET allowed_directories = ['/']", duckdb.InvalidInputException),
    ("SET autoinstall_known_extensions = true", duckdb.InvalidInputException),
    ("RESET lock_configuration", duckdb.InvalidInputException),
])
def test_the_connection_itself_is_locked_down(site, statement, refused_by):
    """Second guard: even a statement that got past the parser check cannot write outside tables/,
    install extensions or unlock the configuration, and the views over Parquet still read."""
    before = _files(site)
    with reading_connection(_workspace(site)) as con:
        with pytest.raises(refused_by):
            con.execute(statement.format(outside=site / "outside"))
        assert con.execute("SELECT count(*) FROM meta").fetchall() == [(N_VIDEOS,)]
    assert _files(site) == before
