"""`jungle review` in a real browser: Debian's chromium driven by Playwright, on a real workspace.

The server runs as the real CLI in a subprocess; the tests label clips with the keyboard, undo,
retrain, and check every change in DuckDB while the page is open (so the file stays usable by
other processes), that writes without the page's token are refused, that a clip whose file
vanished shows a message, and that a re-fit never loses the stacked model: both are scored on the
same clips, one click goes back, and a restarted review uses the current model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from _review_helpers import review_workspace
from jungle.store.db import connect

pytestmark = pytest.mark.slow  # a real browser against the review server (~25 s)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _start(ws, *options: str) -> tuple[subprocess.Popen, str, str]:
    """(process, page URL, first line): `jungle review --port 0 --no-browser` running on ``ws``."""
    process = subprocess.Popen([sys.executable, "-m", "jungle.cli", "review", "--port", "0", "--no-browser",
                                "-w", str(ws.root), *options], stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()
    match = re.search(r"jungle review on (http://127\.0\.0\.1:\d+/) for 270 clips \(24[01] labelled\)", first)
    if not match:
        process.terminate()
        raise AssertionError(first + (process.stderr.read() if process.poll() is not None else ""))
    return process, match.group(1), first


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture()
def server(stacked, tmp_path, media):
    """(review workspace, page URL, server process): `jungle review --port 0 --no-browser` running."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium: install Debian's browser with `apt-get install -y chromium`")
    rw = review_workspace(stacked, tmp_path, media)
    process, url, _ = _start(rw.workspace, "--reviewer", "Ana Ruiz")
    try:
        yield rw, url, process
    finally:
        _stop(process)


def _post(url: str, body: dict, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"X-Jungle-Token": token} if token is not None else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _positives(ws, video_id) -> tuple[list[str], set]:
    with connect(ws, read_only=True) as con:
        rows = con.execute("SELECT class, value, source FROM labels WHERE video_id = ? ORDER BY class",
                           [video_id]).fetchall()
    return [r[0] for r in rows if r[1] == 1], {r[2] for r in rows}


def test_label_with_the_keyboard_undo_retrain_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    rw, url, _ = server
    ws = rw.workspace
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(bypass_csp=True).new_page()  # CSP forbids eval, which wait_for_function uses
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_function("document.body.dataset.videoId")
            current = lambda: page.evaluate("document.body.dataset.videoId")  # noqa: E731
            status = lambda text: page.wait_for_function(  # noqa: E731
                "t => document.getElementById('status').textContent.startsWith(t)", arg=text)

            # The queue's first clip: real media, shown as a playable video or a frame strip.
            first = current()
            assert first in rw.playable + rw.frames
            page.wait_for_selector("#player video" if first in rw.playable else "#player img")
            queue = json.loads(page.evaluate("fetch('/api/queue?limit=3').then(r => r.text())"))
            assert [c["video_id"] for c in queue["clips"]][0] == first
            top1 = queue["clips"][0]["top"][0][0]

            # 1: label as the top prediction and go on.
            page.keyboard.press("1")
            page.wait_for_function("s => document.body.dataset.videoId !== s", arg=first)
            status(f"saved {queue['clips'][0]['filename']}")
            assert _positives(ws, first) == ([top1], {"review"})
            with connect(ws, read_only=True) as con:
                assert con.execute("SELECT DISTINCT reviewer FROM label_events").fetchall() == [("Ana Ruiz",)]
            second = current()
            page_queue = page.evaluate("Array.from(document.querySelectorAll('#queue li')).slice(0, 4)"
                                       ".map(li => li.dataset.videoId)")
            assert second == queue["clips"][1]["video_id"], (page_queue, [c["video_id"] for c in queue["clips"]], first)

            # Shift+2, Shift+1: two classes on one clip, staying on it.
            top = queue["clips"][1]["top"]
            page.keyboard.press("Shift+Digit2")
            page.wait_for_function("document.querySelectorAll('#labels .chip').length === 1")
            page.keyboard.press("Shift+Digit1")
            page.wait_for_function("document.querySelectorAll('#labels .chip').length === 2")
            assert current() == second
            assert _positives(ws, second)[0] == sorted([top[0][0], top[1][0]])

            # Type-ahead for any class, then undo it.
            page.keyboard.press("/")
            page.keyboard.type("eleph")
            page.keyboard.press("Enter")
            page.wait_for_function("s => document.body.dataset.videoId !== s", arg=second)
            assert _positives(ws, second)[0] == ["elephant"]
            page.keyboard.press("u")
            status("undone")
            assert current() == second
            assert _positives(ws, second)[0] == sorted([top[0][0], top[1][0]])
            page.keyboard.press("k")
            page.wait_for_function("s => document.body.dataset.videoId === s", arg=first)

            # Another process reads the database while the page is open.
            sql = subprocess.run([sys.executable, "-m", "jungle.cli", "sql", "-w", str(ws.root), "-f", "csv",
                                  "SELECT action, count(*) AS n FROM label_events GROUP BY action ORDER BY action"],
                                 capture_output=True, text=True, timeout=120)
            assert sql.stdout == "action,n\nset,4\nundo,1\n", sql.stderr

            # A clip whose file vanished says so.
            page.goto(f"{url}?video={rw.missing}")
            page.wait_for_selector("#player .missing")
            assert page.inner_text("#player .missing").startswith(f"The file /data/cam/clip{269:05d}.mp4 is missing")
            assert not errors, errors

            page.set_viewport_size({"width": 1280, "height": 800})
        finally:
            browser.close()

    # Writes need the page's token.
    token_free = {"video_id": rw.missing, "classes": ["blank"]}
    assert _post(url + "api/labels", token_free, None)[0] == 403
    assert _post(url + "api/labels", token_free, "wrong")[0] == 403
    assert _post(url + "api/undo", {}, None)[0] == 403
    assert _positives(ws, rw.missing) == ([], set())


def test_frames_and_video_are_served_by_id_only(server):
    rw, url, _ = server
    with urllib.request.urlopen(f"{url}api/clips/{rw.frames[0]}/frames.jpg", timeout=120) as response:
        strip = response.read()
    assert response.headers["Content-Type"] == "image/jpeg" and strip[:2] == b"\xff\xd8"
    assert len(list((rw.workspace.root / "review" / "previews").glob(f"{rw.frames[0]}-*.jpg"))) == 1
    request = urllib.request.Request(f"{url}api/clips/{rw.playable[0]}/video", headers={"Range": "bytes=0-99"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206 and len(response.read()) == 100
    for bad in ("api/clips/..%2F..%2Fetc%2Fpasswd/video", "api/clips/nope/video", "static/../server.py"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url + bad, timeout=30)
        assert info.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{url}api/clips/{rw.missing}/frames.jpg", timeout=30)
    assert info.value.code == 404 and "is missing" in json.load(info.value)["error"]


def _current(ws) -> str:
    with connect(ws, read_only=True) as con:
        return con.execute("SELECT model_id FROM model_choices ORDER BY choice_id DESC LIMIT 1").fetchone()[0]


def test_retrain_keeps_the_stacked_model_and_one_click_goes_back(server):
    from playwright.sync_api import sync_playwright

    rw, url, process = server
    ws = rw.workspace
    stacked_folder = ws.root / "models" / rw.model_id
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(bypass_csp=True).new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_function("document.body.dataset.videoId")
            assert page.evaluate("document.getElementById('model-choice').value") == rw.model_id
            page.keyboard.press("1")  # one review label, so the re-fit has something new
            page.wait_for_function("document.getElementById('status').textContent.startsWith('saved')")

            page.keyboard.press("Shift+R")
            page.wait_for_selector("#retrain-models tr[data-model-id]")
            summary = page.inner_text("#retrain-result .summary")
            assert summary.startswith("out-of-fold log loss on the 241 clips labelled now"), summary
            rows = page.eval_on_selector_all(
                "#retrain-models tr[data-model-id]",
                "rows => rows.map(r => [r.dataset.modelId, r.cells[1].textContent, r.cells[2].textContent])")
            assert [r[0] for r in rows][0] == rw.model_id and rows[1][0].startswith("refit-")
            refit_id = rows[1][0]
            # both scored on the same clips: each equals the log loss of its own rows against today's labels
            scores = {model_id: float(loss) for model_id, loss, _ in rows}
            for model_id, loss in scores.items():
                assert abs(_log_loss_on_labelled(ws, model_id) - loss) < 6e-4, (model_id, loss)
            winner = min(scores, key=scores.get)
            assert [r[0] for r in rows if r[2] == "current"] == [winner]
            assert _current(ws) == winner
            assert stacked_folder.is_dir() and (ws.root / "models" / refit_id / "linear.npz").is_file()

            # One click goes to the other model; the page and the database agree.
            other = refit_id if winner == rw.model_id else rw.model_id
            page.click(f"#retrain-models tr[data-model-id='{other}'] button")
            page.wait_for_function("id => document.getElementById('model-choice').value === id", arg=other)
            assert _current(ws) == other
            # ... and the menu goes back again.
            page.select_option("#model-choice", winner)
            page.wait_for_function("t => document.getElementById('status').textContent.startsWith(t)",
                                   arg="now ranking with " + winner)
            assert _current(ws) == winner
            assert not errors, errors
        finally:
            browser.close()
    _stop(process)

    # A restarted review uses the current model, and says so.
    restarted, _, first = _start(ws)
    try:
        assert f"model {winner}" in first, first
    finally:
        _stop(restarted)


def _log_loss_on_labelled(ws, model_id) -> float:
    """The competition metric of ``model_id``'s out-of-sample rows on the clips labelled now."""
    import numpy as np

    from jungle.meta.metrics import competition_log_loss
    from jungle.store.labels import read_labelled
    from jungle.store.predictions import read_out_of_sample

    with connect(ws, read_only=True) as con:
        rows = read_out_of_sample(con, model_id)
        labels = read_labelled(con, None)
    classes = sorted({r[1] for r in rows})
    P = {(r[0], r[1]): r[2] for r in rows}
    Y, labelled = labels.aligned(labels.video_ids.tolist(), classes)
    assert labelled.all()
    return competition_log_loss(Y, np.array([[P[v, c] for c in classes] for v in labels.video_ids]))
