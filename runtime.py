"""What every stage shares about the process it runs in: how many cores it may use, how many
threads torch runs, and library verbosity. One place, so that no stage changes a process-wide
setting and leaves it changed (each setting here is scoped and restored).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

__all__ = ["available_cores", "torch_threads", "quiet_optuna"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: unchanged), then restore the number."""
    import torch

    previous = torch.get_num_threads()
    change = n is not None and n != previous
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(previous)


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Run the block with Optuna logging only warnings (one line per trial otherwise), then restore."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)

