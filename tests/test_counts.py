"""Tracks and counts: the tracker on boxes with known paths, generated groups with known counts, and
`jungle count` on real clips (chimpanzees at a waterhole, people on a square) with the real detector.

The generated groups are bench/groups.py's, with the generator's truth of how many animals are on
screen at once (the hidden ones too); on every frame a count looks at (4 per second) the tracker sees
the visible animals' boxes, a tenth of them missed (as a detector misses), jittered, and a false box
now and then.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.tracks.counting import alive_counts, class_counts, count_clip, max_overlap
from jungle.features.tracks.run import CountConfig, count_workspace
from jungle.features.tracks.tracker import TrackerConfig, track_clip
from jungle.store.db import connect
from jungle.store.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _box(x: float, y: float = 0.5, w: float = 0.1, h: float = 0.2, score: float = 0.8, moving: float = 0.3):
    return [x, y, x + w, y + h, score, moving]


def _frames(*paths) -> list[np.ndarray]:
    """Per frame the boxes of the animals present there (a path: frame -> x, or None when absent)."""
    n = max(len(p) for p in paths)
    return [np.asarray([_box(p[t]) for p in paths if t < len(p) and p[t] is not None], np.float64).reshape(-1, 6)
            for t in range(n)]


def _count(frames, config=TrackerConfig()):
    tracks = [t for t in track_clip(frames, config) if not t.still(config.min_moving)]
    return tracks, count_clip(frames, tracks, config.min_score)


# ----------------------------------------------------------------------------------------------- the tracker
def test_two_animals_crossing_keep_one_track_each():
    """Two animals walk towards each other and cross; where they overlap the detector sees one box."""
    left = [0.1 + 0.05 * t for t in range(16)]
    right = [0.85 - 0.05 * t for t in range(16)]
    frames = _frames(left, right)
    for t in (7, 8):  # crossing: one merged box instead of two
        frames[t] = np.asarray([_box(0.45, w=0.12)])
    tracks, count = _count(frames)
    assert (count.maxn, count.tracks) == (2, 2)
    for track in tracks:  # each track keeps its direction: no identity swap at the crossing
        xs = [b[0] for b in track.boxes]
        assert xs == sorted(xs) or xs == sorted(xs, reverse=True)
    assert count.max_frame_boxes == 2 and count.best_frame_boxes == 2


def test_a_missed_second_joins_one_track_and_a_longer_absence_starts_another():
    path = [0.2 + 0.02 * t for t in range(20)]
    short = [x if not 6 <= t < 9 else None for t, x in enumerate(path)]   # 3 frames missed: 0.75 s
    tracks, count = _count(_frames(short))
    assert (len(tracks), count.maxn) == (1, 1)
    assert tracks[0].first == 0 and tracks[0].last == 19
    long = [x if not 4 <= t < 14 else None for t, x in enumerate(path)]   # 10 frames gone: 2.5 s
    tracks, count = _count(_frames(long))
    assert (count.tracks, count.maxn) == (2, 1)   # two tracks, never alive at once


def test_one_frame_false_boxes_and_still_things_are_not_counted():
    animal = [0.2 + 0.03 * t for t in range(12)]
    frames = _frames(animal)
    frames[5] = np.vstack([frames[5], _box(0.7, 0.1)])             # a box on one frame only
    for t in range(12):                                              # a rock: always there, never moving
        frames[t] = np.vstack([frames[t], _box(0.8, 0.8, 0.1, 0.1, 0.6, 0.0)])
    tracks = track_clip(frames, TrackerConfig())
    assert len(tracks) == 2 and sum(t.still(0.02) for t in tracks) == 1
    _, count = _count(frames)
    assert count.maxn == 1
    _, count = _count(frames, TrackerConfig(min_moving=0.0))
    assert count.maxn == 2                                            # without the still filter: the rock too
    assert count.max_frame_boxes == 3                                # the single-frame count takes everything


def test_a_procession_has_maxn_one_and_as_many_tracks_as_animals():
    walk = [0.05 + 0.1 * t for t in range(8)]
    paths = [[None] * (8 * k) + walk for k in range(3)]
    tracks, count = _count(_frames(*paths))
    assert (count.maxn, count.tracks) == (1, 3)
    assert list(alive_counts(tracks, 24)) == [1] * 24


def test_weak_boxes_extend_tracks_but_never_start_one():
    path = [0.2 + 0.03 * t for t in range(10)]
    frames = _frames(path)
    for t in (4, 5):
        frames[t][:, 4] = 0.15                                        # half hidden: the detector is unsure
    frames[7] = np.vstack([frames[7], _box(0.8, score=0.15), ])
    frames[8] = np.vstack([frames[8], _box(0.8, score=0.15)])
    config = TrackerConfig(extend_score=0.1, max_gap=1)
    tracks = track_clip(frames, config)
    assert len(tracks) == 1 and tracks[0].frames == list(range(10))


def test_counts_per_class_and_overlaps():
    assert max_overlap([0, 5, 9], [4, 9, 12]) == 2                    # 5-9 and 9-12 meet at 9
    assert class_counts([0, 2, 10], [8, 6, 12], ["chimpanzee", "chimpanzee", "gorilla"]) == {
        "chimpanzee": (2, 2), "gorilla": (1, 1)}


# ----------------------------------------------------------------------------------------------- generated groups
@pytest.fixture(scope="module")
def groups_module():
    sys.path.insert(0, str(REPO / "bench"))
    import groups

    return groups


@pytest.mark.slow  # makes and counts generated group clips: ~30 s on two cores
def test_generated_groups_are_counted_from_their_boxes(groups_module, shared_media, tmp_path):
    """Generated groups of 1-5 animals, their boxes at 4 frames per second with a tenth missed, jitter
    and one-frame false boxes: MaxN from the tracks is the truth (animals on screen at once) on
    nearly every clip, and beats counting single frames."""
    g = groups_module
    config = g.GroupConfig(seed=5, split="dev", clips=12, blank=0.0)
    infrared = g.site_infrared(g.BenchConfig(seed=5), shared_media)
    clips = g.plan_groups(config, infrared, g.usable_photos(shared_media, tmp_path / "cutouts"))
    rng = np.random.default_rng(0)
    exact, most, best = 0, 0, 0
    for clip in clips:
        truth: list = []
        for _ in g.render_group(clip, config, shared_media, tmp_path / "cutouts", truth):
            pass
        sampled = truth[::2]                                        # 8 fps clips, counted at 4
        present = max(g.per_frame(sampled, 1))                      # on screen at once, hidden ones too
        frames = []
        for animals in sampled:                                      # the detector sees the visible ones
            boxes = [list(box) + [0.8, 0.3] for box, _, seen in animals if seen >= g.VISIBLE and rng.random() > 0.1]
            boxes = [[v + rng.normal(0, 0.004) if k < 4 else v for k, v in enumerate(b)] for b in boxes]
            if rng.random() < 0.05:                                 # a false box, somewhere, once
                x, y = rng.uniform(0, 0.9, 2)
                boxes.append([x, y, x + 0.08, y + 0.1, 0.5, 0.3])
            frames.append(np.asarray(boxes, np.float64).reshape(-1, 6))
        _, count = _count(frames)
        exact += count.maxn == present
        most += count.max_frame_boxes == present
        best += count.best_frame_boxes == present
    assert exact >= 10, f"{exact} of {len(clips)} exact"
    assert exact >= most and exact > best, (exact, most, best)


# ----------------------------------------------------------------------------------------------- real clips
def _counted_workspace(tmp_path, source: Path, *options: str):
    folder = tmp_path / "videos" / "cam1"
    folder.mkdir(parents=True)
    shutil.copy(source, folder / source.name)
    ws = tmp_path / "ws"
    out = runner.invoke(app, ["ingest", str(tmp_path / "videos"), "-w", str(ws), "-q"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["count", "--all", "-w", str(ws), "-q", "-f", "csv", *options])
    assert out.exit_code == 0, out.output
    return ws, out.output


def _sql(ws, query: str) -> str:
    out = runner.invoke(app, ["sql", query, "-w", str(ws), "-f", "csv"])
    assert out.exit_code == 0, out.output
    return out.output


@pytest.mark.slow
def test_chimpanzees_at_the_waterhole(tmp_path, shared_media, megadetector_file):
    """The waterhole clip shows five to seven chimpanzees at once (and a rock the detector takes for one)."""
    ws, output = _counted_workspace(tmp_path, shared_media / "camera_trap" / "chimp_waterhole_320x180.mp4")
    assert output.splitlines()[1].split(",")[:3] == ["1", "1", "0"]       # clips, counted, tracked again
    rows = _sql(ws, "SELECT filename, maxn, tracks, source, status, frames FROM counts").splitlines()
    filename, maxn, tracks, source, status, frames = rows[1].split(",")
    assert (filename, source, status, frames) == ("chimp_waterhole_320x180.mp4", "machine", "counted", "60")
    assert 5 <= int(maxn) <= 7 and int(tracks) >= int(maxn)
    still = _sql(ws, "SELECT count(*) FROM tracks WHERE NOT counted").splitlines()[1]
    assert int(still) >= 1                                                # the rock
    assert _sql(ws, "SELECT count(*) > 0, bool_and(w > 0 AND h > 0 AND x >= 0 AND y >= 0 AND x + w <= 1.0001 "
                    "AND y + h <= 1.0001) FROM track_boxes").splitlines()[1] == "True,True"
    events = _sql(ws, "SELECT clips, maxn FROM event_counts").splitlines()[1]
    assert events == f"1,{maxn}"

    # the same command again: nothing to do; another tracker: tracked again from the stored boxes
    out = runner.invoke(app, ["count", "--all", "-w", str(ws), "-q", "-f", "csv"])
    assert out.exit_code == 0 and out.output.splitlines()[1].split(",")[:7] == ["1", "0", "0", "0", "0", "1", "0"]
    summary = count_workspace(Workspace.resolve(ws), CountConfig(select="all", tracker=TrackerConfig(min_moving=0)),
                              progress=False)
    assert (summary.counted, summary.retracked, summary.step_seconds["detector"]) == (1, 1, 0.0)
    assert _sql(ws, "SELECT count(*) FROM tracks WHERE NOT counted").splitlines()[1] == "0"   # the rock counts now
    assert int(_sql(ws, "SELECT maxn FROM counts").splitlines()[1]) >= int(maxn)


@pytest.mark.slow
def test_people_on_a_square(tmp_path, shared_media, megadetector_file):
    """The first 30 s of people crossing a square: six to ten at once, more over the clip, the
    signposts the detector boxes not counted."""
    ws, _ = _counted_workspace(tmp_path, shared_media / "other_video" / "opencv_vtest_static_cam_people.avi",
                               "--max-seconds", "30")
    maxn, tracks, frames = _sql(ws, "SELECT maxn, tracks, frames FROM counts").splitlines()[1].split(",")
    assert int(frames) == 120                                             # 4 per second of 30 s
    assert 6 <= int(maxn) <= 10 and int(tracks) > int(maxn)
    assert int(_sql(ws, "SELECT count(*) FROM tracks WHERE NOT counted").splitlines()[1]) >= 1
    with connect(Workspace.resolve(ws), read_only=True) as con:
        best = con.execute("SELECT best_frame_index, bbox_w, bbox_h FROM clip_counts").fetchone()
    assert best[0] is not None and 0 < best[1] <= 1 and 0 < best[2] <= 1


def test_count_needs_a_workspace_and_has_help(tmp_path):
    out = runner.invoke(app, ["count", "--help"])
    assert out.exit_code == 0 and "MaxN" in out.output
    out = runner.invoke(app, ["count", "-w", str(tmp_path / "none")])
    assert out.exit_code != 0 and "jungle ingest" in out.output


# ----------------------------------------------------------------------------------------------- classes
def test_tracks_take_the_classes_of_the_crops_on_them(predicted, tmp_path):
    """A crop set and the frame head's probabilities for it (real registry rows and Zarr arrays with
    known values): a track takes the class of the crops on its boxes, a track no crop falls on the
    clip's; per class MaxN counts that class's tracks alone."""
    import polars as pl

    from _export_helpers import copy_workspace
    from jungle.features.tracks.classes import assign_classes
    from jungle.store import arrays, registry
    from jungle.store.counts import write_counts
    from jungle.store.db import transaction

    ws = copy_workspace(predicted[2], tmp_path / "ws")
    with connect(ws, read_only=True) as con:
        video = con.execute("SELECT video_id FROM videos ORDER BY path LIMIT 1").fetchone()[0]
    classes = ["blank", "chimpanzee", "duiker", "elephant"]
    spans = {1: (0.1, (0, 8, 16)), 2: (0.4, (0, 8)), 3: (0.7, (8, 16))}   # track: x, frames
    boxes = [{"video_id": video, "frame_index": f, "timestamp": f / 4, "track_id": t, "score": 0.8, "moving": 0.3,
              "x": x, "y": 0.4, "w": 0.1, "h": 0.2} for t, (x, frames) in spans.items() for f in frames]
    tracks = [{"video_id": video, "track_id": t, "first_frame": frames[0], "last_frame": frames[-1],
               "first_s": frames[0] / 4, "last_s": frames[-1] / 4, "boxes": len(frames), "mean_score": 0.8,
               "moving": 0.3, "counted": True} for t, (_, frames) in spans.items()]
    clip = {"video_id": video, "run_key": "test", "status": "counted", "frames": 3, "frame_indices": [0, 8, 16],
            "maxn": 3, "tracks": 3}
    with connect(ws) as con, transaction(con):
        write_counts(con, pl.DataFrame([clip], schema_overrides={"frame_indices": pl.List(pl.Int32)}),
                     pl.DataFrame(tracks), pl.DataFrame(boxes))
        rows = [v for (v,) in con.execute("SELECT video_id FROM videos ORDER BY path").fetchall()]
        crops, _ = registry.register(con, "crops_lite0", "frames", {"model": {"kind": "crops"}}, sampling="crops")
        probs, _ = registry.register(con, "frameprobs_crops_lite0", "frames", {"model": {"kind": "frame-head"}},
                                     inputs=[{"name": "crops_lite0", "version": 1}])
        con.executemany("INSERT INTO feature_rows VALUES (?, ?, ?, ?, 'done', NULL, 3)",
                        [[fs.name, fs.version, v, i] for fs in (crops, probs) for i, v in enumerate(rows)])
        row = rows.index(video)
        spec = lambda shape, dtype, fill: arrays.ArraySpec(shape, dtype, fill)  # noqa: E731
        group = arrays.create_group(ws, crops, len(rows), 3, {"box": spec((4,), "float32", float("nan")),
                                                              "frame_index": spec((), "int32", -1),
                                                              "valid": spec((), "bool", False)})
        arrays.write_rows(group, row, {"box": np.array([[[0.1, 0.4, 0.1, 0.2], [0.4, 0.4, 0.1, 0.2],
                                                         [0.9, 0.1, 0.05, 0.05]]], np.float32),
                                       "frame_index": np.array([[8, 8, 16]], np.int32),
                                       "valid": np.ones((1, 3), bool)})
        head = arrays.create_group(ws, probs, len(rows), 3, {"probs": spec((4,), "float16", 0),
                                                             "valid": spec((), "bool", False)},
                                   attrs={"classes": classes, "source": crops.ref})
        p = np.array([[[0.05, 0.9, 0.03, 0.02], [0.1, 0.05, 0.05, 0.8], [0.5, 0.1, 0.35, 0.05]]], np.float16)
        arrays.write_rows(head, row, {"probs": p, "valid": np.ones((1, 3), bool)})
        for fs in (crops, probs):
            registry.mark_complete(con, fs, len(rows))
    assert assign_classes(ws) == "frameprobs_crops_lite0@1"
    with connect(ws, read_only=True) as con:
        named = con.execute("SELECT track_id, class FROM tracks WHERE video_id = ? ORDER BY track_id",
                            [video]).fetchall()
        per_class = con.execute("SELECT class, maxn, tracks FROM class_counts WHERE video_id = ? ORDER BY class",
                                [video]).fetchall()
    # track 3 has no crop: the clip's mean (chimpanzee 0.35, duiker 0.14, elephant 0.29; blank is never a class)
    assert named == [(1, "chimpanzee"), (2, "elephant"), (3, "chimpanzee")]
    assert per_class == [("chimpanzee", 2, 2), ("elephant", 1, 1)]
