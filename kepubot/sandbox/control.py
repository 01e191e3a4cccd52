"""The control API under ``/_sandbox/``: how tests (and the demo) script and inspect the sandbox.

=======  ==========================  ====================================================
GET      /_sandbox/                  routes served (name: first prefix), every route's
                                     ``prefixes``, and the sandbox clock
GET      /_sandbox/ledger[?route=r]  ``{"accepted": [...], "duplicates": [...]}``
GET      /_sandbox/requests[?route]  every platform request: route, method, path (secrets
                                     stripped), at, status (null when dropped), fault
GET      /_sandbox/faults            installed rules, with ``fired`` and ``remaining``
POST     /_sandbox/faults            replace the rules: a list, or ``{"seed", "rules"}``;
                                     a rule may filter on ``path`` (a substring)
DELETE   /_sandbox/faults            remove all rules
POST     /_sandbox/secrets           merged in, by section:
                                     ``"webhook": {name: secret}``,
                                     ``"wecom_keys": [key, ...]``,
                                     ``"dingtalk": {token: secret or ""}``,
                                     ``"weibo_tokens": [token, ...]``,
                                     ``"wechat": {appid: secret}``,
                                     ``"douyin": {"client_key", "client_secret",
                                     "access_token", "refresh_token", "open_id",
                                     "scope"}``,
                                     ``"bilibili": {"client_id", "client_secret",
                                     "access_token", "refresh_token", "openid",
                                     "scopes"}``, ``"kuaishou": {"app_id",
                                     "app_secret", "access_token", "refresh_token",
                                     "open_id", "scopes"}``
POST     /_sandbox/limits            ``{"wecom": n, "dingtalk": n}``: messages per minute
                                     per robot for load tests (null: the real 20)
GET      /_sandbox/settings          every platform knob and its current value
POST     /_sandbox/settings          ``{knob: value, ...}``, all or nothing; null restores
                                     the default (knobs below)
POST     /_sandbox/expire            ``{"route": "wechat"[, "appid": a]}``: every token
                                     answers 42001; ``{"route": "weibo"[, "token": t]}``:
                                     21327 until registered again; ``{"route": "douyin",
                                     "what": "access" | "refresh"}``: access tokens answer
                                     28001008, refresh tokens 10010; the same for
                                     "bilibili" (-658, -101) and "kuaishou" (100200103,
                                     100200101)
GET      /_sandbox/stats[?route=r]   per-route counters (below)
GET      /_sandbox/clock             ``{"now", "offset"}``
POST     /_sandbox/clock             ``{"advance": s}`` or ``{"offset": s}``: shift the clock
                                     the platforms use (rate windows, DingTalk throttle,
                                     token expiry, publishing, growing counts, T+1 dates)
POST     /_sandbox/reset             forget everything: ledger, requests, faults, secrets,
                                     tokens, posts, counters, settings and limits, clock
=======  ==========================  ====================================================

Settings (defaults in brackets):

- Weibo: ``weibo_posts_per_hour`` [30, 0 = no limit], ``weibo_rate_limit_code`` [20016; or
  10023, 10024], ``timeline_delay_seconds`` [0: new statuses show in user_timeline at once],
  ``weibo_safe_domains`` [[]: any http(s) link will do], ``weibo_duplicate_window_seconds``
  [86400], ``weibo_slow_success`` [0: the next N accepted posts answer 20032].
- WeChat: ``publish_polls_before_done`` [1], ``publish_seconds_before_done`` [0],
  ``publish_final_status`` [0; or 2, 3, 4], ``wechat_token_expires_in`` [7200],
  ``wechat_token_overlap_seconds`` [0], ``wechat_publishes_per_minute`` [10, 0 = no limit],
  ``wechat_literal_unicode_escapes`` [true], ``publish_unpolled_seconds`` [60: an unpolled
  publish job runs this long, past a client's timeout], ``wechat_draft_during_publish``
  [stays; or leaves], ``wechat_mass_protection`` [false: 「API群发保护」 off],
  ``wechat_mass_admin`` [confirms; or refuses, ignores], ``wechat_mass_confirm_seconds`` [5].
- Douyin: ``douyin_review_seconds`` [60], ``douyin_min_part_bytes`` [5 MiB],
  ``douyin_rotate_on_refresh`` [true], ``douyin_renew_limit`` [5],
  ``douyin_access_expires_in`` [15 days], ``douyin_refresh_expires_in`` [30 days],
  ``douyin_upload_limit_bytes`` [128 MiB], ``douyin_processing_seconds`` [120: a created
  video is not listed before], ``douyin_app_capabilities`` [every one].
- Bilibili: ``bilibili_review_seconds`` [60], ``bilibili_list_delay_seconds`` [30],
  ``bilibili_refuse_titles`` [[]: titles containing one are returned, -2],
  ``bilibili_timestamp_skew_seconds`` [600], ``bilibili_app_scopes`` [every one],
  ``bilibili_tids`` [a list of knowledge categories], token lives [30 and 60 days].
- Kuaishou: ``kuaishou_pending_seconds`` [60], ``kuaishou_list_delay_seconds`` [30],
  ``kuaishou_refuse_captions`` [[]], ``kuaishou_app_scopes`` [every one], token lives [48
  hours, 180 days].

Stats: Weibo ``tokens_granted``, ``token_info_calls``, ``statuses``; WeChat ``token_fetches``
(cgi-bin/token), ``stable_token_fetches`` (every call with good credentials),
``stable_tokens_issued``; Douyin
``access_token_grants``, ``token_refreshes``, ``refresh_token_renewals``,
``client_token_fetches``, ``videos_uploaded``, ``parts_received``, ``uploads_completed``,
``videos_created``; Bilibili ``token_refreshes``, ``parts_received``,
``archives_submitted``; Kuaishou ``token_refreshes``, ``fragments_received``,
``photos_published``. Only successful calls count, except ``stable_token_fetches``.

Accepted creates reach the ledger with ``kind`` and the platform's ``id``: Weibo
``kind: "status"`` (``name_or_key`` the uid); WeChat ``"draft"``, ``"freepublish"`` (with
``final_status``) and ``"mass"`` (``idempotency_key`` the clientmsgid; ``name_or_key`` the
appid); Douyin ``"video"`` (``name_or_key`` the open_id); Bilibili ``"archive"`` (the
openid); Kuaishou ``"photo"`` (the open_id). Repeats the platform refused (Weibo 20019, WeChat
45065 or a draft sent twice, Douyin a video_id used twice, Bilibili an upload_token submitted
twice, Kuaishou an upload_token published twice) go to ``duplicates``.

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
                "routes": {name: ep.all_prefixes[0] for name, ep in self.sandbox.routes.items()},
                "prefixes": {
                    name: list(ep.all_prefixes) for name, ep in self.sandbox.routes.items()
                },
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

    def _get_settings(self, request: Request) -> Response:
        return json_response(200, self.sandbox.settings())

    def _post_settings(self, request: Request) -> Response:
        self.sandbox.set_settings(_body(request))
        return json_response(200, self.sandbox.settings())

    def _post_expire(self, request: Request) -> Response:
        self.sandbox.expire(_body(request))
        return json_response(200, {"ok": True})

    def _get_stats(self, request: Request) -> Response:
        return json_response(200, self.sandbox.stats(self._route_filter(request)))

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
