"""One renderer for every command's tabular output: table | csv | json."""

from __future__ import annotations

import csv
import io
import json
from enum import Enum
from typing import Any, Sequence

__all__ = ["Format", "render_rows"]


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: Format = Format.table,
                title: str | None = None) -> str:
    """Render rows as an aligned text table, CSV or a JSON list of objects."""
    if fmt == Format.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return out.getvalue()
    if fmt == Format.json:
        return json.dumps([{c: _plain(v) for c, v in zip(columns, row)} for row in rows], indent=2) + "\n"
    cells = [[("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))) for v in row] for row in rows]
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells)
    return "\n".join(lines) + "\n"
