"""Bad input never stops `jungle ingest`: every bad entry gets a row with a readable error, and
`jungle status` lists it."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from jungle.store.workspace import Workspace

from _ingest_helpers import ffprobe, jungle, video_rows, zamba_clips


def _audio_only(path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def bad_corpus(media, tmp_path_factory):
    """A folder of every kind of bad entry next to good clips; ingested once."""
    root = tmp_path_factory.mktemp("bad") / "corpus"
    root.mkdir()
    clips = zamba_clips(media)
    avi = next(c for c in clips if c.name == "EK000059.AVI")
    mp4 = next(c for c in clips if c.name == "04250002.MP4")  # H.264 MP4, its index (moov) at the end
    shutil.copy(avi, root / "Taï clip ü 1.AVI")
    (root / "zero.mp4").write_bytes(b"")
    (root / "truncated.mp4").write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    (root / "truncated.avi").write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    (root / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    (root / "notes.avi").write_text("these are my field notes, not a video\n" * 20)
    (root / "folder.mp4").mkdir()
    (root / "gone.mp4").symlink_to(root / "deleted-long-ago.mp4")
    (root / "loop.mp4").symlink_to(root / "loop.mp4")
    os.mkfifo(root / "pipe.mp4")
    _audio_only(root / "sound.mp4")
    shutil.copy(avi, os.fsencode(root) + b"/Ta\xefi latin-1.avi")  # a name that is not UTF-8
    locked = root / "locked.mp4"
    shutil.copy(mp4, locked)
    locked.chmod(0)
    try:
        locked.open("rb").close()
        permission_works = False
    except PermissionError:
        permission_works = True
    ws = Workspace.resolve(root.parent / "ws")
    result = jungle("ingest", root, "-w", ws.root, "--workers", "2", "-q")
    return root, ws, result, permission_works


#: file -> what its error must say (after "cannot read video <path>: ")
EXPECTED = {
    "zero.mp4": "the file is empty (0 bytes)",
    "truncated.mp4": "FFmpeg cannot open it as a video",
    "random.mp4": "FFmpeg cannot open it as a video",
    "notes.avi": "FFmpeg cannot open it as a video",
    "folder.mp4": "it is a directory, not a video file",
    "gone.mp4": "it is a broken symbolic link",
    "loop.mp4": "it is a symbolic link loop",
    "pipe.mp4": "it is a FIFO (named pipe), not a video file",
    "sound.mp4": "it has no video stream",
    "Ta\\xefi latin-1.avi": "its name is not valid UTF-8 text",
}


def test_every_bad_entry_gets_a_readable_error_row(bad_corpus):
    root, ws, result, _ = bad_corpus
    assert result.exit_code == 0, result.output
    rows = video_rows(ws)
    assert len(rows) == 13
    for name, reason in EXPECTED.items():
        row = rows[str(root / name)]
        assert row["status"] == "error", name
        assert row["error"].startswith(f"cannot read video {root / name}: {reason}"), row["error"]
        assert row["error"].rstrip().endswith("."), row["error"]  # a sentence with advice, not a traceback
        assert row["error"] in result.stderr
    assert f"{len(EXPECTED)} files could not be read" in result.stderr


def test_good_files_with_odd_names_and_truncated_avi_are_ok(bad_corpus):
    root, ws, _, _ = bad_corpus
    rows = video_rows(ws)
    good = rows[str(root / "Taï clip ü 1.AVI")]
    assert (good["status"], good["frames"], good["frames_decodable"]) == ("ok", 61, 61)
    cut = rows[str(root / "truncated.avi")]  # header intact, data cut: both counts recorded
    assert cut["status"] == "ok" and cut["frames"] == 61
    probed = ffprobe(root / "truncated.avi", count_frames=True)["streams"][0]
    assert cut["frames_decodable"] == int(probed["nb_read_frames"])
    assert 0 < cut["frames_decodable"] < cut["frames"]


def test_unreadable_file(bad_corpus):
    root, ws, _, permission_works = bad_corpus
    row = video_rows(ws)[str(root / "locked.mp4")]
    if permission_works:
        assert row["status"] == "error" and "permission denied" in row["error"]
    else:
        # Running as root: chmod 000 does not stop root from reading, so this file is readable and
        # the FIFO and the symbolic-link loop above are this run's unreadable entries.
        print("running as root: chmod 000 does not make a file unreadable; FIFO and link loop cover it")
        assert row["status"] == "ok"


def test_status_lists_failures_and_rerun_retries_without_duplicates(bad_corpus):
    root, ws, _, permission_works = bad_corpus
    status = jungle("status", "-w", ws.root)
    assert status.exit_code == 0, status.output
    failed = status.stdout.split("Failed videos", 1)[1]
    for name, reason in EXPECTED.items():
        assert str(root / name) in failed and reason in failed
    errors = len(EXPECTED) + (1 if permission_works else 0)
    again = jungle("ingest", root, "-w", ws.root, "-f", "json", "-q")
    assert again.exit_code == 0, again.output
    (counts,) = json.loads(again.stdout)
    assert [counts[k] for k in ("found", "new", "changed", "retried", "unchanged", "ok", "error")] == \
        [13, 0, 0, errors, 13 - errors, 0, errors]
    assert len(video_rows(ws)) == 13
