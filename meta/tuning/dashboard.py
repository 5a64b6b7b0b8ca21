"""``jungle dashboard``: optuna-dashboard over the workspace's study storage, on localhost.

optuna-dashboard has no login: whoever reaches its port can rename, change and delete studies
through its API. So the dashboard listens on 127.0.0.1 unless the user asks for another address
*and* passes ``allow_remote``, and then jungle says plainly who can change what. The port is
checked (range, free) before anything starts, so a taken port is one line, not a traceback.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from ...errors import EnvironmentProblem, InputError
from ...runtime import is_loopback
from ...store.workspace import Workspace

__all__ = ["DashboardError", "DashboardPlan", "DashboardRefused", "PortUnavailable", "dashboard_storage",
           "dashboard_url", "is_loopback", "list_studies", "plan_dashboard", "port_problem", "serve"]


class DashboardError(EnvironmentProblem):
    """There is nothing to show, or the storage cannot be opened."""


class DashboardRefused(InputError):
    """The host or port option is refused: a non-loopback host without --allow-remote, a port out of range."""


class PortUnavailable(EnvironmentProblem):
    """The port cannot be listened on: another program holds it, or the system refuses it."""


def dashboard_storage(workspace: Workspace, storage: str | None = None) -> str:
    """The storage URL to show: ``storage`` or the workspace's SQLite file, which must exist."""
    if storage:
        return storage
    if not workspace.optuna_path.exists():
        raise DashboardError(
            f"no Optuna studies in {workspace.optuna_path}: run `jungle stack --trials N` first "
            "(or pass --storage URL)."
        )
    return workspace.optuna_url


def list_studies(storage: str) -> list[str]:
    """Names of the studies in ``storage``."""
    import optuna

    from .search import open_storage

    return [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)]


def dashboard_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard"


def remote_warning(host: str, port: int) -> str:
    """What the user is told when the dashboard listens beyond this machine."""
    return (f"Warning: the dashboard listens on {host}:{port} with no login: anyone who can reach this port "
            "can change and delete the studies. Stop it (Ctrl-C) when done; firewall the port.")


def _check_host(host: str, allow_remote: bool) -> bool:
    """Return whether ``host`` is remote; refuse a remote host unless ``allow_remote``."""
    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise DashboardRefused(
            f"--host {host} would let anyone who can reach the port change and delete studies "
            "(optuna-dashboard has no login). Leave --host out to listen on 127.0.0.1, or add --allow-remote "
            "if that is what you want."
        )
    return remote


def _check_port_range(port: int) -> None:
    if not 1 <= port <= 65535:
        raise DashboardRefused(f"--port {port} is out of range: give a port from 1 to 65535 (default 8080).")


def port_problem(host: str, port: int) -> OSError | None:
    """Try to bind ``host:port`` the way the dashboard's server will; return the error, or None if free.

    Like the server, the probe sets SO_REUSEADDR, so a port whose last connection is still in
    TIME_WAIT counts as free and one that a program listens on does not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _unavailable(host: str, port: int, problem: OSError) -> PortUnavailable:
    if problem.errno == errno.EADDRINUSE:
        return PortUnavailable(f"port {port} on {host} is in use by another program: pass another port "
                               f"(e.g. --port {port + 1 if port < 65535 else 8080}) or stop that program.")
    if problem.errno == errno.EACCES:
        return PortUnavailable(f"cannot listen on port {port} on {host}: permission denied (ports below 1024 "
                               "need administrator rights); pass --port 8080 or another port above 1023.")
    return PortUnavailable(f"cannot listen on {host}:{port}: {problem.strerror or problem}. "
                           "Check --host is an address of this machine and --port is free.")


@dataclass(frozen=True)
class DashboardPlan:
    """A checked dashboard: what it shows, where it listens, and what the user must be told."""

    storage: str
    studies: tuple[str, ...]
    host: str
    port: int
    remote: bool

    @property
    def url(self) -> str:
        return dashboard_url(self.host, self.port)

    def messages(self) -> list[str]:
        """Lines for stderr before the server starts: the remote warning (if any), then where it runs."""
        noun = "study" if len(self.studies) == 1 else "studies"
        started = (f"optuna-dashboard on {self.url} for {len(self.studies)} {noun} "
                   f"({', '.join(self.studies) or 'none yet'}); Ctrl-C stops it.")
        return [remote_warning(self.host, self.port), started] if self.remote else [started]


def plan_dashboard(workspace: Workspace, storage: str | None = None, host: str = "127.0.0.1", port: int = 8080,
                   allow_remote: bool = False) -> DashboardPlan:
    """Check everything the dashboard needs, before it starts.

    Raises:
        DashboardRefused: a non-loopback ``host`` without ``allow_remote``, or ``port`` out of 1-65535.
        DashboardError: no study storage.
        PortUnavailable: ``port`` is taken or cannot be listened on.
    """
    remote = _check_host(host, allow_remote)
    _check_port_range(port)
    url = dashboard_storage(workspace, storage)
    problem = port_problem(host, port)  # before list_studies, which imports Optuna (seconds)
    if problem is not None:
        raise _unavailable(host, port, problem)
    return DashboardPlan(url, tuple(list_studies(url)), host, port, remote)


def serve(storage: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run optuna-dashboard on ``host:port`` for ``storage`` until interrupted (blocking).

    Raises:
        PortUnavailable: another program took the port between the check and the start.
    """
    from optuna_dashboard import run_server

    from .search import open_storage

    try:
        run_server(open_storage(storage), host=host, port=port)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise _unavailable(host, port, exc) from exc
