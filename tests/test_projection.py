"""PCA of wide feature sets before the level-2 model: the projection itself, and `jungle stack --pca`
through to `jungle predict` on a real workspace."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from sklearn.decomposition import PCA
from typer.testing import CliRunner

from _stack_helpers import make_stack_workspace, write_set
from jungle.cli import app
from jungle.meta.level2 import auto_max_bin
from jungle.meta.metrics import competition_log_loss
from jungle.meta.projection import Projection, fit_projection

runner = CliRunner()


def _wide_block(rng, n: int, columns: int, rank: int) -> np.ndarray:
    """``rank`` strong directions plus small noise."""
    return (rng.normal(size=(n, rank)) * np.arange(rank, 0, -1)) @ rng.normal(size=(rank, columns)) \
        + 0.01 * rng.normal(size=(n, columns))


def test_projection_replaces_only_wide_sets_and_matches_sklearn_pca(tmp_path):
    rng = np.random.default_rng(0)
    wide = _wide_block(rng, 200, 1100, rank=4)
    narrow = rng.normal(size=(200, 3))
    X = np.hstack([narrow, wide]).astype(np.float32)
    columns = [f"meta.m{i}" for i in range(3)] + [f"emb.d{i}" for i in range(1100)]

    projection = fit_projection(X, columns, components=4, min_columns=1024)
    assert [p.name for p in projection.sets] == ["emb"]
    assert projection.output_columns == ["meta.m0", "meta.m1", "meta.m2", "emb.pc0", "emb.pc1", "emb.pc2", "emb.pc3"]
    assert projection.summary()["emb"]["explained_variance"] > 0.99  # rank 4 data, 4 axes

    out = projection.transform(X)
    assert out.shape == (200, 7) and out.dtype == np.float32
    assert np.array_equal(out[:, :3], X[:, :3])  # narrow set passes through untouched
    reference = PCA(4).fit_transform(X[:, 3:].astype(np.float64))
    for k in range(4):  # same axes up to sign
        sign = np.sign(np.dot(out[:, 3 + k], reference[:, k]))
        np.testing.assert_allclose(out[:, 3 + k], sign * reference[:, k], rtol=1e-3, atol=1e-2)

    # A video lacking the whole set stays "missing"; a missing entry is filled with its column mean.
    Z = X[:2].copy()
    Z[0, 3:] = np.nan
    Z[1, 10] = np.nan
    z = projection.transform(Z)
    assert np.isnan(z[0, 3:]).all() and not np.isnan(z[1]).any()
    filled = X[1:2].copy()
    filled[0, 10] = projection.sets[0].mean[7]
    np.testing.assert_allclose(z[1], projection.transform(filled)[0], rtol=1e-6)

    projection.save(tmp_path / "p.npz")
    again = Projection.load(tmp_path / "p.npz")
    assert again.output_columns == projection.output_columns
    assert np.array_equal(again.transform(X), out)


def test_projection_keeps_sets_narrower_than_the_threshold_and_rejects_zero_components():
    X = np.random.default_rng(1).normal(size=(50, 30)).astype(np.float32)
    columns = [f"a.c{i}" for i in range(30)]
    projection = fit_projection(X, columns, components=5, min_columns=31)
    assert projection.sets == [] and np.array_equal(projection.transform(X), X)
    with pytest.raises(ValueError, match="at least 1"):
        fit_projection(X, columns, components=0)


def test_auto_max_bin_grows_with_rows_up_to_256():
    assert auto_max_bin(320) == 32 and auto_max_bin(1000) == 64 and auto_max_bin(2048) == 256
    assert auto_max_bin(10**6) == 256 and auto_max_bin(0) == 32


@pytest.mark.slow  # a tuned stack, then predict (~5 s)
def test_stack_with_pca_saves_the_projection_and_predict_applies_it(tmp_path):
    sw = make_stack_workspace(tmp_path / "ws", n_labelled=200, n_unlabelled=20)
    ws = sw.workspace
    rng = np.random.default_rng(3)
    with_ids = sw.labelled + sw.unlabelled
    n = len(with_ids)
    # A wide "embedding" set: the hidden class is in a low-rank part of 1,100 noisy columns.
    hidden = np.zeros((n, len(sw.classes)))
    hidden[: len(sw.labelled)] = sw.Y
    loadings = rng.normal(size=(len(sw.classes), 1100))
    wide = 1.5 * hidden @ loadings + rng.normal(size=(n, 1100))
    write_set(ws, "emb_wide", {"test": 1}, pl.DataFrame({"video_id": with_ids, **{
        f"d{j}": wide[:, j].astype(np.float32) for j in range(1100)}}))

    out = runner.invoke(app, ["stack", "-w", str(ws.root), "--features", "meta,emb_wide", "--pca", "8",
                              "--trials", "1", "--max-rounds", "40", "--early-stopping", "5", "--threads", "1"])
    assert out.exit_code == 0, out.output
    assert "(16 after PCA of emb_wide)" in out.output  # meta's 8 numeric columns kept, 8 axes of 1,100
    model_id = (ws.models_dir / "latest").read_text().strip()
    folder = ws.models_dir / model_id
    manifest = json.loads((folder / "manifest.json").read_text())
    member = manifest["members"][0]
    assert member["projection"]["emb_wide"]["components"] == 8
    assert member["projection"]["emb_wide"]["columns"] == 1100
    assert member["projection_file"] == "member-0-projection.npz" and (folder / member["projection_file"]).exists()
    assert manifest["config"]["pca"] == 8 and member["params"]["max_bin"] == auto_max_bin(200)
    assert len(member["columns"]) > 1100  # the manifest keeps the input columns predict must build
    prior = competition_log_loss(sw.Y, np.tile(sw.Y.mean(axis=0), (len(sw.Y), 1)))
    assert manifest["metrics"]["log_loss"] < 0.8 * prior  # the class survived the projection

    # predict rebuilds the 1,100+ input columns and projects them: the booster sees only 16.
    csv_path = tmp_path / "sub.csv"
    out = runner.invoke(app, ["predict", "-w", str(ws.root), "--videos", "labelled", "--out", str(csv_path)])
    assert out.exit_code == 0, out.output
    sub = pl.read_csv(csv_path)
    P = sub.select(list(sw.classes)).to_numpy()
    order = {f"clip{i:05d}.mp4": i for i in range(len(sw.labelled))}
    Y = sw.Y[[order[f] for f in sub["filename"]]]
    assert competition_log_loss(Y, P) < 0.8 * prior

    report = runner.invoke(app, ["report", "-w", str(ws.root)])
    assert report.exit_code == 0, report.output
