"""`jungle dashboard`: optuna-dashboard on the workspace's storage, checked in a real headless browser."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from jungle.cli import app

from _errors import cli_error

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"jungle dashboard exited with {process.returncode}: {process.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"jungle dashboard did not listen on port {port} within {timeout} s")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _stop(server: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not stop within 10 s."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.mark.slow  # a real browser and server (~8 s)
def test_dashboard_page_lists_the_study_in_a_real_browser(stacked, tmp_path):
    browser = _chromium()
    if browser is None:
        reason = "no chromium binary: install Debian's browser with `apt-get install -y chromium`"
        print(reason)
        pytest.skip(reason)
    sw, result = stacked
    study = result.members[0].tuning.study_name
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jungle.cli", "dashboard", "--port", str(port), "-w", str(sw.workspace.root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_port(port, server)
        dom = ""
        for _ in range(3):  # the page renders the study list with JavaScript after fetching the API
            page = subprocess.run(
                [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000",
                 "--dump-dom", f"http://127.0.0.1:{port}/dashboard"],
                capture_output=True, text=True, timeout=120,
            )
            dom = page.stdout
            if study in dom:
                break
        assert study in dom, dom[-2000:]
    finally:
        _stop(server)
    assert f"optuna-dashboard on http://127.0.0.1:{port}/dashboard for 1 study ({study})" in server.stderr.read()


def test_dashboard_without_studies_says_what_to_do(tmp_path):
    root = tmp_path / "ws"
    out = CliRunner().invoke(app, ["dashboard", "-w", str(root)])
    assert out.exit_code == 1
    cli_error(out.output, root / "optuna.db", "`jungle stack --trials N`", "--storage URL")
