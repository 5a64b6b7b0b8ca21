"""The demo collection generator: class proportions, the videos as PyAV reads them back, file
sizes, determinism, resuming, and ``jungle demo make``. Real files in tmp_path throughout."""

from __future__ import annotations

import csv
import ctypes
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from jungle.classes import PRIMATRIX_CLASSES
from jungle.cli import app
from jungle.demo.config import REAL_RESOLUTIONS, DemoConfig
from jungle.demo.generate import DemoError, clip_script, make_demo, read_demo, write_clip
from jungle.demo.plan import allocate_counts, plan_collection
from jungle.demo.scenes import build_scene, render_frames

pytestmark = pytest.mark.slow  # generates demo collections: ~2 s a test

#: Small enough to be quick, large enough for every species and several clips per camera.
SMALL = DemoConfig(seed=3, n_train=72, n_test=8, duration=2.0, fps=8, scale=0.2, n_cameras=3, min_per_class=1)
#: The determinism / resume / CLI runs.
TINY = DemoConfig(seed=5, n_train=12, n_test=2, duration=1.0, fps=6, scale=0.15, n_cameras=2, min_per_class=0)
TINY_ARGS = ["--seed", "5", "--n-train", "12", "--n-test", "2", "--duration", "1", "--fps", "6", "--scale", "0.15",
             "--cameras", "2", "--min-per-class", "0", "--workers", "1"]


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def _decode(path: Path) -> tuple[av.VideoStream, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return stream, frames


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo") / "small"
    manifest = make_demo(directory, SMALL)
    columns, clips = _read_csv(directory / "clips.csv")
    return manifest, clips


def test_labels_follow_the_configured_proportions(small):
    manifest, clips = small
    header, rows = _read_csv(manifest.train_labels)
    assert header == ["filename", *PRIMATRIX_CLASSES]
    assert len(rows) == SMALL.n_train
    counts = Counter()
    for row in rows:
        values = [int(row[c]) for c in PRIMATRIX_CLASSES]
        assert set(values) <= {0, 1} and 1 <= sum(values) <= 2
        assert not (int(row["blank"]) and sum(values) > 1), "a blank clip has no species"
        counts.update(c for c in PRIMATRIX_CLASSES if int(row[c]))
    assert counts == {c: n for c, n in manifest.train_counts.items() if n}
    # blank is the majority, every species is there, the order of the configured frequencies holds
    assert counts["blank"] > SMALL.n_train / 2
    assert all(counts[c] >= SMALL.min_per_class for c in PRIMATRIX_CLASSES)
    primary = Counter(c["species"].split(";")[0] for c in clips if c["split"] == "train")
    expected = allocate_counts(SMALL.n_train, dict(SMALL.frequencies), SMALL.min_per_class)
    assert primary == {c: n for c, n in expected.items() if n}
    order = [c for c, _ in SMALL.frequencies]
    assert all(expected[a] >= expected[b] for a, b in zip(order, order[1:]))
    default = DemoConfig()
    at_default = allocate_counts(default.n_train, dict(default.frequencies), default.min_per_class)
    assert at_default["blank"] / default.n_train == pytest.approx(0.6, abs=0.02)
    assert at_default["duiker"] > at_default["other (primate)"] > at_default["chimpanzee"] > at_default["lion"] == 3


def test_test_split_is_unlabelled_and_listed_like_the_competition(small):
    manifest, _ = small
    header, submission = _read_csv(manifest.submission_format)
    _, answers = _read_csv(manifest.test_labels)
    _, train = _read_csv(manifest.train_labels)
    test_names = sorted(p.name for p in manifest.test_clips)
    assert header == ["filename", *PRIMATRIX_CLASSES]
    assert [r["filename"] for r in submission] == [r["filename"] for r in answers] == test_names
    priors = {c: manifest.train_counts[c] / SMALL.n_train for c in PRIMATRIX_CLASSES}
    assert all(float(submission[0][c]) == pytest.approx(priors[c], abs=1e-6) for c in PRIMATRIX_CLASSES)
    names = [r["filename"] for r in train] + test_names
    assert len(set(n.lower() for n in names)) == len(names), "file names are unique"
    assert sorted(p.name for p in manifest.train_clips) == sorted(r["filename"] for r in train)
    assert all(p.exists() and p.parent.parent == manifest.test_dir for p in manifest.test_clips)
    assert all(p.exists() and p.parent.parent == manifest.train_dir for p in manifest.train_clips)
    assert {p.parent.name for p in manifest.test_clips} <= {c.name for c in manifest.cameras}


def test_videos_have_their_camera_size_fps_duration_and_day_or_night_colour(small):
    manifest, clips = small
    sizes = defaultdict(set)
    scaled = {(2 * round(w * SMALL.scale / 2), 2 * round(h * SMALL.scale / 2)) for w, h in REAL_RESOLUTIONS}
    night_seen = day_seen = 0
    for clip in clips:
        path = manifest.directory / clip["split"] / clip["site"] / clip["filename"]
        stream, frames = _decode(path)
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (int(clip["width"]), int(clip["height"]))
        assert float(stream.average_rate) == SMALL.fps
        assert len(frames) == int(clip["frames"]) == stream.frames
        assert float(stream.duration * stream.time_base) == pytest.approx(len(frames) / SMALL.fps, abs=0.01)
        assert int(clip["frames"]) <= SMALL.frames
        sizes[clip["site"]].add((int(clip["width"]), int(clip["height"])))
        video = np.stack(frames).astype(np.int16)
        chroma = np.abs(video[..., 0] - video[..., 1]).mean() + np.abs(video[..., 2] - video[..., 1]).mean()
        if clip["night"] == "1":
            assert (video[..., 0] == video[..., 1]).all() and (video[..., 1] == video[..., 2]).all()
            night_seen += 1
        else:
            assert chroma > 8, f"day clip {clip['filename']} looks gray"
            day_seen += 1
        assert path.stat().st_size == int(clip["bytes"])
    assert night_seen >= 5 and day_seen >= 5
    assert all(len(s) == 1 for s in sizes.values()), "one resolution per camera"
    assert {s for (s,) in sizes.values()} <= scaled and len(sizes) == SMALL.n_cameras
    assert len({s for (s,) in sizes.values()}) == 3, "the three real resolutions, scaled"
    full = sum(int(c["frames"]) == SMALL.frames for c in clips)
    assert full >= 0.8 * len(clips)


def test_animals_are_on_screen_for_part_of_the_clip(small):
    _, clips = small
    animal = [c for c in clips if c["species"] != "blank"]
    assert all(int(c["visible_frames"]) >= max(2, int(c["frames"]) // 4) for c in animal)
    partly = [c for c in animal if int(c["visible_frames"]) < int(c["frames"])]
    assert len(partly) >= 0.2 * len(animal)
    assert all(c["trigger"] for c in clips if c["species"] == "blank")


def test_clips_with_an_animal_are_larger_than_blank_clips_of_the_same_camera(small):
    _, clips = small
    sizes = defaultdict(lambda: {"animal": [], "blank": []})
    for c in clips:
        if int(c["frames"]) == SMALL.frames:
            sizes[c["site"]]["blank" if c["species"] == "blank" else "animal"].append(int(c["bytes"]))
    compared = 0
    for site, by_kind in sizes.items():
        if len(by_kind["animal"]) >= 3 and len(by_kind["blank"]) >= 3:
            assert np.mean(by_kind["animal"]) > np.mean(by_kind["blank"]), site
            compared += 1
    assert compared >= 2


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    first = make_demo(tmp_path / "a", TINY, workers=1)
    second = make_demo(tmp_path / "b", TINY, workers=2)
    for name in ("train_labels.csv", "test_labels.csv", "submission_format.csv", "clips.csv"):
        assert (first.directory / name).read_bytes() == (second.directory / name).read_bytes()
    assert [p.relative_to(first.directory) for p in first.train_clips + first.test_clips] == \
        [p.relative_to(second.directory) for p in second.train_clips + second.test_clips]
    for a, b in zip(first.train_clips + first.test_clips, second.train_clips + second.test_clips):
        assert np.array_equal(np.stack(_decode(a)[1]), np.stack(_decode(b)[1]))
        assert _sha(a) == _sha(b)
        assert a.stat().st_mtime == b.stat().st_mtime  # the "recording time" too: ingest's time features
    other = make_demo(tmp_path / "c", TINY.model_copy(update={"seed": 6}))
    assert (other.directory / "train_labels.csv").read_bytes() != (first.directory / "train_labels.csv").read_bytes()
    assert {p.name for p in other.train_clips}.isdisjoint(p.name for p in first.train_clips)


def _collection_digests(manifest) -> dict[str, str]:
    """sha256 of every file the generator wrote (clips and tables), by path inside the collection."""
    tables = ("train_labels.csv", "test_labels.csv", "submission_format.csv", "clips.csv")
    files = [*manifest.train_clips, *manifest.test_clips, *(manifest.directory / name for name in tables)]
    return {str(p.relative_to(manifest.directory)): _sha(p) for p in files}


def test_repeated_runs_with_one_and_two_workers_write_the_same_bytes(tmp_path):
    workers = (1, 2, 1, 2, 2, 1)
    digests = [_collection_digests(make_demo(tmp_path / f"run{i}", TINY, workers=w)) for i, w in enumerate(workers)]
    assert len(digests[0]) == 14 + 4
    differing = {f"run {i} (workers={workers[i]})": sorted(name for name in d if d[name] != digests[0][name])
                 for i, d in enumerate(digests) if d != digests[0]}
    assert not differing, f"files that differ from run 0 (workers=1): {differing}"


def _leave_freed_heap_filled_with(byte: int) -> None:
    """Allocate blocks of 64 B to 128 KiB, fill them with ``byte`` and free them: the next
    allocations (x264's buffers) get memory that still holds ``byte``."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    sizes = [1 << k for k in range(6, 18)] * 30
    blocks = [libc.malloc(size) for size in sizes]
    for block, size in zip(blocks, sizes):
        ctypes.memset(block, byte, size)
    for block in blocks:
        libc.free(block)


def test_clip_bytes_do_not_depend_on_memory_left_by_earlier_work(tmp_path):
    """Issue 13: with MB-tree rate control, x264 read uninitialised heap memory, so what a process
    had freed before (a worker's history) changed a clip's bytes (28-30 of 40 demo clips)."""
    plan = plan_collection(TINY)
    scenes = {camera: build_scene(camera) for camera in plan.cameras}
    for clip in plan.clips:
        frames = list(render_frames(scenes[clip.camera], clip_script(scenes[clip.camera], clip, TINY.fps)))
        digests = set()
        for byte in (0, 255, 128):
            _leave_freed_heap_filled_with(byte)
            path = tmp_path / f"{byte}.mp4"
            write_clip(path, frames, clip.camera.width, clip.camera.height, TINY.fps, TINY.crf)
            digests.add(_sha(path))
        assert len(digests) == 1, f"{clip.filename} ({clip.camera.width}x{clip.camera.height}): {len(digests)} versions"


def test_make_is_idempotent_resumes_and_refuses_to_mix(tmp_path):
    directory = tmp_path / "demo"
    made = make_demo(directory, TINY)
    assert made.written == 14 and read_demo(directory).train_clips == made.train_clips
    again = make_demo(directory, TINY)
    assert again.written == 0 and again.total_bytes == made.total_bytes
    lost = made.train_clips[3]
    digest = _sha(lost)
    lost.unlink()
    resumed = make_demo(directory, TINY)
    assert resumed.written == 1 and _sha(lost) == digest
    other = TINY.model_copy(update={"seed": 9})
    with pytest.raises(DemoError, match=r"another configuration \(seed=5\); choose another directory, or pass "
                                        r"--overwrite"):
        make_demo(directory, other)
    replaced = make_demo(directory, other, overwrite=True)
    assert replaced.written == 14 and not lost.exists()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(DemoError, match="is not empty and holds no demo.json"):
        make_demo(foreign, TINY)
    with pytest.raises(DemoError, match="holds no demo collection; run `jungle demo make"):
        read_demo(tmp_path / "nothing")


def test_config_is_validated():
    with pytest.raises(ValueError, match="n_train=10 is too small for min_per_class=3 over 23 species"):
        DemoConfig(n_train=10)
    with pytest.raises(ValueError, match="fps must be between 2 and 60"):
        DemoConfig(fps=1)
    stored = DemoConfig().model_dump(mode="json")
    assert DemoConfig().key() == DemoConfig.model_validate(stored).key() != DemoConfig(seed=1).key()


def test_cli_demo_make_prints_the_counts(tmp_path):
    directory = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "make", str(directory), *TINY_ARGS, "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, rows = _read_csv(directory / "train_labels.csv")
    _, test_rows = _read_csv(directory / "test_labels.csv")
    expected = "class,train,test\n" + "".join(
        f"{c},{sum(int(r[c]) for r in rows)},{sum(int(r[c]) for r in test_rows)}\n" for c in PRIMATRIX_CLASSES)
    assert result.stdout == expected
    again = CliRunner().invoke(app, ["demo", "make", str(directory), *TINY_ARGS])
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"Already complete: {directory} holds 14 clips (12 train, 2 test) from 2 cameras, ")
    bad = CliRunner().invoke(app, ["demo", "make", str(tmp_path / "x"), "--n-train", "5"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: Invalid demo configuration: n_train=5 is too small for min_per_class=3 "
                                 "over 23 species (needs at least 69 clips")
    helped = CliRunner().invoke(app, ["demo", "make", "--help"])
    assert helped.exit_code == 0
    assert "Usage: jungle demo make" in helped.output and "Generate a labelled demo collection" in helped.output
    assert all(option in helped.output for option in ("--n-train", "--n-test", "--seed", "--scale", "--overwrite"))


def test_recording_times_agree_with_day_and_night(small):
    from datetime import datetime, timezone

    manifest, clips = small
    hours = {"0": [], "1": []}
    for row in clips:
        path = manifest.directory / row["split"] / row["site"] / row["filename"]
        stamp = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        assert datetime(2016, 6, 1, tzinfo=timezone.utc) <= stamp < datetime(2016, 8, 2, tzinfo=timezone.utc)
        hours[row["night"]].append(stamp.hour)
    assert hours["1"] and hours["0"]
    assert all(h >= 20 or h < 5 for h in hours["1"]) and all(6 <= h < 18 for h in hours["0"])


def test_clips_carry_their_recording_time_in_the_container_and_the_info_bar(tmp_path):
    from dataclasses import replace
    from datetime import timedelta

    from _ingest_helpers import jungle, video_rows
    from jungle.store.workspace import Workspace

    manifest = make_demo(tmp_path / "demo", TINY)
    plan = plan_collection(TINY)
    barred = 0
    for clip in plan.clips:
        path = manifest.directory / clip.relpath
        with av.open(str(path)) as container:
            assert container.metadata["creation_time"] == f"{clip.recorded:%Y-%m-%dT%H:%M:%S}.000000Z"
        assert abs(path.stat().st_mtime - clip.recorded_at) < 1e-3
        scene = build_scene(clip.camera)
        script = clip_script(scene, clip, TINY.fps)
        assert script.started == clip.recorded
        if scene.info_bar:  # the bar, and only the bar, shows that time
            first = next(render_frames(scene, script))
            other = next(render_frames(scene, replace(script, started=clip.recorded + timedelta(hours=3))))
            changed = np.flatnonzero((first != other).reshape(first.shape[0], -1).any(axis=1))
            assert len(changed) and changed.min() >= first.shape[0] * 0.85  # the bottom 7.5% (7 rows at least)
            barred += 1
    assert barred  # TINY has a camera with an information bar
    ws = tmp_path / "ws"
    assert jungle("ingest", manifest.directory, "-w", ws, "--no-stats", "-q").exit_code == 0
    rows = video_rows(Workspace.resolve(ws))
    assert {(r["relpath"], r["captured_at"], r["utc_offset_minutes"], r["time_source"]) for r in rows.values()} == {
        (c.relpath, c.recorded, 0, "container") for c in plan.clips}


def test_a_collection_made_before_recording_times_is_made_again_on_request(tmp_path):
    import json

    directory = tmp_path / "demo"
    make_demo(directory, TINY)
    record = json.loads((directory / "demo.json").read_text())
    (directory / "demo.json").write_text(json.dumps({**record, "version": 1}))
    with pytest.raises(DemoError, match=r"made by an older jungle \(its clips carry no recording time\); make it "
                                        r"again with `jungle demo make .* --overwrite`"):
        make_demo(directory, TINY)
    assert make_demo(directory, TINY, overwrite=True).written == 14
    assert json.loads((directory / "demo.json").read_text())["version"] == 2
