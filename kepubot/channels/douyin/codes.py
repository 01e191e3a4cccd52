"""Douyin's paths and error codes as data (platforms.md §3.1, §3.2), and reading its answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from kepubot.channels.base import (
    mask_secrets,
)

# --- the platform, as data ---------------------------------------------------------------------

#: Paths under api_base (platforms.md §3.1, §3.3, §3.4). The /api/douyin/v1/ paths take the
#: token in the ``access-token`` header, the older ones in the ``access_token`` query parameter;
#: every user-scoped call carries ``open_id`` in the query.
PATHS: dict[str, str] = {
    "refresh": "oauth/refresh_token/",
    "upload": "api/douyin/v1/video/upload_video/",
    # platforms.md names the /api/douyin/v1/ form of the chunked init only, not of the part
    # and complete steps, so one upload session uses the three documented legacy steps [?].
    "part_init": "video/part/init/",
    "part_upload": "video/part/upload/",
    "part_complete": "video/part/complete/",
    "create": "api/douyin/v1/video/create_video/",
    "list": "video/list/",
    "data": "video/data/",
}

#: error_code -> kind (platforms.md §3.1, §3.2). Unknown non-zero codes are permanent.
#: auth: the access token is refused; refresh it once (single-flight) and repeat the call once.
#: refresh_expired: the user must authorize the app again -> AuthExpired (channel paused).
#: denied: the app or account lacks a right; refreshing cannot help -> AuthExpired.
#: rate_limited -> RateLimited. busy: on create the video may exist (OutcomeUnknown), elsewhere
#: Transient. transient -> Transient. permanent -> Permanent.
ERRORS: dict[int, str] = {
    2190008: "auth",  # access_token expired [src]
    10008: "auth",  # access_token expired (older code) [src]
    2190002: "auth",  # access_token invalid [src]
    28001008: "auth",  # token expired, /api/ endpoints [src]
    28001003: "auth",  # token invalid, /api/ endpoints [src]
    10010: "refresh_expired",  # refresh_token expired: authorize again [src]
    # "refresh limit exceeded" (renew_refresh_token, client_token); from the refresh endpoint we
    # read it as "this authorization cannot be refreshed any more" [?]
    10020: "refresh_expired",
    28001016: "denied",  # app banned [src]
    28001018: "denied",  # app lacks the capability (e.g. video.create.bind) [src]
    10013: "denied",  # wrong client_key or client_secret [src]
    # "requests too frequent", seen on one API with a QPS limit of 100 [src]; the rate-limit
    # code of the video APIs is not known [?]
    2118110: "rate_limited",
    2100004: "busy",  # system busy, retry [src]
    2100005: "permanent",  # invalid parameter [src]
    10002: "permanent",  # parameter error [src]
    10005: "permanent",  # parameter error [src]
}
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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _error_of(body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
    """(error code, one-line detail) of a Douyin answer, None when it is not one.

    Classic answers carry ``data.error_code``/``description`` and ``extra.error_code``/
    ``description``/``sub_error_code``/``sub_description``/``logid``; some newer ones
    ``err_no``/``err_msg``/``log_id`` (platforms.md §3.2). A non-zero code anywhere wins.
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
    detail = mask_secrets(detail, secrets)
    detail = " ".join(detail.split())
    if len(detail) > DESCRIPTION_CHARS:
        detail = detail[:DESCRIPTION_CHARS] + "…"
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


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"
