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
