"""The boxes and crops of a featurize run: what happens to a decoded video in the main process
before its images go through the encoders.

For every video the decode worker returns, from one decoding (:mod:`.decode_pool`), its sampled frames
at the encoders' size and its ``candidates`` frames (evenly spread over the clip) with their motion
boxes, the ``look`` frames among them (the most moving first, the rest evenly spread) at a working
resolution. :class:`CropStage` then, in the main process:

1. runs the detector (MegadetectorLite) over the ``look`` frames, when it is on;
2. merges each candidate frame's detector and motion boxes (:func:`jungle.features.video.boxes.merge_boxes`):
   the boxes the run stores in the frame-level set ``boxes`` (and the ``boxes`` SQL table);
3. chooses up to ``n`` crops among the looked-at frames' boxes
   (:func:`jungle.features.video.crops.choose_crops`) and cuts them from the working frames at the
   encoders' input size; they go through the encoders in the same batches as the whole frames, into
   one crop feature set per encoder (``crops_<encoder>``). A clip with no box there gets ``n`` of its
   sampled whole frames instead (source ``frame``; their embeddings are the whole-frame set's).

:class:`BoxesConfig` says how boxes are found; with ``detector="auto"`` (the default)
:func:`resolve_boxes` turns the detector on when its weights are in the cache and off (motion boxes
only, with a note saying how to fetch them) when they are not: featurize never downloads weights by
itself. What was resolved is what the sets' lineage records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from pydantic import Field

from ...config import JungleConfig
from ..models.detector import Detector, DetectorConfig, load_detector
from ..models.weights import WeightsError, default_weights_dir, get_spec, weights_path
from ..video.boxes import FrameBoxes, merge_boxes
from ..video.crops import CropChoice, CropConfig, choose_crops, extract_crops
from ..video.motion import MotionConfig
from .decode_pool import DecodedVideo, Working
from .frame_model import ModelSpec

__all__ = ["BoxesConfig", "resolve_boxes", "PreparedVideo", "CropStage", "BOXES_SET",
           "crops_set_name", "boxes_array_specs", "crop_array_specs"]

#: The frame-level set of a run's boxes.
BOXES_SET = "boxes"


def crops_set_name(encoder_set: str) -> str:
    """The crop feature set of an encoder's set: ``crops_<name>``."""
    return f"crops_{encoder_set}"


class BoxesConfig(JungleConfig):
    """How a featurize run finds boxes (part of the ``boxes`` and crop sets' lineage).

    Attributes:
        detector: MegadetectorLite settings; ``"auto"``: on when its weights are cached
            (:func:`resolve_boxes`); None: off (motion boxes only).
        candidates: frames per clip, evenly spread over it, that motion looks at (the ``boxes`` set's
            frames; 60 is 4 per second of a 15 s clip).
        look: of those, the frames per clip the detector looks at and crops are cut from: three
            quarters with the most moving area, the rest evenly spread (None: all of them).
        motion: motion-box settings (None: no motion boxes).
        k: boxes stored per frame.
        max_width: widest working frame (pixels): wider videos are scaled down for boxes and crops.
    """

    detector: DetectorConfig | Literal["auto"] | None = "auto"
    candidates: int = Field(60, ge=1, le=1000)
    look: int | None = Field(8, ge=1)
    motion: MotionConfig | None = MotionConfig()
    k: int = Field(3, ge=1, le=16)
    max_width: int = Field(1280, ge=64)

    @property
    def working(self) -> Working:
        """What the decode workers prepare for these boxes."""
        return Working(self.max_width, self.motion, self.candidates, self.look)


def resolve_boxes(config: BoxesConfig, weights_dir=None) -> tuple[BoxesConfig, str | None]:
    """``config`` with ``detector="auto"`` decided: on when the weights are cached (and intact), else
    off. Returns the config and a note for the user when the detector was turned off."""
    if config.detector != "auto":
        return config, None
    from pathlib import Path

    settings = DetectorConfig()
    try:
        weights_path(settings.weights, weights_dir)
    except WeightsError:
        cached = (Path(weights_dir) if weights_dir else default_weights_dir()) / get_spec(settings.weights).filename
        return config.model_copy(update={"detector": None}), (
            f"the {settings.weights} weights {'are damaged' if cached.exists() else 'are not cached'}: boxes and "
            "crops come from motion only. "
            f"Fetch them with `jungle weights fetch {settings.weights}` and featurize again to add the detector.")
    return config.model_copy(update={"detector": settings}), None


@dataclass
class PreparedVideo:
    """What :meth:`CropStage.prepare` made of one video.

    Attributes:
        boxes: the boxes of each candidate frame.
        choice: the crops chosen (None: crops are off); its slots are candidate positions, or the
            sampled frames' slots when the crops are whole frames (``choice.whole_frames``).
        crops: (c, S, S, 3) uint8 the cut crops (none when the clip's crops are whole frames).
        rects: (n, 4) the rectangles cut, x, y, w, h fractions (NaN in empty slots).
    """

    boxes: FrameBoxes
    choice: CropChoice | None = None
    crops: np.ndarray | None = None
    rects: np.ndarray | None = None


def boxes_array_specs(k: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """The ``boxes`` set's per-frame arrays (beside valid, timestamps and frame_index)."""
    return {"box": ((k, 4), "float32"), "box_score": ((k,), "float32"), "box_source": ((k,), "int8"),
            "motion_area": ((), "float32"), "detected": ((), "bool")}


def crop_array_specs() -> dict[str, tuple[tuple[int, ...], str]]:
    """The per-crop arrays of a crop set beside the encoder's outputs: the box, the rectangle cut,
    the box's score and source."""
    return {"box": ((4,), "float32"), "crop": ((4,), "float32"), "box_score": ((), "float32"),
            "box_source": ((), "int8")}


#: Fill values of those arrays where a slot is empty.
FILLS = {"box": float("nan"), "crop": float("nan"), "box_score": 0.0, "box_source": 0, "motion_area": 0.0,
         "detected": False}


@dataclass
class CropStage:
    """The main-process step between decoding and the encoders (see the module docstring).

    Attributes:
        boxes: resolved box settings (``detector`` is a config or None, never ``"auto"``).
        crops: crop settings (None: boxes only).
        crop_size: side of the crops in pixels (the encoders' input).
        detector: the loaded detector (``detect(images) -> FrameDetections``) when ``boxes.detector`` is set.
        seconds: time spent per step (``detector``, ``crops``).
    """

    boxes: BoxesConfig
    crops: CropConfig | None
    crop_size: int
    detector: Detector | None = None
    seconds: dict = field(default_factory=lambda: {"detector": 0.0, "crops": 0.0})
    frames_detected: int = 0

    @classmethod
    def load(cls, boxes: BoxesConfig, crops: CropConfig | None, crop_size: int) -> "CropStage":
        """The stage with its detector loaded (``boxes`` must be resolved, see :func:`resolve_boxes`).

        Raises:
            WeightsError: the detector's weights are missing or damaged.
        """
        if boxes.detector == "auto":
            raise ValueError("resolve the detector first (resolve_boxes)")
        detector = None
        if boxes.detector is not None:
            weights_path(boxes.detector.weights)  # checked now: a loaded detector is kept per process
            detector = load_detector(boxes.detector)
        return cls(boxes, crops, crop_size, detector)

    # ------------------------------------------------------------------ lineage
    def describe(self) -> dict:
        """How the boxes are found: the detector's lineage (None: off), motion settings, frames, k, working size."""
        return {"detector": self.detector.lineage() if self.detector is not None else None,
                "candidates": self.boxes.candidates, "look": self.boxes.look, "look_rule": "3/4 most moving",
                "motion": self.boxes.motion.lineage() if self.boxes.motion is not None else None,
                "k": self.boxes.k, "max_width": self.boxes.max_width}

    def boxes_spec(self) -> ModelSpec:
        """The ``boxes`` frame-level set of this run."""
        detector = self.detector
        source = f"yolox-tiny:{self.boxes.detector.weights}" if detector is not None else "motion"
        registry = {"encoder": source, "weights_sha256": detector.weights_sha256 if detector is not None else None,
                    "dims": self.boxes.k}
        return ModelSpec(BOXES_SET, boxes_array_specs(self.boxes.k), {"kind": "boxes", **self.describe()},
                         registry, None, native_frames=True, view="boxes", slots=self.boxes.candidates)

    def crop_spec(self, encoder: ModelSpec) -> ModelSpec:
        """The crop set of an encoder (its outputs on the crops, and the crops' geometry)."""
        description = {**encoder.description, "resize": "crop around a box of the working frame, to the input size",
                       "crops": self.crops.lineage(), "boxes": self.describe()}
        return ModelSpec(crops_set_name(encoder.set_name), {**encoder.outputs, **crop_array_specs()}, description,
                         encoder.registry, encoder.frame_size, view="crops", slots=self.crops.n)

    # ------------------------------------------------------------------ the step
    def prepare(self, decoded: DecodedVideo) -> PreparedVideo:
        """Boxes of a decoded video's candidate frames and, when crops are on, its crops."""
        candidates = decoded.candidates
        m, motion = len(candidates), candidates.motion
        detections, looked = None, np.zeros(m, bool)
        looked[candidates.look] = True
        if self.detector is not None and len(candidates.look):
            started = time.perf_counter()
            detections = list(self.detector.detect(candidates.images).boxes)
            self.frames_detected += len(candidates.look)
            self.seconds["detector"] += time.perf_counter() - started
        boxes = merge_boxes(m, self.boxes.k, detections, looked if detections is not None else None,
                            motion.boxes if motion is not None else None, motion.area if motion is not None else None)
        prepared = PreparedVideo(boxes)
        if self.crops is None:
            return prepared
        started = time.perf_counter()
        choice = choose_crops(boxes, looked, self.crops.n)   # only the looked-at frames are here in pixels
        if choice.whole_frames:  # no box: the sampled whole frames, whose embeddings the frames view has
            prepared.choice = choose_crops(FrameBoxes.empty(len(decoded.valid), 1), decoded.valid, self.crops.n)
            prepared.rects = np.where(prepared.choice.slot[:, None] >= 0, prepared.choice.box, np.nan)
        else:
            prepared.choice = choice
            position = np.full(m, -1, np.int32)
            position[candidates.look] = np.arange(len(candidates.look))
            local = replace(choice, slot=np.where(choice.slot >= 0, position[choice.slot], -1))
            prepared.crops, prepared.rects = extract_crops(candidates.images, local, self.crop_size, self.crops)
        self.seconds["crops"] += time.perf_counter() - started
        return prepared
