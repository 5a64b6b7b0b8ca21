"""`jungle dashboard` stays on this machine unless told otherwise, and a bad port is one line.

optuna-dashboard has no login, so a non-loopback --host is refused without --allow-remote and
warned about with it. Ports are checked before the server starts: a port held by a real socket,
or one out of range, gives one "Error:" line and no traceback. Every run is the real CLI in a
subprocess on a real Optuna SQLite storage.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from test_dashboard import _free_port, _stop, _wait_for_port
from jungle.meta.tuning.dashboard import PortUnavailable, is_loopback, serve
from jungle.store.workspace import Workspace

from _errors import says

pytestmark = pytest.mark.slow  # real dashboard servers: ~2 s a test

STUDY = "safety-study"


@pytest.fixture(scope="module")
def workspace_with_study(tmp_path_factory) -> Workspace:
    """A workspace whose optuna.db holds one (empty) study, made with Optuna itself."""
    import optuna

    from jungle.meta.tuning import open_storage

    ws = Workspace.resolve(tmp_path_factory.mktemp("dash") / "ws")
    ws.root.mkdir(parents=True)
    optuna.create_study(storage=open_storage(ws.optuna_url), study_name=STUDY)
    return ws


def _dashboard(ws: Workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "jungle.cli", "dashboard", "-w", str(ws.root), *map(str, args)]


def _run(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_dashboard(ws, *args), capture_output=True, text=True, timeout=60)


def _serve_briefly(ws: Workspace, port: int, *args: str) -> str:
    """Start the real dashboard, wait until it accepts a connection on 127.0.0.1:port, stop it;
    return its stderr."""
    server = subprocess.Popen(_dashboard(ws, "--port", port, *args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, server)
    finally:
        _stop(server)
    return server.stderr.read()


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("Error: "), done.stderr
    return done.stderr


def test_port_held_by_another_program_is_one_line(workspace_with_study):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run(workspace_with_study, "--port", port)
    says(_one_error_line(done), f"port {port} on 127.0.0.1", "in use", f"--port {port + 1}")


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_port_out_of_range_is_one_line(workspace_with_study, port):
    done = _run(workspace_with_study, "--port", port)
    says(_one_error_line(done), f"--port {port}", "out of range", "1 to 65535")


def test_a_negative_port_is_a_one_line_usage_error(workspace_with_study):
    done = _run(workspace_with_study, "--port", -1)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    says(done.stderr, "Error: Invalid value for '--port'", "-1 is not a number from 0")


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_non_loopback_host_is_refused_without_allow_remote(workspace_with_study, host):
    port = _free_port()
    done = _run(workspace_with_study, "--host", host, "--port", port)
    says(_one_error_line(done), f"--host {host}", "change and delete studies", "127.0.0.1", "--allow-remote")
    with pytest.raises(OSError):  # nothing was started on the port
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.slow  # a real dashboard server (~3 s)
def test_allow_remote_serves_and_warns_who_can_change_studies(workspace_with_study):
    port = _free_port()
    stderr = _serve_briefly(workspace_with_study, port, "--host", "0.0.0.0", "--allow-remote")
    assert stderr.startswith(
        f"Warning: the dashboard listens on 0.0.0.0:{port} with no login: anyone who can reach this port can "
        "change and delete the studies. Stop it (Ctrl-C) when done; firewall the port.\n"
        f"optuna-dashboard on http://0.0.0.0:{port}/dashboard for 1 study ({STUDY}); Ctrl-C stops it.\n"), stderr


@pytest.mark.slow  # a real dashboard server (~3 s)
def test_default_host_is_loopback_and_gives_no_warning(workspace_with_study):
    port = _free_port()
    stderr = _serve_briefly(workspace_with_study, port)
    assert stderr.startswith(f"optuna-dashboard on http://127.0.0.1:{port}/dashboard for 1 study ({STUDY})"), stderr
    assert "Warning" not in stderr


def test_port_taken_after_the_check_is_still_a_jungle_error(workspace_with_study):
    """The server's own bind failing (another program won the race) is a PortUnavailable too."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortUnavailable, match=f"port {port} on 127.0.0.1 is in use by another program"):
            serve(workspace_with_study.optuna_url, host="127.0.0.1", port=port)


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("10.0.0.1", False),
])
def test_which_hosts_count_as_this_machine_only(host, loopback):
    assert is_loopback(host) is loopback
