"""Boxes and crops in featurize: real clips, real DuckDB/Zarr, the real detector where its weights are cached.

What is checked: boxes sit where the animal or the people are (against MegadetectorLite run directly
on the same decoded frame, and motion against a clip whose moving square we drew), crop geometry at
the frame's edges, a clip with nothing in it still gets crop features (whole frames, said so),
the ``boxes`` SQL table equals the Zarr arrays, lineage says what was on, and a killed run resumes
to the same arrays.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.featurize.config import FeaturizeConfig
from jungle.features.featurize.crops import BoxesConfig, resolve_boxes
from jungle.features.featurize.decode_pool import decode_video, look_positions
from jungle.features.featurize.runner import featurize
from jungle.features.models.encoders import EncoderConfig
from jungle.features.video.boxes import SOURCES, FrameBoxes, merge_boxes
from jungle.features.video.crops import CropConfig, choose_crops, crop_rect, extract_crops
from jungle.features.video.decode import read_frames
from jungle.features.video.motion import MotionConfig, motion_boxes
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.query import run_query
from jungle.store.workspace import Workspace

from _features_helpers import add_videos

CAT = "camera_trap/ACP0006s6f-small-cat.mp4"                 # 720x404 night clip: a cat sits, then leaves
PEOPLE = "other_video/opencv_vtest_static_cam_people.avi"    # 768x576 static camera, people walking
TINY = EncoderConfig(name="resnet10t", input_size=64)
MOTION_ONLY = BoxesConfig(detector=None)                # as `jungle featurize --no-detector`


def _config(**options) -> FeaturizeConfig:
    settings = dict(encoders=(TINY,), frames="uniform:8", block=2, batch_size=12, torch_threads=1, workers=0,
                    boxes=MOTION_ONLY, crops=CropConfig(n=4))
    return FeaturizeConfig(**{**settings, **options})


def _group(workspace, name: str, version: int = 1):
    return zarr.open_group(str(workspace.root / f"features.zarr/{name}/v{version}"), mode="r")


def _rows(workspace, name: str, key: str = "video_id") -> dict[str, int]:
    """{video id (or file name, ``key="filename"``): row} of the latest version of set ``name``."""
    with connect(workspace, read_only=True) as con:
        fs = registry.latest(con, name, complete_only=False)
        return dict(con.execute(f"SELECT v.{key}, r.row FROM feature_rows r JOIN videos v USING (video_id) "
                                "WHERE r.name = ? AND r.version = ?", [fs.name, fs.version]).fetchall())


def _iou(a, b) -> float:
    """IoU of two x, y, w, h boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _square_clip(path, boxes, size=(160, 96), frames: int = 24, seed: int = 0):
    """A real H.264 clip: a fixed noisy background, a bright square at ``boxes(i)`` = (x, y, side) in frame i
    (None: no square). Returns ``path``."""
    import av

    rng = np.random.default_rng(seed)
    background = (rng.integers(40, 90, (size[1] // 8, size[0] // 8, 3))).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(frames):
            image = background.copy()
            square = boxes(i)
            if square is not None:
                x, y, side = square
                image[y:y + side, x:x + side] = (230, 220, 200)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _moving(i: int):
    return (8 + 5 * i, 30, 16)  # the square walks right along y = 30, 16 px wide


# ----------------------------------------------------------------------------- geometry (pure functions)
def test_crop_rectangles_grow_turn_square_and_stay_inside_the_frame():
    width, height = 720, 404
    # in the middle: 25% larger, square on the larger side (72 px wide -> 90), centred on the box
    x0, y0, x1, y1 = crop_rect((0.4, 0.4, 0.1, 0.05), width, height)
    assert x1 - x0 == y1 - y0 == 90
    assert abs((x0 + x1) / 2 - 0.45 * width) <= 1 and abs((y0 + y1) / 2 - 0.425 * height) <= 1
    # at the left and top edges: moved inside, same size
    x0, y0, x1, y1 = crop_rect((0.0, 0.0, 0.1, 0.1), width, height)
    assert (x0, y0) == (0, 0) and x1 - x0 == y1 - y0 == 90
    # at the right and bottom edges
    x0, y0, x1, y1 = crop_rect((0.95, 0.9, 0.05, 0.1), width, height)
    assert (x1, y1) == (width, height) and x1 - x0 == y1 - y0 == round(0.1 * height * 1.25)
    # taller than the frame: cut to its height, not square
    x0, y0, x1, y1 = crop_rect((0.3, 0.0, 0.1, 1.0), width, height)
    assert (y0, y1) == (0, height) and x1 - x0 == round(1.25 * height)
    # a tiny box: at least min_side pixels
    x0, y0, x1, y1 = crop_rect((0.5, 0.5, 0.001, 0.001), width, height, min_side=32)
    assert x1 - x0 == y1 - y0 == 32
    # every rectangle lies in the frame, whatever the box
    rng = np.random.default_rng(0)
    for box in np.column_stack([rng.uniform(-0.2, 1, 200), rng.uniform(-0.2, 1, 200), rng.uniform(0, 1.2, (200, 2))]):
        x0, y0, x1, y1 = crop_rect(box, width, height)
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_crops_are_the_box_pixels_resized(shared_media):
    frames = read_frames(shared_media / CAT, [0, 100], None).images
    boxes = merge_boxes(2, 2, motion=[np.array([[0.0, 0.0, 0.05, 0.1, 0.01]], np.float32),
                                      np.array([[0.9, 0.8, 1.0, 1.0, 0.02]], np.float32)])
    choice = choose_crops(boxes, np.ones(2, bool), 4)
    assert choice.count == 2 and choice.slot[:2].tolist() == [0, 1] and not choice.whole_frames
    images, rects = extract_crops(frames, choice, 64, CropConfig())
    x0, y0, x1, y1 = crop_rect(choice.box[1], 720, 404)
    import cv2

    expected = cv2.resize(np.ascontiguousarray(frames[1, y0:y1, x0:x1]), (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(images[1], expected)
    np.testing.assert_allclose(rects[1], (x0 / 720, y0 / 404, (x1 - x0) / 720, (y1 - y0) / 404))
    assert rects[0, 0] == 0 and rects[0, 1] == 0            # the top-left box's crop starts at the corner
    assert np.isnan(rects[2:]).all()


def test_crop_choice_prefers_detector_boxes_then_motion_then_more_boxes_per_frame():
    detections = [np.array([[0.1, 0.1, 0.2, 0.2, 0.4]], np.float32), np.zeros((0, 5), np.float32),
                  np.array([[0.5, 0.5, 0.6, 0.6, 0.9], [0.0, 0.0, 0.1, 0.1, 0.3]], np.float32)]
    motion = [np.array([[0.7, 0.7, 0.8, 0.8, 0.05]], np.float32)] * 4
    boxes = merge_boxes(4, 3, detections, np.array([True, True, True, False]), motion, np.full(4, 0.05))
    assert boxes.source[:, 0].tolist() == [SOURCES["detector"], SOURCES["motion"], SOURCES["detector"],
                                           SOURCES["motion"]]
    two = choose_crops(boxes, np.ones(4, bool), 2)
    assert two.slot.tolist() == [0, 2] and two.source.tolist() == [SOURCES["detector"]] * 2   # scores 0.4, 0.9
    five = choose_crops(boxes, np.ones(4, bool), 6)
    assert five.count == 5 and five.slot[:5].tolist() == [0, 1, 2, 2, 3]   # frame 2's second box fills in
    nothing = choose_crops(FrameBoxes.empty(4, 3), np.array([True, True, True, False]), 2)
    assert nothing.whole_frames and nothing.slot.tolist() == [0, 2]
    np.testing.assert_array_equal(nothing.box[:2], [[0, 0, 1, 1]] * 2)
    assert look_positions(np.array([0.0, 0.3, 0.0, 0.1, 0.0, 0.0]), 4).tolist() == [0, 1, 3, 5]
    assert look_positions(np.zeros(6), None).tolist() == list(range(6))


# ----------------------------------------------------------------------------- boxes where things are
def test_motion_boxes_find_the_square_that_moves(tmp_path):
    clip = _square_clip(tmp_path / "square.mp4", _moving)
    frames = read_frames(clip, range(0, 24, 3), None)
    found = motion_boxes(frames.images)
    for i, index in enumerate(frames.indices):
        x, y, side = _moving(int(index))
        truth = (x / 160, y / 96, side / 160, side / 96)
        best = found.boxes[i][0]
        assert _iou(truth, (best[0], best[1], best[2] - best[0], best[3] - best[1])) > 0.6, (index, best)
    assert (found.area > 0).all()
    still = _square_clip(tmp_path / "still.mp4", lambda i: None)
    assert not motion_boxes(read_frames(still, range(0, 24, 3), None).images).area.any()
    assert not any(len(b) for b in motion_boxes(frames.images[:3]).boxes)   # too few frames for a background


@pytest.mark.slow  # the detector on 16 frames (~10 s)
def test_motion_boxes_lie_on_the_people_the_detector_finds(shared_media, megadetector_file):
    """A static camera with people walking: motion's boxes and MegadetectorLite's (it finds people too)
    mark the same places on the same decoded frames."""
    from jungle.features.models.detector import DetectorConfig, load_detector

    frames = read_frames(shared_media / PEOPLE, range(0, 790, 50), None).images
    found = motion_boxes(frames)
    detected = load_detector(DetectorConfig(input_height=384)).detect(frames)
    hits = total = 0
    for motion, people in zip(found.boxes, detected.boxes):
        for box in motion[:2]:
            total += 1
            hits += any(_iou(box[:4] - np.r_[0, 0, box[:2]], p[:4] - np.r_[0, 0, p[:2]]) > 0.3 for p in people)
    assert total >= 20 and hits / total > 0.6, (hits, total)


@pytest.fixture(scope="module")
def detected(tmp_path_factory, shared_media, megadetector_file):
    """The small-cat clip featurized with the detector on (the default when the weights are cached)."""
    workspace = Workspace.resolve(tmp_path_factory.mktemp("detected") / "ws")
    add_videos(workspace, [shared_media / CAT])
    summary = featurize(workspace, _config(frames="uniform:6", boxes=BoxesConfig(candidates=24, look=6)),
                        progress=False)
    return workspace, summary


@pytest.mark.slow  # the detector on 12 frames (~10 s)
def test_stored_detector_boxes_match_the_detector_on_the_same_frame(shared_media, detected):
    from jungle.features.models.detector import DetectorConfig, load_detector

    workspace, summary = detected
    assert summary.detected == 6 and summary.notes == []
    boxes = _group(workspace, "boxes")
    looked = boxes["detected"][0]
    assert boxes["valid"][0].sum() == 24 and looked.sum() == 6
    source, frame_index = boxes["box_source"][0], boxes["frame_index"][0]
    frames = read_frames(shared_media / CAT, frame_index[looked], None).images     # decoded again, on their own
    direct = load_detector(DetectorConfig()).detect(frames)
    seen = 0
    for slot, found in zip(np.flatnonzero(looked), direct.boxes):
        if not len(found):
            assert source[slot, 0] != SOURCES["detector"]
            continue
        seen += 1
        assert source[slot, 0] == SOURCES["detector"]
        x1, y1, x2, y2, score = found[0]
        np.testing.assert_allclose(boxes["box"][0, slot, 0], (x1, y1, x2 - x1, y2 - y1), atol=1e-5)
        assert boxes["box_score"][0, slot, 0] == pytest.approx(score, abs=1e-5)
    assert seen >= 2    # the cat is on screen in the first part of the clip
    assert not (source[~looked] == SOURCES["detector"]).any()
    crops = _group(workspace, "crops_resnet10t")
    chosen = crops["box_source"][0] == SOURCES["detector"]
    assert chosen.sum() == min(4, seen) and crops["valid"][0].sum() == 4
    # a crop's box is the stored box of its frame
    for position in np.flatnonzero(chosen):
        slot = list(frame_index).index(crops["frame_index"][0, position])
        np.testing.assert_array_equal(crops["box"][0, position], boxes["box"][0, slot, 0])


def test_the_worker_sends_the_most_moving_frames(shared_media):
    from jungle.features.featurize.decode_pool import Working
    from jungle.features.video.sampling import parse_sampling

    decoded = decode_video(str(shared_media / PEOPLE), parse_sampling("uniform:4"), (64, 64),
                           working=Working(candidates=20, look=4))
    candidates = decoded.candidates
    assert decoded.images.shape == (4, 64, 64, 3) and len(candidates) == 20
    assert candidates.images.shape == (4, 576, 768, 3)                  # the coded size: under max_width
    area = candidates.motion.area
    assert set(np.argsort(-area, kind="stable")[:2]) <= set(candidates.look.tolist())
    again = read_frames(shared_media / PEOPLE, candidates.frame_index[candidates.look], None).images
    np.testing.assert_array_equal(candidates.images, again)            # the same pixels as a decoding of their own


@pytest.mark.slow  # three CLI runs (~15 s)
def test_lineage_says_what_was_on(tmp_path, shared_media, detected, monkeypatch):
    workspace, _ = detected
    with connect(workspace, read_only=True) as con:
        boxes, crops = registry.get(con, "boxes"), registry.get(con, "crops_resnet10t")
        frames = registry.get(con, "resnet10t")
    assert boxes.encoder == "yolox-tiny:megadetector-lite" and boxes.weights_sha256
    assert boxes.config["model"]["detector"]["weights_sha256"] == boxes.weights_sha256
    assert boxes.config["model"]["motion"] == MotionConfig().lineage()
    assert crops.config["model"]["crops"] == CropConfig(n=4).lineage() and crops.config["slots"] == 4
    assert boxes.config["slots"] == 24 and boxes.config["model"]["look"] == 6
    assert crops.config["model"]["boxes"] == {k: v for k, v in boxes.config["model"].items() if k != "kind"}
    assert "crops" not in frames.config["model"]      # whole frames do not depend on boxes or crops
    # without the weights, "auto" turns the detector off and says how to fetch them
    monkeypatch.setenv("JUNGLE_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    resolved, note = resolve_boxes(BoxesConfig())
    assert resolved.detector is None and "jungle weights fetch megadetector-lite" in note
    other = Workspace.resolve(tmp_path / "ws")
    add_videos(other, [shared_media / CAT])
    runner = CliRunner()
    args = ["featurize", "-w", str(other.root), "--encoder", "resnet10t", "--input-size", "64", "--frames",
            "uniform:4", "--workers", "0", "--crops", "2", "--threads", "1", "-q", "-f", "csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "note: the megadetector-lite weights are not cached" in result.output
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:4]] == ["resnet10t", "crops_resnet10t", "boxes"]
    with connect(other, read_only=True) as con:
        assert registry.get(con, "boxes").config["model"]["detector"] is None
        assert registry.get(con, "boxes").encoder == "motion"
    only_frames = runner.invoke(app, [*args, "--no-crops", "--no-detector", "--frames", "uniform:3"])
    assert [line.split(",")[0] for line in only_frames.stdout.splitlines()[1:]] == ["resnet10t"]
    no_crops = runner.invoke(app, [*args, "--no-crops", "--frames", "uniform:3"])
    assert [line.split(",")[0] for line in no_crops.stdout.splitlines()[1:]] == ["resnet10t", "boxes"]


# ----------------------------------------------------------------------------- a run end to end
@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_media):
    """An uninterrupted run on the square clips, a still clip and two real clips (motion boxes)."""
    root = tmp_path_factory.mktemp("reference")
    workspace = Workspace.resolve(root / "ws")
    add_videos(workspace, _clips(root, shared_media))
    summary = featurize(workspace, _config(), progress=False)
    return workspace, summary


def _clips(root, shared_media) -> list:
    return [_square_clip(root / "square.mp4", _moving), _square_clip(root / "still.mp4", lambda i: None),
            shared_media / CAT, shared_media / PEOPLE]


def test_a_clip_with_nothing_in_it_gets_whole_frame_crops(reference):
    workspace, summary = reference
    assert [s.name for s in summary.sets] == ["resnet10t", "crops_resnet10t", "boxes"]
    assert all(s.complete for s in summary.sets)
    row = _rows(workspace, "crops_resnet10t")[_video_id(workspace, "still.mp4")]
    crops, frames = _group(workspace, "crops_resnet10t"), _group(workspace, "resnet10t")
    assert crops["box_source"][row].tolist() == [SOURCES["frame"]] * 4
    assert crops["valid"][row].all()
    np.testing.assert_array_equal(crops["box"][row], [[0, 0, 1, 1]] * 4)
    slots = [list(frames["frame_index"][row]).index(i) for i in crops["frame_index"][row]]
    np.testing.assert_array_equal(crops["embedding"][row], frames["embedding"][row][slots])  # the whole frames'
    moving = _rows(workspace, "crops_resnet10t")[_video_id(workspace, "square.mp4")]
    assert (crops["box_source"][moving] == SOURCES["motion"]).all()


def _video_id(workspace, filename: str) -> str:
    with connect(workspace, read_only=True) as con:
        return con.execute("SELECT video_id FROM videos WHERE filename = ?", [filename]).fetchone()[0]


def test_the_boxes_table_in_sql_is_the_zarr_boxes(reference):
    workspace, _ = reference
    columns, rows = run_query(workspace, "SELECT video_id, frame_index, rank, source, score, x, y, w, h "
                                         "FROM boxes ORDER BY video_id, frame_index, rank")
    boxes, by_video = _group(workspace, "boxes"), _rows(workspace, "boxes")
    expected = []
    for video, row in sorted(by_video.items()):
        for slot in np.flatnonzero(boxes["valid"][row]):
            for rank in np.flatnonzero(boxes["box_source"][row, slot]):
                x, y, w, h = boxes["box"][row, slot, rank]
                expected.append((video, int(boxes["frame_index"][row, slot]), int(rank), "motion",
                                 float(boxes["box_score"][row, slot, rank]), float(x), float(y), float(w), float(h)))
    assert len(rows) == len(expected) > 10
    for got, want in zip(rows, sorted(expected)):
        assert got[:4] == want[:4] and np.allclose(got[4:], want[4:], atol=1e-6)
    still = _video_id(workspace, "still.mp4")
    assert not any(r[0] == still for r in rows)       # nothing moved, no box


@pytest.mark.slow  # a CLI run in another process, killed, then resumed (~30 s)
def test_killed_run_resumes_to_the_same_crops_and_boxes(tmp_path, shared_media, reference):
    workspace = Workspace.resolve(tmp_path / "ws")
    add_videos(workspace, _clips(tmp_path, shared_media))
    command = [sys.executable, "-m", "jungle.cli", "featurize", "-w", str(workspace.root), "--encoder", "resnet10t",
               "--input-size", "64", "--frames", "uniform:8", "--block", "1", "--batch-size", "12", "--threads", "1",
               "--workers", "0", "--no-detector", "--crops", "4", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = workspace.root / "features.zarr/boxes/v1.progress"
    deadline = time.monotonic() + 120
    while not (progress.exists() and any(progress.glob("*.json"))) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(progress.glob("*.json")))
    assert 1 <= done_before < 4, "the run was not interrupted mid-way"
    resumed = featurize(workspace, _config(block=1), progress=False)
    assert all(s.complete for s in resumed.sets)
    for name, keys in (("crops_resnet10t", ("embedding", "valid", "frame_index", "box", "crop", "box_source")),
                       ("boxes", ("box", "box_score", "box_source", "motion_area", "valid"))):
        ours, theirs = _group(workspace, name), _group(reference[0], name)
        assert _rows(workspace, name, "filename") == _rows(reference[0], name, "filename")
        for key in keys:
            np.testing.assert_array_equal(ours[key][:], theirs[key][:], err_msg=f"{name}.{key}")
    count = "SELECT count(*), sum(score), sum(x + y + w + h) FROM boxes"
    assert run_query(workspace, count)[1] == run_query(reference[0], count)[1]
