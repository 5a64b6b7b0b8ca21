"""The review page's local HTTP server and its JSON API (stdlib ``http.server``, one thread per request).

Safe by default:

- it binds 127.0.0.1; another address only when the caller asks for it explicitly
  (``jungle review --host ADDR --allow-remote`` prints a warning);
- every request that writes (``POST``) must carry the run's token as the ``X-Jungle-Token``
  header; the page gets it from ``<meta name="jungle-token">``. Other pages open in the same browser
  cannot read it, so they cannot write (403);
- on loopback, requests whose ``Host`` header is not this server (DNS rebinding) are refused (403);
- files are served only by ``video_id`` lookup in the workspace (the clip itself, or its cached
  frame strip), never from a path in the request.

API (stable; scripts can use it too):

=======================================  ==========================================================
``GET /api/queue``                        ``order`` (uncertainty | likely | disagreement | site_time |
                                          random), ``class``, ``site``, ``labelled`` (yes | no | all),
                                          ``min_p``, ``max_p``, ``method`` (entropy | margin),
                                          ``limit`` (default 100), ``offset``: ``{"order", "total",
                                          "clips": [{"video_id", "filename", "site", "time", "labels",
                                          "label_source", "probabilities", "top", "score"}]}``
``POST /api/labels``                      ``{"video_id": ..., "classes": [...]}`` (or
                                          ``{"video_id": ..., "clear": true}`` to remove the labels):
                                          ``{"event_id", "clip"}``
``POST /api/undo``                        undoes this run's latest label change: ``{"event_id",
                                          "video_id", "clip"}``
``POST /api/count``                       ``{"video_id": ..., "count": N}`` (or ``"clear": true``: the
                                          machine's count again): ``{"event_id", "clip"}``
``POST /api/count/undo``                  undoes this run's latest count change: ``{"event_id",
                                          "video_id", "clip"}``
``POST /api/retrain``                     re-fits, saves the re-fit as a new model, scores both on the
                                          clips labelled now and keeps the better current:
                                          ``{"refit_id", "current", "clips", "models", "before",
                                          "after", "seconds"}``
``POST /api/model``                       ``{"model": ID or recipe}``: review with that saved model
                                          and make it current: the new ``/api/info``
``GET /api/info``                         model, saved models, classes, sites, counts
``GET /api/clips/<video_id>``             a queue entry plus ``metadata``, ``history``, ``media``
                                          (``video`` | ``frames`` | null), ``missing`` (a message) and
                                          ``count`` (``jungle count``'s and a person's count, the
                                          counted tracks' boxes per sampled frame; null: not counted)
``GET /api/clips/<video_id>/video``       the clip's file (byte ranges supported)
``GET /api/clips/<video_id>/frames.jpg``  a strip of frames, decoded on first use and cached
=======================================  ==========================================================

Errors are JSON ``{"error": message}`` with status 400 (bad request), 403 (token or host), 404
(unknown clip, missing file), 409 (nothing to undo, too few labels) or 503 (database busy).
"""

from __future__ import annotations

import errno
import hmac
import json
import mimetypes
import re
import secrets
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from ..errors import BusyError, EnvironmentProblem, InputError, JungleError, MediaError, NotFoundError
from ..runtime import is_loopback, loopback_host_headers
from ..store.workspace import Workspace
from .labels_store import NothingToUndo
from .retrain import NotEnoughLabels
from .session import ReviewSession, parse_queue_request

__all__ = ["LOOPBACK", "PortTaken", "ReviewRefused", "ReviewServer", "TOKEN_HEADER", "check_host",
           "open_review"]

LOOPBACK = "127.0.0.1"
TOKEN_HEADER = "X-Jungle-Token"
_STATIC = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}
_CLIP_ROUTE = re.compile(r"^/api/clips/([^/]+)(/video|/frames\.jpg)?$")
_CHUNK = 1 << 16
_MAX_BODY = 1 << 16
_CSP = "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'"


class ReviewRefused(InputError):
    """The host or port option is refused: another address without ``allow_remote``, a port out of range."""


class PortTaken(EnvironmentProblem):
    """The port cannot be listened on."""


def check_host(host: str, port: int, allow_remote: bool) -> list[str]:
    """Refuse a non-loopback ``host`` unless ``allow_remote``; return the warnings to print.

    Raises:
        ReviewRefused: the host needs ``allow_remote``, or the port is out of range.
    """
    if not 0 <= port <= 65535:
        raise ReviewRefused(f"--port {port} is not a port number (1-65535)")
    if is_loopback(host):
        return []
    if not allow_remote:
        raise ReviewRefused(f"--host {host} would let other machines reach the review page; pass --allow-remote "
                            "as well to mean it, or leave --host out to listen on 127.0.0.1 only")
    return [f"WARNING: the review page listens on {host}:{port}: anyone who can reach it can see your clips "
            "and, with the token printed below, change labels. Use it on trusted networks only."]


def _static_text(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _status_of(exc: JungleError) -> int:
    if isinstance(exc, _BadRequest):
        return exc.status
    if isinstance(exc, (NothingToUndo, NotEnoughLabels)):
        return HTTPStatus.CONFLICT
    if isinstance(exc, BusyError):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if isinstance(exc, (NotFoundError, MediaError)):
        return HTTPStatus.NOT_FOUND
    if isinstance(exc, InputError):
        return HTTPStatus.BAD_REQUEST
    return HTTPStatus.INTERNAL_SERVER_ERROR


class _BadRequest(InputError):
    """The request itself is malformed (body, JSON, parameters); ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


class ReviewServer:
    """The review page for ``session`` on ``host:port`` (port 0: any free port).

    Attributes:
        token: the run's write token (random unless given).
        url: the page's address.
    """

    def __init__(self, session: ReviewSession, host: str = LOOPBACK, port: int = 8765, token: str | None = None,
                 log_requests: bool = False):
        self.session = session
        self.log_requests = log_requests
        self.token = token or secrets.token_urlsafe(24)
        self.host = host
        self.loopback = is_loopback(host)  # once: the Host check runs on every request
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            reason = "another program listens on it" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise PortTaken(f"cannot listen on {host}:{port} ({reason}); pick another with --port") from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host_headers = loopback_host_headers(host, self.port)

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    def allowed_host(self, header: str | None) -> bool:
        """On loopback, the ``Host`` header must name this server (guards against DNS rebinding)."""
        if not self.loopback:
            return True
        return header in self.host_headers

    def index_html(self) -> str:
        return _static_text("index.html").replace("{{TOKEN}}", self.token)

    def messages(self) -> list[str]:
        """What the command prints when the page is up."""
        labelled = self.session.info()["labelled"]
        lines = [f"jungle review on {self.url} for {len(self.session.clips)} clips ({labelled} labelled), "
                 f"{self.session.origin}; Ctrl-C stops it."]
        if not self.loopback:
            lines.append(f"token for scripts ({TOKEN_HEADER} header): {self.token}")
        return lines

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    def shutdown(self) -> None:
        self.httpd.shutdown()


def open_review(workspace: Workspace, model: str = "current", host: str = LOOPBACK, port: int = 8765,
                allow_remote: bool = False, reviewer: str | None = None,
                log_requests: bool = False) -> tuple[ReviewServer, list[str]]:
    """Check the address, load the review session and bind the server (not serving yet).

    ``reviewer`` is recorded with every label change; ``log_requests`` prints one line per
    request on stderr (off: the terminal shows only what matters).

    Returns:
        the server and the warnings to print first.

    Raises:
        ReviewRefused, PortTaken: the address; NotFoundError: no saved model.
    """
    warnings = check_host(host, port, allow_remote)
    session = ReviewSession(workspace, model, reviewer=reviewer)
    return ReviewServer(session, host, port, log_requests=log_requests), warnings


def _handler(server: ReviewServer):
    session = server.session

    class Handler(BaseHTTPRequestHandler):
        server_version = "jungle-review"
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002  (the stdlib's name)
            if server.log_requests:
                super().log_message(format, *args)

        # ---------------------------------------------------------- responses
        def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", _CSP)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, payload, status: int = HTTPStatus.OK) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _error(self, status: int, message: str) -> None:
            self._json({"error": message}, status)

        def _file(self, path, content_type: str) -> None:
            size = path.stat().st_size
            start, end = 0, size - 1
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
            status = HTTPStatus.OK
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:
                    start = max(size - int(match.group(2)), 0)
                if start > end or start >= size:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = HTTPStatus.PARTIAL_CONTENT
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with open(path, "rb") as handle:
                handle.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = handle.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)

        # ---------------------------------------------------------- dispatch
        def _run(self, route) -> None:
            if not server.allowed_host(self.headers.get("Host")):
                return self._error(HTTPStatus.FORBIDDEN, "unexpected Host header: open the page at " + server.url)
            try:
                route()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser stopped reading (e.g. a video seek)
            except JungleError as exc:
                self._error(_status_of(exc), str(exc))
            except Exception as exc:  # a bug: keep serving, say so, show the traceback on the terminal
                traceback.print_exc(file=sys.stderr)
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(exc).__name__}: {exc}); "
                            "see the terminal running `jungle review`")

        def do_GET(self):  # noqa: N802  (the stdlib's name)
            self._run(self._get)

        do_HEAD = do_GET  # noqa: N815

        def do_POST(self):  # noqa: N802
            self._run(self._post)

        def _get(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if parts.path in ("/", "/index.html"):
                return self._send(HTTPStatus.OK, server.index_html().encode(), "text/html; charset=utf-8")
            if parts.path.startswith("/static/") and parts.path[len("/static/"):] in _STATIC:
                name = parts.path[len("/static/"):]
                return self._send(HTTPStatus.OK, _static_text(name).encode(), _STATIC[name])
            if parts.path == "/favicon.ico":
                return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            if parts.path == "/api/info":
                return self._json(session.info())
            if parts.path == "/api/queue":
                request = parse_queue_request(params, session.classes)
                return self._json(session.queue(request, _int(params, "limit", 100), _int(params, "offset", 0)))
            match = _CLIP_ROUTE.match(parts.path)
            if match:
                video_id, what = match.groups()
                if what is None:
                    return self._json(session.detail(video_id))
                if what == "/video":
                    path = session.video_file(video_id)
                    return self._file(path, mimetypes.guess_type(path.name)[0] or "video/mp4")
                return self._file(session.preview(video_id), "image/jpeg")
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {parts.path}")

        def _length(self) -> int:
            """The body's Content-Length, checked before a byte of the body is read."""
            if self.headers.get("Transfer-Encoding") is not None:
                raise _BadRequest("send the body with a Content-Length, not a Transfer-Encoding",
                                  HTTPStatus.LENGTH_REQUIRED)
            text = self.headers.get("Content-Length")
            if text is None:
                raise _BadRequest("a POST needs a Content-Length header", HTTPStatus.LENGTH_REQUIRED)
            text = text.strip()
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                raise _BadRequest(f"Content-Length {text[:20]!r} is not a number of bytes")
            if int(text) > _MAX_BODY:
                raise _BadRequest(f"request body of {int(text)} bytes is too large (at most {_MAX_BODY})",
                                  HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return int(text)

        def _body(self, length: int) -> dict:
            raw = self.rfile.read(length) if length else b""
            if len(raw) != length:
                raise _BadRequest(f"the request body ended after {len(raw)} of {length} bytes")
            try:
                body = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _BadRequest(f"the request body is not JSON ({exc})") from None
            except RecursionError:
                raise _BadRequest("the request body is nested too deeply to be a request") from None
            if not isinstance(body, dict):
                raise _BadRequest("the request body must be a JSON object")
            return body

        def _post(self) -> None:
            self.close_connection = True  # until the body is read whole: unread bytes would be the next request
            length = self._length()
            given = self.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), server.token.encode()):
                return self._error(HTTPStatus.FORBIDDEN, f"missing or wrong {TOKEN_HEADER} header: writes need the "
                                   "token from the review page's <meta name=\"jungle-token\">")
            path = urlsplit(self.path).path
            body = self._body(length)
            self.close_connection = False
            if path == "/api/labels":
                return self._json(session.set_labels(*_label_request(body)))
            if path == "/api/undo":
                return self._json(session.undo())
            if path == "/api/count":
                return self._json(session.set_count(*_count_request(body)))
            if path == "/api/count/undo":
                return self._json(session.undo_count())
            if path == "/api/retrain":
                result = session.retrain()
                return self._json(result.as_json())
            if path == "/api/model":
                model = body.get("model")
                if not isinstance(model, str) or not model:
                    raise _BadRequest('the body needs "model": a saved model\'s id or recipe')
                return self._json(session.use_model(model))
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {path}")

    return Handler


def _int(params: dict, name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise _BadRequest(f"{name} must be a whole number below 10^9, not {text[:20]!r}")
    return int(text)


def _count_request(body: dict) -> tuple[str, int | None]:
    """(video_id, count) of a ``POST /api/count`` body; ``count`` None removes the person's count."""
    video_id = body.get("video_id")
    if not isinstance(video_id, str) or not video_id:
        raise _BadRequest('the body needs "video_id": the clip\'s id (a string)')
    if body.get("clear") is True:
        return video_id, None
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int):
        raise _BadRequest('the body needs "count": a whole number of animals (or "clear": true)')
    return video_id, count


def _label_request(body: dict) -> tuple[str, list[str] | None]:
    """(video_id, classes) of a ``POST /api/labels`` body; ``classes`` None clears the labels."""
    video_id, classes = body.get("video_id"), body.get("classes")
    if not isinstance(video_id, str) or not video_id:
        raise _BadRequest('the body needs "video_id": the clip\'s id (a string)')
    if body.get("clear") is True:
        return video_id, None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _BadRequest('the body needs "classes": a non-empty list of class names '
                          '(or "clear": true to remove the labels)')
    return video_id, classes
