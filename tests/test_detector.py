"""MegadetectorLite on real clips: the network, zamba's preprocessing, scores, frame selection, aggregates.

Reference scores below come from zamba 2.7.2's own pipeline (its ffmpeg filters: scale, crop 50 px
off the bottom, fps=4; Pillow ``ImageOps.pad`` to 640x640 top-left; pixeltable-yolox 0.4.3's
network and ``postprocess``) run outside this project on the cat clip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jungle.features.models.detector import (
    Detector, DetectorConfig, DetectorFrames, DetectorModel, FrameDetections, aggregate_detections, detect_video,
    detection_array_specs, load_detector, select_frames,
)
from jungle.features.video.sampling import parse_sampling, sample_frames
from jungle.features.video.decode import index_video, read_frames
from jungle.features.models.weights import WeightsError
from jungle.features.models.boxes import rows_to_boxes
from jungle.features.models.yolox import build_yolox_tiny, fuse_conv_bn


CAT = "camera_trap/ACP0006s6f-small-cat.mp4"
CHIMP = "camera_trap/chimp_waterhole_320x180.mp4"
FOLIAGE = "other_video/opencv_tree_foliage_hand.avi"
REDUCED = DetectorConfig(input_height=384)  # the default input, on the default backend

#: zamba's scores for cat-clip frames (display index -> best score), crop 50, 640x640.
ZAMBA_CAT_SCORES = {0: 0.7677, 24: 0.7864, 66: 0.6191, 96: 0.5470, 216: 0.7460, 240: 0.0}


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def reduced(megadetector_file):
    """640x384, fused, from the weights cache; the same instance ``detector:N,input=640x384`` uses."""
    return load_detector(REDUCED)


@pytest.fixture(scope="module")
def cat_4fps(shared_media, reduced):
    return detect_video(shared_media / CAT, reduced, fps=4.0)


def test_yolox_tiny_shapes_and_fusion_without_weights():
    torch.manual_seed(0)
    model = build_yolox_tiny(num_classes=1)
    for module in model.modules():  # non-trivial BatchNorm statistics, so fusion has work to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    images = torch.rand(2, 3, 128, 160) * 255
    with torch.inference_mode():
        plain = model(images)
        fused = fuse_conv_bn(model)(images)
    assert plain.shape == (2, 16 * 20 + 8 * 10 + 4 * 5, 6)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert torch.allclose(plain[..., 4:], fused[..., 4:], atol=1e-4)
    assert torch.allclose(plain[..., :4], fused[..., :4], rtol=1e-3, atol=1e-2)
    # box centres are decoded on the stride grid of the input, in pixels
    assert 0 < float(plain[0, :, 0].median()) < 160 and 0 < float(plain[0, :, 1].median()) < 128


def test_checkpoint_loads_strictly(megadetector_file):
    checkpoint = torch.load(megadetector_file, map_location="cpu", weights_only=True)
    model = build_yolox_tiny(1)
    model.load_state_dict(checkpoint["model"], strict=True)
    assert len(checkpoint["model"]) == len(model.state_dict()) == 462
    assert 5.0e6 < sum(p.numel() for p in model.parameters()) < 5.1e6


def _zamba_canvas(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """zamba's letterbox: 50 px cut off the bottom, Pillow ``ImageOps.pad`` (bicubic) to the top left."""
    from PIL import Image, ImageOps

    return np.stack([np.asarray(ImageOps.pad(Image.fromarray(frame[:-50]), size, method=Image.BICUBIC, color=None,
                                             centering=(0, 0))) for frame in frames])


def test_preprocess_pads_top_left_after_crop(shared_media):
    import cv2

    frame = read_frames(shared_media / CAT, [24]).images  # 720x404
    detector = Detector(model=None, config=DetectorConfig(input_width=640, input_height=640), weights_sha256="")
    canvas, ratio, (height, width) = detector.preprocess(frame)
    assert (height, width) == (404 - 50, 720) and ratio == pytest.approx(640 / 720)
    expected = cv2.resize(frame[0, :354], (640, 315), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(canvas[0, :315], expected)
    assert canvas[0, 315:].max() == 0  # black padding below the image
    zamba = _zamba_canvas(frame, (640, 640))  # Pillow's bicubic differs by a fraction of a grey level
    assert np.abs(canvas.astype(int) - zamba).mean() < 0.5
    # a tiny frame loses at most half its height to the crop
    small = Detector(None, DetectorConfig(input_width=64, input_height=64), "").preprocess(frame[:, :60, :80])
    assert small[2] == (30, 80)


@pytest.mark.slow  # the full-size network three times (~10 s)
def test_network_and_boxes_equal_zamba_reference_fused_and_unfused(shared_media, megadetector_file):
    frames = read_frames(shared_media / CAT, [66, 216])
    expected = np.array([ZAMBA_CAT_SCORES[i] for i in frames.indices])
    config = DetectorConfig(input_width=640, input_height=640, backend="torch")
    fused = Detector.load(config, weights_file=megadetector_file)
    plain = Detector.load(config.model_copy(update={"fuse": False}), weights_file=megadetector_file)
    canvas = _zamba_canvas(frames.images, (640, 640))  # zamba's own input: the network and boxes are zamba's
    scores = [rows_to_boxes(rows, 0.25, 0.45)[0, 4] for rows in fused.network.forward(canvas)]
    assert np.allclose(scores, expected, atol=2e-3), (scores, expected)
    assert np.allclose(plain.detect(frames.images).score, fused.detect(frames.images).score, atol=1e-4)
    # our letterbox (OpenCV bilinear, as YOLOX trained) moves the scores a little: within 0.04 here
    assert np.allclose(fused.detect(frames.images).score, expected, atol=0.04)


@pytest.mark.slow  # the detector over the whole cat clip (~25 s)
def test_cat_detections_lie_in_its_first_9_5_seconds(cat_4fps):
    times, found = cat_4fps.timestamps, cat_4fps.detections
    assert len(found) == 60 and np.allclose(np.diff(times), 0.25, atol=0.01)
    detected = found.score >= 0.25
    assert detected.sum() >= 16
    assert times[detected].max() < 9.5
    per_second = np.array([found.score[(times >= s) & (times < s + 1)].max() for s in range(15)])
    # the measured best score per second: 0.79 0.78 ... 0.77 0.73 for 0-9 s, then under 0.4
    assert per_second[[0, 1, 9]].min() > 0.7 and per_second[2:9].max() > 0.5
    assert per_second[10:].max() < 0.4
    chosen = select_frames(found.score, 16)
    assert len(chosen) == 16 and np.all(np.diff(chosen) > 0) and times[chosen].max() < 9.5
    # the small cat sits top-left, small; its box is given as fractions of the cropped frame
    best = int(np.argmax(found.score))
    assert found.box_cx[best] < 0.5 and found.box_cy[best] < 0.5 and 0 < found.box_area[best] < 0.05
    assert found.boxes[best][0, 4] == found.score[best] and found.n_boxes[best] == len(found.boxes[best])


@pytest.mark.slow
def test_reduced_input_gives_zamba_scores_on_a_wide_frame(cat_4fps):
    # 640x384 pads less but scales a 720x354 frame as 640x640 does: scores stay near zamba's (the
    # remaining difference is the letterbox's resize, see above)
    found = dict(zip(cat_4fps.frame_index.tolist(), range(len(cat_4fps.frame_index))))
    rows = [found[i] for i in ZAMBA_CAT_SCORES]
    assert np.allclose(cat_4fps.detections.score[rows], list(ZAMBA_CAT_SCORES.values()), atol=0.04)
    empty = rows[-1]  # frame 240 (10 s): nothing kept
    assert cat_4fps.detections.n_boxes[empty] == 0 and np.isnan(cat_4fps.detections.box_cx[empty])
    assert cat_4fps.detections.box_area[empty] == 0 and len(cat_4fps.detections.boxes[empty]) == 0


@pytest.mark.slow
def test_chimp_clip_detects_in_most_frames(shared_media, reduced):
    index = index_video(shared_media / CHIMP)
    frames = read_frames(shared_media / CHIMP, np.linspace(0, index.n_frames - 1, 8).round().astype(int), index=index)
    found = reduced.detect(frames.images)
    assert (found.score >= 0.5).mean() >= 0.9, found.score
    assert found.n_boxes.min() >= 1
    # the same frames through the featurize runner's per-frame model interface
    model = DetectorModel(reduced)
    outputs = model.encode(frames.images)
    assert model.set_name == "megadetector_lite" and model.native_frames and model.frame_size is None
    assert set(outputs) == set(model.output_specs()) and np.array_equal(outputs["score"], found.score)
    assert model.registry_meta()["weights_sha256"] == reduced.weights_sha256 == model.describe()["weights_sha256"]


@pytest.mark.slow
def test_foliage_before_the_hand_detects_in_few(shared_media, reduced):
    index = index_video(shared_media / FOLIAGE)  # header says 444 frames, 68 decode; the hand is in the last ~8
    assert index.n_frames == 68
    wanted = np.arange(0, 48, 4)  # every 4th of the first 48 frames: foliage only
    found = reduced.detect(read_frames(shared_media / FOLIAGE, wanted, index=index).images)
    assert len(found) == 12 and (found.score >= 0.25).sum() <= 1, found.score


@pytest.mark.slow
def test_detector_sampling_picks_cat_frames(shared_media, megadetector_file):
    sampling = parse_sampling("detector:3,fps=0.5")  # scores 8 frames, 0 s to 14 s, at 640x384
    assert isinstance(sampling, DetectorFrames) and sampling.slots == 3
    assert sampling.spec() == "detector:3,fps=0.5"
    assert parse_sampling("detector:3,input=640x640,backend=torch").spec() == "detector:3,input=640x640,backend=torch"
    sampled = sample_frames(shared_media / CAT, sampling, size=(96, 54))
    assert sampled.n_valid == 3 and sampled.frames.images.shape == (3, 54, 96, 3)
    assert np.all(np.diff(sampled.frame_index) > 0) and sampled.timestamps.max() < 9.5


@pytest.mark.parametrize("text, message", [
    ("detector:x", "whole number"),
    ("detector:4,input=650x384", "multiples of 32"),
    ("detector:4,colour=1", "unknown option"),
    ("detector:4,backend=tensorrt", "backend"),
])
def test_detector_sampling_rejects_bad_options(text, message):
    with pytest.raises(ValueError, match=message):
        parse_sampling(text)


def test_missing_weights_say_how_to_fetch(tmp_path):
    with pytest.raises(WeightsError) as info:
        Detector.load(weights_dir=tmp_path)
    assert f"the megadetector-lite weights are not in {tmp_path}. " in str(info.value)
    assert 'Run "jungle weights fetch megadetector-lite"' in str(info.value)
    with pytest.raises(WeightsError, match="are not in"):  # detector:N checks before any work starts
        parse_sampling("detector:4").require_weights(tmp_path)


def test_select_frames_best_first_then_uniform_fill():
    scores = np.array([0.0, 0.9, 0.3, 0.0, 0.9, 0.1, 0.8, 0.0, 0.0, 0.0])
    assert select_frames(scores, 2).tolist() == [1, 4]  # tie at 0.9: both, in time order
    assert select_frames(scores, 3).tolist() == [1, 4, 6]
    # 4 detections, 6 wanted: the 4, plus 2 spread over the other 6 frames (first and last of them)
    assert select_frames(scores, 6).tolist() == [0, 1, 2, 4, 6, 9]
    assert select_frames(np.zeros(10), 3).tolist() == [0, 4, 9]  # nothing detected: uniform
    valid = np.ones(10, bool)
    valid[[1, 8, 9]] = False
    assert select_frames(scores, 2, valid=valid).tolist() == [4, 6]
    assert select_frames(scores, 20, valid=valid).tolist() == np.flatnonzero(valid).tolist()


def test_aggregate_detections_over_valid_frames_only():
    score = np.array([[0.0, 0.6, 0.8, 0.3, 0.0, 0.9], [0.1, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0] * 6])
    boxes = (score > 0).astype(np.int16) * np.array([1, 1, 2, 1, 1, 3])
    area = np.where(score >= 0.25, np.array([0.1, 0.2, 0.4, 0.1, 0.1, 0.5]), 0.0)
    valid = np.array([[True] * 5 + [False], [True] * 6, [False] * 6])
    times = np.tile(np.arange(6) * 0.25, (3, 1))
    out = aggregate_detections({"score": score, "n_boxes": boxes, "box_area": area}, valid, times)
    assert out["det_n_frames"].tolist() == [5, 6, 0]
    assert out["det_max"][:2].tolist() == pytest.approx([0.8, 0.1])  # the invalid 0.9 is ignored
    assert out["det_mean"][0] == pytest.approx(1.7 / 5)
    assert out["det_n_over_25"][:2].tolist() == [3, 0] and out["det_n_over_75"][0] == 1
    assert out["det_frac_over_50"][0] == pytest.approx(2 / 5)
    assert out["det_longest_run"].tolist() == [3, 0, 0] and out["det_longest_run_frac"][0] == pytest.approx(0.6)
    assert (out["det_first_s"][0], out["det_last_s"][0], out["det_span_s"][0]) == (0.25, 0.75, 0.5)
    assert np.isnan(out["det_first_s"][1]) and out["det_area_max"][1] == 0.0
    assert out["det_area_mean"][0] == pytest.approx((0.2 + 0.4 + 0.1) / 3)
    assert out["det_area_max"][0] == pytest.approx(0.4)
    assert out["det_boxes_max"][0] == 2 and out["det_boxes_mean"][1] == pytest.approx(1 / 6)
    assert np.isnan(out["det_max"][2]) and np.isnan(out["det_frac_over_25"][2])
    assert all(v.dtype == np.float32 and v.shape == (3,) for v in out.values())
    # one video as 1-D arrays gives the same row
    single = aggregate_detections({"score": score[0], "n_boxes": boxes[0], "box_area": area[0]}, valid[0], times[0])
    assert all(np.array_equal(single[k], out[k][:1], equal_nan=True) for k in out)


def test_frame_detections_arrays_match_the_store_specs():
    boxes = [np.array([[0.1, 0.2, 0.3, 0.6, 0.7], [0.5, 0.5, 0.6, 0.6, 0.3]], np.float32), np.zeros((0, 5), np.float32)]
    found = FrameDetections.from_boxes(boxes)
    assert found.score.tolist() == pytest.approx([0.7, 0.0]) and found.n_boxes.tolist() == [2, 0]
    assert found.box_area[0] == pytest.approx(0.2 * 0.4)
    assert (found.box_cx[0], found.box_cy[0]) == pytest.approx((0.2, 0.4))
    specs = detection_array_specs()
    assert set(found.arrays()) == set(specs)
    assert all(found.arrays()[name].dtype == np.dtype(spec.dtype) for name, spec in specs.items())
    empty = Detector(None, DetectorConfig(), "").detect(np.zeros((0, 90, 160, 3), np.uint8))
    assert len(empty) == 0
