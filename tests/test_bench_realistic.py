"""bench/realistic.py: splits that hold out what they say, animals at camera-trap sizes and times, valid clips."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from jungle.classes import PRIMATRIX_CLASSES

pytestmark = pytest.mark.slow  # generates benchmark clips: ~3 s a test

REPO = Path(__file__).resolve().parent.parent


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_realistic", REPO / "bench" / "realistic.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
FULL = bench.BenchConfig()                     # the default pool: planned, not rendered
SMALL = bench.BenchConfig(clips=14, duration=5.0, min_clips=(1, 0, 1, 0), seed=3)


@pytest.fixture(scope="module")
def infrared(shared_media) -> dict[str, bool]:
    return bench.site_infrared(FULL, shared_media)


@pytest.fixture(scope="module")
def plan(infrared) -> list:
    return bench.plan_clips(FULL, infrared)


@pytest.fixture(scope="module")
def collection(tmp_path_factory, shared_media):
    directory = tmp_path_factory.mktemp("realistic")
    record = bench.make_collection(directory, SMALL, shared_media, workers=1)
    return directory, record


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_photo_split_shares_no_photograph(plan):
    train = {c.photo_source for c in bench.split_members(plan, "photo", "train") if c.photo_source}
    test = {c.photo_source for c in bench.split_members(plan, "photo", "test") if c.photo_source}
    assert test and not train & test
    site_train = {c.photo_source for c in bench.split_members(plan, "site", "train") if c.photo_source}
    site_test = {c.photo_source for c in bench.split_members(plan, "site", "test") if c.photo_source}
    assert site_test and not site_train & site_test
    # cut-outs of one photograph (two elephants of one herd) never fall on both sides
    assert len({c.photo_source for c in plan if "african_elephants" in c.photo_source}) == 1


def test_the_site_split_shares_no_site(plan):
    train = {c.site for c in bench.split_members(plan, "site", "train")}
    test = {c.site for c in bench.split_members(plan, "site", "test")}
    assert test and train and not train & test
    assert {c.site for c in bench.split_members(plan, "photo", "test")} & train  # the photo split shares sites


def test_a_class_with_one_photograph_is_train_only(plan, infrared):
    sources = bench.photo_sources()
    single = {label for label, found in sources.items() if len(found) == 1}
    assert {"elephant", "leopard", "reptile"} <= single
    for split in bench.SPLITS:
        tested = {c.label for c in bench.split_members(plan, split, "test")}
        trained = {c.label for c in bench.split_members(plan, split, "train")}
        assert not single & tested and single <= trained
        assert {label for label, found in sources.items() if len(found) > 1} <= tested
    described = bench.describe_splits(FULL, plan, infrared)
    assert set(described["classes_train_only"]) == single
    assert all(not described["test_photographs"][label] for label in single)
    assert "train-only" in bench.render_description(described)


def test_animals_come_at_camera_trap_sizes_and_times(plan):
    animals = [c for c in plan if c.label != "blank"]
    widths = np.array([c.width for c in animals])
    seconds = np.array([(c.leave_frame - c.enter_frame) / FULL.fps for c in animals])
    assert FULL.animal_width[0] <= widths.min() < 0.05 and 0.4 < widths.max() <= FULL.animal_width[1]
    assert FULL.visible_s[0] <= seconds.min() and seconds.max() <= FULL.visible_s[1]
    assert all(0 <= c.enter_frame and c.leave_frame <= FULL.frames for c in animals)
    assert {c.occluder for c in animals} == {"none", "grass", "trunk"}
    assert {c.edge for c in animals} == {-1, 0, 1}
    blanks = [c for c in plan if c.label == "blank"]
    assert 0.4 < len(blanks) / len(plan) < 0.6 and all(c.enter_frame == c.leave_frame == 0 for c in blanks)


def test_the_plan_is_fixed_by_the_seed(plan, infrared):
    assert bench.plan_clips(FULL, infrared) == plan
    other = bench.plan_clips(FULL.model_copy(update={"seed": 1}), infrared)
    assert other != plan
    reseeded = FULL.model_copy(update={"seed": 1})
    assert bench.split_photos(FULL) == bench.split_photos(FULL) != bench.split_photos(reseeded)


def test_clips_are_valid_videos_with_their_split_labels(collection):
    import av

    directory, record = collection
    assert record["clips"] == SMALL.clips and record["key"] == SMALL.key()
    clips = {row["filename"]: row for row in _rows(directory / "clips.csv")}
    assert len(clips) == SMALL.clips
    for split in bench.SPLITS:
        for side in ("train", "test"):
            for row in _rows(directory / split / f"{side}_labels.csv"):
                positives = [c for c in PRIMATRIX_CLASSES if row[c] == "1"]
                clip = clips[row["filename"]]
                assert positives == [clip["label"]] and clip[f"{split}_split"] == side
                assert (directory / clip["relpath"]).is_file()
    first = next(iter(clips.values()))
    with av.open(str(directory / first["relpath"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == SMALL.frames == 40 and frames[0].shape == (180, 320, 3)
    assert bench.make_collection(directory, SMALL, workers=1) == record  # same configuration: reused as is
    with pytest.raises(ValueError, match="other settings"):
        bench.make_collection(directory, SMALL.model_copy(update={"seed": 4}), workers=1)


def test_clips_csv_sizes_are_in_range(collection):
    directory, _ = collection
    for row in _rows(directory / "clips.csv"):
        if row["label"] == "blank":
            assert float(row["width_frac"]) == 0 and row["photo_split"] in ("train", "test")
            continue
        assert 0 < float(row["width_frac"]) <= SMALL.animal_width[1] + 1 / SMALL.width
        assert 0 < float(row["height_frac"]) <= 0.93
        assert SMALL.visible_s[0] <= float(row["leave_s"]) - float(row["enter_s"]) <= SMALL.visible_s[1]


def test_the_animal_is_on_screen_only_in_the_stated_interval(collection, shared_media):
    directory, _ = collection
    rows = _rows(directory / "clips.csv")
    specs = {s.filename: s for s in bench.plan_clips(SMALL, bench.site_infrared(SMALL, shared_media))}
    animals = [r for r in rows if r["label"] != "blank"]
    assert animals and any(r["label"] == "blank" for r in rows)
    cache = directory / "cutouts"
    for row in animals[:4]:
        spec = specs[row["filename"]]
        enter, leave = spec.enter_frame, spec.leave_frame
        assert (float(row["enter_s"]), float(row["leave_s"])) == (enter / SMALL.fps, leave / SMALL.fps)
        shown = np.stack(list(bench.render_clip(spec, SMALL, shared_media, cache=cache))).astype(np.int16)
        empty = np.stack(list(bench.render_clip(spec, SMALL, shared_media, with_animal=False,
                                                cache=cache))).astype(np.int16)
        changed = np.abs(shown - empty).reshape(SMALL.frames, -1)
        expected = np.zeros(SMALL.frames, bool)
        expected[enter:leave] = True
        assert (changed[expected].max(axis=1) > 0).all(), row["filename"]   # something of it in every frame
        assert changed[~expected].max() == 0  # outside the interval: exactly the empty clip


def test_a_quarter_of_the_animal_stays_inside_the_frame(plan):
    rng = np.random.default_rng(0)
    for spec in [c for c in plan if c.label != "blank"][:200]:
        track = bench.animal_track(spec, FULL, aspect=float(rng.uniform(0.4, 2.5)), native_w=256, rng=rng)
        inside = np.clip(track.left + track.w, 0, FULL.width) - np.clip(track.left, 0, FULL.width)
        assert (inside >= 0.24 * track.w - 1).all()
        assert (track.top + track.h > 0).all() and (track.top < FULL.height).all()


def test_blank_clips_still_move(shared_media):
    """Wind, light and noise: consecutive frames of a blank clip differ (motion is not an animal)."""
    spec = next(s for s in bench.plan_clips(SMALL, {}) if s.label == "blank")
    frames = np.stack(list(bench.render_clip(spec, SMALL, shared_media))).astype(np.int16)
    assert np.abs(np.diff(frames, axis=0)).mean() > 1.0
