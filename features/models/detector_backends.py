"""MegadetectorLite's network on OpenVINO or ONNX Runtime: export, int8, verification by boxes, cache.

The detector (:mod:`jungle.features.models.detector`) letterboxes frames into a uint8 canvas and
turns the network's rows into boxes; this module runs the network in between, on the backend of
:data:`~jungle.features.models.backends.BACKENDS` the detector's configuration names (the encoders'
registry, cache and verification record: :mod:`jungle.features.models.backends`).

- **Export.** The fused network (BatchNorm folded into the convolutions) is wrapped so that the
  graph takes the letterboxed uint8 canvas, NHWC, and converts it to float NCHW itself; it is
  exported once per input size and batch with *static* shapes (the head's anchor grid becomes
  constants; OpenVINO compiles for the one shape), to ``exports/megadetector-lite-<key>/`` in the
  weights cache, the key hashing the weights' SHA-256, input size, batch, opset, torch version,
  precision and (int8) the calibration. A short last batch is padded.
- **int8.** ONNX Runtime's static quantisation (QDQ, per-channel weights) of the convolutions but
  the head's last ones (box, objectness and class predictions stay float), calibrated on letterboxed
  real frames of the user's own videos that the caller hands in; OpenVINO runs the QDQ graph with
  int8 kernels. (Quantising every operator, the anchor-grid decoding included, gives a graph
  OpenVINO 2026.4 refuses to compile.)
- **Verification**, before a file is first used on a backend: PyTorch and the backend score the same
  canvases (a fixed synthetic batch, plus real frames when the caller gives them; for int8 frames
  held out of the calibration). Both sides' boxes are kept from ``confidence - max_score_diff``, and
  every box scoring at least ``confidence`` on either side must pair with a box of the other at
  IoU >= ``min_iou`` and |score difference| <= ``max_score_diff`` (:data:`TOLERANCE`,
  :func:`~jungle.features.models.boxes.box_agreement`), and every anchor's score (objectness x
  class) must be within ``max_score_diff`` of PyTorch's, which also holds the synthetic frames (on
  which the detector finds nothing) to account; else :class:`BackendMismatch`. The
  measurement is recorded beside the file with its SHA-256 (``verified-<backend>-<version>.json``):
  a changed file is verified again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ...hashing import file_sha256
from .backends import (
    OPSET, BackendError, BackendMismatch, Calibration, backend_version, export_folder, export_graph, open_backend,
    quantize_onnx, read_verification, write_verification,
)
from .boxes import BoxAgreement, box_agreement, rows_to_boxes

__all__ = ["TOLERANCE", "DetectorNetwork", "torch_network", "export_detector", "detector_export_dir",
           "compile_network", "network_agreement"]

#: Agreement a backend's boxes must reach with PyTorch's on the check frames (see the module docstring);
#: chosen from measurements on real camera-trap frames (README, ``bench/detector.py``).
TOLERANCE: dict[str, dict[str, float]] = {
    "fp32": {"min_iou": 0.9, "max_score_diff": 0.02},
    "int8": {"min_iou": 0.7, "max_score_diff": 0.1},
}


@dataclass(frozen=True)
class DetectorNetwork:
    """The detector's network on one backend.

    Attributes:
        forward: letterboxed uint8 canvases (n, H, W, 3) -> YOLOX rows (n, anchors, 5 + classes), float32.
        backend: ``torch``, ``openvino`` or ``onnxruntime``.
        version: the backend's installed version.
        precision: ``fp32`` or ``int8``.
        model_path: the exported file (None for PyTorch).
        agreement: the verification's measurement (None for PyTorch).
        calibration: the int8 calibration record (None otherwise).
    """

    forward: Callable[[np.ndarray], np.ndarray]
    backend: str
    version: str
    precision: str = "fp32"
    model_path: Path | None = None
    agreement: dict | None = None
    calibration: Calibration | None = None


def torch_network(model, channels_last: bool = True) -> DetectorNetwork:
    """The PyTorch network itself (eval mode) as a :class:`DetectorNetwork`."""
    import torch

    memory = torch.channels_last if channels_last else torch.contiguous_format

    def forward(canvas: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(canvas)).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            return model(tensor.contiguous(memory_format=memory)).numpy()

    return DetectorNetwork(forward, "torch", torch.__version__)


def _canvas_graph(model):
    """``model`` behind the conversion of a uint8 NHWC canvas to float NCHW (part of the exported graph)."""
    import torch

    class CanvasInput(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, canvas):
            return self.network(canvas.permute(0, 3, 1, 2).float())

    return CanvasInput(model).eval()


def detector_export_dir(weights: str, weights_sha256: str, size: tuple[int, int], batch: int,
                        precision: str = "fp32", calibration: Calibration | None = None,
                        cache: Path | None = None, fused: bool = True) -> Path:
    """The cache folder of one exported detector network (not created here); ``size`` is (width, height)."""
    import torch

    settings = {"weights": weights, "weights_sha256": weights_sha256, "input": list(size), "batch": batch,
                "input_format": "uint8-nhwc", "fused": fused, "opset": OPSET, "torch": torch.__version__,
                "precision": precision, "calibration": calibration.model_dump(mode="json") if calibration else None}
    return export_folder(weights, settings, cache)


def export_detector(model, size: tuple[int, int], batch: int, path: Path) -> Path:
    """Write the (fused, eval) network to ONNX at ``path``: input ``canvas`` uint8 (batch, height,
    width, 3), output ``rows`` float32 (batch, anchors, 5 + classes), every shape static."""
    import torch

    width, height = size
    model = model.to(memory_format=torch.contiguous_format)
    return export_graph(_canvas_graph(model), (torch.zeros(batch, height, width, 3, dtype=torch.uint8),), path,
                        input_names=["canvas"], output_names=["rows"], what=f"the detector at {width}x{height}")


def _prediction_convs(path: Path) -> list[str]:
    """The names of the head's last convolutions (box, objectness and class predictions), which int8
    leaves in float: their outputs are the boxes and scores themselves."""
    import onnx

    return [node.name for node in onnx.load(str(path)).graph.node if node.op_type == "Conv" and "_preds." in node.name]


def _batched(run: Callable[[np.ndarray], list[np.ndarray]], batch: int) -> Callable[[np.ndarray], np.ndarray]:
    """A forward over any number of canvases from a runtime with a static batch (the last one padded)."""

    def forward(canvas: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(canvas), batch):
            chunk = np.ascontiguousarray(canvas[start: start + batch])
            short = batch - len(chunk)
            if short:
                chunk = np.concatenate([chunk, np.zeros((short, *chunk.shape[1:]), chunk.dtype)])
            parts.append(np.asarray(run(chunk)[0], np.float32)[: batch - short])
        return np.concatenate(parts) if parts else np.zeros((0, 0, 6), np.float32)

    return forward


def network_agreement(reference: DetectorNetwork, other: DetectorNetwork, canvases: np.ndarray, confidence: float,
                      nms_iou: float, max_score_diff: float, batch: int = 8) -> tuple[BoxAgreement, float]:
    """Compare two networks on the same canvases.

    Returns:
        The pairing of their boxes (:func:`~jungle.features.models.boxes.box_agreement`: boxes kept
        from ``confidence - max_score_diff`` on both sides, counted from ``confidence``), and the
        largest score difference over every anchor of every canvas (meaningful on frames without
        an animal too).
    """
    floor = max(confidence - max_score_diff, 1e-6)
    ours, theirs, anchor_diff = [], [], 0.0
    for start in range(0, len(canvases), batch):
        chunk = canvases[start: start + batch]
        mine, other_rows = reference.forward(chunk), other.forward(chunk)
        scores = [rows[..., 4] * rows[..., 5:].max(axis=-1) for rows in (mine, other_rows)]
        anchor_diff = max(anchor_diff, float(np.abs(scores[0] - scores[1]).max(initial=0.0)))
        ours += [rows_to_boxes(rows, floor, nms_iou) for rows in mine]
        theirs += [rows_to_boxes(rows, floor, nms_iou) for rows in other_rows]
    return box_agreement(ours, theirs, min_score=confidence), anchor_diff


def compile_network(model, backend: str, precision: str, *, weights: str, weights_sha256: str,
                    size: tuple[int, int], batch: int, confidence: float, nms_iou: float, check: np.ndarray,
                    fused: bool = True, channels_last: bool = True, real: Callable[[], np.ndarray] | None = None,
                    calibration: tuple[Calibration, np.ndarray] | None = None, threads: int = 2,
                    cache: Path | None = None, tolerance: dict[str, float] | None = None) -> DetectorNetwork:
    """The detector's network on ``backend`` (export, quantise and verify as needed).

    Args:
        model: the PyTorch network (eval), the reference; ``fused`` says whether its BatchNorms are
            folded (part of the export's key), ``channels_last`` its memory format.
        backend: ``openvino`` or ``onnxruntime`` (``torch``: the model itself, nothing checked).
        precision: ``fp32`` or ``int8`` (int8 needs ``calibration``).
        weights, weights_sha256: the weights' name and digest (the export's cache key).
        size, batch: the input (width, height) and the frames per forward pass of the export.
        confidence, nms_iou: the detector's thresholds (what the check counts).
        check: letterboxed uint8 canvases every check uses (a fixed synthetic batch).
        real: letterboxed real canvases to check on as well, asked for only when a check is due.
        calibration: for int8, the record and the letterboxed real canvases to calibrate on; a quarter
            of them (at most 64) are held out of the calibration and checked on instead.
        threads: the runtime's threads.
        cache: the weights cache (default ``$JUNGLE_WEIGHTS_DIR`` or ``~/.cache/jungle/weights``).
        tolerance: ``min_iou`` and ``max_score_diff`` (default :data:`TOLERANCE` of ``precision``).

    Raises:
        BackendError: export, quantisation or loading failed, or int8 without calibration.
        BackendMismatch: the boxes disagree with PyTorch's beyond the tolerance.
    """
    reference = torch_network(model, channels_last)
    if backend == "torch":
        if precision != "fp32":
            raise BackendError("the detector's int8 needs backend=openvino or backend=onnxruntime.")
        return reference
    tolerance = dict(TOLERANCE[precision] if tolerance is None else tolerance)
    fp32 = detector_export_dir(weights, weights_sha256, size, batch, cache=cache, fused=fused) / "model.onnx"
    if not fp32.is_file():
        export_detector(model, size, batch, fp32)
    path, held = fp32, np.zeros((0, *check.shape[1:]), np.uint8)
    if precision == "int8":
        if calibration is None:
            raise BackendError("the detector's int8 needs calibration frames from the workspace's own videos; "
                               "none were given.")
        record, canvases = calibration
        count = min(64, len(canvases) // 4)
        held, canvases = canvases[:count], canvases[count:]
        path = detector_export_dir(weights, weights_sha256, size, batch, "int8", record, cache, fused) / "model.onnx"
        if not path.is_file():
            if not len(canvases):
                raise BackendError("the detector's int8 calibration got no frames; leave out precision=int8.")
            padded = np.resize(canvases, (-(-len(canvases) // batch) * batch, *canvases.shape[1:]))  # static batch
            quantize_onnx(fp32, [{"canvas": padded[i: i + batch]} for i in range(0, len(padded), batch)], path,
                          op_types=["Conv"], exclude=_prediction_convs(fp32))
    network = DetectorNetwork(_batched(open_backend(backend, path, threads), batch), backend, backend_version(backend),
                              precision, path, calibration=calibration[0] if calibration else None)
    digest = file_sha256(path)
    record = read_verification(path, backend, digest, tolerance)
    if record is not None:
        return replace(network, agreement=record["agreement"])
    frames = [check, held] + ([real()] if real is not None and precision == "fp32" else [])
    canvases = np.concatenate([f for f in frames if len(f)])
    agreement, anchor_diff = network_agreement(reference, network, canvases, confidence, nms_iou,
                                               tolerance["max_score_diff"])
    if not (agreement.passes(**tolerance) and anchor_diff <= tolerance["max_score_diff"]):
        raise BackendMismatch(
            f"{backend} {backend_version(backend)} ({precision}) gives detector boxes that differ from PyTorch's: "
            f"{agreement.describe()}, largest score difference over all anchors {anchor_diff:.3f}; needed every "
            f"box matched at IoU >= {tolerance['min_iou']} and scores within {tolerance['max_score_diff']} "
            f"(model {path}). Delete the folder {path.parent} to export it again, or use backend=torch.")
    measured = {**agreement.as_dict(), "max_anchor_score_diff": anchor_diff}
    write_verification(path, backend, precision, digest, tolerance, {"agreement": measured})
    return replace(network, agreement=measured)
