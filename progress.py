"""Progress bars, one way for every stage: on stderr, shown while stderr is a terminal, never with
``--quiet`` (commands pass ``show=not quiet``). Nothing else in the package builds a bar."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int | None, desc: str, unit: str = "video", show: bool = True) -> tqdm:
    """A bar of ``total`` steps (None: a counter) named ``desc``; use it as a context manager or
    close it. Hidden (every call still works) when ``show`` is False or stderr is not a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=not show or not sys.stderr.isatty())
