"""A real, small, learnable stacking workspace: videos, classes, labels, folds and video-level sets.

Rows go into a real DuckDB file through the store; feature sets are written through the
registry as Parquet. Every video has a hidden class; the ``meta`` set carries a weak
class-dependent signal (and a text column that stacking must leave out), ``hist_lite0`` a stronger
one, both with noise columns. Unlabelled videos (the "test" clips) get features too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pathlib import Path

import numpy as np
import polars as pl

from jungle.ingest.discover import video_id
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

CLASSES = ("blank", "chimpanzee", "duiker", "elephant")


@dataclass
class StackWorkspace:
    workspace: Workspace
    classes: tuple[str, ...]
    labelled: list[str]
    unlabelled: list[str]
    Y: np.ndarray  # labels of the labelled videos, in labelled order


def _video_id(i: int) -> str:
    return video_id(f"/data/cam/clip{i:05d}.mp4")


def _features(rng, hidden: np.ndarray, n_classes: int, strength: float, noise_cols: int, prefix: str) -> dict:
    cols = {}
    for c in range(n_classes):
        cols[f"{prefix}{c}"] = (strength * hidden[:, c] + rng.normal(size=len(hidden))).astype(np.float32)
    for j in range(noise_cols):
        cols[f"noise{j}"] = rng.normal(size=len(hidden)).astype(np.float32)
    return cols


def write_set(ws: Workspace, name: str, config: dict, frame: pl.DataFrame) -> registry.FeatureSet:
    """Register ``name`` with ``config`` and write ``frame`` as its video-level table."""
    with connect(ws) as con:
        fs, _ = registry.register(con, name, "video", config)
        return registry.write_video_table(ws, con, fs, frame)


def make_stack_workspace(root, n_labelled: int = 240, n_unlabelled: int = 30, classes=CLASSES,
                         multilabel: bool = False, folds: int = 4, seed: int = 0) -> StackWorkspace:
    """Build the workspace under ``root`` and return what the tests need to know about it."""
    rng = np.random.default_rng(seed)
    ws = Workspace.resolve(root)
    n = n_labelled + n_unlabelled
    n_classes = len(classes)
    prior = np.linspace(3, 1, n_classes)
    hidden = np.eye(n_classes)[rng.choice(n_classes, size=n, p=prior / prior.sum())]
    if multilabel:  # a third of the videos get a second class
        extra = rng.choice(n_classes, size=n)
        second = rng.random(n) < 0.33
        hidden[np.flatnonzero(second), extra[second]] = 1.0
    ids = [_video_id(i) for i in range(n)]
    labelled, unlabelled = ids[:n_labelled], ids[n_labelled:]
    now = datetime(2026, 11, 25, 12, 0, 0)
    class_rows = pl.DataFrame({"position": list(range(n_classes)), "class": list(classes)})
    video_rows = pl.DataFrame({
        "video_id": ids, "path": [f"/data/cam/clip{i:05d}.mp4" for i in range(n)],
        "relpath": [f"cam/clip{i:05d}.mp4" for i in range(n)], "filename": [f"clip{i:05d}.mp4" for i in range(n)],
        "site": ["cam"] * n, "bytes": [int(1e6 + i) for i in range(n)], "status": ["ok"] * n, "ingested_at": [now] * n,
    })
    label_rows = pl.DataFrame({
        "video_id": [v for v in labelled for _ in classes], "class": list(classes) * n_labelled,
        "value": hidden[:n_labelled].astype(np.int8).ravel(), "source": ["test"] * (n_labelled * n_classes),
    })
    fold_rows = pl.DataFrame({"scheme": ["default"] * n_labelled, "video_id": labelled,
                              "fold": [i % folds for i in range(n_labelled)]})
    with connect(ws) as con:
        for name, frame in (("class_rows", class_rows), ("video_rows", video_rows), ("label_rows", label_rows),
                            ("fold_rows", fold_rows)):
            con.register(name, frame)
        con.execute("INSERT INTO classes SELECT * FROM class_rows")
        con.execute("INSERT INTO videos (video_id, path, relpath, filename, site, bytes, status, ingested_at) "
                    "SELECT * FROM video_rows")
        con.execute("INSERT INTO labels SELECT * FROM label_rows")
        con.execute("INSERT INTO fold_schemes VALUES ('default', ?, NULL, ?, ?)", [folds, seed, now])
        con.execute("INSERT INTO folds SELECT * FROM fold_rows")
    meta = pl.DataFrame({"video_id": ids, **_features(rng, hidden, n_classes, 0.8, 3, "signal"),
                         "codec": ["h264"] * n, "is_night": rng.random(n) < 0.5})
    hist = pl.DataFrame({"video_id": ids, **_features(rng, hidden, n_classes, 1.6, 5, "p")})
    write_set(ws, "meta", {"columns": "meta", "seed": seed}, meta)
    write_set(ws, "hist_lite0", {"bins": 10, "seed": seed}, hist)
    return StackWorkspace(ws, tuple(classes), labelled, unlabelled, hidden[:n_labelled])


FAST = dict(max_rounds=60, early_stopping_rounds=5, nthread=1, prune_startup_trials=1, prune_interval=2)
"""Tuning settings small enough for tests: few rounds, one thread (the machine is shared)."""

def build_stacked_workspace(root: Path, trials: int = 4) -> tuple[StackWorkspace, object]:
    """A workspace at ``root`` with one saved stack (meta + hist_lite0, ``trials`` trials).

    The session fixture ``stacked`` (conftest.py) builds it once per test session; tests must not
    change that one: copy it (``shutil.copytree``) to change anything.
    """
    from jungle.meta.stack import StackConfig, stack
    from jungle.meta.tuning import TuneConfig

    sw = make_stack_workspace(root)
    result = stack(sw.workspace, StackConfig(members=(("meta", "hist_lite0"),), tune=TuneConfig(trials=trials, **FAST)))
    return sw, result
