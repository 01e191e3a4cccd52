"""Kuaishou settings, the user's tokens and the one call every step makes
(docs/platforms.md §13.1, §13.2).

Every openapi call carries ``app_id`` and ``access_token`` in the query [src]. Tokens:
``GET oauth2/refresh_token`` (app_id, app_secret, refresh_token, grant_type=refresh_token)
answers ``{result, access_token, expires_in, refresh_token, refresh_token_expires_in,
scopes}``; each refresh hands out a new refresh token and voids the old one, and the new one
inherits the old one's expiry [src: refreshToken]. So a refresh token cannot be extended: the
account must authorise again before it runs out (180 days [gk]); the channel alerts 7 days
before and pauses (AuthExpired, nothing lost) when Kuaishou refuses it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from kepubot.channels.base import HttpChannelSettings, Token, json_object
from kepubot.channels.errors import ErrorRule, check_rules
from kepubot.channels.kuaishou.codes import (
    ERRORS,
    NEEDED_FOR,
    PATHS,
    RATE_LIMIT_RETRY_AFTER,
    SCOPE_OF,
    error_of,
    kind_of,
)
from kepubot.channels.openvideo import as_int
from kepubot.channels.usertoken import CALL_RULES, REFRESH_CALL_RULES, Call, UserTokenApi
from kepubot.channels.usertoken import TokenRefused as TokenRefused
from kepubot.config import Secret
from kepubot.errors import AuthExpired, OutcomeUnknown, Permanent, Transient

ACCESS_LIFETIME = timedelta(hours=48)  # [gk]
REFRESH_LIFETIME = timedelta(days=180)  # [gk]


class KuaishouSettings(HttpChannelSettings):
    app_id: str = Field(min_length=1)
    app_secret: Secret
    access_token: Secret
    refresh_token: Secret
    api_base: str = "https://open.kuaishou.com"
    # Videos above this upload in fragments of this size ("建议分片大小不大于10M" [src]).
    chunk_size_mb: int = Field(10, ge=1, le=10)
    poll_seconds: float = Field(60.0, gt=0, le=86_400)  # how often a pending video is read


class PhotoMissing(Permanent):
    """Kuaishou says the photo does not exist (refused in review or deleted) [?]."""


#: What each kind of ERRORS becomes on a user-scoped call (kepubot/channels/errors.py); "auth"
#: is handled first (the token is refreshed once and the call repeated once).
RULES: dict[str, ErrorRule] = {
    **CALL_RULES,
    "refresh_expired": ErrorRule(AuthExpired, "{reauthorize}"),
    "scope": ErrorRule(AuthExpired, "{what}: {scope_message}"),
    "denied": ErrorRule(AuthExpired, "{what}: refused ({detail}); check app_id and app_secret"),
    "not_found": ErrorRule(PhotoMissing, "{what}: {detail}"),
}
#: On the publishing call a busy platform may have published the video: only a lookup decides.
PUBLISHING_RULES: dict[str, ErrorRule] = {
    **RULES,
    "busy": ErrorRule(
        OutcomeUnknown,
        "{what}: Kuaishou was busy ({detail}); the video may or may not have been published",
    ),
}
#: A refused token refresh: anything but a wait, a busy platform or refused app credentials
#: means this authorization cannot be refreshed.
REFRESH_RULES: dict[str, ErrorRule] = {
    **REFRESH_CALL_RULES,
    "denied": ErrorRule(
        AuthExpired,
        "{what}: refused ({detail}); check app_id and app_secret on the Kuaishou open platform",
    ),
    "refused": ErrorRule(AuthExpired, "{reauthorize}"),
}
check_rules({k: v for k, v in ERRORS.items() if v != "auth"}, RULES)


class KuaishouApi(UserTokenApi):
    Settings = KuaishouSettings
    settings: KuaishouSettings
    PLATFORM_ZH = "快手"
    PLATFORM_EN = "Kuaishou"
    REFRESH_LIFETIME = REFRESH_LIFETIME
    ERRORS = ERRORS
    RULES = RULES
    PUBLISHING_RULES = PUBLISHING_RULES
    REFRESH_RULES = REFRESH_RULES
    RATE_LIMIT_RETRY_AFTER = RATE_LIMIT_RETRY_AFTER
    SUCCESS = 1
    SCOPE_OF = SCOPE_OF
    DEFAULT_SCOPE = "user_video_publish"
    OUTCOME = "the video was published"

    channel_type = "kuaishou"  # the entry point's name (docs/architecture.md §5.7)

    def _identity(self) -> tuple[str, ...]:
        return (self.settings.app_id,)

    def _app_secrets(self) -> tuple[str, ...]:
        return (self.settings.app_secret.get_secret_value(),)

    def _error_of(self, body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
        return error_of(body, secrets)

    def _kind(self, code: int, detail: str) -> str:
        return kind_of(code, detail)  # an unlisted code whose text says the token expired: auth

    # -- tokens ------------------------------------------------------------------------------

    def _fetch_token(self, current: Token | None) -> Token:
        what = self._what("token refresh")
        now = self._now()
        params = {
            "app_id": self.settings.app_id,
            "app_secret": self.settings.app_secret.get_secret_value(),
            "refresh_token": self._refresh_token_to_send(current),
            "grant_type": "refresh_token",
        }
        # A refresh publishes nothing; it is a GET in the documentation, safe to repeat.
        response = self._refresh_request("GET", PATHS["refresh"], what=what, params=params)
        body = json_object(response)
        result, detail = error_of(body, self._secrets(current))
        if result is None:
            raise Transient(f"{what}: HTTP {response.status_code} without a Kuaishou answer")
        if result != 1:
            self._raise_refresh_error(result, detail, what)
        access = str(body.get("access_token") or "")
        if not access:
            raise Transient(f"{what}: Kuaishou answered success without an access_token")
        scopes = body.get("scopes")
        if isinstance(scopes, list):
            self._store_scopes(",".join(str(s) for s in scopes))
        expires_in = as_int(body.get("expires_in"))
        refresh_in = as_int(body.get("refresh_token_expires_in"))
        self.log.info("kuaishou %s: access token refreshed", self.name)
        return Token(
            access_token=access,
            refresh_token=str(body.get("refresh_token") or "") or None,
            expires_at=now + (timedelta(seconds=expires_in) if expires_in else ACCESS_LIFETIME),
            # the new refresh token keeps the old one's expiry [src]
            refresh_expires_at=(
                now + timedelta(seconds=refresh_in)
                if refresh_in
                else (current.refresh_expires_at if current else None)
            ),
        )

    # -- one call ----------------------------------------------------------------------------

    def _send(self, call: Call, token: Token) -> dict[str, Any]:
        """One openapi call; returns the whole answer."""
        query = {"app_id": self.settings.app_id, "access_token": token.access_token}
        query.update(call.params)
        # start_upload creates nothing visible: a lost answer leaves an unused token
        url = PATHS[call.route]
        response = self._step(
            call.method,
            url,
            what=call.what,
            publishing=call.publishing,
            params=query,
            **call.kwargs,
        )
        return self.answer(response, call.what, call.publishing, call.route, token)

    def scope_message(self, scope: str, detail: str) -> str:
        zh, en = NEEDED_FOR.get(scope, (scope, scope))
        if self._language() == "en":
            return (
                f"this account's application lacks the {scope} scope (needed for {en}): enable"
                " it on the Kuaishou open platform, then have the account authorise again"
                f" ({detail})"
            )
        return (
            f"该账号授权的快手应用缺少 {scope} 权限（用于{zh}）：请在快手开放平台为应用开通，"
            f"再让账号重新授权（{detail}）"
        )
