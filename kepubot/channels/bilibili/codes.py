"""Bilibili open platform paths, error codes and limits as data (docs/platforms.md §12), and
reading its answers.

Sources: the open platform's documentation (openhome.bilibili.com, mirrored on
bilibili.apifox.cn: 账号授权, 接口签名实现标准和状态码, 服务端视频稿件投递: 文件上传预处理 /
文件分片上传 / 文件分片合片 / 封面上传 / 视频稿件提交 / 分区查询, 视频稿件查询, 数据开放服务)
[src], and open-source clients of the same interfaces [gk]. Facts marked [?] were found in no
readable source: the code treats them defensively.
"""

from __future__ import annotations

import re
from typing import Any

from kepubot.channels.openvideo import as_int, one_line

#: Paths. ``oauth`` under oauth_base (api.bilibili.com), ``part_upload`` under upload_base
#: (openupos.bilivideo.com), the rest under api_base (member.bilibili.com).
PATHS: dict[str, str] = {
    "refresh": "x/account-oauth2/v1/refresh_token",  # 通过刷新令牌续期access_token [src]
    "scopes": "arcopen/fn/user/account/scopes",  # 查询用户已授权权限列表 [src]
    "account": "arcopen/fn/user/account/info",  # 获取用户公开信息 [src]
    "init": "arcopen/fn/archive/video/init",  # 文件上传预处理 [src]
    "part_upload": "video/v2/part/upload",  # 文件分片上传 ?upload_token=&part_number= [src]
    "complete": "arcopen/fn/archive/video/complete",  # 文件分片合片 ?upload_token= [src]
    "cover": "arcopen/fn/archive/cover/upload",  # 封面上传, multipart ``file`` [src]
    "submit": "arcopen/fn/archive/add-by-utoken",  # 视频稿件提交 ?upload_token= [src]
    "types": "arcopen/fn/archive/type/list",  # 分区查询 [src]
    "view": "arcopen/fn/archive/view",  # 查询单一视频稿件详情 ?resource_id= [src]
    "list": "arcopen/fn/archive/viewlist",  # 查询用户视频稿件列表 ?pn=&ps=&status= [src]
    "arc_stat": "arcopen/fn/data/arc/stat",  # 获取单个稿件数据 ?resource_id= [src]
    "user_stat": "arcopen/fn/data/user/stat",  # 获取用户数据 [src]
    # 视频稿件删除 (POST) is in the documentation's index [src]; its path and body
    # (JSON ``resource_id``) are as open-source clients call it [gk]
    "delete": "arcopen/fn/archive/delete",
}

#: The permission each call needs (权限白名单说明; the names as the scopes interface reports
#: them): ARC_BASE for submission and archive queries, DATA for the data interfaces [gk: the
#: names come from open-source clients; the doc page lists them without values we could read].
SCOPE_OF: dict[str, str] = {
    "init": "ARC_BASE",
    "part_upload": "ARC_BASE",
    "complete": "ARC_BASE",
    "cover": "ARC_BASE",
    "submit": "ARC_BASE",
    "types": "ARC_BASE",
    "view": "ARC_BASE",
    "list": "ARC_BASE",
    "arc_stat": "DATA",
    "user_stat": "DATA",
    "account": "USER_INFO",
    "delete": "ARC_BASE",
}
NEEDED_FOR: dict[str, tuple[str, str]] = {
    "ARC_BASE": ("投稿与查询稿件", "submitting and looking up archives"),
    "DATA": ("获取稿件和粉丝数据", "collecting reach figures and followers"),
    "USER_INFO": ("读取账号公开信息", "reading the account's public profile"),
}

#: code -> kind [?]: the status-code page of the open platform could not be read; these are the
#: codes Bilibili's interfaces are commonly seen to answer. Unknown non-zero codes are
#: permanent. auth: the access token is refused (refresh once, repeat once); scope: the
#: application or the user lacks the permission; denied: signature, client_id or the IP
#: allow-list refused; rate_limited; busy (on submit the archive may exist: OutcomeUnknown).
ERRORS: dict[int, str] = {
    -101: "auth",  # 账号未登录 / access_token 无效 [?]
    -658: "auth",  # token 过期 [?]
    -2: "auth",  # Access Key 错误 / token 失效 [?]
    -3: "denied",  # API 校验密匙错误 (signature) [?]
    -4: "denied",  # 调用方对该 Method 没有权限 [?]
    -401: "denied",  # 非法访问 (e.g. an IP not on the allow-list) [?]
    -403: "scope",  # 访问权限不足 [?]
    -412: "rate_limited",  # 请求被拦截 [?]
    -509: "rate_limited",  # 请求过于频繁 [?]
    -799: "rate_limited",  # 请求过于频繁，请稍后再试 [?]
    -500: "busy",  # 服务器错误 [?]
    -503: "busy",  # 过载保护 [?]
    -504: "busy",  # 服务调用超时 [?]
    -400: "permanent",  # 请求错误 [?]
    -404: "permanent",  # 啥都木有 [?]
}

#: Content rules. Title 80 characters, description 250, at most 12 tags of 20 characters at most:
#: the submission page of the main site [gk]; the open platform page names the fields without
#: limits we could read [?]. Video: at most 4 GB, under 5 hours [src: 文件上传预处理].
#: Cover: JPEG or PNG [gk], at most 5 MB [?]; 1146x717 (16:10) is the recommended size [gk],
#: no readable page gives a smallest one.
MAX_TITLE = 80
MAX_DESC = 250
MAX_TAGS = 12
MAX_TAG_CHARS = 20
MAX_VIDEO_BYTES = 4 * 1024 * 1024 * 1024
VIDEO_TYPES = ("video/mp4", "video/x-flv", "video/quicktime")  # mp4 and flv recommended [src]
COVER_TYPES = ("image/jpeg", "image/png")
MAX_COVER_BYTES = 5 * 1024 * 1024
#: Part size: "视频分片大小建议固定为8MB，最后一个分片除外" [src: 文件分片上传].
DEFAULT_PART_MB = 8
MAX_PART_MB = 64  # no page gives a largest part [?]
RATE_LIMIT_RETRY_AFTER = 60.0  # no source says how long to wait [gk]
DESCRIPTION_CHARS = 160

#: Archive states (``addit_info.state`` of 查询单一视频稿件详情) [gk: the member-centre state
#: table of open-source API collections; the open platform page shows the field only]. 0 is
#: open (开放浏览); these negative states are final refusals; every other state is in progress.
STATE_OPEN = 0
STATE_DELETED = -100  # 用户删除 [gk]
GONE_CODE = -404  # 稿件不存在 / 啥都木有: the archive is gone [?]
STATES_REFUSED: dict[int, str] = {
    -2: "打回 (returned by review)",
    -3: "网警锁定 (locked)",
    -4: "锁定 (locked)",
    -12: "转储失败 (storage failed)",
    -16: "转码失败 (transcoding failed)",
    -100: "用户删除 (deleted)",
}

_REFRESH_EXPIRED = re.compile(
    r"refresh[_ ]?token.{0,40}(expire|过期|失效|无效)|(过期|失效|无效).{0,40}refresh[_ ]?token",
    re.I | re.S,
)


def error_of(body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
    """(code, one-line detail) of a Bilibili answer ``{code, message, ttl, data, request_id}``;
    (None, "") when the body is not one."""
    code = as_int(body.get("code"))
    if code is None:
        return None, ""
    if code == 0:
        return 0, ""
    detail = f"code {code}: {body.get('message') or 'no message'}"
    detail = one_line(detail, secrets, DESCRIPTION_CHARS)
    if body.get("request_id"):
        detail += f"; request_id {str(body['request_id'])[:40]}"
    return code, detail
