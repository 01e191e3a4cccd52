"""What every emulated endpoint shares: the parsed request, the response, the endpoint seam.

An endpoint owns one path prefix (``/webhook/``, ``/cgi-bin/webhook/``, ``/robot/``); the server
routes to the longest matching prefix, so a future WeChat OA emulator can own ``/cgi-bin/``
without taking WeCom's ``/cgi-bin/webhook/`` away.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
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


class Endpoint:
    """Base class of an emulated platform endpoint.

    Subclasses set ``route`` (the name used in the ledger, the request log and fault rules),
    ``prefix``, ``secret_params`` (query parameters whose values never reach the request log)
    and ``secrets_key`` (their section in ``POST /_sandbox/secrets``), and implement
    :meth:`handle`. ``handle`` runs on the server's worker threads: guard shared state.
    """

    route: str = ""
    prefix: str = ""
    secret_params: frozenset[str] = frozenset()
    secrets_key: str | None = None

    def __init__(self, context: Context) -> None:
        self.context = context

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def busy_response(self) -> Response:
        """The platform's own "try again later" answer, for the ``busy`` fault."""
        return json_response(503, {"error": "service busy"})

    def set_secrets(self, value: Any) -> None:
        """Merge credentials from ``POST /_sandbox/secrets``; raise ValueError if malformed."""
        raise ValueError(f"{self.route} takes no secrets")

    def set_limit(self, value: Any) -> None:
        """Change the platform's rate limit (``POST /_sandbox/limits``); ValueError if none."""
        raise ValueError(f"{self.route} has no adjustable rate limit")

    def reset(self) -> None:
        """Forget secrets, counters, rate-limit state and adjusted limits."""
