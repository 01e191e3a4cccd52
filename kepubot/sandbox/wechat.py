"""Emulated WeChat Official Account API (docs/platforms.md §3 and §11).

Every answer is HTTP 200. Errors are ``{"errcode": n, "errmsg": "... rid: ..."}``; success is
``{"errcode": 0, "errmsg": "ok", ...}`` or a body without ``errcode`` (``{"media_id": ...}``).

Tokens. ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` issues a token
valid ``wechat_token_expires_in`` (7200) seconds and makes the previous one invalid (40001)
after ``wechat_token_overlap_seconds`` (0). ``POST /cgi-bin/stable_token`` (JSON ``{grant_type,
appid, secret, force_refresh}``) keeps its own token: it hands out the current one (with its
remaining ``expires_in``) and renews it in the last 5 minutes, when old and new both stay
valid; ``force_refresh`` issues a new one at once (at most once per 30 s, 45011, and 20 a day,
45009) and ends the old one. Apps are registered with ``POST /_sandbox/secrets {"wechat":
{appid: secret}}``; only they exist: any other appid gets 40013, a wrong secret 40125
(stable_token) or 40001 (cgi-bin/token). Every other call takes
``?access_token=``: missing 41001, unknown or replaced 40001, expired (or expired by
``POST /_sandbox/expire {"route": "wechat"}``) 42001.

Material. ``POST /cgi-bin/media/uploadimg`` (multipart ``media``, JPEG/PNG < 1 MB) answers
``{"url": "http://mmbiz.qpic.cn/..."}``: only these URLs survive in article HTML.
``POST /cgi-bin/material/add_material?type=image|thumb|voice|video`` (multipart ``media``; video
also the field ``description``) answers ``{"media_id", "url"}``: the permanent ids a cover
(``thumb_media_id``) must use. ``POST /cgi-bin/media/upload?type=`` gives temporary ids, which
a cover refuses (40007).

Drafts. ``POST /cgi-bin/draft/add {"articles": [...]}`` checks each article (title ≤ 32
characters 45003, author ≤ 16 45110, digest ≤ 128 45004, content < 20,000 characters and
< 1 MB 45002, content_source_url ≤ 1 KB 45005, at most 8 articles 45008, a permanent
``thumb_media_id`` 40007), strips ``<script>`` and every ``<img>`` whose ``src`` uploadimg did
not issue, and answers ``{"media_id"}``. ``draft/get``, ``draft/delete``, ``draft/batchget``
and ``GET draft/count`` work on the draft box (``GET material/get_materialcount`` counts
the permanent materials). A draft leaves the box when it is published
or mass-sent; sending it again gives 40007 and a ``duplicates`` entry in the ledger.

Publishing. ``freepublish/submit {"media_id"}`` answers ``{"publish_id", "msg_data_id"}``
(53501 beyond ``wechat_publishes_per_minute``). ``freepublish/get {"publish_id"}`` answers
``publish_status`` 1 for the first ``publish_polls_before_done`` polls (and until
``publish_seconds_before_done`` passed), then ``publish_final_status`` (0: ``article_id`` and
``article_detail.item[].article_url``; 2 or 4: ``fail_idx``; on failure the draft returns to
the box). A publish nobody polls (a client whose answer was lost has no publish_id to poll)
finishes ``publish_unpolled_seconds`` (60, longer than a client's usual 30 s timeout) after
submission; until then it is in no list. Unknown publish_id: 53502. ``freepublish/batchget``,
``getarticle`` (53600) and ``delete`` see the published articles only.
``wechat_draft_during_publish`` says what the draft does while its job runs: ``stays`` (the
default, the hardest case the docs allow: the draft is still in the box, ``draft/get`` and
``draft/batchget`` show it, and submitting it again is *accepted* as a second publish job, a
second ``accepted`` ledger entry with the same ``draft``) or ``leaves`` (it leaves the box at
submit; a second submit answers 40007 and a ``duplicates`` entry). Either way it leaves the box
when its job succeeds.

Mass send. ``message/mass/sendall`` (``mpnews`` with a draft ``media_id``, or ``text``)
answers ``{"msg_id", "msg_data_id"}``; a ``clientmsgid`` used before answers 45065 with the
first ``msg_id`` (and a ``duplicates`` ledger entry), one over 64 bytes 45067.
``message/mass/get {"msg_id"}`` answers ``SEND_SUCCESS``; unknown msg_id 40059. With
``wechat_mass_protection`` (「API群发保护」) a send to all followers waits for an administrator:
``SENDING`` until ``wechat_mass_admin`` decides, ``wechat_mass_confirm_seconds`` after the send
(``confirms``: ``SEND_SUCCESS``; ``refuses``: ``SEND_FAIL``; ``ignores``: ``SEND_FAIL`` after
30 minutes, as the docs say). The decision is taken on the first ``mass/get`` after that time,
with the settings then in force, so a test can change its mind before.

Analytics. ``/datacube/getarticletotaldetail`` (span 1 day), ``getusersummary`` and
``getusercumulate`` (span 7) take ``{begin_date, end_date}`` as YYYY-MM-DD, Beijing time: a
bad date 61500, a span too long 61500, ``end_date`` today or later (T+1) or before
``begin_date`` 61501. ``getarticletotaldetail`` lists every article published on the day,
freepublish (``publish_type`` 1) and mass send (0) alike, keyed ``msgid =
"<msg_data_id>_<index>"``, with ``detail_list`` of running totals per day up to yesterday for
at most 30 days (``read_user``, ``share_user``, ``zaikan_user``, ``like_user``,
``comment_count``, ``collection_user``, ``read_subscribe_user``, ``read_user_source``), growing
with the sandbox clock; days before 2025-11-01 have no data; ``is_delay`` follows
``wechat_datacube_is_delay``. The retired ``getarticlesummary`` and ``getarticletotal``
answer 47009 "this api is offline" unless ``wechat_legacy_datacube`` is ``served``: then they
cover mass-sent articles only (per hour since sending: 40 readers, 50 reads, 3 sharers,
1 favourite, ... times 1, 2 or 3; a summary row needs at least 3 reads + shares + favourites).

Refusals. With ``wechat_verified: false`` the apps are unverified subscription accounts:
every freepublish, mass-send and datacube interface answers 48001 (the draft box and material
still work). ``message/mass/sendall`` beyond ``wechat_mass_sends_per_day`` (1, a subscription
account's quota) in one Beijing day answers 45028. ``draft/add`` refuses an article whose body
has an ``<a href>`` to anything but ``mp.weixin.qq.com`` with 45166.

JSON bodies are read as WeChat reads them: ``\\uXXXX`` escapes stay literal text (send real
UTF-8, as wechatpy's ``ensure_ascii=False`` does); ``wechat_literal_unicode_escapes: false``
turns that off. A wrong method answers 43001 (GET needed) or 43002 (POST needed).

Guessed where the notes are silent or unsure: the overlap of a replaced cgi-bin/token token
(0 s here, "short" in the notes); that ``force_refresh`` ends the old stable token at once;
author 45110; 8 articles per draft; the 10-per-minute publish limit; 60 s for an unpolled
publish; that a draft leaves the box on submit (and returns on failure); 40007 for a draft
sent twice and for an unknown ``msg_id``; 61500/61501 as assigned in the notes; 41002, 41004,
41005, 40004, 40005, 40006, 40008, 40009, 40013, 43001, 43002 and 45011 (real WeChat codes,
not in the notes); uploadimg's JPEG/PNG under 1 MB and material sizes; that datacube counts
mass-sent articles only; ``clientmsgid`` is not derived from the content when omitted.
Also guessed: one day per getarticletotaldetail call (a developer reports a range error for
longer spans; its siblings document one day) and no data before 2025-11-01 for it (its
siblings' notes); 47009 for the retired article datacube (reported by a developer, not
documented); the 1-a-day mass-send quota of a subscription account; that only
``mp.weixin.qq.com`` links pass 45166; that the platform checks the quota after the request
itself (an invalid draft is 40007 even without quota); the statistics' growth rates.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

from kepubot.sandbox.base import (
    Endpoint,
    Request,
    Response,
    Setting,
    boolean,
    json_response,
    non_negative_int,
    non_negative_number,
    one_of,
    positive_int,
)
from kepubot.sandbox.forms import Form, FormError, Part, image_type, read_form
from kepubot.sandbox.robots import SlidingWindow

TOKEN_SECONDS = 7200
STABLE_RENEW_SECONDS = 300  # stable_token renews in the last 5 minutes; both stay valid
FORCE_REFRESH_SPACING = 30.0
FORCE_REFRESH_PER_DAY = 20
UNPOLLED_PUBLISH_SECONDS = 60.0  # the default of publish_unpolled_seconds
MASS_CONFIRM_WINDOW = 1800.0  # 「API群发保护」: unconfirmed after 30 minutes, the send fails [src]
MAX_TITLE = 32
MAX_AUTHOR = 16
MAX_DIGEST = 128
MAX_CONTENT_CHARS = 20_000
MAX_CONTENT_BYTES = 1024 * 1024
MAX_SOURCE_URL_BYTES = 1024
MAX_ARTICLES = 8
AUTO_DIGEST_CHARS = 54
MAX_CLIENTMSGID_BYTES = 64
UPLOADIMG_MAX_BYTES = 1024 * 1024
MATERIAL_LIMITS = {  # type -> (max bytes, accepted image kinds or None for any)
    "image": (10 * 1024 * 1024, ("jpeg", "png", "gif", "bmp")),
    "thumb": (64 * 1024, ("jpeg",)),
    "voice": (2 * 1024 * 1024, None),
    "video": (10 * 1024 * 1024, None),
}
DATACUBE_SPANS = {
    "getarticlesummary": 1,
    "getarticletotal": 1,
    "getarticletotaldetail": 1,
    "getusersummary": 7,
    "getusercumulate": 7,
}
#: Documented as no longer maintained; reported to answer 47009 "this api is offline" [?].
LEGACY_DATACUBE = frozenset({"getarticlesummary", "getarticletotal"})
FIRST_DAY = date(2014, 12, 1)
#: The publish-content statistics (getarticletotaldetail and its siblings) start here [src].
DETAIL_FIRST_DAY = date(2025, 11, 1)
DETAIL_DAYS = 30  # detail_list covers at most 30 days after publishing [src]
#: Interfaces closed to unverified accounts ("仅认证" notes; datacube is "open to verified
#: Official Accounts") [src]: an unverified account gets 48001 on each.
VERIFIED_ONLY = frozenset(
    {
        "/cgi-bin/freepublish/submit",
        "/cgi-bin/freepublish/get",
        "/cgi-bin/freepublish/batchget",
        "/cgi-bin/freepublish/getarticle",
        "/cgi-bin/freepublish/delete",
        "/cgi-bin/message/mass/sendall",
        "/cgi-bin/message/mass/get",
        "/cgi-bin/message/mass/delete",
        *(f"/datacube/{name}" for name in DATACUBE_SPANS),
    }
)
#: Hosts an article body's <a href> may point to; any other link is 45166 [gk].
LINK_HOSTS = frozenset({"mp.weixin.qq.com"})
BEIJING = timezone(timedelta(hours=8))
# getarticletotaldetail: per hour since publishing, before the article's factor of 1, 2 or 3.
DETAIL_RATES = {
    "read_user": 40,
    "share_user": 3,
    "zaikan_user": 1.5,
    "like_user": 2,
    "comment_count": 0.5,
    "collection_user": 1,
    "read_subscribe_user": 0.25,
}
# Per hour since sending, before the article's factor of 1, 2 or 3.
ARTICLE_RATES = {
    "int_page_read_user": 40,
    "int_page_read_count": 50,
    "ori_page_read_user": 2,
    "ori_page_read_count": 3,
    "share_user": 3,
    "share_count": 4,
    "add_to_fav_user": 1,
    "add_to_fav_count": 1.2,
}

_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?(?:</script\s*>|$)", re.IGNORECASE | re.DOTALL)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_ESCAPE = re.compile(r"\\\\|\\u")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class WechatError(Exception):
    def __init__(self, errcode: int, errmsg: str, **extra: Any) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.extra = extra


def wechat_error(errcode: int, errmsg: str, **extra: Any) -> Response:
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return json_response(200, {"errcode": errcode, "errmsg": f"{errmsg} rid: {rid}", **extra})


def ok(**payload: Any) -> Response:
    return json_response(200, {"errcode": 0, "errmsg": "ok", **payload})


def beijing_date(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, BEIJING).date()


def day_end(day: date) -> float:
    """The epoch second at which ``day`` ends in Beijing."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), BEIJING).timestamp()


@dataclass
class _Token:
    appid: str
    kind: str  # "token" (cgi-bin/token) or "stable"
    expires_at: float
    invalid_after: float | None = None  # replaced: refused from then on
    expired: bool = False


@dataclass
class _Draft:
    media_id: str
    articles: list[dict[str, Any]]
    created_at: float
    state: str = "box"  # box, publishing, published, sent, deleted


@dataclass
class _Publish:
    publish_id: str
    msg_data_id: str
    draft: _Draft
    submitted_at: float
    polls_needed: int
    seconds_needed: float
    final_status: int
    unpolled_seconds: float = UNPOLLED_PUBLISH_SECONDS
    polls: int = 0
    status: int = 1
    article_id: str | None = None


@dataclass
class _Article:
    article_id: str
    items: list[dict[str, Any]]
    published_at: float


@dataclass
class _Mass:
    msg_id: int
    msg_data_id: int
    clientmsgid: str | None
    sent_at: float
    titles: list[str]
    target_user: int
    protected: bool = False  # 「API群发保护」: waits for an administrator
    status: str = "SENDING"  # until decided (SEND_SUCCESS / SEND_FAIL)


@dataclass
class _Account:
    appid: str
    secret: str | None = None
    current_token: str | None = None
    current_stable: str | None = None
    force_refreshes: list[float] = field(default_factory=list)
    images: set[str] = field(default_factory=set)
    materials: dict[str, dict[str, Any]] = field(default_factory=dict)
    temporary: set[str] = field(default_factory=set)
    drafts: dict[str, _Draft] = field(default_factory=dict)
    publishes: dict[str, _Publish] = field(default_factory=dict)
    articles: dict[str, _Article] = field(default_factory=dict)
    mass: dict[int, _Mass] = field(default_factory=dict)
    clientmsgids: dict[str, int] = field(default_factory=dict)


Handler = Callable[[Request, _Account], Response]


class WechatOfficialAccount(Endpoint):
    route = "wechat"
    prefix = "/cgi-bin/"
    prefixes = ("/datacube/",)
    secret_params = frozenset({"access_token", "secret"})
    secrets_key = "wechat"
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "publish_polls_before_done": Setting(
            1, non_negative_int, "freepublish/get answers publishing this many times"
        ),
        "publish_seconds_before_done": Setting(
            0.0, non_negative_number, "...and until this many seconds after submit"
        ),
        "publish_final_status": Setting(
            0, one_of(0, 2, 3, 4), "how new publishes end: 0 success, 2/3/4 failures"
        ),
        "wechat_token_expires_in": Setting(TOKEN_SECONDS, positive_int, "token lifetime"),
        "wechat_token_overlap_seconds": Setting(
            0.0, non_negative_number, "a replaced cgi-bin/token token works this much longer"
        ),
        "publish_unpolled_seconds": Setting(
            UNPOLLED_PUBLISH_SECONDS,
            non_negative_number,
            "a publish job nobody polls finishes this long after submit (keep it longer than the"
            " client's timeout: a lost answer leaves the client nothing to poll)",
        ),
        "wechat_draft_during_publish": Setting(
            "stays",
            one_of("stays", "leaves"),
            "stays: the draft stays in the box while its job runs (a second submit starts a"
            " second job); leaves: it leaves the box at submit",
        ),
        "wechat_mass_protection": Setting(
            False,
            boolean,
            "「API群发保护」: a mass send to all waits for an administrator (mass/get SENDING)",
        ),
        "wechat_mass_admin": Setting(
            "confirms",
            one_of("confirms", "refuses", "ignores"),
            "what the administrator does with a protected mass send (ignores: fails after 30 min)",
        ),
        "wechat_mass_confirm_seconds": Setting(
            5.0, non_negative_number, "how long after the send the administrator decides"
        ),
        "wechat_publishes_per_minute": Setting(
            10, non_negative_int, "freepublish/submit per minute per app (53501); 0: no limit"
        ),
        "wechat_literal_unicode_escapes": Setting(
            True, boolean, "\\uXXXX escapes in JSON bodies stay literal text"
        ),
        "wechat_verified": Setting(
            True,
            boolean,
            "the apps are verified (认证); false: freepublish, mass send and datacube answer"
            " 48001, as for an unverified subscription account",
        ),
        "wechat_mass_sends_per_day": Setting(
            1,
            non_negative_int,
            "mass sends per app per Beijing day (45028 beyond); a subscription account has 1"
            " [gk]; 0: no limit",
        ),
        "wechat_legacy_datacube": Setting(
            "offline",
            one_of("offline", "served"),
            "getarticlesummary / getarticletotal: offline answers 47009 [?]; served answers",
        ),
        "wechat_datacube_is_delay": Setting(
            False, boolean, "getarticletotaldetail answers is_delay: true (figures not final)"
        ),
    }

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, _Token] = {}
        self._publish_window = SlidingWindow(10, 60.0)
        self._sequence = 0
        self._stats = _zero_stats()
        self._routes: dict[str, tuple[str, Handler]] = {
            "/cgi-bin/media/uploadimg": ("POST", self._uploadimg),
            "/cgi-bin/media/upload": ("POST", self._upload_temporary),
            "/cgi-bin/material/add_material": ("POST", self._add_material),
            "/cgi-bin/material/get_materialcount": ("GET", self._material_count),
            "/cgi-bin/draft/add": ("POST", self._draft_add),
            "/cgi-bin/draft/get": ("POST", self._draft_get),
            "/cgi-bin/draft/delete": ("POST", self._draft_delete),
            "/cgi-bin/draft/count": ("GET", self._draft_count),
            "/cgi-bin/draft/batchget": ("POST", self._draft_batchget),
            "/cgi-bin/freepublish/submit": ("POST", self._publish_submit),
            "/cgi-bin/freepublish/get": ("POST", self._publish_get),
            "/cgi-bin/freepublish/batchget": ("POST", self._publish_batchget),
            "/cgi-bin/freepublish/getarticle": ("POST", self._publish_getarticle),
            "/cgi-bin/freepublish/delete": ("POST", self._publish_delete),
            "/cgi-bin/message/mass/sendall": ("POST", self._mass_sendall),
            "/cgi-bin/message/mass/get": ("POST", self._mass_get),
            "/cgi-bin/message/mass/delete": ("POST", self._mass_delete),
            **{f"/datacube/{name}": ("POST", self._datacube) for name in DATACUBE_SPANS},
        }

    # -- control -------------------------------------------------------------------------

    def set_secrets(self, value: Any) -> None:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
        ):
            raise ValueError('"wechat" must map appids to app secrets')
        with self._lock:
            for appid, secret in value.items():
                self._account(appid).secret = secret

    def expire(self, payload: dict[str, Any]) -> None:
        appid = payload.get("appid")
        if appid is not None and not isinstance(appid, str):
            raise ValueError("appid must be a string")
        with self._lock:
            for token in self._tokens.values():
                if appid is None or token.appid == appid:
                    token.expired = True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._stats)

    def reset(self) -> None:
        with self._lock:
            self._accounts.clear()
            self._tokens.clear()
            self._publish_window.clear()
            self._sequence = 0
            self._stats = _zero_stats()

    def busy_response(self, request: Request | None = None) -> Response:
        return wechat_error(-1, "system error")

    def error_response(self, code: int, request: Request | None = None) -> Response:
        return wechat_error(code, "sandbox scripted error")

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/cgi-bin/token":
            return self._guard("GET", request, self._token)
        if path == "/cgi-bin/stable_token":
            return self._guard("POST", request, self._stable_token)
        entry = self._routes.get(path)
        if entry is None:
            return json_response(404, {"error": "not found"})
        method, handler = entry

        def authorized(request: Request) -> Response:
            account = self._authorize(request)
            if path in VERIFIED_ONLY and not self.setting("wechat_verified"):
                raise WechatError(48001, "api unauthorized")
            return handler(request, account)

        return self._guard(method, request, authorized)

    def _guard(
        self, method: str, request: Request, handler: Callable[[Request], Response]
    ) -> Response:
        if request.method != method:
            if method == "GET":
                return wechat_error(43001, "require GET method")
            return wechat_error(43002, "require POST method")
        try:
            return handler(request)
        except WechatError as exc:
            return wechat_error(exc.errcode, exc.errmsg, **exc.extra)

    def _account(self, appid: str) -> _Account:
        """The app's state (caller holds the lock)."""
        account = self._accounts.get(appid)
        if account is None:
            account = self._accounts[appid] = _Account(appid)
        return account

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise WechatError(47001, "data format error: body is not UTF-8") from None
        if self.setting("wechat_literal_unicode_escapes"):
            # WeChat keeps \uXXXX as the six characters it is; "\\" stays an escaped backslash.
            text = _ESCAPE.sub(lambda m: m.group(0) if m.group(0) == "\\\\" else "\\\\u", text)
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            raise WechatError(47001, "data format error") from None
        if not isinstance(body, dict):
            raise WechatError(47001, "data format error")
        return body

    # -- tokens --------------------------------------------------------------------------

    def _credentials(
        self, grant_type: Any, appid: Any, secret: Any, *, stable: bool = False
    ) -> _Account:
        """Check the app's credentials (caller holds the lock). Only apps registered through
        ``POST /_sandbox/secrets`` exist: any other appid is 40013, a wrong secret 40125
        (stable_token) or 40001 (cgi-bin/token, whose page says "AppSecret错误") [src]."""
        if grant_type != "client_credential":
            raise WechatError(40002, "invalid grant_type")
        if not isinstance(appid, str) or not appid:
            raise WechatError(41002, "appid missing")
        if not isinstance(secret, str) or not secret:
            raise WechatError(41004, "appsecret missing")
        known = self._accounts.get(appid)
        if known is None or known.secret is None:
            raise WechatError(40013, "invalid appid")
        if known.secret != secret:
            if stable:
                raise WechatError(40125, "invalid appsecret")
            raise WechatError(40001, "invalid credential, appsecret is wrong")
        return known

    def _issue(self, account: _Account, kind: str, now: float) -> tuple[str, int]:
        lifetime = self.setting("wechat_token_expires_in")
        token = secrets.token_urlsafe(118)[:157]
        self._tokens[token] = _Token(account.appid, kind, now + lifetime)
        return token, lifetime

    def _token(self, request: Request) -> Response:
        now = self.context.now()
        with self._lock:
            account = self._credentials(
                request.param("grant_type"), request.param("appid"), request.param("secret")
            )
            previous = self._tokens.get(account.current_token or "")
            if previous is not None and previous.invalid_after is None:
                previous.invalid_after = now + self.setting("wechat_token_overlap_seconds")
            token, lifetime = self._issue(account, "token", now)
            account.current_token = token
            self._stats["token_fetches"] += 1
        return json_response(200, {"access_token": token, "expires_in": lifetime})

    def _stable_token(self, request: Request) -> Response:
        body = self._body(request)
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            raise WechatError(47001, "data format error: force_refresh must be a boolean")
        now = self.context.now()
        with self._lock:
            account = self._credentials(
                body.get("grant_type"), body.get("appid"), body.get("secret"), stable=True
            )
            self._stats["stable_token_fetches"] += 1
            current_value = account.current_stable or ""
            current = self._tokens.get(current_value)
            if force:
                recent = [t for t in account.force_refreshes if t > now - 86400]
                if recent and now - recent[-1] < FORCE_REFRESH_SPACING:
                    raise WechatError(45011, "api minute-quota reach limit mustslower retry")
                if len(recent) >= FORCE_REFRESH_PER_DAY:
                    raise WechatError(45009, "reach max api daily quota limit")
                account.force_refreshes = [*recent, now]
                if current is not None:
                    current.invalid_after = now
            elif current is not None and _usable(current, now):
                remaining = int(current.expires_at - now)
                if remaining >= STABLE_RENEW_SECONDS:
                    return json_response(
                        200, {"access_token": current_value, "expires_in": remaining}
                    )
                # Renewed in the last 5 minutes: the old token keeps its own expiry.
            token, lifetime = self._issue(account, "stable", now)
            account.current_stable = token
            self._stats["stable_tokens_issued"] += 1
        return json_response(200, {"access_token": token, "expires_in": lifetime})

    def _authorize(self, request: Request) -> _Account:
        token = request.param("access_token")
        if not token:
            raise WechatError(41001, "access_token missing")
        now = self.context.now()
        with self._lock:
            state = self._tokens.get(token)
            if state is None or (state.invalid_after is not None and now >= state.invalid_after):
                raise WechatError(
                    40001, "invalid credential, access_token is invalid or not latest"
                )
            if state.expired or now >= state.expires_at:
                raise WechatError(42001, "access_token expired")
            return self._account(state.appid)

    # -- media ---------------------------------------------------------------------------

    def _media_part(self, request: Request) -> tuple[Form, Part]:
        try:
            form = read_form(request)
        except FormError as exc:
            raise WechatError(41005, f"media data missing: {exc}") from None
        part = form.file("media")
        if part is None or not part.data:
            raise WechatError(41005, "media data missing")
        return form, part

    def _uploadimg(self, request: Request, account: _Account) -> Response:
        _, part = self._media_part(request)
        kind = image_type(part.data)
        if kind not in ("jpeg", "png"):
            raise WechatError(40005, "invalid file type")
        if len(part.data) >= UPLOADIMG_MAX_BYTES:
            raise WechatError(40009, "invalid image size")
        folder = "jpg" if kind == "jpeg" else "png"
        url = f"http://mmbiz.qpic.cn/sz_mmbiz_{folder}/{secrets.token_urlsafe(30)}/0?wx_fmt={kind}"
        with self._lock:
            account.images.add(_url_key(url))
        return json_response(200, {"url": url})

    def _check_media(self, media_type: str | None, part: Part) -> None:
        if media_type not in MATERIAL_LIMITS:
            raise WechatError(40004, "invalid media type")
        max_bytes, kinds = MATERIAL_LIMITS[media_type]
        if kinds is not None and image_type(part.data) not in kinds:
            raise WechatError(40005, "invalid file type")
        if len(part.data) > max_bytes:
            raise WechatError(40009 if kinds else 40006, "invalid media size")

    def _add_material(self, request: Request, account: _Account) -> Response:
        media_type = request.param("type")
        form, part = self._media_part(request)
        self._check_media(media_type, part)
        if media_type == "video":
            try:
                description = json.loads(form.get("description") or "")
            except ValueError:
                description = None
            if not isinstance(description, dict) or not description.get("title"):
                raise WechatError(47001, "data format error: description needs a title")
        media_id = secrets.token_urlsafe(32)
        payload: dict[str, Any] = {"media_id": media_id}
        if media_type in ("image", "thumb"):
            kind = image_type(part.data) or "jpeg"
            payload["url"] = (
                f"http://mmbiz.qpic.cn/mmbiz_{'jpg' if kind == 'jpeg' else kind}/"
                f"{secrets.token_urlsafe(30)}/0?wx_fmt={kind}"
            )
        with self._lock:
            account.materials[media_id] = {"type": media_type, **payload}
        return json_response(200, payload)

    def _material_count(self, request: Request, account: _Account) -> Response:
        with self._lock:
            kinds = [m["type"] for m in account.materials.values()]
        return json_response(
            200,
            {
                "voice_count": kinds.count("voice"),
                "video_count": kinds.count("video"),
                "image_count": kinds.count("image") + kinds.count("thumb"),
                "news_count": 0,
            },
        )

    def _upload_temporary(self, request: Request, account: _Account) -> Response:
        media_type = request.param("type")
        _, part = self._media_part(request)
        self._check_media(media_type, part)
        media_id = secrets.token_urlsafe(48)
        now = self.context.now()
        with self._lock:
            account.temporary.add(media_id)
        return json_response(
            200, {"type": media_type, "media_id": media_id, "created_at": int(now)}
        )

    # -- drafts --------------------------------------------------------------------------

    def _draft_add(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        raw_articles = body.get("articles")
        if not isinstance(raw_articles, list) or not raw_articles:
            raise WechatError(44004, "empty content: articles")
        if len(raw_articles) > MAX_ARTICLES:
            raise WechatError(45008, "article size out of limit")
        now = self.context.now()
        with self._lock:
            single = len(raw_articles) == 1
            articles = [self._article(raw, single, account) for raw in raw_articles]
            media_id = secrets.token_urlsafe(32)
            account.drafts[media_id] = _Draft(media_id, articles, now)
            self.context.ledger.accept(
                self.route, account.appid, {"articles": articles}, now, kind="draft", id=media_id
            )
        return json_response(200, {"media_id": media_id})

    def _article(self, raw: Any, single: bool, account: _Account) -> dict[str, Any]:
        """One checked and cleaned article (caller holds the lock)."""
        if not isinstance(raw, dict):
            raise WechatError(47001, "data format error: an article must be an object")
        article_type = raw.get("article_type", "news") or "news"
        if article_type not in ("news", "newspic"):
            raise WechatError(47001, "data format error: invalid article_type")
        title = _text(raw, "title")
        if not title.strip():
            raise WechatError(44004, "empty content: title")
        if len(title) > MAX_TITLE:
            raise WechatError(45003, "title size out of limit")
        author = _text(raw, "author")
        if len(author) > MAX_AUTHOR:
            raise WechatError(45110, "author size out of limit")
        digest = _text(raw, "digest")
        if len(digest) > MAX_DIGEST:
            raise WechatError(45004, "description size out of limit")
        content = _text(raw, "content")
        if not content.strip():
            raise WechatError(44004, "empty content: content")
        if len(content) >= MAX_CONTENT_CHARS or len(content.encode()) >= MAX_CONTENT_BYTES:
            raise WechatError(45002, "content size out of limit")
        _check_links(content)
        source_url = _text(raw, "content_source_url")
        if len(source_url.encode()) > MAX_SOURCE_URL_BYTES:
            raise WechatError(45005, "url size out of limit")
        flags = {}
        for name in ("need_open_comment", "only_fans_can_comment"):
            value = raw.get(name, 0)
            if isinstance(value, bool) or value not in (0, 1):
                raise WechatError(47001, f"data format error: {name} must be 0 or 1")
            flags[name] = value
        thumb_media_id = _text(raw, "thumb_media_id")
        thumb_url = ""
        image_ids: list[str] = []
        if article_type == "news":
            material = account.materials.get(thumb_media_id)
            if material is None or material["type"] not in ("image", "thumb"):
                raise WechatError(40007, "invalid media_id: thumb_media_id must be permanent")
            thumb_url = material["url"]
        else:
            info = raw.get("image_info")
            images = info.get("image_list") if isinstance(info, dict) else None
            if not isinstance(images, list) or not 1 <= len(images) <= 20:
                raise WechatError(44004, "empty content: image_info.image_list takes 1-20")
            for item in images:
                image_id = item.get("image_media_id") if isinstance(item, dict) else None
                material = account.materials.get(image_id or "")
                if material is None or material["type"] != "image":
                    raise WechatError(40007, "invalid media_id: image_media_id")
                image_ids.append(image_id or "")
        content = _clean_content(content, account.images)
        if not single:
            digest = ""  # digest is for single-article posts only
        elif not digest:
            digest = html.unescape(_TAG.sub("", content)).strip()[:AUTO_DIGEST_CHARS]
        article: dict[str, Any] = {
            "article_type": article_type,
            "title": title,
            "author": author,
            "digest": digest,
            "content": content,
            "content_source_url": source_url,
            "thumb_media_id": thumb_media_id,
            "thumb_url": thumb_url,
            **flags,
        }
        if image_ids:
            article["image_info"] = {"image_list": [{"image_media_id": i} for i in image_ids]}
        return article

    def _draft(self, account: _Account, body: dict[str, Any]) -> _Draft:
        """The draft in the box named by ``media_id`` (caller holds the lock)."""
        draft = account.drafts.get(_string(body, "media_id"))
        if draft is None or draft.state != "box":
            raise WechatError(40007, "invalid media_id")
        return draft

    def _draft_get(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        with self._lock:
            draft = self._draft(account, body)
            items = [
                {**a, "url": _article_url(draft.media_id, i)}
                for i, a in enumerate(draft.articles, 1)
            ]
        return json_response(200, {"news_item": items})

    def _draft_delete(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        with self._lock:
            self._draft(account, body).state = "deleted"
        return ok()

    def _draft_count(self, request: Request, account: _Account) -> Response:
        with self._lock:
            total = sum(1 for d in account.drafts.values() if d.state == "box")
        return json_response(200, {"total_count": total})

    def _draft_batchget(self, request: Request, account: _Account) -> Response:
        offset, count, no_content = _page(self._body(request))
        with self._lock:
            drafts = [d for d in account.drafts.values() if d.state == "box"]
            drafts.sort(key=lambda d: d.created_at, reverse=True)
            items = [
                _batch_item("media_id", d.media_id, d.articles, d.created_at, no_content)
                for d in drafts[offset : offset + count]
            ]
        return _batch_answer(len(drafts), items)

    # -- freepublish ---------------------------------------------------------------------

    def _publish_submit(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        media_id = _string(body, "media_id")
        now = self.context.now()
        ledger = self.context.ledger
        with self._lock:
            draft = account.drafts.get(media_id)
            if draft is None or draft.state != "box":
                if draft is not None and draft.state != "deleted":
                    ledger.duplicate(
                        self.route, account.appid, body, now, kind="freepublish", id=media_id
                    )
                raise WechatError(40007, "invalid media_id")
            limit = self.setting("wechat_publishes_per_minute")
            self._publish_window.limit = limit
            if limit and self._publish_window.full(account.appid, now):
                raise WechatError(53501, "publish too frequently")
            self._publish_window.add(account.appid, now)
            n = self._next()
            publish = _Publish(
                publish_id=str(2_247_483_600 + n),
                msg_data_id=str(2_247_483_600 + n),
                draft=draft,
                submitted_at=now,
                polls_needed=self.setting("publish_polls_before_done"),
                seconds_needed=self.setting("publish_seconds_before_done"),
                final_status=self.setting("publish_final_status"),
                unpolled_seconds=self.setting("publish_unpolled_seconds"),
            )
            running = [p for p in account.publishes.values() if p.draft is draft and p.status == 1]
            if self.setting("wechat_draft_during_publish") == "leaves":
                draft.state = "publishing"
            account.publishes[publish.publish_id] = publish
            ledger.accept(
                self.route,
                account.appid,
                {"media_id": media_id, "articles": draft.articles},
                now,
                kind="freepublish",
                id=publish.publish_id,
                draft=media_id,
                final_status=publish.final_status,
                # a second job for a draft whose first job is still running: the platform
                # accepted the same article twice
                repeat_of=[p.publish_id for p in running],
            )
        return ok(publish_id=publish.publish_id, msg_data_id=publish.msg_data_id)

    def _advance(self, account: _Account, publish: _Publish, now: float, polled: bool) -> None:
        """Finish the publish if its time has come (caller holds the lock)."""
        if publish.status != 1:
            return
        age = now - publish.submitted_at
        done = (publish.polls >= publish.polls_needed and age >= publish.seconds_needed) or (
            age >= max(publish.seconds_needed, publish.unpolled_seconds)
        )
        if not done:
            if polled:
                publish.polls += 1
            return
        publish.status = publish.final_status
        if publish.final_status != 0:
            publish.draft.state = "box"  # a failed publish leaves the draft to fix and retry
            return
        publish.draft.state = "published"
        article_id = secrets.token_urlsafe(33)
        items = [
            {**a, "url": _article_url(article_id, i, mid=publish.msg_data_id), "is_deleted": False}
            for i, a in enumerate(publish.draft.articles, 1)
        ]
        publish.article_id = article_id
        published_at = min(now, publish.submitted_at + publish.seconds_needed)
        account.articles[article_id] = _Article(article_id, items, published_at)

    def _advance_all(self, account: _Account, now: float) -> None:
        for publish in account.publishes.values():
            self._advance(account, publish, now, polled=False)

    def _publish_get(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        now = self.context.now()
        with self._lock:
            publish = account.publishes.get(_string(body, "publish_id"))
            if publish is None:
                raise WechatError(53502, "invalid publish_id")
            self._advance(account, publish, now, polled=True)
            payload: dict[str, Any] = {
                "publish_id": publish.publish_id,
                "publish_status": publish.status,
            }
            count = len(publish.draft.articles)
            if publish.status == 0 and publish.article_id is not None:
                article = account.articles[publish.article_id]
                payload["article_id"] = publish.article_id
                payload["article_detail"] = {
                    "count": count,
                    "item": [
                        {"idx": i, "article_url": item["url"]}
                        for i, item in enumerate(article.items, 1)
                    ],
                }
            failed = publish.status in (2, 4)
            payload["fail_idx"] = list(range(1, count + 1)) if failed else []
        return json_response(200, payload)

    def _publish_batchget(self, request: Request, account: _Account) -> Response:
        offset, count, no_content = _page(self._body(request))
        now = self.context.now()
        with self._lock:
            self._advance_all(account, now)
            articles = sorted(account.articles.values(), key=lambda a: -a.published_at)
            items = [
                _batch_item("article_id", a.article_id, a.items, a.published_at, no_content)
                for a in articles[offset : offset + count]
            ]
        return _batch_answer(len(articles), items)

    def _published(self, account: _Account, body: dict[str, Any]) -> _Article:
        self._advance_all(account, self.context.now())
        article = account.articles.get(_string(body, "article_id"))
        if article is None:
            raise WechatError(53600, "invalid article_id")
        return article

    def _publish_getarticle(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        with self._lock:
            items = [dict(i) for i in self._published(account, body).items]
        return json_response(200, {"news_item": items})

    def _publish_delete(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        index = body.get("index", 0) or 0
        with self._lock:
            article = self._published(account, body)
            if isinstance(index, bool) or not isinstance(index, int):
                raise WechatError(47001, "data format error: index")
            if not 0 <= index <= len(article.items):
                raise WechatError(53600, "invalid article_id: no such index")
            for i, item in enumerate(article.items, 1):
                if index in (0, i) and not item.get("is_deleted"):
                    item["is_deleted"] = True
                    self.context.ledger.delete(
                        self.route,
                        account.appid,
                        self.context.now(),
                        kind="freepublish",
                        id=_string(body, "article_id"),
                        index=i,
                    )
        return ok()

    def _mass_delete(self, request: Request, account: _Account) -> Response:
        """``message/mass/delete {msg_id, article_idx}``: only a send that succeeded can be
        deleted (the docs: 只有已经发送成功的消息才能删除); article_idx 0 or absent deletes every
        article; afterwards ``mass/get`` answers ``DELETE``. Unknown msg_id: 40059. Deleting
        by ``url`` (without msg_id) is not emulated: 40059 as well [?]."""
        body = self._body(request)
        raw = body.get("msg_id")
        index = body.get("article_idx", 0) or 0
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise WechatError(47001, "data format error: article_idx")
        with self._lock:
            if isinstance(raw, int) and not isinstance(raw, bool):
                msg_id = raw
            elif isinstance(raw, str) and raw.isascii() and raw.isdigit():
                msg_id = int(raw)
            else:
                msg_id = -1
            mass = account.mass.get(msg_id)
            if mass is None:
                raise WechatError(40059, "invalid msg id")
            self._decide(mass, self.context.now())
            # a send already deleted is no longer one that succeeded: 40059 as well [?]
            if mass.status != "SEND_SUCCESS":
                raise WechatError(40059, "invalid msg id: only a successful send can be deleted")
            if index > max(1, len(mass.titles)):
                raise WechatError(47001, "data format error: article_idx")
            if index in (0,) or len(mass.titles) <= 1:
                mass.status = "DELETE"
            self.context.ledger.delete(
                self.route,
                account.appid,
                self.context.now(),
                kind="mass",
                id=str(mass.msg_id),
                index=index,
            )
        return ok()

    # -- mass send -----------------------------------------------------------------------

    def _mass_sendall(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        target = body.get("filter")
        if not isinstance(target, dict):
            raise WechatError(47001, "data format error: filter")
        to_all = target.get("is_to_all", False)
        if not isinstance(to_all, bool) or (not to_all and not _is_int(target.get("tag_id"))):
            raise WechatError(47001, "data format error: filter needs is_to_all or tag_id")
        clientmsgid = body.get("clientmsgid")
        if clientmsgid is not None and not isinstance(clientmsgid, str):
            raise WechatError(47001, "data format error: clientmsgid")
        if clientmsgid is not None and len(clientmsgid.encode()) > MAX_CLIENTMSGID_BYTES:
            raise WechatError(45067, "clientmsgid size out of limit")
        msgtype = body.get("msgtype")
        now = self.context.now()
        ledger = self.context.ledger
        with self._lock:
            if clientmsgid and clientmsgid in account.clientmsgids:
                first = account.clientmsgids[clientmsgid]
                ledger.duplicate(
                    self.route,
                    account.appid,
                    body,
                    now,
                    idempotency_key=clientmsgid,
                    kind="mass",
                    id=str(first),
                )
                raise WechatError(45065, "clientmsgid exist", msg_id=first)
            draft: _Draft | None = None
            if msgtype == "mpnews":
                section = body.get("mpnews")
                media_id = section.get("media_id") if isinstance(section, dict) else None
                draft = account.drafts.get(media_id if isinstance(media_id, str) else "")
                if draft is None or draft.state != "box":
                    if draft is not None and draft.state != "deleted":
                        ledger.duplicate(
                            self.route,
                            account.appid,
                            body,
                            now,
                            idempotency_key=clientmsgid,
                            kind="mass",
                            id=draft.media_id,
                        )
                    raise WechatError(40007, "invalid media_id")
                titles = [a["title"] for a in draft.articles]
            elif msgtype == "text":
                section = body.get("text")
                content = section.get("content") if isinstance(section, dict) else None
                if not isinstance(content, str) or not content.strip():
                    raise WechatError(44004, "empty content")
                titles = []
            else:
                raise WechatError(40008, "invalid message type")
            self._check_mass_quota(account, now)  # a valid request, and no send left today
            n = self._next()
            mass = _Mass(
                msg_id=1_000_000_000 + n,
                msg_data_id=2_247_483_600 + n,
                clientmsgid=clientmsgid,
                sent_at=now,
                titles=titles,
                target_user=1000 if to_all else 100,
                # the docs: a send to *all* followers waits for the administrator [src]
                protected=to_all and self.setting("wechat_mass_protection"),
            )
            if not mass.protected:
                mass.status = "SEND_SUCCESS"
            if draft is not None:
                draft.state = "sent"
            account.mass[mass.msg_id] = mass
            if clientmsgid:
                account.clientmsgids[clientmsgid] = mass.msg_id
            record = {**body, "articles": draft.articles} if draft is not None else body
            ledger.accept(
                self.route,
                account.appid,
                record,
                now,
                idempotency_key=clientmsgid,
                kind="mass",
                id=str(mass.msg_id),
                msg_data_id=mass.msg_data_id,
            )
        return json_response(
            200,
            {
                "errcode": 0,
                "errmsg": "send job submission success",
                "msg_id": mass.msg_id,
                "msg_data_id": mass.msg_data_id,
            },
        )

    def _mass_get(self, request: Request, account: _Account) -> Response:
        body = self._body(request)
        raw = _string(body, "msg_id")
        with self._lock:
            mass = account.mass.get(int(raw)) if raw.isascii() and raw.isdigit() else None
            if mass is None:
                raise WechatError(40059, "invalid msg id")
            self._decide(mass, self.context.now())
            status = mass.status
        return json_response(200, {"msg_id": mass.msg_id, "msg_status": status})

    def _decide(self, mass: _Mass, now: float) -> None:
        """The administrator's answer to a protected mass send, once its time has come
        (caller holds the lock)."""
        if mass.status != "SENDING":
            return
        age = now - mass.sent_at
        admin = self.setting("wechat_mass_admin")
        wait = self.setting("wechat_mass_confirm_seconds")
        if admin == "confirms" and age >= wait and wait < MASS_CONFIRM_WINDOW:
            mass.status = "SEND_SUCCESS"
        elif (admin == "refuses" and age >= wait) or age >= MASS_CONFIRM_WINDOW:
            mass.status = "SEND_FAIL"

    # -- datacube ------------------------------------------------------------------------

    def _check_mass_quota(self, account: _Account, now: float) -> None:
        """45028 once the app's mass sends of this Beijing day reach the quota (caller holds
        the lock)."""
        quota = self.setting("wechat_mass_sends_per_day")
        today = beijing_date(now)
        sent = sum(1 for m in account.mass.values() if beijing_date(m.sent_at) == today)
        if quota and sent >= quota:
            raise WechatError(45028, "has no masssend quota")

    def _datacube(self, request: Request, account: _Account) -> Response:
        name = request.path.rsplit("/", 1)[1]
        if name in LEGACY_DATACUBE and self.setting("wechat_legacy_datacube") == "offline":
            raise WechatError(47009, "this api is offline, please use the new api")
        body = self._body(request)
        begin, end = _date(body, "begin_date"), _date(body, "end_date")
        now = self.context.now()
        today = beijing_date(now)
        if begin > end or end >= today:
            raise WechatError(61501, "date range error: end_date must be before today")
        if (end - begin).days + 1 > DATACUBE_SPANS[name]:
            raise WechatError(
                61500, f"date format error: {name} spans at most {DATACUBE_SPANS[name]} day(s)"
            )
        days = [begin + timedelta(days=i) for i in range((end - begin).days + 1)]
        days = [d for d in days if d >= FIRST_DAY]
        if name == "getarticletotaldetail":
            detail = self._detail_rows(account, [d for d in days if d >= DETAIL_FIRST_DAY], today)
            return json_response(
                200, {"list": detail, "is_delay": self.setting("wechat_datacube_is_delay")}
            )
        with self._lock:
            sent = list(account.mass.values())
        rows: list[dict[str, Any]] = []
        for day in days:
            if name == "getusersummary":
                rows.append(
                    {"ref_date": day.isoformat(), "user_source": 0, **_followers_delta(day)}
                )
            elif name == "getusercumulate":
                rows.append({"ref_date": day.isoformat(), "cumulate_user": _followers_total(day)})
            else:
                for mass in sent:
                    if beijing_date(mass.sent_at) != day:
                        continue
                    for index, title in enumerate(mass.titles, 1):
                        row = self._article_row(name, mass, index, title, day, today)
                        if row is not None:
                            rows.append(row)
        return json_response(200, {"list": rows})

    def _detail_rows(
        self, account: _Account, days: list[date], today: date
    ) -> list[dict[str, Any]]:
        """getarticletotaldetail: every article published on ``days``, by freepublish
        (``publish_type`` 1, not notified) or mass send (0, notified), with ``detail_list``
        of running totals per day up to yesterday, for at most 30 days [src]."""
        now = self.context.now()
        # msgid ("<msg_data_id>_<index>"), publish_type, when, a seed for the figures
        published: list[tuple[str, int, float, int]] = []
        with self._lock:
            self._advance_all(account, now)
            for publish in account.publishes.values():
                article = account.articles.get(publish.article_id or "")
                if publish.status != 0 or article is None:
                    continue
                seed = int(hashlib.sha1(publish.publish_id.encode()).hexdigest()[:6], 16)
                for index in range(1, len(article.items) + 1):
                    msgid = f"{publish.msg_data_id}_{index}"
                    published.append((msgid, 1, article.published_at, seed + index))
            for mass in account.mass.values():
                self._decide(mass, now)
                # a send still awaiting an administrator's confirmation, or refused, has no
                # readers
                if mass.status == "SEND_SUCCESS":
                    for index in range(1, len(mass.titles) + 1):
                        msgid = f"{mass.msg_data_id}_{index}"
                        published.append((msgid, 0, mass.sent_at, mass.msg_id + index))
        rows: list[dict[str, Any]] = []
        for msgid, publish_type, at, seed in published:
            day = beijing_date(at)
            if day not in days:
                continue
            last = min(today - timedelta(days=1), day + timedelta(days=DETAIL_DAYS - 1))
            detail_list = []
            stat_day = day
            while stat_day <= last:
                figures = _detail_stats(seed, at, day_end(stat_day))
                detail_list.append(
                    {
                        "stat_date": stat_day.isoformat(),
                        **figures,
                        "read_user_source": [
                            {"user_source": 99999999, "count": figures["read_user"]}
                        ],
                    }
                )
                stat_day += timedelta(days=1)
            rows.append(
                {
                    "ref_date": day.isoformat(),
                    "msgid": msgid,
                    "publish_type": publish_type,
                    "detail_list": detail_list,
                }
            )
        return rows

    def _article_row(
        self, name: str, mass: _Mass, index: int, title: str, day: date, today: date
    ) -> dict[str, Any] | None:
        head = {"ref_date": day.isoformat(), "msgid": f"{mass.msg_data_id}_{index}", "title": title}
        if name == "getarticlesummary":
            stats = _article_stats(mass, index, day_end(day))
            engaged = stats["int_page_read_count"] + stats["share_count"]
            if engaged + stats["add_to_fav_count"] < 3:
                return None  # the platform leaves out articles with fewer than 3 actions
            return {**head, **stats}
        details = []
        stat_day = day
        while stat_day < today and (stat_day - day).days < 7:
            stats = _article_stats(mass, index, day_end(stat_day))
            details.append(
                {"stat_date": stat_day.isoformat(), "target_user": mass.target_user, **stats}
            )
            stat_day += timedelta(days=1)
        return {**head, "details": details}


# -- helpers ---------------------------------------------------------------------------------


def _zero_stats() -> dict[str, int]:
    return {"token_fetches": 0, "stable_token_fetches": 0, "stable_tokens_issued": 0}


def _usable(token: _Token, now: float) -> bool:
    if token.expired or now >= token.expires_at:
        return False
    return token.invalid_after is None or now < token.invalid_after


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WechatError(47001, f"data format error: {name} must be a string")
    return value


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else ""


def _page(body: dict[str, Any]) -> tuple[int, int, bool]:
    offset, count = body.get("offset", 0), body.get("count")
    no_content = body.get("no_content", 0)
    if not isinstance(offset, int) or not isinstance(count, int) or isinstance(count, bool):
        raise WechatError(40002, "invalid args: offset and count must be integers")
    if offset < 0 or not 1 <= count <= 20:
        raise WechatError(40002, "invalid args: offset >= 0 and count 1-20")
    return offset, count, no_content in (1, True)


def _batch_item(
    id_key: str, id_value: str, articles: list[dict[str, Any]], at: float, no_content: bool
) -> dict[str, Any]:
    """One item of draft/batchget or freepublish/batchget."""
    return {
        id_key: id_value,
        "content": {
            "news_item": [_without_content(a, no_content) for a in articles],
            "create_time": int(at),
            "update_time": int(at),
        },
        "update_time": int(at),
    }


def _batch_answer(total: int, items: list[dict[str, Any]]) -> Response:
    return json_response(200, {"total_count": total, "item_count": len(items), "item": items})


def _without_content(article: dict[str, Any], no_content: bool) -> dict[str, Any]:
    item = dict(article)
    if no_content:
        item.pop("content", None)
    return item


def _url_key(url: str) -> str:
    """A URL without its scheme: clients may turn the http:// WeChat gives into https://."""
    url = html.unescape(url.strip())
    return url.split("://", 1)[1] if "://" in url else url.removeprefix("//")


def _check_links(content: str) -> None:
    """45166 for an ``<a href>`` to anywhere but WeChat's own articles [gk: docs/platforms.md
    §3.4 "unsupported content, e.g. hyperlink tags"; that mp.weixin.qq.com links pass is
    the editor's known behaviour]."""
    for anchor in _ANCHOR.finditer(content):
        found = _HREF.search(anchor.group(0))
        if found is None:
            continue
        href = html.unescape(next((g for g in found.groups() if g is not None), "")).strip()
        parts = urlsplit(href)
        host = (parts.hostname or "").lower()
        if parts.scheme.lower() not in ("http", "https") or host not in LINK_HOSTS:
            raise WechatError(45166, "invalid content hint: [link]")


def _clean_content(content: str, allowed_images: set[str]) -> str:
    """Strip scripts and the images uploadimg did not serve, as WeChat does."""
    content = _SCRIPT.sub("", content)

    def keep(match: re.Match[str]) -> str:
        src = _SRC.search(match.group(0))
        url = next((g for g in src.groups() if g is not None), "") if src else ""
        return match.group(0) if url and _url_key(url) in allowed_images else ""

    return _IMG.sub(keep, content)


def _article_url(key: str, index: int, mid: str | None = None) -> str:
    """An article's address. A published article's ``mid`` is its message's msg_data_id and
    ``idx`` its place in the message, the pair datacube's ``msgid`` joins with "_" [gk]; a
    draft's preview address has no message yet, so its ``mid`` is made up."""
    digest = hashlib.sha1(f"{key}/{index}".encode()).hexdigest()
    if mid is None:
        mid = str(2_247_480_000 + int(digest[:5], 16))
    return f"https://mp.weixin.qq.com/s?__biz=MzkxNzAwMDAwMA==&mid={mid}&idx={index}&sn={digest[:32]}#rd"


def _article_stats(mass: _Mass, index: int, at: float) -> dict[str, int]:
    hours = max(0.0, at - mass.sent_at) / 3600
    factor = 1 + (mass.msg_id + index) % 3
    return {name: int(rate * hours * factor) for name, rate in ARTICLE_RATES.items()}


def _detail_stats(seed: int, since: float, at: float) -> dict[str, int]:
    """Running totals of getarticletotaldetail's figures from ``since`` to ``at``."""
    hours = max(0.0, at - since) / 3600
    factor = 1 + seed % 3
    return {name: int(rate * hours * factor) for name, rate in DETAIL_RATES.items()}


def _date(body: dict[str, Any], name: str) -> date:
    value = body.get(name)
    if not isinstance(value, str) or not _DATE.match(value):
        raise WechatError(61500, f"date format error: {name} must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise WechatError(61500, f"date format error: {name}") from None


def _followers_delta(day: date) -> dict[str, int]:
    seed = day.toordinal()
    return {"new_user": 20 + seed % 17, "cancel_user": seed % 5}


def _followers_total(day: date) -> int:
    days = max(0, (day - FIRST_DAY).days)
    return 1000 + days * 15 + day.toordinal() % 7
