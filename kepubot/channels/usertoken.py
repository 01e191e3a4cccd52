"""A user's OAuth tokens for the open-platform video channels (Bilibili, Kuaishou): seeded from
the configuration, kept in the encrypted credentials store, refreshed single-flight across
daemons, an alert before the refresh token runs out, and a paused channel (AuthExpired, its
deliveries stay queued) when the account must authorise again (docs/platforms.md §12, §13).

It follows the Douyin channel's tokens (docs/platforms.md §4.1): the configured
``access_token``/``refresh_token`` are copied into the store under the channel's name, with a
salted digest of the configured refresh token under ``"<name>:source"`` so that newly
configured tokens (the account authorised again) win over the stored ones. The store never
replaces a refresh token with an empty one.

A subclass provides ``_fetch_token`` (the platform's refresh call), ``_secrets`` and the
platform's name for messages (``PLATFORM_ZH``/``PLATFORM_EN``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from kepubot.channels.base import Credentials, HttpChannel, Token
from kepubot.errors import AuthExpired, StoreError, Transient

SOURCE_SUFFIX = ":source"  # credentials key of the configured-token digest
SCOPE_SUFFIX = ":scope"  # credentials key of the scopes the platform last reported
REFRESH_MARGIN_SECONDS = 3600.0  # refresh this long before the access token expires
REFRESH_ALERT = timedelta(days=7)  # alert this long before the refresh token runs out


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


class UserTokenApi(HttpChannel):
    """Token handling shared by the Bilibili and Kuaishou channels."""

    PLATFORM_ZH: ClassVar[str] = ""
    PLATFORM_EN: ClassVar[str] = ""
    #: How long a configured refresh token of unknown age is assumed to live (an upper bound).
    REFRESH_LIFETIME: ClassVar[timedelta] = timedelta(days=30)

    def _credentials(self) -> Credentials:
        if self.context is None:
            raise RuntimeError(f"{self.type_name()} {self.name}: no context, so no credentials")
        return self.context.credentials

    def _now(self) -> datetime:
        return self.context.now() if self.context is not None else datetime.now(UTC)

    def _language(self) -> str:
        return "en" if getattr(self.context, "language", "zh") == "en" else "zh"

    # -- what a subclass provides ------------------------------------------------------------

    def _configured(self) -> tuple[str, str]:
        """(access_token, refresh_token) as configured."""
        settings: Any = self.settings
        return settings.access_token.get_secret_value(), settings.refresh_token.get_secret_value()

    def _identity(self) -> tuple[str, ...]:
        """Settings that name the application and the account (part of the source digest)."""
        return ()

    def _fetch_token(self, current: Token | None) -> Token:
        raise NotImplementedError

    def _secrets(self, token: Token | None) -> list[str]:
        access, refresh = self._configured()
        values = [access, refresh]
        if token is not None:
            values += [token.access_token, token.refresh_token or ""]
        return values

    # -- tokens ------------------------------------------------------------------------------

    def source_fingerprint(self) -> str:
        """A salted digest of the configured refresh token: enough to notice that the operator
        configured new tokens, useless for recovering them."""
        digest = hashlib.sha256(f"kepubot-{self.type_name()}-source-v1".encode())
        for part in (self.name, *self._identity(), self._configured()[1]):
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
            stored = self.refresh(stored, what=f"{self.type_name()} {self.name}: token refresh")
        self._alert_if_ending(stored)
        return stored

    def _seed(self, credentials: Credentials, stored: Token | None, fingerprint: str) -> Token:
        access, refresh = self._configured()
        configured = Token(
            access_token=access,
            refresh_token=refresh,
            expires_at=None,  # unknown: refreshed when the platform says it expired
            refresh_expires_at=self._now() + self.REFRESH_LIFETIME,  # an upper bound
        )
        try:
            token = credentials.refresh(self.name, lambda current: configured, stale=stored)
        except StoreError as exc:
            raise Transient(f"{self.type_name()} {self.name}: token store: {exc}") from None
        if token.access_token == configured.access_token:
            credentials.put(self.name + SOURCE_SUFFIX, Token(access_token=fingerprint))
            self.log.info("%s %s: using the configured tokens", self.type_name(), self.name)
        return token

    def refresh(self, stale: Token, *, what: str) -> Token:
        """A new access token, single flight: a process that refreshed meanwhile wins and
        nothing is sent. The platform decides whether the refresh token still works (a stored
        expiry is only our estimate)."""
        try:
            return self._credentials().refresh(self.name, self._fetch_token, stale=stale)
        except StoreError as exc:
            raise Transient(f"{what}: token store: {exc}") from None

    def _alert_if_ending(self, token: Token) -> None:
        """Alert REFRESH_ALERT before the refresh token runs out: after that the account must
        authorise the application again (neither platform documents a way to extend it)."""
        end = token.refresh_expires_at
        now = self._now()
        if end is None or end - now > REFRESH_ALERT:
            return
        alert = getattr(self.context, "alert", None)
        if not callable(alert):
            return
        stamp = when(end)
        if self._language() == "en":
            title = (
                f"kepubot: {self.PLATFORM_EN} channel {self.name}: its authorization ends {stamp}"
            )
            body = (
                f"The refresh token of [channels.{self.name}] expires {stamp}. Have the account"
                " authorise the application again on the open platform, then configure the new"
                " access_token and refresh_token. Until then its posts wait in the queue."
            )
        else:
            title = f"kepubot：{self.PLATFORM_ZH}渠道 {self.name} 的授权将于 {stamp} 到期"
            body = (
                f"[channels.{self.name}] 的 refresh_token 将于 {stamp} 失效。请让账号在开放平台"
                "重新授权应用，然后配置新的 access_token 和 refresh_token；在此之前，该渠道的"
                "稿件会留在队列中等待，不会丢失。"
            )
        alert(f"{self.type_name()}-authorization:{self.name}:{end.date().isoformat()}", title, body)

    def reauthorize(self, what: str, reason: str) -> str:
        return (
            f"{what}: {reason}; the {self.PLATFORM_EN} account must authorise the application"
            f" again, then set the new access_token and refresh_token of [channels.{self.name}]"
            " (its deliveries stay queued until then)"
        )

    def refresh_expired(self, token: Token, what: str) -> AuthExpired:
        return AuthExpired(
            self.reauthorize(what, f"the refresh token expired at {when(token.refresh_expires_at)}")
        )
