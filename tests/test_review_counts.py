"""The review page's counts in a real browser (Debian's chromium driven by Playwright): the counted
tracks' boxes drawn over the playing video and over the frame strip, the count shown, corrected with
the keyboard, kept in the workspace with its history, undone, and winning in the ``counts`` view.

The workspace is the review tests' (tests/_review_helpers.py: clips on real media), with counts
written through the store's own writer: a box per track on every sampled frame (4 per second).
"""

from __future__ import annotations

import json
import os
from datetime import datetime

import polars as pl
import pytest

from _review_helpers import review_workspace
from jungle.features.video.decode import index_video
from jungle.store.counts import write_counts
from jungle.store.db import connect, transaction
from test_review_page import CHROMIUM, CHROMIUM_ARGS, _post, _start, _stop

pytestmark = pytest.mark.slow  # a real browser against the review server
DRAWN = "Number(document.querySelector('#player canvas.boxes')?.dataset.frameBoxes)"  # boxes drawn now


def _write_counts(ws, video_id: str, path: str, tracks: int) -> None:
    """MaxN ``tracks``: that many tracks side by side, a box each on every frame 4 times a second."""
    index = index_video(path)
    step = max(1, round(index.fps / 4)) if index.fps else 1
    frames = list(range(0, index.n_frames, step))
    boxes = [{"video_id": video_id, "frame_index": f, "timestamp": f / (index.fps or 1), "track_id": k + 1,
              "score": 0.8, "moving": 0.3, "x": 0.1 + 0.25 * k, "y": 0.3, "w": 0.2, "h": 0.4}
             for f in frames for k in range(tracks)]
    clip = {"video_id": video_id, "run_key": "test", "status": "counted", "reason": None, "frames": len(frames),
            "frame_indices": frames, "maxn": tracks, "tracks": tracks, "best_frame_index": frames[0],
            "bbox_x": 0.1, "bbox_y": 0.3, "bbox_w": 0.25 * tracks - 0.05, "bbox_h": 0.4, "best_frame_boxes": tracks,
            "max_frame_boxes": tracks, "seconds": 1.0, "counted_at": datetime(2026, 12, 1)}
    track_rows = [{"video_id": video_id, "track_id": k + 1, "first_frame": frames[0], "last_frame": frames[-1],
                   "first_s": 0.0, "last_s": frames[-1] / (index.fps or 1), "boxes": len(frames), "mean_score": 0.8,
                   "moving": 0.3, "counted": True} for k in range(tracks)]
    with connect(ws) as con, transaction(con):
        write_counts(con, pl.DataFrame([clip], schema_overrides={"frame_indices": pl.List(pl.Int32)}),
                     pl.DataFrame(track_rows), pl.DataFrame(boxes))


def _human(ws, video_id: str):
    with connect(ws, read_only=True) as con:
        label = con.execute("SELECT count, source FROM count_labels WHERE video_id = ?", [video_id]).fetchall()
        events = con.execute("SELECT action, count, previous, reviewer FROM count_events WHERE video_id = ? "
                             "ORDER BY event_id", [video_id]).fetchall()
        view = con.execute("SELECT maxn, source, machine_maxn FROM counts WHERE video_id = ?", [video_id]).fetchone()
    return label, events, view


def test_boxes_drawn_count_corrected_and_undone_in_a_real_browser(stacked, tmp_path, media):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium: install Debian's browser with `apt-get install -y chromium`")
    rw = review_workspace(stacked, tmp_path, media, real_clips=4)
    ws = rw.workspace
    with connect(ws, read_only=True) as con:
        paths = dict(con.execute("SELECT video_id, path FROM videos").fetchall())
    playable, strip = rw.playable[0], rw.frames[0]
    _write_counts(ws, playable, paths[playable], 3)
    _write_counts(ws, strip, paths[strip], 2)
    process, url, _ = _start(ws, "--reviewer", "Ana Ruiz")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(bypass_csp=True).new_page()
                errors = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))

                # The playing video: its tracks' boxes over it, and the count beside.
                page.goto(f"{url}?video={playable}")
                page.wait_for_function("s => document.body.dataset.videoId === s", arg=playable)
                page.wait_for_selector("#player video")
                page.wait_for_function(f"{DRAWN} === 3")
                painted = page.evaluate("""() => { const c = document.querySelector('#player canvas.boxes');
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return [n, c.width, c.height]; }""")
                assert painted[0] > 0 and painted[1] > 0
                assert page.text_content("#count").startswith("3 animals")
                assert "MaxN 3" in page.text_content("#count")

                # c, type 4, Enter: a person's count, kept with its history; it wins in the counts view.
                page.keyboard.press("c")
                page.keyboard.type("4")
                page.keyboard.press("Enter")
                page.wait_for_function("document.getElementById('status').textContent.startsWith('saved count')")
                label, events, view = _human(ws, playable)
                assert label == [(4, "review")]
                assert events == [("set", 4, None, "Ana Ruiz")]
                assert view == (4, "review", 3)
                assert page.text_content("#count").startswith("4 animals")
                page.reload()
                page.wait_for_function("s => document.body.dataset.videoId === s", arg=playable)
                page.wait_for_function("document.getElementById('count').textContent.startsWith('4 animals')")
                assert "counted by a person" in page.text_content("#count")

                # Shift+U: the machine's count again (the history keeps both changes).
                page.keyboard.press("Shift+U")
                page.wait_for_function("document.getElementById('status').textContent.startsWith('undone')")
                page.wait_for_function("document.getElementById('count').textContent.startsWith('3 animals')")
                label, events, view = _human(ws, playable)
                assert label == [] and [e[0] for e in events] == ["set", "undo"] and view == (3, "machine", 3)

                # A clip the browser cannot play: boxes over the strip's frames.
                page.goto(f"{url}?video={strip}")
                page.wait_for_function("s => document.body.dataset.videoId === s", arg=strip)
                page.wait_for_selector("#player img")
                page.wait_for_function(f"{DRAWN} > 0")
                tiles = json.loads(page.evaluate("fetch('/api/clips/' + document.body.dataset.videoId)"
                                                 ".then(r => r.text())"))["count"]["strip"]
                drawn = int(page.evaluate("document.querySelector('#player canvas.boxes').dataset.frameBoxes"))
                assert drawn == 2 * len(tiles)
                assert not errors, errors
            finally:
                browser.close()
        # Writes need the page's token; a count must be a whole number.
        status, body = _post(url + "api/count", {"video_id": playable, "count": 2}, None)
        assert status == 403
        token = _token(url)
        status, body = _post(url + "api/count", {"video_id": playable, "count": -1}, token)
        assert status == 400 and "0 to 999" in body["error"]
        status, body = _post(url + "api/count", {"video_id": playable, "count": "2"}, token)
        assert status == 400 and "count" in body["error"]
        status, body = _post(url + "api/count", {"video_id": playable, "clear": True}, token)
        assert status == 200 and body["clip"]["count"]["human"] is None
    finally:
        _stop(process)


def _token(url: str) -> str:
    import re
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return re.search(r'name="jungle-token" content="([^"]+)"', response.read().decode()).group(1)
