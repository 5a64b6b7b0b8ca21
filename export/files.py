"""Deterministic file writing for exports: CSV with fixed columns and ``\\n`` line ends, JSON with
fixed indentation, each written to a temporary name and renamed, and the export record that sits
next to every output."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel

__all__ = ["write_csv", "write_json", "write_record", "record_path", "cell"]


def cell(value: Any) -> str:
    """A CSV cell: empty for None, ``true``/``false`` for booleans, shortest round-trip repr for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _replace(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(path)
    return path


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict]) -> Path:
    """Write ``rows`` (dicts; missing keys are empty cells) under ``columns``, in the order given."""
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[cell(row.get(c)) for c in columns] for row in rows])
    return _replace(path, out.getvalue())


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (keys in the order given) ending with a newline."""
    return _replace(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def record_path(output: Path) -> Path:
    """Where the record of a single-file export goes: ``NAME.export.json`` beside ``NAME.EXT``."""
    output = Path(output)
    return output.with_name(output.stem + ".export.json")


def write_record(path: Path, config: BaseModel, **facts: Any) -> Path:
    """Write the export's typed configuration, the code version and what was decided from the data
    (model, thresholds, counts) as JSON."""
    from ..store.registry import code_version

    return write_json(path, {"export": type(config).__name__, "code_version": code_version(),
                             "config": config.model_dump(mode="json"), **facts})
