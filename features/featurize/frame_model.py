"""The per-frame model interface of the featurize runner (:class:`FrameModel`: an encoder, a backend
encoder, the detector), its picklable summary (:class:`ModelSpec`) and the frame size to decode at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

__all__ = ["FrameModel", "ModelSpec", "decode_size"]


class FrameModel(Protocol):
    """What the runner needs from a per-frame model (an :class:`~jungle.features.models.encoders.Encoder`, a detector).

    ``input_size``: the square side it takes (or give ``frame_size`` (width, height) instead, see
    :func:`decode_size`); ``set_name``: the frame-level feature set it writes; ``output_specs``:
    {array: (per-frame trailing shape, dtype)}; ``encode``: (n, H, W, 3) uint8 RGB frames to
    {array: (n, ...)}; ``describe``: its lineage (goes into the set's config and key);
    ``registry_meta``: the ``feature_sets`` columns it fills (encoder, weights_sha256, input_size, dims, ...).
    """

    input_size: int
    #: (width, height) it takes; None: ``input_size`` square (or, with ``native_frames``, any size).
    frame_size: tuple[int, int] | None
    #: it wants frames at their coded size (see :func:`decode_size`).
    native_frames: bool

    @property
    def set_name(self) -> str: ...

    def output_specs(self) -> dict[str, tuple[tuple[int, ...], str]]: ...

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]: ...

    def describe(self) -> dict: ...

    def registry_meta(self) -> dict: ...


@dataclass(frozen=True)
class ModelSpec:
    """What planning needs to know of a per-frame model, without the model (small, picklable).

    Attributes:
        set_name, outputs, description, registry: the model's ``set_name``, ``output_specs()``,
            ``describe()`` and ``registry_meta()``.
        frame_size: (width, height) it takes.
        native_frames: it wants frames at their coded size (see :func:`decode_size`).
        view: what of each video the set holds: ``frames`` (the sampled frames), ``crops`` (the
            crops around boxes) or ``boxes`` (the boxes themselves, no model).
        slots: the set's frame slots (None: the sampling's).
    """

    set_name: str
    outputs: dict
    description: dict
    registry: dict
    frame_size: tuple[int, int] | None
    native_frames: bool = False
    view: str = "frames"
    slots: int | None = None

    @classmethod
    def of(cls, model: FrameModel) -> "ModelSpec":
        size = model.frame_size or (model.input_size, model.input_size)
        return cls(model.set_name, model.output_specs(), model.describe(), model.registry_meta(), tuple(size),
                   model.native_frames)


def decode_size(models: Sequence[FrameModel | ModelSpec]) -> tuple[int, int] | None:
    """(width, height) to decode frames at for all ``models`` at once: the largest any of them takes.

    A model says what it takes with ``frame_size`` (width, height), else ``input_size`` (square);
    a model given larger frames resizes them itself (an :class:`~jungle.features.models.encoders.Encoder`
    does, with antialiasing). None (the coded size) when any model sets ``native_frames`` (the
    detector keeps the aspect ratio and crops the timestamp bar itself).
    """
    if any(m.native_frames for m in models):
        return None
    sizes = [tuple(m.frame_size or (m.input_size, m.input_size)) for m in models]
    if not sizes:
        return None
    return max(w for w, _ in sizes), max(h for _, h in sizes)
