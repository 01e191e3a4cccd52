"""Kuaishou open platform paths, result codes and limits as data (docs/platforms.md §13), and
reading its answers.

Sources: the open platform's documentation (open.kuaishou.com / mp.kuaishou.com
platformDocs: 快手登录 refreshToken, 内容管理 创建视频 (发起上传, 上传视频 A/B, 发布视频),
查询视频 (查询用户视频列表, 查询单一视频详情), 用户信息 GetUserInfo) [src], and open-source
clients of the same interfaces [gk]. Facts marked [?] were found in no readable source.
"""

from __future__ import annotations

import re
from typing import Any

from kepubot.channels.openvideo import as_int, one_line

#: Paths under api_base. The upload paths are under the ``endpoint`` host that start_upload
#: returns, over http:// as the documentation says ("上传接口均为http://{host}/...") [src].
PATHS: dict[str, str] = {
    "refresh": "oauth2/refresh_token",  # GET app_id, app_secret, refresh_token, grant_type [src]
    "user_info": "openapi/user_info",  # GetUserInfo: fan, follow [src]
    "start_upload": "openapi/photo/start_upload",  # POST → upload_token, endpoint [src]
    "publish": "openapi/photo/publish",  # POST ?upload_token=, multipart caption, cover [src]
    "list": "openapi/photo/list",  # GET cursor (a photo_id), count (≤ 200) [src]
    "info": "openapi/photo/info",  # GET photo_id [src]
    "delete": "openapi/photo/delete",  # POST photo_id (删除视频) [src]
}
UPLOAD_PATHS: dict[str, str] = {
    "upload": "api/upload",  # A.1 whole file as the binary body [src]
    "fragment": "api/upload/fragment",  # B.1 ?upload_token=&fragment_id= (from 0) [src]
    "complete": "api/upload/complete",  # B.3 ?upload_token=&fragment_count= [src]
}

#: The scope each call needs: user_video_publish to upload and publish [src: 发起上传
#: "scope : user_video_publish"]; user_video_info for the list and info [gk: SDK annotations];
#: user_info for the profile (followers) [gk].
SCOPE_OF: dict[str, str] = {
    "start_upload": "user_video_publish",
    "publish": "user_video_publish",
    "list": "user_video_info",
    "info": "user_video_info",
    "user_info": "user_info",
    "delete": "user_video_publish",  # no readable page names the delete scope [?]
}
NEEDED_FOR: dict[str, tuple[str, str]] = {
    "user_video_publish": ("发布视频", "publishing videos"),
    "user_video_info": ("查询视频列表与数据", "looking up videos and their figures"),
    "user_info": ("读取粉丝数", "reading the follower count"),
}

#: result -> kind. 1 is success [src]. Sources: 100200102 无效的 access_token and 10000200 参数错误
#: [src: the open platform's upload pages]; the others are what open-source clients treat as
#: token expiry or rate limiting [?]. Unknown codes are permanent, except that an error_msg
#: naming an expired or invalid access_token is treated as one (_TOKEN_TEXT).
ERRORS: dict[int, str] = {
    100200102: "auth",  # 无效的 access_token [src]
    100200103: "auth",  # access_token 过期 [?]
    100200101: "refresh_expired",  # refresh_token 无效或过期 [?]
    100200104: "denied",  # app_id 或 app_secret 错误 [?]
    100200105: "scope",  # 用户未授权该 scope [?]
    100100402: "rate_limited",  # [?]
    100100403: "rate_limited",  # [?]
    100100404: "rate_limited",  # [?]
    200100410: "rate_limited",  # [?]
    100100500: "busy",  # 服务内部错误 [?]
    10000200: "permanent",  # 参数错误 [src]
    100200107: "not_found",  # 作品不存在 [?]
}

#: Limits. Whole-file upload "适合小于10M的文件", parts "建议分片大小不大于10M" [src]. Caption:
#: no readable page gives a limit; 500 characters is only a sanity bound [?]. Cover: JPEG or
#: PNG, at most 10 MB [?]. Video: MP4 (the doc's example) or QuickTime [?], at most 4 GB [?].
PART_MB = 10
MAX_CAPTION = 500
MAX_COVER_BYTES = 10 * 1024 * 1024
COVER_TYPES = ("image/jpeg", "image/png")
MAX_VIDEO_BYTES = 4 * 1024 * 1024 * 1024
VIDEO_TYPES = ("video/mp4", "video/quicktime")
LIST_MAX_COUNT = 200  # "数量，默认为20，最大不超过200" [src]
RATE_LIMIT_RETRY_AFTER = 60.0  # [gk]
DESCRIPTION_CHARS = 160

_TOKEN_TEXT = re.compile(r"access[_ ]?token.{0,30}(过期|失效|无效|expire|invalid)", re.I | re.S)


def error_of(body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
    """(result, one-line detail): (1, "") on success, (None, "") when the body is not a
    Kuaishou answer."""
    result = as_int(body.get("result"))
    if result is None:
        return None, ""
    if result == 1:
        return 1, ""
    message = body.get("error_msg") or body.get("error_message") or "no error_msg"
    detail = one_line(f"result {result}: {message}", secrets, DESCRIPTION_CHARS)
    return result, detail


def kind_of(result: int, detail: str) -> str:
    kind = ERRORS.get(result)
    if kind is None and _TOKEN_TEXT.search(detail):
        return "auth"
    return kind or "permanent"
