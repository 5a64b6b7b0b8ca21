"""What ``jungle count`` writes and the exports and the review page read: counting runs, per clip its
counts, its tracks and every box (see :mod:`jungle.store.counts`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..frames import registered

__all__ = ["COUNT_TABLES", "ClipCountRow", "has_tables", "record_run", "stored_boxes", "counted_videos",
           "write_counts", "write_track_classes", "read_counts", "read_track_boxes", "read_track_spans",
           "read_tracks"]

#: The tables one clip's counting writes (all replaced together).
COUNT_TABLES = ("clip_counts", "tracks", "track_boxes", "clip_class_counts")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def has_tables(con, *tables: str) -> bool:
    """True when the database has all these tables (an older one opened read-only may lack them)."""
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return set(tables) <= names


def record_run(con, run_key: str, boxes_key: str, config_json: str, detector_json: str, code_version: str) -> None:
    """Remember a counting configuration (once per key); ``boxes_key`` is the key of what finds the
    boxes (detector, frames), so that another tracker can reuse them."""
    con.execute("INSERT INTO count_runs (run_key, boxes_key, config, detector, code_version, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [run_key, boxes_key, config_json, detector_json, code_version, _now()])


def stored_boxes(con, boxes_key: str, video_ids) -> dict[str, tuple[list[int], list[tuple]]]:
    """Per clip of ``video_ids`` counted by a run that found its boxes the same way (``boxes_key``):
    its frames' display indices and its boxes (frame_index, timestamp, score, moving, x, y, w, h), in
    frame order, best first within a frame."""
    wanted = list(video_ids)
    if not wanted:
        return {}
    frames = con.execute("""
        SELECT c.video_id, c.frame_indices FROM clip_counts c JOIN count_runs r USING (run_key)
        WHERE r.boxes_key = ? AND c.status = 'counted' AND c.video_id IN (SELECT unnest(?))""",
                         [boxes_key, wanted]).fetchall()
    out = {video_id: (list(indices or []), []) for video_id, indices in frames}
    rows = con.execute("""
        SELECT video_id, frame_index, timestamp, score, moving, x, y, w, h FROM track_boxes
        WHERE video_id IN (SELECT unnest(?)) ORDER BY video_id, frame_index, score DESC""", [list(out)]).fetchall()
    for video_id, *row in rows:
        out[video_id][1].append(tuple(row))
    return out


def counted_videos(con, run_key: str) -> set[str]:
    """Ids of the clips counted (or skipped, or failed) with ``run_key``: what a resumed run leaves alone."""
    return {r[0] for r in con.execute("SELECT video_id FROM clip_counts WHERE run_key = ?", [run_key]).fetchall()}


def write_counts(con, clips, tracks, boxes) -> None:
    """Replace the counts of the clips in ``clips`` (polars DataFrames with the columns of
    ``clip_counts``, ``tracks`` and ``track_boxes``); call it inside a transaction. Their per-class
    counts are dropped (the track classes come later, :func:`write_track_classes`)."""
    with registered(con, new_clips=clips, new_tracks=tracks, new_boxes=boxes):
        for table in COUNT_TABLES:
            con.execute(f"DELETE FROM {table} WHERE video_id IN (SELECT video_id FROM new_clips)")
        con.execute("INSERT INTO clip_counts BY NAME SELECT * FROM new_clips")
        con.execute("INSERT INTO tracks BY NAME SELECT * FROM new_tracks")
        con.execute("INSERT INTO track_boxes BY NAME SELECT * FROM new_boxes")


def write_track_classes(con, classes, class_counts) -> None:
    """Set the tracks' predicted classes (``classes``: video_id, track_id, class, class_probability)
    and replace those clips' per-class counts (``class_counts``: video_id, class, maxn, tracks)."""
    with registered(con, new_classes=classes, new_counts=class_counts):
        con.execute("""UPDATE tracks SET class = n.class, class_probability = n.class_probability
                       FROM new_classes n WHERE tracks.video_id = n.video_id AND tracks.track_id = n.track_id""")
        con.execute("DELETE FROM clip_class_counts WHERE video_id IN (SELECT video_id FROM new_classes)")
        con.execute("INSERT INTO clip_class_counts BY NAME SELECT * FROM new_counts")


@dataclass(frozen=True)
class ClipCountRow:
    """What the exports and the review page need of one clip's count.

    Attributes:
        maxn: the count that wins: a person's, else the machine's MaxN (None: never counted).
        machine: the machine's MaxN (0 for a clip skipped because featurize's boxes showed nothing;
            None: not counted, or its video failed).
        human: a person's count (None: none).
        tracks: distinct tracks.
        status: ``counted`` | ``skipped`` | ``error`` | None.
        best_frame_index: the display index of the frame shown for the count.
        bbox: x, y, w, h around that frame's animals (None: no track).
        classes: per predicted class, its MaxN.
        frames: display indices of the frames the detector looked at.
    """

    maxn: int | None
    machine: int | None
    human: int | None
    tracks: int | None
    status: str | None
    best_frame_index: int | None
    bbox: tuple[float, float, float, float] | None
    classes: dict[str, int]
    frames: tuple[int, ...] = ()


def read_counts(con, video_ids=None) -> dict[str, ClipCountRow]:
    """Per clip (all, or ``video_ids``) its :class:`ClipCountRow`; clips with neither a count nor a
    human count are absent. An older database without the tables gives {}."""
    if not has_tables(con, "clip_counts", "count_labels", "clip_class_counts"):
        return {}
    rows = con.execute("""
        SELECT coalesce(c.video_id, l.video_id), c.maxn, l.count, c.tracks, c.status, c.best_frame_index,
               c.bbox_x, c.bbox_y, c.bbox_w, c.bbox_h, c.frame_indices
        FROM clip_counts c FULL JOIN count_labels l USING (video_id)""").fetchall()
    classes: dict[str, dict[str, int]] = {}
    for video_id, name, maxn in con.execute("SELECT video_id, class, maxn FROM clip_class_counts").fetchall():
        classes.setdefault(video_id, {})[name] = int(maxn)
    wanted = None if video_ids is None else set(video_ids)
    out = {}
    for video_id, machine, human, n_tracks, status, best, x, y, w, h, frames in rows:
        if wanted is not None and video_id not in wanted:
            continue
        machine = machine if status == "counted" else 0 if status == "skipped" else None
        out[video_id] = ClipCountRow(human if human is not None else machine, machine, human, n_tracks, status, best,
                                     None if x is None else (x, y, w, h), classes.get(video_id, {}),
                                     tuple(frames or ()))
    return out


def read_track_boxes(con, video_ids=None) -> dict[str, list[dict]]:
    """Per clip its boxes: frame_index, timestamp, track_id (None: no track), score, x, y, w, h, in
    frame order (best first within a frame)."""
    if not has_tables(con, "track_boxes"):
        return {}
    where, params = "", []
    if video_ids is not None:
        where, params = "WHERE video_id IN (SELECT unnest(?))", [list(video_ids)]
    result = con.execute(f"SELECT video_id, frame_index, timestamp, track_id, score, x, y, w, h FROM track_boxes "
                         f"{where} ORDER BY video_id, frame_index, score DESC", params)
    columns = [d[0] for d in result.description]
    out: dict[str, list[dict]] = {}
    for row in result.fetchall():
        out.setdefault(row[0], []).append(dict(zip(columns[1:], row[1:])))
    return out


def read_track_spans(con) -> dict[str, list[tuple[int, int, int]]]:
    """Per clip its counted tracks (not the still ones) as (track_id, first_frame, last_frame), in order."""
    out: dict[str, list[tuple[int, int, int]]] = {}
    if not has_tables(con, "tracks"):
        return out
    for video_id, track_id, first, last in con.execute(
            "SELECT video_id, track_id, first_frame, last_frame FROM tracks WHERE counted IS NOT FALSE "
            "ORDER BY video_id, track_id").fetchall():
        out.setdefault(video_id, []).append((int(track_id), int(first), int(last)))
    return out


def read_tracks(con, video_id: str) -> list[dict]:
    """The tracks of one clip, in order."""
    if not has_tables(con, "tracks"):
        return []
    result = con.execute("SELECT * FROM tracks WHERE video_id = ? ORDER BY track_id", [video_id])
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row)) for row in result.fetchall()]
