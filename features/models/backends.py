"""Inference backends: the same encoder run by PyTorch, OpenVINO or ONNX Runtime on the CPU.

On a CPU, the forward pass is what limits ``jungle featurize``. An optimised runtime runs the very
same network faster: the timm model (with its pooled stage outputs when ``--stages`` asks for
them) is exported once to ONNX (``torch.onnx.export``, TorchScript path, opset 17) and run by
OpenVINO or ONNX Runtime. One registry, :data:`BACKENDS`, names them, fastest first.

- Export is cached per encoder configuration in the weights cache (``$JUNGLE_WEIGHTS_DIR``, else
  ``~/.cache/jungle/weights``) under ``exports/<timm name>-<key>/``, the key hashing the weights'
  SHA-256, the input size, the stages, the opset, the torch version and the precision (and, for
  int8, the calibration).
- Before first use, a backend is *verified*: a fixed deterministic image batch (and, for int8, held
  out calibration frames) goes through PyTorch and the backend; the smallest per-frame cosine
  similarity of the embeddings must reach :data:`TOLERANCE` (0.999 for fp32, 0.85 for int8), or
  :class:`BackendMismatch` refuses. The measured cosine is recorded beside the exported file (with the
  file's SHA-256: a changed file is verified again).
- ``precision="int8"``: ONNX Runtime's static quantisation (QDQ, per-channel weights), calibrated
  on a few hundred real frames of the user's own videos, which the caller chooses and decodes
  (featurize: :mod:`jungle.features.featurize.calibration`) and hands in with their
  :class:`Calibration` record (frames, seed, a hash of the chosen video ids: part of the lineage).
- The backend, its version and the precision go into the encoder's ``describe()``, hence into the
  feature set's configuration: a set made with another backend is another configuration.

Backends are pure runtime: frames in, arrays out; nothing here opens a workspace or decodes video.
The pieces that are not about encoders (the cache folder, the ONNX export, opening a file on a
runtime, the verification record, int8 quantisation, falling back to the next backend) are shared
with the detector (:mod:`jungle.features.models.detector_backends`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, ClassVar, TypeVar

import numpy as np

from ...config import JungleConfig
from ...errors import ModelError
from ...hashing import config_key, file_sha256
from .encoders import Encoder

__all__ = [
    "BackendSpec",
    "BACKENDS",
    "BackendError",
    "BackendMismatch",
    "PRECISIONS",
    "TOLERANCE",
    "OPSET",
    "Calibration",
    "installed_backends",
    "backend_version",
    "export_dir",
    "export_onnx",
    "verification_images",
    "embedding_cosine",
    "BackendEncoder",
    "accelerate",
    "choose_backend",
    "load_fastest",
    "first_that_loads",
    "export_folder",
    "export_graph",
    "open_backend",
    "read_verification",
    "write_verification",
    "quantize_onnx",
]

OPSET = 17
PRECISIONS = ("fp32", "int8")
# Smallest per-frame cosine of the embeddings to PyTorch's. int8 (lite0, 2 cores, bench/backends.py):
# OpenVINO ~0.86 smallest / ~0.97 mean on real held-out frames; ONNX Runtime ~0.72 / ~0.84 (refused).
TOLERANCE = {"fp32": 0.999, "int8": 0.85}
VERIFY_FRAMES = 8


class BackendError(ModelError):
    """A backend cannot run this encoder (not installed, export or load failed); the message says what to do."""


class BackendMismatch(BackendError):
    """A backend's embeddings disagree with PyTorch's beyond the tolerance."""


# ----------------------------------------------------------------------------- the registry
def _open_openvino(path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {  # f32: no bf16 on CPUs that have it; the cache
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
        "CACHE_DIR": str(path.parent / "openvino-cache")})  # keeps the compiled model: 4.9 s -> 1.6 s loaded
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)
    return lambda batch: [np.array(request.infer({0: batch})[o]) for o in outputs]


def _open_onnxruntime(path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave the cores to decoding
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})


@dataclass(frozen=True)
class BackendSpec:
    """One inference backend.

    Attributes:
        name: what users type (``--backend NAME``).
        module: the module imported to run it.
        distribution: the PyPI distribution whose version is recorded.
        open: (exported ONNX file, threads) -> a function from a float32 NCHW batch to the outputs;
            None for PyTorch itself.
    """

    name: str
    module: str
    distribution: str
    open: Callable[[Path, int], Callable[[np.ndarray], list[np.ndarray]]] | None = None


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (  # fastest first (measured, README)
    BackendSpec("openvino", "openvino", "openvino", _open_openvino),
    BackendSpec("onnxruntime", "onnxruntime", "onnxruntime", _open_onnxruntime),
    BackendSpec("torch", "torch", "torch"),
)}


def installed_backends() -> list[str]:
    """Names of the backends whose package is installed, fastest first."""
    from importlib.util import find_spec

    return [name for name, spec in BACKENDS.items() if find_spec(spec.module) is not None]


def backend_version(name: str) -> str:
    """The installed version of a backend's distribution."""
    return metadata.version(BACKENDS[name].distribution)


def choose_backend(requested: str | None, device: str = "cpu") -> list[str]:
    """The backends to try, in order: the requested one alone, or (None) every installed one, fastest
    first, ending with PyTorch; on a GPU always PyTorch.

    Raises:
        BackendError: an unknown name, a CPU backend with a GPU device, or a backend not installed.
    """
    if requested is not None and requested not in BACKENDS:
        raise BackendError(f'unknown backend "{requested}". Known: {", ".join(BACKENDS)}.')
    if device != "cpu":
        if requested not in (None, "torch"):
            raise BackendError(f"--backend {requested} runs on the CPU only; with --device {device} use "
                               "--backend torch (or leave --backend out).")
        return ["torch"]
    if requested is None:
        return installed_backends()
    if requested not in installed_backends():
        raise BackendError(f'the backend "{requested}" is not installed. Run `pip install "jungle[backends]"` '
                           f"(or `pip install {BACKENDS[requested].distribution}`), or use --backend torch.")
    return [requested]


# ----------------------------------------------------------------------------- shared: cache, export, verification
class Calibration(JungleConfig):
    """Which real frames calibrated an int8 model (part of the lineage).

    Attributes:
        frames: number of frames.
        seed: seed of the sampling of videos.
        video_ids_sha256: sha256 of the chosen video ids, sorted and newline-joined.
        sampling: frames taken per video.
    """

    frames: int
    seed: int
    video_ids_sha256: str
    sampling: str


def export_folder(name: str, settings: dict, cache: Path | None = None) -> Path:
    """The cache folder of one exported model: ``<cache>/exports/<name>-<key of settings>`` (not created
    here); ``cache`` defaults to the weights cache (``$JUNGLE_WEIGHTS_DIR`` or ``~/.cache/jungle/weights``)."""
    from .weights import default_weights_dir

    return (cache or default_weights_dir()) / "exports" / f"{name}-{config_key(settings)}"


def export_graph(module, example: tuple, path: Path, *, input_names: list[str], output_names: list[str],
                 dynamic_axes: dict | None = None, what: str) -> Path:
    """Write a PyTorch module to ONNX at ``path`` (TorchScript exporter, opset :data:`OPSET`; atomically).

    Raises:
        BackendError: the exporter failed (``what`` names the model in the message).
    """
    import warnings

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(f".tmp{os.getpid()}")
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(staged), dynamo=False, opset_version=OPSET,
                              input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
        staged.replace(path)
    except Exception as exc:  # noqa: BLE001 - the exporter fails in many ways on unusual models
        raise BackendError(f"cannot export {what} to ONNX ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). "
                           "Use --backend torch for it.") from exc
    finally:
        staged.unlink(missing_ok=True)
    return path


def open_backend(backend: str, path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The exported file ``path`` loaded on ``backend``: a function from an input batch to the outputs.

    Raises:
        BackendError: the runtime cannot load the file (damaged, or from an incompatible exporter).
    """
    try:
        return BACKENDS[backend].open(path, threads)
    except Exception as exc:  # noqa: BLE001 - each runtime raises its own types on a bad file
        raise BackendError(f"{backend} cannot load the exported model {path} ({type(exc).__name__}: "
                           f"{str(exc).strip()[:200]}). Delete the folder {path.parent} to export it again, "
                           "or use --backend torch.") from exc


def _record_path(model_path: Path, backend: str) -> Path:
    return model_path.parent / f"verified-{backend}-{backend_version(backend)}.json"


def read_verification(model_path: Path, backend: str, model_sha256: str, tolerance) -> dict | None:
    """The verification record of ``model_path`` on ``backend`` (this version) when this exact file
    (``model_sha256``) passed the check at this ``tolerance``; else None (it must be checked)."""
    try:
        record = json.loads(_record_path(model_path, backend).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and record.get("model_sha256") == model_sha256 and record.get("tolerance") == tolerance:
        return record
    return None


def write_verification(model_path: Path, backend: str, precision: str, model_sha256: str, tolerance,
                       measured: dict) -> None:
    """Record beside ``model_path`` that it passed ``backend``'s check (``verified-<backend>-<version>.json``)."""
    record = {"backend": backend, "version": backend_version(backend), "precision": precision,
              "model_sha256": model_sha256, "tolerance": tolerance, **measured}
    path = _record_path(model_path, backend)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(record, handle, indent=2)
    os.replace(handle.name, path)


def quantize_onnx(source: Path, batches: list[dict[str, np.ndarray]], target: Path, *,
                  op_types: list[str] | None = None, exclude: list[str] | None = None) -> Path:
    """Static int8 quantisation of an ONNX file (ONNX Runtime; QDQ, per-channel int8 weights, uint8
    activations) calibrated on ``batches`` (input name -> array), written atomically to ``target``.
    ``op_types`` limits it to those operators (default: all ONNX Runtime can quantise); the nodes
    named in ``exclude`` stay float.

    Raises:
        BackendError: ONNX Runtime's quantisation tools are not installed.
    """
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError as exc:
        raise BackendError("--precision int8 needs ONNX Runtime and onnx for the quantisation. Run "
                           '`pip install "jungle[backends]"`.') from exc

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f"staged{os.getpid()}.onnx")
    try:
        quantize_static(str(source), str(staged), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=op_types, nodes_to_exclude=exclude)
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)
    return target


Loaded = TypeVar("Loaded")


def first_that_loads(candidates: list[str], load: Callable[[str], Loaded], precision: str = "fp32",
                     notify: Callable[[str], None] | None = None) -> Loaded:
    """``load(backend)`` for the first of ``candidates`` that exports, loads and passes verification.

    With several candidates (the automatic choice), a failing backend is reported through ``notify``
    (default: a line on stderr) and the next is tried, PyTorch last; a single candidate raises.

    Raises:
        BackendError: the last candidate failed too, or int8 was asked and only PyTorch is left.
    """
    notify = notify or (lambda line: print(line, file=sys.stderr, flush=True))
    for position, backend in enumerate(candidates):
        if precision == "int8" and backend == "torch" and len(candidates) > 1:
            raise BackendError("--precision int8 needs OpenVINO or ONNX Runtime; neither worked. "
                               'Run `pip install "jungle[backends]"`, or leave out --precision int8.')
        try:
            return load(backend)
        except BackendError as exc:
            if position + 1 == len(candidates):
                raise
            notify(f"note: {exc} Falling back to {candidates[position + 1]}.")
    raise BackendError("no backend to run the model.")


# ----------------------------------------------------------------------------- encoders: export and verification
def export_dir(encoder: Encoder, precision: str = "fp32", calibration: Calibration | None = None,
               cache: Path | None = None) -> Path:
    """The cache folder of an encoder configuration's exported model (not created here)."""
    import torch

    settings = {"timm_name": encoder.timm_name, "weights_sha256": encoder.weights_sha256,
                "input_size": encoder.input_size, "stages": list(encoder.stage_indices), "opset": OPSET,
                "torch": torch.__version__, "precision": precision,
                "calibration": calibration.model_dump() if calibration else None}
    return export_folder(encoder.timm_name, settings, cache)


class _Exported:
    """The timm model as one graph: image batch -> (embedding, pooled stages...)."""

    @staticmethod
    def module(encoder: Encoder):
        import torch

        class Graph(torch.nn.Module):
            def __init__(self, model, indices):
                super().__init__()
                self.model, self.indices = model, list(indices) or None

            def forward(self, x):
                final, intermediates = self.model.forward_intermediates(x, indices=self.indices, output_fmt="NCHW")
                embedding = self.model.forward_head(final, pre_logits=True)
                if not self.indices:
                    return embedding
                return embedding, torch.cat([t.mean(dim=(2, 3)) for t in intermediates], dim=1)

        return Graph(encoder.model, encoder.stage_indices).eval()


def export_onnx(encoder: Encoder, path: Path) -> Path:
    """Write the encoder's graph to ONNX at ``path`` (atomically; batch size dynamic).

    Raises:
        BackendError: the model cannot be exported (some bring-your-own architectures).
    """
    import torch

    size = encoder.input_size
    names = ["embedding", "stages"] if encoder.stage_indices else ["embedding"]
    return export_graph(_Exported.module(encoder), (torch.zeros(2, 3, size, size, device=encoder.device),), path,
                        input_names=["image"], output_names=names,
                        dynamic_axes={n: {0: "batch"} for n in ["image", *names]}, what=encoder.timm_name)


def verification_images(size: int, count: int = VERIFY_FRAMES, seed: int = 0) -> np.ndarray:
    """A fixed batch of smooth, image-like uint8 frames (low-frequency colour fields with edges):
    deterministic, so every machine verifies on the same input."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(count, 7, 7, 3)).astype(np.float32)
    repeat = -(-size // 7)
    fields = np.repeat(np.repeat(coarse, repeat, axis=1), repeat, axis=2)[:, :size, :size]
    ramp = np.linspace(0, 60, size, dtype=np.float32)[None, :, None, None]
    return np.clip(fields + ramp + rng.normal(0, 8, fields.shape), 0, 255).astype(np.uint8)


def embedding_cosine(reference: np.ndarray, other: np.ndarray) -> float:
    """The smallest per-row cosine similarity of two embedding batches (NaN counts as 0)."""
    a, b = reference.astype(np.float64), other.astype(np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return float(np.nan_to_num(cosine, nan=0.0).min())


# ----------------------------------------------------------------------------- the accelerated encoder
@dataclass
class BackendEncoder:
    """An :class:`~jungle.features.models.encoders.Encoder` whose forward pass runs on another backend.

    It keeps the PyTorch encoder for preprocessing, sizes and lineage; ``describe()`` adds the
    backend, its version, the precision, the verification cosine and (int8) the calibration.
    """

    torch_encoder: Encoder
    backend: str
    version: str
    precision: str
    model_path: Path
    cosine: float
    run: Callable[[np.ndarray], list[np.ndarray]] = field(repr=False)
    calibration: Calibration | None = None

    native_frames: ClassVar[bool] = False

    @property
    def input_size(self) -> int:
        return self.torch_encoder.input_size

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.torch_encoder.frame_size

    @property
    def set_name(self) -> str:
        return self.torch_encoder.set_name

    def output_specs(self) -> dict:
        return self.torch_encoder.output_specs()

    def registry_meta(self) -> dict:
        return self.torch_encoder.registry_meta()

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Per-frame features of a batch, like :meth:`Encoder.encode`."""
        batch = np.ascontiguousarray(self.torch_encoder.to_tensor(images).numpy(), dtype=np.float32)
        outputs = self.run(batch)
        out = {"embedding": np.asarray(outputs[0], np.float32)}
        if self.torch_encoder.stage_indices:
            out["stages"] = np.asarray(outputs[1], np.float32)
        return out

    def describe(self) -> dict:
        """The PyTorch encoder's lineage plus how this backend runs it (verification cosine excluded:
        it is a measurement, recorded beside the exported model, not a setting)."""
        return {**self.torch_encoder.describe(), "backend": self.backend, "backend_version": self.version,
                "precision": "float32" if self.precision == "fp32" else self.precision,
                "calibration": self.calibration.model_dump() if self.calibration else None}


def _exported_model(encoder: Encoder, precision: str, calibration: tuple[Calibration, np.ndarray] | None,
                    cache: Path | None) -> Path:
    """The encoder configuration's ONNX file for ``precision``, exported (and quantised) when missing."""
    fp32 = export_dir(encoder, "fp32", cache=cache) / "model.onnx"
    if not fp32.is_file():
        export_onnx(encoder, fp32)
    if precision == "fp32":
        return fp32
    if calibration is None:
        raise BackendError("int8 needs calibration frames from the workspace's own videos; none were given.")
    int8 = export_dir(encoder, "int8", calibration[0], cache) / "model.onnx"
    if not int8.is_file():
        frames = calibration[1]
        quantize_onnx(fp32, [{"image": np.ascontiguousarray(encoder.to_tensor(frames[i:i + 16]).numpy(), np.float32)}
                             for i in range(0, len(frames), 16)], int8)
    return int8


def _open_verified(encoder: Encoder, backend: str, model_path: Path, precision: str, check: np.ndarray,
                   threads: int, tolerance: float | None) -> tuple[Callable, float]:
    """Open ``model_path`` on ``backend``; verify it against PyTorch unless this file already passed.

    Raises:
        BackendError: the backend cannot load the file.
        BackendMismatch: the embeddings disagree beyond the tolerance.
    """
    tolerance = TOLERANCE[precision] if tolerance is None else tolerance
    run = open_backend(backend, model_path, threads)
    digest = file_sha256(model_path)
    record = read_verification(model_path, backend, digest, tolerance)
    if record is not None:
        return run, float(record["cosine"])
    batch = np.ascontiguousarray(encoder.to_tensor(check).numpy(), np.float32)
    cosine = embedding_cosine(encoder.encode(check)["embedding"], np.asarray(run(batch)[0]))
    if not cosine >= tolerance:
        raise BackendMismatch(
            f"{backend} {backend_version(backend)} ({precision}) gives embeddings that differ from PyTorch's "
            f"for {encoder.timm_name}: cosine similarity {cosine:.4f} < {tolerance} on {len(check)} frames "
            f"(model {model_path}). Delete the folder {model_path.parent} to export it again, or use "
            "--backend torch.")
    write_verification(model_path, backend, precision, digest, tolerance, {"cosine": cosine, "frames": len(check)})
    return run, cosine


def accelerate(encoder: Encoder, backend: str, precision: str = "fp32", *,
               calibration: tuple[Calibration, np.ndarray] | None = None, threads: int | None = None,
               cache: Path | None = None, tolerance: float | None = None):
    """The encoder on ``backend`` (export, quantise and verify as needed), or itself for ``torch``.

    Args:
        encoder: a loaded PyTorch encoder (CPU).
        backend: a name of :data:`BACKENDS`.
        precision: "fp32" or "int8" (int8 needs ``calibration``: its record and the uint8 frames; a
            quarter of them, at most 64, are held out of the calibration and used to verify).
        threads: the runtime's threads (default: torch's).
        cache: the weights cache (default ``$JUNGLE_WEIGHTS_DIR`` or ``~/.cache/jungle/weights``).
        tolerance: the smallest per-frame cosine accepted (default :data:`TOLERANCE`).

    Raises:
        BackendError: export, quantisation or loading failed; BackendMismatch: verification failed.
    """
    import torch

    if precision not in PRECISIONS:
        raise BackendError(f'unknown precision "{precision}". Known: {", ".join(PRECISIONS)}.')
    if backend == "torch":
        if precision != "fp32":
            raise BackendError("--precision int8 needs --backend openvino or onnxruntime.")
        return encoder
    check = verification_images(encoder.input_size)
    if precision == "int8" and calibration is not None:
        held = min(64, len(calibration[1]) // 4)
        calibration = (calibration[0], calibration[1][held:])
        check = np.concatenate([check, calibration[1][:held]]) if held else check
    path = _exported_model(encoder, precision, calibration, cache)
    run, cosine = _open_verified(encoder, backend, path, precision, check, threads or torch.get_num_threads(),
                                 tolerance)
    return BackendEncoder(encoder, backend, backend_version(backend), precision, path, cosine, run,
                          calibration[0] if calibration else None)


def load_fastest(encoder: Encoder, candidates: list[str], precision: str = "fp32", *,
                 notify: Callable[[str], None] | None = None, **options):
    """The first of ``candidates`` on which the encoder exports, loads and passes verification
    (:func:`first_that_loads` over :func:`accelerate`)."""
    return first_that_loads(candidates, lambda backend: accelerate(encoder, backend, precision, **options),
                            precision, notify)
