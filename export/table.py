"""``jungle export csv FILE``: the wide per-video table zamba users know: ``filepath``, ``filename``,
``site``, ``timestamp``, ``time_source``, the human ``label`` (positive classes joined by ``;``)
and its ``label_source``, ``top_class``, ``probabilities`` (``oof``: out of fold, for the clips the
model was fitted on; ``predict``: the others), then the probability of every class in the model's
order; one row per predicted video, sorted by ``filepath``. ``timestamp`` is the camera's time with
its UTC offset (no offset when the zone is unknown); ``time_source`` says where it came from
(``csv``, ``container`` or ``mtime``: the file's modification time, not to be trusted). ``count`` is
how many animals the clip shows (a person's count from the review page, ``count_source`` human, else
``jungle count``'s MaxN, machine; 0 where featurize's boxes showed nothing; empty where not counted).

The probabilities are the model's out-of-sample ones, as the ``current_predictions`` view and the
review page show them (never a training clip's in-sample ``predict`` row), to
:data:`~jungle.store.predictions.DIGITS` decimal places (see there why).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..config import JungleConfig

from ..store.capture_times import local_time
from ..store.predictions import DIGITS, rounded
from .counts import clip_counts
from .files import check_file_target, csv_text, formula_cells, formula_note, record_path, record_text, write_files
from .source import load_export_data
from .validate import check_probabilities

__all__ = ["COLUMNS", "TableConfig", "TableResult", "export_table"]

COLUMNS = ["filepath", "filename", "site", "timestamp", "time_source", "label", "label_source", "top_class",
           "probabilities", "count", "count_source"]
"""The columns before the classes'."""


class TableConfig(JungleConfig):
    """Attributes:
        model: saved model (``current``, ``latest``, a recipe name, an id or a folder).
        only_predicted: leave out videos without the model's predictions instead of refusing.
    """

    model: str = "current"
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
    out = check_file_target(out)
    data = load_export_data(workspace, config.model, config.only_predicted, labels_count=False)
    counts = clip_counts(workspace, [v["video_id"] for v in data.videos])
    rows = []
    for i, (video, p) in enumerate(zip(data.videos, data.probabilities)):
        positives = [c for c, y in zip(data.classes, data.labels[i]) if y == 1]
        row = {"filepath": video["relpath"] or video["path"], "filename": video["filename"], "site": video["site"],
               "timestamp": _timestamp(video), "time_source": video["time_source"],
               "label": ";".join(positives) if data.labelled[i] else None,
               "label_source": data.label_source[i] if data.labelled[i] else None,
               "top_class": data.classes[int(p.argmax())], "probabilities": data.kinds[i]}
        count = counts.get(video["video_id"])
        row.update(count=None if count is None else count.maxn,
                   count_source=None if count is None or count.maxn is None else
                   "machine" if count.human is None else "human")
        row.update({c: f"{rounded(v):.{DIGITS}f}" for c, v in zip(data.classes, p)})
        rows.append(row)
    rows.sort(key=lambda r: (r["filepath"], r["filename"]))
    out = Path(out)
    check_probabilities(data.probabilities, str(out))
    columns = COLUMNS + data.classes
    write_files({out: csv_text(columns, rows),
                 record_path(out): record_text(config, model=data.model_id, probability_digits=DIGITS,
                                               skipped_videos=data.skipped)})
    return TableResult(out=str(out), model_id=data.model_id, videos=len(rows), classes=len(data.classes),
                       notes=formula_note(formula_cells(rows, columns[:len(COLUMNS)]), out))
