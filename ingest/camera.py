"""Camera statistics: cheap per-video signals computed from a few sampled frames.

The Pri-matrix winners found that file size, resolution and "blank videos are smaller and
darker" are among the strongest cheap signals. These functions turn a handful of decoded frames
into numbers a model can use next to the container metadata. All of them are pure: they take a
``(n, H, W, 3)`` uint8 RGB array (as :func:`jungle.features.video.decode.read_frames` returns) and
return plain floats; the ingest runner does the decoding.

Definitions (all on a 0..1 scale so that they do not depend on the sampled frame size):

- **brightness**: mean luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) over all pixels / 255.
- **colourfulness**: Hasler & Suesstrunk (2003) colourfulness M = sigma_rgyb + 0.3 mu_rgyb on
  the opponent channels rg = R - G and yb = (R + G) / 2 - B, per frame, averaged, / 255.
  Natural colour daylight scenes give ~0.05-0.4; infrared night footage (R = G = B) ~0.
- **is_night**: the frames are grayscale: 90 % of pixels have a chroma (max - min of R, G, B)
  / 255 below ``night_threshold`` (default 0.05). Camera traps switch to infrared at night and
  record without colour, so "grayscale" is the practical night flag. A percentile, not the mean,
  so that a coloured timestamp overlay or a faint tint of the infrared image does not count as
  colour (on the shared clips: infrared 0.0-0.03, daylight 0.08-0.29).
- **motion_energy**: mean absolute luma difference between consecutive sampled frames / 255
  (None with fewer than two frames). Sampled frames are seconds apart, so this measures how much
  the scene changes over the clip: an animal passing, vegetation moving, light changing.
- **bytes_per_second**: file bytes / duration; encoders spend bytes on change, so blank clips
  are cheaper per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CameraStats",
    "NIGHT_THRESHOLD",
    "brightness",
    "colourfulness",
    "chroma_p90",
    "is_grayscale",
    "motion_energy",
    "camera_stats",
    "bytes_per_second",
    "sample_indices",
]

#: 90th-percentile pixel chroma (0..1) below which frames count as grayscale / infrared.
NIGHT_THRESHOLD = 0.05

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class CameraStats:
    """Statistics of the sampled frames of one video (see the module docstring for definitions)."""

    brightness: float
    is_night: bool
    colourfulness: float
    motion_energy: float | None
    frames: int


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, H, W, 3) RGB array, got shape {images.shape}")
    return images


def _luma(images: np.ndarray) -> np.ndarray:
    """(n, H, W) float32 luma in 0..255."""
    return images.astype(np.float32) @ _LUMA


def brightness(images: np.ndarray) -> float:
    """Mean luma of all pixels of all frames, 0 (black) .. 1 (white)."""
    return float(_luma(_check(images)).mean() / 255.0)


def colourfulness(images: np.ndarray) -> float:
    """Hasler & Suesstrunk colourfulness, averaged over frames, 0 (grayscale) .. ~1."""
    rgb = _check(images).astype(np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    axes = (1, 2)
    sigma = np.sqrt(rg.std(axis=axes) ** 2 + yb.std(axis=axes) ** 2)
    mu = np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2)
    return float((sigma + 0.3 * mu).mean() / 255.0)


def chroma_p90(images: np.ndarray) -> float:
    """90th percentile over all pixels of chroma = (max - min of R, G, B) / 255."""
    images = _check(images)
    chroma = images.max(axis=-1).astype(np.int16) - images.min(axis=-1)
    return float(np.percentile(chroma, 90) / 255.0)


def is_grayscale(images: np.ndarray, threshold: float = NIGHT_THRESHOLD) -> bool:
    """True when the frames carry (almost) no colour: infrared night footage."""
    return chroma_p90(images) < threshold


def motion_energy(images: np.ndarray) -> float | None:
    """Mean absolute luma change between consecutive frames, 0..1; None for a single frame."""
    luma = _luma(_check(images))
    if len(luma) < 2:
        return None
    return float(np.abs(np.diff(luma, axis=0)).mean() / 255.0)


def camera_stats(images: np.ndarray, night_threshold: float = NIGHT_THRESHOLD) -> CameraStats:
    """All statistics of one video's sampled frames.

    Args:
        images: (n, H, W, 3) uint8 RGB frames in time order, n >= 1.
        night_threshold: 90th-percentile chroma below which the video counts as night / infrared.
    """
    images = _check(images)
    return CameraStats(
        brightness=brightness(images),
        is_night=is_grayscale(images, night_threshold),
        colourfulness=colourfulness(images),
        motion_energy=motion_energy(images),
        frames=int(images.shape[0]),
    )


def bytes_per_second(n_bytes: int | None, duration: float | None) -> float | None:
    """File bytes per second of video; None when either is unknown or the duration is not positive."""
    if n_bytes is None or duration is None or not duration > 0:
        return None
    return float(n_bytes) / float(duration)


def sample_indices(n_frames: int, count: int) -> list[int]:
    """``count`` evenly spaced frame indices over ``n_frames`` frames, first and last included."""
    if n_frames <= 0 or count <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, n_frames - 1, num=min(count, n_frames))})
