"""Bilibili settings, the user's tokens and the one signed call every step makes
(docs/platforms.md §12.1, §12.2).

Every open-platform call carries the signature headers of 接口签名实现标准 [src]:
``x-bili-accesskeyid`` (client_id), ``x-bili-content-md5`` (MD5 of the JSON body; of the empty
string for GET, empty bodies and file uploads, "除文件外"), ``x-bili-timestamp`` (seconds, at
most 10 minutes off), ``x-bili-signature-method: HMAC-SHA256``, ``x-bili-signature-nonce``
(unique per request), ``x-bili-signature-version: 2.0``, ``access-token`` and
``Authorization``: HMAC-SHA256 with the client secret over the ``x-bili-*`` headers sorted by
name, one ``name:value`` per line.

Tokens: ``x/account-oauth2/v1/refresh_token`` (client_id, client_secret,
grant_type=refresh_token, refresh_token) answers a new access token and refresh token [src];
their lifetimes are not on any page we could read: access 30 days and refresh 60 days are
assumed where the answer is silent [?], and ``expires_in`` is read as a Unix time when it is
one, else as seconds [?].
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kepubot.channels.base import HttpChannelSettings, Token, json_object
from kepubot.channels.bilibili.codes import (
    _REFRESH_EXPIRED,
    DEFAULT_PART_MB,
    ERRORS,
    MAX_PART_MB,
    NEEDED_FOR,
    PATHS,
    RATE_LIMIT_RETRY_AFTER,
    SCOPE_OF,
    error_of,
)
from kepubot.channels.errors import ErrorRule, check_rules
from kepubot.channels.openvideo import as_dict, as_int
from kepubot.channels.usertoken import CALL_RULES, REFRESH_CALL_RULES, Call, UserTokenApi
from kepubot.config import Secret
from kepubot.errors import (
    AuthExpired,
    OutcomeUnknown,
    Transient,
)

ACCESS_LIFETIME = timedelta(days=30)  # [?]
REFRESH_LIFETIME = timedelta(days=60)  # [?]


class BilibiliSettings(HttpChannelSettings):
    client_id: str = Field(min_length=1)
    client_secret: Secret
    access_token: Secret
    refresh_token: Secret
    api_base: str = "https://member.bilibili.com"
    upload_base: str = "https://openupos.bilivideo.com"
    oauth_base: str = "https://api.bilibili.com"
    # The archive's category (分区 id from archive/type/list): required by 视频稿件提交 [src].
    tid: int = Field(ge=1)
    # 1 自制 (original), 2 转载 (repost; then ``source`` is required) [src: 视频稿件提交].
    copyright: Literal[1, 2] = 1
    source: str = ""
    no_reprint: Literal[0, 1] = 1  # 1: 禁止转载 (only for copyright 1) [src]
    chunk_size_mb: int = Field(DEFAULT_PART_MB, ge=1, le=MAX_PART_MB)
    poll_seconds: float = Field(60.0, gt=0, le=86_400)  # how often review status is read

    @field_validator("upload_base", "oauth_base")
    @classmethod
    def _bases(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _source(self) -> BilibiliSettings:
        if self.copyright == 2 and not self.source.strip():
            raise ValueError("copyright = 2 (转载) needs source (the original's address)")
        return self


#: What each kind of ERRORS becomes on a user-scoped call (kepubot/channels/errors.py); "auth"
#: is handled first (the token is refreshed once and the call repeated once).
RULES: dict[str, ErrorRule] = {
    **CALL_RULES,
    "scope": ErrorRule(AuthExpired, "{what}: {scope_message}"),
    "denied": ErrorRule(
        AuthExpired,
        "{what}: refused ({detail}); check client_id, client_secret, the clock (the"
        " signature's timestamp) and the application's IP allow-list on the Bilibili"
        " open platform",
    ),
}
#: On the submitting call a busy platform may have taken the archive: only a lookup decides.
PUBLISHING_RULES: dict[str, ErrorRule] = {
    **RULES,
    "busy": ErrorRule(
        OutcomeUnknown,
        "{what}: Bilibili was busy ({detail}); the archive may or may not have been submitted",
    ),
}
#: A refused token refresh: anything but a wait, a busy platform or refused app credentials
#: means this authorization cannot be refreshed.
REFRESH_RULES: dict[str, ErrorRule] = {
    **REFRESH_CALL_RULES,
    "denied": ErrorRule(
        AuthExpired,
        "{what}: refused ({detail}); check client_id, client_secret and the"
        " application's IP allow-list on the Bilibili open platform",
    ),
    "refused": ErrorRule(AuthExpired, "{reauthorize}"),
}
check_rules({k: v for k, v in ERRORS.items() if v != "auth"}, RULES)


class BilibiliApi(UserTokenApi):
    Settings = BilibiliSettings
    settings: BilibiliSettings
    PLATFORM_ZH = "哔哩哔哩"
    PLATFORM_EN = "Bilibili"
    REFRESH_LIFETIME = REFRESH_LIFETIME
    ERRORS = ERRORS
    RULES = RULES
    PUBLISHING_RULES = PUBLISHING_RULES
    REFRESH_RULES = REFRESH_RULES
    REFRESH_EXPIRED_TEXT = _REFRESH_EXPIRED
    RATE_LIMIT_RETRY_AFTER = RATE_LIMIT_RETRY_AFTER
    SCOPE_OF = SCOPE_OF
    DEFAULT_SCOPE = "ARC_BASE"
    OUTCOME = "the archive was submitted"

    channel_type = "bilibili"  # the entry point's name (docs/architecture.md §5.7)

    def _identity(self) -> tuple[str, ...]:
        return (self.settings.client_id,)

    def _app_secrets(self) -> tuple[str, ...]:
        return (self.settings.client_secret.get_secret_value(),)

    def _error_of(self, body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
        return error_of(body, secrets)

    def _check_hint(self) -> str:
        return "check api_base and upload_base"

    # -- tokens ------------------------------------------------------------------------------

    def _fetch_token(self, current: Token | None) -> Token:
        what = self._what("token refresh")
        now = self._now()
        params = {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token_to_send(current),
        }
        url = f"{self.settings.oauth_base}/{PATHS['refresh']}"
        response = self._refresh_request("POST", url, what=what, params=params)
        body = json_object(response)
        code, detail = error_of(body, self._secrets(current))
        if code is None:
            raise Transient(f"{what}: HTTP {response.status_code} without a Bilibili answer")
        if code != 0:
            self._raise_refresh_error(code, detail, what)
        data = as_dict(body.get("data"))
        access = str(data.get("access_token") or "")
        if not access:
            raise Transient(f"{what}: Bilibili answered success without an access_token")
        scopes = data.get("scopes")
        if isinstance(scopes, list):
            self._store_scopes(",".join(str(s) for s in scopes))
        renewed = str(data.get("refresh_token") or "")
        self.log.info("bilibili %s: access token refreshed", self.name)
        return Token(
            access_token=access,
            refresh_token=renewed or None,  # an empty one never replaces the stored one
            expires_at=_expiry(data.get("expires_in"), now, ACCESS_LIFETIME),
            refresh_expires_at=(
                now + REFRESH_LIFETIME
                if renewed
                else (current.refresh_expires_at if current else None)
            ),
        )

    # -- one call ----------------------------------------------------------------------------

    def signed_headers(self, token: str, body: bytes, content_type: str | None) -> dict[str, str]:
        headers = {
            "x-bili-accesskeyid": self.settings.client_id,
            "x-bili-content-md5": hashlib.md5(body).hexdigest(),
            "x-bili-signature-method": "HMAC-SHA256",
            "x-bili-signature-nonce": uuid.uuid4().hex,
            "x-bili-signature-version": "2.0",
            "x-bili-timestamp": str(int(self._now().timestamp())),
        }
        text = "\n".join(f"{name}:{headers[name]}" for name in sorted(headers))
        secret = self.settings.client_secret.get_secret_value().encode("utf-8")
        headers["Authorization"] = hmac.new(secret, text.encode("utf-8"), "sha256").hexdigest()
        headers["access-token"] = token
        headers["Accept"] = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _send(self, call: Call, token: Token) -> dict[str, Any]:
        """One signed call; returns the answer's ``data``. ``kwargs``: ``json_body`` (signed),
        ``data`` (a part's bytes) or ``files`` (a cover)."""
        json_body, files, data = (call.kwargs.get(k) for k in ("json_body", "files", "data"))
        base = self.settings.upload_base if call.route == "part_upload" else self.settings.api_base
        url = f"{base}/{PATHS[call.route]}"
        request: dict[str, Any] = {"params": call.params}
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            request["data"] = body
            headers = self.signed_headers(token.access_token, body, "application/json")
        elif data is not None:
            request["data"] = data
            headers = self.signed_headers(token.access_token, b"", "application/octet-stream")
        else:
            if files is not None:
                request["files"] = files
            headers = self.signed_headers(token.access_token, b"", None)
        # only the submit creates an archive; an upload step that may have been applied is
        # repeated safely (a part is overwritten, a merge answered again [?])
        response = self._step(
            call.method, url, what=call.what, publishing=call.publishing, headers=headers, **request
        )
        answer = self.answer(response, call.what, call.publishing, call.route, token)
        return as_dict(answer.get("data"))

    def scope_message(self, scope: str, detail: str) -> str:
        zh, en = NEEDED_FOR.get(scope, (scope, scope))
        if self._language() == "en":
            return (
                f"this account's application lacks the {scope} permission (needed for {en}):"
                " apply for it on the Bilibili open platform (权限白名单), then have the account"
                f" authorise again ({detail})"
            )
        return (
            f"该账号授权的哔哩哔哩应用缺少 {scope} 权限（用于{zh}）：请在哔哩哔哩开放平台申请"
            f"该权限（权限白名单），再让账号重新授权（{detail}）"
        )


def _expiry(value: Any, now: datetime, default: timedelta) -> datetime:
    number = as_int(value)
    if number is None or number <= 0:
        return now + default
    if number > 1_000_000_000:  # a Unix time [?]
        return datetime.fromtimestamp(number, UTC)
    return now + timedelta(seconds=number)
