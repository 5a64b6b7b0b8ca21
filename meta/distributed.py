"""The level-2 model and its Optuna search on a Dask cluster.

* :class:`DaskLevel2Classifier`: :class:`~jungle.meta.level2.Level2Classifier` trained with
  ``xgboost.dask.train`` on Dask arrays of the same ``X``/``Y`` (row partitions spread over the
  workers), with the same booster parameters. The fitted booster is an ordinary XGBoost booster,
  so ``predict_proba``, ``save`` and ``load`` are the single-process ones (a Dask array given to
  ``predict_proba`` is predicted on the workers).

  Equality with the single-process model: XGBoost's distributed ``hist`` builds the same quantile
  cuts and the same trees (histograms are summed across workers), so without row subsampling
  (``subsample=1``) the probabilities equal the single-process ones to floating-point tolerance;
  column sampling is seeded identically on every worker. Row subsampling (``subsample < 1``) is
  drawn by each worker over its own rows, so the model is another draw of the same random
  procedure: equal in distribution, not in value.

* :func:`tune_on_dask`: the same search as :func:`jungle.meta.tuning.tune` with one tuning task
  per Dask worker, all running trials into one Optuna study in a shared RDB storage (created with
  ``load_if_exists``; each task calls ``study.optimize`` until the study holds ``cfg.trials``
  finished trials). Workers on other machines need a server storage (``postgresql://...``).

* :func:`client_for`: a ``distributed.Client`` for ``tcp://host:port`` or ``"local"``.

Inside ``with client_for(address):`` the client is Dask's default one, which the estimator uses
when ``fit`` is given no ``client``.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime import quiet_optuna
from ..features.featurize.distributed import DaskUnavailable, client_for, worker_threads
from .level2 import Level2Classifier
from .tuning import TuneConfig, TuneResult, run_trials, open_storage, study_result, tune

__all__ = ["DaskLevel2Classifier", "dask_rows", "dask_training_matrix", "tune_on_dask", "client_for",
           "DaskUnavailable"]


def _client(client=None):
    """``client``, else Dask's default client (the one ``client_for`` opened)."""
    if client is not None:
        return client
    from distributed import default_client

    try:
        return default_client()
    except ValueError as exc:
        raise DaskUnavailable("no Dask client: open one with `with client_for(address):` or pass client=") from exc


def dask_rows(client, array: np.ndarray, parts: int):
    """``array`` as a Dask array of ``parts`` row partitions scattered over the workers (or itself,
    when it already is a Dask array)."""
    import dask.array as da

    if isinstance(array, da.Array):
        return array
    array = np.asarray(array)
    bounds = np.linspace(0, len(array), min(parts, len(array)) + 1).astype(int)
    pieces = [array[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    futures = client.scatter(pieces)
    return da.concatenate([da.from_delayed(f, shape=p.shape, dtype=p.dtype) for f, p in zip(futures, pieces)])


def dask_training_matrix(client, X, Y: np.ndarray, mode: str, parts: int | None = None):
    """The ``xgboost.dask.DaskDMatrix`` of ``X`` with labels shaped for ``mode`` (as
    :func:`~jungle.meta.level2.training_matrix`), ``X`` split into ``parts`` row partitions
    (None: one per worker)."""
    import dask.array as da
    import xgboost.dask as dxgb

    label = np.asarray(Y).argmax(axis=1) if mode == "multiclass" else np.asarray(Y, dtype=np.float32)
    parts = parts or len(worker_threads(client))
    data = dask_rows(client, X, parts)
    labels = da.from_array(label, chunks=(data.chunks[0], *label.shape[1:])) if isinstance(X, da.Array) \
        else dask_rows(client, label, parts)
    return dxgb.DaskDMatrix(client, data, labels)


class DaskLevel2Classifier(Level2Classifier):
    """:class:`~jungle.meta.level2.Level2Classifier` trained with ``xgboost.dask`` (same parameters,
    same ``predict_proba``/``save``/``load``); see the module docstring for when results are equal.

    The booster's thread count on each worker is the worker's own (``n_jobs`` applies to local
    prediction only).
    """

    def fit(self, X, Y: np.ndarray, callbacks: list | None = None, client=None) -> "DaskLevel2Classifier":
        """Fit on features ``X`` (videos x features; NumPy or Dask array) and 0/1 labels ``Y``
        (videos x classes) on the Dask cluster of ``client`` (None: the default client)."""
        import xgboost.dask as dxgb

        client = _client(client)
        params, Y = self._start_fit(X, Y)
        params.pop("nthread", None)
        dtrain = dask_training_matrix(client, X, Y, self.mode_)
        trained = dxgb.train(client, params, dtrain, num_boost_round=self.n_estimators,
                             callbacks=callbacks or None, verbose_eval=False)
        self.booster_ = trained["booster"]
        return self

    def predict_proba(self, X):
        """Probabilities of every class, (videos, classes): NumPy for NumPy ``X``; for a Dask array,
        a Dask array predicted on the workers."""
        import dask.array as da

        if not isinstance(X, da.Array):
            return super().predict_proba(X)
        import xgboost.dask as dxgb

        return dxgb.inplace_predict(_client(), self.booster_, X).reshape(X.shape[0], self.n_classes_)


def _local_hosts() -> set[str]:
    hostname = socket.gethostname()
    try:
        addresses = set(socket.gethostbyname_ex(hostname)[2])
    except OSError:
        addresses = set()
    return {"127.0.0.1", "localhost", "::1", hostname, *addresses}


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0].strip("[]")


def _tuning_task(X, Y, folds, mode: str, base: dict, cfg: TuneConfig, study_name: str, storage: str,
                 seed: int) -> str:
    """One Dask task: run trials into the shared study with this worker's threads; return the worker."""
    from distributed import get_worker

    worker = get_worker()
    nthread = cfg.nthread or worker.state.nthreads
    run_trials(X, Y, folds, mode, {**base, "n_jobs": nthread}, cfg, study_name, storage, seed)
    return worker.address


def tune_on_dask(X: np.ndarray, Y: np.ndarray, folds: np.ndarray, mode: str, cfg: TuneConfig, storage: str,
                 study_name: str, base: dict | None = None, scratch: Path | None = None, *, client=None,
                 retries: int = 1) -> TuneResult:
    """:func:`~jungle.meta.tuning.tune` with the trials spread over the Dask workers.

    Same arguments and result as ``tune`` (``cfg.jobs`` and ``scratch`` are not used: there is one
    tuning task per worker, each with the worker's threads); ``client``: the cluster (None: the
    default client). With ``cfg.trials == 0`` the defaults are cross-validated here, as ``tune`` does.
    Trials run in parallel see each other's results in a timing-dependent order, so a parallel
    search is not bit-for-bit reproducible (as ``tune`` with ``jobs > 1``).

    Raises:
        ValueError: ``storage`` is a SQLite file and some workers are on other machines.
    """
    import optuna

    base = {"random_state": cfg.seed, **(base or {}), "label_mode": mode}
    if cfg.trials == 0:
        return tune(X, Y, folds, mode, cfg, storage, study_name, base=base, scratch=scratch)
    client = _client(client)
    workers = worker_threads(client)
    remote = sorted({_host(w) for w in workers} - _local_hosts())
    if storage.startswith("sqlite") and remote:
        raise InputError(
            f"the Optuna storage {storage} is a SQLite file on this machine, but Dask workers run on "
            f"{', '.join(remote)}. Give a storage every worker reaches, e.g. --storage postgresql://USER@HOST/jungle.")
    with quiet_optuna():
        optuna.create_study(study_name=study_name, storage=open_storage(storage), direction="minimize",
                            load_if_exists=True)
    data = [client.scatter(np.asarray(a), broadcast=True) for a in (X, Y, folds)]
    futures = [client.submit(_tuning_task, *data, mode, base, cfg, study_name, storage, cfg.seed + index,
                             workers=[address], allow_other_workers=True, retries=retries, pure=False)
               for index, address in enumerate(sorted(workers))]
    client.gather(futures)
    return study_result(study_name, storage, base)
