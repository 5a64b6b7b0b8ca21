"""`jungle aggregate`: named, versioned feature sets with lineage; unchanged inputs are skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from _errors import cli_error
from _aggregate_helpers import flip_label, make_labelled_workspace
from jungle.cli import app
from jungle.store import registry
from jungle.store.db import connect

FAST = ["--head-hidden", "8", "--head-epochs", "2", "--attention-epochs", "2", "--threads", "1", "--quiet"]


def _invoke(ws, *args):
    result = CliRunner().invoke(app, [*args, "--workspace", str(ws.root)])
    return result


def _files(ws, names):
    with connect(ws) as con:
        sets = [registry.get(con, n) for n in names]
    return {fs.ref: (ws.root / fs.location).stat().st_mtime_ns for fs in sets if fs.kind == "video"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(tmp_path_factory.mktemp("aggregate") / "ws")
    data = make_labelled_workspace(ws, n_videos=32, n_frames=6, dims=8, stage_dims=(3, 5), block=8)
    result = _invoke(ws, "aggregate", *FAST, "--format", "csv")
    assert result.exit_code == 0, result.output
    return ws, data, result.output


def test_every_set_is_built_once_with_its_lineage(built):
    ws, data, output = built
    lines = output.strip().splitlines()
    assert lines[0] == "name,version,kind,rows,status,seconds"
    assert [tuple(line.split(",")[:5]) for line in lines[1:]] == [
        ("meta", "1", "video", "32", "computed"),
        ("frameprobs_lite0", "1", "frames", "30", "computed"),
        ("hist_lite0", "1", "video", "30", "computed"),
        ("minmax_lite0", "1", "video", "30", "computed"),
        ("minmax_stages_lite0", "1", "video", "30", "computed"),
        ("attn_lite0", "1", "video", "30", "computed"),
        ("attnvec_lite0", "1", "video", "30", "computed"),
    ]
    with connect(ws) as con:
        hist = registry.get(con, "hist_lite0")
        probs = registry.get(con, "frameprobs_lite0")
        minmax = registry.get(con, "minmax_lite0")
    assert hist.fold_scheme == probs.fold_scheme == "default" and minmax.fold_scheme is None
    assert [i["name"] for i in hist.inputs] == ["frameprobs_lite0"] and hist.inputs[0]["version"] == 1
    assert [i["name"] for i in probs.inputs] == ["lite0", "labels"]
    fingerprint = minmax.inputs[0]["fingerprint"]
    assert minmax.inputs == [{"name": "lite0", "version": 1, "rows": 30, "fingerprint": fingerprint}]
    assert minmax.config == {"kind": "minmax", "array": "embedding", "pools": ["mean", "max", "min", "range"]}
    assert hist.code_version and hist.encoder == "helper-net" and hist.dims == 1 + 4 * 17


def test_sets_are_sql_views_keyed_by_video_id(built):
    ws, data, _ = built
    result = _invoke(ws, "sql", "SELECT count(*) AS n, count(DISTINCT video_id) AS ids, "
                                "min(minmax_lite0_v1.n_valid) AS lo FROM minmax_lite0_v1 "
                                "JOIN hist_lite0 USING (video_id) JOIN meta USING (video_id)",
                     "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output == f"n,ids,lo\n30,30,{int(data.valid[data.done].sum(1).min())}\n"
    result = _invoke(ws, "sql", "SELECT round(max_0003, 3) AS m FROM minmax_lite0 WHERE video_id = ?".replace(
        "?", f"'{data.video_ids[0]}'"), "--format", "json")
    expected = round(float(data.embedding[0, data.valid[0], 3].astype(np.float32).max()), 3)
    assert json.loads(result.output) == [{"m": pytest.approx(expected, abs=1e-3)}]


def test_a_rerun_with_the_same_inputs_recomputes_nothing(built):
    ws, data, _ = built
    names = ["meta", "hist_lite0", "minmax_lite0", "minmax_stages_lite0", "attn_lite0", "attnvec_lite0"]
    before = _files(ws, names)
    zarr_meta = (ws.root / "features.zarr/frameprobs_lite0/v1/probs/zarr.json").stat().st_mtime_ns
    result = _invoke(ws, "aggregate", *FAST)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("0 computed, 7 unchanged")
    assert _files(ws, names) == before
    assert (ws.root / "features.zarr/frameprobs_lite0/v1/probs/zarr.json").stat().st_mtime_ns == zarr_meta


def test_changed_inputs_make_new_versions_of_what_depends_on_them(built):
    ws, data, _ = built
    flip_label(data, 3)
    result = _invoke(ws, "aggregate", *FAST, "--format", "csv")
    assert result.exit_code == 0, result.output
    status = {line.split(",")[0]: line.split(",")[1:5] for line in result.output.strip().splitlines()[1:]}
    assert status["frameprobs_lite0"][0] == "2" and status["frameprobs_lite0"][3] == "computed"
    assert status["hist_lite0"][0] == "2" and status["attn_lite0"][0] == "2"
    assert status["minmax_lite0"] == ["1", "video", "30", "unchanged"]        # labels are not its input
    assert status["meta"] == ["1", "video", "32", "unchanged"]
    other_bins = _invoke(ws, "aggregate", "--kind", "stats", "--bins", "4", *FAST, "--format", "csv")
    assert other_bins.exit_code == 0, other_bins.output
    assert "hist_lite0,3,video,30,computed" in other_bins.output
    assert "frameprobs_lite0,2,frames,30,unchanged" in other_bins.output
    views = _invoke(ws, "sql", "SELECT count(*) AS c FROM information_schema.columns WHERE table_name = 'hist_lite0'",
                    "--format", "csv")
    assert views.output == f"c\n{2 + 4 * (7 + 4)}\n"                    # the view follows the latest version


def test_errors_say_what_to_do(built, tmp_path):
    ws, _, _ = built
    result = _invoke(ws, "aggregate", "--source", "lite9", "--kind", "minmax")
    assert result.exit_code == 1
    assert result.output.startswith('Error: feature set "lite9" has no complete version. Known feature sets: ')
    assert "lite0" in result.output
    result = _invoke(ws, "aggregate", "--source", "hist_lite0", "--kind", "minmax")
    assert result.exit_code == 1
    assert "is video-level; --source takes frame-level sets" in result.output
    result = _invoke(ws, "aggregate", "--kind", "minmax,histogram")
    assert result.exit_code == 1 and result.output.startswith("Error: kinds.1: Input should be 'meta', 'frame-head'")
    result = _invoke(ws, "aggregate", "--kind", "frame-head", "--fold-scheme", "by-site", "--quiet")
    assert result.exit_code == 1
    cli_error(result.output, "'by-site'", "default", "`jungle folds 5 --scheme by-site`", "--fold-scheme")
    from jungle.store.workspace import Workspace

    missing = Workspace.resolve(tmp_path / "nowhere")
    result = _invoke(missing, "aggregate")
    assert result.exit_code == 1 and result.output.startswith(f"Error: No jungle workspace at {missing.root}.")


def test_help_describes_the_command():
    result = CliRunner().invoke(app, ["aggregate", "--help"])
    assert result.exit_code == 0
    assert "Build video-level feature sets" in result.output and "--kind" in result.output


def test_table_writer_streams_row_groups_in_order_and_never_leaves_half_files(tmp_path):
    import polars as pl
    import pyarrow.parquet as pq

    from jungle.features.aggregates.tables import VideoTableWriter

    values = np.random.default_rng(0).random((2500, 3)).astype(np.float32) * 10
    ids = [f"v{i:04d}" for i in range(2500)]
    path = tmp_path / "t.parquet"
    with VideoTableWriter(path, ["n", "a", "b"], int_columns=["n"], group_bytes=3 * 4 * 1024) as writer:
        for lo in range(0, 2500, 700):
            writer.write(np.array(ids[lo:lo + 700], dtype=object), values[lo:lo + 700])
            assert not path.exists()
    table = pl.read_parquet(path)
    assert writer.rows == 2500 and pq.ParquetFile(path).metadata.num_row_groups == 3
    assert table.schema == pl.Schema({"video_id": pl.String, "n": pl.Int32, "a": pl.Float32, "b": pl.Float32})
    assert table["video_id"].to_list() == ids
    np.testing.assert_array_equal(table.select("a", "b").to_numpy(), values[:, 1:])
    np.testing.assert_array_equal(table["n"].to_numpy(), values[:, 0].astype(np.int32))
    with pytest.raises(RuntimeError):
        with VideoTableWriter(tmp_path / "broken.parquet", ["a"]) as writer:
            writer.write(["x"], np.ones((1, 1)))
            raise RuntimeError("killed mid-run")
    assert list(tmp_path.iterdir()) == [path]
    with VideoTableWriter(tmp_path / "empty.parquet", ["a"]):
        pass
    assert pl.read_parquet(tmp_path / "empty.parquet").shape == (0, 2)
