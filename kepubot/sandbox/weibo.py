"""Emulated Sina Weibo open API (docs/platforms.md §2 and §11.1).

Endpoints (all under the real paths of ``https://api.weibo.com``):

- ``POST /oauth2/access_token``: authorization code → ``{access_token, remind_in, expires_in,
  uid}``, ``expires_in`` a *string* (a token the developer's own account grants: 5 years).
- ``POST /oauth2/get_token_info``: ``{uid, appkey, scope, create_at, expire_in}``.
- ``POST /2/statuses/share.json``: form post, or ``multipart/form-data`` with the picture in
  the field ``pic``; creates a status and answers the status object.
- ``POST /2/statuses/destroy.json`` ``id=``: deletes one's own status (20101 unknown, 20102 not
  one's own [gk]); the ledger records the deletion.
- ``GET /2/statuses/show.json?id=``, ``GET /2/statuses/count.json?ids=`` (at most 100 ids;
  unknown ids are dropped) and ``GET /2/statuses/user_timeline.json`` (the token owner's
  statuses, newest first, ``count``/``page``/``since_id``/``max_id``).

The token goes in the ``access_token`` query or form parameter, or as
``Authorization: OAuth2 <token>``. Tokens are registered with ``POST /_sandbox/secrets``
``{"weibo_tokens": [...]}`` (or granted by ``oauth2/access_token``); any other token is refused
(21332), registered or not. ``POST /_sandbox/expire {"route": "weibo"}`` expires them (21327)
until they are registered again.

Errors are HTTP 400 (403 for tokens and rate limits) with ``{"error", "error_code",
"request"}``, ``error_code`` a string as in the docs; token errors are OAuth-shaped
(``{"error": "expired_token", "error_code": 21327, "error_description", "request"}``, the code
a number). Checks on ``share.json``, in order: token; ``status`` present (20008), URL-decoded
once in a multipart post (the doc asks for it URL-encoded; a plain form post is decoded by the
form layer); ``rip`` present (10016) and the operator's real IP (10017: not an IP, or loopback,
private, link-local or another address that is not publicly routable, unless it is in
``weibo_rip_allow``, by default the documentation range 203.0.113.0/24 the demo and tests use);
at most 140 units, CJK 1 and ASCII ½ (20012); no ``#topic#`` (10017); a link on one of
``weibo_safe_domains`` (10017; by default ``kepu.example.org``, never empty); ``pic`` present
in a multipart post
(20007), JPEG/GIF/PNG (20005), under 5 MB (20006); 30 posts an hour per user (20016, or the
code set in ``weibo_rate_limit_code``); the same text as the user's last post within
``weibo_duplicate_window_seconds`` (20019, recorded in the ledger's ``duplicates``).

Counts grow with the sandbox clock: per hour since posting, 12 likes, 3 comments and 2
reposts, times 1, 2 or 3 depending on the status.

Guessed where the notes are silent or unsure: 10017 for a missing safe-domain link and for a
``#topic#``; subdomains of a safe domain count; links are not shortened to t.cn before
counting; HTTP 403 for token and rate-limit errors, 503 (10009) for ``busy``; only accepted
posts count towards the hourly limit; the duplicate window (24 h); 20101 for an unknown id in
``show.json``; 10020/10021 for an unknown path or a wrong method; 10017 for a ``rip`` that is
not a real public IP; multipart fields other than ``status`` are taken as sent;
``get_token_info`` answers the later ``expire_in`` spelling.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote_plus, urlsplit

from kepubot.sandbox.base import (
    Endpoint,
    Request,
    Response,
    Setting,
    json_response,
    non_negative_int,
    non_negative_number,
    one_of,
    string_list,
)
from kepubot.sandbox.forms import Form, FormError, image_type, read_form
from kepubot.sandbox.robots import SlidingWindow

MAX_UNITS = 140
MAX_PIC_BYTES = 5 * 1024 * 1024
MAX_COUNT_IDS = 100
FIVE_YEARS = 157_679_999  # seconds, as the developer's own token lasts (docs/platforms.md §2.1)
POSTS_PER_HOUR = 30
BEIJING = 8 * 3600
FIRST_STATUS_ID = 4_900_000_000_000_001
FIRST_UID = 5_000_000_001
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# A link ends at whitespace, a quote or bracket, or the first non-ASCII character (Chinese
# text usually follows a link without a space).
# (Not re.IGNORECASE for the class: case folding would make "k" and "s" non-ASCII too.)
_URL = re.compile(r"(?i:https?)://[^\s<>\"'\x80-\U0010ffff]+")
# The app's bound safe domain in the sandbox: the domain the demo, the example config and the
# tests link to.
DEFAULT_SAFE_DOMAINS = ("kepu.example.org",)
# rip stand-ins for a public address: TEST-NET-3 (RFC 5737), which the demo and the tests use.
DEFAULT_RIP_ALLOW = ("203.0.113.0/24",)
# Never an operator's real public IP, whatever weibo_rip_allow says.
_NEVER_RIP = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
_TOPIC = re.compile(r"#[^#]+#")


def _domain_list(value: Any) -> list[str]:
    domains = [d.strip().lower().strip(".") for d in string_list(value)]
    if not domains or not all(domains):
        raise ValueError("expected a non-empty list of domain names (the app's safe domains)")
    return domains


def _network_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of IP addresses or networks, got {value!r}")
    networks = []
    for item in value:
        try:
            network = ipaddress.ip_network(item, strict=False) if isinstance(item, str) else None
        except ValueError:
            network = None
        if network is None:
            raise ValueError(f"expected IP addresses or networks, got {item!r}")
        networks.append(str(network))
    return networks


class WeiboError(Exception):
    def __init__(self, code: int, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.code = code
        self.error = error
        self.status = status


class TokenError(Exception):
    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.error = error
        self.description = description


def weibo_units(text: str) -> float:
    """Weibo's length: a CJK (any non-ASCII) character is 1, an ASCII character ½."""
    ascii_count = sum(1 for ch in text if ord(ch) < 128)
    return (len(text) - ascii_count) + ascii_count / 2


def weibo_time(epoch: float) -> str:
    """``Wed Oct 24 23:49:17 +0800 2012``, Beijing time, whatever the locale."""
    t = time.gmtime(epoch + BEIJING)
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0800 {t.tm_year}"
    )


@dataclass
class _Token:
    uid: int
    appkey: str
    created_at: float
    expires_at: float
    expired: bool = False


@dataclass
class _Status:
    id: int
    uid: int
    text: str
    created_at: float
    pic: dict[str, Any] | None

    def counts(self, now: float) -> dict[str, int]:
        hours = max(0.0, now - self.created_at) / 3600
        factor = 1 + self.id % 3
        return {
            "attitudes": int(hours * 12 * factor),
            "comments": int(hours * 3 * factor),
            "reposts": int(hours * 2 * factor),
        }


class WeiboAPI(Endpoint):
    route = "weibo"
    prefix = "/2/"
    prefixes = ("/oauth2/",)
    secret_params = frozenset({"access_token", "client_secret", "code"})
    secrets_key = "weibo_tokens"
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "weibo_posts_per_hour": Setting(
            POSTS_PER_HOUR, non_negative_int, "posts per hour per user; 0: no limit"
        ),
        "weibo_rate_limit_code": Setting(
            20016, one_of(10023, 10024, 20016), "the error code of the posting limit"
        ),
        "timeline_delay_seconds": Setting(
            0.0, non_negative_number, "a new status shows in user_timeline after this delay"
        ),
        "weibo_safe_domains": Setting(
            list(DEFAULT_SAFE_DOMAINS),
            _domain_list,
            "the app's bound safe domains (安全域名); a status must link to one (or a subdomain)",
        ),
        "weibo_rip_allow": Setting(
            list(DEFAULT_RIP_ALLOW),
            _network_list,
            "addresses or networks accepted as rip although not publicly routable (the"
            " documentation range the demo and tests use); loopback and private ones never",
        ),
        "weibo_duplicate_window_seconds": Setting(
            86400.0, non_negative_number, "same text as the last post within this: 20019"
        ),
        "weibo_slow_success": Setting(
            0, non_negative_int, "the next N accepted posts answer 20032 (posted, but slow)"
        ),
    }

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._codes_used: set[str] = set()
        self._statuses: dict[int, _Status] = {}
        self._by_user: dict[int, list[_Status]] = {}
        self._next_id = FIRST_STATUS_ID
        self._next_uid = FIRST_UID
        self._window = SlidingWindow(POSTS_PER_HOUR, 3600.0)
        self._stats = {"tokens_granted": 0, "token_info_calls": 0}

    # -- control -------------------------------------------------------------------------

    def set_secrets(self, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
            raise ValueError('"weibo_tokens" must be a list of access tokens')
        now = self.context.now()
        with self._lock:
            for token in value:
                known = self._tokens.get(token)
                uid = known.uid if known else self._new_uid()
                # Registering a token again is a fresh authorization: it is valid again.
                self._tokens[token] = _Token(uid, "sandbox-app", now, now + FIVE_YEARS)

    def expire(self, payload: dict[str, Any]) -> None:
        token = payload.get("token")
        if token is not None and not isinstance(token, str):
            raise ValueError("token must be a string")
        with self._lock:
            for value, state in self._tokens.items():
                if token is None or value == token:
                    state.expired = True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self._stats, "statuses": len(self._statuses)}

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._codes_used.clear()
            self._statuses.clear()
            self._by_user.clear()
            self._next_id = FIRST_STATUS_ID
            self._next_uid = FIRST_UID
            self._window.clear()
            self._stats = {"tokens_granted": 0, "token_info_calls": 0}

    def busy_response(self, request: Request | None = None) -> Response:
        return _error(request, 10009, "Too many pending tasks, system is busy!", 503)

    def error_response(self, code: int, request: Request | None = None) -> Response:
        status = 403 if code in _RATE_MESSAGES or code in _TOKEN_CODES else 400
        return _error(request, code, "sandbox scripted error", status)

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        routes = {
            "/oauth2/access_token": ("POST", self._access_token),
            "/oauth2/get_token_info": ("POST", self._token_info),
            "/2/statuses/share.json": ("POST", self._share),
            "/2/statuses/show.json": ("GET", self._show),
            "/2/statuses/destroy.json": ("POST", self._destroy),
            "/2/statuses/count.json": ("GET", self._count),
            "/2/statuses/user_timeline.json": ("GET", self._timeline),
            "/2/users/show.json": ("GET", self._user_show),
        }
        entry = routes.get(path)
        if entry is None:
            return _error(request, 10020, "Request api not found!", 404)
        method, handler = entry
        if request.method != method:
            return _error(request, 10021, "HTTP method is not suported for this request!")
        try:
            form = read_form(request)
        except FormError as exc:
            return _error(request, 10008, f"Param error, see doc for more info. ({exc})")
        try:
            return handler(request, form)
        except WeiboError as exc:
            return _error(request, exc.code, exc.error, exc.status)
        except TokenError as exc:
            return _token_error(request, exc)

    # -- OAuth ---------------------------------------------------------------------------

    def _access_token(self, request: Request, form: Form) -> Response:
        if form.get("grant_type") != "authorization_code":
            raise TokenError(21328, "unsupported_grant_type", "unsupported grant_type")
        for name in ("client_id", "client_secret", "code", "redirect_uri"):
            if not form.get(name):
                raise TokenError(21323, "invalid_request", f"miss required parameter ({name})")
        code = form.get("code") or ""
        client_id = form.get("client_id") or ""
        now = self.context.now()
        with self._lock:
            if code in self._codes_used:
                raise TokenError(21325, "invalid_grant", "invalid authorization code")
            self._codes_used.add(code)
            token = "2.00" + secrets.token_hex(14)
            state = _Token(self._new_uid(), client_id, now, now + FIVE_YEARS)
            self._tokens[token] = state
            self._stats["tokens_granted"] += 1
        return json_response(
            200,
            {
                "access_token": token,
                "remind_in": str(FIVE_YEARS),
                "expires_in": str(FIVE_YEARS),
                "uid": str(state.uid),
            },
        )

    def _token_info(self, request: Request, form: Form) -> Response:
        _, state = self._authorize(request, form)
        now = self.context.now()
        with self._lock:
            self._stats["token_info_calls"] += 1
        return json_response(
            200,
            {
                "uid": state.uid,
                "appkey": state.appkey,
                "scope": None,
                "create_at": int(state.created_at),
                "expire_in": max(0, int(state.expires_at - now)),
            },
        )

    def _authorize(self, request: Request, form: Form) -> tuple[str, _Token]:
        token = form.get("access_token")
        header = request.headers.get("Authorization") or ""
        if not token and header.startswith("OAuth2 "):
            token = header[len("OAuth2 ") :].strip()
        if not token:
            raise TokenError(21301, "auth faild!", "access_token is missing")
        now = self.context.now()
        with self._lock:
            # Only tokens registered through /_sandbox/secrets or granted by
            # oauth2/access_token are known; any other is refused, as on the platform.
            state = self._tokens.get(token)
            if state is None:
                raise TokenError(21332, "invalid_access_token", "access_token is invalid")
            if state.expired or state.expires_at <= now:
                raise TokenError(21327, "expired_token", "the access_token has expired")
            return token, state

    def _new_uid(self) -> int:
        uid = self._next_uid
        self._next_uid += 1
        return uid

    # -- statuses ------------------------------------------------------------------------

    def _share(self, request: Request, form: Form) -> Response:
        _, token = self._authorize(request, form)
        text = form.get("status")
        if text is not None and form.multipart:
            # The doc asks for status URL-encoded (必须做URLencode). A plain form post is
            # decoded by the form layer; a multipart part is not, so it is decoded here, once,
            # the way a form value is ("+" is a space, "%2B" a plus).
            text = unquote_plus(text)
        if text is None or not text.strip():
            raise WeiboError(20008, "Content is null!")
        rip = form.get("rip")
        if not rip:
            raise WeiboError(10016, "Miss required parameter (rip), see doc for more info.")
        if not self._real_ip(rip):
            raise WeiboError(10017, f"Parameter (rip)'s value invalid, but get ({rip})")
        if weibo_units(text) > MAX_UNITS:
            raise WeiboError(20012, "Text too long, please input text less than 140 characters!")
        if _TOPIC.search(text):
            raise WeiboError(10017, "Parameter (status)'s value invalid: no #topic# allowed")
        if not self._has_safe_link(text):
            raise WeiboError(
                10017, "Parameter (status)'s value invalid: needs a link on the safe domain"
            )
        pic = self._picture(form)
        now = self.context.now()
        body = {"status": text, "rip": rip, "pic": pic}
        ledger = self.context.ledger
        with self._lock:
            limit = self.setting("weibo_posts_per_hour")
            self._window.limit = limit
            if limit and self._window.full(str(token.uid), now):
                code = self.setting("weibo_rate_limit_code")
                raise WeiboError(code, _RATE_MESSAGES[code], 403)
            mine = self._by_user.get(token.uid, [])
            last = mine[-1] if mine else None
            window = self.setting("weibo_duplicate_window_seconds")
            if last is not None and last.text == text and now - last.created_at < window:
                ledger.duplicate(
                    self.route, str(token.uid), body, now, kind="status", id=str(last.id)
                )
                raise WeiboError(20019, "Repeat content!")
            status = _Status(self._next_id, token.uid, text, now, pic)
            self._next_id += 1
            self._statuses[status.id] = status
            self._by_user.setdefault(token.uid, []).append(status)
            self._window.add(str(token.uid), now)
            ledger.accept(self.route, str(token.uid), body, now, kind="status", id=str(status.id))
            slow = self.setting("weibo_slow_success")
            if slow:
                self.apply_settings({"weibo_slow_success": slow - 1})
                raise WeiboError(
                    20032, "Update success, while server slow now, please wait 1-2 minutes"
                )
            payload = self._status_json(status, now)
        return json_response(200, payload)

    def _real_ip(self, rip: str) -> bool:
        """The doc asks for the operating user's real, valid IP (请传操作用户的真实有效IP):
        a publicly routable address. Loopback and private ones are refused (10017 [gk]: the
        doc names no code for it; 10017 is its "invalid parameter value")."""
        try:
            address = ipaddress.ip_address(rip.strip())
        except ValueError:
            return False
        if any(address.version == n.version and address in n for n in _NEVER_RIP):
            return False
        if address.is_global:
            return True
        allowed = [ipaddress.ip_network(n) for n in self.setting("weibo_rip_allow")]
        return any(address.version == n.version and address in n for n in allowed)

    def _has_safe_link(self, text: str) -> bool:
        domains = [d.lower().lstrip(".") for d in self.setting("weibo_safe_domains")]
        for match in _URL.finditer(text):
            host = (urlsplit(match.group(0)).hostname or "").lower()
            if not host:
                continue
            if any(host == d or host.endswith("." + d) for d in domains):
                return True
        return False

    def _picture(self, form: Form) -> dict[str, Any] | None:
        if not form.multipart:
            return None
        part = form.file("pic")
        if part is None or not part.data:
            raise WeiboError(20007, "Does multipart has image?")
        kind = image_type(part.data)
        if kind not in ("jpeg", "gif", "png"):
            raise WeiboError(20005, "Unsupported image type, only suport JPG, GIF, PNG!")
        if len(part.data) >= MAX_PIC_BYTES:
            raise WeiboError(20006, "Image size too large.")
        digest = hashlib.md5(part.data).hexdigest()
        return {"type": kind, "size": len(part.data), "md5": digest, "filename": part.filename}

    def _user_show(self, request: Request, form: Form) -> Response:
        """``users/show.json?uid=``: the user object; ``followers_count`` grows 30 an hour from
        when the token was granted (deterministic, for account-level metrics)."""
        _, state = self._authorize(request, form)
        uid = _id_param(form, "uid")
        if uid != state.uid:
            raise WeiboError(20003, "User does not exists!")
        hours = max(0.0, self.context.now() - state.created_at) / 3600
        return json_response(
            200,
            {
                "id": state.uid,
                "idstr": str(state.uid),
                "screen_name": f"sandbox_{state.uid}",
                "followers_count": 1000 + int(hours * 30),
            },
        )

    def _show(self, request: Request, form: Form) -> Response:
        self._authorize(request, form)
        status_id = _id_param(form, "id")
        now = self.context.now()
        with self._lock:
            status = self._statuses.get(status_id)
            if status is None:
                raise WeiboError(20101, "Target weibo does not exist!")
            return json_response(200, self._status_json(status, now))

    def _destroy(self, request: Request, form: Form) -> Response:
        """``POST 2/statuses/destroy.json id=…``: deletes one's own status and answers it (the
        doc: 只能删除自己发布的微博). Unknown or already deleted: 20101; another user's: 20102
        ("Not your own weibo!") [gk]. The ledger records each deletion."""
        _, token = self._authorize(request, form)
        status_id = _id_param(form, "id")
        now = self.context.now()
        with self._lock:
            status = self._statuses.get(status_id)
            if status is None:
                raise WeiboError(20101, "Target weibo does not exist!")
            if status.uid != token.uid:
                raise WeiboError(20102, "Not your own weibo!")
            payload = self._status_json(status, now)
            del self._statuses[status_id]
            mine = self._by_user.get(status.uid, [])
            self._by_user[status.uid] = [s for s in mine if s.id != status_id]
            self.context.ledger.delete(
                self.route, str(token.uid), now, kind="status", id=str(status_id)
            )
        return json_response(200, payload)

    def _count(self, request: Request, form: Form) -> Response:
        self._authorize(request, form)
        raw = form.get("ids")
        if not raw:
            raise WeiboError(10016, "Miss required parameter (ids), see doc for more info.")
        pieces = [p.strip() for p in raw.split(",") if p.strip()]
        if len(pieces) > MAX_COUNT_IDS:
            raise WeiboError(10017, "Parameter (ids)'s value invalid: at most 100 ids")
        if not all(p.isascii() and p.isdigit() for p in pieces):
            raise WeiboError(10017, f"Parameter (ids)'s value invalid, but get ({raw})")
        now = self.context.now()
        result = []
        with self._lock:
            for piece in pieces:
                status = self._statuses.get(int(piece))
                if status is not None:
                    result.append({"id": status.id, **status.counts(now)})
        return json_response(200, result)

    def _timeline(self, request: Request, form: Form) -> Response:
        _, token = self._authorize(request, form)
        count = min(_int_param(form, "count", 20, minimum=1), 100)
        page = _int_param(form, "page", 1, minimum=1)
        since_id = _int_param(form, "since_id", 0, minimum=0)
        max_id = _int_param(form, "max_id", 0, minimum=0)
        now = self.context.now()
        delay = self.setting("timeline_delay_seconds")
        with self._lock:
            visible = [
                s
                for s in reversed(self._by_user.get(token.uid, []))
                if now - s.created_at >= delay
                and s.id > since_id
                and (not max_id or s.id <= max_id)
            ]
            chosen = visible[(page - 1) * count : page * count]
            statuses = [self._status_json(s, now) for s in chosen]
            more = len(visible) > page * count
        return json_response(
            200,
            {
                "statuses": statuses,
                "advertises": [],
                "ad": [],
                "hasvisible": False,
                "previous_cursor": 0,
                "next_cursor": visible[page * count].id if more else 0,
                "total_number": len(visible),
                "interval": 0,
            },
        )

    def _status_json(self, status: _Status, now: float) -> dict[str, Any]:
        counts = status.counts(now)
        mine = self._by_user.get(status.uid, [])
        payload: dict[str, Any] = {
            "created_at": weibo_time(status.created_at),
            "id": status.id,
            "idstr": str(status.id),
            "mid": str(status.id),
            "text": status.text,
            "source": '<a href="https://open.weibo.com" rel="nofollow">kepubot sandbox</a>',
            "favorited": False,
            "truncated": False,
            "in_reply_to_status_id": "",
            "in_reply_to_user_id": "",
            "in_reply_to_screen_name": "",
            "pic_urls": [],
            "geo": None,
            "user": {
                "id": status.uid,
                "idstr": str(status.uid),
                "screen_name": f"kepu_{status.uid}",
                "name": f"kepu_{status.uid}",
                "statuses_count": len(mine),
                "followers_count": 1000,
            },
            "reposts_count": counts["reposts"],
            "comments_count": counts["comments"],
            "attitudes_count": counts["attitudes"],
            "mlevel": 0,
            "visible": {"type": 0, "list_id": 0},
        }
        if status.pic is not None:
            # Weibo serves stills as .jpg (PNGs are converted) and keeps GIFs.
            name = f"{status.pic['md5']}.{'gif' if status.pic['type'] == 'gif' else 'jpg'}"
            thumbnail = f"http://wx1.sinaimg.cn/thumbnail/{name}"
            payload.update(
                thumbnail_pic=thumbnail,
                bmiddle_pic=f"http://wx1.sinaimg.cn/bmiddle/{name}",
                original_pic=f"http://wx1.sinaimg.cn/large/{name}",
                pic_urls=[{"thumbnail_pic": thumbnail}],
            )
        return payload


_TOKEN_CODES = frozenset({21301, 21327, 21332})
_RATE_MESSAGES = {
    10023: "User requests out of rate limit!",
    10024: "User requests for (statuses/share) out of rate limit!",
    20016: "Out of limit!",
}


def _request_path(request: Request | None) -> str:
    if request is None:
        return ""
    path = request.path
    return path[len("/2") :] if path.startswith("/2/") else path


def _error(request: Request | None, code: int, error: str, status: int = 400) -> Response:
    payload = {"error": error, "error_code": str(code), "request": _request_path(request)}
    return json_response(status, payload)


def _token_error(request: Request, exc: TokenError) -> Response:
    payload = {
        "error": exc.error,
        "error_code": exc.code,
        "error_description": exc.description,
        "request": _request_path(request),
    }
    # A refused token is 403; a malformed authorization-code exchange is 400.
    return json_response(403 if exc.code in _TOKEN_CODES else 400, payload)


def _id_param(form: Form, name: str) -> int:
    raw = form.get(name)
    if not raw:
        raise WeiboError(10016, f"Miss required parameter ({name}), see doc for more info.")
    if not (raw.isascii() and raw.isdigit()):
        raise WeiboError(10017, f"Parameter ({name})'s value invalid, but get ({raw})")
    return int(raw)


def _int_param(form: Form, name: str, default: int, minimum: int) -> int:
    raw = form.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise WeiboError(10017, f"Parameter ({name})'s value invalid, but get ({raw})")
    return int(raw)
