"""``jungle dashboard``: optuna-dashboard over the workspace's study storage, on localhost.

optuna-dashboard has no login: whoever reaches its port can rename, change and delete studies
through its API. So the dashboard listens on 127.0.0.1 unless the user asks for another address
*and* passes ``allow_remote``, and then jungle says plainly who can change what. In front of it,
:class:`DashboardGuard` refuses foreign ``Host`` headers on loopback (DNS rebinding) and every
write without the run's token, as the review page does; requests are not logged on the terminal.
The port is checked (range, free) before anything starts, so a taken port is one line, not a
traceback.
"""

from __future__ import annotations

import errno
import hmac
import http.cookies
import json
import secrets
import socket
import urllib.parse
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ...errors import EnvironmentProblem, InputError
from ...runtime import is_loopback, loopback_host_headers, quiet_optuna
from ...store.workspace import Workspace
from .search import open_storage

__all__ = ["DashboardError", "DashboardGuard", "DashboardPlan", "DashboardRefused", "PortUnavailable", "TOKEN_HEADER",
           "dashboard_storage",
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
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    @property
    def url(self) -> str:
        return dashboard_url(self.host, self.port)

    def messages(self) -> list[str]:
        """Lines for stderr before the server starts: the remote warning (if any), where it runs, and
        the address with the write token."""
        noun = "study" if len(self.studies) == 1 else "studies"
        started = (f"optuna-dashboard on {self.url} for {len(self.studies)} {noun} "
                   f"({', '.join(self.studies) or 'none yet'}); Ctrl-C stops it.")
        writes = f"to change or delete studies, open {self.url}?token={self.token} (reading needs no token)"
        return ([remote_warning(self.host, self.port)] if self.remote else []) + [started, writes]


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


TOKEN_HEADER = "X-Jungle-Token"
_MAX_BODY = 1 << 20
_READS = ("GET", "HEAD")


class DashboardGuard:
    """WSGI middleware in front of optuna-dashboard: the review page's protections.

    * On loopback, a request whose ``Host`` header is not this server is refused (403): a page on
      another site that makes its name resolve to 127.0.0.1 (DNS rebinding) reads and changes nothing.
    * Every request that may write (any method but GET and HEAD: create, rename, delete studies,
      notes, tells) needs the run's token, as the ``X-Jungle-Token`` header or as the cookie a
      browser gets by opening the URL jungle prints (``?token=...``; HttpOnly, SameSite=Strict); an
      ``Origin`` other than this server is refused too. A body is capped at 1 MiB before it is read.
    """

    def __init__(self, app, host: str, port: int, token: str, remote: bool):
        self.app, self.token = app, token
        self.hosts = None if remote else loopback_host_headers(host, port)
        self.origins = None if remote else {f"http://{name}" for name in self.hosts}
        self.cookie = f"jungle_dashboard_{port}"

    def _deny(self, start_response, status: str, message: str):
        body = json.dumps({"error": message}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _given(self, environ) -> tuple[str, str]:
        """(token in the header, token in the cookie)."""
        cookies = http.cookies.SimpleCookie()
        try:
            cookies.load(environ.get("HTTP_COOKIE", ""))
        except http.cookies.CookieError:
            pass
        morsel = cookies.get(self.cookie)
        return environ.get("HTTP_X_JUNGLE_TOKEN", ""), morsel.value if morsel else ""

    def _valid(self, text: str) -> bool:
        return bool(text) and hmac.compare_digest(text.encode(), self.token.encode())

    def __call__(self, environ, start_response):
        if self.hosts is not None and environ.get("HTTP_HOST") not in self.hosts:
            return self._deny(start_response, "403 Forbidden", "unexpected Host header: open the dashboard at the "
                                                               "address `jungle dashboard` printed")
        if environ.get("REQUEST_METHOD", "GET") in _READS:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if not self._valid((query.get("token") or [""])[-1]):
                return self.app(environ, start_response)
            cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"

            def with_cookie(status, headers, exc_info=None):
                return start_response(status, [*headers, ("Set-Cookie", cookie)], exc_info)

            return self.app(environ, with_cookie)
        origin = environ.get("HTTP_ORIGIN")
        if self.origins is not None and origin is not None and origin not in self.origins:
            return self._deny(start_response, "403 Forbidden", f"writes from {origin[:80]} are refused")
        if not any(self._valid(given) for given in self._given(environ)):
            return self._deny(start_response, "403 Forbidden", f"writes need the run's token: open the URL "
                              f"`jungle dashboard` printed (?token=...), or send the {TOKEN_HEADER} header")
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > _MAX_BODY:
            return self._deny(start_response, "413 Content Too Large", f"the request body must be at most "
                              f"{_MAX_BODY} bytes with a valid Content-Length")
        return self.app(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """No line per request on the terminal."""

    def log_message(self, format, *args):  # noqa: A002  (the stdlib's name)
        pass


def serve(storage: str, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          remote: bool | None = None, log_requests: bool = False) -> None:
    """Run optuna-dashboard on ``host:port`` for ``storage`` behind :class:`DashboardGuard` until
    interrupted (blocking).

    Args:
        storage: the study storage URL.
        host, port: where to listen.
        token: the run's write token (None: a random one, so nothing can write).
        remote: whether ``host`` reaches beyond this machine (None: worked out); the Host check
            applies on loopback only.
        log_requests: print one line per request on stderr (the stdlib's format).

    Raises:
        PortUnavailable: another program took the port between the check and the start.
    """
    import optuna_dashboard

    app = DashboardGuard(optuna_dashboard.wsgi(open_storage(storage)), host, port, token or secrets.token_urlsafe(24),
                         not is_loopback(host) if remote is None else remote)
    server_class = type("DashboardServer", (ThreadingWSGIServer,),
                        {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    try:
        handler = WSGIRequestHandler if log_requests else _QuietHandler
        httpd = make_server(host, port, app, server_class=server_class, handler_class=handler)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise _unavailable(host, port, exc) from exc
    with httpd, quiet_optuna():
        httpd.serve_forever()


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
