"""`jungle export megadetector-json`: the MegaDetector batch-output format (1.5) for videos.

The `megadetector` package (10.0.28) does not install from the registry here (its dependency
ultralytics-yolov5 0.1.1 is an sdist whose build needs the network), so :func:`check_batch_output`
applies the rules of its `postprocessing/validate_batch_results.py` for format 1.5 itself.
The detections are a real detector frame-level set (registry row, feature_rows, Zarr arrays)
written with known values, so the boxes can be checked exactly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from _errors import cli_error
from _export_helpers import copy_workspace
from jungle.cli import app
from jungle.export.megadetector import square_box
from jungle.store import arrays, registry
from jungle.store.db import connect

runner = CliRunner()
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".asf", ".mkv", ".wmv", ".m4v", ".mpg", ".mpeg")


def check_batch_output(d: dict) -> list[str]:
    """The errors validate_batch_results would raise (it stops at the first; this lists them all)."""
    errors = []
    info = d.get("info")
    if not isinstance(info, dict) or "format_version" not in info:
        return ["info.format_version missing"]
    version = float(info["format_version"])
    if version < 1.3:
        errors.append("format version below 1.3")
    for key in ("detection_categories", "images"):
        if key not in d:
            errors.append(f"{key} missing")
    for field in ("detection_categories", "classification_categories"):
        for cid, name in d.get(field, {}).items():
            if not (isinstance(cid, str) and cid.isdigit() and isinstance(name, str) and name.strip()):
                errors.append(f"bad {field} entry {cid!r}: {name!r}")
    for im in d.get("images", []):
        file = im.get("file")
        if file is None:
            errors.append("image without file")
            continue
        if im.get("failure") is not None:
            if not isinstance(im["failure"], str) or im.get("detections") is not None:
                errors.append(f"{file}: failure with detections")
        elif not isinstance(im.get("detections"), list):
            errors.append(f"{file}: detections is not a list")
        is_video = file.lower().endswith(VIDEO_SUFFIXES)
        if is_video and version >= 1.5 and "frames_processed" not in im:
            errors.append(f"{file}: no frames_processed")
        if is_video and version >= 1.4 and ("frame_rate" not in im or (im["frame_rate"] < 0 and "failure" not in im)):
            errors.append(f"{file}: no valid frame_rate")
        for det in im.get("detections") or []:
            if not (det.get("category") in d["detection_categories"] and isinstance(det.get("conf"), float)
                    and "bbox" in det):
                errors.append(f"{file}: bad detection {det}")
            if is_video and version >= 1.4 and "frame_number" not in det:
                errors.append(f"{file}: detection without frame_number")
            if not (len(det["bbox"]) == 4 and all(0 <= v <= 1 for v in det["bbox"])):
                errors.append(f"{file}: bbox out of [0, 1]: {det['bbox']}")
            for cid, p in det.get("classifications") or []:
                if not (isinstance(cid, str) and cid in d.get("classification_categories", {})
                        and isinstance(p, (float, int))):
                    errors.append(f"{file}: bad classification {cid!r}")
    return errors


def _write_detections(ws, video_ids: list[str]) -> None:
    """A complete detector set: 4 frame slots (frames 0, 15, 30, 45); the best box of slot 1 has
    score 0.8, area 0.04, centre (0.5, 0.5); slot 2 scores 0 (no box); slot 3 is invalid."""
    n, slots = len(video_ids), 4
    with connect(ws) as con:
        fs, _ = registry.register(con, "megadetector_lite", "frames",
                                  {"model": {"weights": "megadetector-lite", "crop_bottom": 50}, "sampling": "fps:1"},
                                  encoder="yolox-tiny:megadetector-lite", sampling="fps:1")
        con.executemany("INSERT INTO feature_rows VALUES (?, ?, ?, ?, 'done', NULL, 3)",
                        [[fs.name, fs.version, v, i] for i, v in enumerate(video_ids)])
        specs = {"score": arrays.ArraySpec((), "float32", 0.0), "n_boxes": arrays.ArraySpec((), "int16", 0),
                 "box_area": arrays.ArraySpec((), "float32", 0.0),
                 "box_cx": arrays.ArraySpec((), "float32", float("nan")),
                 "box_cy": arrays.ArraySpec((), "float32", float("nan")),
                 "valid": arrays.ArraySpec((), "bool", False), "timestamps": arrays.ArraySpec((), "float32", 0.0),
                 "frame_index": arrays.ArraySpec((), "int32", -1)}
        group = arrays.create_group(ws, fs, n, slots, specs, block=64)
        tile = lambda row: np.tile(np.asarray(row), (n, 1))  # noqa: E731
        arrays.write_rows(group, 0, {
            "score": tile([0.3, 0.8, 0.0, 0.9]).astype(np.float32), "n_boxes": tile([1, 2, 0, 1]).astype(np.int16),
            "box_area": tile([0.01, 0.04, 0.0, 0.5]).astype(np.float32),
            "box_cx": tile([0.25, 0.5, np.nan, 0.5]).astype(np.float32),
            "box_cy": tile([0.25, 0.5, np.nan, 0.5]).astype(np.float32),
            "valid": tile([True, True, True, False]), "timestamps": tile([0.0, 1.0, 2.0, 3.0]).astype(np.float32),
            "frame_index": tile([0, 15, 30, 45]).astype(np.int32)})
        registry.mark_complete(con, fs, n)


@pytest.fixture(scope="module")
def detected(predicted, tmp_path_factory):
    sw, model_id, ws = predicted
    ws = copy_workspace(ws, tmp_path_factory.mktemp("md") / "ws")
    with connect(ws, read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT video_id FROM videos ORDER BY path").fetchall()]
    _write_detections(ws, ids)
    return sw, model_id, ws


def test_batch_output_follows_the_megadetector_format(detected, tmp_path):
    sw, model_id, ws = detected
    out = runner.invoke(app, ["export", "megadetector-json", str(tmp_path / "md.json"), "-w", str(ws.root),
                              "-f", "csv"])
    assert out.exit_code == 0, out.output
    n = len(sw.labelled) + len(sw.unlabelled)
    assert out.output == (f"out,model_id,detections_set,videos,detections\n{tmp_path / 'md.json'},{model_id},"
                          f"megadetector_lite@1,{n},{2 * n}\n")
    d = json.loads((tmp_path / "md.json").read_text())
    assert check_batch_output(d) == []
    assert d["info"]["format_version"] == "1.5" and d["detection_categories"] == {"1": "animal"}
    assert d["classification_categories"] == {str(j): c for j, c in enumerate(sw.classes)}
    first = d["images"][0]
    assert (first["file"], first["frame_rate"], first["frames_processed"]) == ("cam_a/clip00000.mp4", 15.0, [0, 15, 30])
    assert [(x["frame_number"], x["conf"]) for x in first["detections"]] == [(0, 0.3), (15, 0.8)]
    # A 640x360 frame loses its bottom 50 px to the detector: the 0.04 box is a 89.1 px square at (320, 155).
    side = math.sqrt(0.04 * 640 * 310)
    assert first["detections"][1]["bbox"] == pytest.approx(
        [(320 - side / 2) / 640, (155 - side / 2) / 360, side / 640, side / 360], abs=1e-6)
    best = first["detections"][1]["classifications"]
    assert "classifications" not in first["detections"][0]
    with connect(ws, read_only=True) as con:
        video_id = con.execute("SELECT video_id FROM videos WHERE relpath = 'cam_a/clip00000.mp4'").fetchone()[0]
        table = dict(con.execute("SELECT class, probability FROM current_predictions WHERE video_id = ?",  # OOF
                                 [video_id]).fetchall())
    assert [d["classification_categories"][c] for c, _ in best] == sorted(table, key=lambda c: -table[c])
    assert best[0][1] == round(max(table.values()), 6)


def test_square_box_stays_inside_the_frame():
    assert square_box(0.0, 1.0, 0.25, 100, 100, 0) == [0.0, 0.75, 0.25, 0.25]
    assert square_box(0.5, 0.5, 1.0, 100, 100, 0) == [0.0, 0.0, 1.0, 1.0]


def test_no_detector_set_says_what_to_run(detected, tmp_path):
    _, _, ws = detected
    out = runner.invoke(app, ["export", "megadetector-json", str(tmp_path / "md.json"), "-w", str(ws.root),
                              "--detections", "other"])
    assert out.exit_code == 1
    cli_error(out.output, '"other"', "`jungle featurize --detector megadetector-lite`", "`jungle features list`")
