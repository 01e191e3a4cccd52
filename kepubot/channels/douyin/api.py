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

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from pydantic import Field

from kepubot.channels.base import (
    Credentials,
    HttpChannel,
    HttpChannelSettings,
    Token,
    json_object,
)
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
    _when,
)
from kepubot.channels.errors import ErrorRule, check_rules, error_for, kind_of
from kepubot.config import Secret
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
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


REFRESH_MARGIN_SECONDS = 3600.0  # refresh this long before the access token expires
# The refresh token lives 30 days [src]: an upper bound for configured tokens of unknown age.
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
SOURCE_SUFFIX = ":source"  # credentials key of the configured-token digest
SCOPE_SUFFIX = ":scope"  # credentials key of the scopes Douyin last reported granted
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
    "rate_limited": ErrorRule(RateLimited, "{what}: rate limited ({detail})"),
    "busy": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "transient": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "permanent": ErrorRule(Permanent, "{what}: refused ({detail})"),
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
    "rate_limited": ErrorRule(RateLimited, "{what}: rate limited ({detail})"),
    "busy": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
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


class _TokenRefused(Exception):
    """Douyin refused the access token (an "auth" code): refresh once and repeat once."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class DouyinApi(HttpChannel):
    Settings = DouyinSettings
    settings: DouyinSettings

    # --- tokens ---------------------------------------------------------------------------------

    def _credentials(self) -> Credentials:
        if self.context is None:
            raise RuntimeError(f"douyin {self.name}: no context, so no credentials store")
        return self.context.credentials

    def _now(self) -> datetime:
        return self.context.now() if self.context is not None else datetime.now(UTC)

    def source_fingerprint(self) -> str:
        """A salted digest of the configured refresh token: enough to notice that the operator
        configured new tokens, useless for recovering them."""
        digest = hashlib.sha256(b"kepubot-douyin-source-v1")
        for part in (
            self.name,
            self.settings.client_key,
            self.settings.open_id,
            self.settings.refresh_token.get_secret_value(),
        ):
            digest.update(b"\0" + part.encode("utf-8"))
        return digest.hexdigest()[:32]

    def token(self) -> Token:
        """The token to call with: the stored one (the configured ones when they are new),
        refreshed single-flight when it expires within REFRESH_MARGIN_SECONDS."""
        credentials = self._credentials()
        stored = credentials.get(self.name)
        source = credentials.get(self.name + SOURCE_SUFFIX)
        fingerprint = self.source_fingerprint()
        if stored is None or source is None or source.access_token != fingerprint:
            stored = self._seed(credentials, stored, fingerprint)
        if stored.expires_soon(self._now(), margin_seconds=REFRESH_MARGIN_SECONDS):
            stored = self._refresh(stored, what=f"douyin {self.name}: token refresh")
        return self._renew_if_due(stored)

    def _seed(self, credentials: Credentials, stored: Token | None, fingerprint: str) -> Token:
        """Store the configured tokens (first use, or the operator configured new ones)."""
        configured = Token(
            access_token=self.settings.access_token.get_secret_value(),
            refresh_token=self.settings.refresh_token.get_secret_value(),
            # Unknown: refreshed when Douyin says it expired.
            expires_at=None,
            # Unknown too; the refresh token's whole life is an upper bound. (Also replaces the
            # expiry of the tokens these supersede, which the store would otherwise keep.)
            refresh_expires_at=self._now() + REFRESH_TOKEN_LIFETIME,
        )
        try:
            # Under the refresh lease: a process that refreshed or seeded meanwhile wins.
            token = credentials.refresh(self.name, lambda current: configured, stale=stored)
        except StoreError as exc:
            raise Transient(f"douyin {self.name}: token store: {exc}") from None
        if token.access_token == configured.access_token:
            credentials.put(self.name + SOURCE_SUFFIX, Token(access_token=fingerprint))
            # a new authorization: none of its renewals used yet [gk]
            credentials.put(self.name + RENEWALS_SUFFIX, Token(access_token="0"))
            self.log.info("douyin %s: using the configured tokens", self.name)
        return token

    def _refresh(self, stale: Token, *, what: str) -> Token:
        if stale.refresh_expires_at is not None and stale.refresh_expires_at <= self._now():
            raise AuthExpired(
                self._reauthorize(
                    what, f"the refresh token expired at {_when(stale.refresh_expires_at)}"
                )
            )
        try:
            return self._credentials().refresh(self.name, self._fetch_token, stale=stale)
        except StoreError as exc:
            raise Transient(f"{what}: token store: {exc}") from None

    def _fetch_token(self, current: Token | None) -> Token:
        """``POST oauth/refresh_token/`` (form: client_key, grant_type, refresh_token)."""
        what = f"douyin {self.name}: token refresh"
        configured = self.settings.refresh_token.get_secret_value()
        refresh_token = current.refresh_token if current and current.refresh_token else configured
        now = self._now()
        form = {
            "client_key": self.settings.client_key,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        try:
            response = self.request(
                "POST", PATHS["refresh"], what=what, data=form, allow_redirects=False
            )
        except OutcomeUnknown as exc:
            # A refresh publishes nothing: asking again later is safe.
            raise Transient(str(exc), code=exc.code) from None
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
            self._credentials().put(self.name + SCOPE_SUFFIX, Token(access_token=scope))
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
        try:
            response = self.request(
                "POST", PATHS["renew"], what=what, data=form, allow_redirects=False
            )
        except OutcomeUnknown as exc:
            # The old refresh token may already be void; nothing better than the old one is
            # known, so keep it (if it was voided, the next refresh says 10010) [gk].
            raise Transient(str(exc), code=exc.code) from None
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
                _when(end),
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
        alert = getattr(self.context, "alert", None)
        if not callable(alert):
            return
        when = _when(end)
        if self._language() == "en":
            title = f"kepubot: Douyin channel {self.name}: its authorization ends {when}"
            body = (
                f"The refresh token of [channels.{self.name}] cannot be renewed any more"
                f" ({RENEW_LIMIT} renewals used or not permitted) and expires {when}. Have the"
                " account authorise the app again, then configure the new access_token and"
                " refresh_token."
            )
        else:
            title = f"kepubot：抖音渠道 {self.name} 的授权将于 {when} 到期"
            body = (
                f"[channels.{self.name}] 的 refresh_token 已不能再续期（已续期 {RENEW_LIMIT} 次"
                f"或无续期权限），将于 {when} 失效。请让抖音账号重新授权应用，然后配置新的"
                " access_token 和 refresh_token。"
            )
        alert(f"douyin-authorization:{self.name}:{end.date().isoformat()}", title, body)

    def _language(self) -> str:
        return "en" if getattr(self.context, "language", "zh") == "en" else "zh"

    def _raise_refresh_error(self, code: int, detail: str, what: str) -> NoReturn:
        kind = kind_of(code, ERRORS)
        if kind in ("busy", "transient") and _REFRESH_EXPIRED.search(detail):
            kind = "refresh_expired"  # the text says the refresh token expired, whatever the code
        raise error_for(
            kind if kind in REFRESH_RULES else "refresh_expired",
            REFRESH_RULES,
            code=code,
            what=what,
            detail=detail,
            retry_after=RATE_LIMIT_RETRY_AFTER,
            reauthorize=self._reauthorize_tail(),
        )

    def _reauthorize(self, what: str, reason: str) -> str:
        return f"{what}: {reason}; {self._reauthorize_tail()}"

    def _reauthorize_tail(self) -> str:
        return (
            "the Douyin account must authorize the app again, then set the new"
            f" access_token and refresh_token of [channels.{self.name}] (its deliveries stay"
            " queued until then)"
        )

    def _secrets(self, token: Token | None) -> list[str]:
        values = [
            self.settings.client_secret.get_secret_value(),
            self.settings.access_token.get_secret_value(),
            self.settings.refresh_token.get_secret_value(),
        ]
        if token is not None:
            values += [token.access_token, token.refresh_token or ""]
        return values

    # --- one call -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        route: str,
        *,
        what: str,
        publishing: bool = False,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One user-scoped call; returns the answer's ``data``. A refused access token is
        refreshed once (single flight) and the call repeated once: the refusal means the
        request was not applied."""
        token = self.token()
        try:
            return self._send(method, route, token, what, publishing, params, kwargs)
        except _TokenRefused:
            pass
        token = self._refresh(token, what=what)
        try:
            return self._send(method, route, token, what, publishing, params, kwargs)
        except _TokenRefused as refused:
            raise AuthExpired(
                self._reauthorize(
                    what, f"Douyin refused the access token right after a refresh ({refused})"
                ),
                code=refused.code,
            ) from None

    def _send(
        self,
        method: str,
        route: str,
        token: Token,
        what: str,
        publishing: bool,
        params: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        path = PATHS[route]
        # every video interface: open_id in the query, the token in the access-token header
        query: dict[str, Any] = {"open_id": self.settings.open_id, **(params or {})}
        headers = {"access-token": token.access_token}
        try:
            # No redirects: requests would turn a redirected POST into a GET.
            response = self.request(
                method,
                path,
                what=what,
                params=query,
                headers=headers,
                allow_redirects=False,
                **kwargs,
            )
        except OutcomeUnknown as exc:
            if publishing:
                raise
            # Only create publishes: an upload or read that may have been applied leaves at
            # most an unused video_id behind, so asking again is safe.
            raise Transient(str(exc), code=exc.code) from None
        body = json_object(response)
        code, detail = _error_of(body, self._secrets(token))
        status = response.status_code
        if code is None:
            if status == 401:
                raise _TokenRefused(status, f"HTTP {status}")
            if publishing and 200 <= status < 300:
                raise OutcomeUnknown(
                    f"{what}: HTTP {status} without a Douyin answer; cannot tell whether the"
                    " video was created",
                    code=status,
                )
            if status >= 300:
                raise Permanent(
                    f"{what}: HTTP {status} without a Douyin answer; check api_base"
                    f" ({self.http_settings.api_base})",
                    code=status,
                )
            raise Transient(f"{what}: HTTP {status} without a Douyin answer", code=status)
        if code != 0:
            self._raise_for(code, detail, what, publishing, route)
        return _dict(body.get("data"))

    def scope_message(self, scope: str, detail: str) -> str:
        language = self._language()
        zh, en = NEEDED_FOR.get(scope, (scope, scope))
        return SCOPE_MESSAGE[language].format(
            scope=scope, needed_for=en if language == "en" else zh, detail=detail
        )

    def _raise_for(
        self, code: int, detail: str, what: str, publishing: bool, route: str
    ) -> NoReturn:
        kind = kind_of(code, ERRORS)
        if kind == "auth":
            raise _TokenRefused(code, detail)  # refreshed once and repeated once by _call
        if kind == "permanent" and publishing and _VIDEO_ID_USED.search(detail):
            kind = "video_id_used"  # matched on the text: no source gives its code [?]
        raise error_for(
            kind,
            PUBLISHING_RULES if publishing else RULES,
            code=code,
            what=what,
            detail=detail,
            retry_after=RATE_LIMIT_RETRY_AFTER,
            reauthorize=self._reauthorize_tail(),
            scope_message=self.scope_message(SCOPE_OF.get(route, "video.create.bind"), detail),
        )
