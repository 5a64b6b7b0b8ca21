"""MegadetectorLite on OpenVINO / ONNX Runtime: boxes against PyTorch's on real frames, the numpy box
code against torchvision's, the export cache, refusals and fallbacks, damaged exports, lineage.

Real frames: the cat and chimpanzee clips, two small zamba clips and camera-trap stills of
``../shared/media`` (skipped without it). Exports go to one weights cache per module
(``JUNGLE_WEIGHTS_DIR``, holding a link to the real weights), so each configuration is exported
once; the tests that export or run featurize are marked slow.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.models.backends import BackendError, BackendMismatch, backend_version
from jungle.features.models.boxes import box_agreement, iou_matrix, nms, rows_to_boxes
from jungle.features.models.detector import DEFAULT_INPUT, Detector, DetectorConfig, letterbox, load_detector
from jungle.features.models.detector_backends import TOLERANCE, export_detector, network_agreement
from jungle.features.video.decode import index_video, read_frames
from jungle.features.video.sampling import parse_sampling, spread_indices
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _features_helpers import add_videos

CAT = "camera_trap/ACP0006s6f-small-cat.mp4"
CHIMP = "camera_trap/chimp_waterhole_320x180.mp4"
SMALL = ["camera_trap/zamba_test_clips/data/raw/savanna/Grumeti_Tanzania/K38_check3/09190048_Hyena.AVI",
         "camera_trap/zamba_test_clips/data/raw/benjamin/04250002.MP4"]
STILLS = ["camera_trap_images/ena24_small/2480.jpg", "camera_trap_images/cameratrapai_test_data/ocelot.jpg",
          "camera_trap_images/small_cat.jpg", "camera_trap_images/wild_dog_jackal.jpg"]
ACCELERATED = ["openvino", "onnxruntime"]


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, megadetector_file):
    """A weights cache holding (a link to) the real weights, for this module's exports and CLI runs."""
    folder = tmp_path_factory.mktemp("weights")
    (folder / megadetector_file.name).symlink_to(megadetector_file)
    patch = pytest.MonkeyPatch()
    patch.setenv("JUNGLE_WEIGHTS_DIR", str(folder))
    yield folder
    patch.undo()


def _frames(folder, clip: str, count: int) -> np.ndarray:
    index = index_video(folder / clip)
    return read_frames(folder / clip, spread_indices(index.n_frames, count), index=index).images


@pytest.fixture(scope="module")
def real_frames(shared_media) -> list[np.ndarray]:
    """One uint8 array per clip or still, at its native size (720x404, 320x180, 80x60, 106x60, stills)."""
    stills = [np.asarray(Image.open(shared_media / still).convert("RGB"))[None] for still in STILLS]
    clips = [_frames(shared_media, CAT, 16), _frames(shared_media, CHIMP, 8)]
    return [*clips, *[_frames(shared_media, clip, 4) for clip in SMALL], *stills]


def _canvases(detector: Detector, frames: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([detector.preprocess(f)[0] for f in frames])


@pytest.fixture(scope="module")
def reference(weights_dir):
    return Detector.load(DetectorConfig(backend="torch"))


def test_numpy_boxes_equal_torchvision_on_real_rows(reference, real_frames):
    from torchvision.ops import batched_nms

    rows = reference.network.forward(_canvases(reference, real_frames))
    kept = 0
    for row in rows:
        ours = rows_to_boxes(row, 0.25, 0.45)
        tensor = torch.from_numpy(row)
        scores = tensor[:, 4] * tensor[:, 5:].max(dim=1).values
        keep = scores >= 0.25
        xyxy = torch.cat([tensor[keep, :2] - tensor[keep, 2:4] / 2, tensor[keep, :2] + tensor[keep, 2:4] / 2], 1)
        order = batched_nms(xyxy, scores[keep], torch.zeros(int(keep.sum()), dtype=torch.int64), 0.45)
        theirs = torch.cat([xyxy[order], scores[keep][order, None]], 1).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
        kept += len(ours)
    assert kept >= 30  # the frames hold animals: the comparison is not vacuous


def test_nms_and_iou_by_hand():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    assert iou_matrix(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)
    assert iou_matrix(boxes[:1], boxes[2:3])[0, 0] == 0
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.95]), 0.45).tolist() == [3, 2]  # best first
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.95]), 0.9).tolist() == [3, 1, 2]


def test_box_agreement_counts_both_sides():
    ref = [np.array([[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.3]], np.float32)]
    same = box_agreement(ref, ref)
    assert (same.boxes, same.matched, same.min_iou, same.max_score_diff) == (2, 2, 1.0, 0.0)
    shifted = [np.array([[0, 0, 10, 11, 0.88], [50, 50, 60, 60, 0.24], [80, 80, 90, 90, 0.5]], np.float32)]
    found = box_agreement(ref, shifted)
    assert (found.boxes, found.matched) == (3, 2)  # the extra box at 80,80 counts and is unpaired
    assert found.min_iou == pytest.approx(10 / 11) and found.max_score_diff == pytest.approx(0.06, abs=1e-6)
    assert not found.passes(0.9, 0.1)
    assert box_agreement(ref, [shifted[0][:2]]).passes(0.9, 0.1)  # 0.3 -> 0.24 pairs: kept below 0.25, counted


@pytest.mark.slow
@pytest.mark.parametrize("backend", ACCELERATED)
def test_fp32_backend_boxes_match_pytorch_on_real_frames(backend, reference, real_frames):
    detector = Detector.load(DetectorConfig(backend=backend))
    canvases = _canvases(reference, real_frames)
    agreement, anchor_diff = network_agreement(reference.network, detector.network, canvases, 0.25, 0.45, 0.02)
    assert agreement.boxes >= 30, agreement  # not vacuous
    assert agreement.passes(**TOLERANCE["fp32"]) and anchor_diff <= TOLERANCE["fp32"]["max_score_diff"], agreement
    # the whole detector, letterbox to boxes as fractions of the frame
    for frames in real_frames[:2]:
        ours, theirs = detector.detect(frames), reference.detect(frames)
        assert box_agreement(theirs.boxes, ours.boxes).passes(**TOLERANCE["fp32"])
    record = json.loads((detector.network.model_path.parent / f"verified-{backend}-{backend_version(backend)}.json")
                        .read_text())
    assert record["precision"] == "fp32" and record["tolerance"] == TOLERANCE["fp32"]
    assert record["agreement"]["max_anchor_score_diff"] <= 0.02
    lineage = detector.lineage()
    assert (lineage["backend"], lineage["backend_version"], lineage["precision"]) == (backend, backend_version(backend),
                                                                                      "fp32")
    assert (lineage["input_width"], lineage["input_height"]) == DEFAULT_INPUT
    assert lineage["weights_sha256"] == reference.weights_sha256


@pytest.mark.slow
def test_the_default_is_the_fastest_backend_and_the_export_is_reused(weights_dir):
    first = Detector.load(DetectorConfig())
    assert first.network.backend == "openvino"
    model, record = first.network.model_path, next(first.network.model_path.parent.glob("verified-openvino-*.json"))
    stamps = (model.stat().st_mtime_ns, record.stat().st_mtime_ns)
    again = Detector.load(DetectorConfig())
    assert again.network.model_path == model and (model.stat().st_mtime_ns, record.stat().st_mtime_ns) == stamps
    other = Detector.load(DetectorConfig(input_width=320, input_height=192))
    assert other.network.model_path.parent != model.parent  # one export per input size
    assert load_detector(DetectorConfig()) is load_detector(DetectorConfig())  # kept per process


@pytest.mark.slow
def test_a_refused_backend_falls_back_with_a_note(weights_dir):
    unmeetable = {"min_iou": 1.01, "max_score_diff": 0.02}
    with pytest.raises(BackendMismatch, match=r"openvino .* \(fp32\) gives detector boxes that differ from PyTorch's"
                                              r".*Delete the folder .* or use backend=torch"):
        Detector.load(DetectorConfig(backend="openvino"), tolerance=unmeetable)
    notes = []
    chosen = Detector.load(DetectorConfig(), tolerance=unmeetable, notify=notes.append)
    assert chosen.network.backend == "torch" and chosen.lineage()["backend"] == "torch"
    assert len(notes) == 2
    assert notes[0].startswith("note: openvino") and notes[0].endswith("Falling back to onnxruntime.")
    assert notes[1].endswith("Falling back to torch.")


@pytest.mark.slow
def test_a_damaged_or_crafted_export_is_refused_in_one_line_then_remade(weights_dir, reference, tmp_path, shared_media):
    detector = Detector.load(DetectorConfig(backend="onnxruntime"))
    path = detector.network.model_path
    path.write_bytes(b"not an onnx file\n" * 100)  # damaged: the runtime cannot load it
    with pytest.raises(BackendError, match=f"onnxruntime cannot load the exported model {path}.*Delete the folder"):
        Detector.load(DetectorConfig(backend="onnxruntime"))
    crafted = build_crafted(reference)  # loads fine, computes something else: checked again, refused
    export_detector(crafted, DEFAULT_INPUT, 8, path)
    with pytest.raises(BackendMismatch, match="largest score difference over all anchors"):
        Detector.load(DetectorConfig(backend="onnxruntime"))
    workspace = Workspace.resolve(tmp_path / "ws")
    add_videos(workspace, [shared_media / CHIMP])
    result = CliRunner().invoke(app, ["featurize", "-w", str(workspace.root), "--detector",
                                      "megadetector-lite,backend=onnxruntime", "--detector-frames", "fps:0.5",
                                      "--workers", "0", "-q"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: onnxruntime")
    shutil.rmtree(path.parent)  # what the message says to do
    assert Detector.load(DetectorConfig(backend="onnxruntime")).network.model_path == path


def build_crafted(reference: Detector):
    """The reference network with its objectness biases shifted: a plausible file that is wrong."""
    import copy

    crafted = copy.deepcopy(reference.model)
    with torch.no_grad():
        for conv in crafted.head.obj_preds:
            conv.bias += 2.0
    return crafted


@pytest.mark.slow
def test_featurize_detector_pass_records_the_backend(weights_dir, tmp_path, shared_media):
    workspace = Workspace.resolve(tmp_path / "ws")
    add_videos(workspace, [shared_media / CHIMP])
    runner = CliRunner()
    for spec in ("megadetector-lite", "megadetector-lite,backend=torch", "megadetector-lite"):
        result = runner.invoke(app, ["featurize", "-w", str(workspace.root), "--detector", spec, "--detector-frames",
                                     "fps:0.5", "--workers", "0", "-q"])
        assert result.exit_code == 0, result.output
    with connect(workspace, read_only=True) as con:
        sets = {fs.version: fs for fs in registry.list_sets(con) if fs.name == "megadetector_lite"}
    assert sorted(sets) == [1, 2]  # the third run found version 1 again
    assert sets[1].config["model"]["backend"] == "openvino" and sets[2].config["model"]["backend"] == "torch"
    assert sets[1].config["model"]["input_height"] == DetectorConfig().input_height
    sampling = parse_sampling("detector:4,fps=0.5")
    assert sampling.lineage()["detector"]["backend"] == "openvino"
    assert parse_sampling("detector:4,fps=0.5,backend=torch").lineage()["detector"]["backend"] == "torch"


def test_letterbox_keeps_the_aspect_ratio_at_the_top_left(shared_media):
    frame = _frames(shared_media, CAT, 1)
    canvas, ratio, (height, width) = letterbox(frame, (640, 384), 50)
    assert canvas.shape == (1, 384, 640, 3) and (height, width) == (354, 720) and ratio == pytest.approx(640 / 720)
    assert canvas[0, 315:].max() == 0 and canvas[0, :315].mean() > 10  # 354 x 640/720 = 315 rows of image
    pillow = np.asarray(Image.fromarray(frame[0, :354]).resize((640, 315), Image.BICUBIC)).astype(int)
    assert np.abs(canvas[0, :315].astype(int) - pillow).mean() < 1.0  # close to zamba's Pillow resize
