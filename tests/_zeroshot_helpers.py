"""Real clips for the zero-shot tests and bench/zeroshot.py: stretches cut from real footage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["cut_stretch"]


def cut_stretch(source: Path, start: float, end: float, target: Path) -> Path:
    """Write the frames of ``source`` shown from ``start`` to ``end`` seconds as an H.264 MP4 at
    ``target`` (same size and frame rate): a real stretch of footage, e.g. after an animal has left."""
    import av

    from jungle.demo.generate import write_clip

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(stream))
                  if start <= i / fps < end]
    height, width = frames[0].shape[:2]
    even = [np.ascontiguousarray(f[: height - height % 2, : width - width % 2]) for f in frames]
    write_clip(target, even, width - width % 2, height - height % 2, round(fps), crf=20)
    return target
