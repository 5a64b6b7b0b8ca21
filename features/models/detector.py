"""MegadetectorLite as a per-frame animal scorer, a frame selector and a source of video features.

zamba's MegadetectorLite is a one-class (animal) YOLOX-tiny trained on camera-trap frames
(:mod:`jungle.features.models.yolox` builds the network; :mod:`jungle.features.models.weights` fetches and
verifies its file). :class:`Detector` runs it exactly as zamba 2.7.2 does:

1. RGB frames without their bottom ``crop_bottom`` pixels (default 50, as zamba's official
   configs: the camera's timestamp bar; 0 keeps the whole frame), never more than half the frame.
2. Resized keeping the aspect ratio (Pillow bicubic, as ``ImageOps.pad``) to fit the input size,
   placed at the top-left of a black (0) canvas of that size, float 0-255, no normalisation.
3. Boxes where objectness x class score >= ``confidence`` (0.25), then NMS at IoU ``nms_iou``
   (0.45). A frame's score is its best box's score (0 when no box is kept).

Per frame it gives the best score, the number of boxes kept, and the area and centre of the best
box as fractions of the (cropped) frame. :func:`select_frames` picks the N best frames for the
encoders (``detector:N`` sampling, :class:`DetectorFrames`) and :func:`aggregate_detections`
summarises the per-frame arrays of many videos into video-level features.

The input need not be square: 640x384 (``input_height=384``) costs ~25-40% less than 640x640 on
CPU. On frames at least 5:3 wide (16:9 video; 720x404 after the 50 px crop) the image is scaled
exactly as at 640x640 and only the padding shrinks, so the scores are nearly identical (within
0.003 on the Pri-matrix cat clip); narrower frames (4:3) are scaled down further.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Literal, Mapping, Sequence

import numpy as np
from pydantic import Field

from ...config import JungleConfig
from ...errors import InputError
from ...store.arrays import ArraySpec
from .backends import (
    BACKENDS, PRECISIONS, BackendError, Calibration, choose_backend, first_that_loads, verification_images,
)
from .boxes import rows_to_boxes
from .detector_backends import compile_network, torch_network
from .weights import get_spec, load_weights_file, verify_weights, weights_path
from ..video.sampling import Fps, Sampling, positive_int, register_sampling, spread_indices
from ..video.decode import VideoIndex, index_video, read_frames

__all__ = [
    "DetectorConfig",
    "Detector",
    "DetectorModel",
    "FrameDetections",
    "VideoDetections",
    "load_detector",
    "detect_video",
    "select_frames",
    "aggregate_detections",
    "detection_array_specs",
    "DetectorFrames",
    "DETECTION_LEVELS",
    "letterbox",
    "Sample",
    "DEFAULT_INPUT",
]

#: Score levels counted by :func:`aggregate_detections`.
DETECTION_LEVELS: tuple[float, ...] = (0.25, 0.5, 0.75)

#: Detector weights and the number of classes of their YOLOX-tiny head.
_DETECTOR_CLASSES = {"megadetector-lite": 1}

#: Real frames a backend's first check uses at most (beside the fixed synthetic ones).
VERIFY_REAL_FRAMES = 64

#: Real frames of the user's own videos, drawn when needed (int8 calibration, a backend's first check):
#: the calibration record and one uint8 (n, H, W, 3) array per video, at its native size.
Sample = Callable[[], tuple[Calibration, list[np.ndarray]]]

#: The network input (width, height) by default.
DEFAULT_INPUT = (640, 384)


class DetectorConfig(JungleConfig):
    """How frames are scored (frozen; part of a feature set's lineage).

    Attributes:
        weights: registered weights name (see ``jungle weights list``).
        input_width, input_height: network input in pixels, multiples of 32 (zamba: 640x640).
        confidence: minimum objectness x class score of a kept box.
        nms_iou: IoU above which the weaker of two boxes is suppressed.
        crop_bottom: pixels removed from the bottom of each frame first (zamba's official
            configs: 50, the camera's timestamp bar); at most half the frame's height is removed.
        backend: what runs the network (``openvino``, ``onnxruntime``, ``torch``); None: the fastest
            installed one that passes its check against PyTorch (:mod:`.detector_backends`).
        precision: ``fp32``, or ``int8`` (OpenVINO / ONNX Runtime, calibrated on the user's own videos).
        batch_size: frames per forward pass (does not change results).
        fuse: fold BatchNorm into the convolutions (faster; outputs equal to float rounding).
        channels_last: NHWC memory format for the PyTorch network (faster on CPU; same outputs).
    """

    weights: Literal["megadetector-lite"] = "megadetector-lite"
    input_width: int = Field(default=DEFAULT_INPUT[0], ge=32, multiple_of=32)
    input_height: int = Field(default=DEFAULT_INPUT[1], ge=32, multiple_of=32)
    confidence: float = Field(default=0.25, gt=0.0, le=1.0)
    nms_iou: float = Field(default=0.45, gt=0.0, le=1.0)
    crop_bottom: int = Field(default=50, ge=0)
    backend: Literal["openvino", "onnxruntime", "torch"] | None = None
    precision: Literal["fp32", "int8"] = "fp32"
    batch_size: int = Field(default=8, ge=1)
    fuse: bool = True
    channels_last: bool = True

    @classmethod
    def parse(cls, text: str) -> "DetectorConfig":
        """``WEIGHTS[,input=WxH][,crop=PIXELS][,backend=NAME][,precision=fp32|int8]`` (the CLI's
        ``--detector``), e.g. ``megadetector-lite,input=640x640,backend=torch``.

        Raises:
            InputError: unknown option, bad value or unknown weights name.
        """
        weights, *options = [part.strip() for part in text.split(",")]
        settings: dict = {"weights": weights}
        for option in options:
            key, _, value = option.partition("=")
            if key == "input":
                settings.update(_parse_input_size(value))
            elif key == "crop" and value.isdigit():
                settings["crop_bottom"] = int(value)
            elif key == "backend" and value in BACKENDS:
                settings["backend"] = value
            elif key == "precision" and value in PRECISIONS:
                settings["precision"] = value
            else:
                raise InputError(f"detector option {option!r} is not input=WxH, crop=PIXELS, backend="
                                 f"{'|'.join(BACKENDS)} or precision={'|'.join(PRECISIONS)} "
                                 f"(e.g. megadetector-lite,input=640x384,crop=50,backend=torch)")
        return cls(**settings)

    def lineage(self) -> dict:
        """The settings that change results (not batch size, fusion or memory format; the backend and
        precision that really run are in :meth:`Detector.lineage`)."""
        return self.model_dump(mode="json", exclude={"batch_size", "fuse", "channels_last", "backend", "precision"})


@dataclass
class FrameDetections:
    """Per-frame detector output for ``n`` frames.

    Attributes:
        score: (n,) float32 best box score, 0 where no box was kept.
        n_boxes: (n,) int16 boxes kept after NMS.
        box_area: (n,) float32 area of the best box as a fraction of the frame, 0 where none.
        box_cx, box_cy: (n,) float32 centre of the best box as fractions of the frame's width and
            height (0 = left/top), NaN where none.
        boxes: per frame a (k, 5) float32 array: x1, y1, x2, y2 (fractions, clipped to the frame)
            and score, best first.
    """

    score: np.ndarray
    n_boxes: np.ndarray
    box_area: np.ndarray
    box_cx: np.ndarray
    box_cy: np.ndarray
    boxes: list[np.ndarray] = field(default_factory=list)

    ARRAYS: ClassVar[tuple[str, ...]] = ("score", "n_boxes", "box_area", "box_cx", "box_cy")

    def __len__(self) -> int:
        return len(self.score)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-frame arrays by name (the names of :func:`detection_array_specs`)."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_boxes(cls, boxes: list[np.ndarray]) -> "FrameDetections":
        """Summarise per-frame box lists (best first) into the per-frame arrays."""
        n = len(boxes)
        score = np.zeros(n, np.float32)
        area = np.zeros(n, np.float32)
        cx = np.full(n, np.nan, np.float32)
        cy = np.full(n, np.nan, np.float32)
        for i, frame_boxes in enumerate(boxes):
            if len(frame_boxes):
                x1, y1, x2, y2, best = frame_boxes[0]
                score[i], area[i] = best, (x2 - x1) * (y2 - y1)
                cx[i], cy[i] = (x1 + x2) / 2, (y1 + y2) / 2
        n_boxes = np.asarray([len(b) for b in boxes], np.int16)
        return cls(score, n_boxes, area, cx, cy, list(boxes))

    @classmethod
    def concat(cls, parts: Sequence["FrameDetections"]) -> "FrameDetections":
        return cls.from_boxes([b for part in parts for b in part.boxes])


def detection_array_specs() -> dict[str, ArraySpec]:
    """Zarr array specs of a detector feature set's per-frame arrays (beside valid/timestamps)."""
    return {
        "score": ArraySpec(dtype="float32", fill_value=0.0),
        "n_boxes": ArraySpec(dtype="int16", fill_value=0),
        "box_area": ArraySpec(dtype="float32", fill_value=0.0),
        "box_cx": ArraySpec(dtype="float32", fill_value=float("nan")),
        "box_cy": ArraySpec(dtype="float32", fill_value=float("nan")),
    }


class Detector:
    """A loaded detector: ``detect(images)`` -> :class:`FrameDetections`.

    Build it with :meth:`load` (or :func:`load_detector`, cached per process).

    Attributes:
        model: the YOLOX network (eval mode).
        config: the :class:`DetectorConfig`.
        weights_sha256: sha256 of the weights file it was loaded from.
    """

    def __init__(self, model, config: DetectorConfig, weights_sha256: str, network=None):
        self.model = model
        self.config = config
        self.weights_sha256 = weights_sha256
        if network is None and model is not None:
            network = torch_network(model, config.channels_last)
        self.network = network

    @classmethod
    def load(cls, config: DetectorConfig | None = None, *, weights_file: str | os.PathLike | None = None,
             weights_dir: str | os.PathLike | None = None, sample: Sample | None = None,
             cache: str | os.PathLike | None = None, threads: int | None = None,
             notify: Callable[[str], None] | None = None, tolerance: dict[str, float] | None = None) -> "Detector":
        """Build the network, load the verified weights and put it on its backend.

        Args:
            config: settings (default :class:`DetectorConfig`).
            weights_file: a specific file to load (still checked against the recorded sha256);
                default: the cached copy in ``weights_dir``.
            weights_dir: the weights cache (default ``$JUNGLE_WEIGHTS_DIR`` or ``~/.cache/jungle/weights``).
            sample: real frames of the user's own videos (the featurize side draws them), called only
                when needed: int8 calibrates on them, and a backend's first check uses them too.
            cache: where exported networks are kept (default: the weights cache).
            threads: the runtime's threads (default: torch's).
            notify: where a backend that failed is reported before the next is tried (default stderr).
            tolerance: the agreement a backend must reach with PyTorch (default
                :data:`~jungle.features.models.detector_backends.TOLERANCE` of the precision).

        Raises:
            WeightsError: weights missing or with the wrong hash (the message says how to fetch them).
            BackendError: the backend asked for cannot run the detector (BackendMismatch: it ran, and its
                boxes disagree with PyTorch's); with no backend asked, only when PyTorch fails too.
        """
        import torch

        from .yolox import build_yolox_tiny, fuse_conv_bn  # imports torch: only once a detector is built

        config = config or DetectorConfig()
        spec = get_spec(config.weights)
        if weights_file is None:
            path = weights_path(config.weights, weights_dir)
        else:
            path = verify_weights(config.weights, weights_file)
        checkpoint = load_weights_file(path)
        model = build_yolox_tiny(_DETECTOR_CLASSES[config.weights])
        model.load_state_dict(checkpoint.get("model", checkpoint), strict=True)
        model.eval()
        if config.fuse:
            fuse_conv_bn(model)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        detector = cls(model, config, spec.sha256)
        drawn = sample() if sample is not None and config.precision == "int8" else None
        calibration = (drawn[0], detector._canvases(drawn[1])) if drawn is not None else None
        if config.precision == "int8" and calibration is None:
            raise BackendError("the detector's int8 calibrates on the workspace's own videos: run it through "
                               "`jungle featurize` (or give real frames), or leave out precision=int8.")

        def real() -> np.ndarray:
            frames = sample()[1] if sample is not None else []
            return detector._canvases(frames)[:VERIFY_REAL_FRAMES]

        def compile_on(backend: str):
            return compile_network(
                model, backend, config.precision, weights=config.weights, weights_sha256=spec.sha256,
                size=(config.input_width, config.input_height), batch=config.batch_size, fused=config.fuse,
                channels_last=config.channels_last,
                confidence=config.confidence, nms_iou=config.nms_iou, check=detector._canvases([_check_frames()]),
                real=real if sample is not None else None, calibration=calibration,
                threads=threads or torch.get_num_threads(), cache=Path(cache) if cache else None, tolerance=tolerance)

        detector.network = first_that_loads(choose_backend(config.backend), compile_on, config.precision, notify)
        return detector

    def _canvases(self, videos: Sequence[np.ndarray]) -> np.ndarray:
        """The letterboxed canvases of several frame arrays (each of one size)."""
        canvases = [self.preprocess(frames)[0] for frames in videos if len(frames)]
        if not canvases:
            return np.zeros((0, self.config.input_height, self.config.input_width, 3), np.uint8)
        return np.concatenate(canvases)

    def lineage(self) -> dict:
        """What made this detector's output: settings, architecture, the weights' sha256, and the backend
        that runs the network (its version and precision; for int8 the calibration)."""
        network = self.network
        return {**self.config.lineage(), "architecture": "yolox-tiny", "weights_sha256": self.weights_sha256,
                "backend": network.backend, "backend_version": network.version, "precision": network.precision,
                "calibration": network.calibration.model_dump(mode="json") if network.calibration else None}

    def preprocess(self, images: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        """Crop, resize and pad frames as zamba does (:func:`letterbox`).

        Args:
            images: (n, H, W, 3) uint8 RGB frames of one size.

        Returns:
            (n, input_height, input_width, 3) uint8 canvas, the resize ratio, and the (height,
            width) of the frames after cropping.
        """
        config = self.config
        return letterbox(images, (config.input_width, config.input_height), config.crop_bottom)

    def detect(self, images: np.ndarray) -> FrameDetections:
        """Score frames (batched by ``config.batch_size``).

        Args:
            images: (n, H, W, 3) uint8 RGB frames of one size (n may be 0).

        Returns:
            Per frame its boxes (x1, y1, x2, y2 as fractions of the frame after the bottom crop, and
            the score; best first) and their summary arrays.
        """
        config = self.config
        boxes: list[np.ndarray] = []
        for start in range(0, len(images), config.batch_size):
            canvas, ratio, (height, width) = self.preprocess(images[start: start + config.batch_size])
            scale = np.asarray([width, height, width, height], np.float32) * np.float32(ratio)
            for rows in self.network.forward(canvas):
                found = rows_to_boxes(rows, config.confidence, config.nms_iou)
                found[:, :4] = np.clip(found[:, :4] / scale, 0.0, 1.0)
                boxes.append(found)
        return FrameDetections.from_boxes(boxes)


class DetectorModel:
    """A :class:`Detector` as a per-frame model of the featurize runner
    (:class:`jungle.features.featurize.runner.FrameModel`): it writes the frame-level set ``set_name``
    with the arrays of :func:`detection_array_specs`.

    It wants frames at their native size (``native_frames``; ``frame_size`` None), so that it can
    keep their aspect ratio and crop the timestamp bar as zamba does; all frames of one
    ``encode`` call must have one size.
    """

    native_frames = True
    frame_size = None

    def __init__(self, detector: Detector, name: str | None = None):
        self.detector = detector
        self._name = name or "".join(c if c.isalnum() else "_" for c in detector.config.weights)

    @property
    def input_size(self) -> int:
        return max(self.detector.config.input_width, self.detector.config.input_height)

    @property
    def set_name(self) -> str:
        return self._name

    def output_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {name: (spec.trailing, spec.dtype) for name, spec in detection_array_specs().items()}

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return self.detector.detect(images).arrays()

    def describe(self) -> dict:
        return self.detector.lineage()

    def registry_meta(self) -> dict:
        config = self.detector.config
        return {"encoder": f"yolox-tiny:{config.weights}", "weights_sha256": self.detector.weights_sha256,
                "input_size": self.input_size, "dims": len(FrameDetections.ARRAYS)}


_LOADED: dict[tuple, Detector] = {}


def load_detector(config: DetectorConfig | None = None, *, sample: Sample | None = None) -> Detector:
    """:meth:`Detector.load` from the default weights cache, kept per process (worker processes load
    the model once): the detector for ``config`` on its backend (the fastest that passes its check
    when ``config.backend`` is None).

    Args:
        config: settings (default :class:`DetectorConfig`).
        sample: real frames of the user's own videos, drawn only when needed (int8 needs them: its
            calibration is part of what is kept; a backend's first check uses them too).
    """
    config = config or DetectorConfig()
    drawn = sample() if sample is not None and config.precision == "int8" else None
    key = (config, drawn[0] if drawn is not None else None)
    if key not in _LOADED:
        if len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = Detector.load(config, sample=(lambda: drawn) if drawn is not None else sample)
    return _LOADED[key]


def letterbox(images: np.ndarray, size: tuple[int, int], crop_bottom: int = 50,
              ) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Crop, resize and pad frames as zamba does: the bottom ``crop_bottom`` pixels cut off (at most half
    the height), resized keeping the aspect ratio to fit ``size`` (width, height), at the top left of
    a black canvas.

    Resizing is OpenCV's bilinear, as YOLOX's own preprocessing (which MegadetectorLite was trained
    with), and area averaging when shrinking below half (large stills), where bilinear would alias;
    zamba resizes with Pillow's bicubic, several times slower (README "Detector" says how the boxes
    compare).

    Args:
        images: (n, H, W, 3) uint8 RGB frames of one size.
        size: the canvas (width, height).
        crop_bottom: pixels cut off the bottom first.

    Returns:
        (n, height, width, 3) uint8 canvases, the resize ratio, and the (height, width) of the frames
        after cropping.
    """
    import cv2

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"frames must be (n, height, width, 3) RGB, got shape {images.shape}")
    crop = min(crop_bottom, images.shape[1] // 2)
    frames = images[:, : images.shape[1] - crop]
    height, width = frames.shape[1:3]
    out_w, out_h = size
    ratio = min(out_w / width, out_h / height)
    new_w, new_h = out_w, out_h  # the size Pillow's ImageOps.contain picks (same rounding)
    if width / height > out_w / out_h:
        new_h = round(height / width * out_w)
    elif width / height < out_w / out_h:
        new_w = round(width / height * out_h)
    canvas = np.zeros((len(frames), out_h, out_w, 3), np.uint8)
    if (new_w, new_h) == (width, height):
        canvas[:, :new_h, :new_w] = frames
        return canvas, ratio, (height, width)
    interpolation = cv2.INTER_AREA if new_w < width / 2 else cv2.INTER_LINEAR
    for i, frame in enumerate(frames):
        canvas[i, :new_h, :new_w] = cv2.resize(np.ascontiguousarray(frame), (new_w, new_h), interpolation=interpolation)
    return canvas, ratio, (height, width)


def _check_frames() -> np.ndarray:
    """The fixed synthetic frames (16:9, 720x404) every backend check of the detector starts with."""
    return verification_images(720)[:, :404]


@dataclass
class VideoDetections:
    """Detections of the frames of one video sampled at a fixed rate.

    Attributes:
        detections: per-frame :class:`FrameDetections`.
        frame_index: (n,) display indices of the scored frames.
        timestamps: (n,) seconds.
        n_frames: frames in the video.
    """

    detections: FrameDetections
    frame_index: np.ndarray
    timestamps: np.ndarray
    n_frames: int


def detect_video(path: str | os.PathLike, detector: Detector, fps: float = 4.0, *,
                 index: VideoIndex | None = None, chunk: int = 64) -> VideoDetections:
    """Score a video's frames at ``fps`` frames per second (zamba's configs: 4) over its whole length.

    Frames are decoded with :func:`jungle.features.video.decode.read_frames` ``chunk`` at a time, so
    memory stays bounded on long videos.

    Raises:
        VideoReadError: the file cannot be read.
    """
    index = index or index_video(path)
    wanted = Fps(fps=fps, seconds=max(index.duration, 1.0 / fps)).choose(index)
    parts, found, seconds = [], [], []
    for start in range(0, len(wanted), chunk):
        frames = read_frames(path, wanted[start: start + chunk], index=index)
        parts.append(detector.detect(frames.images))
        found.append(frames.indices)
        seconds.append(frames.timestamps)
    return VideoDetections(
        detections=FrameDetections.concat(parts),
        frame_index=np.concatenate(found) if found else np.zeros(0, np.int64),
        timestamps=np.concatenate(seconds) if seconds else np.zeros(0, np.float64),
        n_frames=index.n_frames,
    )


def select_frames(scores: np.ndarray, n: int, valid: np.ndarray | None = None,
                  threshold: float = 0.25) -> np.ndarray:
    """Positions of the ``n`` best-scoring frames, in time order.

    Frames scoring >= ``threshold`` are taken best first (ties: the earlier frame). When fewer
    than ``n`` frames score that high, all of them are kept and the remaining slots go to frames
    evenly spread over the others (with no detection at all: plain uniform sampling).

    Args:
        scores: (F,) per-frame scores in time order.
        n: frames wanted.
        valid: (F,) bool, False for slots without a frame (never chosen); default all valid.
        threshold: score that counts as a detection.

    Returns:
        Sorted positions into ``scores``: ``min(n, valid frames)`` of them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.flatnonzero(np.ones(len(scores), bool) if valid is None else np.asarray(valid, bool))
    detected = candidates[scores[candidates] >= threshold]
    ranked = detected[np.lexsort((detected, -scores[detected]))]
    chosen = ranked[:n]
    if len(chosen) < n:
        rest = np.setdiff1d(candidates, chosen)
        chosen = np.concatenate([chosen, rest[spread_indices(len(rest), n - len(chosen))]])
    return np.sort(chosen).astype(np.int64)


def _longest_run(flags: np.ndarray) -> np.ndarray:
    """Longest run of consecutive True along the last axis, per row."""
    counts = np.cumsum(flags, axis=-1)
    resets = np.maximum.accumulate(np.where(flags, 0, counts), axis=-1)
    return (counts - resets).max(axis=-1, initial=0)


def aggregate_detections(
    arrays: Mapping[str, np.ndarray],
    valid: np.ndarray,
    timestamps: np.ndarray,
    *,
    threshold: float = 0.25,
    levels: Sequence[float] = DETECTION_LEVELS,
    prefix: str = "det_",
) -> dict[str, np.ndarray]:
    """Video-level features from per-frame detector arrays; invalid slots never count.

    Args:
        arrays: ``score``, ``n_boxes`` and ``box_area``, each (V, F) (or (F,) for one video).
        valid: (V, F) bool.
        timestamps: (V, F) seconds.
        threshold: score that counts as a detected frame (runs, first/last time, box areas).
        levels: scores whose frame counts and fractions are reported.
        prefix: column name prefix.

    Returns:
        Column name -> (V,) float32: ``n_frames`` (valid), ``max``, ``mean`` (score), ``n_over_L``
        and ``frac_over_L`` per level (``L`` = level x 100), ``longest_run`` (consecutive detected
        frames) and ``longest_run_frac``, ``first_s``, ``last_s``, ``span_s`` (NaN when nothing is
        detected), ``area_mean``, ``area_max`` (best box over detected frames, 0 when none),
        ``boxes_mean``, ``boxes_max``. Score columns are NaN for a video with no valid frame.
    """
    valid = np.atleast_2d(np.asarray(valid, bool))
    score = np.where(valid, np.atleast_2d(np.asarray(arrays["score"], np.float64)), np.nan)
    boxes = np.where(valid, np.atleast_2d(np.asarray(arrays["n_boxes"], np.float64)), np.nan)
    times = np.atleast_2d(np.asarray(timestamps, np.float64))
    detected = valid & (np.nan_to_num(score) >= threshold)
    n_valid = valid.sum(axis=1)
    n_detected = detected.sum(axis=1)
    area = np.where(detected, np.atleast_2d(np.asarray(arrays["box_area"], np.float64)), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as documented
        columns = {
            "n_frames": n_valid,
            "max": np.nanmax(score, axis=1),
            "mean": np.nanmean(score, axis=1),
        }
        for level in levels:
            over = (valid & (np.nan_to_num(score) >= level)).sum(axis=1)
            columns[f"n_over_{round(level * 100):02d}"] = over
            share = np.where(n_valid > 0, over / np.maximum(n_valid, 1), np.nan)
            columns[f"frac_over_{round(level * 100):02d}"] = share
        run = _longest_run(detected)
        columns["longest_run"] = run
        columns["longest_run_frac"] = np.where(n_valid > 0, run / np.maximum(n_valid, 1), np.nan)
        first = np.nanmin(np.where(detected, times, np.nan), axis=1)
        last = np.nanmax(np.where(detected, times, np.nan), axis=1)
        columns.update(first_s=first, last_s=last, span_s=last - first)
        columns["area_mean"] = np.where(n_detected > 0, np.nanmean(area, axis=1), 0.0)
        columns["area_max"] = np.where(n_detected > 0, np.nanmax(area, axis=1), 0.0)
        columns["boxes_mean"] = np.nanmean(boxes, axis=1)
        columns["boxes_max"] = np.nanmax(boxes, axis=1)
    return {prefix + name: np.asarray(values, np.float32) for name, values in columns.items()}


def _parse_input_size(text: str) -> dict[str, int]:
    """``640x384`` (or ``640``) -> input_width/input_height, multiples of 32."""
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height or width))
    except ValueError:
        size = None
    if size is None or min(size) < 32 or size[0] % 32 or size[1] % 32:
        raise InputError(f"input=WxH needs two multiples of 32 such as 640x384, not {text!r}")
    return {"input_width": size[0], "input_height": size[1]}


@register_sampling
class DetectorFrames(Sampling):
    """``detector:N``: the N frames where MegadetectorLite is surest of an animal, in time order.

    The video is scored at ``fps`` frames per second over its whole length (the detector is loaded
    once per process), then :func:`select_frames` picks N of those frames, falling back to evenly
    spread frames when fewer than N detect anything. Options: ``fps=F`` (default 4),
    ``input=WxH`` (default :data:`DEFAULT_INPUT`; zamba: 640x640), ``crop=PIXELS`` (default 50; 0
    keeps the whole frame), ``backend=NAME`` (default: the fastest that passes its check), e.g.
    ``detector:16,input=640x640,crop=0,backend=torch``. The detector that chooses the frames (its
    backend too) is part of the sampling's :meth:`lineage`.
    """

    kind: Literal["detector"] = "detector"
    n: int = Field(ge=1)
    fps: float = Field(default=4.0, gt=0)
    detector: DetectorConfig = DetectorConfig()

    needs_pixels: ClassVar[bool] = True

    @classmethod
    def from_arg(cls, arg, options):
        n = positive_int(arg, "detector:N frame count")
        settings, fps = {}, 4.0
        for key, value in options.items():
            if key == "fps":
                fps = float(value)
            elif key == "input":
                settings.update(_parse_input_size(value))
            elif key == "crop":
                settings["crop_bottom"] = int(value)
            elif key == "backend":
                settings["backend"] = value
            else:
                raise ValueError(f"unknown option {key!r}: detector takes fps=, input=WxH, crop=, backend=")
        return cls(n=n, fps=fps, detector=DetectorConfig(**settings))

    def lineage(self) -> dict:
        """The settings, with the detector's own lineage (:meth:`Detector.lineage`: which backend runs
        it) in place of its configuration; this loads the detector (once per process)."""
        return {**self.model_dump(mode="json"), "detector": load_detector(self.detector).lineage()}

    @property
    def slots(self) -> int:
        return self.n

    def require_weights(self, weights_dir: str | os.PathLike | None = None) -> str:
        """Check the detector's weights before any work starts (workers would otherwise fail video
        by video); return their sha256.

        Raises:
            WeightsError: missing or damaged, with how to fetch them.
        """
        weights_path(self.detector.weights, weights_dir)
        return get_spec(self.detector.weights).sha256

    def choose(self, index):
        found = detect_video(index.path, load_detector(self.detector), self.fps, index=index)
        return found.frame_index[select_frames(found.detections.score, self.n, threshold=self.detector.confidence)]

    def spec(self):
        parts = [f"detector:{self.n}"]
        if self.fps != 4.0:
            parts.append(f"fps={self.fps:g}")
        if (self.detector.input_width, self.detector.input_height) != DEFAULT_INPUT:
            parts.append(f"input={self.detector.input_width}x{self.detector.input_height}")
        if self.detector.crop_bottom != DetectorConfig().crop_bottom:
            parts.append(f"crop={self.detector.crop_bottom}")
        if self.detector.backend is not None:
            parts.append(f"backend={self.detector.backend}")
        return ",".join(parts)
