"""What feature sets exist and how each was made: ``jungle features list`` and ``jungle features show``.

Generic over frame-level sets (Zarr arrays, per-video rows in ``feature_rows``) and video-level
sets (Parquet tables keyed by ``video_id``).
"""

from __future__ import annotations

import json

from jungle.store import arrays, registry
from jungle.store.db import connect

__all__ = ["list_feature_sets", "describe_feature_set"]

_LIST_COLUMNS = ["name", "version", "kind", "status", "rows", "encoder", "sampling", "input_size", "dims",
                 "stage_dims", "weights_sha256", "created_at"]


def list_feature_sets(workspace) -> tuple[list[str], list[tuple]]:
    """Every feature set version, oldest first: (columns, rows)."""
    with connect(workspace, read_only=True) as con:
        sets = registry.list_sets(con)
    rows = [(s.name, s.version, s.kind, s.status, s.row_count, s.encoder, s.sampling, s.input_size, s.dims,
             sum(s.stage_dims) if s.stage_dims else None, (s.weights_sha256 or "")[:12] or None, s.created_at)
            for s in sets]
    return _LIST_COLUMNS, rows


def _flatten(config: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in sorted(config.items()):
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value if isinstance(value, (str, int, float)) else json.dumps(value)))
    return out


def _frames_shape(workspace, fs) -> list[tuple]:
    try:
        group = arrays.open_group(workspace, fs)
    except FileNotFoundError as exc:
        return [("arrays", str(exc))]
    return [(f"array {name}", f"{tuple(array.shape)} {array.dtype} chunks={tuple(array.chunks)}")
            for name, array in sorted(group.arrays())]


def describe_feature_set(workspace, name: str, version: int | None = None) -> tuple[list[str], list[tuple]]:
    """One feature set as (field, value) rows: shape, inputs, how it was made, rows missing.

    Args:
        workspace: the workspace.
        name: feature-set name.
        version: a version (default: the latest, complete or not).

    Raises:
        UnknownFeatureSet: no such feature set (the message lists the known ones).
    """
    with connect(workspace, read_only=True) as con:
        if version is None:
            fs = registry.latest(con, name, complete_only=False)
            if fs is None:
                registry.get(con, name)  # raises UnknownFeatureSet, listing the known names
        else:
            fs = registry.get(con, name, version)
        counts, missing = {}, None
        if fs.kind == "video" and fs.status == "complete":
            missing = con.execute(
                "SELECT count(*) FROM videos WHERE status = 'ok' AND video_id NOT IN "
                "(SELECT video_id FROM read_parquet(?))", [str(registry.table_path(workspace, fs))]).fetchone()[0]
        if fs.kind == "frames":
            counts = dict(con.execute(
                "SELECT status, count(*) FROM feature_rows WHERE name = ? AND version = ? GROUP BY status",
                [fs.name, fs.version]).fetchall())
            not_in_set = con.execute(
                "SELECT count(*) FROM videos WHERE status = 'ok' AND video_id NOT IN "
                "(SELECT video_id FROM feature_rows WHERE name = ? AND version = ?)", [fs.name, fs.version]
            ).fetchone()[0]
    fields: list[tuple] = [
        ("name", fs.name), ("version", fs.version), ("kind", fs.kind), ("status", fs.status),
        ("location", str(workspace.root / fs.location)), ("created_at", fs.created_at),
        ("code_version", fs.code_version), ("config_key", fs.config_key),
        ("encoder", fs.encoder), ("weights_sha256", fs.weights_sha256), ("sampling", fs.sampling),
        ("input_size", fs.input_size), ("dims", fs.dims),
        ("stage_dims", json.dumps(fs.stage_dims) if fs.stage_dims else None),
        ("fold_scheme", fs.fold_scheme),
        ("inputs", json.dumps(fs.inputs) if fs.inputs else ("videos" if fs.kind == "frames" else "(none recorded)")),
    ]
    fields += [(f"config.{key}", value) for key, value in _flatten(fs.config)]
    if fs.kind == "frames":
        fields += _frames_shape(workspace, fs)
        fields += [("rows done", counts.get("done", 0)), ("rows failed", counts.get("error", 0)),
                   ("rows pending", counts.get("pending", 0)), ("videos not in set", not_in_set)]
    else:
        fields += [("rows", fs.row_count), ("videos without a row", missing)]
    return ["field", "value"], [(k, v) for k, v in fields if v is not None]
