"""How well jungle counts animals: MaxN per clip and per event on generated groups, against the
single-frame counts, with the tracker compared to ByteTrack on the same boxes.

Makes (or reuses) two groups collections (``bench/groups.py``): ``dev`` (the realistic benchmark's
training photographs and sites) and ``test`` (its held-out photographs and sites). Each goes
through the README's commands in a fresh workspace (``jungle ingest``, ``jungle featurize --frames
uniform:4 --no-crops``: the boxes that pick the clips to count, ``jungle count``). The boxes
``jungle count`` stored for each clip (every detector box on every sampled frame, with the share of
its pixels that moved) are then counted every way, on the same boxes:

- ``tracks``: jungle's tracker (MaxN: the most tracks alive at once), as ``jungle count`` stored it;
- ``tracks (no still filter)``: the same without dropping tracks that never move;
- ``bytetrack``: ByteTrack (Roboflow's ``trackers`` 2.6.1, Apache-2.0) on the same boxes, MaxN over
  its tracks, with the same still filter (``bytetrack (no still filter)`` without); only when
  ``trackers`` can be imported (it requires opencv-python, which would replace jungle's
  opencv-python-headless: install it apart, ``pip install --no-deps --target DIR trackers==2.6.1
  supervision==0.31.2 'pydeprecate<0.14'``, and put DIR on PYTHONPATH);
- ``best frame``: the boxes (score >= 0.25) on the frame with the best single box (AddaxAI's count);
- ``most boxes``: the most boxes (score >= 0.25) on any frame.

A clip ``jungle count`` skipped (featurize's boxes showed nothing) counts 0 every way. Scores: on
the clips with 1-5 animals, exact-count accuracy and mean absolute error of MaxN per clip, and per
event (the largest MaxN of its clips, against the largest true MaxN); on blank clips, the share
counted 0. ``--tune`` searches the tracker's and ByteTrack's settings on ``dev`` only (exact accuracy,
then MAE) and prints the best; the defaults in ``jungle.features.tracks.tracker`` are what it chose.
``test`` is only ever scored. The tracker's search tries the defaults and 400 combinations of its grid
(drawn with a fixed seed).

    python bench/counts.py DIR                 # 60 dev + 150 test clips
    python bench/counts.py DIR --tune          # and the search on dev
    python bench/counts.py DIR --smallest      # 2 + 2 clips of 5 s, every clip counted: a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import groups  # noqa: E402  (bench/groups.py)

from jungle.features.tracks.counting import count_clip  # noqa: E402
from jungle.features.tracks.tracker import TrackerConfig, track_clip  # noqa: E402

SMALLEST = {"dev": 2, "test": 2, "duration": 5.0}
DEFAULT = {"dev": 60, "test": 150}
METHODS = ("tracks", "tracks (no still filter)", "bytetrack", "bytetrack (no still filter)", "best frame",
           "most boxes")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def jungle(*args: str) -> float:
    """Run one ``jungle`` command in this process; return its seconds."""
    from jungle.cli import app

    _say("$ jungle " + " ".join(args))
    began = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        code = app(list(args), standalone_mode=False)
    if code:
        raise SystemExit(f"`jungle {' '.join(args)}` failed (exit {code})")
    return time.perf_counter() - began


# ----------------------------------------------------------------------------------------------- data
def stored(workspace: Path) -> dict[str, dict]:
    """Per clip filename: status, jungle's MaxN, its frames' boxes (x1, y1, x2, y2, score, moving)."""
    import duckdb

    con = duckdb.connect(str(workspace / "jungle.duckdb"), read_only=True)
    try:
        clips = con.execute("SELECT v.filename, v.video_id, c.status, c.maxn, c.frame_indices, c.seconds "
                            "FROM clip_counts c JOIN videos v USING (video_id)").fetchall()
        boxes = con.execute("SELECT video_id, frame_index, x, y, x + w, y + h, score, coalesce(moving, 'nan') "
                            "FROM track_boxes ORDER BY video_id, frame_index, score DESC").fetchall()
    finally:
        con.close()
    by_frame: dict[tuple[str, int], list] = {}
    for video_id, frame, *box in boxes:
        by_frame.setdefault((video_id, frame), []).append(box)
    out = {}
    for filename, video_id, status, maxn, frames, seconds in clips:
        frames = list(frames or [])
        out[filename] = {"status": status, "maxn": maxn, "seconds": seconds or 0.0,
                         "boxes": [np.asarray(by_frame.get((video_id, f), []), np.float64).reshape(-1, 6)
                                   for f in frames]}
    return out


def truth(collection: Path) -> list[dict]:
    with open(collection / "clips.csv", newline="", encoding="utf-8") as handle:
        return [{**r, "animals": int(r["animals"]), "maxn": int(r["maxn"]), "maxn_visible": int(r["maxn_visible"])}
                for r in csv.DictReader(handle)]


# ----------------------------------------------------------------------------------------------- counting
def tracker_count(boxes: list[np.ndarray], config: TrackerConfig, still: bool = True) -> int:
    tracks = track_clip(boxes, config)
    if still:
        tracks = [t for t in tracks if not t.still(config.min_moving)]
    return count_clip(boxes, tracks, config.min_score).maxn


def bytetrack_count(boxes: list[np.ndarray], settings: dict, min_moving: float, still: bool = True) -> int:
    """MaxN over ByteTrack's tracks (alive from first to last frame with an id), boxes of the same frames."""
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(frame_rate=30.0, **settings)
    spans: dict[int, list] = {}
    for t, found in enumerate(boxes):
        found = found if len(found) else np.zeros((0, 6))
        detections = sv.Detections(xyxy=found[:, :4] * 1000.0, confidence=found[:, 4],
                                   data={"moving": found[:, 5]})
        out = tracker.update(detections)
        for track_id, moving in zip(out.tracker_id, out.data.get("moving", np.full(len(out), np.nan))):
            if track_id >= 0:
                span = spans.setdefault(int(track_id), [t, t, []])
                span[1] = t
                span[2].append(float(moving))
    kept = []
    for first, last, moving in spans.values():
        known = [m for m in moving if np.isfinite(m)]
        if still and min_moving > 0 and known and float(np.median(known)) < min_moving:
            continue
        kept.append((first, last))
    alive = np.zeros(len(boxes) + 1, np.int64)
    for first, last in kept:
        alive[first] += 1
        alive[last + 1] -= 1
    return int(np.cumsum(alive)[: len(boxes)].max(initial=0))


def frame_counts(boxes: list[np.ndarray], min_score: float = 0.25) -> tuple[int, int]:
    """(boxes on the frame with the best box, most boxes on any frame)."""
    kept = [b[b[:, 4] >= min_score] for b in boxes]
    if not any(len(b) for b in kept):
        return 0, 0
    best = int(np.argmax([b[:, 4].max() if len(b) else -1 for b in kept]))
    return len(kept[best]), max(len(b) for b in kept)


def have_bytetrack() -> bool:
    try:
        import trackers  # noqa: F401
    except ImportError:
        return False
    return True


BYTETRACK = {"lost_track_buffer": 4, "track_activation_threshold": 0.25, "minimum_consecutive_frames": 2,
             "minimum_iou_threshold": 0.1, "high_conf_det_threshold": 0.5}


def predictions(clips: dict[str, dict], config: TrackerConfig, bytetrack: dict | None) -> dict[str, dict[str, int]]:
    """Per clip filename, each method's MaxN."""
    out = {}
    for filename, clip in clips.items():
        boxes = clip["boxes"]
        if clip["status"] != "counted":
            out[filename] = dict.fromkeys(METHODS, 0)
            continue
        best, most = frame_counts(boxes, config.min_score)
        row = {"tracks": tracker_count(boxes, config), "tracks (no still filter)": tracker_count(boxes, config, False),
               "best frame": best, "most boxes": most}
        if bytetrack is not None:
            row["bytetrack"] = bytetrack_count(boxes, bytetrack, config.min_moving)
            row["bytetrack (no still filter)"] = bytetrack_count(boxes, bytetrack, config.min_moving, False)
        out[filename] = row
    return out


def scores(rows: list[dict], predicted: dict[str, dict[str, int]]) -> dict[str, dict]:
    """Per method: clips and events with animals (exact share, MAE), blank clips counted 0."""
    methods = [m for m in METHODS if any(m in p for p in predicted.values())]
    out = {}
    for method in methods:
        animal = [r for r in rows if r["animals"] > 0]
        error = np.array([predicted[r["filename"]][method] - r["maxn"] for r in animal])
        events: dict[str, list] = {}
        for r in animal:
            events.setdefault(r["event"], []).append((predicted[r["filename"]][method], r["maxn"]))
        event_error = np.array([max(p for p, _ in e) - max(t for _, t in e) for e in events.values()])
        blank = [predicted[r["filename"]][method] == 0 for r in rows if r["animals"] == 0]
        visible = np.array([predicted[r["filename"]][method] == r["maxn_visible"] for r in animal])
        out[method] = {"clips": len(animal), "exact": float(np.mean(error == 0)) if len(error) else float("nan"),
                       "mae": float(np.mean(np.abs(error))) if len(error) else float("nan"),
                       "over": float(np.mean(error > 0)) if len(error) else float("nan"),
                       "under": float(np.mean(error < 0)) if len(error) else float("nan"),
                       "events": len(events), "event_exact": float(np.mean(event_error == 0)) if len(events) else 0.0,
                       "event_mae": float(np.mean(np.abs(event_error))) if len(events) else 0.0,
                       "blank": len(blank), "blank_zero": float(np.mean(blank)) if blank else float("nan"),
                       "exact_visible": float(np.mean(visible)) if len(visible) else float("nan")}
    return out


def table(result: dict[str, dict]) -> str:
    lines = ["| method | clips | exact | MAE | over | under | events | event exact | event MAE | blank clips at 0 "
             "| exact vs visible MaxN |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method, s in result.items():
        lines.append(f"| {method} | {s['clips']} | {s['exact']:.3f} | {s['mae']:.3f} | {s['over']:.3f} | "
                     f"{s['under']:.3f} | {s['events']} | {s['event_exact']:.3f} | {s['event_mae']:.3f} | "
                     f"{s['blank_zero']:.3f} ({s['blank']}) | {s['exact_visible']:.3f} |")
    return "\n".join(lines)


def by_animals(rows: list[dict], predicted: dict, method: str) -> str:
    parts = []
    for n in range(1, 6):
        members = [r for r in rows if r["maxn"] == n]
        if members:
            exact = np.mean([predicted[r["filename"]][method] == n for r in members])
            parts.append(f"MaxN {n}: {exact:.2f} ({len(members)})")
    return f"{method}: " + ", ".join(parts)


# ----------------------------------------------------------------------------------------------- tuning
def _key(s: dict) -> tuple:
    return (s["exact"], -s["mae"])


def tune(rows: list[dict], clips: dict[str, dict], bytetrack: bool) -> tuple[TrackerConfig, dict | None]:
    """The tracker's and ByteTrack's best settings on these (dev) clips."""
    grid = {"max_gap": (2, 4, 6, 8), "min_hits": (2, 3, 4), "min_iou": (0.05, 0.1, 0.3),
            "max_distance": (0.5, 1.0, 1.5), "min_score": (0.15, 0.25, 0.35), "extend_score": (0.1, 0.25),
            "min_moving": (0.0, 0.01, 0.02, 0.04), "contained": (0.8, 0.9, 1.0)}
    best, best_score = TrackerConfig(), None
    names = list(grid)
    default = tuple(getattr(TrackerConfig(), n) for n in names)
    combos = list(itertools.product(*grid.values()))
    rng = np.random.default_rng(0)                      # 400 of the grid's combinations, the defaults first
    combos = [default] + [combos[i] for i in rng.choice(len(combos), size=min(400, len(combos)), replace=False)]
    for values in combos:
        config = TrackerConfig(**dict(zip(names, values)))
        predicted = {f: {"tracks": tracker_count(c["boxes"], config) if c["status"] == "counted" else 0}
                     for f, c in clips.items()}
        score = scores(rows, predicted)["tracks"]
        if best_score is None or _key(score) > _key(best_score):
            best, best_score = config, score
    _say(f"tracker on dev: {json.dumps({n: getattr(best, n) for n in names})} exact {best_score['exact']:.3f} "
         f"MAE {best_score['mae']:.3f}")
    best_bt = None
    if bytetrack:
        bt_grid = {"lost_track_buffer": (2, 4, 8), "track_activation_threshold": (0.25, 0.4, 0.6),
                   "minimum_consecutive_frames": (1, 2, 3), "minimum_iou_threshold": (0.05, 0.1, 0.3),
                   "high_conf_det_threshold": (0.25, 0.4, 0.6)}
        best_bt_score = None
        for values in itertools.product(*bt_grid.values()):
            settings = dict(zip(bt_grid, values))
            predicted = {f: {"bytetrack": bytetrack_count(c["boxes"], settings, best.min_moving)
                             if c["status"] == "counted" else 0} for f, c in clips.items()}
            score = scores(rows, predicted)["bytetrack"]
            if best_bt_score is None or _key(score) > _key(best_bt_score):
                best_bt, best_bt_score = settings, score
        _say(f"bytetrack on dev: {json.dumps(best_bt)} exact {best_bt_score['exact']:.3f} "
             f"MAE {best_bt_score['mae']:.3f}")
    return best, best_bt


# ----------------------------------------------------------------------------------------------- the run
def run_split(directory: Path, split: str, clips: int, seed: int, workers: int, duration: float = 15.0,
              featurize: bool = True) -> tuple[list[dict], dict, dict]:
    """One collection through ``jungle ingest``, ``featurize`` (without: every clip counted) and ``count``."""
    collection = directory / split
    config = groups.GroupConfig(seed=seed, split=split, clips=clips, duration=duration)
    groups.make_groups(collection, config, workers=workers, log=_say)
    workspace = directory / f"ws-{split}"
    seconds = {}
    if not (workspace / "jungle.duckdb").exists():
        seconds["ingest"] = jungle("ingest", str(collection / "clips"), "-w", str(workspace), "-q")
    if featurize:
        seconds["featurize"] = jungle("featurize", "--frames", "uniform:4", "--no-crops", "-w", str(workspace), "-q")
    seconds["count"] = jungle("count", "-w", str(workspace), "-q", *(() if featurize else ("--all",)))
    return truth(collection), stored(workspace), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--dev", type=int, default=DEFAULT["dev"])
    parser.add_argument("--test", type=int, default=DEFAULT["test"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tune", action="store_true", help="search the trackers' settings on dev")
    parser.add_argument("--smallest", action="store_true",
                        help=f"{SMALLEST['dev']} dev + {SMALLEST['test']} test clips of {SMALLEST['duration']:g} s, "
                             "no featurize (every clip counted)")
    args = parser.parse_args()
    sizes = SMALLEST if args.smallest else {"dev": args.dev, "test": args.test}
    bytetrack = have_bytetrack()
    if not bytetrack:
        _say("note: `trackers` is not importable: no ByteTrack rows (see this file's docstring)")
    config = TrackerConfig()
    bt_settings = BYTETRACK if bytetrack else None
    report = {}
    for split in ("dev", "test"):
        rows, clips, seconds = run_split(args.directory, split, sizes[split], args.seed, args.workers,
                                         sizes.get("duration", 15.0), featurize=not args.smallest)
        if split == "dev" and args.tune:
            config, bt_settings = tune(rows, clips, bytetrack)
        predicted = predictions(clips, config, bt_settings)
        jungle_maxn = {f: c["maxn"] for f, c in clips.items() if c["status"] == "counted"}
        if config == TrackerConfig():
            mismatch = [f for f, n in jungle_maxn.items() if predicted[f]["tracks"] != n]
            assert not mismatch, f"re-tracking the stored boxes differs from jungle count on {mismatch}"
        counted = [c["seconds"] for c in clips.values() if c["status"] == "counted"]
        skipped = [r for r in rows if clips.get(r["filename"], {}).get("status") != "counted"]
        result = scores(rows, predicted)
        report[split] = {"scores": result, "seconds": seconds, "clips": len(rows),
                         "counted": len(counted), "count_seconds_per_counted_clip": float(np.mean(counted or [0]))}
        print(f"\n## {split}: {len(rows)} clips ({sum(r['animals'] > 0 for r in rows)} with animals, "
              f"{len({r['event'] for r in rows})} events), {len(counted)} counted; "
              f"stage seconds: {json.dumps({k: round(v, 1) for k, v in seconds.items()})}, "
              f"{report[split]['count_seconds_per_counted_clip']:.2f} s per counted clip (decode, detector, tracks); "
              f"skipped (featurize's boxes showed nothing): {sum(r['animals'] > 0 for r in skipped)} clips with "
              f"animals, {sum(r['animals'] == 0 for r in skipped)} blank")
        print(table(result))
        for method in ("tracks", "most boxes", "best frame"):
            print(by_animals(rows, predicted, method))
    print(json.dumps({"tracker": config.model_dump(), "bytetrack": bt_settings}))
    (args.directory / "counts-report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
