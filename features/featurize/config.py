"""What a featurize run computes and how it runs: :class:`FeaturizeConfig`, a :class:`Shard` of the
blocks, and the default number of decode workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...config import JungleConfig
from ...errors import InputError
from ...runtime import available_cores
from ..models.encoders import EncoderConfig
from ..video.crops import CropConfig
from ..video.sampling import Sampling, parse_sampling
from .crops import BoxesConfig

__all__ = ["FeaturizeConfig", "Shard", "default_workers"]


class FeaturizeConfig(JungleConfig):
    """What to compute and how to run it.

    Attributes:
        encoders: the encoders; each writes its own feature set (named by its alias).
        frames: frame sampling, as parsed by :func:`jungle.features.video.sampling.parse_sampling`.
        batch_size: frames per forward pass (None: 32 on the CPU, 256 on a GPU, where 256 runs lite0
            2.3x faster than 32: 14,200 against 6,100 frames/s on an H100, ``bench/encode.py``).
        workers: decode worker processes (0: decode in this process; None: one per 2 CPU cores, at
            least 1; with a CUDA device, all cores but one).
        block: videos per Zarr chunk, the unit of work, resume and sharding (new sets only).
        device: "cpu" or "cuda" (mixed precision, channels-last).
        torch_threads: intra-op threads of the forward pass (None: all cores).
        decode_threads: threads per decoding video (``read_frames``' ``threads``; 0: all cores, with the
            stretches after different keyframes decoded side by side; None: 1 per worker process when
            there are workers, which then decode videos side by side, else 0).
        backend: who runs the encoders' forward pass (:mod:`jungle.features.models.backends`): None picks
            the fastest installed CPU backend that passes its check against PyTorch (PyTorch on a GPU).
        precision: "fp32", or "int8" (OpenVINO/ONNX Runtime, calibrated on the workspace's own frames).
        boxes: how boxes are found (detector and motion, :class:`~.crops.BoxesConfig`); None: no
            boxes and no crops (whole frames only).
        crops: crops around the boxes, embedded by every encoder into ``crops_<encoder>``; None: none.
    """

    encoders: tuple[EncoderConfig, ...] = (EncoderConfig(),)
    frames: str = "uniform:32"
    batch_size: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=0)
    block: int = Field(default=64, ge=1)
    device: str = "cpu"
    torch_threads: int | None = Field(default=None, ge=1)
    decode_threads: int | None = Field(default=None, ge=0)
    backend: Literal["torch", "openvino", "onnxruntime"] | None = None
    precision: Literal["fp32", "int8"] = "fp32"
    boxes: BoxesConfig | None = BoxesConfig()
    crops: CropConfig | None = CropConfig()

    @model_validator(mode="after")
    def _crops_need_boxes(self):
        if self.crops is not None and self.boxes is None:
            raise ValueError("crops are cut around boxes: keep boxes on, or turn crops off too")
        return self

    @field_validator("frames")
    @classmethod
    def _parseable(cls, value: str) -> str:
        return parse_sampling(value).spec()

    @field_validator("encoders")
    @classmethod
    def _distinct_names(cls, value):
        names = [e.feature_set_name() for e in value]
        if not value or len(set(names)) != len(names):
            raise ValueError(f"give at least one encoder, each with its own feature-set name (got {names})")
        return value

    @property
    def sampling(self) -> Sampling:
        return parse_sampling(self.frames)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as in ``--shard 3/8``): every count-th block."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            index, count = (int(p) for p in text.split("/"))
        except ValueError:
            raise InputError(f"shard {text!r} is not I/N, e.g. 3/8 (the 3rd of 8 shards)") from None
        if not 1 <= index <= count:
            raise InputError(f"shard {text!r}: I must be between 1 and N")
        return cls(index, count)

    def owns(self, block_number: int) -> bool:
        return block_number % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def default_workers(device: str = "cpu", cores: int | None = None) -> int:
    """Decode processes: one per 2 cores when the forward pass shares the CPU; on a GPU, which
    leaves the cores to decoding (the bottleneck there), all but one (the one that feeds the GPU)."""
    cores = cores or available_cores()
    return max(1, cores - 1) if device.startswith("cuda") else max(1, cores // 2)
