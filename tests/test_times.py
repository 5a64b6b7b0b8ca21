"""Capture times: from the container (real clips given a creation time with ffmpeg and PyAV, real clips
without one), from a times file the user gives (good, bad rows, ambiguous names, time zones), the
file's mtime only as a last resort, and where the time source shows: `jungle sql`, the CSV and Camtrap
DP exports and the review API."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
import threading
import urllib.request
from datetime import datetime, timedelta, timezone

import av
import numpy as np
import pytest

from _export_helpers import copy_workspace, write_deployments
from _ingest_helpers import ZAMBA, ffprobe, jungle, video_rows
from _review_helpers import review_workspace
from jungle.ingest.times import CaptureTime, TimesError, container_time, parse_zone, read_times_file
from jungle.store.db import connect
from jungle.store.workspace import Workspace

BENJAMIN = f"{ZAMBA}/data/raw/benjamin/04250002.MP4"  # H.264 in MP4, mvhd creation time 0
HYENA = f"{ZAMBA}/data/raw/savanna/Grumeti_Tanzania/K38_check3/09190048_Hyena.AVI"
ASF_1970 = f"{ZAMBA}/data/raw/chimpandsee/Sap_D1/Sap_vid24_0524356_0589414_20110915/PICT0021.ASF"
UTC = timezone.utc


def _with_idit(source, out, stamp: bytes) -> None:
    """``source`` (a real AVI whose header ends in a 260-byte JUNK chunk) with an IDIT chunk
    (RIFF DateTimeOriginal, as cameras write it) in the JUNK's place: no offset moves."""
    data = bytearray(source.read_bytes())
    position = data.index(b"JUNK\x04\x01\x00\x00")
    text = stamp + b"\n\0"
    idit = b"IDIT" + struct.pack("<I", len(text)) + text
    rest = 260 - len(idit)
    data[position:position + 268] = idit + b"JUNK" + struct.pack("<I", rest) + bytes(rest)
    out.write_bytes(bytes(data))


def _write(path, metadata: dict, codec: str = "libx264", options: dict | None = None) -> None:
    """A short clip written with PyAV, with container ``metadata``."""
    with av.open(str(path), "w", options=options or {}) as container:
        for key, value in metadata.items():
            container.metadata[key] = value
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _mtime(path) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=os.stat(path).st_mtime_ns // 1000)


@pytest.fixture(scope="module")
def collection(media, tmp_path_factory):
    """Real clips in three camera folders, some given a creation time, ingested (headers only)."""
    root = tmp_path_factory.mktemp("times")
    clips = root / "clips"
    for site in ("a", "b", "c"):
        (clips / site).mkdir(parents=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media / BENJAMIN), "-c", "copy", "-metadata",
                    "creation_time=2019-05-04T06:07:08Z", str(clips / "a" / "stamped.mp4")], check=True)
    shutil.copy(media / BENJAMIN, clips / "a" / "plain.mp4")
    _with_idit(media / HYENA, clips / "b" / "idit.avi", b"Sat Jul 16 06:44:03 2016")
    shutil.copy(media / ASF_1970, clips / "b" / "PICT0021.ASF")
    _write(clips / "c" / "apple.mov", {"com.apple.quicktime.creationdate": "2019-05-04T08:07:08+0200"},
           options={"movflags": "use_metadata_tags"})
    _write(clips / "c" / "written.asf", {"creation_time": "2019-05-04T06:07:08Z"}, codec="mpeg4")
    shutil.copy(media / BENJAMIN, clips / "c" / "plain.mp4")  # the same name as a/plain.mp4
    ws = root / "ws"
    result = jungle("ingest", clips, "-w", ws, "--no-stats", "-q")
    assert result.exit_code == 0, result.output
    return clips, ws


def _times(ws) -> dict[str, tuple]:
    """relpath -> (captured_at, utc_offset_minutes, time_source)."""
    return {row["relpath"]: (row["captured_at"], row["utc_offset_minutes"], row["time_source"])
            for row in video_rows(Workspace.resolve(ws)).values()}


def _copy(collection, tmp_path):
    """A copy of the collection's clips, ingested (headers only) into a new workspace, to change."""
    clips, _ = collection
    shutil.copytree(clips, tmp_path / "clips", copy_function=shutil.copy2)
    result = jungle("ingest", tmp_path / "clips", "-w", tmp_path / "ws", "--no-stats", "-q")
    assert result.exit_code == 0, result.output
    return tmp_path / "clips", tmp_path / "ws"


def test_container_times_of_real_clips_and_the_mtime_fallback(collection, media):
    clips, ws = collection
    assert ffprobe(clips / "a" / "stamped.mp4")["format"]["tags"]["creation_time"] == "2019-05-04T06:07:08.000000Z"
    assert ffprobe(clips / "b" / "idit.avi")["format"]["tags"]["creation_time"] == "2016-07-16 06:44:03"
    for real in (BENJAMIN, HYENA, ASF_1970):  # the shared media carry no creation time
        assert "creation_time" not in ffprobe(media / real)["format"].get("tags", {}), real
    times = _times(ws)
    assert times["a/stamped.mp4"] == (datetime(2019, 5, 4, 6, 7, 8), 0, "container")
    assert times["c/apple.mov"] == (datetime(2019, 5, 4, 6, 7, 8), 120, "container")   # 08:07:08+02:00
    assert times["c/written.asf"] == (datetime(2019, 5, 4, 6, 7, 8), 0, "container")   # ASF header, UTC
    assert times["b/idit.avi"] == (datetime(2016, 7, 16, 6, 44, 3), None, "container")  # a clock, zone unknown
    for relpath in ("a/plain.mp4", "c/plain.mp4", "b/PICT0021.ASF"):  # PICT0021's ASF header says 1970
        assert times[relpath] == (_mtime(clips / relpath), 0, "mtime"), relpath
    shown = jungle("sql", "-w", ws, "-f", "csv", "SELECT relpath, time_source FROM videos ORDER BY relpath")
    assert shown.stdout.splitlines()[:3] == ["relpath,time_source", "a/plain.mp4,mtime", "a/stamped.mp4,container"]


def test_container_tags_read_in_order_and_epochs_are_absent():
    def read(metadata, streams=(), asf=None):
        found = container_time(metadata, streams, asf)
        return None if found is None else (found.captured_at, found.offset_minutes)

    assert read({"creation_time": "1970-01-01T00:00:00.000000Z"}) is None
    assert read({"creation_time": "1904-01-01T00:00:00.000000Z"}) is None
    assert read({"creation_time": "0000-00-00 00:00:00"}) is None
    assert read({}, asf=datetime(1970, 1, 1)) is None
    assert read({"date": "2019-05-04", "creation_time": "2019-05-04T06:07:08.000000Z"}) == (
        datetime(2019, 5, 4, 6, 7, 8), 0)                                  # a date without a time of day is skipped
    assert read({"com.apple.quicktime.creationdate": "2019-05-04T08:07:08+0200",
                 "creation_time": "2019-05-04T09:00:00.000000Z"}) == (datetime(2019, 5, 4, 6, 7, 8), 120)
    assert read({}, [{"creation_time": "2019-05-04T06:07:08.000000Z"}]) == (datetime(2019, 5, 4, 6, 7, 8), 0)
    assert read({"date": "2019:05:04 06:07:08"}) == (datetime(2019, 5, 4, 6, 7, 8), None)  # EXIF style, no zone


def test_times_file_wins_and_survives_a_rewrite(collection, tmp_path):
    clips, ws = _copy(collection, tmp_path)
    times = tmp_path / "times.csv"
    times.write_text("filepath,time,timezone\n"
                     "a/stamped.mp4,2016-09-27 07:10:08,Africa/Kinshasa\n"   # wins over the container
                     "b/PICT0021.ASF,2011-09-15T18:30:00-04:00,\n"             # wins over mtime; its own offset
                     "c/plain.mp4,2016-09-27 07:10:08,+05:30\n"
                     "idit.avi,2016-07-16 06:44:03,\n")                       # no zone: stays unknown
    result = jungle("times", times, "-w", ws, "-f", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"times_file,videos,zone_unknown,skipped_not_ingested\n{times},4,1,0\n"
    expected = {"a/stamped.mp4": (datetime(2016, 9, 27, 6, 10, 8), 60, "csv"),
                "b/PICT0021.ASF": (datetime(2011, 9, 15, 22, 30), -240, "csv"),
                "c/plain.mp4": (datetime(2016, 9, 27, 1, 40, 8), 330, "csv"),
                "b/idit.avi": (datetime(2016, 7, 16, 6, 44, 3), None, "csv")}
    got = _times(ws)
    assert {k: got[k] for k in expected} == expected
    assert got["a/plain.mp4"][2] == "mtime" and got["c/apple.mov"][2] == "container"

    # A changed file is probed again; the time the user gave still wins.
    os.utime(clips / "a" / "stamped.mp4", (1_500_000_000, 1_500_000_000))
    again = jungle("ingest", clips, "-w", ws, "--no-stats", "-q", "-f", "csv")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[1].startswith("7,0,1,0,6,0,1,0,")  # found, new, changed, retried, unchanged
    assert _times(ws)["a/stamped.mp4"] == expected["a/stamped.mp4"]


def test_every_bad_row_is_listed_and_nothing_is_written(collection, tmp_path):
    clips, ws = _copy(collection, tmp_path)
    before = _times(ws)
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,time,timezone\n"
                   "stamped.mp4,27/09/2016 07:10,\n"                          # 2: not ISO 8601
                   "plain.mp4,2016-09-27 07:10:08,\n"                          # 3: two videos have that name
                   "idit.avi,2016-09-27T07:10:08+02:00,Africa/Kinshasa\n"     # 4: offset vs zone
                   "apple.mov,2016-09-27 07:10:08,Mars/Olympus_Mons\n"        # 5: unknown zone
                   "elsewhere.mp4,2016-09-27 07:10:08,\n"                      # 6: not ingested
                   "written.asf,,\n"                                           # 7: no time
                   ",2016-09-27 07:10:08,\n"                                   # 8: no video
                   "PICT0021.ASF,1970-01-01 00:00:00,\n"                       # 9: an unset clock
                   "PICT0021.ASF,2016-09-27 07:10:08,\n"                       # 10: a second row
                   "a/stamped.mp4,2021-10-31 02:30:00,Europe/Berlin\n")        # 11: the clock went back
    result = jungle("times", bad, "-w", ws)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the times file {bad} has problems; no times were imported:")
    for fact in ("'27/09/2016 07:10' (line 2). Write times as ISO 8601",
                 "keys that match several videos: plain.mp4 (line 3, 2 videos)",
                 "offsets that disagree with the timezone column: '2016-09-27T07:10:08+02:00' in Africa/Kinshasa",
                 "unknown time zones: 'Mars/Olympus_Mons' (line 5)",
                 "times for videos that are not ingested: elsewhere.mp4 (line 6)",
                 "rows without a time: written.asf (line 7)", "rows without a video: line 8",
                 "times before 1980: '1970-01-01 00:00:00' (line 9)",
                 "duplicate rows: PICT0021.ASF (lines 9 and 10)",
                 "'2021-10-31 02:30:00' in Europe/Berlin (line 11). Give those times with their offset"):
        assert fact in result.output, fact
    assert _times(ws) == before
    with connect(Workspace.resolve(ws), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM capture_times").fetchone()[0] == 0

    skipped = tmp_path / "skip.csv"
    skipped.write_text("filename,time\nstamped.mp4,2016-09-27 07:10:08\nelsewhere.mp4,2016-09-27 07:10:08\n")
    allowed = jungle("times", skipped, "-w", ws, "--allow-missing", "--timezone", "UTC+1", "-f", "csv")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.splitlines()[1].endswith(",1,0,1")
    assert _times(ws)["a/stamped.mp4"] == (datetime(2016, 9, 27, 6, 10, 8), 60, "csv")
    refused = jungle("times", skipped, "-w", ws, "--timezone", "Atlantis")
    assert refused.exit_code == 1 and "--timezone: 'Atlantis' is neither an IANA time zone nor a UTC offset" \
        in refused.output
    for zone in ("America", "x" * 300):  # a folder of the zone database, a name too long for a file
        refused = jungle("times", skipped, "-w", ws, "--timezone", zone)
        assert refused.exit_code == 1 and f"--timezone: '{zone[:60]}" in refused.output, refused.output
        assert "is neither an IANA time zone" in refused.output and "Traceback" not in refused.output


def test_ingest_takes_a_times_file(collection, tmp_path):
    clips, _ = collection
    times = tmp_path / "times.csv"
    times.write_text("filename;timestamp\nidit.avi;2016-07-16T06:44:03Z\n")  # semicolons, the other time column
    result = jungle("ingest", clips, "-w", tmp_path / "ws", "--no-stats", "-q", "--times", times, "-f", "csv")
    assert result.exit_code == 0, result.output
    assert f"times_file,videos,zone_unknown,skipped_not_ingested\n{times},1,0,0\n" in result.stdout
    assert _times(tmp_path / "ws")["b/idit.avi"] == (datetime(2016, 7, 16, 6, 44, 3), 0, "csv")
    missing = jungle("ingest", clips, "-w", tmp_path / "ws", "--no-stats", "-q", "--allow-missing")
    assert missing.exit_code == 1 and "--allow-missing applies to --labels FILE and --times FILE" in missing.output


def test_zones_and_offsets_parse():
    assert parse_zone("+05:30").utcoffset(None) == timedelta(hours=5, minutes=30)
    assert parse_zone("-0400").utcoffset(None) == timedelta(hours=-4)
    assert parse_zone("Z") is UTC and parse_zone("utc") is UTC
    with pytest.raises(ValueError):
        parse_zone("+25:00")
    kinshasa = CaptureTime.of(datetime(2016, 9, 27, 7, 10, 8, tzinfo=parse_zone("Africa/Kinshasa")), "csv")
    assert (kinshasa.captured_at, kinshasa.offset_minutes) == (datetime(2016, 9, 27, 6, 10, 8), 60)


def test_a_times_file_without_a_time_column_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("filename,when\nclip.mp4,2016-09-27 07:10:08\n")
    with pytest.raises(TimesError, match="needs a filename .* and a time column"):
        read_times_file(path)


# ------------------------------------------------------------------------------------------------ where it shows
def test_exports_say_where_times_come_from(predicted, tmp_path):
    sw, model_id, source = predicted
    ws = copy_workspace(source, tmp_path / "ws")
    with connect(ws) as con:  # cam_a: a time with its zone; cam_b: file times; cam_c: a clock without a zone
        con.execute("UPDATE videos SET utc_offset_minutes = 60 WHERE site = 'cam_a'")
        con.execute("UPDATE videos SET time_source = 'mtime' WHERE site = 'cam_b'")
        con.execute("UPDATE videos SET utc_offset_minutes = NULL WHERE site = 'cam_c'")
    out = jungle("export", "csv", tmp_path / "p.csv", "-w", ws.root)
    assert out.exit_code == 0, out.output
    header, *rows = (tmp_path / "p.csv").read_text().splitlines()
    assert header.split(",")[:5] == ["filepath", "filename", "site", "timestamp", "time_source"]
    first = {site: next(r.split(",") for r in rows if r.startswith(site)) for site in ("cam_a", "cam_b", "cam_c")}
    assert first["cam_a"][3:5] == ["2026-03-01T07:00:00+01:00", "container"]
    assert first["cam_b"][4] == "mtime"
    assert first["cam_c"][3] == "2026-03-01T06:00:00"  # no zone, no designator
    package = tmp_path / "pkg"
    made = jungle("export", "camtrap-dp", package, "-w", ws.root, "--contributor", "Ada Lovelace",
                  "--deployments", write_deployments(tmp_path / "d.csv"))
    assert made.exit_code == 0, made.output
    deployments = (package / "deployments.csv").read_text().splitlines()
    column = deployments[0].split(",").index("timestampIssues")
    assert {line.split(",")[0]: line.split(",")[column] for line in deployments[1:]} == {
        "cam_a": "false", "cam_b": "true", "cam_c": "true"}
    with open(package / "media.csv", newline="") as handle:
        media = list(csv.DictReader(handle))
    assert {m["timestamp"] for m in media if m["deploymentID"] in ("cam_a", "cam_c")} >= {"2026-03-01T06:00:00Z"}


def test_review_api_shows_the_time_and_its_source(stacked, tmp_path, media):
    from jungle.review.server import ReviewServer
    from jungle.review.session import ReviewSession

    rw = review_workspace(stacked, tmp_path, media, real_clips=2)
    clip = rw.playable[0]
    with connect(rw.workspace, read_only=True) as con:
        path = con.execute("SELECT path FROM videos WHERE video_id = ?", [clip]).fetchone()[0]
    times = tmp_path / "times.csv"
    times.write_text(f"filepath,time,timezone\n{path},2016-09-27 07:10:08,Africa/Kinshasa\n")
    assert jungle("times", times, "-w", rw.workspace.root).exit_code == 0
    server = ReviewServer(ReviewSession(rw.workspace), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"{server.url}api/clips/{clip}", timeout=60) as response:
            detail = json.load(response)
    finally:
        server.shutdown()
    assert (detail["time"], detail["time_source"]) == ("2016-09-27 07:10:08+01:00", "csv")
    assert detail["metadata"]["time_source"] == "csv"
    assert detail["metadata"]["captured_at"] == "2016-09-27 07:10:08+01:00"
