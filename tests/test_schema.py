"""The migrations: applied in order to a blank store, once each, and a store made by an older
version of jungle is brought up to date without losing rows."""

from __future__ import annotations

import duckdb

from jungle.store.db import connect, migrate, schema_version
from jungle.store.schema import MIGRATIONS, SCHEMA_VERSION
from jungle.store.workspace import Workspace


def _tables(con) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_migrations_are_numbered_in_sequence_from_one():
    assert [number for number, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == len(MIGRATIONS)


def test_a_blank_store_gets_every_table_and_the_latest_version(tmp_path):
    ws = Workspace.resolve(tmp_path / "ws")
    with connect(ws) as con:
        assert schema_version(con) == SCHEMA_VERSION
        assert {"videos", "labels", "classes", "fold_schemes", "folds", "feature_sets", "feature_rows",
                "predictions", "schema_version"} <= _tables(con)
        applied = con.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    assert applied == [(number, name) for number, name, _ in MIGRATIONS]


def test_migrating_again_changes_nothing(tmp_path):
    ws = Workspace.resolve(tmp_path / "ws")
    with connect(ws) as con:
        before = con.execute("SELECT count(*) FROM schema_version").fetchone()[0]
        assert migrate(con) == SCHEMA_VERSION
        assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == before


def test_an_old_store_is_brought_up_to_date_keeping_its_rows(tmp_path):
    """A database that stopped at migration 1 (as the first release wrote it) gains the later tables
    on the next connect, and its videos survive."""
    ws = Workspace.resolve(tmp_path / "ws")
    ws.root.mkdir(parents=True)
    con = duckdb.connect(str(ws.db_path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    number, name, first = MIGRATIONS[0]
    first(con)
    con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [number, name])
    con.execute("INSERT INTO videos (video_id, path, filename, status) VALUES ('v1', '/a.mp4', 'a.mp4', 'ok')")
    con.close()

    with connect(ws) as con:
        assert schema_version(con) == SCHEMA_VERSION
        assert "predictions" in _tables(con)
        assert con.execute("SELECT video_id, path FROM videos").fetchall() == [("v1", "/a.mp4")]
