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


def test_a_workspace_from_before_capture_times_gets_them_without_a_new_probe(tmp_path, media):
    """Rows an older jungle wrote (schema 3) become 'mtime'; the next ingest reads their containers'
    times from the headers only: the rows are updated, not probed again."""
    import os
    import subprocess
    from datetime import datetime, timedelta

    from _ingest_helpers import jungle
    from jungle.ingest.discover import video_id

    clips = tmp_path / "clips"
    clips.mkdir()
    stamped, plain = clips / "stamped.mp4", clips / "plain.mp4"
    source = media / "camera_trap/zamba_test_clips/data/raw/benjamin/04250002.MP4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c", "copy", "-metadata",
                    "creation_time=2019-05-04T06:07:08Z", str(stamped)], check=True)
    plain.write_bytes(source.read_bytes())
    ws = Workspace.resolve(tmp_path / "ws")
    ws.root.mkdir(parents=True)
    con = duckdb.connect(str(ws.db_path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    for number, name, fn in MIGRATIONS[:3]:
        fn(con)
        con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [number, name])
    mtimes = {}
    for path in (stamped, plain):  # as the ingest of schema 3 wrote them; 999 frames: a probe would change it
        mtimes[path] = datetime(1970, 1, 1) + timedelta(microseconds=os.stat(path).st_mtime_ns // 1000)
        con.execute("INSERT INTO videos (video_id, path, relpath, filename, bytes, mtime, status, frames_decodable, "
                    "stats_frames, ingested_at) VALUES (?, ?, ?, ?, ?, ?, 'ok', 999, 8, '2026-01-01')",
                    [video_id(path), str(path), path.name, path.name, path.stat().st_size, mtimes[path]])
    con.close()

    with connect(ws) as con:
        rows = con.execute("SELECT filename, captured_at, utc_offset_minutes, time_source, probe_version "
                           "FROM videos ORDER BY filename").fetchall()
    assert rows == [("plain.mp4", mtimes[plain], 0, "mtime", None), ("stamped.mp4", mtimes[stamped], 0, "mtime", None)]

    result = jungle("ingest", clips, "-w", ws.root, "-q", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2][1].startswith("2,0,0,0,2,2,0,0,")  # 2 unchanged, 2 upgraded, none probed
    with connect(ws, read_only=True) as con:
        rows = con.execute("SELECT filename, captured_at, time_source, probe_version, frames_decodable, ingested_at "
                           "FROM videos ORDER BY filename").fetchall()
    assert rows == [("plain.mp4", mtimes[plain], "mtime", 1, 999, datetime(2026, 1, 1)),
                    ("stamped.mp4", datetime(2019, 5, 4, 6, 7, 8), "container", 1, 999, datetime(2026, 1, 1))]
    again = jungle("ingest", clips, "-w", ws.root, "-q", "-f", "csv")
    assert again.stdout.splitlines()[1].startswith("2,0,0,0,2,0,0,0,")  # nothing left to upgrade
