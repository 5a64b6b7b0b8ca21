"""What every stage shares about the process it runs in: how many cores it may use, its worker
processes, how many threads torch runs, and library verbosity. One place, so that every stage
starts workers the same way and no stage changes a process-wide setting and leaves it changed
(each setting here is scoped and restored).
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver, resource_tracker
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from .errors import InputError
from .interrupts import deferred_interrupts, ignore_interrupts

__all__ = ["available_cores", "is_loopback", "loopback_host_headers", "WorkerPool", "torch_threads", "quiet_optuna"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only ever means this machine: the local servers
    (dashboard, review page) listen beyond it only when asked. A name counts as loopback when every
    address it resolves to is a loopback address.

    Raises:
        InputError: the name does not resolve.
    """
    import ipaddress
    import socket

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # not an address: a name such as localhost
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError, ValueError) as exc:  # UnicodeError: a label too long for a name
        reason = getattr(exc, "strerror", None) or "not a host name"
        raise InputError(f"--host {host[:80]} does not resolve ({reason}); "
                         "leave --host out to listen on 127.0.0.1.") from None
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def loopback_host_headers(host: str, port: int) -> frozenset[str]:
    """The ``Host`` headers a local server on loopback ``host:port`` answers: its own address and the
    names of this machine, with the port. Any other (a name an attacker's DNS points at 127.0.0.1,
    i.e. DNS rebinding) is refused by the dashboard and the review page."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return frozenset(f"{name}:{port}" for name in (shown, "127.0.0.1", "localhost", "[::1]"))


def _start_worker(lifeline, niceness: int, single_threaded: bool) -> None:
    """Initializer of every jungle worker process.

    - Ctrl-C is the parent's to handle (it stops the pool and keeps what is finished): ignored here.
    - The worker leaves when the parent dies, even by SIGKILL: the parent holds the only writing
      end of ``lifeline``, so end-of-file there means nobody will collect the results.
    - ``niceness`` > 0 yields the CPU to the parent's own work (e.g. the forward pass).
    - ``single_threaded``: one BLAS/OpenMP/torch thread per worker (workers side by side already
      use the cores; set through ``OMP_NUM_THREADS``, read when torch is first imported).
    """
    import sys
    import threading

    ignore_interrupts()
    if single_threaded:
        os.environ["OMP_NUM_THREADS"] = "1"
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
    if niceness:
        os.nice(niceness)

    def watch() -> None:
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="jungle-lifeline", daemon=True).start()


def _ready() -> bool:
    return True


class WorkerPool:
    """Worker processes, started the one way every stage starts them.

    ``forkserver`` where the platform has it (clean workers; ``preload`` modules are imported once
    in the server, so each worker starts fast), else ``spawn``; never ``fork`` (threads and open
    DuckDB/Zarr handles of the parent must not be copied). All workers are started, and running,
    when the constructor returns, with Ctrl-C held back meanwhile: a Ctrl-C never catches a worker
    half-started. Workers ignore Ctrl-C, die with the parent and, unless told otherwise, run
    single-threaded (see :func:`_start_worker`). A crashed worker breaks the pool
    (``BrokenProcessPool`` from ``result()``); the caller decides how to retry, e.g. the one task
    alone in a fresh pool, so that the culprit is known.
    """

    def __init__(self, workers: int, preload: Sequence[str] = (), niceness: int = 0,
                 single_threaded: bool = True):
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(preload))
        else:
            context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._reader, self._writer = context.Pipe(duplex=False)
        # The resource tracker's start unblocks SIGINT when it is done, so it must not start inside
        # the block below (it would open the block up to Ctrl-C again).
        resource_tracker.ensure_running()
        with deferred_interrupts():  # every worker starts whole (see deferred_interrupts), then Ctrl-C lands
            if context.get_start_method() == "forkserver":
                forkserver.ensure_running()
            self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                                 initargs=(self._reader, niceness, single_threaded))
            for ready in [self._executor.submit(_ready) for _ in range(workers)]:
                ready.result()

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def close(self, wait: bool = True) -> None:
        """Stop the workers (queued tasks are cancelled); safe to call twice."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None
            self._writer.close()
            self._reader.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
def quiet_optuna(errors_only: bool = False) -> Iterator[None]:
    """Run the block with Optuna logging only warnings (one line per trial otherwise), or only
    errors (a trial stopped by Ctrl-C is a warning with a traceback), then restore."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR if errors_only else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)

