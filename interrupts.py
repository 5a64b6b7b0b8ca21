"""Ctrl-C in runs that use worker processes: the parent stops the run, workers stay silent.

A terminal sends SIGINT to every process of its foreground group, so a run's worker processes get
Ctrl-C too; left alone, each prints a ``KeyboardInterrupt`` traceback from whatever it was doing.
Workers therefore ignore SIGINT (:func:`ignore_interrupts`, as their initializer) and the parent
alone decides: it stops its pool, keeps what is finished and raises
:class:`~jungle.errors.Interrupted` saying how far it got. A spawned worker imports for a while
before its initializer runs; :func:`deferred_interrupts` closes that gap by starting the
processes with SIGINT blocked, and holding the parent's Ctrl-C until they have started.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["ignore_interrupts", "deferred_interrupts", "ctrl_c_within"]


def ignore_interrupts() -> None:
    """Ignore Ctrl-C in this (worker) process: its parent handles it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C back while the block runs; it is delivered (as ``KeyboardInterrupt``) when the
    block ends. For starting worker processes: a Ctrl-C in the middle of a start leaves a
    half-started worker the pool does not know of, which fails loudly once the parent is gone.

    Two things are needed: this process's SIGINT handler only records the signal meanwhile (any
    thread may receive it, e.g. one of DuckDB's, so blocking the signal in this thread alone is not
    enough), and the signal is blocked in this thread, so that processes it starts (exec'd fork
    servers, spawned workers) inherit it blocked and cannot die of it while they import. Outside the
    main thread the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


@contextmanager
def ctrl_c_within() -> Iterator[None]:
    """Around a library call that may fail *while* a Ctrl-C unwinds it: an error raised during the
    handling of a ``KeyboardInterrupt`` (a ``finally`` that reads a variable the interrupted line
    never set, as Optuna's trial runner does) is the Ctrl-C, and is raised as one."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        seen, cause = set(), exc.__context__ or exc.__cause__
        while cause is not None and id(cause) not in seen:
            if isinstance(cause, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            seen.add(id(cause))
            cause = cause.__context__ or cause.__cause__
        raise
