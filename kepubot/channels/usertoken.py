"""A user's OAuth tokens for the open-platform video channels (Douyin, Bilibili, Kuaishou):
seeded from the configuration, kept in the encrypted credentials store, refreshed single-flight
across daemons, an alert before the refresh token runs out, and a paused channel
(AuthExpired, its deliveries stay queued) when the account must authorise again
(docs/platforms.md §4.1, §12, §13).

The configured ``access_token``/``refresh_token`` are copied into the store under the
channel's name, with a salted digest of the configured refresh token under
``"<name>:source"`` so that newly configured tokens (the account authorised again) win over
the stored ones. The store never replaces a refresh token with an empty one (postiz PR
#1884).

Every user-scoped call goes through ``call``: a refused access token (an "auth" code or HTTP
401, ``TokenRefused``) is refreshed once (single flight) and the call repeated once; an
answer that is not the platform's, or an error code, becomes the ChannelError the queue acts
on (kepubot/channels/errors.py) with the platform's own rules and messages.

A subclass provides what its platform's documentation makes different: ``_fetch_token`` (the
refresh call and its fields), ``_send`` (paths, signing, where the token goes), ``_error_of``
(reading an answer), the error tables and rules (``ERRORS``, ``RULES``,
``PUBLISHING_RULES``, ``REFRESH_RULES``), ``scope_message`` and the platform's name for
messages (``PLATFORM_ZH``/``PLATFORM_EN``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NoReturn

from kepubot.channels.base import Credentials, HttpChannel, Token, json_object
from kepubot.channels.errors import ErrorRule, error_for, kind_of
from kepubot.errors import (
    AuthExpired,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    StoreError,
    Transient,
)

SOURCE_SUFFIX = ":source"  # credentials key of the configured-token digest
SCOPE_SUFFIX = ":scope"  # credentials key of the scopes the platform last reported
REFRESH_MARGIN_SECONDS = 3600.0  # refresh this long before the access token expires
REFRESH_ALERT = timedelta(days=7)  # alert this long before the refresh token runs out

#: The kinds every video platform's calls turn into the same errors (kepubot/channels/errors.py);
#: a platform's RULES add its own kinds and messages to these.
CALL_RULES: dict[str, ErrorRule] = {
    "rate_limited": ErrorRule(RateLimited, "{what}: rate limited ({detail})"),
    "busy": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "permanent": ErrorRule(Permanent, "{what}: refused ({detail})"),
}
#: The same for a refused token refresh (every other kind ends the authorization).
REFRESH_CALL_RULES: dict[str, ErrorRule] = {
    "rate_limited": CALL_RULES["rate_limited"],
    "busy": CALL_RULES["busy"],
}


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


class TokenRefused(Exception):
    """The platform refused the access token (an "auth" code, or HTTP 401 without an answer):
    the request was not applied, so ``call`` refreshes once and repeats once."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Call:
    """One user-scoped call as ``call`` was asked for it (sent again after a refresh)."""

    method: str
    route: str
    what: str
    publishing: bool
    params: dict[str, Any]
    kwargs: dict[str, Any]


class UserTokenApi(HttpChannel):
    """Token handling and the one user-scoped call shared by the video channels."""

    PLATFORM_ZH: ClassVar[str] = ""
    PLATFORM_EN: ClassVar[str] = ""
    #: How long a configured refresh token of unknown age is assumed to live (an upper bound).
    REFRESH_LIFETIME: ClassVar[timedelta] = timedelta(days=30)
    #: True where the platform documents the refresh token's lifetime: a stored expiry in the
    #: past is then refused here, without asking. Else only the platform decides (the stored
    #: expiry is our estimate).
    REFRESH_EXPIRY_KNOWN: ClassVar[bool] = False

    #: The platform's codes and the rules that make errors of them (kepubot/channels/errors.py).
    ERRORS: ClassVar[Mapping[int, str]] = {}
    RULES: ClassVar[Mapping[str, ErrorRule]] = {}
    PUBLISHING_RULES: ClassVar[Mapping[str, ErrorRule]] = {}
    REFRESH_RULES: ClassVar[Mapping[str, ErrorRule]] = {}
    #: The kind a refused refresh gets when REFRESH_RULES do not name its own kind.
    REFRESH_REFUSED: ClassVar[str] = "refused"
    #: A refresh refused as busy whose text says the refresh token expired is REFRESH_REFUSED.
    REFRESH_EXPIRED_TEXT: ClassVar[re.Pattern[str] | None] = None
    RATE_LIMIT_RETRY_AFTER: ClassVar[float] = 60.0
    #: The code of a successful answer.
    SUCCESS: ClassVar[int] = 0
    #: The scope a route needs (for the message when it is missing), and the default.
    SCOPE_OF: ClassVar[Mapping[str, str]] = {}
    DEFAULT_SCOPE: ClassVar[str] = ""
    #: What a publishing call answered without the platform's answer may have done.
    OUTCOME: ClassVar[str] = "the video was published"

    def _credentials(self) -> Credentials:
        if self.context is None:
            raise RuntimeError(f"{self.type_name()} {self.name}: no context, so no credentials")
        return self.context.credentials

    def _now(self) -> datetime:
        return self.context.now() if self.context is not None else datetime.now(UTC)

    def _language(self) -> str:
        return "en" if getattr(self.context, "language", "zh") == "en" else "zh"

    def _what(self, step: str) -> str:
        return f"{self.type_name()} {self.name}: {step}"

    # -- what a subclass provides ------------------------------------------------------------

    def _configured(self) -> tuple[str, str]:
        """(access_token, refresh_token) as configured."""
        settings: Any = self.settings
        return settings.access_token.get_secret_value(), settings.refresh_token.get_secret_value()

    def _identity(self) -> tuple[str, ...]:
        """Settings that name the application and the account (part of the source digest)."""
        return ()

    def _app_secrets(self) -> tuple[str, ...]:
        """The application's own secrets, masked in every message."""
        return ()

    def _fetch_token(self, current: Token | None) -> Token:
        raise NotImplementedError

    def _send(self, call: Call, token: Token) -> dict[str, Any]:
        """Send ``call`` with ``token``; the answer's part the caller wants."""
        raise NotImplementedError

    def _error_of(self, body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
        """(code, one-line detail) of an answer; (None, "") when it is not the platform's."""
        raise NotImplementedError

    def scope_message(self, scope: str, detail: str) -> str:
        raise NotImplementedError

    def _check_hint(self) -> str:
        """What to check when an answer is not the platform's."""
        return "check api_base"

    def _secrets(self, token: Token | None) -> list[str]:
        access, refresh = self._configured()
        values = [*self._app_secrets(), access, refresh]
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
            stored = self.refresh(stored, what=self._what("token refresh"))
        return self._after_token(stored)

    def _after_token(self, token: Token) -> Token:
        """What happens to every token before it is used: an alert when it ends soon."""
        self._alert_if_ending(token)
        return token

    def _seed(self, credentials: Credentials, stored: Token | None, fingerprint: str) -> Token:
        """Store the configured tokens (first use, or the operator configured new ones)."""
        access, refresh = self._configured()
        configured = Token(
            access_token=access,
            refresh_token=refresh,
            expires_at=None,  # unknown: refreshed when the platform says it expired
            # Unknown too; the refresh token's whole life is an upper bound. (Also replaces the
            # expiry of the tokens these supersede, which the store would otherwise keep.)
            refresh_expires_at=self._now() + self.REFRESH_LIFETIME,
        )
        try:
            # Under the refresh lease: a process that refreshed or seeded meanwhile wins.
            token = credentials.refresh(self.name, lambda current: configured, stale=stored)
        except StoreError as exc:
            raise Transient(f"{self.type_name()} {self.name}: token store: {exc}") from None
        if token.access_token == configured.access_token:
            credentials.put(self.name + SOURCE_SUFFIX, Token(access_token=fingerprint))
            self._seeded(credentials)
            self.log.info("%s %s: using the configured tokens", self.type_name(), self.name)
        return token

    def _seeded(self, credentials: Credentials) -> None:
        """The configured tokens were just stored (a new authorization)."""

    def refresh(self, stale: Token, *, what: str) -> Token:
        """A new access token, single flight: a process that refreshed meanwhile wins and
        nothing is sent."""
        if (
            self.REFRESH_EXPIRY_KNOWN
            and stale.refresh_expires_at is not None
            and stale.refresh_expires_at <= self._now()
        ):
            raise self.refresh_expired(stale, what)
        try:
            return self._credentials().refresh(self.name, self._fetch_token, stale=stale)
        except StoreError as exc:
            raise Transient(f"{what}: token store: {exc}") from None

    def _refresh_token_to_send(self, current: Token | None) -> str:
        """The stored refresh token, else the configured one."""
        if current is not None and current.refresh_token:
            return current.refresh_token
        return self._configured()[1]

    def _store_scopes(self, granted: str) -> None:
        """What the user granted, as the platform last reported it (for `channels check`)."""
        self._credentials().put(self.name + SCOPE_SUFFIX, Token(access_token=granted))

    def _refresh_request(self, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
        """The refresh call: it publishes nothing, so an answer that may have been lost is
        asked for again later."""
        try:
            return self.request(method, url, what=what, allow_redirects=False, **kwargs)
        except OutcomeUnknown as exc:
            raise Transient(str(exc), code=exc.code) from None

    def _raise_refresh_error(self, code: int, detail: str, what: str) -> NoReturn:
        kind = self._kind(code, detail)
        if (
            self.REFRESH_EXPIRED_TEXT is not None
            and kind in ("busy", "transient")
            and self.REFRESH_EXPIRED_TEXT.search(detail)
        ):
            kind = (
                self.REFRESH_REFUSED
            )  # the text says the refresh token expired, whatever the code
        raise error_for(
            kind if kind in self.REFRESH_RULES else self.REFRESH_REFUSED,
            self.REFRESH_RULES,
            code=code,
            what=what,
            detail=detail,
            retry_after=self.RATE_LIMIT_RETRY_AFTER,
            reauthorize=self._refresh_reauthorize(what, detail),
        )

    def _refresh_reauthorize(self, what: str, detail: str) -> str:
        return self.reauthorize(what, f"{self.PLATFORM_EN} refused the refresh ({detail})")

    def _alert_if_ending(self, token: Token) -> None:
        """Alert REFRESH_ALERT before the refresh token runs out: after that the account must
        authorise the application again (Bilibili and Kuaishou document no way to extend it; Douyin
        renews it instead, see ``DouyinApi._after_token``)."""
        end = token.refresh_expires_at
        now = self._now()
        if end is None or end - now > REFRESH_ALERT:
            return
        stamp = when(end)
        self._alert_authorization_ends(
            end,
            f"The refresh token of [channels.{self.name}] expires {stamp}. Have the account"
            " authorise the application again on the open platform, then configure the new"
            " access_token and refresh_token. Until then its posts wait in the queue.",
            f"[channels.{self.name}] 的 refresh_token 将于 {stamp} 失效。请让账号在开放平台"
            "重新授权应用，然后配置新的 access_token 和 refresh_token；在此之前，该渠道的"
            "稿件会留在队列中等待，不会丢失。",
        )

    def _alert_authorization_ends(self, end: datetime, body_en: str, body_zh: str) -> None:
        """The alert that the account's authorization ends at ``end`` (one a day at most: the
        key names the day), in the configured language, where the context can alert."""
        alert = getattr(self.context, "alert", None)
        if not callable(alert):
            return
        stamp = when(end)
        if self._language() == "en":
            title = (
                f"kepubot: {self.PLATFORM_EN} channel {self.name}: its authorization ends {stamp}"
            )
            body = body_en
        else:
            title = f"kepubot：{self.PLATFORM_ZH}渠道 {self.name} 的授权将于 {stamp} 到期"
            body = body_zh
        alert(f"{self.type_name()}-authorization:{self.name}:{end.date().isoformat()}", title, body)

    def reauthorize(self, what: str, reason: str) -> str:
        return f"{what}: {reason}; {self._reauthorize_tail()}"

    def _reauthorize_tail(self) -> str:
        return (
            f"the {self.PLATFORM_EN} account must authorise the application again, then set"
            f" the new access_token and refresh_token of [channels.{self.name}] (its"
            " deliveries stay queued until then)"
        )

    def refresh_expired(self, token: Token, what: str) -> AuthExpired:
        return AuthExpired(
            self.reauthorize(what, f"the refresh token expired at {when(token.refresh_expires_at)}")
        )

    def _stored_token(self, token: Token, what: str) -> Token:
        """The token as stored now (a call may have refreshed it); AuthExpired when its refresh
        token has run out."""
        token = self._credentials().get(self.name) or token
        if token.refresh_expires_at is not None and token.refresh_expires_at <= self._now():
            raise AuthExpired(self.reauthorize(what, "the refresh token has expired"))
        return token

    # -- one call ----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        route: str,
        *,
        what: str,
        publishing: bool = False,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One user-scoped call. A refused access token is refreshed once (single flight) and
        the call repeated once: the refusal means the request was not applied."""
        request = Call(method, route, what, publishing, dict(params or {}), kwargs)
        token = self.token()
        try:
            return self._send(request, token)
        except TokenRefused:
            pass
        token = self.refresh(token, what=what)
        try:
            return self._send(request, token)
        except TokenRefused as refused:
            raise AuthExpired(
                self.reauthorize(
                    what,
                    f"{self.PLATFORM_EN} refused the access token right after a refresh"
                    f" ({refused})",
                ),
                code=refused.code,
            ) from None

    def _step(self, method: str, url: str, *, what: str, publishing: bool, **kwargs: Any) -> Any:
        """One request of a call; no redirects (requests would turn a redirected POST into a
        GET). Only a publishing call may leave the outcome unknown: any other step that may
        have been applied is asked again safely."""
        try:
            return self.request(method, url, what=what, allow_redirects=False, **kwargs)
        except OutcomeUnknown as exc:
            if publishing:
                raise
            raise Transient(str(exc), code=exc.code) from None

    def answer(
        self, response: Any, what: str, publishing: bool, route: str, token: Token | None
    ) -> dict[str, Any]:
        """The whole answer of a successful call; else the error it means."""
        body = json_object(response)
        code, detail = self._error_of(body, self._secrets(token))
        if code is None:
            self._no_answer(response.status_code, what, publishing)
        if code != self.SUCCESS:
            self._raise_for(code, detail, what, publishing, route)
        return body

    def _no_answer(self, status: int, what: str, publishing: bool) -> NoReturn:
        platform = self.PLATFORM_EN
        if status == 401:
            raise TokenRefused(status, f"HTTP {status}")
        if publishing and 200 <= status < 300:
            raise OutcomeUnknown(
                f"{what}: HTTP {status} without a {platform} answer; cannot tell whether"
                f" {self.OUTCOME}",
                code=status,
            )
        if status >= 300:
            raise Permanent(
                f"{what}: HTTP {status} without a {platform} answer; {self._check_hint()}",
                code=status,
            )
        raise Transient(f"{what}: HTTP {status} without a {platform} answer", code=status)

    def _kind(self, code: int, detail: str) -> str:
        return kind_of(code, self.ERRORS)

    def _call_kind(self, code: int, detail: str, publishing: bool) -> str:
        return self._kind(code, detail)

    def _call_reauthorize(self, what: str, detail: str) -> str:
        return self.reauthorize(what, f"the authorization ended ({detail})")

    def _raise_for(
        self, code: int, detail: str, what: str, publishing: bool, route: str
    ) -> NoReturn:
        kind = self._call_kind(code, detail, publishing)
        if kind == "auth":
            raise TokenRefused(code, detail)  # refreshed once and repeated once by call
        raise error_for(
            kind,
            self.PUBLISHING_RULES if publishing else self.RULES,
            code=code,
            what=what,
            detail=detail,
            retry_after=self.RATE_LIMIT_RETRY_AFTER,
            reauthorize=self._call_reauthorize(what, detail),
            scope_message=self.scope_message(self.SCOPE_OF.get(route, self.DEFAULT_SCOPE), detail),
        )
