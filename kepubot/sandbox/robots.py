"""Emulated group-chat robots: WeCom (docs/platforms.md §6) and DingTalk (§7, §11.1).

Both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success and a non-zero errcode
otherwise, as the real ones do. The codes our notes give are used as documented (WeCom 45009
and 93000; DingTalk 310000 and 130101, all **[gk]** there). DingTalk's 300005 for an unknown
token, its 90030 "webhook over limit" and the message-validation codes (WeCom 40008, 44004,
40058, 40035, 40009; DingTalk 40035) come from what client projects report seeing, not from the
platform docs: a client should treat any errcode it does not know as a permanent problem with
the message.

Credentials: only registered ones are accepted (``POST /_sandbox/secrets``), never "whatever
comes first". WeCom: ``{"wecom_keys": [...]}``; an unknown key is 93000. WeCom content limits:
text 2048 bytes, markdown 4096 bytes (40058). DingTalk: ``{"dingtalk": {token: security}}``,
where security is the signing secret ("" for none) or ``{"secret", "keywords", "ips"}``: the
robot's 安全设置. A message is refused with 310000 when it is unsigned or badly signed (a
secret is set), contains none of the keywords, or comes from an address outside ``ips``.

Only accepted messages count towards the 20-per-minute limits, and only they reach the ledger.
Load tests may raise a limit with ``POST /_sandbox/limits`` (the real limits are the default and
come back on reset).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from kepubot.sandbox.base import (
    Endpoint,
    Request,
    Response,
    Setting,
    json_response,
    non_negative_int,
)

MESSAGES_PER_MINUTE = 20
WINDOW_SECONDS = 60.0
DINGTALK_THROTTLE_SECONDS = 600.0
DINGTALK_TIMESTAMP_TOLERANCE_MS = 3600 * 1000
DINGTALK_MAX_KEYWORDS = 10

WECOM_TEXT_MAX_BYTES = 2048
WECOM_MARKDOWN_MAX_BYTES = 4096  # WeCom's doc page (docs/platforms.md §1.3)
WECOM_IMAGE_MAX_BYTES = 2 * 1024 * 1024  # before base64; WeCom's doc page
WECOM_NEWS_MAX_ARTICLES = 8


class PlatformError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def errcode_response(errcode: int, errmsg: str) -> Response:
    return json_response(200, {"errcode": errcode, "errmsg": errmsg})


def ok_response() -> Response:
    return errcode_response(0, "ok")


class SlidingWindow:
    """At most ``limit`` events per ``seconds`` per key. Not locked: callers hold their lock."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: dict[str, deque[float]] = {}

    def full(self, key: str, now: float) -> bool:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.seconds:
            events.popleft()
        return len(events) >= self.limit

    def add(self, key: str, now: float) -> None:
        self._events.setdefault(key, deque()).append(now)

    def clear(self) -> None:
        self._events.clear()


def _per_minute(value: Any) -> int:
    """A limit from ``POST /_sandbox/limits``: messages per minute, or null for the default."""
    if value is None:
        return MESSAGES_PER_MINUTE
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("a limit is a positive number of messages per minute, or null")
    return value


def _text(message: dict[str, Any], section: str, field: str, errcode: int) -> str:
    part = message.get(section)
    value = part.get(field) if isinstance(part, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise PlatformError(errcode, f"empty content: {section}.{field} is required")
    return value


def _string_list(part: dict[str, Any], field: str, errcode: int) -> None:
    value = part.get(field)
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        raise PlatformError(errcode, f"invalid parameter: {field} must be a list of strings")


def _message(request: Request, errcode: int) -> dict[str, Any]:
    try:
        message = request.json()
    except ValueError:
        raise PlatformError(errcode, "wrong json format") from None
    if not isinstance(message, dict):
        raise PlatformError(errcode, "wrong json format")
    return message


class _Robot(Endpoint):
    """What both group robots share: a lock, a per-key 20-a-minute window (raisable through
    ``/_sandbox/limits``) and errcode-shaped failures."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._lock = threading.Lock()
        self._window = SlidingWindow(MESSAGES_PER_MINUTE, WINDOW_SECONDS)

    def set_limit(self, value: Any) -> None:
        limit = _per_minute(value)
        with self._lock:
            self._window.limit = limit

    def busy_response(self, request: Request | None = None) -> Response:
        return errcode_response(-1, "system busy")

    def error_response(self, code: int, request: Request | None = None) -> Response:
        return errcode_response(code, "sandbox scripted error")


class WecomRobot(_Robot):
    """``POST /cgi-bin/webhook/send?key=<KEY>``. The key is the only credential."""

    route = "wecom"
    prefix = "/cgi-bin/webhook/"
    secret_params = frozenset({"key"})
    secrets_key = "wecom_keys"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._keys: set[str] = set()

    def set_secrets(self, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
            raise ValueError('"wecom_keys" must be a list of robot keys')
        with self._lock:
            self._keys.update(value)

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()
            self._window.clear()
            self._window.limit = MESSAGES_PER_MINUTE

    def handle(self, request: Request) -> Response:
        if request.path != "/cgi-bin/webhook/send":
            return json_response(404, {"error": "not found"})
        if request.method != "POST":
            return json_response(405, {"error": "method not allowed"}, {"Allow": "POST"})
        key = request.param("key") or ""
        with self._lock:
            known = key in self._keys
        if not known:
            return errcode_response(93000, "invalid webhook url")
        try:
            message = _message(request, 40035)
            validate_wecom(message)
        except PlatformError as exc:
            return errcode_response(exc.errcode, exc.errmsg)
        now = self.context.now()
        with self._lock:
            if self._window.full(key, now):
                return errcode_response(45009, "api freq out of limit")
            self._window.add(key, now)
            self.context.ledger.accept(self.route, key, message, now)
        return ok_response()


def validate_wecom(message: dict[str, Any]) -> None:
    msgtype = message.get("msgtype")
    if msgtype == "text":
        content = _text(message, "text", "content", 44004)
        if len(content.encode("utf-8")) > WECOM_TEXT_MAX_BYTES:
            raise PlatformError(40058, "text.content exceed max length 2048")
        _string_list(message["text"], "mentioned_list", 40035)
        _string_list(message["text"], "mentioned_mobile_list", 40035)
    elif msgtype == "markdown":
        content = _text(message, "markdown", "content", 44004)
        if len(content.encode("utf-8")) > WECOM_MARKDOWN_MAX_BYTES:
            raise PlatformError(40058, "markdown.content exceed max length 4096")
    elif msgtype == "news":
        news = message.get("news")
        articles = news.get("articles") if isinstance(news, dict) else None
        if not isinstance(articles, list) or not articles:
            raise PlatformError(44004, "empty content: news.articles is required")
        if len(articles) > WECOM_NEWS_MAX_ARTICLES:
            raise PlatformError(40058, "news.articles takes 1 to 8 articles")
        for i, article in enumerate(articles):
            for field in ("title", "url"):
                value = article.get(field) if isinstance(article, dict) else None
                if not isinstance(value, str) or not value.strip():
                    raise PlatformError(44004, f"empty content: news.articles[{i}].{field}")
    elif msgtype == "image":
        image = message.get("image")
        encoded = image.get("base64") if isinstance(image, dict) else None
        md5 = image.get("md5") if isinstance(image, dict) else None
        if not isinstance(encoded, str) or not encoded or not isinstance(md5, str) or not md5:
            raise PlatformError(44004, "empty content: image.base64 and image.md5 are required")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PlatformError(40009, "invalid image: base64 does not decode") from None
        if len(data) > WECOM_IMAGE_MAX_BYTES:
            raise PlatformError(40009, "invalid image size: over 2 MB")
        if hashlib.md5(data).hexdigest() != md5.lower():
            raise PlatformError(40009, "invalid image: md5 does not match")
    else:
        raise PlatformError(40008, "invalid message type")


@dataclass(frozen=True)
class RobotSecurity:
    """A DingTalk custom robot's 安全设置: any of signing, keywords and an IP allow-list."""

    secret: str = ""
    keywords: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


def _security(token: str, value: Any) -> RobotSecurity:
    if isinstance(value, str):
        return RobotSecurity(secret=value)
    if not isinstance(value, dict) or set(value) - {"secret", "keywords", "ips"}:
        raise ValueError(
            f'"dingtalk" {token!r}: a signing secret, or {{"secret", "keywords", "ips"}}'
        )
    secret = value.get("secret", "")
    keywords = value.get("keywords", [])
    ips = value.get("ips", [])
    if not isinstance(secret, str):
        raise ValueError(f'"dingtalk" {token!r}: secret must be a string')
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise ValueError(f'"dingtalk" {token!r}: keywords must be a list of words')
    if len(keywords) > DINGTALK_MAX_KEYWORDS:
        raise ValueError(f'"dingtalk" {token!r}: at most {DINGTALK_MAX_KEYWORDS} keywords')
    if not isinstance(ips, list) or not all(isinstance(i, str) for i in ips):
        raise ValueError(f'"dingtalk" {token!r}: ips must be a list of addresses or ranges')
    try:
        networks = tuple(ipaddress.ip_network(i, strict=False) for i in ips)
    except ValueError as exc:
        raise ValueError(f'"dingtalk" {token!r}: {exc}') from None
    return RobotSecurity(secret, tuple(keywords), networks)


class DingtalkRobot(_Robot):
    """``POST /robot/send?access_token=<T>[&timestamp=<ms>&sign=<S>]``.

    Tokens and their security settings are registered through the control API; any other
    token is refused (300005). A robot registered with no security setting at all (an old
    robot) takes any message.
    """

    route = "dingtalk"
    prefix = "/robot/"
    secret_params = frozenset({"access_token", "sign"})
    secrets_key = "dingtalk"
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "dingtalk_webhook_allowance": Setting(
            0,
            non_negative_int,
            "messages each robot may send before 90030 webhook over limit; 0: no allowance",
        ),
    }

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._tokens: dict[str, RobotSecurity] = {}
        self._throttled_until: dict[str, float] = {}
        self._sent: dict[str, int] = {}
        self._uuids: dict[str, set[str]] = {}

    def set_secrets(self, value: Any) -> None:
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            raise ValueError('"dingtalk" must map access tokens to their security settings')
        checked = {token: _security(token, setting) for token, setting in value.items()}
        with self._lock:
            self._tokens.update(checked)

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._window.clear()
            self._window.limit = MESSAGES_PER_MINUTE
            self._throttled_until.clear()
            self._sent.clear()
            self._uuids.clear()

    def handle(self, request: Request) -> Response:
        if request.path != "/robot/send":
            return json_response(404, {"error": "not found"})
        if request.method != "POST":
            return json_response(405, {"error": "method not allowed"}, {"Allow": "POST"})
        token = request.param("access_token") or ""
        with self._lock:
            security = self._tokens.get(token)
        if security is None:
            return errcode_response(300005, "token is not exist")
        now = self.context.now()
        if security.secret:
            problem = check_signature(
                security.secret, request.param("timestamp"), request.param("sign"), now
            )
            if problem:
                return errcode_response(310000, problem)
        if security.networks and not _peer_allowed(request.peer, security.networks):
            # The wording users report for an address outside the allow-list [gk].
            return errcode_response(310000, f"ip {request.peer} not in whitelist")
        with self._lock:
            if self._throttled_until.get(token, 0.0) > now:
                return errcode_response(130101, "send too fast")
        try:
            message = _message(request, 40035)
            validate_dingtalk(message)
        except PlatformError as exc:
            return errcode_response(exc.errcode, exc.errmsg)
        if security.keywords and not any(k in message_text(message) for k in security.keywords):
            return errcode_response(310000, "keywords not in content")
        allowance = self.setting("dingtalk_webhook_allowance")
        uuid = message.get("msgUuid")
        with self._lock:
            if isinstance(uuid, str) and uuid and uuid in self._uuids.get(token, set()):
                # The send page's idempotency key: the same msgUuid again is answered as sent
                # and posts nothing [gk].
                self.context.ledger.duplicate(self.route, token, message, now, idempotency_key=uuid)
                return ok_response()
            if allowance and self._sent.get(token, 0) >= allowance:
                return errcode_response(90030, "webhook over limit")
            if self._throttled_until.get(token, 0.0) > now:
                return errcode_response(130101, "send too fast")
            if self._window.full(token, now):
                # Going over the limit throttles the robot for 10 minutes (docs/platforms.md §7).
                self._throttled_until[token] = now + DINGTALK_THROTTLE_SECONDS
                return errcode_response(130101, "send too fast")
            self._window.add(token, now)
            self._sent[token] = self._sent.get(token, 0) + 1
            if isinstance(uuid, str) and uuid:
                self._uuids.setdefault(token, set()).add(uuid)
            self.context.ledger.accept(
                self.route, token, message, now, idempotency_key=uuid or None
            )
        return ok_response()


def _peer_allowed(
    peer: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)


def message_text(message: dict[str, Any]) -> str:
    """Every text a reader sees in the message (titles included), for the keyword check."""
    section = message.get(str(message.get("msgtype")), {})
    parts: list[str] = []
    if isinstance(section, dict):
        parts += [v for v in section.values() if isinstance(v, str)]
        for item in section.get("links", []) or section.get("btns", []) or []:
            if isinstance(item, dict):
                parts += [v for v in item.values() if isinstance(v, str)]
    return "\n".join(parts)


def dingtalk_sign(secret: str, timestamp_ms: int | str) -> str:
    """base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), before URL-encoding."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_signature(secret: str, timestamp: str | None, sign: str | None, now: float) -> str | None:
    """None when the signature is good, else the errmsg of the 310000 answer."""
    if not timestamp or not sign or not (timestamp.isascii() and timestamp.isdigit()):
        return "sign not match"
    if abs(int(timestamp) - now * 1000) > DINGTALK_TIMESTAMP_TOLERANCE_MS:
        # Client projects report this wording for a clock more than an hour off.
        return "invalid timestamp"
    if not hmac.compare_digest(sign.encode(), dingtalk_sign(secret, timestamp).encode()):
        return "sign not match"
    return None


def validate_dingtalk(message: dict[str, Any]) -> None:
    msgtype = message.get("msgtype")
    if msgtype == "text":
        _text(message, "text", "content", 40035)
    elif msgtype == "markdown":
        _text(message, "markdown", "title", 40035)
        _text(message, "markdown", "text", 40035)
    elif msgtype == "link":
        for field in ("title", "text", "messageUrl"):
            _text(message, "link", field, 40035)
    elif msgtype == "actionCard":
        _text(message, "actionCard", "title", 40035)
        _text(message, "actionCard", "text", 40035)
    elif msgtype == "feedCard":
        feed = message.get("feedCard")
        links = feed.get("links") if isinstance(feed, dict) else None
        if not isinstance(links, list) or not links:
            raise PlatformError(40035, "missing parameter: feedCard.links")
    else:
        raise PlatformError(40035, "invalid parameter: msgtype")
    at = message.get("at")
    if at is not None:
        if not isinstance(at, dict):
            raise PlatformError(40035, "invalid parameter: at")
        _string_list(at, "atMobiles", 40035)
        _string_list(at, "atUserIds", 40035)
