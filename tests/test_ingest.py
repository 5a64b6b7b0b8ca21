"""`jungle ingest` on real clips: every metadata field against ffprobe, camera statistics,
incremental re-runs, list input, extensions in any case."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from jungle.ingest.camera import (bytes_per_second, brightness, camera_stats, colourfulness, is_grayscale,
                                  motion_energy, sample_indices)
from jungle.ingest.discover import VIDEO_EXTENSIONS, discover, video_id
from jungle.store.workspace import Workspace

from _ingest_helpers import ZAMBA, ffprobe_many, jungle, make_clip, video_rows, zamba_clips


@dataclass(frozen=True)
class Corpus:
    """What a media folder holds, from its README (tests/media/LICENSES.md, ../shared/media/README.md)."""

    videos: int
    lying: tuple[str, int, int]  # a file whose header lies about its length: (path, frames claimed, decodable)
    night: str                   # infrared footage
    day: str                     # colour footage


CORPORA = {
    "media": Corpus(20, ("other_video/cut_short_PICT0265.avi", 61, 25),
                    f"{ZAMBA}/data/raw/chimpandsee/Kor_C5/Kor_vid6_0485466_0567428_20141120/EK000019.AVI",
                    f"{ZAMBA}/data/raw/savanna/Gorongosa_Mozambique/2017 Videos/F13_Cam027/Baboon/07120049.AVI"),
    "shared_media": Corpus(24, ("other_video/opencv_tree_foliage_hand.avi", 444, 68),
                           "camera_trap/ACP0006s6f-small-cat.mp4", "camera_trap/chimp_waterhole_320x180.mp4"),
}


@pytest.fixture(scope="module", params=["media", pytest.param("shared_media", marks=pytest.mark.slow)])
def ingested(request, tmp_path_factory):
    """(workspace, extra folder, media folder, its Corpus): a whole media folder (the committed one, and
    ../shared/media where it is beside the repository) plus a generated MKV and a non-ASCII, spaced,
    upper-case-extension link."""
    media = request.getfixturevalue(request.param)
    tmp = tmp_path_factory.mktemp("ingest")
    extra = tmp / "extra"
    make_clip(extra / "generated" / "clip.mkv")
    named = extra / "Taï camp 7" / "clip one.MOV"
    named.parent.mkdir(parents=True)
    named.symlink_to(media / ZAMBA / "data/raw/benjamin/04250002.MP4")
    ws = Workspace.resolve(tmp / "ws")
    for source in (media, extra):
        result = jungle("ingest", source, "-w", ws.root, "--workers", "2", "-q")
        assert result.exit_code == 0, result.output
    return ws, extra, media, CORPORA[request.param]


def _fps(stream: dict) -> float:
    rate = Fraction(stream["avg_frame_rate"]) if stream["avg_frame_rate"] != "0/0" else Fraction(stream["r_frame_rate"])
    return float(rate)


def _counts(result) -> tuple[int, ...]:
    """(found, new, changed, retried, unchanged, ok, error) of a `jungle ingest -f json` run."""
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    return tuple(row[k] for k in ("found", "new", "changed", "retried", "unchanged", "ok", "error"))


def test_every_clip_matches_ffprobe(ingested):
    ws, extra, media, corpus = ingested
    rows = video_rows(ws)
    expected = [str(p) for p in zamba_clips(media)]
    assert len(expected) == 19 and set(expected) <= set(rows)  # AVI, MP4, ASF; spaces and `Taï_T124` paths
    assert any("Taï_T124" in p for p in expected) and any(" " in p for p in expected)
    assert len(rows) == corpus.videos + 2
    probes = ffprobe_many(rows, count_frames=True)  # -count_frames: decodes every frame
    for path, row in rows.items():
        probe = probes[path]
        fmt = probe["format"]
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
        assert row["status"] == "ok", (path, row["error"])
        assert row["video_id"] == video_id(path)
        assert row["filename"] == os.path.basename(path)
        assert row["bytes"] == int(fmt["size"]) == os.path.getsize(path)
        assert row["container"] == fmt["format_name"], path
        assert row["video_codec"] == video["codec_name"], path
        assert row["pix_fmt"] == video["pix_fmt"], path
        assert (row["width"], row["height"]) == (video["width"], video["height"]), path
        assert row["fps"] == pytest.approx(_fps(video), rel=1e-9), path
        assert row["frames"] == (int(video["nb_frames"]) if "nb_frames" in video else None), path
        assert row["frames_decodable"] == int(video["nb_read_frames"]), path
        # The system ffprobe (FFmpeg 5.1 on Debian 12) and PyAV's FFmpeg 8 may round the container
        # duration differently where streams end apart (the Pri-matrix clip: 15.026 vs 15.0 s):
        # agree to within one frame, and the bit rate (bytes * 8 / duration) accordingly.
        assert row["duration"] == pytest.approx(float(fmt["duration"]), abs=1.0 / row["fps"]), path
        assert row["bit_rate"] == pytest.approx(int(fmt["bit_rate"]), rel=0.005), path
        if abs(row["duration"] - float(fmt["duration"])) < 1e-6:
            assert row["bit_rate"] == int(fmt["bit_rate"]), path
        assert row["has_audio"] == bool(audio), path
        assert row["audio_codec"] == (audio[0]["codec_name"] if audio else None), path
        assert row["bytes_per_second"] == pytest.approx(row["bytes"] / row["duration"]), path
    header_less = [r for r in rows.values() if r["frames"] is None]
    assert {Path(r["path"]).suffix.lower() for r in header_less} == {".asf", ".mkv"}


def test_lying_header_records_claimed_and_decodable_frames(ingested):
    from jungle.features.video.decode import read_frames

    ws, _, media, corpus = ingested
    relpath, claimed, decodable = corpus.lying
    path = media / relpath
    row = video_rows(ws)[str(path)]
    assert (row["frames"], row["frames_decodable"]) == (claimed, decodable)
    decoded = read_frames(path, range(0, claimed, 1), size=(32, 24))
    assert len(decoded) == row["frames_decodable"]


def test_site_relpath_and_odd_names(ingested):
    ws, extra, media, _ = ingested
    rows = video_rows(ws)
    tai = next(r for r in rows.values() if r["filename"] == "f4636736.avi")
    assert tai["relpath"] == str(Path(tai["path"]).relative_to(media).as_posix())
    assert tai["site"] == str(Path(tai["relpath"]).parent)
    odd = rows[str(extra / "Taï camp 7" / "clip one.MOV")]
    assert (odd["status"], odd["site"], odd["relpath"]) == ("ok", "Taï camp 7", "Taï camp 7/clip one.MOV")


def test_camera_stats_on_real_clips(ingested):
    ws, extra, media, corpus = ingested
    rows = video_rows(ws)
    night = rows[str(media / corpus.night)]  # infrared footage
    day = rows[str(media / corpus.day)]
    assert night["is_night"] is True and day["is_night"] is False
    assert night["colourfulness"] < 0.01 < day["colourfulness"]
    generated = rows[str(extra / "generated" / "clip.mkv")]  # a coloured bar growing over 12 frames
    assert generated["stats_frames"] == 8 and generated["motion_energy"] > 0.01
    for row in rows.values():
        assert row["stats_frames"] == min(8, row["frames_decodable"])
        assert 0.0 < row["brightness"] < 1.0 and row["motion_energy"] >= 0.0


def test_camera_statistics_are_pure_functions_of_frames():
    black = np.zeros((2, 8, 8, 3), np.uint8)
    white = np.full((2, 8, 8, 3), 255, np.uint8)
    assert brightness(black) == 0.0 and brightness(white) == pytest.approx(1.0)
    assert motion_energy(np.concatenate([black[:1], white[:1]])) == pytest.approx(1.0)
    assert motion_energy(white) == 0.0 and motion_energy(white[:1]) is None
    gray = np.repeat(np.random.default_rng(0).integers(0, 255, (3, 16, 16, 1), dtype=np.uint8), 3, axis=-1)
    assert colourfulness(gray) == 0.0 and is_grayscale(gray)
    overlay = gray.copy()
    overlay[:, :1, :] = (255, 0, 0)  # a red timestamp line on 1/16 of the pixels: still night footage
    assert is_grayscale(overlay)
    green = np.zeros((1, 8, 8, 3), np.uint8)
    green[..., 1] = 200
    stats = camera_stats(green)
    assert stats.colourfulness == pytest.approx(0.3 * np.hypot(200, 100) / 255)  # rg = -200, yb = 100, no spread
    assert not stats.is_night and stats.motion_energy is None and stats.frames == 1
    with pytest.raises(ValueError, match="non-empty"):
        brightness(np.zeros((0, 4, 4, 3), np.uint8))
    assert bytes_per_second(1000, 4.0) == 250.0 and bytes_per_second(1000, 0.0) is None
    assert sample_indices(61, 8) == [0, 9, 17, 26, 34, 43, 51, 60] and sample_indices(3, 8) == [0, 1, 2]


def test_rerun_skips_unchanged_and_picks_up_new_and_changed(media, tmp_path):
    clips = zamba_clips(media)
    corpus = tmp_path / "corpus"
    (corpus / "a").mkdir(parents=True)
    for clip in clips[:3]:
        shutil.copy(clip, corpus / "a" / clip.name)
    ws = tmp_path / "ws"
    first = jungle("ingest", corpus, "-w", ws, "--no-stats", "-f", "json", "--workers", "0")
    assert _counts(first) == (3, 3, 0, 0, 0, 3, 0)
    before = video_rows(Workspace.resolve(ws))
    again = jungle("ingest", corpus, "-w", ws, "--no-stats", "-f", "json")
    assert _counts(again) == (3, 0, 0, 0, 3, 0, 0)
    assert video_rows(Workspace.resolve(ws)) == before  # untouched, ingested_at included
    changed = corpus / "a" / clips[0].name
    shutil.copy(clips[5], changed)  # new content under an old name: size and mtime change
    shutil.copy(clips[4], corpus / "a" / "new clip.AVI")
    third = jungle("ingest", corpus, "-w", ws, "--no-stats", "-f", "json")
    assert _counts(third) == (4, 1, 1, 0, 2, 2, 0)
    after = video_rows(Workspace.resolve(ws))
    assert len(after) == 4 and after[str(changed)]["bytes"] == clips[5].stat().st_size
    assert after[str(changed)]["video_id"] == before[str(changed)]["video_id"]
    with_stats = jungle("ingest", corpus, "-w", ws, "-f", "json")  # statistics asked for now: all 4 redone
    assert _counts(with_stats) == (4, 0, 4, 0, 0, 4, 0)
    assert all(r["stats_frames"] for r in video_rows(Workspace.resolve(ws)).values())
    count = jungle("sql", "SELECT count(*) AS n, count(DISTINCT path) AS p FROM videos", "-w", ws, "-f", "csv")
    assert count.stdout == "n,p\n4,4\n"


def test_list_file_input(media, tmp_path):
    labels_csv = media / ZAMBA / "fixture_labels.csv"  # filepath,label,split: a CSV list of 19 paths
    ws = tmp_path / "ws"
    result = jungle("ingest", labels_csv, "-w", ws, "--no-stats", "-q")
    assert result.exit_code == 0, result.output
    rows = video_rows(Workspace.resolve(ws))
    assert len(rows) == 19 and all(r["status"] == "ok" for r in rows.values())
    assert {r["relpath"] for r in rows.values()} == {str(p.relative_to(media / ZAMBA).as_posix())
                                                    for p in zamba_clips(media)}
    listing = tmp_path / "list.txt"
    listing.write_text(f"{zamba_clips(media)[0]}\nmissing/clip.mp4\n\n")
    listed = jungle("ingest", listing, "-w", ws, "--no-stats", "-q")
    assert listed.exit_code == 0, listed.output
    missing = video_rows(Workspace.resolve(ws), "status = 'error'")
    assert list(missing) == [str(tmp_path / "missing" / "clip.mp4")]
    assert "the file does not exist" in missing[str(tmp_path / "missing" / "clip.mp4")]["error"]


def test_extensions_any_case_and_non_videos_ignored(tmp_path):
    names = [f"v{i}{ext}" for i, ext in enumerate(VIDEO_EXTENSIONS)]
    names += [n.upper() for n in names[:4]] + ["clip.Mp4", "photo.jpg", "notes.txt", "clip.mp4.part"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    found = {Path(c.path).name for c in discover(tmp_path).candidates}
    assert found == set(names) - {"photo.jpg", "notes.txt", "clip.mp4.part"}


def test_ingest_errors_and_help(tmp_path):
    missing = jungle("ingest", tmp_path / "nowhere", "-w", tmp_path / "ws")
    assert missing.exit_code == 1 and "does not exist" in missing.output and missing.output.startswith("Error: ")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    wrong = jungle("ingest", photo, "-w", tmp_path / "ws")
    assert wrong.exit_code == 1 and "neither a folder nor a list" in wrong.output
    loose = jungle("ingest", tmp_path, "--classes", "a,b", "-w", tmp_path / "ws")
    assert loose.exit_code == 1 and "apply to --labels FILE" in loose.output
    helped = jungle("ingest", "--help")
    assert helped.exit_code == 0 and "--no-stats" in helped.output and "--group-by" in helped.output
