"""Emulated Douyin open platform (docs/platforms.md §4 and §11).

Every answer is HTTP 200. OAuth answers ``{"data": {..., "error_code", "description"},
"message": "success" | "error"}``; the video and data APIs answer ``{"data": {...,
"error_code", "description"}, "extra": {"error_code", "description", "sub_error_code",
"sub_description", "logid", "now"}}``, the error code in both ``data`` and ``extra``.

OAuth (form, query or JSON parameters):

- ``POST /oauth/access_token/`` (``client_key``, ``client_secret``, ``code``,
  ``grant_type=authorization_code``): a new authorization, access token 15 days, refresh
  token 30 days. A code works once (10007).
- ``POST /oauth/refresh_token/`` (``client_key``, ``grant_type=refresh_token``,
  ``refresh_token``): a new access token. The refresh token is rotated, a new string that
  keeps the old one's expiry while the old one stops working (``douyin_rotate_on_refresh:
  false`` hands the same one back instead). Expired, replaced or unknown: 10010.
- ``POST /oauth/renew_refresh_token/`` (``client_key``, ``refresh_token``): a new 30-day
  refresh token, at most ``douyin_renew_limit`` (5) times per authorization, then 10020.
- ``POST /oauth/client_token/`` (``client_key``, ``client_secret``,
  ``grant_type=client_credential``): an app token ``clt.…`` for 2 hours; the previous one
  stops working 5 minutes later.

Wrong ``client_key``/``client_secret``: 10013 (also while none is registered); a missing
parameter 10005; a wrong grant_type 10002. ``renew_refresh_token/`` for an app without the
``renew_refresh_token`` capability: 10004.

Videos, only under the current ``/api/douyin/v1/video/`` paths (developer.open-douyin.com,
video-management), the token in the ``access-token`` header (28001003 invalid or unknown,
28001008 expired), ``open_id`` in the query and the token's user (28001015). The retired
``/video/upload/``, ``/video/part/*``, ``/video/create/``, ``/video/list/`` and
``/video/data/`` paths get the 404 every unknown path gets. Each call needs its capability:
the app must hold it (``douyin_app_capabilities``, else 28001018 应用未获得该能力) and the user
must have granted it (the ``scope`` of the authorization, else 28001012 用户未授权该OpenAPI):
``video.create.bind`` to upload and create, ``video.list.bind`` for video_list,
``video.data.bind`` for video_data, ``data.external.item`` for item/base.

- ``upload_video/``: multipart ``video`` → ``data.video{video_id, width, height}``; a file
  over ``douyin_upload_limit_bytes`` (128 MiB: "超过128m的视频必须采用分片上传") is refused
  with 2100005.
- chunked: ``init_video_part_upload/`` → ``data.upload_id`` (valid 2 hours);
  ``upload_video_part/?upload_id=&part_number=`` (from 1) with multipart ``video``;
  ``complete_video_part_upload/?upload_id=`` → ``data.video``. Every part but the last must be
  at least 5 MB (``douyin_min_part_bytes``) and the parts must run 1..N.
- ``create_video/`` with JSON ``{video_id, text, ...}`` → ``data.item_id``. A missing
  ``video_id`` is 2100005; one used before is 2100005 too, and a ``duplicates`` entry in the
  ledger.
- ``GET video_list/`` (``cursor``, ``count``) and ``POST video_data/`` (``{"item_ids":
  [...]}``, other users' items left out). A new video is processed for
  ``douyin_processing_seconds`` (120) before either shows it at all; then ``is_reviewed`` false
  and ``video_status`` 4 until ``douyin_review_seconds`` (60) more passed, then true and 1;
  ``statistics`` grow from then on (per hour: 120 plays, 10 likes, 2 comments, 1 share, 1
  forward, times 1, 2 or 3). The docs list status 4 (审核中) in list answers, so a video under
  review is listed; that a video is invisible while it is being processed is our choice of the
  hardest plausible case (no document says how soon a created video is listed), and it is what
  makes "not in the list yet" different from "never created".
- ``GET /data/external/item/base/?item_id=``: ``data.result{total_play, total_like,
  total_comment, total_share, avg_play_duration}`` as of the last midnight, Beijing time (T+1).

Every creating call (upload, part upload, complete, create) can be applied and then lose its
answer with the server's ``drop_after``/``hang_after``/``error_after`` faults; 28001056 (an
interface taken offline) is a ``platform_error`` fault with that code.

Credentials: ``POST /_sandbox/secrets {"douyin": {"client_key", "client_secret",
"access_token", "refresh_token", "open_id", "scope"}}`` (``scope``: the comma-separated
scopes the user granted, by default every one above). Unknown tokens and keys are refused,
registered or not: nothing is adopted on first sight. ``POST /_sandbox/expire {"route":
"douyin", "what": "access" | "refresh"}`` expires every access token (28001008) or every
refresh token (10010).

Guessed where the docs are silent: rotation on ``refresh_token/`` (the docs say only that it
does not extend the refresh token); that a refreshed access token leaves the older ones valid;
2100005 for an unknown or reused video_id, an oversized whole-file upload and every upload
problem; 10007 for a reused code; an idempotent ``complete``; at most 20 videos per list page;
the 1080x1920 size of every upload.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from kepubot.sandbox.base import (
    Request,
    Response,
    Setting,
    boolean,
    json_response,
    non_negative_int,
    non_negative_number,
    positive_int,
    string_list,
)
from kepubot.sandbox.forms import Form, FormError, content_type, read_form
from kepubot.sandbox.usertokens import PlatformError, Token, UserTokenEndpoint, find_route

ACCESS_SECONDS = 15 * 86400
REFRESH_SECONDS = 30 * 86400
CLIENT_TOKEN_SECONDS = 7200
CLIENT_TOKEN_OVERLAP = 300.0
UPLOAD_ID_SECONDS = 7200.0
MIN_PART_BYTES = 5 * 1024 * 1024
RENEW_LIMIT = 5
BEIJING = timezone(timedelta(hours=8))
NEW_PREFIX = "/api/douyin/v1/video/"
CAPABILITIES = (
    "video.create.bind",
    "video.list.bind",
    "video.data.bind",
    "data.external.item",
    "renew_refresh_token",
)
SCOPE = ",".join(c for c in CAPABILITIES if c != "renew_refresh_token")
UPLOAD_LIMIT_BYTES = 128 * 1024 * 1024
PROCESSING_SECONDS = 120.0
# Per hour since the review ended, before the video's factor of 1, 2 or 3.
VIDEO_RATES = {
    "play_count": 120,
    "digg_count": 10,
    "comment_count": 2,
    "share_count": 1,
    "forward_count": 1,
    "download_count": 0.5,
}
_VIDEO_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


DouyinError = PlatformError  # its message is Douyin's description


@dataclass
class _Grant:
    """One user authorization: the chain of tokens it hands out."""

    open_id: str | None
    renewals: int = 0
    scope: str = SCOPE


@dataclass
class _Upload:
    open_id: str
    created_at: float
    parts: dict[int, int] = field(default_factory=dict)  # part number -> bytes
    video_id: str | None = None


@dataclass
class _VideoFile:
    open_id: str
    size: int
    item_id: str | None = None  # the video it became


@dataclass
class _Video:
    item_id: str
    open_id: str
    text: str
    created_at: float
    sequence: int

    def reviewed(self, now: float, review_seconds: float) -> bool:
        """``review_seconds`` counts from the end of processing."""
        return now - self.created_at >= review_seconds

    def statistics(self, at: float, review_seconds: float) -> dict[str, int]:
        hours = max(0.0, at - self.created_at - review_seconds) / 3600
        factor = 1 + self.sequence % 3
        return {name: int(rate * hours * factor) for name, rate in VIDEO_RATES.items()}


Handler = Callable[[Request, str, Form], Response]


class DouyinOpenAPI(UserTokenEndpoint):
    route = "douyin"
    prefix = "/oauth/"
    prefixes = (NEW_PREFIX, "/data/external/")
    secret_params = frozenset({"access_token", "client_secret", "refresh_token", "code"})
    secrets_key = "douyin"
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "douyin_review_seconds": Setting(
            60.0, non_negative_number, "a new video is under review (status 4) this long"
        ),
        "douyin_min_part_bytes": Setting(
            MIN_PART_BYTES, positive_int, "the smallest part but the last of a chunked upload"
        ),
        "douyin_rotate_on_refresh": Setting(
            True, boolean, "refresh_token/ hands out a new refresh token (same expiry)"
        ),
        "douyin_renew_limit": Setting(
            RENEW_LIMIT, non_negative_int, "renew_refresh_token/ calls per authorization"
        ),
        "douyin_access_expires_in": Setting(ACCESS_SECONDS, positive_int, "access token life"),
        "douyin_refresh_expires_in": Setting(REFRESH_SECONDS, positive_int, "refresh token life"),
        "douyin_upload_limit_bytes": Setting(
            UPLOAD_LIMIT_BYTES, positive_int, "largest whole-file upload_video/ (128 MiB)"
        ),
        "douyin_processing_seconds": Setting(
            PROCESSING_SECONDS,
            non_negative_number,
            "a created video is invisible to video_list and video_data this long",
        ),
        "douyin_app_capabilities": Setting(
            list(CAPABILITIES), string_list, "the capabilities the application holds"
        ),
    }

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._default_open_id: str | None = None
        self._client_tokens: dict[str, float] = {}  # token -> refused from
        self._current_client_token: str | None = None
        self._codes_used: set[str] = set()
        self._uploads: dict[str, _Upload] = {}
        self._files: dict[str, _VideoFile] = {}
        self._videos: dict[str, _Video] = {}
        self._sequence = 0
        api: dict[str, tuple[str, Handler]] = {
            "upload": ("POST", self._upload),
            "part_init": ("POST", self._part_init),
            "part_upload": ("POST", self._part_upload),
            "part_complete": ("POST", self._part_complete),
            "create": ("POST", self._create),
            "list": ("GET", self._list),
            "data": ("POST", self._data),
        }
        self._api_routes: dict[str, tuple[str, Handler]] = {
            NEW_PREFIX + "upload_video/": api["upload"],
            NEW_PREFIX + "init_video_part_upload/": api["part_init"],
            NEW_PREFIX + "upload_video_part/": api["part_upload"],
            NEW_PREFIX + "complete_video_part_upload/": api["part_complete"],
            NEW_PREFIX + "create_video/": api["create"],
            NEW_PREFIX + "video_list/": api["list"],
            NEW_PREFIX + "video_data/": api["data"],
            "/data/external/item/base/": ("GET", self._item_base),
        }
        self._scopes: dict[str, str] = {
            NEW_PREFIX + "upload_video/": "video.create.bind",
            NEW_PREFIX + "init_video_part_upload/": "video.create.bind",
            NEW_PREFIX + "upload_video_part/": "video.create.bind",
            NEW_PREFIX + "complete_video_part_upload/": "video.create.bind",
            NEW_PREFIX + "create_video/": "video.create.bind",
            NEW_PREFIX + "video_list/": "video.list.bind",
            NEW_PREFIX + "video_data/": "video.data.bind",
            "/data/external/item/base/": "data.external.item",
        }
        self._oauth_routes: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "/oauth/access_token/": self._access_token,
            "/oauth/refresh_token/": self._refresh_token,
            "/oauth/renew_refresh_token/": self._renew_refresh_token,
            "/oauth/client_token/": self._client_token,
        }

    def _zero_stats(self) -> dict[str, int]:
        return _counters()

    # -- control -------------------------------------------------------------------------

    def set_secrets(self, value: Any) -> None:
        names = {"client_key", "client_secret", "access_token", "refresh_token", "open_id", "scope"}
        self._check_secret_names(value, names)
        if not all(isinstance(v, str) and v for v in value.values()):
            raise ValueError('"douyin" values must be non-empty strings')
        self._check_secret_pairs(value, ("client_key", "client_secret"), "open_id")
        now = self.context.now()
        with self._lock:
            if "client_key" in value:
                self._client = (value["client_key"], value["client_secret"])
            if "open_id" in value:
                self._default_open_id = value["open_id"]
            if "access_token" in value or "refresh_token" in value:
                grant = _Grant(value["open_id"], scope=value.get("scope", SCOPE))
                self._register_tokens(value, grant, now)

    def reset(self) -> None:
        with self._lock:
            self._reset_tokens()
            self._default_open_id = None
            self._client_tokens.clear()
            self._current_client_token = None
            self._codes_used.clear()
            self._uploads.clear()
            self._files.clear()
            self._videos.clear()
            self._sequence = 0

    def busy_response(self, request: Request | None = None) -> Response:
        return self.error_response(2100004, request, "系统繁忙，请稍后再试")

    def error_response(
        self, code: int, request: Request | None = None, description: str = "sandbox error"
    ) -> Response:
        if request is not None and request.path.startswith("/oauth/"):
            return _oauth_error(code, description)
        return self._api_answer({}, code, description)

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        oauth = self._oauth_routes.get(path)
        if oauth is not None:
            if request.method != "POST":
                return json_response(405, {"error": "method not allowed"}, {"Allow": "POST"})
            try:
                return _oauth_ok(oauth(_parameters(request)))
            except FormError as exc:
                return _oauth_error(10002, f"参数错误: {exc}")
            except DouyinError as exc:
                return _oauth_error(exc.code, exc.message)
        handler = find_route(request, self._api_routes, json_response(404, {"error": "not found"}))
        if isinstance(handler, Response):
            return handler
        try:
            form = read_form(request)
            open_id = self._authorize(request, form, self._scopes[path])
            return handler(request, open_id, form)
        except FormError as exc:
            return self._api_answer({}, 2100005, f"参数不合法: {exc}")
        except DouyinError as exc:
            return self._api_answer({}, exc.code, exc.message)

    def _api_answer(self, data: dict[str, Any], code: int = 0, description: str = "") -> Response:
        now = self.context.now()
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now + 8 * 3600))
        extra = {
            "error_code": code,
            "description": description,
            "sub_error_code": 0,
            "sub_description": "",
            "logid": f"{stamp}{secrets.token_hex(10).upper()}",
            "now": int(now),
        }
        return json_response(
            200, {"data": {**data, "error_code": code, "description": description}, "extra": extra}
        )

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    # -- OAuth ---------------------------------------------------------------------------

    def _check_client(self, params: dict[str, str], with_secret: bool) -> None:
        """Caller holds the lock."""
        key = params.get("client_key")
        if not key:
            raise DouyinError(10005, "缺少参数 client_key")
        secret = params.get("client_secret")
        if with_secret and not secret:
            raise DouyinError(10005, "缺少参数 client_secret")
        if self._client is None or (
            key != self._client[0] or (with_secret and secret != self._client[1])
        ):
            raise DouyinError(10013, "client_key 或 client_secret 错误")

    def _access_token(self, params: dict[str, str]) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            self._check_client(params, with_secret=True)
            if params.get("grant_type") != "authorization_code":
                raise DouyinError(10002, "参数错误: grant_type")
            code = params.get("code")
            if not code:
                raise DouyinError(10005, "缺少参数 code")
            if code in self._codes_used:
                raise DouyinError(10007, "授权码已过期")
            self._codes_used.add(code)
            open_id = self._default_open_id or f"open-{self._next()}"
            grant = _Grant(open_id)
            access, refresh = _token("act."), _token("rft.")
            self._access[access] = self._new_access(grant, now)
            self._refresh[refresh] = self._new_refresh(grant, now)
            self._stats["access_token_grants"] += 1
            return {
                "access_token": access,
                "expires_in": self.setting("douyin_access_expires_in"),
                "open_id": open_id,
                "refresh_token": refresh,
                "refresh_expires_in": self.setting("douyin_refresh_expires_in"),
                "scope": SCOPE,
            }

    def _live_refresh(self, params: dict[str, str], now: float) -> tuple[str, Token]:
        """The usable refresh token named in ``params`` (caller holds the lock)."""
        value = params.get("refresh_token")
        if not value:
            raise DouyinError(10005, "缺少参数 refresh_token")
        token = self._refresh.get(value)
        if token is None or token.replaced:
            raise DouyinError(10010, "refresh_token 无效，请重新授权")
        if token.ended(now):
            raise DouyinError(10010, "refresh_token 已过期，请重新授权")
        return value, token

    def _refresh_token(self, params: dict[str, str]) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            self._check_client(params, with_secret=False)
            if params.get("grant_type") != "refresh_token":
                raise DouyinError(10002, "参数错误: grant_type")
            value, refresh = self._live_refresh(params, now)
            access = _token("act.")
            self._access[access] = self._new_access(refresh.grant, now)
            if self.setting("douyin_rotate_on_refresh"):
                refresh.replaced = True
                value = _token("rft.")
                refresh = self._refresh[value] = Token(refresh.grant, refresh.expires_at)
            self._stats["token_refreshes"] += 1
            return {
                "access_token": access,
                "expires_in": self.setting("douyin_access_expires_in"),
                "open_id": refresh.grant.open_id or "",
                "refresh_token": value,
                "refresh_expires_in": max(0, int(refresh.expires_at - now)),
                "scope": refresh.grant.scope,
            }

    def _renew_refresh_token(self, params: dict[str, str]) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            self._check_client(params, with_secret=False)
            if "renew_refresh_token" not in self.setting("douyin_app_capabilities"):
                raise DouyinError(10004, "权限不足: 请申请 renew_refresh_token 权限")
            _, refresh = self._live_refresh(params, now)
            if refresh.grant.renewals >= self.setting("douyin_renew_limit"):
                raise DouyinError(10020, "refresh_token 刷新次数超过上限，请重新授权")
            refresh.grant.renewals += 1
            refresh.replaced = True
            value = _token("rft.")
            self._refresh[value] = self._new_refresh(refresh.grant, now)
            self._stats["refresh_token_renewals"] += 1
            return {"refresh_token": value, "expires_in": self.setting("douyin_refresh_expires_in")}

    def _client_token(self, params: dict[str, str]) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            self._check_client(params, with_secret=True)
            if params.get("grant_type") != "client_credential":
                raise DouyinError(10002, "参数错误: grant_type")
            previous = self._current_client_token
            if previous is not None:
                self._client_tokens[previous] = min(
                    self._client_tokens[previous], now + CLIENT_TOKEN_OVERLAP
                )
            token = _token("clt.")
            self._client_tokens[token] = now + CLIENT_TOKEN_SECONDS
            self._current_client_token = token
            self._stats["client_token_fetches"] += 1
        return {"access_token": token, "expires_in": CLIENT_TOKEN_SECONDS}

    def _authorize(self, request: Request, form: Form, scope: str) -> str:
        """The open_id the request acts for, once its token and capability check out."""
        value = request.headers.get("access-token")
        open_id = form.get("open_id")
        if not value:
            raise DouyinError(28001003, "access_token 无效")
        if not open_id:
            raise DouyinError(28001007, "参数不合法: 缺少 open_id")
        now = self.context.now()
        with self._lock:
            token = self._access.get(value)
            if token is None:
                raise DouyinError(28001003, "access_token 无效")
            if token.ended(now):
                raise DouyinError(28001008, "access_token过期，请刷新或重新授权")
            if token.grant.open_id is None:
                token.grant.open_id = open_id
            if token.grant.open_id != open_id:
                raise DouyinError(28001015, "请求参数 access_token 和 openId不匹配")
            if scope not in self.setting("douyin_app_capabilities"):
                raise DouyinError(28001018, f"应用未获得该能力: {scope}")
            granted = {part.strip() for part in token.grant.scope.split(",")}
            if scope not in granted:
                raise DouyinError(28001012, f"用户未授权该OpenAPI: {scope}")
        return open_id

    # -- uploads -------------------------------------------------------------------------

    def _video_part(self, form: Form) -> bytes:
        part = form.file("video")
        if part is None or not part.data:
            raise DouyinError(2100005, "参数不合法: 缺少 video 文件")
        return part.data

    def _new_file(self, open_id: str, size: int) -> dict[str, Any]:
        """Caller holds the lock."""
        video_id = f"v0200fg10000{secrets.token_hex(10)}"
        self._files[video_id] = _VideoFile(open_id, size)
        return {"video_id": video_id, "width": 1080, "height": 1920}

    def _upload(self, request: Request, open_id: str, form: Form) -> Response:
        data = self._video_part(form)
        if len(data) > self.setting("douyin_upload_limit_bytes"):
            raise DouyinError(2100005, "参数不合法: 视频文件超过128M，请使用分片上传")
        if not _looks_like_video(data):
            raise DouyinError(2100005, "参数不合法: 不支持的视频格式")
        with self._lock:
            video = self._new_file(open_id, len(data))
            self._stats["videos_uploaded"] += 1
        return self._api_answer({"video": video})

    def _part_init(self, request: Request, open_id: str, form: Form) -> Response:
        upload_id = f"@{secrets.token_urlsafe(18)}+{secrets.token_hex(4)}/=="
        with self._lock:
            self._uploads[upload_id] = _Upload(open_id, self.context.now())
        return self._api_answer({"upload_id": upload_id})

    def _live_upload(self, open_id: str, form: Form) -> _Upload:
        """Caller holds the lock."""
        upload = self._uploads.get(form.get("upload_id") or "")
        if upload is None or upload.open_id != open_id:
            raise DouyinError(2100005, "参数不合法: upload_id 不存在")
        if self.context.now() - upload.created_at > UPLOAD_ID_SECONDS:
            raise DouyinError(2100005, "参数不合法: upload_id 已过期")
        return upload

    def _part_upload(self, request: Request, open_id: str, form: Form) -> Response:
        raw = form.get("part_number") or ""
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise DouyinError(2100005, "参数不合法: part_number 从 1 开始")
        data = self._video_part(form)
        with self._lock:
            upload = self._live_upload(open_id, form)
            if upload.video_id is not None:
                raise DouyinError(2100005, "参数不合法: 上传已完成")
            upload.parts[int(raw)] = len(data)
            self._stats["parts_received"] += 1
        return self._api_answer({})

    def _part_complete(self, request: Request, open_id: str, form: Form) -> Response:
        minimum = self.setting("douyin_min_part_bytes")
        with self._lock:
            upload = self._live_upload(open_id, form)
            if upload.video_id is None:
                numbers = sorted(upload.parts)
                if not numbers or numbers != list(range(1, len(numbers) + 1)):
                    raise DouyinError(2100005, "参数不合法: 分片不完整，须从 1 连续编号")
                if any(upload.parts[n] < minimum for n in numbers[:-1]):
                    raise DouyinError(2100005, "参数不合法: 除最后一片外，分片不能小于 5MB")
                video = self._new_file(open_id, sum(upload.parts.values()))
                upload.video_id = video["video_id"]
                self._stats["uploads_completed"] += 1
            # A retried complete answers the same video.
            video = {"video_id": upload.video_id, "width": 1080, "height": 1920}
        return self._api_answer({"video": video})

    # -- videos --------------------------------------------------------------------------

    def _create(self, request: Request, open_id: str, form: Form) -> Response:
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except ValueError:
            raise DouyinError(2100005, "参数不合法: body 不是 JSON") from None
        if not isinstance(body, dict):
            raise DouyinError(2100005, "参数不合法: body 不是 JSON 对象")
        video_id = body.get("video_id")
        if not isinstance(video_id, str) or not video_id:
            raise DouyinError(2100005, "参数不合法: 缺少 video_id")
        text = body.get("text", "")
        if not isinstance(text, str):
            raise DouyinError(2100005, "参数不合法: text")
        now = self.context.now()
        ledger = self.context.ledger
        with self._lock:
            file = self._files.get(video_id)
            if file is None or file.open_id != open_id:
                raise DouyinError(2100005, "参数不合法: video_id 无效")
            if file.item_id is not None:
                ledger.duplicate(self.route, open_id, body, now, kind="video", id=file.item_id)
                raise DouyinError(2100005, "参数不合法: video_id 已被使用，请重新上传")
            sequence = self._next()
            item_id = f"@{secrets.token_urlsafe(24)}+{sequence}/=="
            file.item_id = item_id
            self._videos[item_id] = _Video(item_id, open_id, text, now, sequence)
            ledger.accept(self.route, open_id, body, now, kind="video", id=item_id)
            self._stats["videos_created"] += 1
        return self._api_answer({"item_id": item_id})

    def _ready(self, video: _Video, now: float) -> bool:
        """Processed: visible to video_list and video_data from now on."""
        return now - video.created_at >= self.setting("douyin_processing_seconds")

    def _review_seconds(self) -> float:
        """From create to the end of review: processing, then review."""
        return float(self.setting("douyin_processing_seconds")) + self.setting(
            "douyin_review_seconds"
        )

    def _video_json(self, video: _Video, now: float) -> dict[str, Any]:
        review = self._review_seconds()
        reviewed = video.reviewed(now, review)
        return {
            "item_id": video.item_id,
            "title": video.text,
            "cover": f"https://p3-sign.douyinpic.com/tos-cn-p-0015/{video.sequence:08d}.jpeg",
            "create_time": int(video.created_at),
            "is_reviewed": reviewed,
            "is_top": False,
            "video_status": 1 if reviewed else 4,
            "share_url": f"https://www.iesdouyin.com/share/video/{7_300_000_000 + video.sequence}/",
            "statistics": video.statistics(now, review),
        }

    def _list(self, request: Request, open_id: str, form: Form) -> Response:
        cursor = _number(form, "cursor", 0)
        count = min(max(_number(form, "count", 10), 1), 20)
        now = self.context.now()
        with self._lock:
            mine = [
                v for v in self._videos.values() if v.open_id == open_id and self._ready(v, now)
            ]
            mine.sort(key=lambda v: v.sequence, reverse=True)
            page = [self._video_json(v, now) for v in mine[cursor : cursor + count]]
        more = len(mine) > cursor + count
        return self._api_answer({"list": page, "cursor": cursor + len(page), "has_more": more})

    def _data(self, request: Request, open_id: str, form: Form) -> Response:
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except ValueError:
            raise DouyinError(2100005, "参数不合法: body 不是 JSON") from None
        item_ids = body.get("item_ids") if isinstance(body, dict) else None
        if not isinstance(item_ids, list) or not all(isinstance(i, str) for i in item_ids):
            raise DouyinError(2100005, "参数不合法: item_ids")
        now = self.context.now()
        with self._lock:
            found = [self._videos.get(i) for i in item_ids]
            videos = [
                self._video_json(v, now)
                for v in found
                if v and v.open_id == open_id and self._ready(v, now)
            ]
        return self._api_answer({"list": videos})

    def _item_base(self, request: Request, open_id: str, form: Form) -> Response:
        now = self.context.now()
        midnight = datetime.fromtimestamp(now, BEIJING).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        with self._lock:
            video = self._videos.get(form.get("item_id") or "")
            if video is None or video.open_id != open_id:
                raise DouyinError(2100005, "参数不合法: item_id")
            stats = video.statistics(midnight.timestamp(), self._review_seconds())
        result = {
            "total_play": stats["play_count"],
            "total_like": stats["digg_count"],
            "total_comment": stats["comment_count"],
            "total_share": stats["share_count"],
            "avg_play_duration": 7.5 if stats["play_count"] else 0,
        }
        return self._api_answer({"result": result})


# -- helpers ---------------------------------------------------------------------------------


def _counters() -> dict[str, int]:
    return {
        "access_token_grants": 0,
        "token_refreshes": 0,
        "refresh_token_renewals": 0,
        "client_token_fetches": 0,
        "videos_uploaded": 0,
        "parts_received": 0,
        "uploads_completed": 0,
        "videos_created": 0,
    }


def _token(prefix: str) -> str:
    return prefix + secrets.token_hex(24)


def _looks_like_video(data: bytes) -> bool:
    """An ISO media file (mp4, mov: a box type at offset 4) or Matroska/WebM."""
    return data[4:8] in _VIDEO_ATOMS or data.startswith(b"\x1a\x45\xdf\xa3")


def _number(form: Form, name: str, default: int) -> int:
    raw = form.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise DouyinError(2100005, f"参数不合法: {name}")
    return int(raw)


def _parameters(request: Request) -> dict[str, str]:
    """OAuth parameters from the query, a form body or a JSON body (clients use all three)."""
    form = read_form(request)
    params = {name: values[-1] for name, values in form.fields.items() if values}
    media_type, _ = content_type(request)
    if media_type == "application/json" and request.body.strip():
        try:
            body = json.loads(request.body.decode("utf-8"))
        except ValueError:
            raise DouyinError(10002, "参数错误: body 不是 JSON") from None
        if isinstance(body, dict):
            params.update({k: str(v) for k, v in body.items() if v is not None})
    return params


def _oauth_ok(data: dict[str, Any]) -> Response:
    return json_response(
        200, {"data": {**data, "error_code": 0, "description": ""}, "message": "success"}
    )


def _oauth_error(code: int, description: str) -> Response:
    return json_response(
        200, {"data": {"error_code": code, "description": description}, "message": "error"}
    )
