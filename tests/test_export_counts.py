"""Counts in every export: Camtrap DP ``count`` (media and event level) and the counted animals' box,
still valid against the official 1.0.2 profile; the CSV's ``count`` column; the MegaDetector JSON's
boxes of every frame ``jungle count`` looked at. A person's count wins over the machine's.

The workspace is the export tests' (tests/_export_helpers.py), copied, with counts written through the
store's own writer for a few clips, with known values.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime

import polars as pl
import pytest
from typer.testing import CliRunner

from _export_helpers import copy_workspace, errors_of, validate_package, write_deployments
from jungle.cli import app
from jungle.store.counts import set_human_count, write_counts
from jungle.store.db import connect, transaction
from test_export_megadetector import check_batch_output

runner = CliRunner()
CREATED = "2026-12-01T00:00:00Z"
NOW = datetime(2026, 12, 1)


def _clip(video_id, status, maxn=None, tracks=None, frames=(), bbox=None, best=None):
    x, y, w, h = bbox or (None,) * 4
    return {"video_id": video_id, "run_key": "test", "status": status, "reason": None, "frames": len(frames),
            "frame_indices": list(frames), "maxn": maxn, "tracks": tracks, "best_frame_index": best,
            "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "best_frame_boxes": maxn, "max_frame_boxes": maxn,
            "seconds": 1.0, "counted_at": NOW}


def _box(video_id, frame, track, score, x, y, w, h):
    return {"video_id": video_id, "frame_index": frame, "timestamp": frame / 15, "track_id": track, "score": score,
            "moving": 0.3, "x": x, "y": y, "w": w, "h": h}


@pytest.fixture(scope="module")
def counted(predicted, tmp_path_factory):
    """(workspace, model id, {name: video_id}): clips A (MaxN 3), B (counted, nothing), C (skipped),
    D (MaxN 2, a person counted 5) and E (A's event, MaxN 1)."""
    _, model_id, ws = predicted
    ws = copy_workspace(ws, tmp_path_factory.mktemp("counts") / "ws")
    with connect(ws, read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT video_id FROM videos ORDER BY path").fetchall()]
    clips = {"A": ids[0], "E": ids[3], "B": ids[1], "C": ids[2], "D": ids[4]}
    rows = [_clip(clips["A"], "counted", 3, 4, (0, 8, 15, 23), (0.1, 0.2, 0.5, 0.4), 15),
            _clip(clips["B"], "counted", 0, 0, (0, 8)), _clip(clips["C"], "skipped", frames=(0, 30)),
            _clip(clips["D"], "counted", 2, 2, (0, 8), (0.3, 0.3, 0.2, 0.2), 8),
            _clip(clips["E"], "counted", 1, 1, (0, 8), (0.5, 0.5, 0.1, 0.1), 0)]
    boxes = [_box(clips["A"], 0, 1, 0.7, 0.1, 0.2, 0.1, 0.2), _box(clips["A"], 15, 1, 0.9, 0.12, 0.2, 0.1, 0.2),
             _box(clips["A"], 15, 2, 0.8, 0.3, 0.25, 0.1, 0.2), _box(clips["A"], 15, 3, 0.6, 0.5, 0.4, 0.1, 0.2),
             _box(clips["A"], 23, None, 0.3, 0.8, 0.8, 0.1, 0.1), _box(clips["D"], 8, 1, 0.5, 0.3, 0.3, 0.1, 0.2)]
    tracks = [{"video_id": clips["A"], "track_id": k, "first_frame": 0, "last_frame": 15, "first_s": 0.0,
               "last_s": 1.0, "boxes": 2, "mean_score": 0.8, "moving": 0.3, "counted": True} for k in (1, 2, 3)]
    with connect(ws) as con, transaction(con):
        write_counts(con, pl.DataFrame(rows, schema_overrides={"frame_indices": pl.List(pl.Int32)}),
                     pl.DataFrame(tracks), pl.DataFrame(boxes))
        set_human_count(con, clips["D"], 5, "review", "s1", "Ana Ruiz")
    return ws, model_id, clips


def test_camtrap_dp_observations_carry_counts_and_boxes_and_validate(counted, tmp_path):
    ws, _, clips = counted
    out = tmp_path / "pkg"
    result = runner.invoke(app, ["export", "camtrap-dp", str(out), "-w", str(ws.root), "--created", CREATED,
                                 "--contributor", "Ada Lovelace <ada@example.org>", "--deployments",
                                 str(write_deployments(tmp_path / "deployments.csv"))])
    assert result.exit_code == 0, result.output
    assert errors_of(validate_package(out, tmp_path / "validate")) == []
    with open(out / "observations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    media = {}
    for row in rows:
        if row["observationLevel"] == "media" and row["observationType"] in ("animal", "human"):
            media.setdefault(row["mediaID"], []).append(row)
    expected = {clips["A"]: ("3", ("0.1", "0.2", "0.5", "0.4")), clips["D"]: ("5", ("0.3", "0.3", "0.2", "0.2")),
                clips["E"]: ("1", ("0.5", "0.5", "0.1", "0.1")), clips["B"]: ("", ("",) * 4),
                clips["C"]: ("", ("",) * 4)}
    checked = 0
    for video_id, (count, box) in expected.items():
        for row in media.get(video_id, []):
            alone = len(media[video_id]) == 1
            assert row["count"] == (count if alone else "")
            assert (row["bboxX"], row["bboxY"], row["bboxWidth"], row["bboxHeight"]) == (box if alone else ("",) * 4)
            checked += alone and count != ""
    assert checked >= 2, "too few clips with one animal observation to check"
    uncounted = [r for v, found in media.items() if v not in expected for r in found]
    assert uncounted and all(r["count"] == "" and r["bboxX"] == "" for r in uncounted)
    # an event's count: the largest of its clips' counts of the same taxon (the same animals, not a sum)
    for row in rows:
        if row["observationLevel"] != "event" or not row["count"]:
            continue
        same = [int(r["count"]) for r in rows if r["observationLevel"] == "media" and r["eventID"] == row["eventID"]
                and r["scientificName"] == row["scientificName"] and r["count"]]
        assert int(row["count"]) == max(same)
    package = json.loads((out / "datapackage.json").read_text())
    assert "MaxN" in package["jungle"]["counts"]


def test_csv_has_the_count_and_where_it_comes_from(counted, tmp_path):
    ws, _, clips = counted
    result = runner.invoke(app, ["export", "csv", str(tmp_path / "p.csv"), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    with connect(ws, read_only=True) as con:
        paths = dict(con.execute("SELECT video_id, relpath FROM videos").fetchall())
    with open(tmp_path / "p.csv", newline="") as handle:
        rows = {r["filepath"]: r for r in csv.DictReader(handle)}
    got = {name: (rows[paths[v]]["count"], rows[paths[v]]["count_source"]) for name, v in clips.items()}
    assert got == {"A": ("3", "machine"), "B": ("0", "machine"), "C": ("0", "machine"), "D": ("5", "human"),
                   "E": ("1", "machine")}
    others = [r for p, r in rows.items() if p not in {paths[v] for v in clips.values()}]
    assert others and all((r["count"], r["count_source"]) == ("", "") for r in others)


def test_megadetector_json_has_every_counted_frames_boxes(counted, tmp_path):
    ws, _, clips = counted
    out = tmp_path / "md.json"
    result = runner.invoke(app, ["export", "megadetector-json", str(out), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert check_batch_output(document) == []
    assert document["info"]["jungle"]["detections"] == "count"
    with connect(ws, read_only=True) as con:
        paths = dict(con.execute("SELECT video_id, relpath FROM videos").fetchall())
    entries = {im["file"]: im for im in document["images"]}
    a = entries[paths[clips["A"]]]
    assert a["frames_processed"] == [0, 8, 15, 23]
    assert [(d["frame_number"], d["conf"], d["bbox"]) for d in a["detections"]] == [
        (0, 0.7, [0.1, 0.2, 0.1, 0.2]), (15, 0.9, [0.12, 0.2, 0.1, 0.2]), (15, 0.8, [0.3, 0.25, 0.1, 0.2]),
        (15, 0.6, [0.5, 0.4, 0.1, 0.2]), (23, 0.3, [0.8, 0.8, 0.1, 0.1])]
    assert [bool(d.get("classifications")) for d in a["detections"]] == [False, True, False, False, False]
    c = entries[paths[clips["C"]]]
    assert (c["frames_processed"], c["detections"]) == ([0, 30], [])
    missing = [im for f, im in entries.items() if f not in {paths[v] for v in clips.values()}]
    assert missing and all(im["failure"] == "not counted (jungle count)" for im in missing)
    result = runner.invoke(app, ["export", "megadetector-json", str(out), "-w", str(ws.root), "--min-conf", "0.5"])
    assert result.exit_code == 0, result.output
    a = {im["file"]: im for im in json.loads(out.read_text())["images"]}[paths[clips["A"]]]
    assert [d["conf"] for d in a["detections"]] == [0.7, 0.9, 0.8, 0.6]
