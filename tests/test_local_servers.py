"""The two local web servers, attacked over real sockets: `jungle dashboard` refuses foreign Host
headers (DNS rebinding) and writes without the run's token, and logs no request; `jungle review`
refuses a body before reading it when its length is missing, negative, not a number or too large,
and answers malformed nesting with a 400, never a traceback on its terminal.

Both servers are the real CLI in a subprocess on real storage (an Optuna SQLite file, a stacked
DuckDB workspace); the dashboard's cookie is also checked in a real chromium."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time

import pytest

from test_dashboard import _free_port, _stop, _wait_for_port

pytestmark = pytest.mark.slow  # real review and dashboard servers: ~3 s a test

CHROMIUM = "/usr/bin/chromium"


# --------------------------------------------------------------------------- the dashboard
@pytest.fixture()
def dashboard(tmp_path):
    """(port, token, server process, storage URL): `jungle dashboard` over two studies, running."""
    import optuna

    from jungle.meta.tuning import open_storage
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(tmp_path / "ws")
    ws.root.mkdir(parents=True)
    for name in ("first", "second"):
        optuna.create_study(storage=open_storage(ws.optuna_url), study_name=name)
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "jungle.cli", "dashboard", "--port", str(port), "-w",
                                str(ws.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, process)
        lines = [process.stderr.readline(), process.stderr.readline()]
        match = re.search(r"open http://127\.0\.0\.1:\d+/dashboard\?token=(\S+) \(reading needs no token\)", lines[1])
        assert match, lines
        yield port, match.group(1), process, ws.optuna_url
    finally:
        _stop(process)


def _request(port: int, method: str, path: str, host: str | None = None, headers: dict | None = None,
             body: bytes | None = None) -> tuple[int, bytes, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True)
        connection.putheader("Host", host or f"127.0.0.1:{port}")
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def _studies(storage: str) -> list[str]:
    import optuna

    from jungle.meta.tuning import open_storage

    return sorted(s.study_name for s in optuna.get_all_study_summaries(open_storage(storage), False))


def test_a_rebinding_page_reads_and_deletes_nothing(dashboard):
    port, _, _, storage = dashboard
    evil = f"attacker.example:{port}"
    status, body, _ = _request(port, "GET", "/api/studies", host=evil)
    assert status == 403 and b"first" not in body and b"unexpected Host header" in body
    status, _, _ = _request(port, "DELETE", "/api/studies/1", host=evil)
    assert status == 403 and _studies(storage) == ["first", "second"]


def test_writes_need_the_token(dashboard):
    port, token, _, storage = dashboard
    status, body, _ = _request(port, "GET", "/api/studies")
    assert status == 200 and b"first" in body  # reading needs no token
    for method, path, payload in (("DELETE", "/api/studies/1", None),
                                  ("POST", "/api/studies/2/rename", b'{"study_name": "renamed"}'),
                                  ("POST", "/api/studies", b'{"study_name": "new", "directions": ["minimize"]}')):
        status, body, _ = _request(port, method, path, headers={"Content-Type": "application/json"}, body=payload)
        assert status == 403 and b"writes need the run's token" in body, (method, path, status, body)
        status, _, _ = _request(port, method, path, body=payload,
                                headers={"Content-Type": "application/json", "X-Jungle-Token": "wrong"})
        assert status == 403
    assert _studies(storage) == ["first", "second"]
    status, _, _ = _request(port, "DELETE", "/api/studies/1", headers={"X-Jungle-Token": token})
    assert status == 204 and _studies(storage) == ["second"]


def test_the_token_url_gives_the_browser_a_strict_cookie_that_writes(dashboard):
    port, token, _, storage = dashboard
    status, _, headers = _request(port, "GET", f"/dashboard?token={token}")
    cookie = headers["Set-Cookie"]
    assert status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and token in cookie
    jar = {"Cookie": cookie.split(";")[0], "Content-Type": "application/json"}
    status, _, _ = _request(port, "DELETE", "/api/studies/1", headers={**jar, "Origin": "http://attacker.example"})
    assert status == 403 and _studies(storage) == ["first", "second"]
    status, _, _ = _request(port, "POST", "/api/studies/2/rename", headers=jar, body=b'{"study_name": "renamed"}')
    assert status == 201 and _studies(storage) == ["first", "renamed"]


def test_a_write_body_is_capped_before_it_is_read(dashboard):
    port, token, process, _ = dashboard
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST /api/studies HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Jungle-Token: {token}\r\n"
                     f"Content-Length: {10**12}\r\n\r\n".encode() + b"x" * 1000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.0 413"), answer


def test_the_dashboard_logs_no_request_and_no_traceback(dashboard):
    port, _, process, _ = dashboard
    for _ in range(3):
        _request(port, "GET", "/api/studies")
    _request(port, "GET", "/api/studies", host="attacker.example")
    _stop(process)
    rest = process.stderr.read()
    assert "GET /api/studies" not in rest and "Traceback" not in rest and "Bottle" not in rest, rest


@pytest.mark.slow
def test_the_cookie_writes_from_the_dashboard_page_in_a_real_browser(dashboard):
    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium: install Debian's browser with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    port, token, _, storage = dashboard
    page_url = f"http://127.0.0.1:{port}/dashboard"
    delete = "async () => (await fetch('/api/studies/1', {method: 'DELETE'})).status"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(page_url)
            assert page.evaluate(delete) == 403 and _studies(storage) == ["first", "second"]
            page.goto(f"{page_url}?token={token}")
            assert page.evaluate(delete) == 204 and _studies(storage) == ["second"]
        finally:
            browser.close()


# --------------------------------------------------------------------------- the review page
@pytest.fixture(scope="module")
def review(stacked, tmp_path_factory):
    """(port, token, server process): `jungle review --port 0` on a copy of the stacked workspace."""
    sw, _ = stacked
    root = tmp_path_factory.mktemp("review") / "ws"
    shutil.copytree(sw.workspace.root, root)
    process = subprocess.Popen([sys.executable, "-m", "jungle.cli", "review", "--port", "0", "--no-browser",
                                "-w", str(root)], stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        match = re.search(r"jungle review on http://127\.0\.0\.1:(\d+)/", first)
        assert match, first
        port = int(match.group(1))
        page = _request(port, "GET", "/")[1].decode()
        token = re.search(r'name="jungle-token" content="([^"]+)"', page).group(1)
        yield port, token, process
    finally:
        _stop(process)


def _raw(port: int, head: str, body: bytes = b"", wait: float = 10.0) -> bytes:
    """Send ``head`` and ``body`` and keep the connection open: the answer must come without EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head.encode() + body)
        started, answer = time.monotonic(), b""
        try:
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except socket.timeout:
            return b"(no answer within %.0f s)" % (time.monotonic() - started)
    return answer


@pytest.mark.parametrize("length, status", [("-1", 400), ("abc", 400), ("1e9", 400), (str(10**12), 413),
                                            (None, 411)])
@pytest.mark.parametrize("with_token", [False, True])
def test_a_body_is_refused_before_it_is_read(review, length, status, with_token):
    port, token, _ = review
    head = (f"POST /api/labels HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            + (f"X-Jungle-Token: {token}\r\n" if with_token else "")
            + (f"Content-Length: {length}\r\n" if length is not None else "") + "\r\n")
    answer = _raw(port, head, b"x" * 4096)  # more body follows and the connection stays open
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


@pytest.mark.parametrize("body", [b"[" * 50_000, b'{"video_id": ' + b"[" * 50_000 + b"}", b"\xff\xfe{}"])
def test_malformed_nesting_is_a_400(review, body):
    port, token, _ = review
    head = (f"POST /api/labels HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Jungle-Token: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    answer = _raw(port, head, body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert "\n" not in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


def test_a_huge_number_in_the_query_is_a_400(review):
    port, _, _ = review
    status, body, _ = _request(port, "GET", "/api/queue?limit=" + "9" * 5000)
    assert status == 400 and b"limit must be a whole number" in body


def test_the_review_terminal_shows_no_traceback(review):
    """Last in this module: every attack above has been answered by now."""
    port, _, process = review
    _stop(process)
    rest = process.stderr.read()
    assert "Traceback" not in rest and "Error" not in rest, rest


def _stderr_until(server: subprocess.Popen, pattern: bytes, seconds: float = 15) -> bytes:
    """What the server writes on stderr until ``pattern`` shows (or ``seconds`` pass): a server logs a
    request after it has answered it, so stopping it at once can lose the line."""
    fd, got, deadline = server.stderr.fileno(), b"", time.monotonic() + seconds
    while not re.search(pattern, got) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    return got


# --------------------------------------------------------------------------- request logs, when asked for
def test_both_servers_log_requests_only_with_log_requests(stacked, tmp_path):
    import optuna

    from jungle.meta.tuning import open_storage
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(shutil.copytree(stacked[0].workspace.root, tmp_path / "ws"))
    optuna.create_study(storage=open_storage(ws.optuna_url), study_name="first")
    port = _free_port()
    dashboard = subprocess.Popen([sys.executable, "-m", "jungle.cli", "dashboard", "--port", str(port),
                                  "--log-requests", "-w", str(ws.root)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, dashboard)
        _request(port, "GET", "/api/studies")
        logged = _stderr_until(dashboard, rb'"GET /api/studies HTTP/1\.1" 200')
    finally:
        _stop(dashboard)
    assert re.search(rb'"GET /api/studies HTTP/1\.1" 200', logged), logged
    review = subprocess.Popen([sys.executable, "-m", "jungle.cli", "review", "--port", "0", "--no-browser",
                               "--log-requests", "-w", str(ws.root)], stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", review.stderr.readline()).group(1))
        _request(port, "GET", "/api/info")
        logged = _stderr_until(review, rb'"GET /api/info HTTP/1\.1" 200')
    finally:
        _stop(review)
    assert re.search(rb'"GET /api/info HTTP/1\.1" 200', logged), logged
