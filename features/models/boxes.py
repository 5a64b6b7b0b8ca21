"""Boxes in numpy: overlap, non-maximum suppression, YOLOX rows to boxes, and how well two detectors agree.

Pure functions of arrays, shared by the detector (:mod:`jungle.features.models.detector`), its
backends (:mod:`jungle.features.models.detector_backends`) and their benchmark. A box is a row
``x1, y1, x2, y2, score`` (corners in any one unit: input pixels or fractions of the frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["iou_matrix", "nms", "rows_to_boxes", "BoxAgreement", "box_agreement"]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over union of the boxes ``a`` (n, >=4) and ``b`` (m, >=4), corners first."""
    a, b = np.asarray(a, np.float64)[:, :4], np.asarray(b, np.float64)[:, :4]
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression (as ``torchvision.ops.nms``): indices of the kept boxes, best
    first; a box is dropped when it overlaps a better kept one by more than ``iou``."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes = np.asarray(boxes)[order]
    overlaps = iou_matrix(boxes, boxes)
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i] > iou
    return order[np.asarray(keep, np.int64)]


def rows_to_boxes(rows: np.ndarray, confidence: float, nms_iou: float) -> np.ndarray:
    """One image's YOLOX rows (anchors, 5 + classes: cx, cy, w, h, objectness, class probabilities)
    to its boxes: score = objectness x best class probability, those >= ``confidence``, then
    class-wise NMS at ``nms_iou``. Returns (k, 5) float32 ``x1, y1, x2, y2, score`` in the rows'
    units, best first."""
    rows = np.asarray(rows, np.float32)
    classes = rows[:, 5:]
    scores = rows[:, 4] * classes.max(axis=1)
    keep = np.flatnonzero(scores >= confidence)
    if not len(keep):
        return np.zeros((0, 5), np.float32)
    centre, size, scores = rows[keep, :2], rows[keep, 2:4], scores[keep]
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    if classes.shape[1] > 1:  # boxes of different classes never suppress each other (torchvision's offset trick)
        label = classes[keep].argmax(axis=1)
        offset = label[:, None].astype(np.float32) * (float(np.abs(xyxy).max()) + 1.0)
        kept = nms(xyxy + offset, scores, nms_iou)
    else:
        kept = nms(xyxy, scores, nms_iou)
    return np.concatenate([xyxy[kept], scores[kept, None]], axis=1).astype(np.float32)


@dataclass(frozen=True)
class BoxAgreement:
    """How well one detector's boxes reproduce a reference detector's on the same frames.

    Attributes:
        frames: frames compared.
        boxes: reference boxes at or above the score that counts, plus the other detector's boxes
            there that no such reference box claimed (each box that counts, from either side).
        matched: of those, the ones paired with a box of the other side.
        min_iou: the smallest IoU of a pair (1 when there is none).
        max_score_diff: the largest |score difference| of a pair (0 when there is none).
    """

    frames: int
    boxes: int
    matched: int
    min_iou: float
    max_score_diff: float

    @property
    def unmatched(self) -> int:
        return self.boxes - self.matched

    def passes(self, min_iou: float, max_score_diff: float) -> bool:
        """Every box that counts is paired, at IoU >= ``min_iou`` and |score diff| <= ``max_score_diff``."""
        return self.unmatched == 0 and self.min_iou >= min_iou and self.max_score_diff <= max_score_diff

    def describe(self) -> str:
        return (f"{self.matched} of {self.boxes} boxes matched on {self.frames} frames, smallest IoU "
                f"{self.min_iou:.3f}, largest score difference {self.max_score_diff:.3f}")

    def as_dict(self) -> dict:
        return {"frames": self.frames, "boxes": self.boxes, "matched": self.matched, "min_iou": self.min_iou,
                "max_score_diff": self.max_score_diff}


def _pairs(first: np.ndarray, second: np.ndarray, min_score: float, min_overlap: float) -> list[tuple[int, int]]:
    """Greedy pairing, best first: each box of ``first`` scoring >= ``min_score`` takes the free box of
    ``second`` it overlaps most (IoU >= ``min_overlap``)."""
    overlaps = iou_matrix(first, second) if len(first) and len(second) else np.zeros((len(first), len(second)))
    taken: set[int] = set()
    pairs = []
    for i in np.argsort(-first[:, 4], kind="stable"):
        if first[i, 4] < min_score:
            continue
        candidates = [j for j in np.argsort(-overlaps[i], kind="stable") if j not in taken
                      and overlaps[i, j] >= min_overlap]
        if candidates:
            taken.add(int(candidates[0]))
            pairs.append((int(i), int(candidates[0])))
    return pairs


def box_agreement(reference: list[np.ndarray], other: list[np.ndarray], min_score: float = 0.25,
                  min_overlap: float = 0.3) -> BoxAgreement:
    """Pair the boxes of two detectors frame by frame and measure the pairs.

    A box *counts* when its score is at least ``min_score``, on either side. Each reference box that
    counts is paired with the other detector's free box it overlaps most (IoU >= ``min_overlap``,
    whatever that box's score); then each of the other detector's boxes that counts and is still
    unpaired is paired the same way with a free reference box. Boxes kept on one side just below
    ``min_score`` pair with boxes just above it on the other, so pass both lists kept at a lower
    confidence than ``min_score`` (by the score tolerance) to tell a shifted score from a missed box.

    Args:
        reference, other: per frame a (k, 5) array ``x1, y1, x2, y2, score`` (the same units).
        min_score: score from which a box counts.
        min_overlap: the least IoU of a pair (a box with no partner this close is unmatched).
    """
    counted = matched = 0
    ious, diffs = [], []
    for ref, oth in zip(reference, other, strict=True):
        ref, oth = np.asarray(ref, np.float64).reshape(-1, 5), np.asarray(oth, np.float64).reshape(-1, 5)
        forward = _pairs(ref, oth, min_score, min_overlap)
        used_ref, used_oth = {i for i, _ in forward}, {j for _, j in forward}
        free_ref = np.array([i for i in range(len(ref)) if i not in used_ref], np.int64)
        rest = oth[[j for j in range(len(oth)) if j not in used_oth]]
        rest_index = [j for j in range(len(oth)) if j not in used_oth]
        backward = [(int(free_ref[i]), rest_index[j]) for j, i in _pairs(rest, ref[free_ref], min_score, min_overlap)]
        counted += int((ref[:, 4] >= min_score).sum()) + int((rest[:, 4] >= min_score).sum())
        for i, j in forward + backward:
            matched += 1
            ious.append(float(iou_matrix(ref[i:i + 1], oth[j:j + 1])[0, 0]))
            diffs.append(abs(float(ref[i, 4] - oth[j, 4])))
    return BoxAgreement(frames=len(reference), boxes=counted, matched=matched, min_iou=min(ious, default=1.0),
                        max_score_diff=max(diffs, default=0.0))
