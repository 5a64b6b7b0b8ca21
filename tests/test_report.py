"""`jungle report`: a self-contained HTML page with real plots of a real stack."""

from __future__ import annotations

import base64
import re

from typer.testing import CliRunner

from jungle.cli import app
from jungle.meta.model_io import load_model
from jungle.meta.report import feature_set_importance
from jungle.store.db import connect

runner = CliRunner()


def test_report_embeds_every_plot(stacked, tmp_path):
    sw, result = stacked
    out = runner.invoke(app, ["report", "--out", str(tmp_path / "r.html"), "-w", str(sw.workspace.root)])
    assert out.exit_code == 0, out.output
    assert out.output == f"{tmp_path / 'r.html'}\n"
    page = (tmp_path / "r.html").read_text()
    titles = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    names = [t for t, _ in titles]
    study = result.members[0].tuning.study_name
    assert names == ["Per-class log loss and ROC AUC", "Confusion matrix (row-normalised colour, counts)",
                     "Calibration (all classes pooled)", "Feature-set importance (XGBoost gain)",
                     f"Optuna history: {study}", "blank filter curve"]
    for _, data in titles:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for name in sw.classes:
        assert f"<td>{name}</td>" in page
    assert f"{result.log_loss:.5f}" in page
    with connect(sw.workspace, read_only=True) as con:  # the helper gives its clips no time
        readable = con.execute("SELECT count(*) FROM videos WHERE status = 'ok'").fetchone()[0]
    assert (f"Capture times of the workspace's {readable} readable clips: {readable} without a capture time "
            "(none).</p>") in page


def test_feature_set_importance_follows_the_signal(stacked):
    sw, _ = stacked
    shares = feature_set_importance(load_model(sw.workspace))
    assert set(shares) == {"meta", "hist_lite0"}
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert shares["hist_lite0"] > shares["meta"]  # the helper gives hist_lite0 twice meta's signal


def test_report_default_path_and_missing_model(stacked, tmp_path):
    sw, result = stacked
    out = runner.invoke(app, ["report", "-w", str(sw.workspace.root)])
    assert out.exit_code == 0, out.output
    assert out.output == f"{sw.workspace.reports_dir / (result.model_id + '.html')}\n"
    missing = runner.invoke(app, ["report", "--model", "nope", "-w", str(sw.workspace.root)])
    assert missing.exit_code == 1
    assert missing.output.startswith(f'Error: no saved model "nope" in {sw.workspace.models_dir}. Saved models: ')
