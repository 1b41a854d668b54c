"""The explorer's server: Bottle routes over one read-only store, behind a guard.

The guard (a WSGI wrapper around the Bottle app) answers every request first:
403 unless the `Host` header names the address served (DNS rebinding) and the
request's address starts with the session's token (/<token>/runs); it
adds the security headers to every answer and hands the page to the workers
(workers.py: a few threads, each page made with a store of its own, since one
MLMD store object is not safe across threads), answering 503 when no page comes
within the bound.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import socket
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Set, Tuple
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

from mlmd_exercise.errors import MlmdExerciseError, NotFoundError, RenderError
from mlmd_exercise.store import Store
from mlmd_exercise.web import pages, views
from mlmd_exercise.web.runs import RunsQuery, runs_page
from mlmd_exercise.web.workers import BOUND, Busy, Workers

__all__ = ["STATIC", "Explorer", "make_app", "serve", "allowed_hosts"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = [("Content-Security-Policy", _CSP), ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY")]
MAX_DRAWN = 400  # nodes in one lineage picture
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".txt": "text/plain; charset=utf-8",
          ".svg": "image/svg+xml"}


def allowed_hosts(host: str, port: int) -> Optional[Set[str]]:
    """The `Host` header values that name this server, or None for a wildcard address
    (0.0.0.0, ::), where any IP literal is accepted with the machine's own names."""
    names = {host}
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_unspecified:
        return None
    if ip is not None and ip.is_loopback or host == "localhost":
        names |= {"127.0.0.1", "localhost", "[::1]"}
    if ip is not None and ip.version == 6:
        names.add(f"[{host}]")
    return {f"{n}:{port}" for n in names}


def _host_ok(header: str, allowed: Optional[Set[str]], port: int) -> bool:
    header = header.strip().lower()
    if allowed is not None:
        return header in allowed
    name, _, given_port = header.rpartition(":")
    if given_port != str(port):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return name in {socket.gethostname().lower(), socket.getfqdn().lower(), "localhost"}


class Explorer:
    """The WSGI application: the guard around the Bottle app."""

    def __init__(self, workers: Workers, token: str, host: str, port: int) -> None:
        self.workers, self.token, self.port = workers, token, port
        self.allowed = allowed_hosts(host, port)

    def _refuse(self, start_response, message: str, status: str = "403 Forbidden",
                extra: Iterable[Tuple[str, str]] = (), root: str = "") -> List[bytes]:
        """A one-line error page; its link to the runs carries `root` (none before the token
        is known good: a refusal never names it)."""
        before = views.ROOT.set(root)
        try:
            body = views.error_view(int(status.split()[0]), message).encode()
        finally:
            views.ROOT.reset(before)
        start_response(status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                                ("Cache-Control", "no-store"), *extra, *_HEADERS])
        return [body]

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        if not _host_ok(environ.get("HTTP_HOST", ""), self.allowed, self.port):
            return self._refuse(start_response, f"this server does not answer for host "
                                f"'{environ.get('HTTP_HOST', '')}'")
        # The token is the address's first segment, /<token>/runs: a browser sends it to this
        # server alone (a cookie would go to every port of the host), and no page is reached
        # without it. The app below sees it as its mount point (SCRIPT_NAME), its pages' links
        # carry it (views.ROOT), and the rest of the address is its own.
        given, _, rest = (environ.get("PATH_INFO") or "/")[1:].partition("/")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return self._refuse(start_response, "no valid token: open the address that "
                                "'mlmd-exercise ui' printed, /<token>/runs")
        root = f"/{self.token}"
        environ = {**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + root, "PATH_INFO": "/" + rest}
        try:
            status, headers, body = self.workers.answer(environ)
        except Busy as e:
            return self._refuse(start_response, str(e), "503 Service Unavailable", [("Retry-After", "5")], root)
        except Exception as e:  # a store that would not open for a worker, say: never a traceback
            log.exception("%s failed", environ["PATH_INFO"])
            first = (str(e).strip().splitlines() or ["an unexpected error"])[0]
            return self._refuse(start_response, f"{environ['PATH_INFO']} failed: {first}",
                                "500 Internal Server Error", root=root)
        names = {k.lower() for k, _ in headers}
        extra = [h for h in _HEADERS if h[0].lower() not in names]
        if "cache-control" not in names:
            extra.append(("Cache-Control", "no-store"))
        start_response(status, headers + extra)
        return [body]


# -- the pages: one function each, given the store, the request and the address's parts ----------

def _params(request) -> dict:
    return {k: request.query.getunicode(k, default="") for k in request.query.keys()}


def _only(request, *names: str) -> dict:
    """The query's parameters, refusing any not in `names`."""
    given = _params(request)
    for key in given:
        if key not in names:
            raise pages.BadParameter(f"unknown query parameter '{key}'"
                                     + (f": use {', '.join(names)}" if names else ""))
    return given


def runs_route(store: Store, request) -> str:
    return views.runs_view(runs_page(store, RunsQuery.parse(_params(request))))


def node_route(store: Store, request, kind: str, node_id: str) -> str:
    _only(request)
    return views.node_view(pages.node_page(store, kind, pages.parse_id(node_id, f"{kind} id")))


def lineage_route(store: Store, request, kind: str, node_id: str) -> str:
    from mlmd_exercise.collapse import collapse

    given = _only(request, "direction", "hops", "expand")
    hops_text = given.get("hops", str(pages.DEFAULT_HOPS))
    hops = None if hops_text in ("", "all") else _hops(hops_text)
    if given.get("expand", "1") != "1":
        raise pages.BadParameter(f"expand must be 1, not '{given['expand']}'")
    found = pages.lineage_page(store, pages.parse_kind(kind), pages.parse_id(node_id, f"{kind} id"),
                               given.get("direction") or "both", hops)
    graph, groups = (found.graph, []) if "expand" in given else collapse(found.graph)
    size = len(graph.artifacts) + len(graph.executions)
    if size > MAX_DRAWN:  # graphviz would take minutes, and nobody could read it
        svg = views.too_big(size, MAX_DRAWN)
    else:
        svg = views.lineage_svg(graph, start=(found.kind, found.node.id))
    expand = request.fullpath + "?" + urlencode({**given, "expand": "1"})
    return views.lineage_view(found, svg, views.collapsed_note(groups, expand))


def compare_route(store: Store, request) -> str:
    _only(request, "execution", "artifact")
    runs, models = request.query.getall("execution"), request.query.getall("artifact")
    if bool(runs) == bool(models) or len(runs or models) != 2:
        raise pages.BadParameter("compare needs two runs (?execution=A&execution=B) or two artifacts "
                                 f"(?artifact=A&artifact=B), not {len(runs) + len(models)} values")
    kind = "execution" if runs else "artifact"
    a, b = (pages.parse_id(v, f"{kind} id") for v in runs or models)
    return views.compare_view(pages.compare(store, kind, a, b))


def states_route(store: Store, request) -> str:
    from mlmd_exercise.render import states_chart_svg

    given = _only(request, "context")
    context = pages.parse_id(given["context"], "context") if given.get("context") else None
    found = pages.states_page(store, context)
    svg = states_chart_svg(found.counts)
    return views.states_view(found, svg[svg.index("<svg"):])


# Address (Bottle's pattern) -> the function that makes its page.
ROUTES: Tuple[Tuple[str, Callable[..., str]], ...] = (
    ("/runs", runs_route),
    ("/<kind:re:artifact|execution>/<node_id>", node_route),
    ("/lineage/<kind>/<node_id>", lineage_route),
    ("/compare", compare_route),
    ("/states", states_route),
)


def _error_view(request, error: Exception) -> Tuple[int, str]:
    """A page's failure as (status, page): known errors a 400 or 404 page naming the value,
    anything else a 500 page with one line (the traceback goes to the log)."""
    if isinstance(error, NotFoundError):
        return 404, views.error_view(404, str(error))
    if isinstance(error, (pages.BadParameter, ValueError)):
        return 400, views.error_view(400, str(error))
    if isinstance(error, RenderError):
        return 500, views.error_view(500, str(error))
    if isinstance(error, MlmdExerciseError):
        return 400, views.error_view(400, str(error))
    log.error("%s failed", request.path, exc_info=error)
    first = (str(error).strip().splitlines() or ["an unexpected error"])[0]
    return 500, views.error_view(500, f"{request.path} failed: {first}")


def _static(bottle, name: str):
    # Only the files that ship in the folder, by exact name: no path is ever resolved.
    if name not in _static_files():
        bottle.response.status = 404
        return views.error_view(404, f"no file '{name}' here")
    path = STATIC / name
    bottle.response.content_type = _TYPES.get(path.suffix, "application/octet-stream")
    bottle.response.set_header("Cache-Control", "max-age=3600")
    return path.read_bytes()


def _no_page(bottle, error):
    bottle.response.content_type = "text/html; charset=utf-8"
    request = bottle.request
    if error.status_code == 404:
        return views.error_view(404, f"no page at '{request.path}'")
    if error.status_code == 405:
        return views.error_view(405, f"the explorer only reads: {request.method} is not allowed")
    return views.error_view(error.status_code, f"{request.path} failed")


def make_app(store: Store):
    """The Bottle app with the explorer's routes (ROUTES) over `store`."""
    import bottle

    app = bottle.Bottle()  # catchall: an error outside a page handler is our 500 page, never a traceback

    @app.hook("before_request")
    def mount():
        # The links of every page made for this request (error pages too) start with the
        # address the app is mounted at: the server's /<token>, else nothing.
        views.ROOT.set(bottle.request.environ.get("SCRIPT_NAME", "").rstrip("/"))

    def page(route: Callable[..., str]):
        def handler(**parts):
            bottle.response.content_type = "text/html; charset=utf-8"
            try:
                return route(store, bottle.request, **parts)
            except bottle.HTTPResponse:
                raise
            except Exception as e:  # never a traceback on the page
                bottle.response.status, body = _error_view(bottle.request, e)
                return body
        return handler

    app.get("/")(lambda: bottle.redirect(views.url("/runs"), 302))
    for path, route in ROUTES:
        app.get(path)(page(route))
    app.get("/static/<name:path>")(lambda name: _static(bottle, name))
    for status in (404, 405, 500):
        app.error(status)(lambda error: _no_page(bottle, error))
    return app


def _hops(text: str) -> int:
    if not text.isdigit():
        raise pages.BadParameter(f"hops must be a whole number from 0 to {pages.MAX_HOPS}, or all, not '{text}'")
    return int(text)


def _static_files() -> Set[str]:
    return {p.name for p in STATIC.iterdir() if p.is_file()}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's idle keep-alive socket never blocks shutdown
    allow_reuse_address = True
    # Connections waiting to be accepted (socketserver's default is 5): a burst of 200 at once
    # is queued by the kernel, not dropped and retried by every client for seconds.
    request_queue_size = 1024
    token = ""  # the session's, masked in the log


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    timeout = 30  # a socket a browser opened and never used is closed

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        token = getattr(self.server, "token", "")
        line = format % args
        log.debug("%s %s", self.address_string(), line.replace(token, "***") if token else line)


def serve(store: Store, host: str = "127.0.0.1", ports: Iterable[int] = (0,),
          ready: Callable[[str, int], None] = lambda url, port: None,
          opener: Optional[Callable[[], Store]] = None, bound: float = BOUND) -> None:
    """Serves the explorer until interrupted, on the first of `ports` that is free;
    `ready(url, port)` is called once it listens.

    Args:
        store: the store to show (left open: the caller's).
        opener: opens the same store again, read-only, for pages made at the same time (up
            to workers.WORKERS stores, opened as pages overlap, closed when serving ends);
            None: `store` alone, one page at a time.
        bound: seconds a request may wait for its page, queued or being made, before a 503.

    Raises:
        MlmdExerciseError: the address cannot be listened on.
    """
    token = secrets.token_urlsafe(24)
    holder: dict = {}

    def application(environ, start_response):
        return holder["guard"](environ, start_response)

    server = None
    for port in ports:
        try:
            server = make_server(host, port, application, server_class=_Server6 if ":" in host else _Server,
                                 handler_class=_QuietHandler)
            break
        except OSError as e:
            failure = f"cannot listen on '{host}' port {port}: {e.strerror or e}"
    if server is None:
        raise MlmdExerciseError(failure)
    port = server.server_address[1]
    server.token = token
    workers = Workers(store, make_app, opener, bound=bound)
    holder["guard"] = Explorer(workers, token, host, port)
    shown = f"[{host}]" if ":" in host else host
    try:
        ready(f"http://{shown}:{port}/{token}/runs", port)
        server.serve_forever()
    finally:
        server.server_close()
        workers.close()

