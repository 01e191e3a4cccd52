"""Douyin's paths and error codes as data (docs/platforms.md §4.1, §4.2), and reading its answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from kepubot.channels.openvideo import as_dict as _dict
from kepubot.channels.openvideo import as_int as _int
from kepubot.channels.openvideo import one_line

# --- the platform, as data ---------------------------------------------------------------------

#: Paths under api_base. The video interfaces are the current /api/douyin/v1/video/ ones only
#: (developer.open-douyin.com, video-management: video-upload, video-part-upload-init,
#: video-part-upload, video-part-upload-complete, create-video, account-video-list,
#: video-data): the token goes in the ``access-token`` header and ``open_id`` in the query. The
#: older /video/part/*, /video/list/, /video/data/, /video/upload/ and /video/create/ paths
#: (token in the query) are retired and never called.
PATHS: dict[str, str] = {
    "refresh": "oauth/refresh_token/",  # account-permission/refresh-access-token [src]
    "renew": "oauth/renew_refresh_token/",  # account-permission/refresh-token [src]
    "upload": "api/douyin/v1/video/upload_video/",
    "part_init": "api/douyin/v1/video/init_video_part_upload/",
    "part_upload": "api/douyin/v1/video/upload_video_part/",  # ?upload_id=&part_number=
    "part_complete": "api/douyin/v1/video/complete_video_part_upload/",  # ?upload_id=
    "create": "api/douyin/v1/video/create_video/",
    "list": "api/douyin/v1/video/video_list/",  # GET ?cursor=&count=
    "data": "api/douyin/v1/video/video_data/",  # POST {"item_ids": [...]}
}

#: The scope each call needs (the capability an application must hold and the user grant).
#: video.create.bind: "代替用户发布内容到抖音" [src]; video.list.bind for the account's video
#: list and video.data.bind for video_data, as the SDKs annotate them [gk]; renewing the refresh
#: token needs the renew_refresh_token permission [src].
SCOPE_OF: dict[str, str] = {
    "upload": "video.create.bind",
    "part_init": "video.create.bind",
    "part_upload": "video.create.bind",
    "part_complete": "video.create.bind",
    "create": "video.create.bind",
    "list": "video.list.bind",
    "data": "video.data.bind",
    "renew": "renew_refresh_token",
}

#: What each scope is for, in the user's language (zh, en).
NEEDED_FOR: dict[str, tuple[str, str]] = {
    "video.create.bind": ("发布视频", "publishing videos"),
    "video.list.bind": (
        "查询账号视频列表（核对是否已发布）",
        "listing the account's videos (lookup)",
    ),
    "video.data.bind": ("获取视频数据（播放、点赞等）", "collecting reach figures"),
    "renew_refresh_token": ("续期 refresh_token", "renewing the refresh token"),
}

#: The permission refusal, in the user's language: the application (or the user's grant) lacks
#: the capability the call needs.
SCOPE_MESSAGE: dict[str, str] = {
    "zh": (
        "该账号授权的抖音应用缺少 {scope} 能力（用于{needed_for}）：请在抖音开放平台为应用开通"
        "该能力，再让账号重新授权（{detail}）"
    ),
    "en": (
        "this account's application lacks {scope} (needed for {needed_for}): enable the"
        " capability for the app on the Douyin open platform, then have the account authorise"
        " again ({detail})"
    ),
}

#: error_code -> kind. Unknown non-zero codes are permanent. Sources: the open platform's
#: status-code page (通用状态码, new 280xxxxx and old 2100xxx/2190xxx tables), the OAuth pages
#: (refresh-access-token, refresh-token); docs/platforms.md §4.2.
#: auth: the access token is refused; refresh it once (single-flight) and repeat the call once.
#: refresh_expired: the user must authorize the app again -> AuthExpired (channel paused).
#: scope: the application lacks the capability or the user did not grant it -> AuthExpired with
#: SCOPE_MESSAGE. denied: the app is banned, its key wrong, the token not this open_id's ->
#: AuthExpired. offline: the capability's API was taken offline -> AuthExpired (find falls back
#: to the proofs it has). rate_limited -> RateLimited. busy, transient: on create the video may
#: exist (OutcomeUnknown), elsewhere Transient. permanent -> Permanent.
ERRORS: dict[int, str] = {
    2190008: "auth",  # access_token expired [src]
    10008: "auth",  # access_token expired (older code) [src]
    2190002: "auth",  # access_token invalid [src]
    28001008: "auth",  # access_token expired, refresh or authorise again [src]
    28001003: "auth",  # token invalid, /api/ endpoints [src]
    10010: "refresh_expired",  # refresh_token expired: authorize again [src]
    # renew_refresh_token: "超过刷新次数限制" (5 renewals), authorise again [src]
    10020: "refresh_expired",
    28001016: "denied",  # the application is banned or offline [src]
    28001015: "denied",  # access_token and open_id do not belong together [src]
    10013: "denied",  # wrong client_key or client_secret [src]
    28001018: "scope",  # 应用未获得该能力: the application lacks the capability [src]
    28001012: "scope",  # 用户未授权该OpenAPI: the user did not grant the scope [src]
    28001014: "scope",  # 应用未授权任何能力 [src]
    28001019: "scope",  # 当前能力已被封禁或下线: the capability was banned [src]
    2190004: "scope",  # older: 应用未获得该能力 [src]
    2100007: "scope",  # older: 无权限操作 [src]
    10004: "scope",  # OAuth: 权限不足 (e.g. renew_refresh_token not granted) [src]
    28001056: "offline",  # 该能力API已下线，不再支持调用 [src]
    28003018: "rate_limited",  # 请求频率过高 [src]
    28003017: "rate_limited",  # quota 已用完 [src]
    28001052: "rate_limited",  # 获取平台能力存在异常风险: control the request rate [src]
    # "requests too frequent", seen on one API with a QPS limit of 100 [src]
    2118110: "rate_limited",
    2100004: "busy",  # system busy, retry [src]
    28001005: "busy",  # 系统繁忙 [src]
    28001006: "transient",  # 网络调用错误，请重试 [src]
    2100005: "permanent",  # invalid parameter [src]
    28001007: "permanent",  # 参数不合法 [src]
    10002: "permanent",  # parameter error [src]
    10005: "permanent",  # parameter error [src]
}

#: Upload limits (video-management upload_video page): above 128 MB a video must go in parts;
#: parts are at least 5 MB (20 MB recommended), the whole video at most 4 GB [src]. No page we
#: found gives a largest part; a part larger than the whole-file limit is not plausible, so 128
#: bounds chunk_size_mb [gk].
WHOLE_UPLOAD_LIMIT_MB = 128
MIN_PART_MB = 5
MAX_PART_MB = WHOLE_UPLOAD_LIMIT_MB
MAX_VIDEO_BYTES = 4 * 1024 * 1024 * 1024
DESCRIPTION_CHARS = 160  # of Douyin's description, in an error message
RATE_LIMIT_RETRY_AFTER = 60.0  # seconds; no source says how long to wait [gk]

# A create refused because its video_id was already used: an earlier create went through. No
# source gives the code or wording, so the description is matched [?].
_VIDEO_ID_USED = re.compile(
    r"video_id.{0,40}(used|已使用|已被使用|重复)|(已使用|已被使用|重复使用).{0,40}video_id",
    re.I | re.S,
)
# A refresh refused because the refresh token expired, whatever the code.
_REFRESH_EXPIRED = re.compile(
    r"refresh[_ ]?token.{0,40}(expire|过期|失效)|(过期|失效).{0,40}refresh[_ ]?token", re.I | re.S
)


def _error_of(body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
    """(error code, one-line detail) of a Douyin answer, None when it is not one.

    Classic answers carry ``data.error_code``/``description`` and ``extra.error_code``/
    ``description``/``sub_error_code``/``sub_description``/``logid``; some newer ones
    ``err_no``/``err_msg``/``log_id`` (docs/platforms.md §4.2). A non-zero code anywhere wins.
    """
    data, extra = _dict(body.get("data")), _dict(body.get("extra"))
    codes = [
        c
        for c in (
            _int(data.get("error_code")),
            _int(extra.get("error_code")),
            _int(body.get("err_no")),
        )
        if c is not None
    ]
    if not codes:
        return None, ""
    code = next((c for c in codes if c != 0), 0)
    if code == 0:
        return 0, ""
    description = next(
        (
            str(v)
            for v in (data.get("description"), extra.get("description"), body.get("err_msg"))
            if v
        ),
        "no description",
    )
    detail = f"error_code {code}: {description}"
    sub_code, sub = _int(extra.get("sub_error_code")), extra.get("sub_description")
    if sub_code or sub:
        detail += f" (sub_error_code {sub_code}: {sub})"
    detail = one_line(detail, secrets, DESCRIPTION_CHARS)
    logid = extra.get("logid") or body.get("log_id")
    if logid:
        detail += f"; logid {str(logid)[:40]}"
    return code, detail


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_unix(value: Any) -> datetime | None:
    seconds = _int(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
