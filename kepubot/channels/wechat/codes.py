"""WeChat errcodes and publish statuses as data (docs/platforms.md §3.2, §3.5), and the one helper
that turns an errcode into the ChannelError the queue acts on.

Errors arrive with HTTP 200 as ``{"errcode": N, "errmsg": "..."}``; success is errcode 0 or no
errcode at all. Tags: [src] confirmed by a source named in docs/platforms.md, [gk] general knowledge,
[?] uncertain.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from kepubot.channels.errors import ErrorRule, check_rules, excerpt, raise_for_code
from kepubot.errors import (
    AuthExpired,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)

#: What the queue should do with an errcode:
#: - "auth": the account or its credentials are refused; the channel pauses until fixed;
#: - "rate_limited": wait (``retry_after``) and try again;
#: - "permanent": this content or request is refused for good;
#: - "transient": nothing happened; try again after a backoff;
#: - "busy": the platform's -1 "system busy": on a call that creates something the request may
#:   have been applied (OutcomeUnknown, reconcile); on uploads and reads, Transient;
#: - "duplicate": the platform already has this request (evidence of an earlier success).
ErrorKind = Literal["auth", "rate_limited", "permanent", "transient", "busy", "duplicate"]

#: errcode -> kind. Codes not listed are "permanent" (with the platform's errmsg).
ERRORS: dict[int, str] = {
    -1: "busy",  # system busy [src]
    # -- credentials and account --------------------------------------------------------------
    40001: "auth",  # invalid credential: token invalid or not latest; a wrong secret too [src]
    40014: "auth",  # invalid access_token [src]
    42001: "auth",  # access_token expired [src]
    41001: "auth",  # access_token missing [gk]
    40013: "auth",  # invalid appid (token endpoints) [gk]
    40125: "auth",  # invalid appsecret (token endpoints) [gk]
    40164: "auth",  # caller IP not in the account's IP whitelist [gk]
    48001: "auth",  # API unauthorized: the account lacks the permission [src]
    48004: "auth",  # API banned for this account [src]
    50002: "auth",  # user limited (account restricted) [src]
    48003: "auth",  # the admin has not accepted the mass-send agreement [src]
    53500: "auth",  # publishing banned for this account [src]
    # -- wait and retry -------------------------------------------------------------------------
    45009: "rate_limited",  # API daily quota reached [src]
    45011: "rate_limited",  # calls too frequent [src]
    45028: "rate_limited",  # has no masssend quota: the day's (month's) mass sends are used [src]
    45066: "rate_limited",  # same clientmsgid retried too quickly: wait 1 minute [src]
    53501: "rate_limited",  # publishing too frequently [src]
    61501: "transient",  # datacube: end_date not before today (clock skew at midnight) [gk]
    # -- evidence of an earlier success ---------------------------------------------------------
    45065: "duplicate",  # same clientmsgid already sent; the answer carries its msg_id [src]
    # -- refused for good -----------------------------------------------------------------------
    40002: "permanent",  # invalid grant_type / argument [src]
    40007: "permanent",  # invalid media_id (e.g. thumb not a permanent material) [src]
    44004: "permanent",  # empty content [src]
    45001: "permanent",  # media too large [src]
    45002: "permanent",  # content too long [src]
    45003: "permanent",  # title too long [src]
    45004: "permanent",  # description (digest) too long [src]
    45005: "permanent",  # URL too long [src]
    45008: "permanent",  # too many articles [src]
    45110: "permanent",  # author too long [?] (only the sandbox notes, docs/platforms.md §11.1)
    45166: "permanent",  # unsupported content, e.g. hyperlink tags [src]
    47001: "permanent",  # JSON/XML parse error [src]
    45067: "permanent",  # clientmsgid too long [src]
    53502: "permanent",  # invalid publish_id [src]
    53503: "permanent",  # the draft failed the publish check [src]
    53504: "permanent",  # the draft must be used in the web console [src]
    53505: "permanent",  # save it manually in the web console first [src]
    53600: "permanent",  # invalid article_id [src]
    61500: "permanent",  # datacube: span larger than allowed / bad date [gk]
    47009: "permanent",  # "this api is offline, please use the new api" (retired interface) [?]
}

#: Errcodes that mean this account may not use the interface at all, with the cause named for
#: the person who must fix it (in Chinese, as users read it). freepublish (and its get /
#: batchget) and mass send are open to verified accounts only: an unverified subscription
#: account (未认证订阅号) gets 48001 [src: the "仅认证" scope notes of api_freepublish_submit
#: and the datacube pages ("open to all verified Official Accounts")]. The other causes are
#: the documented meanings of the codes [src: docs/platforms.md §3.2, §3.8].
ELIGIBILITY: dict[int, str] = {
    48001: (
        "接口未授权（errcode 48001）：该公众号没有此接口的权限。"
        "未认证的订阅号不能调用发布（freepublish）、群发和数据统计接口；"
        '请在微信公众平台完成微信认证，或把该渠道的 mode 改为 "draft"（只存入草稿箱，由人工发表）'
    ),
    48004: "接口被封禁（errcode 48004）：该公众号的此接口已被平台封禁，请登录微信公众平台查看原因并申诉",
    48003: "群发协议未同意（errcode 48003）：请管理员登录微信公众平台，在「群发功能」页面同意群发协议后再发",
    50002: "账号受限（errcode 50002）：该公众号已被平台限制（通常因违规），请登录微信公众平台查看",
    53500: "发布功能被封禁（errcode 53500）：该公众号的发布能力已被平台封禁，请登录微信公众平台查看原因",
}

#: What each kind becomes (kepubot/channels/errors.py); ``detail`` is "wechat errcode N: errmsg".
RULES: dict[str, ErrorRule] = {
    "busy": ErrorRule(Transient, "{what}: the platform was busy ({detail})"),
    "duplicate": ErrorRule(OutcomeUnknown, "{what}: the platform already has this ({detail})"),
    "rate_limited": ErrorRule(RateLimited, "{what}: rate limited ({detail})"),
    "auth": ErrorRule(AuthExpired, "{what}: refused ({detail}){hint}"),
    "transient": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "permanent": ErrorRule(Permanent, "{what}: refused ({detail})"),
}
#: On a call that creates something (draft, publish task, mass send) "busy" may have been done.
CREATING_RULES: dict[str, ErrorRule] = {
    **RULES,
    "busy": ErrorRule(
        OutcomeUnknown,
        "{what}: the platform was busy and may or may not have done it ({detail})",
    ),
}
check_rules(ERRORS, RULES)

#: The access token was refused: refresh it once (single flight) and retry once [src: wechatpy].
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})

#: Seconds to wait for "rate_limited" codes; daily quotas wait until midnight (Beijing time).
RETRY_AFTER: dict[int, float] = {
    45011: 60.0,  # [gk]
    45066: 60.0,  # "wait 1 minute" [src]
    53501: 300.0,  # [gk]
}
DAILY_QUOTA_CODES = frozenset({45009, 45028})  # reset at midnight [gk]

#: freepublish/get ``publish_status`` [src: api_freepublish_get]. 0 and 1 are handled by the
#: caller; every other documented status is a final failure, described here.
PUBLISH_STATUS: dict[int, str] = {
    0: "published",
    1: "publishing",
    2: "failed the originality (原创) check",
    3: "failed (normal failure)",
    4: "was rejected by the platform's audit",
    5: "was deleted by a user after it had been published",
    6: "was banned by the platform after it had been published",
}

#: The platform's calendar (datacube dates, daily quotas) is Beijing time [gk].
PLATFORM_TZ = ZoneInfo("Asia/Shanghai")
ERRMSG_CHARS = 200


def seconds_to_platform_midnight(now: datetime) -> float:
    local = now.astimezone(PLATFORM_TZ)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - local).total_seconds())


def raise_for_errcode(
    errcode: int,
    errmsg: object,
    *,
    what: str,
    creates: bool,
    now: datetime,
    secrets: Iterable[str] = (),
    auth_hint: str = "",
) -> None:
    """Raise the ChannelError ``errcode`` stands for; return for 0.

    ``creates``: the call creates something (draft, publish task, mass send), so a -1 "busy"
    may have been applied. ``secrets`` are masked out of the errmsg, in case it echoes one.
    """
    if errcode == 0:
        return
    text = excerpt(errmsg, secrets, limit=ERRMSG_CHARS)
    wait = (
        seconds_to_platform_midnight(now)
        if errcode in DAILY_QUOTA_CODES
        else RETRY_AFTER.get(errcode)
    )
    cause = ELIGIBILITY.get(errcode)
    raise_for_code(
        errcode,
        ERRORS,
        CREATING_RULES if creates else RULES,
        what=what,
        detail=f"wechat errcode {errcode}: {text}",
        retry_after=wait,
        hint=f"; {cause}" if cause else (f"; {auth_hint}" if auth_hint else ""),
    )
