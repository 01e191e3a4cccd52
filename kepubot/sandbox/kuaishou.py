"""Emulated Kuaishou open platform (docs/platforms.md §13 and §11), written from the platform's
documentation (open.kuaishou.com / mp.kuaishou.com platformDocs: refreshToken, 创建视频,
查询视频, GetUserInfo), not from our channel.

Answers are HTTP 200 JSON with ``result`` (1 on success) and, on errors, ``error_msg``.

- ``GET /oauth2/refresh_token`` (``app_id``, ``app_secret``, ``refresh_token``,
  ``grant_type=refresh_token``; POST accepted too): ``{access_token, expires_in,
  refresh_token, refresh_token_expires_in, scopes}``. The new refresh token replaces the old
  one and inherits its expiry (documented); expired, replaced or unknown: 100200101.
- Under ``/openapi/`` ``app_id`` and ``access_token`` in the query: a wrong app_id 100200104,
  an unknown token 100200102 (documented: 无效的 access_token), an expired one 100200103; a
  scope the app (``kuaishou_app_scopes``) or the user lacks 100200105.
  ``user_video_publish`` for ``photo/start_upload`` and ``photo/publish``,
  ``user_video_info`` for ``photo/list`` and ``photo/info``, ``user_info`` for ``user_info``.
- ``POST photo/start_upload`` → ``upload_token`` and ``endpoint`` (this server's own host).
- On the endpoint (the upload_token is the credential): ``POST /api/upload`` (binary body),
  ``POST /api/upload/multipart`` (multipart ``file``), ``POST /api/upload/fragment
  ?fragment_id=`` (from 0), ``GET /api/upload/resume``, ``POST /api/upload/complete
  ?fragment_count=`` (fragments 0..N-1, else 10000200).
- ``POST photo/publish?upload_token=`` multipart ``caption`` and ``cover`` (a PNG or JPEG
  file): ``video_info{photo_id, caption, cover, play_url, create_time (ms), like_count,
  comment_count, view_count, pending}``. Nothing uploaded: 10000200; an upload_token published
  before: 10000200 and a ``duplicates`` ledger entry.
- A photo is ``pending`` for ``kuaishou_pending_seconds``; then published, or gone (refused:
  ``photo/info`` answers 100200107 作品不存在, and the list leaves it out) when its caption
  contains one of ``kuaishou_refuse_captions``. ``photo/list`` shows a photo only
  ``kuaishou_list_delay_seconds`` after publishing (our hardest plausible case), newest first,
  ``cursor`` the photo_id after which to continue, ``count`` up to 200.

``POST photo/delete?photo_id=`` (删除视频) takes a photo down (a ``deleted`` ledger entry);
unknown or already deleted: 100200107.

Credentials: ``POST /_sandbox/secrets {"kuaishou": {"app_id", "app_secret", "access_token",
"refresh_token", "open_id", "scopes"}}``; nothing is adopted on first sight. ``POST
/_sandbox/expire {"route": "kuaishou", "what": "access" | "refresh"}``.

Guessed where the readable docs are silent [?]: every code but 1, 100200102 and 10000200; the
lifetimes (48 hours, 180 days); ``pending`` as the review state; how a refusal shows.
"""

from __future__ import annotations

import secrets
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
from kepubot.sandbox.usertokens import PlatformError, Token, UserTokenEndpoint, find_route

SCOPES = ["user_info", "user_video_publish", "user_video_info"]
SCOPE_OF = {
    "/openapi/photo/start_upload": "user_video_publish",
    "/openapi/photo/publish": "user_video_publish",
    "/openapi/photo/list": "user_video_info",
    "/openapi/photo/info": "user_video_info",
    "/openapi/user_info": "user_info",
    "/openapi/photo/delete": "user_video_publish",
}
RATES = {"view_count": 200, "like_count": 15, "comment_count": 2}


KsError = PlatformError


@dataclass
class _Grant:
    open_id: str
    scopes: list[str]


@dataclass
class _Upload:
    open_id: str
    whole: int = 0
    fragments: dict[int, int] = field(default_factory=dict)
    complete: bool = False
    photo_id: str | None = None


@dataclass
class _Photo:
    photo_id: str
    open_id: str
    caption: str
    created_at: float
    sequence: int


class KuaishouOpenAPI(UserTokenEndpoint):
    route = "kuaishou"
    prefix = "/openapi/"
    prefixes = ("/oauth2/refresh_token", "/api/upload")
    secret_params = frozenset({"access_token", "app_secret", "refresh_token", "upload_token"})
    secrets_key = "kuaishou"
    SETTINGS: ClassVar[dict[str, Setting]] = {
        "kuaishou_pending_seconds": Setting(
            60.0, non_negative_number, "a published photo is pending (in review) this long"
        ),
        "kuaishou_list_delay_seconds": Setting(
            30.0, non_negative_number, "a published photo is missing from photo/list this long"
        ),
        "kuaishou_refuse_captions": Setting(
            [], lambda v: string_list(v) if v else [], "captions containing these are refused"
        ),
        "kuaishou_access_expires_in": Setting(48 * 3600, positive_int, "access token life"),
        "kuaishou_refresh_expires_in": Setting(180 * 86400, positive_int, "refresh token life"),
        "kuaishou_app_scopes": Setting(
            list(SCOPES), lambda v: string_list(v) if v else [], "scopes the app holds"
        ),
    }

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._uploads: dict[str, _Upload] = {}
        self._photos: dict[str, _Photo] = {}
        self._sequence = 0

    def _zero_stats(self) -> dict[str, int]:
        return {"token_refreshes": 0, "fragments_received": 0, "photos_published": 0}

    # -- control ---------------------------------------------------------------------------

    def set_secrets(self, value: Any) -> None:
        self._set_app_and_tokens(
            value, app=("app_id", "app_secret"), owner="open_id", scopes=SCOPES, grant=_Grant
        )

    def reset(self) -> None:
        with self._lock:
            self._reset_tokens()
            self._uploads.clear()
            self._photos.clear()
            self._sequence = 0

    def busy_response(self, request: Request | None = None) -> Response:
        return _error(100100500, "服务内部错误，请稍后重试")

    def error_response(
        self, code: int, request: Request | None = None, message: str = "sandbox error"
    ) -> Response:
        return _error(code, message)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        routes = {
            "/oauth2/refresh_token": (("GET", "POST"), self._refresh_token),
            "/openapi/photo/start_upload": (("POST",), self._start_upload),
            "/openapi/photo/publish": (("POST",), self._publish),
            "/openapi/photo/list": (("GET",), self._list),
            "/openapi/photo/info": (("GET",), self._info),
            "/openapi/photo/delete": (("POST",), self._delete),
            "/openapi/user_info": (("GET",), self._user_info),
            "/api/upload": (("POST",), self._upload_whole),
            "/api/upload/multipart": (("POST",), self._upload_multipart),
            "/api/upload/fragment": (("POST",), self._fragment),
            "/api/upload/resume": (("GET",), self._resume),
            "/api/upload/complete": (("POST",), self._complete),
        }
        handler = find_route(
            request, routes, json_response(404, {"result": 404, "error_msg": "not found"})
        )
        if isinstance(handler, Response):
            return handler
        try:
            open_id = self._authorize(request, SCOPE_OF[path]) if path in SCOPE_OF else ""
            return json_response(200, {"result": 1, **handler(request, open_id)})
        except FormError as exc:
            return _error(10000200, f"参数错误: {exc}")
        except KsError as exc:
            return _error(exc.code, exc.message)

    def _authorize(self, request: Request, scope: str) -> str:
        now = self.context.now()
        with self._lock:
            if self._client is None or request.param("app_id") != self._client[0]:
                raise KsError(100200104, "app_id 错误")
            token = self._access.get(request.param("access_token") or "")
            if token is None:
                raise KsError(100200102, "无效的 access_token")
            if token.ended(now):
                raise KsError(100200103, "access_token 已过期")
            if scope not in self.setting("kuaishou_app_scopes") or scope not in token.grant.scopes:
                raise KsError(100200105, f"用户未授权该 scope: {scope}")
            return token.grant.open_id

    # -- OAuth -----------------------------------------------------------------------------

    def _refresh_token(self, request: Request, _: str) -> dict[str, Any]:
        params = {k: v[-1] for k, v in read_form(request).fields.items() if v}
        now = self.context.now()
        with self._lock:
            app = (params.get("app_id"), params.get("app_secret"))
            if self._client is None or app != self._client:
                raise KsError(100200104, "app_id 或 app_secret 错误")
            if params.get("grant_type") != "refresh_token":
                raise KsError(10000200, "参数错误: grant_type")
            old = self._refresh.get(params.get("refresh_token") or "")
            if old is None or old.replaced or old.ended(now):
                raise KsError(100200101, "refresh_token 无效或已过期，请重新授权")
            old.replaced = True
            access, refresh = "ksat" + secrets.token_hex(20), "ksrt" + secrets.token_hex(20)
            lifetime = self.setting("kuaishou_access_expires_in")
            self._access[access] = Token(old.grant, now + lifetime)
            self._refresh[refresh] = Token(old.grant, old.expires_at)  # inherits the expiry
            self._stats["token_refreshes"] += 1
            return {
                "access_token": access,
                "expires_in": lifetime,
                "refresh_token": refresh,
                "refresh_token_expires_in": int(old.expires_at - now),
                "open_id": old.grant.open_id,
                "scopes": list(old.grant.scopes),
            }

    # -- upload ----------------------------------------------------------------------------

    def _start_upload(self, request: Request, open_id: str) -> dict[str, Any]:
        token = secrets.token_hex(12)
        with self._lock:
            self._uploads[token] = _Upload(open_id)
        return {"upload_token": token, "endpoint": request.host}

    def _upload_of(self, request: Request) -> _Upload:
        upload = self._uploads.get(request.param("upload_token") or "")
        if upload is None:
            raise KsError(10000200, "参数错误: upload_token 无效")
        return upload

    def _upload_whole(self, request: Request, _: str) -> dict[str, Any]:
        if not request.body:
            raise KsError(10000200, "参数错误: 文件为空")
        with self._lock:
            upload = self._upload_of(request)
            upload.whole, upload.complete = len(request.body), True
        return {}

    def _upload_multipart(self, request: Request, _: str) -> dict[str, Any]:
        part = read_form(request, include_query=False).file("file")
        if part is None or not part.data:
            raise KsError(10000200, "参数错误: 缺少 file")
        with self._lock:
            upload = self._upload_of(request)
            upload.whole, upload.complete = len(part.data), True
        return {}

    def _fragment(self, request: Request, _: str) -> dict[str, Any]:
        raw = request.param("fragment_id") or ""
        if not (raw.isascii() and raw.isdigit()) or not request.body:
            raise KsError(10000200, "参数错误: fragment_id 或分片为空")
        with self._lock:
            upload = self._upload_of(request)
            upload.fragments[int(raw)] = len(request.body)
            self._stats["fragments_received"] += 1
        return {"checksum": "", "size": len(request.body)}

    def _resume(self, request: Request, _: str) -> dict[str, Any]:
        with self._lock:
            upload = self._upload_of(request)
            return {
                "existed": bool(upload.fragments),
                "fragment_index": max(upload.fragments, default=-1),
            }

    def _complete(self, request: Request, _: str) -> dict[str, Any]:
        raw = request.param("fragment_count") or ""
        if not (raw.isascii() and raw.isdigit()):
            raise KsError(10000200, "参数错误: fragment_count")
        with self._lock:
            upload = self._upload_of(request)
            if sorted(upload.fragments) != list(range(int(raw))) or not upload.fragments:
                raise KsError(10000200, "参数错误: 分片不完整")
            upload.complete = True
        return {}

    # -- photos ----------------------------------------------------------------------------

    def _publish(self, request: Request, open_id: str) -> dict[str, Any]:
        form = read_form(request, include_query=False)
        caption = form.get("caption") or ""
        cover = form.file("cover")
        now = self.context.now()
        ledger = self.context.ledger
        body = {"caption": caption, "upload_token": request.param("upload_token")}
        with self._lock:
            upload = self._upload_of(request)
            if upload.open_id != open_id:
                raise KsError(10000200, "参数错误: upload_token 不属于该用户")
            if upload.photo_id is not None:
                ledger.duplicate(self.route, open_id, body, now, kind="photo", id=upload.photo_id)
                raise KsError(10000200, "参数错误: upload_token 已使用")
            if not upload.complete:
                raise KsError(10000200, "参数错误: 视频未上传完成")
            if cover is None or not (
                cover.data.startswith(b"\x89PNG") or cover.data.startswith(b"\xff\xd8")
            ):
                raise KsError(10000200, "参数错误: cover 须为 JPEG 或 PNG 图片")
            self._sequence += 1
            photo_id = f"3x{secrets.token_hex(7)}"
            upload.photo_id = photo_id
            photo = _Photo(photo_id, open_id, caption, now, self._sequence)
            self._photos[photo_id] = photo
            ledger.accept(self.route, open_id, body, now, kind="photo", id=photo_id)
            self._stats["photos_published"] += 1
            return {"video_info": self._json(photo, now)}

    def _pending(self, photo: _Photo, now: float) -> bool:
        return now - photo.created_at < self.setting("kuaishou_pending_seconds")

    def _refused(self, photo: _Photo, now: float) -> bool:
        return not self._pending(photo, now) and any(
            w in photo.caption for w in self.setting("kuaishou_refuse_captions")
        )

    def _json(self, photo: _Photo, now: float) -> dict[str, Any]:
        pending = self._pending(photo, now)
        hours = (
            0.0
            if pending
            else (now - photo.created_at - self.setting("kuaishou_pending_seconds")) / 3600
        )
        factor = 1 + photo.sequence % 3
        return {
            "photo_id": photo.photo_id,
            "caption": photo.caption,
            "cover": f"https://p1.a.yximgs.com/upic/{photo.photo_id}.jpg",
            "play_url": f"https://txmov2.a.yximgs.com/upic/{photo.photo_id}.mp4",
            "create_time": int(photo.created_at * 1000),
            "pending": pending,
            **{k: int(rate * hours * factor) for k, rate in RATES.items()},
        }

    def _list(self, request: Request, open_id: str) -> dict[str, Any]:
        raw = request.param("count") or "20"
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 200:
            raise KsError(10000200, "参数错误: count")
        cursor = request.param("cursor") or ""
        now = self.context.now()
        delay = self.setting("kuaishou_list_delay_seconds")
        with self._lock:
            mine = [
                p
                for p in self._photos.values()
                if p.open_id == open_id
                and now - p.created_at >= delay
                and not self._refused(p, now)
            ]
            mine.sort(key=lambda p: p.sequence, reverse=True)
            if cursor:
                ids = [p.photo_id for p in mine]
                mine = mine[ids.index(cursor) + 1 :] if cursor in ids else []
            return {"video_list": [self._json(p, now) for p in mine[: int(raw)]]}

    def _info(self, request: Request, open_id: str) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            photo = self._photos.get(request.param("photo_id") or "")
            if photo is None or photo.open_id != open_id or self._refused(photo, now):
                raise KsError(100200107, "作品不存在")
            return {"video_info": self._json(photo, now)}

    def _delete(self, request: Request, open_id: str) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            photo_id = request.param("photo_id") or ""
            photo = self._photos.get(photo_id)
            if photo is None or photo.open_id != open_id:
                raise KsError(100200107, "作品不存在")
            del self._photos[photo_id]
            self.context.ledger.delete(self.route, open_id, now, kind="photo", id=photo_id)
        return {}

    def _user_info(self, request: Request, open_id: str) -> dict[str, Any]:
        now = self.context.now()
        with self._lock:
            shown = [
                p
                for p in self._photos.values()
                if p.open_id == open_id and not self._pending(p, now)
            ]
        return {
            "user_info": {
                "name": "科普测试号",
                "sex": "F",
                "fan": 2000 + 40 * len(shown),
                "follow": 30,
                "head": "https://p1.a.yximgs.com/uhead/default.jpg",
                "bigHead": "https://p1.a.yximgs.com/uhead/default_big.jpg",
                "city": "",
            }
        }


def _error(code: int, message: str) -> Response:
    return json_response(200, {"result": code, "error_msg": message})
