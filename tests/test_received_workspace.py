"""A workspace received from someone is data, never SQL: crafted feature-set names and table
locations in its database write nothing, read nothing outside ``tables/`` and hang no command; and
`jungle sql` ends a runaway query (time, memory, rows) with one line.

Every case runs the real ``jungle`` command in its own process against a real DuckDB file whose
``feature_sets`` rows were edited the way an attacker (or a careless copy) would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from _stack_helpers import make_stack_workspace

N_VIDEOS = 12


def _jungle(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JUNGLE_LOCK_TIMEOUT": "5"}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A real workspace (videos, labels, folds, Parquet sets ``meta`` and ``hist_lite0``) to copy."""
    root = tmp_path_factory.mktemp("received")
    make_stack_workspace(root / "ws", n_labelled=10, n_unlabelled=2, folds=2)
    return root / "ws"


def _received(clean: Path, tmp_path: Path, name: str | None = None, location: str | None = None) -> Path:
    """A copy of the workspace whose ``meta`` set has the given name and/or table location."""
    ws = Path(shutil.copytree(clean, tmp_path / "ws"))
    con = duckdb.connect(str(ws / "jungle.duckdb"))
    try:
        if location is not None:
            con.execute("UPDATE feature_sets SET location = ? WHERE name = 'meta'", [location])
        if name is not None:
            con.execute("UPDATE feature_sets SET name = ? WHERE name = 'meta'", [name])
    finally:
        con.close()
    return ws


def _injections(target: Path) -> dict[str, str]:
    """Feature-set names that close the view's quoted identifier and run statements of their own."""
    return {
        "copy": f"x\" AS SELECT 1; COPY (SELECT 'pwned') TO '{target}'; CREATE TEMP VIEW \"y",
        "copy-no-quotes": f"x\" AS SELECT 1; COPY (SELECT 42) TO '{target}' (FORMAT csv); --",
        "attach": f"x\" AS SELECT 1; ATTACH '{target}' AS evil; CREATE TABLE evil.t AS SELECT 1; --",
        "export": f"x\" AS SELECT 1; EXPORT DATABASE '{target}'; --",
    }


COMMANDS = {
    "status": ["status"],
    "sql": ["sql", "SELECT count(*) AS n FROM hist_lite0"],
    "features-list": ["features", "list"],
    "features-show": ["features", "show", "hist_lite0"],
}


@pytest.mark.parametrize("injection", list(_injections(Path("/x"))))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_crafted_feature_set_name_writes_no_file(clean, tmp_path, injection, command):
    target = tmp_path / "outside" / "pwned.csv"
    target.parent.mkdir()
    ws = _received(clean, tmp_path, name=_injections(target)[injection])
    done = _jungle(*COMMANDS[command], "-w", ws)
    assert list(target.parent.iterdir()) == [], f"{command} wrote {list(target.parent.iterdir())}"
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: feature set")]
    assert len(notes) == 1 and "its name is not lower-case letters" in notes[0] and str(ws) in notes[0]


def test_the_sets_with_good_names_still_get_views(clean, tmp_path):
    ws = _received(clean, tmp_path, name='x"; DROP TABLE videos; --')
    done = _jungle("sql", "SELECT (SELECT count(*) FROM hist_lite0) AS h, (SELECT count(*) FROM videos) AS v",
                   "-w", ws, "-f", "csv")
    assert done.stdout == f"h,v\n{N_VIDEOS},{N_VIDEOS}\n", done.stderr


@pytest.mark.parametrize("where", ["absolute", "dot-dot", "other-workspace"])
def test_a_table_location_outside_tables_gets_no_view(clean, tmp_path, where):
    other = tmp_path / "other.parquet"
    shutil.copy(clean / "tables" / "meta" / "v1.parquet", other)
    location = {"absolute": str(other), "dot-dot": "tables/../../other.parquet",
                "other-workspace": "../other.parquet"}[where]
    ws = _received(clean, tmp_path, location=location)
    done = _jungle("sql", "SELECT count(*) AS n FROM meta", "-w", ws, "-f", "csv")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "points outside" in done.stderr or "not a path inside the workspace" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("Error: the query failed: Catalog Error")


def test_a_fifo_as_a_table_hangs_nothing(clean, tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: no command may open one."""
    ws = _received(clean, tmp_path)
    table = ws / "tables" / "meta" / "v1.parquet"
    table.unlink()
    os.mkfifo(table)
    started = time.monotonic()
    for args in (["status"], ["sql", "SELECT count(*) FROM hist_lite0"], ["features", "show", "hist_lite0"]):
        done = _jungle(*args, "-w", ws, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert f"its table {table} is not a regular file" in done.stderr
    done = _jungle("features", "show", "meta", "-w", ws, timeout=60)
    error = done.stderr.splitlines()[-1]
    assert done.returncode == 1 and error.startswith("Error: feature set meta@1") and \
        f"its table {table} is not a regular file" in error
    assert time.monotonic() - started < 60


def test_a_symlink_out_of_tables_is_not_followed(clean, tmp_path):
    other = tmp_path / "secret.parquet"
    shutil.copy(clean / "tables" / "meta" / "v1.parquet", other)
    ws = _received(clean, tmp_path)
    table = ws / "tables" / "meta" / "v1.parquet"
    table.unlink()
    table.symlink_to(other)
    done = _jungle("sql", "SELECT count(*) AS n FROM meta", "-w", ws, "-f", "csv")
    assert done.returncode == 1 and "points outside" in done.stderr and "Traceback" not in done.stderr


def test_every_reading_connection_is_locked_before_views(clean):
    """The lockdown holds on the connections other commands read with, not only `jungle sql`'s."""
    from jungle.store.db import connect
    from jungle.store.workspace import Workspace

    with connect(Workspace.resolve(clean), read_only=True) as con:
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'temp_directory')").fetchall())
        assert settings == {"enable_external_access": "false", "lock_configuration": "true", "temp_directory": ""}
        with pytest.raises(duckdb.Error):
            con.execute("COPY (SELECT 1) TO '/tmp/jungle-should-not-exist.csv'")


# --------------------------------------------------------------------------- runaway queries
def test_sql_stops_at_its_timeout_in_one_line(clean):
    started = time.monotonic()
    done = _jungle("sql", "SELECT count(*) FROM range(100000000000) a, range(10) b", "--timeout", "1", "-w", clean,
                   timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("Error: the query ran longer than 1 s and was stopped") and \
        done.stderr.count("\n") == 1, done.stderr


def test_sql_stops_at_its_memory_limit_in_one_line_and_spills_nothing(clean):
    before = sorted(p.name for p in clean.iterdir())
    done = _jungle("sql", "SELECT count(*) FROM (SELECT * FROM range(40000000) ORDER BY random())",
                   "--memory-limit", "64MB", "-w", clean, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: the query needs more memory than its limit (64MB") and \
        done.stderr.count("\n") == 1, done.stderr
    assert sorted(p.name for p in clean.iterdir()) == before  # no jungle.duckdb.tmp spill folder


def test_sql_default_limits_are_in_place(clean):
    done = _jungle("sql", "SELECT current_setting('temp_directory') AS t, current_setting('memory_limit') AS m",
                   "-w", clean, "-f", "csv")
    assert done.returncode == 0, done.stderr
    spill, memory = done.stdout.splitlines()[1].split(",")
    assert spill == "" and memory.endswith("iB") and memory != "0 bytes", done.stdout


def test_sql_refuses_more_rows_than_max_rows(clean):
    done = _jungle("sql", "SELECT * FROM range(20)", "--max-rows", "10", "-w", clean)
    assert done.returncode == 1 and done.stderr.startswith("Error: the result has more than 10 rows")
    assert _jungle("sql", "SELECT * FROM range(10)", "--max-rows", "10", "-w", clean, "-f", "csv").stdout.count(
        "\n") == 11


@pytest.mark.parametrize("option, value", [("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "nan"),
                                           ("--timeout", "inf"), ("--memory-limit", "lots"),
                                           ("--memory-limit", "1KB"), ("--max-rows", "0")])
def test_sql_limits_refuse_bad_values_in_one_line(clean, option, value):
    done = _jungle("sql", "SELECT 1", option, value, "-w", clean)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ") and option in done.stderr and done.stderr.count("\n") == 1, done.stderr
