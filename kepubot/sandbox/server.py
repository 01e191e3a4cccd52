"""The sandbox HTTP server: routing, fault injection, the request log, start/stop.

``Sandbox().start()`` serves on a background thread and returns the base URL; the emulated
platforms live under their real paths (``/cgi-bin/webhook/send``, ``/robot/send``,
``/2/statuses/share.json``, ``/cgi-bin/draft/add``, ``/api/douyin/v1/video/create_video/``,
...) and
the control API under ``/_sandbox/`` (see :mod:`kepubot.sandbox.control`). :func:`main` is
what ``kepubot sandbox [--port P]`` runs: it prints the base URL and serves until interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from kepubot.sandbox.base import (
    Context,
    Endpoint,
    Request,
    Response,
    json_response,
    redact_target,
)
from kepubot.sandbox.bilibili import BilibiliOpenAPI
from kepubot.sandbox.control import PREFIX as CONTROL_PREFIX
from kepubot.sandbox.control import ControlAPI
from kepubot.sandbox.douyin import DouyinOpenAPI
from kepubot.sandbox.faults import NOT_APPLIED, FaultRule, Faults
from kepubot.sandbox.kuaishou import KuaishouOpenAPI
from kepubot.sandbox.ledger import Ledger, RequestLog
from kepubot.sandbox.robots import DingtalkRobot, WecomRobot
from kepubot.sandbox.webhook import WebhookReceiver
from kepubot.sandbox.wechat import WechatOfficialAccount
from kepubot.sandbox.weibo import WeiboAPI

logger = logging.getLogger("kepubot.sandbox")

EndpointFactory = Callable[[Context], Endpoint]
DEFAULT_ENDPOINTS: tuple[EndpointFactory, ...] = (
    WebhookReceiver,
    WecomRobot,
    DingtalkRobot,
    WeiboAPI,
    WechatOfficialAccount,
    DouyinOpenAPI,
    BilibiliOpenAPI,
    KuaishouOpenAPI,
)

MAX_BODY_BYTES = 32 * 1024 * 1024
IDLE_KEEPALIVE_SECONDS = 300


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SandboxRequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as the real platforms speak; every response has a Content-Length.
    protocol_version = "HTTP/1.1"
    # headers and body go out as separate writes: without this, Nagle's algorithm holds the
    # body back until the client's delayed ACK, ~40 ms on every keep-alive request
    disable_nagle_algorithm = True
    server_version = "kepubot-sandbox/1"
    timeout = IDLE_KEEPALIVE_SECONDS
    server: SandboxHTTPServer

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        at = sandbox.now()
        target = self.path
        path = urlsplit(target).path
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            request = self._request()
            if isinstance(request, Request):
                self._send(self._apply(sandbox.control, request))
            elif request is not None:
                self._send(request)
            return

        endpoint = sandbox.match(path)
        route = endpoint.route if endpoint else None
        secret_params = endpoint.secret_params if endpoint else sandbox.secret_params
        logged_path = redact_target(target, secret_params)
        request = self._request()
        if not isinstance(request, Request):
            status = request.status if request is not None else None
            sandbox.request_log.record(route, self.command, logged_path, at, status, None)
            if request is not None:
                self._send(request)
            return
        if endpoint is None:
            response = json_response(404, {"error": "not found"})
            sandbox.request_log.record(None, self.command, logged_path, at, 404, None)
            self._send(response)
            return

        rule = sandbox.faults.pick(endpoint.route, request.method, request.path)
        mode = rule.mode if rule else None
        if rule is not None and mode == "delay":
            sandbox.context.sleep(rule.sleep_seconds)
        if rule is not None and mode in NOT_APPLIED:
            response = _fault_response(rule, endpoint, request, sandbox.now())
        else:
            response = self._apply(endpoint, request)
            if rule is not None and mode == "error_after":
                response = json_response(rule.status or 502, {"error": "sandbox fault error_after"})
        dropped = mode == "drop_after"
        sandbox.request_log.record(
            route, request.method, logged_path, at, None if dropped else response.status, mode
        )
        logger.debug(
            "%s %s -> %s%s",
            request.method,
            logged_path,
            "dropped" if dropped else response.status,
            f" (fault {mode})" if mode else "",
        )
        if dropped:
            self._drop_connection()
            return
        if rule is not None and mode == "hang_after":
            sandbox.context.sleep(rule.sleep_seconds)
        self._send(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _apply(self, endpoint: Endpoint | ControlAPI, request: Request) -> Response:
        try:
            return endpoint.handle(request)
        except Exception:
            logger.exception("sandbox handler for %s failed", urlsplit(request.target).path)
            return json_response(500, {"error": "sandbox handler failed"})

    def _request(self) -> Request | Response | None:
        """The parsed request; else the error answer for a malformed body, or None when the
        client went away while sending it."""
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            return json_response(exc.status, {"error": str(exc)})
        except OSError:
            self.close_connection = True
            return None
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return Request(self.command, self.path, self.headers, body, host, self.client_address[0])

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        if not (length_text.isascii() and length_text.strip().isdigit()):
            raise _BodyError(400, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, "body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BodyError(400, "bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(413, "body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if self.server.sandbox.stopping.is_set():
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            # The client gave up (its timeout fired during hang_after) or the sandbox stopped.
            self.close_connection = True

    def _drop_connection(self) -> None:
        """Close without a single byte of response: "accepted, but the answer was lost"."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes the raw request line, query-string secrets included, to stderr;
        # _dispatch logs a redacted line instead.
        pass


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SandboxRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alives, hung answers)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxHTTPServerV6(SandboxHTTPServer):
    address_family = socket.AF_INET6


def _fault_response(rule: FaultRule, endpoint: Endpoint, request: Request, now: float) -> Response:
    if rule.mode == "rate_limit":
        seconds = rule.sleep_seconds
        if rule.http_date:
            retry_after = formatdate(now + seconds, usegmt=True)
        else:
            retry_after = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        return json_response(429, {"error": "rate limited"}, {"Retry-After": retry_after})
    if rule.mode in ("busy", "platform_error"):
        if rule.mode == "busy":
            response = endpoint.busy_response(request)
        else:
            response = endpoint.error_response(rule.code or 0, request)
        if rule.status is not None and response.status >= 400:
            response.status = rule.status
        return response
    return json_response(rule.status or 502, {"error": f"sandbox fault {rule.mode}"})


class Sandbox:
    """Local emulator of the platform endpoints our channels call.

    >>> sandbox = Sandbox()
    >>> base_url = sandbox.start()      # "http://127.0.0.1:<free port>"
    >>> sandbox.stop()

    ``clock`` is the platforms' idea of now (rate windows, DingTalk's timestamp check and
    throttle, ledger times); :meth:`advance_clock` moves it forward without sleeping.
    ``seed`` seeds the fault dice whenever rules are installed without their own seed.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        endpoints: Iterable[EndpointFactory] = DEFAULT_ENDPOINTS,
    ) -> None:
        self._clock = clock
        self._clock_offset = 0.0
        self._clock_lock = threading.Lock()
        self.ledger = Ledger()
        self.request_log = RequestLog()
        self.stopping = threading.Event()
        self.context = Context(ledger=self.ledger, now=self.now, stopping=self.stopping)
        self.faults = Faults(default_seed=seed)
        self.routes: dict[str, Endpoint] = {}
        self._by_prefix: list[tuple[str, Endpoint]] = []
        for factory in endpoints:
            self.add_endpoint(factory)
        self.control = ControlAPI(self)
        self._lifecycle_lock = threading.Lock()
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None

    # -- endpoints ---------------------------------------------------------------------

    def add_endpoint(self, factory: EndpointFactory) -> Endpoint:
        """Mount another emulated platform (the Weibo/WeChat/Douyin emulators plug in here)."""
        endpoint = factory(self.context)
        prefixes = endpoint.all_prefixes
        if not endpoint.route or not prefixes or not all(p.startswith("/") for p in prefixes):
            raise ValueError("an endpoint needs a route name and prefixes starting with '/'")
        if endpoint.route in self.routes:
            raise ValueError(f"route {endpoint.route!r} is already mounted")
        if any(p.startswith(CONTROL_PREFIX) for p in prefixes):
            raise ValueError(f"{CONTROL_PREFIX} is reserved for the control API")
        taken = {p: e.route for p, e in self._by_prefix}
        clash = [p for p in prefixes if p in taken]
        if clash:
            raise ValueError(f"prefix {clash[0]!r} is already served by {taken[clash[0]]!r}")
        known_settings = {name for e in self.routes.values() for name in e.SETTINGS}
        shared = known_settings & set(endpoint.SETTINGS)
        if shared:
            raise ValueError(f"setting(s) {sorted(shared)} already belong to another route")
        self.routes[endpoint.route] = endpoint
        pairs = [(p, e) for e in self.routes.values() for p in e.all_prefixes]
        self._by_prefix = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)
        self.faults.add_route(endpoint.route)
        return endpoint

    def match(self, path: str) -> Endpoint | None:
        """The endpoint with the longest prefix of ``path``."""
        for prefix, endpoint in self._by_prefix:
            if path.startswith(prefix):
                return endpoint
        return None

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset().union(*(e.secret_params for e in self.routes.values()))

    # -- clock -------------------------------------------------------------------------

    def now(self) -> float:
        with self._clock_lock:
            return self._clock() + self._clock_offset

    @property
    def clock_offset(self) -> float:
        with self._clock_lock:
            return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        with self._clock_lock:
            self._clock_offset = seconds

    def advance_clock(self, seconds: float) -> None:
        with self._clock_lock:
            self._clock_offset += seconds

    # -- scripting (the same operations as the control API) -----------------------------

    def set_faults(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        self.faults.configure(rules if seed is None else {"seed": seed, "rules": rules})

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_secrets(self, payload: Any) -> None:
        """Merge ``{"webhook": {...}, "wecom_keys": [...], "dingtalk": {...},
        "weibo_tokens": [...], "wechat": {...}, "douyin": {...}}``."""
        if not isinstance(payload, dict):
            raise ValueError("secrets must be a JSON object")
        by_key = {e.secrets_key: e for e in self.routes.values() if e.secrets_key}
        unknown = set(payload) - set(by_key)
        if unknown:
            raise ValueError(
                f"unknown secrets section(s) {sorted(unknown)}; known: {sorted(by_key)}"
            )
        for key, value in payload.items():
            by_key[key].set_secrets(value)

    def set_limits(self, payload: Any) -> None:
        """``{"wecom": n, "dingtalk": n}``: messages per minute per robot (null: the real 20)."""
        if not isinstance(payload, dict):
            raise ValueError("limits must be a JSON object")
        unknown = set(payload) - set(self.routes)
        if unknown:
            raise ValueError(f"unknown route(s) {sorted(unknown)}")
        for route, value in payload.items():
            self.routes[route].set_limit(value)

    def settings(self) -> dict[str, Any]:
        """Every knob of every route, flat: ``{"publish_polls_before_done": 1, ...}``."""
        values: dict[str, Any] = {}
        for endpoint in self.routes.values():
            values.update(endpoint.settings_snapshot())
        return values

    def set_settings(self, payload: Any) -> None:
        """Change knobs by name (``null`` restores a default); all or nothing."""
        if not isinstance(payload, dict):
            raise ValueError("settings must be a JSON object")
        owners = {name: e for e in self.routes.values() for name in e.SETTINGS}
        unknown = set(payload) - set(owners)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(owners)}")
        by_endpoint: dict[str, dict[str, Any]] = {}
        for name, value in payload.items():
            by_endpoint.setdefault(owners[name].route, {})[name] = value
        # Check everything before changing anything.
        for route, values in by_endpoint.items():
            endpoint = self.routes[route]
            for name, value in values.items():
                if value is not None:
                    try:
                        endpoint.SETTINGS[name].check(value)
                    except ValueError as exc:
                        raise ValueError(f"setting {name}: {exc}") from None
        for route, values in by_endpoint.items():
            self.routes[route].apply_settings(values)

    def expire(self, payload: Any) -> None:
        """``{"route": "wechat" | "weibo" | "douyin", ...}``: expire that route's tokens."""
        if not isinstance(payload, dict) or not isinstance(payload.get("route"), str):
            raise ValueError('send {"route": name, ...}')
        endpoint = self.routes.get(payload["route"])
        if endpoint is None:
            raise ValueError(f"route must be one of {sorted(self.routes)}")
        endpoint.expire(payload)

    def stats(self, route: str | None = None) -> dict[str, Any]:
        """Per-route counters (token fetches and refreshes), for "exactly one refresh" tests."""
        return {
            name: endpoint.stats()
            for name, endpoint in self.routes.items()
            if route is None or name == route
        }

    def reset(self) -> None:
        """Forget everything: ledger, request log, faults, secrets, rate state, limits,
        settings, clock."""
        self.faults.clear()
        for endpoint in self.routes.values():
            endpoint.reset()
            endpoint.reset_settings()
        self.ledger.clear()
        self.request_log.clear()
        self.clock_offset = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread; returns the base URL (port 0 picks a free port)."""
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError(f"the sandbox is already serving at {self.base_url}")
            self.stopping.clear()
            server_class = SandboxHTTPServerV6 if ":" in host else SandboxHTTPServer
            server = server_class((host, port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="kepubot-sandbox",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            bound_port = server.server_address[1]
            shown_host = f"[{host}]" if ":" in host else host
            self.base_url = f"http://{shown_host}:{bound_port}"
            logger.info("sandbox serving at %s", self.base_url)
            return self.base_url

    def stop(self) -> None:
        """Stop serving and free the port; hung answers and idle connections are cut."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self.stopping.set()  # wakes hang_after/delay sleeps
            server.shutdown()
            server.close_connections()
            server.server_close()
            thread.join(timeout=5)
            self._server = self._thread = None
            self.base_url = None

    def url(self, path: str = "") -> str:
        if self.base_url is None:
            raise RuntimeError("the sandbox is not serving; call start() first")
        return self.base_url + path

    def wait(self) -> None:
        """Block until :meth:`stop` is called (from another thread or a signal handler)."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(0.5)

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(port: int = 0, host: str = "127.0.0.1") -> None:
    """Serve forever: print the base URL on stdout, stop on Ctrl-C or SIGTERM."""
    sandbox = Sandbox()
    # The handler goes in before the URL is printed: whoever reads the URL may stop us at once.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        print(sandbox.start(host, port), flush=True)
        sandbox.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
