"""bench/realistic.py: valid labelled clips, with the animal on screen exactly in the stated interval."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from jungle.classes import PRIMATRIX_CLASSES

pytestmark = pytest.mark.slow  # renders a benchmark collection (~15 s)

REPO = Path(__file__).resolve().parent.parent


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_realistic", REPO / "bench" / "realistic.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
SMALL = bench.BenchConfig(n_train=16, n_test=6, duration=5.0, min_train=0, min_test=0, seed=3)


@pytest.fixture(scope="module")
def collection(tmp_path_factory, shared_media):
    directory = tmp_path_factory.mktemp("realistic")
    record = bench.make_collection(directory, SMALL, shared_media, workers=1)
    return directory, record


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_clips_are_valid_videos_with_one_label_each(collection):
    import av

    directory, record = collection
    assert record["clips"] == 22 and record["key"] == SMALL.key()
    clips = {row["filename"]: row for row in _rows(directory / "clips.csv")}
    for split, n in (("train", 16), ("test", 6)):
        labels = _rows(directory / f"{split}_labels.csv")
        assert len(labels) == n and list(labels[0]) == ["filename", *PRIMATRIX_CLASSES]
        for row in labels:
            positives = [c for c in PRIMATRIX_CLASSES if row[c] == "1"]
            clip = clips[row["filename"]]
            assert positives == [clip["label"]] and clip["split"] == split
            assert (directory / split / clip["site"] / row["filename"]).is_file()
    first = next(iter(clips.values()))
    with av.open(str(directory / first["split"] / first["site"] / first["filename"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == SMALL.frames == 40 and frames[0].shape == (180, 320, 3)
    assert bench.make_collection(directory, SMALL, workers=1) == record  # same configuration: reused as is


def test_the_animal_is_on_screen_only_in_the_stated_interval(collection, shared_media):
    directory, _ = collection
    rows = _rows(directory / "clips.csv")
    animals = [r for r in rows if r["label"] != "blank"]
    assert animals and any(r["label"] == "blank" for r in rows)
    specs = {s.filename: s for s in bench.plan_clips(SMALL)}
    for row in animals[:3]:
        spec = specs[row["filename"]]
        enter, leave = spec.enter_frame, spec.leave_frame
        assert (float(row["enter_s"]), float(row["leave_s"])) == (enter / SMALL.fps, leave / SMALL.fps)
        assert SMALL.visible_s[0] <= (leave - enter) / SMALL.fps <= SMALL.visible_s[1]
        shown = np.stack(list(bench.render_clip(spec, SMALL, shared_media))).astype(np.int16)
        empty = np.stack(list(bench.render_clip(spec, SMALL, shared_media, with_animal=False))).astype(np.int16)
        changed = np.abs(shown - empty).reshape(SMALL.frames, -1)
        on_screen = (changed > 20).sum(axis=1) >= 100   # at least 100 pixel values clearly changed
        expected = np.zeros(SMALL.frames, bool)
        expected[enter:leave] = True
        np.testing.assert_array_equal(on_screen, expected, err_msg=row["filename"])
        assert changed[~expected].max() == 0  # outside the interval: exactly the empty clip


def test_blank_clips_still_move(shared_media):
    """Wind, light and noise: consecutive frames of a blank clip differ (motion is not an animal)."""
    spec = next(s for s in bench.plan_clips(SMALL) if s.label == "blank")
    frames = np.stack(list(bench.render_clip(spec, SMALL, shared_media))).astype(np.int16)
    assert np.abs(np.diff(frames, axis=0)).mean() > 1.0
