"""Emulated group-chat robots: WeCom (platforms.md §4.3) and DingTalk (§4.4, §6).

Both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success and a non-zero errcode
otherwise, as the real ones do. The codes our notes give are used as documented (WeCom 45009
and 93000; DingTalk 310000 and 130101, all **[gk]** there). DingTalk's 300001 for an unknown
token and the message-validation codes (WeCom 40008, 44004, 40058, 40035, 40009; DingTalk
40035) come from what client projects report seeing, not from the platform docs: a client
should treat any errcode it does not know as a permanent problem with the message.

Only accepted messages count towards the 20-per-minute limits, and only they reach the ledger.
Load tests may raise a limit with ``POST /_sandbox/limits`` (the real limits are the default and
come back on reset).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections import deque
from typing import Any

from kepubot.sandbox.base import Endpoint, Request, Response, json_response

MESSAGES_PER_MINUTE = 20
WINDOW_SECONDS = 60.0
DINGTALK_THROTTLE_SECONDS = 600.0
DINGTALK_TIMESTAMP_TOLERANCE_MS = 3600 * 1000

WECOM_TEXT_MAX_BYTES = 2048
WECOM_MARKDOWN_MAX_BYTES = 4096  # WeCom's doc page; not in our notes
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
            known = key in self._keys if self._keys else bool(key)
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
            raise PlatformError(40058, "content exceed max length 2048 bytes")
        _string_list(message["text"], "mentioned_list", 40035)
        _string_list(message["text"], "mentioned_mobile_list", 40035)
    elif msgtype == "markdown":
        content = _text(message, "markdown", "content", 44004)
        if len(content.encode("utf-8")) > WECOM_MARKDOWN_MAX_BYTES:
            raise PlatformError(40058, "content exceed max length 4096 bytes")
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


class DingtalkRobot(_Robot):
    """``POST /robot/send?access_token=<T>[&timestamp=<ms>&sign=<S>]``.

    Tokens and their signing secrets are registered through the control API; a token
    registered with an empty secret needs no signature. While no token is registered, any
    token is accepted unsigned.
    """

    route = "dingtalk"
    prefix = "/robot/"
    secret_params = frozenset({"access_token", "sign"})
    secrets_key = "dingtalk"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._tokens: dict[str, str] = {}
        self._throttled_until: dict[str, float] = {}

    def set_secrets(self, value: Any) -> None:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError('"dingtalk" must map access tokens to secrets ("" for unsigned)')
        with self._lock:
            self._tokens.update(value)

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._window.clear()
            self._window.limit = MESSAGES_PER_MINUTE
            self._throttled_until.clear()

    def handle(self, request: Request) -> Response:
        if request.path != "/robot/send":
            return json_response(404, {"error": "not found"})
        if request.method != "POST":
            return json_response(405, {"error": "method not allowed"}, {"Allow": "POST"})
        token = request.param("access_token") or ""
        with self._lock:
            if self._tokens and token not in self._tokens:
                return errcode_response(300001, "token is not exist")
            secret = self._tokens.get(token, "")
        if not token:
            return errcode_response(300001, "token is not exist")
        now = self.context.now()
        if secret:
            problem = check_signature(
                secret, request.param("timestamp"), request.param("sign"), now
            )
            if problem:
                return errcode_response(310000, problem)
        with self._lock:
            if self._throttled_until.get(token, 0.0) > now:
                return errcode_response(130101, "send too fast")
        try:
            message = _message(request, 40035)
            validate_dingtalk(message)
        except PlatformError as exc:
            return errcode_response(exc.errcode, exc.errmsg)
        with self._lock:
            if self._throttled_until.get(token, 0.0) > now:
                return errcode_response(130101, "send too fast")
            if self._window.full(token, now):
                # Going over the limit throttles the robot for 10 minutes (platforms.md §4.4).
                self._throttled_until[token] = now + DINGTALK_THROTTLE_SECONDS
                return errcode_response(130101, "send too fast")
            self._window.add(token, now)
            self.context.ledger.accept(self.route, token, message, now)
        return ok_response()


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
