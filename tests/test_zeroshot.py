"""The zero-shot evidence and model on real clips: chimpanzees at a waterhole and a blank stretch of real
footage (the small-cat clip after the cat has left), featurized for real with lite0 (whole frames,
boxes, crops; MegadetectorLite where its weights are cached, motion boxes otherwise)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from jungle.features.aggregates.aggregate import AggregateConfig, aggregate
from jungle.features.featurize.config import FeaturizeConfig
from jungle.features.models.encoders import EncoderConfig
from jungle.features.video.crops import CropConfig
from jungle.ingest.run import IngestConfig, ingest
from jungle.pipeline import featurize_videos
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _zeroshot_helpers import cut_stretch

pytestmark = pytest.mark.slow

CHIMPS = "camera_trap/chimp_waterhole_320x180.mp4"       # chimpanzees drinking, the whole clip
CAT = "camera_trap/ACP0006s6f-small-cat.mp4"             # a small cat until ~9 s, then the empty scene


@pytest.fixture(scope="module")
def featurized(shared_media, tmp_path_factory):
    """A workspace of two real clips (chimpanzees; 5 s of empty scene cut from the cat clip), ingested
    without labels and featurized with lite0, boxes and crops (8 frames, 4 crops)."""
    root = tmp_path_factory.mktemp("zeroshot")
    clips = root / "clips" / "cam"
    clips.mkdir(parents=True)
    shutil.copy(shared_media / CHIMPS, clips / "chimps.mp4")
    cut_stretch(shared_media / CAT, 10.0, 15.0, clips / "empty.mp4")
    ws = Workspace.resolve(root / "ws")
    ingest(ws, root / "clips", IngestConfig(stats=False, workers=0))
    featurize_videos(ws, FeaturizeConfig(encoders=(EncoderConfig(name="lite0"),), frames="uniform:8",
                                         crops=CropConfig(n=4), torch_threads=1, workers=0), progress=False)
    return ws


@pytest.fixture()
def workspace_copy(featurized, tmp_path):
    target = tmp_path / "ws"
    shutil.copytree(featurized.root, target)
    return Workspace.resolve(target)


def _evidence(ws):
    with connect(ws, read_only=True) as con:
        fs = registry.get(con, "zeroshot_lite0")
        names = dict(con.execute("SELECT video_id, filename FROM videos").fetchall())
    table = registry.read_video_table(ws, fs)
    return fs, {names[r["video_id"]]: r for r in table.iter_rows(named=True)}


def test_evidence_of_an_animal_clip_and_a_blank_stretch(workspace_copy):
    made = aggregate(workspace_copy, AggregateConfig(kinds=("zero-shot",)))
    assert [fs.name for fs in made] == ["zeroshot_lite0"]
    fs, rows = _evidence(workspace_copy)
    chimps, empty = rows["chimps.mp4"], rows["empty.mp4"]
    primates = ("chimpanzee", "gorilla", "other_primate")
    assert sum(chimps[c] for c in primates) > 0.2 > sum(empty[c] for c in primates)
    assert chimps["mapped_max"] > empty["mapped_max"]
    assert chimps["crop_share"] == 1.0 and chimps["n_images"] == 4
    assert chimps["motion_max"] > empty["motion_max"]
    assert empty["det_max"] == 0 or np.isnan(empty["det_max"])   # nothing detected (or no detector here)
    # lineage: the head's weights are the embeddings', the map is named with its digest
    with connect(workspace_copy, read_only=True) as con:
        lite0 = registry.get(con, "lite0")
    config = fs.config
    assert config["head_weights_sha256"] == lite0.weights_sha256 and config["encoders"] == ["lite0"]
    assert config["images"] == "crops" and config["class_map"]["source"] == "packaged:imagenet_primatrix.csv"
    assert config["class_map"]["uncovered"] == ["duiker"] and len(config["class_map"]["sha256"]) == 64
    assert config["motion"] is True
    # unchanged inputs: found, not recomputed
    again = aggregate(workspace_copy, AggregateConfig(kinds=("zero-shot",)))
    assert again[0].ref == fs.ref and not again.computed


def test_evidence_from_whole_frames_when_there_are_no_crops(workspace_copy):
    made = aggregate(workspace_copy, AggregateConfig(kinds=("zero-shot",), crops=False, boxes=False))
    fs, rows = _evidence(workspace_copy)
    assert made[0].ref == fs.ref and fs.config["images"] == "frames" and fs.config["detector"] is None
    assert rows["chimps.mp4"]["crop_share"] == 0 and rows["chimps.mp4"]["n_images"] == 8
    assert np.isnan(rows["chimps.mp4"]["det_max"]) and np.isnan(rows["chimps.mp4"]["motion_max"])


# --------------------------------------------------------------------------- the model
def _cli(*args):
    from typer.testing import CliRunner

    from jungle.cli import app

    return CliRunner().invoke(app, list(args))


def _current(ws):
    from jungle.meta.model_io import load_model

    return load_model(ws, "current")


def _by_file(ws, model_id):
    from jungle.store.predictions import read_out_of_sample

    with connect(ws, read_only=True) as con:
        names = dict(con.execute("SELECT video_id, filename FROM videos").fetchall())
        rows = read_out_of_sample(con, model_id)
    out: dict[str, dict[str, float]] = {}
    for video_id, cls, p, _kind, _ in rows:
        out.setdefault(names[video_id], {})[cls] = p
    return out


def test_zero_shot_model_with_no_labels(workspace_copy):
    ws = workspace_copy
    result = _cli("predict", "--model", "zero-shot", "--max-animal-loss", "0.05", "-w", str(ws.root))
    assert result.exit_code == 0, result.output
    assert "no labels used" in result.output and "not yet measured" in result.output
    loaded = _current(ws)
    manifest, record = loaded.manifest, loaded.manifest.zero_shot
    assert manifest.kind == manifest.recipe == "zero-shot" and not manifest.members
    assert record.encoders == ["lite0"] and record.images == "crops" and record.calibration == "rule"
    assert record.class_map["uncovered"] == ["duiker"] and record.labelled == 0 and record.file is None
    assert [f.name for f in record.evidence.features] == ["zeroshot_lite0"]
    assert record.covered == [c != "duiker" and c != "blank" for c in manifest.classes]
    P = _by_file(ws, loaded.model_id)
    species = {c: p for c, p in P["chimps.mp4"].items() if c != "blank"}
    assert max(species, key=species.get) in ("chimpanzee", "gorilla", "other (primate)")
    assert P["chimps.mp4"]["blank"] < P["empty.mp4"]["blank"]
    assert P["chimps.mp4"]["duiker"] <= record.rule["uncovered"] + 1e-9     # uncovered: the floor, no more
    # the blank filter: every clip in the table and the skip list, least likely animal first
    with connect(ws, read_only=True) as con:
        rows = con.execute("SELECT v.filename, b.p_animal, b.skip, b.basis FROM blank_filter b JOIN videos v "
                           "USING (video_id) ORDER BY b.p_animal").fetchall()
    assert [r[0] for r in rows] == ["empty.mp4", "chimps.mp4"] and {r[3] for r in rows} == {"model"}
    skip_list = (ws.root / "blank-filter" / f"{loaded.model_id}.csv").read_text().splitlines()
    assert skip_list[0] == "filepath,filename,site,p_animal,skip" and skip_list[1].split(",")[1] == "empty.mp4"
    # the report says what is not measured; the same command finds the same model
    report = _cli("report", "-w", str(ws.root))
    assert report.exit_code == 0, report.output
    page = (ws.root / "reports" / f"{loaded.model_id}.html").read_text()
    assert "Not measured yet" in page and "duiker" in page and "imagenet_primatrix.csv" in page
    again = _cli("predict", "--model", "zero-shot", "-w", str(ws.root))
    assert again.exit_code == 0 and f"zero-shot model {loaded.model_id} (up to date" in again.output


def test_a_bad_class_map_is_one_line(workspace_copy, tmp_path):
    from _errors import cli_error

    bad = tmp_path / "map.csv"
    bad.write_text("imagenet_id,imagenet_name,class\nn02481823,chimpanzee,chimps\n")
    result = _cli("predict", "--model", "zero-shot", "--class-map", str(bad), "-w", str(workspace_copy.root))
    assert result.exit_code == 1
    cli_error(result.output.splitlines()[-1], str(bad), "line 2", "'chimps'")
    folder = _cli("predict", "--model", "zero-shot", "--class-map", str(tmp_path), "-w", str(workspace_copy.root))
    assert folder.exit_code == 1 and folder.output.count("\n") == 1        # refused before anything ran
    cli_error(folder.output, str(tmp_path), "is a folder")
    result = _cli("predict", "--class-map", str(bad), "-w", str(workspace_copy.root))
    assert result.exit_code == 1 and "--model zero-shot" in result.output


def test_labels_recalibrate_a_new_zero_shot_model(workspace_copy):
    from jungle.ingest.labels import LabelsConfig, import_labels
    from jungle.meta.zeroshot.build import build_zero_shot
    from jungle.meta.zeroshot.calibration import RecalibrationConfig

    ws = workspace_copy
    assert _cli("predict", "--model", "zero-shot", "-w", str(ws.root)).exit_code == 0
    first = _current(ws)
    labels = ws.root.parent / "labels.csv"
    labels.write_text("filepath,label\nchimps.mp4,chimpanzee\nempty.mp4,blank\n")
    import_labels(ws, LabelsConfig(path=str(labels)))
    with connect(ws, read_only=True) as con:
        evidence = registry.get(con, "zeroshot_lite0")
    config = RecalibrationConfig(min_labels=2, folds=2)
    built = build_zero_shot(ws, evidence, recalibration=config)
    assert built.created and built.labelled == 2 and built.model_id != first.model_id
    loaded = _current(ws)                                    # a zero-shot model was current: the new one is
    record = loaded.manifest.zero_shot
    assert loaded.model_id == built.model_id and record.calibration == "labels" and record.labelled == 2
    assert record.file == "calibration.npz" and (built.folder / "oof.parquet").is_file()
    assert loaded.zero_shot.correction is not None and loaded.manifest.metrics["videos"] == 2
    assert build_zero_shot(ws, evidence, recalibration=config).model_id == built.model_id   # same labels: same model
    report = _cli("report", "-w", str(ws.root))
    assert report.exit_code == 0, report.output


def test_review_opens_on_the_zero_shot_model_before_any_label(workspace_copy):
    result = _cli("review", "--retrain", "-w", str(workspace_copy.root))
    assert "no trained model yet: reviewing with the zero-shot model" in result.output
    assert result.exit_code == 1 and "label at least" in result.output      # nothing labelled to re-fit on


def test_the_review_pages_queues_come_from_the_zero_shot_model_before_any_label(workspace_copy):
    """What the page asks for (`/api/info`, `/api/queue`) on the model `jungle review` opens on with no
    saved model: the zero-shot model's probabilities rank the "likely X" and uncertainty queues."""
    from jungle.cli import _review_model
    from jungle.review.session import ReviewSession, parse_queue_request

    ws = workspace_copy
    model_id = _review_model(ws, "current")
    session = ReviewSession(ws, model_id)
    info = session.info()
    assert info["model_id"] == model_id and info["recipe"] == "zero-shot" and info["labelled"] == 0
    P = _by_file(ws, model_id)                       # the page's clips got the zero-shot model's predictions
    assert set(P) == {"chimps.mp4", "empty.mp4"}
    for cls in ("chimpanzee", "blank"):
        likely = session.queue(parse_queue_request({"order": "likely", "class": cls}, session.classes))
        assert [c["filename"] for c in likely["clips"]] == sorted(P, key=lambda f: -P[f][cls])
        for entry in likely["clips"]:
            assert entry["probabilities"][cls] == pytest.approx(P[entry["filename"]][cls], abs=1e-3)
    assert session.queue(parse_queue_request({}, session.classes))["total"] == 2      # the uncertainty queue
