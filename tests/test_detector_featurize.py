"""MegadetectorLite inside featurize: `jungle featurize --detector`, the det_ video-level set, detector:N wiring.

Real clips, the real weights (fetched once per machine, else skipped with the reason), real DuckDB
and Zarr, the CLI through CliRunner.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.featurize.frame_model import decode_size
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _features_helpers import add_videos

CHIMP = "camera_trap/chimp_waterhole_320x180.mp4"     # 320x180: chimpanzees in every frame
FOLIAGE = "other_video/opencv_tree_foliage_hand.avi"   # 320x240: foliage, a hand only at the end
ANY_CLIP = "camera_trap/zamba_test_clips/data/raw/benjamin/04250002.MP4"  # tests/media: any real clip
DETECT = ["featurize", "--detector", "megadetector-lite,input=640x384", "--detector-frames", "fps:0.5",
          "--workers", "0", "--threads", "2", "-q"]


def _invoke(workspace, *args):
    return CliRunner().invoke(app, [*args, "--workspace", str(workspace.root)])


@pytest.fixture(scope="module")
def detected(tmp_path_factory, shared_media, megadetector_file):  # noqa: F811
    """A workspace with the two clips, after one `jungle featurize --detector` run (CLI)."""
    workspace = Workspace.resolve(tmp_path_factory.mktemp("detect") / "ws")
    chimp, foliage = add_videos(workspace, [shared_media / CHIMP, shared_media / FOLIAGE])
    result = _invoke(workspace, *DETECT)
    assert result.exit_code == 0, result.output
    return workspace, {"chimp": chimp, "foliage": foliage}, result.output


@pytest.mark.slow  # the detector inside featurize on two clips (~10 s)
def test_frame_level_detections_are_stored_with_lineage(detected):
    workspace, ids, output = detected
    assert "megadetector_lite" in output and "det_megadetector_lite" in output
    with connect(workspace, read_only=True) as con:
        frames = registry.get(con, "megadetector_lite")
        table = registry.get(con, "det_megadetector_lite")
        rows = dict(con.execute("SELECT video_id, n_valid FROM feature_rows WHERE name = 'megadetector_lite' "
                                "AND status = 'done'").fetchall())
    assert frames.kind == "frames" and frames.sampling == "fps:0.5" and frames.encoder == "yolox-tiny:megadetector-lite"
    assert frames.weights_sha256 == frames.config["model"]["weights_sha256"]
    assert frames.config["frame_size"] is None          # the detector got native-size frames
    assert frames.config["model"]["input_height"] == 384
    assert table.kind == "video" and table.row_count == 2
    assert table.inputs[0]["name"] == "megadetector_lite" and table.inputs[0]["version"] == frames.version
    assert rows[ids["chimp"]] == 8 and rows[ids["foliage"]] == 3   # 15 s at 30 fps; 68 frames at 15 fps
    group = zarr.open_group(str(workspace.root / frames.location), mode="r")
    score, valid, area = group["score"][:], group["valid"][:], group["box_area"][:]
    assert score.shape == valid.shape == (2, 8)
    assert np.all(score[~valid] == 0) and np.all((area >= 0) & (area <= 1))


@pytest.mark.slow
def test_det_view_in_sql_separates_animals_from_foliage(detected):
    workspace, ids, _ = detected
    result = _invoke(workspace, "sql", "SELECT video_id, det_max, det_frac_over_25, det_n_frames "
                                       "FROM det_megadetector_lite", "--format", "json")
    assert result.exit_code == 0, result.output
    table = {row["video_id"]: row for row in json.loads(result.output)}
    chimp, foliage = table[ids["chimp"]], table[ids["foliage"]]
    assert chimp["det_n_frames"] == 8 and chimp["det_frac_over_25"] > 0.8
    assert chimp["det_frac_over_25"] > foliage["det_frac_over_25"]
    with connect(workspace, read_only=True) as con:
        fs = registry.get(con, "megadetector_lite")
        row = con.execute("SELECT row FROM feature_rows WHERE name = ? AND version = ? AND video_id = ?",
                          [fs.name, fs.version, ids["foliage"]]).fetchone()[0]
    group = zarr.open_group(str(workspace.root / fs.location), mode="r")
    early = group["valid"][row] & (group["frame_index"][row] < 50)   # before the hand enters (frame ~60)
    assert early.sum() >= 2
    assert chimp["det_max"] > group["score"][row][early].max() + 0.2


@pytest.mark.slow
def test_same_detector_run_again_changes_nothing(detected):
    workspace, _, _ = detected
    with connect(workspace, read_only=True) as con:
        before = [(s.name, s.version, s.status) for s in registry.list_sets(con)]
    result = _invoke(workspace, *DETECT, "--format", "json")
    assert result.exit_code == 0, result.output
    reported = {row["feature_set"]: row for row in json.loads(result.output)}
    assert reported["megadetector_lite"]["processed"] == 0
    assert reported["det_megadetector_lite"]["status"] == "unchanged"
    with connect(workspace, read_only=True) as con:
        assert [(s.name, s.version, s.status) for s in registry.list_sets(con)] == before


def test_missing_weights_fail_once_with_how_to_fetch(tmp_path, media, monkeypatch):
    workspace = Workspace.resolve(tmp_path / "ws")
    add_videos(workspace, [media / ANY_CLIP])
    monkeypatch.setenv("JUNGLE_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    result = _invoke(workspace, "featurize", "--encoder", "resnet10t", "--frames", "detector:4", "-q")
    assert result.exit_code == 1
    assert "jungle weights fetch megadetector-lite" in result.output
    with connect(workspace, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM feature_sets").fetchone()[0] == 0


def test_bad_detector_options_are_refused(tmp_path, media):
    workspace = Workspace.resolve(tmp_path / "ws")
    add_videos(workspace, [media / ANY_CLIP])
    refusals = ((["--detector", "yolo9000"], "megadetector-lite"),
                (["--detector", "megadetector-lite", "--detector-frames", "detector:4"], "without a model"))
    for extra, expected in refusals:
        result = _invoke(workspace, "featurize", *extra, "-q")
        assert result.exit_code == 1 and expected in result.output, result.output


def test_detector_models_get_native_frames_and_sampling_knows_detector():
    class Square:  # the FrameModel attributes decode_size reads
        input_size, frame_size, native_frames = 224, None, False

    class Native:
        input_size, frame_size, native_frames = 640, None, True

    assert decode_size([Square()]) == (224, 224)
    assert decode_size([Square(), Native()]) is None
    code = ("import sys; from jungle.features.video.sampling import parse_sampling; "
            "s = parse_sampling('detector:16,input=640x640'); "
            "print(s.spec(), s.slots, 'torch' in sys.modules, 'PIL.Image' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["detector:16,input=640x640", "16", "False", "False"]
