"""What every emulated endpoint shares: the parsed request, the response, the endpoint seam.

An endpoint owns one or more path prefixes (``/webhook/``, ``/cgi-bin/webhook/``, ``/robot/``;
WeChat OA owns ``/cgi-bin/`` and ``/datacube/``); the server routes to the longest matching
prefix, so WeChat OA's ``/cgi-bin/`` does not take WeCom's ``/cgi-bin/webhook/`` away.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote_plus, urlsplit

from kepubot.sandbox.ledger import Ledger

REDACTED = "***"


@dataclass
class Request:
    """One HTTP request as an endpoint sees it (the body is fully read)."""

    method: str
    target: str  # path plus query string, exactly as sent
    headers: Message
    body: bytes
    host: str  # the Host header, or the server's own address
    peer: str = ""  # the client's IP address (what an IP allow-list checks)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        # parse_qs URL-decodes once, as a real platform's query parser does.
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as UTF-8 JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    return Response(status, body, all_headers)


def redact_target(target: str, secret_params: frozenset[str]) -> str:
    """``target`` with the values of ``secret_params`` replaced by ``***`` (names are kept)."""
    parts = urlsplit(target)
    if not parts.query:
        return parts.path
    pairs = []
    for item in parts.query.split("&"):
        name, sep, value = item.partition("=")
        if unquote_plus(name) in secret_params:
            value = REDACTED
        pairs.append(f"{name}{sep}{value}" if sep else name)
    return f"{parts.path}?{'&'.join(pairs)}"


@dataclass
class Context:
    """What the sandbox lends its endpoints: the ledger, the clock and a stoppable sleep."""

    ledger: Ledger
    now: Callable[[], float]
    stopping: threading.Event

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the sandbox stops."""
        self.stopping.wait(max(0.0, seconds))


@dataclass(frozen=True)
class Setting:
    """One knob of ``POST /_sandbox/settings``: its default and how a sent value is checked.

    ``check`` returns the value to store or raises ValueError; ``null`` restores the default.
    """

    default: Any
    check: Callable[[Any], Any]
    doc: str = ""


class Endpoint:
    """Base class of an emulated platform endpoint.

    Subclasses set ``route`` (the name used in the ledger, the request log and fault rules),
    ``prefix`` (plus ``prefixes`` when the platform lives under several paths),
    ``secret_params`` (query parameters whose values never reach the request log),
    ``secrets_key`` (their section in ``POST /_sandbox/secrets``) and ``SETTINGS`` (their
    knobs in ``POST /_sandbox/settings``), and implement :meth:`handle`. ``handle`` runs on the
    server's worker threads: guard shared state.
    """

    route: str = ""
    prefix: str = ""
    prefixes: tuple[str, ...] = ()
    secret_params: frozenset[str] = frozenset()
    secrets_key: str | None = None
    SETTINGS: ClassVar[dict[str, Setting]] = {}

    def __init__(self, context: Context) -> None:
        self.context = context
        self._settings_lock = threading.Lock()
        self._settings: dict[str, Any] = {name: s.default for name, s in self.SETTINGS.items()}

    @property
    def all_prefixes(self) -> tuple[str, ...]:
        """Every path prefix this endpoint serves: ``prefix`` first, then ``prefixes``."""
        extra = tuple(p for p in self.prefixes if p != self.prefix)
        return (self.prefix, *extra) if self.prefix else extra

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def busy_response(self, request: Request | None = None) -> Response:
        """The platform's own "try again later" answer, for the ``busy`` fault."""
        return json_response(503, {"error": "service busy"})

    def error_response(self, code: int, request: Request | None = None) -> Response:
        """The platform's own error answer carrying ``code``, for the ``platform_error`` fault."""
        return json_response(400, {"error": f"platform error {code}", "code": code})

    def set_secrets(self, value: Any) -> None:
        """Merge credentials from ``POST /_sandbox/secrets``; raise ValueError if malformed."""
        raise ValueError(f"{self.route} takes no secrets")

    def set_limit(self, value: Any) -> None:
        """Change the platform's rate limit (``POST /_sandbox/limits``); ValueError if none."""
        raise ValueError(f"{self.route} has no adjustable rate limit")

    def expire(self, payload: dict[str, Any]) -> None:
        """Expire credentials (``POST /_sandbox/expire``); ValueError if there are none."""
        raise ValueError(f"{self.route} has no tokens to expire")

    def stats(self) -> dict[str, Any]:
        """Counters for ``GET /_sandbox/stats`` (token fetches and the like)."""
        return {}

    # -- settings ------------------------------------------------------------------------

    def setting(self, name: str) -> Any:
        with self._settings_lock:
            return self._settings[name]

    def settings_snapshot(self) -> dict[str, Any]:
        with self._settings_lock:
            return dict(self._settings)

    def apply_settings(self, values: dict[str, Any]) -> None:
        """Check every value first, then store them all (or none); ``None`` means default."""
        checked = {}
        for name, value in values.items():
            spec = self.SETTINGS[name]
            try:
                checked[name] = spec.default if value is None else spec.check(value)
            except ValueError as exc:
                raise ValueError(f"setting {name}: {exc}") from None
        with self._settings_lock:
            self._settings.update(checked)

    def reset_settings(self) -> None:
        with self._settings_lock:
            self._settings = {name: s.default for name, s in self.SETTINGS.items()}

    def reset(self) -> None:
        """Forget secrets, counters, rate-limit state and adjusted limits."""


# -- setting checks ------------------------------------------------------------------------


def non_negative_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return float(value)


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return value


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected an integer >= 1, got {value!r}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def one_of(*choices: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"expected one of {list(choices)}, got {value!r}")
        return value

    return check


def string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a list of non-empty strings, got {value!r}")
    return list(value)
