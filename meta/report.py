"""``jungle report``: one self-contained HTML page about a saved model, plots embedded as PNG.

It shows the out-of-fold metrics (log loss, accuracy, macro F1), per-class log loss and ROC AUC,
the confusion matrix, the calibration curve, how much each feature set contributes (XGBoost total
gain summed per feature set, weighted by blend weight), the Optuna history of every study, and
where the workspace's capture times come from (``videos.time_source``).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..store.capture_times import UNTRUSTED, time_source_counts
from ..store.db import connect
from ..store.workspace import Workspace
from ..userfiles import check_output_file, write_user_text
from .dataset import column_set
from .manifest import StudyRecord
from .metrics import Evaluation, evaluate
from .model_check import read_model_file
from .model_io import LoadedModel, load_model
from .zeroshot.report import blank_filter_html, unmeasured_html, zero_shot_html

__all__ = ["ReportData", "load_report_data", "read_oof", "feature_set_importance", "study_history", "write_report",
           "time_sources_line"]


@dataclass
class ReportData:
    """Everything a report shows, computed from a saved model."""

    model: LoadedModel
    Y: np.ndarray
    P: np.ndarray
    evaluation: Evaluation | None   # None: no labelled clip to measure on (a zero-shot model without labels)
    importance: dict[str, float]
    histories: list[dict]
    time_sources: dict[str, int]


def feature_set_importance(model: LoadedModel) -> dict[str, float]:
    """Share of the total XGBoost gain per feature set, members weighted by their blend weight."""
    totals: dict[str, float] = {}
    for member, projection, entry, weight in zip(model.members, model.projections, model.manifest.members,
                                                 model.weights):
        gains = member.gain_by_feature()
        columns = entry.columns if projection is None else projection.output_columns
        sets = [column_set(c) for c in columns]
        total = sum(gains.values()) or 1.0
        for index, gain in gains.items():
            totals[sets[index]] = totals.get(sets[index], 0.0) + weight * gain / total
    grand = sum(totals.values()) or 1.0
    return {name: value / grand for name, value in sorted(totals.items(), key=lambda kv: -kv[1])}


def study_history(name: str, storage: str) -> dict:
    """Trial numbers, states, values (last reported value for pruned trials) of a stored study.

    The storage is opened without creating tables; a SQLite file must already exist (opening
    one that does not would create it).

    Raises:
        FileNotFoundError: the SQLite file of ``storage`` does not exist.
        KeyError: the storage holds no study ``name``.
        sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError: the storage is unreachable or unusable.
    """
    import optuna

    from .tuning import open_storage

    path = _sqlite_path(storage)
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"the study storage file {path} does not exist")
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    rows = []
    for trial in study.get_trials(deepcopy=False):
        value = trial.value
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        if value is not None:
            rows.append((trial.number, trial.state.name, float(value)))
    return {"name": name, "trials": rows}


def load_report_data(workspace: Workspace, model: str = "current") -> ReportData:
    """The saved model, its OOF labels and probabilities, metrics, importance and study histories."""
    loaded = load_model(workspace, model)
    unmeasured = loaded.zero_shot is not None and loaded.zero_shot.correction is None   # no labels, no oof.parquet
    Y, P = (np.zeros((0, len(loaded.classes))),) * 2 if unmeasured else read_oof(loaded)
    histories = [_history(workspace, loaded, entry.study) for entry in loaded.manifest.members
                 if entry.study is not None and entry.study.name]
    with connect(workspace, read_only=True) as con:
        sources = time_source_counts(con)
    return ReportData(loaded, Y, P, None if unmeasured else evaluate(Y, P), feature_set_importance(loaded), histories,
                      sources)


_SOURCE_WORDS = {"csv": "from the times file you gave", "container": "from the video's metadata",
                 "mtime": "from the file's modification time", "none": "without a capture time"}


def time_sources_line(counts: dict[str, int]) -> str:
    """One sentence on where the readable clips' capture times come from (``videos.time_source``)."""
    total = sum(counts.values())
    parts = [f"{n} {_SOURCE_WORDS.get(source, source)} ({source})" for source, n in counts.items()]
    line = f"Capture times of the workspace's {total} readable clips: {'; '.join(parts) or 'none'}."
    untrusted = sum(n for source, n in counts.items() if source in UNTRUSTED)
    if untrusted:
        line += (f" The {untrusted} modification times are not the recording times (copying a file changes them): "
                 "give the real ones with `jungle times FILE`.")
    return line


def read_oof(model: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
    """(labels, final probabilities) of the training videos from the model's ``oof.parquet``.

    Raises:
        ModelError: the file is missing, damaged, or not one row of one value per class each.
    """
    import polars as pl

    path = model.path / "oof.parquet"
    raw = read_model_file(model.path, path.name, "oof")  # a regular file of a capped size, never a FIFO
    try:
        oof = pl.read_parquet(io.BytesIO(raw), columns=["label", "probability"])
        Y = np.asarray(oof["label"].to_list(), dtype=np.float64)
        P = np.asarray(oof["probability"].to_list(), dtype=np.float64)
    except (OSError, pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise ModelError(f"out-of-fold file {path} is missing or damaged ({type(exc).__name__}: {exc}). "
                         "Re-make the model with `jungle stack`.") from None
    width = len(model.classes)
    if Y.ndim != 2 or Y.shape != P.shape or Y.shape[1] != width:
        raise ModelError(f"out-of-fold file {path} does not hold one label and one probability per class "
                         f"({width}) for every video. Re-make the model with `jungle stack`.")
    return Y, P


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///FILE`` storage URL (None for other databases)."""
    return Path(url.split("///", 1)[1].split("?", 1)[0]) if url.startswith("sqlite:///") else None


def _trusted_storage(workspace: Workspace, model: LoadedModel, storage: str) -> bool:
    """Whether the report may open ``storage``: the workspace's own Optuna file, or any storage of
    a model saved in this workspace's ``models/``. A folder given by path may come from
    someone else, and its manifest could name any database."""
    if storage == workspace.optuna_url:
        return True
    return model.path.resolve().parent == workspace.models_dir.resolve()


def _history(workspace: Workspace, model: LoadedModel, study: StudyRecord) -> dict:
    """The study's history, or an ``error`` saying why the report shows none."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if not study.storage or not _trusted_storage(workspace, model, study.storage):
        return {"name": study.name, "trials": [],
                "error": f"storage {study.storage} not opened: the model folder is not one of this workspace's "
                         "models and the storage is not the workspace's own"}
    try:
        return study_history(study.name, study.storage)
    except (FileNotFoundError, KeyError, SQLAlchemyError, optuna.exceptions.OptunaError) as exc:
        # storage moved or unreachable, study deleted: say so in the report
        return {"name": study.name, "trials": [], "error": f"{type(exc).__name__}: {exc}"}


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _subplots(*grid, figsize, **options):
    """A figure and its axes, like ``pyplot.subplots`` but without pyplot's global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **options)


def _figures(data: ReportData) -> dict[str, str]:
    classes = data.model.classes
    ev = data.evaluation
    figures = {}
    height = max(3.0, 0.3 * len(classes) + 1)
    fig, (left, right) = _subplots(1, 2, figsize=(11, height), sharey=True)
    ypos = np.arange(len(classes))
    left.barh(ypos, ev.class_log_loss, color="tab:red")
    left.set_yticks(ypos, classes)
    left.invert_yaxis()
    left.set_xlabel("binary log loss (OOF)")
    right.barh(ypos, np.nan_to_num(ev.class_auc), color="tab:blue")
    right.set_xlim(0.5, 1.0)
    right.set_xlabel("ROC AUC (OOF)")
    figures["Per-class log loss and ROC AUC"] = _png(fig)

    fig, ax = _subplots(figsize=(1.5 + 0.35 * len(classes), 1 + 0.35 * len(classes)))
    rows = ev.confusion.sum(axis=1, keepdims=True)
    ax.imshow(ev.confusion / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(ypos, classes, rotation=90)
    ax.set_yticks(ypos, classes)
    ax.set_xlabel("predicted (argmax)")
    ax.set_ylabel("labelled")
    for (i, j), count in np.ndenumerate(ev.confusion):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    figures["Confusion matrix (row-normalised colour, counts)"] = _png(fig)

    fig, ax = _subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    ax.plot(ev.calibration["predicted"], ev.calibration["observed"], marker="o", label="OOF")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.legend()
    figures["Calibration (all classes pooled)"] = _png(fig)

    if data.importance:
        names = list(data.importance)
        fig, ax = _subplots(figsize=(7, max(2.0, 0.4 * len(names) + 1)))
        ax.barh(np.arange(len(names)), list(data.importance.values()), color="tab:green")
        ax.set_yticks(np.arange(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("share of total gain")
        figures["Feature-set importance (XGBoost gain)"] = _png(fig)

    for history in data.histories:
        if not history["trials"]:
            continue
        fig, ax = _subplots(figsize=(8, 4))
        numbers = np.array([t[0] for t in history["trials"]])
        values = np.array([t[2] for t in history["trials"]])
        complete = np.array([t[1] == "COMPLETE" for t in history["trials"]])
        ax.scatter(numbers[complete], values[complete], label="complete")
        ax.scatter(numbers[~complete], values[~complete], marker="x", color="tab:orange", label="pruned (last value)")
        if complete.any():
            best = np.minimum.accumulate(np.where(complete, values, np.inf))
            ax.step(numbers[np.isfinite(best)], best[np.isfinite(best)], where="post", color="black", label="best")
        ax.set_xlabel("trial")
        ax.set_ylabel("CV log loss")
        ax.legend()
        figures[f"Optuna history: {history['name']}"] = _png(fig)
    return figures


def _cell(value) -> str:
    return f"{value:.5f}" if isinstance(value, float) else str(value)


def _table(columns: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(data: ReportData) -> str:
    """The report page."""
    manifest = data.model.manifest
    summary = data.evaluation.summary()
    headline = _table(["metric", "value"], [("videos", len(data.Y)), *summary.items(),
                                            ("label mode", manifest.label_mode), ("clip", manifest.clip.kind)])
    members = _table(
        ["member", "feature sets", "rounds", "CV log loss", "OOF log loss", "blend weight", "study", "trials"],
        [(i, ", ".join(f.ref for f in m.features), m.rounds, m.cv_log_loss, m.oof_log_loss, w,
          (m.study.name if m.study else None) or "-", m.study.trials if m.study else 0)
         for i, (m, w) in enumerate(zip(manifest.members, data.model.weights))],
    )
    per_class = _table(
        ["class", "positives", "log loss", "ROC AUC", "clip low", "clip high"],
        [(c, int(data.Y[:, i].sum()), float(data.evaluation.class_log_loss[i]), float(data.evaluation.class_auc[i]),
          manifest.clip.low[i], manifest.clip.high[i]) for i, c in enumerate(data.model.classes)],
    )
    errors = "".join(f"<p>Study {html.escape(h['name'])}: {html.escape(h['error'])}</p>"
                     for h in data.histories if h.get("error"))
    images = "".join(f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
                     f'src="data:image/png;base64,{png}">' for title, png in _figures(data).items())
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")
    model_id = html.escape(data.model.model_id)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>jungle report {model_id}'
            f"</title><style>{style}</style></head><body><h1>Model {model_id}</h1>"
            f"<p>Created {html.escape(manifest.created_at)}, code {html.escape(manifest.code_version)}. "
            f"All metrics are out-of-fold on the labelled videos.</p>{headline}"
            f"<p>{html.escape(time_sources_line(data.time_sources), quote=False)}</p><h2>Level-2 models</h2>{members}"
            f"{zero_shot_html(manifest)}<h2>Per class</h2>{per_class}{errors}{images}"
            f"{blank_filter_html(data.model.classes, data.Y, data.P, _png)}</body></html>")


def write_report(workspace: Workspace, model: str = "current", out: Path | None = None) -> Path:
    """Write the HTML report of ``model`` (default ``reports/<model id>.html``); return its path."""
    if out is not None:
        check_output_file(out)
    data = load_report_data(workspace, model)
    path = Path(out) if out else workspace.reports_dir / f"{data.model.model_id}.html"
    page = render_html(data) if data.evaluation is not None else unmeasured_html(
        data.model.manifest, time_sources_line(data.time_sources))
    return write_user_text(path, page)
