"""Featurize on a Dask cluster: shards of chunk-aligned video blocks as Dask tasks.

``featurize_on_dask`` splits the workspace's videos into ``n`` shards (``Shard(i, n)`` of
:mod:`jungle.features.featurize.runner`: every n-th chunk-aligned block) and submits one Dask task per
shard. Each task runs the library's :func:`~jungle.features.featurize.runner.featurize` for its shard
inside a worker: it decodes and encodes its videos there (on the worker's GPU with
``device="cuda"``) and writes its own Zarr chunks and block markers. A task whose worker dies is
rescheduled by Dask (up to ``distributed.scheduler.allowed-failures`` times) and a task that
raises is retried (``retries``); a retried shard resumes from the markers of the blocks it
finished, so the store ends complete and consistent. Finally the client folds the markers into
``feature_rows`` (:func:`~jungle.features.featurize.runner.reconcile`).

DuckDB stays with the client: one task first loads the encoders on a worker (so that their
lineage, e.g. float16 autocast on a GPU, is the workers') and returns their
:class:`~jungle.features.featurize.runner.ModelSpec`; the client plans the run
(:func:`~jungle.features.featurize.runner.plan`: registers the sets, gives the videos rows, sizes the Zarr
groups) and sends each shard task only its part of the plan (its videos' rows and paths). Workers
read videos and write Zarr chunks and marker files; they never open the database, so it may sit on
the client's local disk. What the workers need: the workspace's ``features.zarr`` and the video
files at the same absolute paths as the client (a shared filesystem), and jungle installed.

Run settings inside a task: ``torch_threads`` defaults to 1 (one Dask thread runs one task, so a
worker with N threads runs N shards at once), and decoding happens in the task's own process when
the Dask worker is a daemon process (Dask's default; daemons cannot start the decode pool).
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ...errors import EnvironmentProblem, JungleError
from ...progress import progress_bar
from ...runtime import available_cores
from ...store.db import connect
from ...store.videos import read_videos
from .config import FeaturizeConfig, Shard
from .frame_model import ModelSpec
from .plan import FeaturizePlan, plan, reconcile
from .runner import FeaturizeSummary, SetSummary, featurize, resolve_config, run_specs

__all__ = ["DaskUnavailable", "ShardsFailed", "DaskFeaturizeSummary", "client_for", "worker_threads",
           "featurize_on_dask", "featurize_shard", "model_specs", "shard_count"]

LOCAL = "local"


class DaskUnavailable(EnvironmentProblem):
    """The Dask scheduler cannot be reached or the local cluster cannot start."""


class ShardsFailed(JungleError):
    """Some shards failed on every attempt; what the others finished is saved."""


@dataclass
class DaskFeaturizeSummary(FeaturizeSummary):
    """A :class:`FeaturizeSummary` over all shards, plus where and how they ran.

    ``seconds`` is the client's wall-clock time; ``decode_seconds`` and ``encode_seconds`` are
    summed over tasks. ``processed`` counts only the attempts that finished (a retried shard
    reports just the blocks its last attempt did).
    """

    address: str = ""
    workers: int = 0
    threads: int = 0
    shards: int = 0


@contextmanager
def client_for(address, n_workers: int | None = None, threads_per_worker: int = 1, timeout: str = "20s") -> Iterator:
    """A ``distributed.Client`` for ``address``, closed (with any cluster it started) on exit.

    Args:
        address: a scheduler address (``tcp://host:8786``), ``"local"`` (start a
            ``distributed.LocalCluster`` of worker processes here) or an existing ``Client``
            (yielded as it is and left open).
        n_workers: worker processes of a local cluster (None: one per CPU core).
        threads_per_worker: threads of each local worker.
        timeout: how long to try to reach a scheduler.

    Raises:
        DaskUnavailable: the scheduler does not answer, or the local cluster does not start.
    """
    from distributed import Client, LocalCluster

    if isinstance(address, Client):
        yield address
        return
    cluster = None
    try:
        if address == LOCAL:
            cluster = LocalCluster(n_workers=n_workers or available_cores(), threads_per_worker=threads_per_worker,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: not an address (no port, no host)
        if cluster is not None:
            cluster.close()
        where = "a local Dask cluster" if address == LOCAL else f"the Dask scheduler at {address}"
        raise DaskUnavailable(
            f"cannot reach {where}: {exc}. Start one with `dask scheduler` and `dask worker ADDRESS` "
            "(see the README's Dask section), or use --dask local.") from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def worker_threads(client, timeout: float = 60.0) -> dict[str, int]:
    """{worker address: threads} of the cluster, waiting up to ``timeout`` s for a first worker."""
    workers = client.scheduler_info()["workers"]
    if not workers:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError as exc:
            address = client.scheduler.address
            raise DaskUnavailable(f"the Dask scheduler at {address} has no worker after {timeout:.0f} s. "
                                  f"Start some with `dask worker {address}`.") from exc
        workers = client.scheduler_info()["workers"]
    return {address: info["nthreads"] for address, info in workers.items()}


def shard_count(n_videos: int, block: int, threads: int) -> int:
    """Default shards: two per worker thread (a lost worker's shard is redone while the others
    work), at most one per block, at least one."""
    return max(1, min(math.ceil(n_videos / block), 2 * threads))


def _task_config(config: FeaturizeConfig) -> FeaturizeConfig:
    """Run settings of a shard task: one torch thread per task unless set; decode in the task's
    process when this Dask worker is a daemon (it cannot start decode processes)."""
    import multiprocessing

    update = {"torch_threads": config.torch_threads or 1}
    if multiprocessing.current_process().daemon:
        update["workers"] = 0
    return config.model_copy(update=update)


def model_specs(config: FeaturizeConfig, workspace=None) -> list[ModelSpec]:
    """One Dask task: load ``config``'s encoders (and detector) here (on ``config.device``, on their backend:
    the lineage the plan records and the shard tasks follow) and describe the sets they write.
    ``workspace``: int8 calibration frames. ``config`` must be resolved (``runner.resolve_config``)."""
    return run_specs(workspace, config)


def featurize_shard(workspace, config: FeaturizeConfig, shard: str,
                    work: FeaturizePlan | None = None) -> FeaturizeSummary:
    """One Dask task: featurize the blocks of ``shard`` ("I/N") in this worker, without a progress bar.

    With ``work`` (the client's plan for this shard) the task never opens DuckDB and leaves the
    markers for the client to fold in; without it, it plans and records itself.
    """
    return featurize(workspace, _task_config(config), Shard.parse(shard), progress=False, work=work,
                     record=work is None)


def _count_videos(workspace) -> int:
    with connect(workspace, read_only=True) as con:
        return len(read_videos(con, ("video_id",), ok_only=True))


def _merge(work: FeaturizePlan, results: list[FeaturizeSummary], into: DaskFeaturizeSummary) -> None:
    sets = {(p.fs.name, p.fs.version): SetSummary(p.fs.name, p.fs.version, p.n_rows, created=p.created)
            for p in work.sets}
    for result in results:
        into.videos += result.videos
        into.frames += result.frames
        into.decode_seconds += result.decode_seconds
        into.encode_seconds += result.encode_seconds
        into.encoded += result.encoded
        into.detected += result.detected
        for step, seconds in result.stage_seconds.items():
            into.stage_seconds[step] = into.stage_seconds.get(step, 0.0) + seconds
        into.failures.extend(result.failures)
        for part in result.sets:
            merged = sets[(part.name, part.version)]
            merged.processed += part.processed
            merged.errors += part.errors
            merged.frames += part.frames
    into.sets = list(sets.values())


def _reconcile_sets(workspace, work: FeaturizePlan, sets: list[SetSummary]) -> None:
    """Fold every set's markers into DuckDB from this (the client) process; mark what is complete."""
    for planned, part in zip(work.sets, sets, strict=True):
        done, errors, pending = reconcile(workspace, planned.fs)
        part.rows = done + errors + pending
        part.complete = pending == 0 and part.rows > 0


def featurize_on_dask(workspace, config: FeaturizeConfig | None = None, address=LOCAL,
                      n_shards: int | None = None, *, retries: int = 2, progress: bool = True,
                      n_workers: int | None = None) -> DaskFeaturizeSummary:
    """Featurize every ingested video of ``workspace`` on a Dask cluster (see the module docstring).

    Args:
        workspace: a :class:`jungle.store.workspace.Workspace` on a filesystem the workers share.
        config: what to compute (default: ``lite0``, ``uniform:32``, CPU); ``device="cuda"`` makes
            every worker encode on its GPU.
        address: ``tcp://scheduler:8786``, ``"local"`` (a ``LocalCluster`` of ``n_workers``
            processes, one thread each) or a ``distributed.Client``.
        n_shards: tasks (None: :func:`shard_count`).
        retries: extra attempts of a shard that raised.
        progress: a bar of finished shards on a terminal.
        n_workers: worker processes of a local cluster (None: one per CPU core).

    Returns:
        A :class:`DaskFeaturizeSummary`; its sets are reconciled (``complete`` when every row is done).

    Raises:
        DaskUnavailable: no cluster at ``address``.
        ShardsFailed: some shards failed on every attempt (the rest is saved; run again to finish).
        WorkspaceMissing: the workspace has no database (run ``jungle ingest`` first).
    """
    from distributed import as_completed

    config, notes = resolve_config(config or FeaturizeConfig())  # decided once, here: every shard runs the same
    started = time.perf_counter()
    n_videos = _count_videos(workspace)
    with client_for(address, n_workers=n_workers) as client:
        workers = worker_threads(client)
        threads = sum(workers.values())
        count = n_shards or shard_count(n_videos, config.block, threads)
        summary = DaskFeaturizeSummary([], address=address if isinstance(address, str) else client.scheduler.address,
                                       workers=len(workers), threads=threads, shards=count)
        run = f"{os.getpid()}-{time.time_ns()}"
        loading = client.submit(model_specs, config, workspace, retries=retries, pure=False, key=f"load-encoders-{run}")
        try:
            specs = loading.result()
        except Exception as exc:
            raise ShardsFailed(f"featurize on Dask ({summary.address}): the encoders could not be loaded on a worker "
                               f"({type(exc).__name__}: {exc}). Nothing was registered or computed; fix the cause "
                               "and run the same command again.") from exc
        work = plan(workspace, specs, config.sampling, config.block)
        futures = {client.submit(featurize_shard, workspace, config, str(shard), work.for_shard(shard), retries=retries,
                                 pure=False, key=f"featurize-{shard.index}of{count}-{run}"): shard
                   for shard in (Shard(i, count) for i in range(1, count + 1))}
        results, failed = [], []
        with progress_bar(count, f"featurize on {len(workers)} Dask workers", unit="shard", show=progress) as bar:
            for future in as_completed(futures):
                if future.status == "finished":
                    results.append(future.result())
                else:
                    error = future.exception()
                    failed.append((futures[future].index, str(futures[future]), f"{type(error).__name__}: {error}"))
                bar.update(1)
    _merge(work, results, summary)
    _reconcile_sets(workspace, work, summary.sets)
    summary.notes = notes
    summary.seconds = time.perf_counter() - started
    if failed:
        raise ShardsFailed(f"featurize on Dask ({summary.address}): {len(failed)} of {count} shards failed on every "
                           f"attempt ({_failure_detail(failed)}). The blocks that finished are saved; run the same "
                           "command again to do the rest.")
    return summary


def _failure_detail(failed: list[tuple[int, str, str]]) -> str:
    """"shards 1/4, 3/4: ERROR; shard 2/4: OTHER ERROR" (shards grouped by error, in shard order)."""
    by_error: dict[str, list[str]] = {}
    for _, shard, error in sorted(failed):
        by_error.setdefault(error, []).append(shard)
    return "; ".join(f"shard{'s' * (len(shards) > 1)} {', '.join(shards)}: {error}"
                     for error, shards in by_error.items())
