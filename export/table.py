"""``jungle export csv FILE``: the wide per-video table zamba users know: ``filepath``, ``filename``,
``site``, ``timestamp``, ``time_source``, ``top_class``, then the probability of every class in the
model's order; one row per predicted video, sorted by ``filepath``. ``timestamp`` is the camera's
time with its UTC offset (no offset when the zone is unknown); ``time_source`` says where it came
from (``csv``, ``container`` or ``mtime``: the file's modification time, not to be trusted)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..config import JungleConfig

from ..store.capture_times import local_time
from .files import csv_text, formula_cells, formula_note, record_path, record_text, write_files
from .source import load_export_data
from .validate import check_probabilities

__all__ = ["TableConfig", "TableResult", "export_table"]


class TableConfig(JungleConfig):
    """Attributes:
        model: saved model (``latest``, an id or a folder).
        only_predicted: leave out videos without the model's predictions instead of refusing.
    """

    model: str = "latest"
    only_predicted: bool = False


class TableResult(BaseModel):
    out: str
    model_id: str
    videos: int
    classes: int
    notes: tuple[str, ...] = ()

    def rows(self) -> tuple[list[str], list[tuple]]:
        values = self.model_dump(exclude={"notes"})
        return list(values), [tuple(values.values())]


def _timestamp(video: dict) -> str | None:
    moment = local_time(video["captured_at"], video["utc_offset_minutes"])
    if moment is None:
        return None
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def export_table(workspace, out: Path, config: TableConfig | None = None) -> TableResult:
    """Write the wide CSV of the model's probabilities, one row per video."""
    config = config or TableConfig()
    data = load_export_data(workspace, config.model, config.only_predicted, labels_count=False)
    rows = []
    for video, p in zip(data.videos, data.probabilities):
        row = {"filepath": video["relpath"] or video["path"], "filename": video["filename"], "site": video["site"],
               "timestamp": _timestamp(video), "time_source": video["time_source"],
               "top_class": data.classes[int(p.argmax())]}
        row.update({c: float(v) for c, v in zip(data.classes, p)})
        rows.append(row)
    rows.sort(key=lambda r: (r["filepath"], r["filename"]))
    out = Path(out)
    check_probabilities(data.probabilities, str(out))
    columns = ["filepath", "filename", "site", "timestamp", "time_source", "top_class", *data.classes]
    write_files({out: csv_text(columns, rows),
                 record_path(out): record_text(config, model=data.model_id, skipped_videos=data.skipped)})
    return TableResult(out=str(out), model_id=data.model_id, videos=len(rows), classes=len(data.classes),
                       notes=formula_note(formula_cells(rows, columns[:6]), out))
