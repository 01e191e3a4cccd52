"""Emulated Bilibili open platform (docs/platforms.md §12 and §11), written from the platform's
documentation (openhome.bilibili.com: 账号授权, 接口签名实现标准和状态码, 服务端视频稿件投递,
视频稿件查询, 数据开放服务), not from our channel.

Every answer is HTTP 200 ``{"code", "message", "ttl": 1, "request_id", "data"}``, code 0 on
success.

- ``POST /x/account-oauth2/v1/refresh_token`` (``client_id``, ``client_secret``,
  ``grant_type=refresh_token``, ``refresh_token``; query or form): a new access token and a
  new refresh token; the old refresh token stops working. ``expires_in`` is the access token's
  expiry as a Unix time.
- Under ``/arcopen/fn/`` every call is signed (接口签名实现标准): the ``x-bili-*`` headers,
  ``access-token`` and ``Authorization`` = HMAC-SHA256(client secret, the ``x-bili-*`` headers
  sorted, ``name:value`` per line). Wrong client id, signature, a body whose MD5 is not
  ``x-bili-content-md5`` (JSON bodies; the empty string's MD5 for GET and file uploads), a
  timestamp more than 10 minutes off or a nonce used before: -3. Unknown access token -101,
  expired -658; a permission the application lacks (``bilibili_app_scopes``) or the user did
  not grant: -403.
- ``video/init`` (JSON ``name``, ``utype``) → ``upload_token``; ``POST /video/v2/part/upload
  ?upload_token=&part_number=`` (the upload host; the upload_token is the credential) stores a
  part; ``video/complete?upload_token=`` merges parts 1..N (repeatable); ``cover/upload``
  (multipart ``file``, a PNG or JPEG) → ``url``; ``add-by-utoken?upload_token=`` with JSON
  ``title, cover, tid, no_reprint, desc, tag, copyright, source`` → ``resource_id``.
  Refused with -400: nothing merged for the upload_token, an empty or over-80-character title,
  an unknown ``tid`` (``bilibili_tids``), no tag or more than 12, ``copyright`` not 1 or 2,
  ``copyright`` 2 without ``source``, a cover we did not issue, a description over 250
  characters. An upload_token submitted before: 21012 and a ``duplicates`` ledger entry.
- ``GET archive/view?resource_id=``: ``addit_info{state, state_desc, reject_reason}``: -30
  (创建已提交) for ``bilibili_review_seconds``, then 0 (开放浏览), or -2 (打回) with a
  reject_reason when the title contains one of ``bilibili_refuse_titles``.
- ``GET archive/viewlist?pn=&ps=``: the account's archives, newest first, each listed only
  ``bilibili_list_delay_seconds`` after submission (our choice of the hardest plausible case:
  no page says how soon a submission is listed).
- ``POST archive/delete`` (JSON ``resource_id``; 视频稿件删除): the archive is gone (a
  ``deleted`` ledger entry); unknown or already deleted: -404.
- ``GET data/arc/stat?resource_id=`` (view, like, reply, share, favorite, coin, danmaku, growing
  after the archive opens), ``GET data/user/stat`` (follower, following, arc_passed_total),
  ``GET user/account/scopes``, ``GET user/account/info``, ``GET archive/type/list``.

Credentials: ``POST /_sandbox/secrets {"bilibili": {"client_id", "client_secret",
"access_token", "refresh_token", "openid", "scopes"}}``; nothing is adopted on first sight.
``POST /_sandbox/expire {"route": "bilibili", "what": "access" | "refresh"}``.

Guessed where the readable docs are silent [?]: every error code above, the title/description/
tag limits, the tids, rotation on refresh, 21012 for a repeated submission, that the upload host
needs no signature, the states' timing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kepubot.sandbox.base import (
    Request,
    Response,
    Setting,
    json_response,
    non_negative_number,
    positive_int,
    string_list,
)
from kepubot.sandbox.forms import FormError, read_form
from kepubot.sandbox.usertokens import PlatformError, UserTokenEndpoint, find_route

SCOPES = ["ARC_BASE", "DATA", "USER_INFO"]
SCOPE_OF = {
    "/arcopen/fn/archive/video/init": "ARC_BASE",
    "/arcopen/fn/archive/video/complete": "ARC_BASE",
    "/arcopen/fn/archive/cover/upload": "ARC_BASE",
    "/arcopen/fn/archive/add-by-utoken": "ARC_BASE",
    "/arcopen/fn/archive/view": "ARC_BASE",
    "/arcopen/fn/archive/viewlist": "ARC_BASE",
    "/arcopen/fn/archive/type/list": "ARC_BASE",
    "/arcopen/fn/data/arc/stat": "DATA",
    "/arcopen/fn/data/user/stat": "DATA",
    "/arcopen/fn/user/account/info": "USER_INFO",
    "/arcopen/fn/user/account/scopes": "",
    "/arcopen/fn/archive/delete": "ARC_BASE",
}
TIDS = [201, 124, 228, 207, 208, 209, 229, 122, 21]  # 科学科普, 社科·法律·心理, ... [?]
SIGNED = (
    "x-bili-accesskeyid",
    "x-bili-content-md5",
    "x-bili-signature-method",
    "x-bili-signature-nonce",
    "x-bili-signature-version",
    "x-bili-timestamp",
)
RATES = {"view": 300, "like": 20, "reply": 3, "share": 2, "favorite": 5, "coin": 4, "danmaku": 6}


BiliError = PlatformError


@dataclass
class _Grant:
    openid: str
    scopes: list[str]


@dataclass
class _Upload:
    openid: str
    parts: dict[int, int] = field(default_factory=dict)
    merged: bool = False
    resource_id: str | None = None


@dataclass
class _Archive:
    resource_id: str
    openid: str
    body: dict[str, Any]
    created_at: float
    sequence: int


class BilibiliOpenAPI(UserTokenEndpoint):
    route = "bilibili"
    prefix = "/arcopen/fn/"
    prefixes = ("/x/account-oauth2/", "/video/v2/")
    secret_params = frozenset({"access_token", "client_secret", "refresh_token", "upload_token"})
    secrets_key = "bilibili"
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "bilibili_review_seconds": Setting(
            60.0, non_negative_number, "a submitted archive is under review (state -30) this long"
        ),
        "bilibili_list_delay_seconds": Setting(
            30.0, non_negative_number, "a submitted archive is missing from viewlist this long"
        ),
        "bilibili_refuse_titles": Setting(
            [], lambda v: string_list(v) if v else [], "titles containing these are returned (-2)"
        ),
        "bilibili_timestamp_skew_seconds": Setting(
            600.0, non_negative_number, "how far x-bili-timestamp may be off (10 minutes)"
        ),
        "bilibili_access_expires_in": Setting(30 * 86400, positive_int, "access token life"),
        "bilibili_refresh_expires_in": Setting(60 * 86400, positive_int, "refresh token life"),
        "bilibili_app_scopes": Setting(
            list(SCOPES), lambda v: string_list(v) if v else [], "permissions the app holds"
        ),
        "bilibili_tids": Setting(
            list(TIDS),
            lambda v: [positive_int(i) for i in v] if isinstance(v, list) else positive_int(v),
            "category ids archive submission accepts",
        ),
    }

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._nonces: dict[str, float] = {}
        self._uploads: dict[str, _Upload] = {}
        self._covers: set[str] = set()
        self._archives: dict[str, _Archive] = {}
        self._sequence = 0

    def _zero_stats(self) -> dict[str, int]:
        return {"token_refreshes": 0, "parts_received": 0, "archives_submitted": 0}

    # -- control ---------------------------------------------------------------------------

    def set_secrets(self, value: Any) -> None:
        self._set_app_and_tokens(
            value, app=("client_id", "client_secret"), owner="openid", scopes=SCOPES, grant=_Grant
        )

    def reset(self) -> None:
        with self._lock:
            self._reset_tokens()
            self._nonces.clear()
            self._uploads.clear()
            self._covers.clear()
            self._archives.clear()
            self._sequence = 0

    def busy_response(self, request: Request | None = None) -> Response:
        return _answer(None, -503, "服务繁忙，请稍后再试")

    def error_response(
        self, code: int, request: Request | None = None, message: str = "sandbox error"
    ) -> Response:
        return _answer(None, code, message)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        routes = {
            "/x/account-oauth2/v1/refresh_token": ("POST", self._refresh_token),
            "/video/v2/part/upload": ("POST", self._part),
            "/arcopen/fn/archive/video/init": ("POST", self._init),
            "/arcopen/fn/archive/video/complete": ("POST", self._complete),
            "/arcopen/fn/archive/cover/upload": ("POST", self._cover),
            "/arcopen/fn/archive/add-by-utoken": ("POST", self._submit),
            "/arcopen/fn/archive/view": ("GET", self._view),
            "/arcopen/fn/archive/delete": ("POST", self._delete),
            "/arcopen/fn/archive/viewlist": ("GET", self._viewlist),
            "/arcopen/fn/archive/type/list": ("GET", self._types),
            "/arcopen/fn/data/arc/stat": ("GET", self._arc_stat),
            "/arcopen/fn/data/user/stat": ("GET", self._user_stat),
            "/arcopen/fn/user/account/info": ("GET", self._account),
            "/arcopen/fn/user/account/scopes": ("GET", self._scopes),
        }
        handler = find_route(
            request, routes, json_response(404, {"code": -404, "message": "啥都木有"})
        )
        if isinstance(handler, Response):
            return handler
        try:
            if path.startswith("/arcopen/"):
                openid = self._authorize(request, SCOPE_OF[path])
            else:
                openid = ""
            return _answer(handler(request, openid), 0, "0")
        except FormError as exc:
            return _answer(None, -400, f"请求错误: {exc}")
        except BiliError as exc:
            return _answer(None, exc.code, exc.message)

    def _authorize(self, request: Request, scope: str) -> str:
        headers = {name: request.headers.get(name) or "" for name in SIGNED}
        now = self.context.now()
        with self._lock:
            if self._client is None or headers["x-bili-accesskeyid"] != self._client[0]:
                raise BiliError(-3, "API校验密匙错误: accesskeyid")
            text = "\n".join(f"{name}:{headers[name]}" for name in sorted(SIGNED))
            wanted = hmac.new(self._client[1].encode(), text.encode(), "sha256").hexdigest()
            if not hmac.compare_digest(wanted, request.headers.get("Authorization") or ""):
                raise BiliError(-3, "API校验密匙错误: signature")
            if headers["x-bili-signature-method"] != "HMAC-SHA256":
                raise BiliError(-3, "API校验密匙错误: signature method")
            try:
                stamp = float(headers["x-bili-timestamp"])
            except ValueError:
                raise BiliError(-3, "API校验密匙错误: timestamp") from None
            if abs(now - stamp) > self.setting("bilibili_timestamp_skew_seconds"):
                raise BiliError(-3, "API校验密匙错误: timestamp 超过 10 分钟")
            nonce = headers["x-bili-signature-nonce"]
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < 600}
            if not nonce or nonce in self._nonces:
                raise BiliError(-3, "API校验密匙错误: nonce 重复")
            self._nonces[nonce] = now
            media = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            signed_body = request.body if media == "application/json" else b""
            if hashlib.md5(signed_body).hexdigest() != headers["x-bili-content-md5"]:
                raise BiliError(-3, "API校验密匙错误: content-md5")
            token = self._access.get(request.headers.get("access-token") or "")
            if token is None:
                raise BiliError(-101, "access_token 无效")
            if token.ended(now):
                raise BiliError(-658, "access_token 已过期")
            if scope and (
                scope not in self.setting("bilibili_app_scopes") or scope not in token.grant.scopes
            ):
                raise BiliError(-403, f"访问权限不足: {scope}")
            return token.grant.openid

    # -- OAuth -----------------------------------------------------------------------------

    def _refresh_token(self, request: Request, openid: str) -> dict[str, Any]:
        params = {k: v[-1] for k, v in read_form(request).fields.items() if v}
        now = self.context.now()
        with self._lock:
            if (
                self._client is None
                or (
                    params.get("client_id"),
                    params.get("client_secret"),
                )
                != self._client
            ):
                raise BiliError(-3, "client_id 或 client_secret 错误")
            if params.get("grant_type") != "refresh_token":
                raise BiliError(-400, "grant_type 错误")
            old = self._refresh.get(params.get("refresh_token") or "")
            if old is None or old.replaced or old.ended(now):
                raise BiliError(-101, "refresh_token 无效或已过期，请重新授权")
            old.replaced = True
            access, refresh = _token("bat"), _token("brt")
            self._access[access] = self._new_access(old.grant, now)
            self._refresh[refresh] = self._new_refresh(old.grant, now)
            self._stats["token_refreshes"] += 1
            return {
                "access_token": access,
                "expires_in": int(self._access[access].expires_at),
                "refresh_token": refresh,
                "scopes": list(old.grant.scopes),
            }

    # -- upload ----------------------------------------------------------------------------

    def _init(self, request: Request, openid: str) -> dict[str, Any]:
        body = _json(request)
        if not str(body.get("name") or "").strip():
            raise BiliError(-400, "请求错误: name")
        if str(body.get("utype", "0")) not in ("0", "1"):
            raise BiliError(-400, "请求错误: utype")
        token = secrets.token_hex(16)
        with self._lock:
            self._uploads[token] = _Upload(openid)
        return {"upload_token": token}

    def _upload_of(self, request: Request) -> tuple[str, _Upload]:
        token = request.param("upload_token") or ""
        upload = self._uploads.get(token)
        if upload is None:
            raise BiliError(-404, "upload_token 不存在")
        return token, upload

    def _part(self, request: Request, openid: str) -> dict[str, Any] | None:
        raw = request.param("part_number") or ""
        if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise BiliError(-400, "请求错误: part_number")
        if not request.body:
            raise BiliError(-400, "请求错误: 分片为空")
        with self._lock:
            _, upload = self._upload_of(request)
            upload.parts[int(raw)] = len(request.body)
            self._stats["parts_received"] += 1
        return None

    def _complete(self, request: Request, openid: str) -> dict[str, Any] | None:
        with self._lock:
            _, upload = self._upload_of(request)
            if upload.openid != openid:
                raise BiliError(-403, "upload_token 不属于该用户")
            numbers = sorted(upload.parts)
            if not numbers or numbers != list(range(1, len(numbers) + 1)):
                raise BiliError(-400, "请求错误: 分片不完整")
            upload.merged = True
        return None

    def _cover(self, request: Request, openid: str) -> dict[str, Any]:
        part = read_form(request, include_query=False).file("file")
        if part is None or not part.data:
            raise BiliError(-400, "请求错误: 缺少 file")
        if not (part.data.startswith(b"\x89PNG") or part.data.startswith(b"\xff\xd8")):
            raise BiliError(-400, "请求错误: 封面须为 JPEG 或 PNG")
        url = f"https://archive.biliimg.com/bfs/archive/{hashlib.sha1(part.data).hexdigest()}.jpg"
        with self._lock:
            self._covers.add(url)
        return {"url": url}

    def _submit(self, request: Request, openid: str) -> dict[str, Any]:
        body = _json(request)
        now = self.context.now()
        ledger = self.context.ledger
        with self._lock:
            _, upload = self._upload_of(request)
            if upload.openid != openid:
                raise BiliError(-403, "upload_token 不属于该用户")
            if upload.resource_id is not None:
                ledger.duplicate(
                    self.route, openid, body, now, kind="archive", id=upload.resource_id
                )
                raise BiliError(21012, "该视频已投稿，请勿重复提交")
            if not upload.merged:
                raise BiliError(-400, "视频未上传完成（未合片）")
            self._check_archive(body)
            self._sequence += 1
            resource_id = "BV1" + "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(9)
            )
            upload.resource_id = resource_id
            self._archives[resource_id] = _Archive(resource_id, openid, body, now, self._sequence)
            ledger.accept(self.route, openid, body, now, kind="archive", id=resource_id)
            self._stats["archives_submitted"] += 1
        return {"resource_id": resource_id}

    def _check_archive(self, body: dict[str, Any]) -> None:
        title = body.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 80:
            raise BiliError(-400, "标题不能为空且不能超过 80 字")
        if body.get("tid") not in self.setting("bilibili_tids"):
            raise BiliError(-400, f"分区不存在: tid {body.get('tid')!r}")
        tags = [t for t in str(body.get("tag") or "").split(",") if t.strip()]
        if not tags or len(tags) > 12:
            raise BiliError(-400, "标签数量须为 1 到 12 个")
        if body.get("copyright") not in (1, 2):
            raise BiliError(-400, "copyright 须为 1 或 2")
        if body.get("copyright") == 2 and not str(body.get("source") or "").strip():
            raise BiliError(-400, "转载稿件须填写 source")
        if body.get("cover") not in self._covers:
            raise BiliError(-400, "封面无效，请先上传封面")
        if len(str(body.get("desc") or "")) > 250:
            raise BiliError(-400, "简介不能超过 250 字")

    # -- reading ---------------------------------------------------------------------------

    def _state(self, archive: _Archive, now: float) -> tuple[int, str, str]:
        if now - archive.created_at < self.setting("bilibili_review_seconds"):
            return -30, "创建已提交", ""
        title = str(archive.body.get("title") or "")
        for word in self.setting("bilibili_refuse_titles"):
            if word in title:
                return -2, "打回", f"稿件标题含有不适宜内容「{word}」，请修改后重新投稿"
        return 0, "开放浏览", ""

    def _item(self, archive: _Archive, now: float) -> dict[str, Any]:
        state, desc, reason = self._state(archive, now)
        body = archive.body
        return {
            "resource_id": archive.resource_id,
            "title": body.get("title"),
            "cover": body.get("cover"),
            "tid": body.get("tid"),
            "tag": body.get("tag"),
            "desc": body.get("desc"),
            "copyright": body.get("copyright"),
            "no_reprint": body.get("no_reprint"),
            "ctime": int(archive.created_at),
            "ptime": int(archive.created_at + self.setting("bilibili_review_seconds")),
            "addit_info": {"state": state, "state_desc": desc, "reject_reason": reason},
            "video_info": {
                "cid": 26_000_000_000 + archive.sequence,
                "share_url": f"https://www.bilibili.com/video/{archive.resource_id}?share_source=open_plat",
            },
        }

    def _mine(self, request: Request, openid: str) -> _Archive:
        archive = self._archives.get(request.param("resource_id") or "")
        if archive is None or archive.openid != openid:
            raise BiliError(-404, "稿件不存在")
        return archive

    def _view(self, request: Request, openid: str) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            return self._item(self._mine(request, openid), now)

    def _delete(self, request: Request, openid: str) -> None:
        resource_id = str(_json(request).get("resource_id") or "")
        now = self.context.now()
        with self._lock:
            archive = self._archives.get(resource_id)
            if archive is None or archive.openid != openid:
                raise BiliError(-404, "稿件不存在")
            del self._archives[resource_id]
            self.context.ledger.delete(self.route, openid, now, kind="archive", id=resource_id)

    def _viewlist(self, request: Request, openid: str) -> dict[str, Any]:
        pn = _int(request.param("pn"), 1)
        ps = min(max(_int(request.param("ps"), 20), 1), 50)
        now = self.context.now()
        delay = self.setting("bilibili_list_delay_seconds")
        with self._lock:
            mine = [
                a
                for a in self._archives.values()
                if a.openid == openid and now - a.created_at >= delay
            ]
            mine.sort(key=lambda a: a.sequence, reverse=True)
            page = [self._item(a, now) for a in mine[(pn - 1) * ps : pn * ps]]
        return {"list": page, "page": {"pn": pn, "ps": ps, "total": len(mine)}}

    def _arc_stat(self, request: Request, openid: str) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            archive = self._mine(request, openid)
            state, _, _ = self._state(archive, now)
            opened = archive.created_at + self.setting("bilibili_review_seconds")
            hours = max(0.0, now - opened) / 3600 if state == 0 else 0.0
            factor = 1 + archive.sequence % 3
            figures = {k: int(rate * hours * factor) for k, rate in RATES.items()}
        return {**figures, "title": archive.body.get("title"), "ptime": int(opened)}

    def _user_stat(self, request: Request, openid: str) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            passed = [
                a
                for a in self._archives.values()
                if a.openid == openid and self._state(a, now)[0] == 0
            ]
        return {
            "follower": 1000 + 25 * len(passed),
            "following": 12,
            "arc_passed_total": len(passed),
        }

    def _types(self, request: Request, openid: str) -> list[dict[str, Any]]:
        children = [
            {"id": t, "name": f"分区 {t}", "parent": 36, "description": ""}
            for t in self.setting("bilibili_tids")
        ]
        return [{"id": 36, "name": "知识", "parent": 0, "description": "", "children": children}]

    def _account(self, request: Request, openid: str) -> dict[str, Any]:
        return {
            "name": "科普测试号",
            "face": "https://i0.hdslb.com/bfs/face/member/noface.jpg",
            "openid": openid,
        }

    def _scopes(self, request: Request, openid: str) -> dict[str, Any]:
        token = self._access.get(request.headers.get("access-token") or "")
        granted = token.grant.scopes if token else []
        held = [s for s in granted if s in self.setting("bilibili_app_scopes")]
        return {"openid": openid, "scopes": held}


def _answer(data: Any, code: int, message: str) -> Response:
    payload: dict[str, Any] = {
        "code": code,
        "message": message,
        "ttl": 1,
        "request_id": secrets.token_hex(16),
    }
    if data is not None:
        payload["data"] = data
    return json_response(200, payload)


def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body.decode("utf-8") or "{}")
    except ValueError:
        raise BiliError(-400, "请求错误: body 不是 JSON") from None
    if not isinstance(body, dict):
        raise BiliError(-400, "请求错误: body 不是 JSON 对象")
    return body


def _int(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise BiliError(-400, "请求错误: 分页参数")
    return int(raw)


def _token(prefix: str) -> str:
    return prefix + secrets.token_hex(20)
