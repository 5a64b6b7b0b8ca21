"""The store's readers and writers of videos, labels, classes, folds and predictions, on a real
DuckDB workspace: what each writes, what each reads back, and that the digests recorded in
feature-set lineage are the ones the earlier queries made."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from jungle.features.aggregates.metadata import metadata_features, videos_fingerprint
from jungle.store.db import connect, registered, transaction
from jungle.store.labels import (LabelsInconsistent, LabelsMissing, fold_assignment, folds_fingerprint,
                                 labels_fingerprint, read_classes, read_fold_scheme, read_labelled, write_classes,
                                 write_fold_scheme, write_labels)
from jungle.store.predictions import read_predictions, write_predictions
from jungle.store.rows import fingerprint
from jungle.store.videos import read_videos, write_videos

CLASSES = ("blank", "chimpanzee", "duiker")


def _video(i: int, status: str = "ok") -> dict:
    return {"video_id": f"v{i}", "path": f"/data/site{i % 2}/clip{i}.mp4", "relpath": f"site{i % 2}/clip{i}.mp4",
            "filename": f"clip{i}.mp4", "site": f"site{i % 2}", "bytes": 1000 + i,
            "mtime": datetime(2020, 1, 1, 6, i), "status": status, "error": None if status == "ok" else "bad",
            "fps": 15.0, "width": 320, "height": 180, "duration": 3.0 + i, "has_audio": i % 2 == 0,
            "is_night": False, "brightness": 0.1 * i, "motion_energy": 0.5, "bytes_per_second": 300.0 + i}


@pytest.fixture()
def con(workspace):
    with connect(workspace) as con:
        with transaction(con):
            write_videos(con, [_video(i) for i in range(5)] + [_video(9, "error")])
        yield con


def test_videos_are_written_with_their_types_and_replaced_by_id(con):
    rows = read_videos(con, ("video_id", "mtime", "has_audio", "bytes"), ok_only=True)
    assert [r[0] for r in rows] == ["v0", "v1", "v2", "v3", "v4"]
    assert rows[1] == ("v1", datetime(2020, 1, 1, 6, 1), False, 1001)
    with transaction(con):
        write_videos(con, [{**_video(1), "bytes": 5, "brightness": None}])
    assert read_videos(con, ("bytes", "brightness", "frames"), video_ids=["v1"]) == [(5, None, None)]
    assert len(read_videos(con, ("video_id",))) == 6
    with pytest.raises(ValueError, match="no column"):
        read_videos(con, ("video_id; DROP TABLE videos",))


def test_labels_classes_and_sources_round_trip(con):
    assert read_classes(con, required=False) == ()
    with pytest.raises(LabelsMissing):
        read_labelled(con, None)
    with transaction(con):
        write_classes(con, CLASSES)
        write_labels(con, ["v0", "v1"], CLASSES, np.array([[1, 0, 0], [0, 1, 1]]), "train.csv")
        write_labels(con, ["v2"], CLASSES, np.array([[0, 0, 1]]), "review")
    labelled = read_labelled(con, None)
    assert labelled.video_ids.tolist() == ["v0", "v1", "v2"] and labelled.classes == CLASSES
    assert labelled.source_of() == {"v0": "train.csv", "v1": "train.csv", "v2": "review"}
    Y, known = labelled.aligned(["v2", "v3", "v1"], ("duiker", "chimpanzee", "hog"))
    assert known.tolist() == [True, False, True]
    assert Y.tolist() == [[1, 0, 0], [0, 0, 0], [1, 1, 0]]
    with transaction(con):
        write_labels(con, ["v1"], CLASSES, None, None)  # unlabelled again
    assert read_labelled(con, None, video_ids=["v1", "v2"]).video_ids.tolist() == ["v2"]
    with transaction(con):
        write_labels(con, ["v4"], CLASSES, np.array([[1, 0, 0]]), "other.csv", replace_all=True)
    assert read_labelled(con, None).video_ids.tolist() == ["v4"]
    con.execute("INSERT INTO labels VALUES ('v3', 'hog', 1, 'hand-edited')")
    with pytest.raises(LabelsInconsistent, match="hog"):
        read_labelled(con, None, required=False)


def test_fold_schemes_and_the_lineage_digests_are_the_earlier_queries(con):
    with transaction(con):
        write_classes(con, CLASSES)
        write_labels(con, ["v0", "v1", "v2"], CLASSES, np.eye(3, dtype=int), "train.csv")
        write_fold_scheme(con, "default", 2, "site", 7, ["v0", "v1", "v2"], np.array([0, 1, 0]))
    assert read_fold_scheme(con, "default") == (2, "site", 7) and read_fold_scheme(con, "other") is None
    assert fold_assignment(con, "default") == {"v0": 0, "v1": 1, "v2": 0}
    assert read_labelled(con, "default").folds.tolist() == [0, 1, 0]
    assert labels_fingerprint(con) == fingerprint(con, "SELECT video_id, class, value FROM labels")
    assert folds_fingerprint(con, "default") == fingerprint(
        con, "SELECT video_id, fold FROM folds WHERE scheme = ?", ["default"])
    # the metadata set's input digest, as it was computed on the table before the store gave a relation
    before = fingerprint(con, """SELECT
        video_id, site, captured_at, captured_at + to_minutes(coalesce(utc_offset_minutes, 0)) AS clock, bytes,
        bytes_per_second, bit_rate, width, height, fps, duration, frames,
        frames_decodable, CAST(has_audio AS TINYINT) AS has_audio, brightness, CAST(is_night AS TINYINT) AS is_night,
        colourfulness, motion_energy FROM videos WHERE status = 'ok'""")
    assert videos_fingerprint(con) == before
    table = metadata_features(con)
    assert table.get_column("video_id").to_list() == ["v0", "v1", "v2", "v3", "v4"]  # readable videos only


def test_predictions_replace_per_video_or_per_model(con):
    P = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    with transaction(con):
        assert write_predictions(con, "m1", "predict", ["v0", "v1"], CLASSES, P) == 6
        write_predictions(con, "m1", "oof", ["v0"], CLASSES, P[:1])
        write_predictions(con, "m1", "predict", ["v1"], CLASSES, P[:1])  # v0's predict rows stay
    rows = read_predictions(con, "m1", ("predict",))
    assert {(v, c): p for v, c, p, _, _ in rows} == {
        ("v0", "blank"): 0.7, ("v0", "chimpanzee"): 0.2, ("v0", "duiker"): 0.1,
        ("v1", "blank"): 0.7, ("v1", "chimpanzee"): 0.2, ("v1", "duiker"): 0.1}
    assert {r[3] for r in read_predictions(con, "m1")} == {"oof", "predict"}
    with transaction(con):
        write_predictions(con, "m1", ["predict", "oof"], ["v2", "v3"], CLASSES, P, replace="model")
    assert sorted({(r[0], r[3]) for r in read_predictions(con, "m1")}) == [("v2", "predict"), ("v3", "oof")]
    with pytest.raises(ValueError, match="one kind"):
        write_predictions(con, "m1", "guess", ["v0"], CLASSES, P[:1])


def test_registered_frames_are_gone_after_the_block_even_on_error(con):
    frame = pl.DataFrame({"x": [1, 2, 3]})
    with registered(con, numbers=frame):
        assert con.execute("SELECT sum(x) FROM numbers").fetchall() == [(6,)]
    with pytest.raises(ZeroDivisionError):
        with registered(con, numbers=frame):
            1 / 0
    with pytest.raises(Exception, match="numbers"):
        con.execute("SELECT * FROM numbers").fetchall()
