"""Douyin settings, the user's tokens and the one call every step makes.

Tokens (docs/platforms.md §4.1, docs/delivery.md §10): The configured ``access_token`` and
``refresh_token`` are the user's initial tokens. They are copied into the credentials store
under the channel's name, and from then on the stored tokens are used; they are refreshed
single-flight across daemons shortly before they expire and when Douyin says the access token
expired (then the call is repeated once). The store never replaces a refresh token with an
empty one (postiz PR #1884). Next to the tokens, under ``"<name>:source"``, the store keeps a
salted digest of the configured refresh token: when the operator configures new tokens (the
account authorized again) the digest differs and the configured tokens win over the stored
ones. An expired refresh token raises AuthExpired, which pauses the channel (its deliveries
stay queued) until new tokens are configured.

Refresh tokens live 30 days and ``oauth/refresh_token/`` does not extend them; only
``oauth/renew_refresh_token/`` (form ``client_key``, ``refresh_token``) issues a new 30-day one,
invalidating the old, at most 5 times per authorization (then 10020: authorise again)
[src: account-permission refresh-token]. The channel renews single-flight (under the same
credentials lease as the access-token refresh) once less than RENEW_WITHIN is left, counts
the renewals under ``"<name>:renewals"`` (Douyin does not report the count; configured tokens
are taken as a fresh authorization with none used [gk]), and alerts LAST_RENEWAL_ALERT
before the last refresh token runs out, so a channel runs about 30 + 5 x 28 days unattended.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from kepubot.channels.base import Credentials, HttpChannelSettings, Token, json_object
from kepubot.channels.douyin.codes import (
    _REFRESH_EXPIRED,
    _VIDEO_ID_USED,
    ERRORS,
    MAX_PART_MB,
    MIN_PART_MB,
    NEEDED_FOR,
    PATHS,
    RATE_LIMIT_RETRY_AFTER,
    SCOPE_MESSAGE,
    SCOPE_OF,
    _dict,
    _error_of,
    _int,
)
from kepubot.channels.errors import ErrorRule, check_rules
from kepubot.channels.usertoken import (
    CALL_RULES,
    REFRESH_CALL_RULES,
    Call,
    TokenRefused,
    UserTokenApi,
    when,
)
from kepubot.channels.usertoken import (  # the suffixes and margin: known here by name too
    REFRESH_MARGIN_SECONDS as REFRESH_MARGIN_SECONDS,
)
from kepubot.channels.usertoken import SCOPE_SUFFIX as SCOPE_SUFFIX
from kepubot.channels.usertoken import SOURCE_SUFFIX as SOURCE_SUFFIX
from kepubot.config import Secret
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    StoreError,
    Transient,
)


class DouyinSettings(HttpChannelSettings):
    client_key: str = Field(min_length=1)
    client_secret: Secret
    open_id: str = Field(min_length=1)
    access_token: Secret
    refresh_token: Secret
    api_base: str = "https://open.douyin.com"
    # Videos above this (and every video above 128 MB) upload in parts of this size. Parts must
    # be at least 5 MB, 20 MB is the recommended size [src]; 128 MB bounds it [gk] (codes.py).
    chunk_size_mb: int = Field(20, ge=MIN_PART_MB, le=MAX_PART_MB)


# The refresh token lives 30 days [src]: an upper bound for configured tokens of unknown age.
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
RENEWALS_SUFFIX = ":renewals"  # credentials key of the refresh-token renewals used
RENEW_LIMIT = 5  # renew_refresh_token/ calls per authorization [src]
# Renew when the refresh token has less than this left: each renewal then adds ~28 days. Any
# call through the channel (publish, lookup, metrics, check) renews, so a channel idle for
# longer than this can miss the window [gk: daily metrics collection keeps it busy].
RENEW_WITHIN = timedelta(days=2)
LAST_RENEWAL_ALERT = timedelta(days=7)  # alert this long before the last refresh token ends


class CapabilityOffline(AuthExpired):
    """Douyin answered 28001056: the capability's API was taken offline for this app."""


#: What each kind of ERRORS becomes on a user-scoped call (kepubot/channels/errors.py); "auth"
#: is handled first (the token is refreshed once and the call repeated once).
RULES: dict[str, ErrorRule] = {
    **CALL_RULES,
    "refresh_expired": ErrorRule(
        AuthExpired, "{what}: the authorization expired ({detail}); {reauthorize}"
    ),
    "scope": ErrorRule(AuthExpired, "{what}: {scope_message}"),
    "offline": ErrorRule(
        CapabilityOffline,
        "{what}: Douyin took this interface offline for the app ({detail}); ask the"
        " open platform whether a replacement exists",
    ),
    "denied": ErrorRule(
        AuthExpired,
        "{what}: refused ({detail}); check the app's status, client_key and open_id"
        " on the Douyin open platform, and authorize again if the account changed",
    ),
    "transient": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
}
#: On create_video: "system busy" and "network call error, retry" do not say the create was
#: not applied inside Douyin [gk], so only a lookup may decide; a refusal saying the video_id
#: was already used means an earlier create went through.
PUBLISHING_RULES: dict[str, ErrorRule] = {
    **RULES,
    "busy": ErrorRule(
        OutcomeUnknown,
        "{what}: Douyin was busy ({detail}); the video may or may not have been created",
    ),
    "transient": ErrorRule(
        OutcomeUnknown,
        "{what}: Douyin was busy ({detail}); the video may or may not have been created",
    ),
    "video_id_used": ErrorRule(
        OutcomeUnknown,
        "{what}: Douyin says the video_id was already used ({detail}), so an earlier"
        " create went through",
    ),
}
#: A refused token refresh or renewal: anything but a wait, a busy platform or refused app
#: credentials means this authorization cannot be refreshed (a person authorizes again).
REFRESH_RULES: dict[str, ErrorRule] = {
    **REFRESH_CALL_RULES,
    "transient": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "denied": ErrorRule(
        AuthExpired,
        "{what}: refused ({detail}); check client_key and client_secret and the app's"
        " status and permissions on the Douyin open platform",
    ),
    "scope": ErrorRule(
        AuthExpired,
        "{what}: refused ({detail}); check client_key and client_secret and the app's"
        " status and permissions on the Douyin open platform",
    ),
    "refresh_expired": ErrorRule(
        AuthExpired, "{what}: Douyin refused the refresh ({detail}); {reauthorize}"
    ),
}
check_rules({k: v for k, v in ERRORS.items() if v != "auth"}, RULES)


#: The name the tests and older code know the shared refusal by.
_TokenRefused = TokenRefused


class DouyinApi(UserTokenApi):
    Settings = DouyinSettings
    settings: DouyinSettings
    PLATFORM_ZH = "抖音"
    PLATFORM_EN = "Douyin"
    REFRESH_LIFETIME = REFRESH_TOKEN_LIFETIME
    REFRESH_EXPIRY_KNOWN = True  # 30 days [src]
    ERRORS = ERRORS
    RULES = RULES
    PUBLISHING_RULES = PUBLISHING_RULES
    REFRESH_RULES = REFRESH_RULES
    REFRESH_REFUSED = "refresh_expired"
    REFRESH_EXPIRED_TEXT = _REFRESH_EXPIRED
    RATE_LIMIT_RETRY_AFTER = RATE_LIMIT_RETRY_AFTER
    SCOPE_OF = SCOPE_OF
    DEFAULT_SCOPE = "video.create.bind"
    OUTCOME = "the video was created"

    channel_type = "douyin"  # the entry point's name (docs/architecture.md §5.7)

    def _identity(self) -> tuple[str, ...]:
        return (self.settings.client_key, self.settings.open_id)

    def _app_secrets(self) -> tuple[str, ...]:
        return (self.settings.client_secret.get_secret_value(),)

    def _error_of(self, body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
        return _error_of(body, secrets)

    def _check_hint(self) -> str:
        return f"check api_base ({self.http_settings.api_base})"

    # --- tokens ---------------------------------------------------------------------------------

    def _seeded(self, credentials: Credentials) -> None:
        # a new authorization: none of its renewals used yet [gk]
        credentials.put(self.name + RENEWALS_SUFFIX, Token(access_token="0"))

    def _after_token(self, token: Token) -> Token:
        return self._renew_if_due(token)

    def _fetch_token(self, current: Token | None) -> Token:
        """``POST oauth/refresh_token/`` (form: client_key, grant_type, refresh_token)."""
        what = self._what("token refresh")
        now = self._now()
        form = {
            "client_key": self.settings.client_key,
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token_to_send(current),
        }
        response = self._refresh_request("POST", PATHS["refresh"], what=what, data=form)
        body = json_object(response)
        code, detail = _error_of(body, self._secrets(current))
        if code is None:
            raise Transient(
                f"{what}: HTTP {response.status_code} without a Douyin answer; check api_base"
                f" ({self.http_settings.api_base})",
                code=response.status_code,
            )
        if code != 0:
            self._raise_refresh_error(code, detail, what)
        data = _dict(body.get("data"))
        access_token = str(data.get("access_token") or "")
        if not access_token:
            raise Transient(f"{what}: Douyin answered success without an access_token")
        if data.get("open_id") and str(data["open_id"]) != self.settings.open_id:
            self.log.warning(
                "douyin %s: the tokens belong to open_id %s but open_id %s is configured",
                self.name,
                data["open_id"],
                self.settings.open_id,
            )
        expires_in = _int(data.get("expires_in"))
        refresh_in = _int(data.get("refresh_expires_in"))
        self.log.info("douyin %s: access token refreshed", self.name)
        scope = str(data.get("scope") or "").strip()
        if scope:
            # what the user granted, for `kepubot channels check` (only refreshes report it)
            self._store_scopes(scope)
        return Token(
            access_token=access_token,
            # An empty refresh_token never replaces the stored one (the store guards it too).
            refresh_token=str(data.get("refresh_token") or "") or None,
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            refresh_expires_at=now + timedelta(seconds=refresh_in) if refresh_in else None,
        )

    # --- refresh-token renewal ------------------------------------------------------------------

    def renewals_used(self) -> int:
        stored = self._credentials().get(self.name + RENEWALS_SUFFIX)
        used = _int(stored.access_token) if stored is not None else None
        return used if used is not None else 0

    def authorization_ends(self, token: Token) -> datetime | None:
        """When the authorization runs out if every remaining renewal happens in time."""
        if token.refresh_expires_at is None:
            return None
        left = max(0, RENEW_LIMIT - self.renewals_used())
        return token.refresh_expires_at + left * (REFRESH_TOKEN_LIFETIME - RENEW_WITHIN)

    def _renew_if_due(self, token: Token) -> Token:
        """Renew the refresh token once less than RENEW_WITHIN is left (single flight); alert
        LAST_RENEWAL_ALERT before the last one ends. A failed renewal never fails the call that
        needed a token: the refresh token still works until it expires."""
        now = self._now()
        end = token.refresh_expires_at
        if end is None or end <= now:
            return token
        if end - now <= RENEW_WITHIN and self.renewals_used() < RENEW_LIMIT:
            try:
                token = self._credentials().refresh(self.name, self._renew, stale=token)
            except StoreError as exc:
                self.log.warning(
                    "douyin %s: refresh-token renewal: token store: %s", self.name, exc
                )
            except AuthExpired:
                raise
            except ChannelError as exc:  # transient, busy, rate limited: at the next call
                self.log.warning("douyin %s: refresh-token renewal failed: %s", self.name, exc)
        self._alert_if_last(token, now)
        return token

    def _renew(self, current: Token | None) -> Token:
        """``POST oauth/renew_refresh_token/`` (form: client_key, refresh_token), under the
        credentials lease. Another process may have renewed meanwhile: then nothing is sent."""
        what = f"douyin {self.name}: refresh-token renewal"
        now = self._now()
        if current is None or not current.refresh_token:
            raise Transient(f"{what}: no stored refresh token to renew")
        end = current.refresh_expires_at
        if end is None or end - now > RENEW_WITHIN or self.renewals_used() >= RENEW_LIMIT:
            return current  # renewed by someone else, or nothing left to renew
        form = {"client_key": self.settings.client_key, "refresh_token": current.refresh_token}
        # A lost answer: the old refresh token may already be void; nothing better than the old
        # one is known, so keep it (if it was voided, the next refresh says 10010) [gk].
        response = self._refresh_request("POST", PATHS["renew"], what=what, data=form)
        body = json_object(response)
        code, detail = _error_of(body, self._secrets(current))
        if code is None:
            raise Transient(f"{what}: HTTP {response.status_code} without a Douyin answer")
        if code == 10020 or (code != 0 and ERRORS.get(code) == "scope"):
            # no renewal left (or none permitted): the refresh token runs out at its expiry
            self._credentials().put(self.name + RENEWALS_SUFFIX, Token(str(RENEW_LIMIT)))
            self.log.warning(
                "douyin %s: the refresh token cannot be renewed any more (%s); the account"
                " must authorise again before %s",
                self.name,
                detail,
                when(end),
            )
            return current
        if code != 0:
            self._raise_refresh_error(code, detail, what)
        data = _dict(body.get("data"))
        renewed = str(data.get("refresh_token") or "")
        if not renewed:
            raise Transient(f"{what}: Douyin answered success without a refresh_token")
        lifetime = _int(data.get("expires_in"))
        self._credentials().put(self.name + RENEWALS_SUFFIX, Token(str(self.renewals_used() + 1)))
        self.log.info("douyin %s: refresh token renewed", self.name)
        return Token(
            access_token=current.access_token,
            refresh_token=renewed,
            expires_at=current.expires_at,
            refresh_expires_at=now
            + (timedelta(seconds=lifetime) if lifetime else REFRESH_TOKEN_LIFETIME),
        )

    def _alert_if_last(self, token: Token, now: datetime) -> None:
        end = token.refresh_expires_at
        if end is None or end - now > LAST_RENEWAL_ALERT or self.renewals_used() < RENEW_LIMIT:
            return
        stamp = when(end)
        self._alert_authorization_ends(
            end,
            f"The refresh token of [channels.{self.name}] cannot be renewed any more"
            f" ({RENEW_LIMIT} renewals used or not permitted) and expires {stamp}. Have the"
            " account authorise the app again, then configure the new access_token and"
            " refresh_token.",
            f"[channels.{self.name}] 的 refresh_token 已不能再续期（已续期 {RENEW_LIMIT} 次"
            f"或无续期权限），将于 {stamp} 失效。请让抖音账号重新授权应用，然后配置新的"
            " access_token 和 refresh_token。",
        )

    def _refresh_reauthorize(self, what: str, detail: str) -> str:
        return self._reauthorize_tail()

    def _reauthorize_tail(self) -> str:
        return (
            "the Douyin account must authorize the app again, then set the new"
            f" access_token and refresh_token of [channels.{self.name}] (its deliveries stay"
            " queued until then)"
        )

    # --- one call -------------------------------------------------------------------------------

    def _send(self, call: Call, token: Token) -> dict[str, Any]:
        """One user-scoped call; returns the answer's ``data``."""
        # every video interface: open_id in the query, the token in the access-token header
        query: dict[str, Any] = {"open_id": self.settings.open_id, **call.params}
        headers = {"access-token": token.access_token}
        # Only create publishes: an upload or read that may have been applied leaves at most an
        # unused video_id behind, so asking again is safe.
        response = self._step(
            call.method,
            PATHS[call.route],
            what=call.what,
            publishing=call.publishing,
            params=query,
            headers=headers,
            **call.kwargs,
        )
        answer = self.answer(response, call.what, call.publishing, call.route, token)
        return _dict(answer.get("data"))

    def scope_message(self, scope: str, detail: str) -> str:
        language = self._language()
        zh, en = NEEDED_FOR.get(scope, (scope, scope))
        return SCOPE_MESSAGE[language].format(
            scope=scope, needed_for=en if language == "en" else zh, detail=detail
        )

    def _call_kind(self, code: int, detail: str, publishing: bool) -> str:
        kind = self._kind(code, detail)
        if kind == "permanent" and publishing and _VIDEO_ID_USED.search(detail):
            kind = "video_id_used"  # matched on the text: no source gives its code [?]
        return kind

    def _call_reauthorize(self, what: str, detail: str) -> str:
        return self._reauthorize_tail()
