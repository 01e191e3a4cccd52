"""Scripted faults: the switches behind the fault tests of docs/delivery.md §13.2.

A rule (JSON, as posted to ``/_sandbox/faults``)::

    {"route": "webhook" | "wecom" | "dingtalk" | "weibo" | "wechat" | "douyin" | "*",
     "mode": "error_before" | "error_after" | "drop_after" | "hang_after"
             | "delay" | "rate_limit" | "busy" | "platform_error",
     "rate": 0..1,        # probability that a matching request gets the fault (default 1)
     "count": N,          # the fault is injected at most N times, then the rule is spent
     "seconds": float,    # hang_after/delay sleep, rate_limit's Retry-After
     "status": int,       # HTTP status of error_before/error_after (502), busy on webhook (503)
     "method": "POST",    # optional: only requests with this method (default any)
     "path": "share.json",  # optional: only requests whose path contains this text
     "code": 45009,       # platform_error: the platform's own error code to answer with
     "http_date": false}  # optional, rate_limit: send Retry-After as an HTTP-date

Modes, relative to the platform *applying* the request (recording it in the ledger):

- ``error_before``: not applied; HTTP ``status`` (502).
- ``error_after``: applied; HTTP ``status`` (502) instead of the real answer.
- ``drop_after``: applied; the connection is shut down without any response.
- ``hang_after``: applied; the answer comes after ``seconds`` (60), past the client's timeout.
- ``delay``: sleep ``seconds`` (1), then handle normally.
- ``rate_limit``: not applied; HTTP 429 with ``Retry-After: seconds`` (120).
- ``busy``: not applied; the platform's own busy answer (robots and WeChat: errcode -1;
  webhook: 503; Weibo: HTTP 503 with error_code 10009; Douyin: 2100004).
- ``platform_error``: not applied; the platform's own error answer with ``code`` (WeChat
  ``{"errcode": code}``, Weibo ``{"error_code": "code"}``, Douyin ``data.error_code``), for
  the errors a test wants to script: WeChat 45009 or 48001, Weibo 10023, Douyin 2118110...

``path`` matches the request path without its query string (``freepublish/submit``,
``share.json``), so one call of a multi-step flow can be faulted alone.

Rules are tried in order and the first one that fires wins: one fault per request at most.
Control requests (``/_sandbox/``) are never faulted. Random draws come from a
``random.Random`` reseeded each time rules are installed (with the given seed, else the
sandbox's default seed, 0 unless set), so the same requests in the same order get the same
faults.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

MODES = frozenset(
    {
        "error_before",
        "error_after",
        "drop_after",
        "hang_after",
        "delay",
        "rate_limit",
        "busy",
        "platform_error",
    }
)
# Modes in which the platform never sees the request.
NOT_APPLIED = frozenset({"error_before", "rate_limit", "busy", "platform_error"})

DEFAULT_STATUS = {"error_before": 502, "error_after": 502}
DEFAULT_SECONDS = {"hang_after": 60.0, "delay": 1.0, "rate_limit": 120.0}
DEFAULT_SEED = 0

_FIELDS = frozenset(
    {"route", "mode", "rate", "count", "seconds", "status", "method", "path", "code", "http_date"}
)


class FaultConfigError(ValueError):
    """A fault rule that cannot be installed; the message says which field and why."""


@dataclass
class FaultRule:
    route: str
    mode: str
    rate: float = 1.0
    count: int | None = None
    seconds: float | None = None
    status: int | None = None
    method: str = "*"
    path: str | None = None
    code: int | None = None
    http_date: bool = False
    fired: int = field(default=0, compare=False)

    def matches(self, route: str, method: str, path: str = "") -> bool:
        if self.route not in ("*", route):
            return False
        if self.method not in ("*", method):
            return False
        if self.path is not None and self.path not in path:
            return False
        return self.count is None or self.fired < self.count

    @property
    def sleep_seconds(self) -> float:
        return self.seconds if self.seconds is not None else DEFAULT_SECONDS.get(self.mode, 0.0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["remaining"] = None if self.count is None else max(0, self.count - self.fired)
        return data


def parse_rule(raw: Any, routes: Iterable[str]) -> FaultRule:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"a fault rule must be an object, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise FaultConfigError(f"unknown field(s) in fault rule: {', '.join(sorted(unknown))}")
    known_routes = {*routes, "*"}
    route = raw.get("route", "*")
    if route not in known_routes:
        raise FaultConfigError(f"route must be one of {sorted(known_routes)}, got {route!r}")
    mode = raw.get("mode")
    if mode not in MODES:
        raise FaultConfigError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    rate = _number(raw, "rate", 1.0)
    if not 0.0 <= rate <= 1.0:
        raise FaultConfigError(f"rate must be between 0 and 1, got {rate}")
    count = raw.get("count")
    if count is not None and (not _is_int(count) or count < 0):
        raise FaultConfigError(f"count must be a non-negative integer, got {count!r}")
    seconds = raw.get("seconds")
    if seconds is not None:
        seconds = _number(raw, "seconds", 0.0)
        if seconds < 0:
            raise FaultConfigError(f"seconds must not be negative, got {seconds}")
    status = raw.get("status")
    if status is not None and (not _is_int(status) or not 100 <= status <= 599):
        raise FaultConfigError(f"status must be an HTTP status code, got {status!r}")
    method = raw.get("method", "*")
    if not isinstance(method, str) or not method:
        raise FaultConfigError(f"method must be an HTTP method or '*', got {method!r}")
    path = raw.get("path")
    if path is not None and (not isinstance(path, str) or not path):
        raise FaultConfigError(f"path must be a non-empty string, got {path!r}")
    code = raw.get("code")
    if code is not None and not _is_int(code):
        raise FaultConfigError(f"code must be an integer, got {code!r}")
    if (mode == "platform_error") != (code is not None):
        raise FaultConfigError("code is required with mode platform_error, and only there")
    http_date = raw.get("http_date", False)
    if not isinstance(http_date, bool):
        raise FaultConfigError(f"http_date must be true or false, got {http_date!r}")
    return FaultRule(
        route=route,
        mode=mode,
        rate=rate,
        count=count,
        seconds=seconds,
        status=status,
        method=method.upper(),
        path=path,
        code=code,
        http_date=http_date,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(raw: dict[str, Any], name: str, default: float) -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


class Faults:
    """The installed fault rules; :meth:`pick` is called once per platform request."""

    def __init__(self, routes: Iterable[str] = (), default_seed: int = DEFAULT_SEED) -> None:
        self._lock = threading.Lock()
        self._routes = set(routes)
        self._rules: list[FaultRule] = []
        self._default_seed = default_seed
        self._seed = default_seed
        self._rng = random.Random(default_seed)

    def add_route(self, route: str) -> None:
        with self._lock:
            self._routes.add(route)

    def configure(self, payload: Any) -> None:
        """Replace the rules: ``payload`` is a list of rules or ``{"seed": n, "rules": [...]}``."""
        seed = self._default_seed
        if isinstance(payload, dict):
            unknown = set(payload) - {"seed", "rules"}
            if unknown:
                raise FaultConfigError(f"unknown field(s): {', '.join(sorted(unknown))}")
            seed = payload.get("seed", self._default_seed)
            if not _is_int(seed):
                raise FaultConfigError(f"seed must be an integer, got {seed!r}")
            payload = payload.get("rules", [])
        if not isinstance(payload, list):
            raise FaultConfigError("send a list of fault rules or {'seed': n, 'rules': [...]}")
        with self._lock:
            rules = [parse_rule(raw, self._routes) for raw in payload]
            self._rules = rules
            self._seed = seed
            self._rng = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._rules = []
            self._seed = self._default_seed
            self._rng = random.Random(self._default_seed)

    def pick(self, route: str, method: str, path: str = "") -> FaultRule | None:
        """The fault to inject into this request, if any; counts it against the rule."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(route, method, path):
                    continue
                if rule.rate >= 1.0 or self._rng.random() < rule.rate:
                    rule.fired += 1
                    return rule
            return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self._seed, "rules": [rule.to_dict() for rule in self._rules]}
