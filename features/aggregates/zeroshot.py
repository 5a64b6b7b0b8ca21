"""Zero-shot evidence (``zeroshot_<src>``): what a clip shows before anyone has labelled anything.

Per clip, from sets a featurize run already wrote (no labels, no training):

- **where something is**: the detector's boxes and the moving regions of the ``boxes`` set
  (:mod:`jungle.features.featurize.crops`), or a detector pass's set (``megadetector_lite``) when
  there is no ``boxes`` set;
- **what it looks like**: the encoder's own ImageNet head
  (:class:`~jungle.features.models.imagenet.ImageNetHead`) applied to the stored embeddings of the
  clip's crops (``crops_<src>``: the images around those boxes), or of its whole frames when the run
  made no crops, summed per taxonomy class through a class map
  (:class:`~jungle.features.models.imagenet.ClassMap`).

Columns (float32, one row per clip):

==================  ================================================================================
``n_images``        images the ImageNet head scored (crops, or whole frames)
``crop_share``      share of them that are crops around a box (0: whole frames)
``det_max``         best detector score over the frames it looked at (0: nothing found; NaN: no detector)
``det_frac``        share of the looked-at frames with a detector box
``motion_max``      largest share of a frame that moved (NaN: no motion analysis)
``motion_frac``     share of the analysed frames where something moved
``animal_max``      the most any image puts on ImageNet's animal classes (0-397)
``mapped_max``      the most any image puts on classes the map covers
``<class>``         per taxonomy class (slug), its ImageNet mass pooled over the images: a mean
                    weighted by each image's mapped mass, so the images that look like a mapped
                    animal count most (0 for classes the map does not cover)
``imagenet_top``    the ImageNet class index with the most pooled probability, and
``imagenet_top_p``  that probability (for explanations: "ImageNet says chimpanzee, 0.62")
==================  ================================================================================

The zero-shot model (:mod:`jungle.meta.zeroshot`) turns these columns into probabilities.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..models.imagenet import ANIMAL_INDICES, ClassMap, ImageNetHead
from ..video.boxes import SOURCES
from .frame_stats import class_slug

__all__ = ["EVIDENCE_COLUMNS", "evidence_columns", "image_evidence", "boxes_evidence", "detector_evidence",
           "no_box_evidence", "ZeroShotSetup", "zero_shot_setup", "iter_evidence"]

#: The columns before the per-class ones (and ``imagenet_top``/``_p`` after them).
EVIDENCE_COLUMNS = ("n_images", "crop_share", "det_max", "det_frac", "motion_max", "motion_frac", "animal_max",
                    "mapped_max")


def evidence_columns(classes) -> list[str]:
    """Every column of a zero-shot evidence set for the taxonomy ``classes``, in order."""
    return [*EVIDENCE_COLUMNS, *(class_slug(c) for c in classes), "imagenet_top", "imagenet_top_p"]


def _quiet_nan(function, *args, **kwargs):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def image_evidence(head: ImageNetHead, class_map: ClassMap, embeddings: np.ndarray, valid: np.ndarray,
                   is_crop: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The ImageNet columns of a block of clips.

    Args:
        head: the encoder's ImageNet head.
        class_map: ImageNet classes -> taxonomy classes.
        embeddings: (B, n, dims) stored embeddings of each clip's images.
        valid: (B, n) bool, the slots holding an image.
        is_crop: (B, n) bool, the images that are crops around a box (None: none are).

    Returns:
        ``n_images``, ``crop_share``, ``animal_max``, ``mapped_max``, one column per class of the
        map (slug), ``imagenet_top`` and ``imagenet_top_p``, each (B,).
    """
    valid = np.asarray(valid, bool)
    B, n = valid.shape
    P = np.zeros((B, n, head.weight.shape[0]), np.float32)
    if valid.any():
        P[valid] = head.probabilities(np.asarray(embeddings)[valid])
    animal = P[..., ANIMAL_INDICES.start:ANIMAL_INDICES.stop].sum(axis=-1)          # (B, n)
    mapped = class_map.masses(P)                                                      # (B, n, C)
    weight = mapped.sum(axis=-1) * valid                                              # (B, n)
    total = weight.sum(axis=1, keepdims=True)
    even = valid / np.maximum(valid.sum(axis=1, keepdims=True), 1)
    share = np.where(total > 0, weight / np.where(total > 0, total, 1.0), even)
    pooled_classes = (mapped * share[..., None]).sum(axis=1)                          # (B, C)
    pooled = (P * share[..., None]).sum(axis=1)                                       # (B, 1000)
    count = valid.sum(axis=1)
    crops = np.zeros_like(valid) if is_crop is None else np.asarray(is_crop, bool) & valid
    columns = {
        "n_images": count.astype(np.float32),
        "crop_share": np.where(count > 0, crops.sum(axis=1) / np.maximum(count, 1), 0.0),
        "animal_max": np.where(valid, animal, 0.0).max(axis=1) if n else np.zeros(B),
        "mapped_max": weight.max(axis=1) if n else np.zeros(B),
    }
    for j, cls in enumerate(class_map.classes):
        columns[class_slug(cls)] = pooled_classes[:, j]
    columns["imagenet_top"] = np.where(count > 0, pooled.argmax(axis=1), -1).astype(np.float32)
    columns["imagenet_top_p"] = pooled.max(axis=1)
    return {k: np.asarray(v, np.float32) for k, v in columns.items()}


def boxes_evidence(box_score: np.ndarray, box_source: np.ndarray, motion_area: np.ndarray, detected: np.ndarray,
                   valid: np.ndarray, detector: bool, motion: bool) -> dict[str, np.ndarray]:
    """The box columns from a featurize run's ``boxes`` set.

    Args:
        box_score, box_source: (B, F, k) per candidate frame, best box first.
        motion_area: (B, F) moving share of each frame.
        detected: (B, F) bool, the frames the detector looked at.
        valid: (B, F) bool.
        detector, motion: whether the run had the detector and motion analysis on (the set's lineage).

    Returns:
        ``det_max``, ``det_frac``, ``motion_max``, ``motion_frac``, each (B,).
    """
    valid = np.asarray(valid, bool)
    looked = np.asarray(detected, bool) & valid
    hit = (np.asarray(box_source)[..., 0] == SOURCES["detector"]) & looked
    score = np.where(hit, np.asarray(box_score)[..., 0], 0.0)
    area = np.where(valid, np.asarray(motion_area, np.float64), np.nan)
    nan = np.full(len(valid), np.nan)
    return {
        "det_max": score.max(axis=1) if detector else nan,
        "det_frac": np.where(looked.any(axis=1), hit.sum(axis=1) / np.maximum(looked.sum(axis=1), 1), 0.0)
        if detector else nan,
        "motion_max": np.nan_to_num(_quiet_nan(np.nanmax, area, axis=1)) if motion else nan,
        "motion_frac": np.nan_to_num(_quiet_nan(np.nanmean, area > 0, axis=1)) if motion else nan,
    }


def detector_evidence(score: np.ndarray, valid: np.ndarray, threshold: float = 0.25) -> dict[str, np.ndarray]:
    """The box columns from a detector pass's set (``score``: (B, F) best box per frame); no motion."""
    valid = np.asarray(valid, bool)
    score = np.where(valid, np.nan_to_num(np.asarray(score, np.float64)), 0.0)
    n = valid.sum(axis=1)
    nan = np.full(len(valid), np.nan)
    return {"det_max": score.max(axis=1) if valid.shape[1] else np.zeros(len(valid)),
            "det_frac": np.where(n > 0, ((score >= threshold) & valid).sum(axis=1) / np.maximum(n, 1), 0.0),
            "motion_max": nan, "motion_frac": nan}


def no_box_evidence(count: int) -> dict[str, np.ndarray]:
    """The box columns when neither boxes nor a detector pass exist (all NaN)."""
    nan = np.full(count, np.nan)
    return {"det_max": nan, "det_frac": nan, "motion_max": nan, "motion_frac": nan}


# --------------------------------------------------------------------------- reading a workspace's sets
def _aligned_blocks(workspace, source, video_ids: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """``names`` (and ``valid``) of ``source`` for ``video_ids``, in that order (rows missing there: invalid)."""
    from .inputs import iter_frame_blocks

    first, *rest = names
    out, where = {}, {v: i for i, v in enumerate(video_ids.tolist())}
    for block in iter_frame_blocks(workspace, [source], first, video_ids=video_ids.tolist(),
                                   videos_per_block=max(len(video_ids), 1), prefetch=0, extras=rest):
        index = np.array([where[v] for v in block.video_ids.tolist()], np.int64)
        for name, values in (("valid", block.valid), (first, block.values), *block.extras.items()):
            if name not in out:
                out[name] = np.zeros((len(video_ids),) + values.shape[1:], values.dtype)
            out[name][index] = values
    if "valid" not in out:   # none of these videos is in the source
        out = {"valid": np.zeros((len(video_ids), 1), bool)}
    return out


@dataclass(frozen=True)
class ZeroShotSetup:
    """What a zero-shot evidence set is made with (its lineage): the head, the map, the kinds of images
    and boxes.

    Attributes:
        head: the encoder's ImageNet head.
        class_map: ImageNet classes -> the taxonomy (the workspace's classes, else the Pri-matrix 24).
        images: ``crops`` (around boxes) or ``frames`` (whole frames).
        detector: the detector that found boxes (its weights name and digest), or None.
        motion: whether motion boxes were looked for.
    """

    head: ImageNetHead
    class_map: ClassMap
    images: str
    detector: dict | None
    motion: bool

    def lineage(self) -> dict:
        """The set's parameters: encoder and head weights, map (digest, classes, ImageNet classes per
        class, covered classes), images, detector, motion."""
        indicator = self.class_map.indicator()
        return {"encoders": [self.head.encoder], "head_weights_sha256": self.head.weights_sha256,
                "class_map": {**self.class_map.lineage(), "covered": list(self.class_map.covered)},
                "imagenet_classes": [int(k) for k in indicator.sum(axis=0)], "images": self.images,
                "detector": self.detector, "motion": self.motion}


def zero_shot_setup(workspace, embeddings, boxes, has_crops: bool, class_map: str | None = None) -> ZeroShotSetup:
    """The setup of the evidence of the embedding set ``embeddings`` (a :class:`FeatureSet`), with the
    ``boxes`` set or detector pass set ``boxes`` (None: neither).

    Raises:
        ModelError: the encoder has no ImageNet head, or not the weights the set was made with.
        ClassMapError: the class map is unusable.
    """
    from ...classes import PRIMATRIX_CLASSES
    from ...store.db import connect
    from ...store.labels import read_classes
    from ..models.imagenet import load_imagenet_head, read_class_map

    model = (embeddings.config or {}).get("model", {})
    head = load_imagenet_head(model.get("encoder") or embeddings.name, embeddings.weights_sha256,
                              weights=model.get("weights"))
    with connect(workspace, read_only=True) as con:
        classes = read_classes(con, required=False) or PRIMATRIX_CLASSES
    detector, motion = None, False
    if boxes is not None:
        described = (boxes.config or {}).get("model", {})
        if "motion" in described:          # a featurize run's boxes set
            found, motion = described.get("detector"), described.get("motion") is not None
        else:                              # a detector pass's set
            found = described
        if found:
            detector = {"weights": found.get("weights"), "weights_sha256": found.get("weights_sha256")}
    return ZeroShotSetup(head, read_class_map(class_map, classes), "crops" if has_crops else "frames", detector,
                         motion)


def iter_evidence(workspace, images, boxes, setup: ZeroShotSetup, boxes_kind: str | None,
                  videos_per_block: int = 256):
    """Blocks of ``(video_ids, columns)`` of the evidence of every clip done in ``images``.

    Args:
        workspace: the workspace.
        images: the frame-level rows whose embeddings the head scores (``crops_<src>`` or ``<src>``).
        boxes: the rows of the ``boxes`` set or of a detector pass's set (None: neither).
        setup: the head, the map, and what the run had on.
        boxes_kind: ``boxes`` or ``detector`` (None without ``boxes``).
        videos_per_block: clips per block.
    """
    from .inputs import iter_frame_blocks

    is_crops = setup.images == "crops"
    detector, motion = setup.detector is not None, setup.motion
    extras = ("box_source",) if is_crops else ()
    for block in iter_frame_blocks(workspace, [images], "embedding", videos_per_block=videos_per_block,
                                   extras=extras):
        is_crop = None
        if is_crops:
            is_crop = np.isin(block.extras["box_source"], (SOURCES["detector"], SOURCES["motion"]))
        columns = image_evidence(setup.head, setup.class_map, block.values, block.valid, is_crop)
        if boxes is None:
            columns.update(no_box_evidence(len(block)))
        elif boxes_kind == "boxes":
            found = _aligned_blocks(workspace, boxes, block.video_ids,
                                    ("box_score", "box_source", "motion_area", "detected"))
            if "box_score" in found:
                columns.update(boxes_evidence(found["box_score"], found["box_source"], found["motion_area"],
                                              found["detected"], found["valid"], detector, motion))
            else:
                columns.update(no_box_evidence(len(block)))
        else:
            found = _aligned_blocks(workspace, boxes, block.video_ids, ("score",))
            columns.update(detector_evidence(found["score"], found["valid"]) if "score" in found
                           else no_box_evidence(len(block)))
        yield block.video_ids, columns
