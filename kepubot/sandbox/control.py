"""The control API under ``/_sandbox/``: how tests (and the demo) script and inspect the sandbox.

=======  ==========================  ====================================================
GET      /_sandbox/                  routes served and the sandbox clock
GET      /_sandbox/ledger[?route=r]  ``{"accepted": [...], "duplicates": [...]}``
GET      /_sandbox/requests[?route]  every platform request: route, method, path (secrets
                                     stripped), at, status (null when dropped), fault
GET      /_sandbox/faults            installed rules, with ``fired`` and ``remaining``
POST     /_sandbox/faults            replace the rules: a list, or ``{"seed", "rules"}``
DELETE   /_sandbox/faults            remove all rules
POST     /_sandbox/secrets           ``{"webhook": {name: secret}, "wecom_keys": [...],
                                     "dingtalk": {token: secret or ""}}``, merged in
POST     /_sandbox/limits            ``{"wecom": n, "dingtalk": n}``: messages per minute
                                     per robot for load tests (null: the real 20)
GET      /_sandbox/clock             ``{"now", "offset"}``
POST     /_sandbox/clock             ``{"advance": s}`` or ``{"offset": s}``: shift the clock
                                     the platforms use (rate windows, DingTalk throttle)
POST     /_sandbox/reset             forget everything: ledger, requests, faults, secrets,
                                     rate-limit state and limits, clock offset
=======  ==========================  ====================================================

Control requests are not faulted and not written to the request log, so polling them does not
disturb what a test measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kepubot.sandbox.base import Request, Response, json_response
from kepubot.sandbox.faults import FaultConfigError

if TYPE_CHECKING:
    from kepubot.sandbox.server import Sandbox

PREFIX = "/_sandbox"


class ControlAPI:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def handle(self, request: Request) -> Response:
        action = request.path[len(PREFIX) :].strip("/")
        handler = getattr(self, f"_{request.method.lower()}_{action or 'index'}", None)
        if handler is None:
            if any(hasattr(self, f"_{m}_{action or 'index'}") for m in ("get", "post", "delete")):
                return json_response(405, {"error": "method not allowed"})
            return json_response(404, {"error": "not found"})
        try:
            return handler(request)
        except (FaultConfigError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})

    def _route_filter(self, request: Request) -> str | None:
        route = request.param("route")
        if route is not None and route not in self.sandbox.routes:
            raise ValueError(f"route must be one of {sorted(self.sandbox.routes)}")
        return route

    def _get_index(self, request: Request) -> Response:
        return json_response(
            200,
            {
                "routes": {name: ep.prefix for name, ep in self.sandbox.routes.items()},
                "now": self.sandbox.now(),
            },
        )

    def _get_ledger(self, request: Request) -> Response:
        return json_response(200, self.sandbox.ledger.snapshot(self._route_filter(request)))

    def _get_requests(self, request: Request) -> Response:
        return json_response(200, self.sandbox.request_log.snapshot(self._route_filter(request)))

    def _get_faults(self, request: Request) -> Response:
        return json_response(200, self.sandbox.faults.snapshot())

    def _post_faults(self, request: Request) -> Response:
        self.sandbox.faults.configure(_body(request))
        return json_response(200, self.sandbox.faults.snapshot())

    def _delete_faults(self, request: Request) -> Response:
        self.sandbox.faults.clear()
        return json_response(200, self.sandbox.faults.snapshot())

    def _post_secrets(self, request: Request) -> Response:
        self.sandbox.set_secrets(_body(request))
        return json_response(200, {"ok": True})

    def _post_limits(self, request: Request) -> Response:
        self.sandbox.set_limits(_body(request))
        return json_response(200, {"ok": True})

    def _get_clock(self, request: Request) -> Response:
        return json_response(200, {"now": self.sandbox.now(), "offset": self.sandbox.clock_offset})

    def _post_clock(self, request: Request) -> Response:
        payload = _body(request)
        if not isinstance(payload, dict) or set(payload) - {"advance", "offset"}:
            raise ValueError('send {"advance": seconds} or {"offset": seconds}')
        for name in ("offset", "advance"):
            value = payload.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{name} must be a number of seconds")
        if "offset" in payload:
            self.sandbox.clock_offset = float(payload["offset"])
        if "advance" in payload:
            self.sandbox.advance_clock(float(payload["advance"]))
        return self._get_clock(request)

    def _post_reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return json_response(200, {"ok": True})


def _body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        raise ValueError("body is not valid JSON") from None
