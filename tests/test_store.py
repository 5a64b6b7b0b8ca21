"""The workspace store: migrations on a blank database, the registry, views, read-only SQL."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from jungle.cli import app
from jungle.store import arrays, registry
from jungle.store.db import connect, schema_version
from jungle.store.schema import MIGRATIONS, SCHEMA_VERSION


def test_migrations_apply_to_blank_store_once(workspace):
    with connect(workspace) as con:
        assert schema_version(con) == SCHEMA_VERSION == MIGRATIONS[-1][0]
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"videos", "labels", "classes", "folds", "fold_schemes", "feature_sets", "feature_rows"} <= tables
    with connect(workspace) as con:  # a second open applies nothing
        assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_register_same_config_reuses_version_and_new_config_makes_new_one(workspace):
    with connect(workspace) as con:
        first, created = registry.register(con, "emb", "frames", {"encoder": "a"})
        again, created_again = registry.register(con, "emb", "frames", {"encoder": "a"})
        other, created_other = registry.register(con, "emb", "frames", {"encoder": "b"})
    assert (first.version, created) == (1, True)
    assert (again.version, created_again) == (1, False)
    assert (other.version, created_other) == (2, True)


def test_invalid_feature_set_name_is_refused(workspace):
    with connect(workspace) as con, pytest.raises(ValueError, match="not valid"):
        registry.register(con, "Bad-Name", "video", {})


def test_video_table_becomes_sql_view_and_sql_is_read_only(workspace):
    with connect(workspace) as con:
        fs, _ = registry.register(con, "meta_demo", "video", {"k": 1})
        registry.write_video_table(workspace, con, fs, pl.DataFrame({"video_id": ["a", "b"], "x": [1.5, 2.5]}))
    runner = CliRunner()
    result = runner.invoke(app, ["sql", "SELECT sum(x) AS s FROM meta_demo_v1", "-w", str(workspace.root), "-f", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output == "s\n4.0\n"
    dropped = runner.invoke(app, ["sql", "DROP TABLE videos", "-w", str(workspace.root)])
    assert dropped.exit_code == 1
    assert "read-only" in dropped.output
    with connect(workspace, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM videos").fetchone()[0] == 0


def test_frame_group_rows_grow_and_read_back(workspace):
    with connect(workspace) as con:
        fs, _ = registry.register(con, "emb", "frames", {"encoder": "a"})
    specs = {"embedding": arrays.ArraySpec((4,)), "valid": arrays.ArraySpec((), "bool", False)}
    group = arrays.create_group(workspace, fs, n_rows=6, n_frames=3, arrays=specs, block=4)
    data = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4)
    arrays.write_rows(group, 4, {"embedding": data[:2]})
    arrays.ensure_rows(group, 9)
    assert group["embedding"].shape == (9, 3, 4)
    np.testing.assert_array_equal(arrays.read_rows(group, "embedding", np.array([4, 5])), data[:2])
    assert not arrays.read_rows(group, "valid").any()
    assert arrays.block_ranges(9, 4) == [(0, 4), (4, 8), (8, 9)]
