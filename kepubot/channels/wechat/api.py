"""The WeChat API plumbing every step uses: settings, the shared access token and one call.

The access token lives in the credentials store, shared by every daemon and refreshed single
flight (docs/delivery.md §10): before it expires (< 5 minutes left) and once when a call finds it
refused (40001/40014/42001), after which the call is repeated once. The token travels in the
query string, so no URL ever goes into an error message or a log line; neither does the token
or the app secret.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import Field

from kepubot.channels.base import ChannelContext, HttpChannel, HttpChannelSettings, Token
from kepubot.channels.wechat.codes import PLATFORM_TZ, TOKEN_ERRCODES, raise_for_errcode
from kepubot.config import Secret
from kepubot.errors import AuthExpired, OutcomeUnknown, Permanent, StoreError, Transient
from kepubot.models import Media

#: "create": makes something (draft, publish task, mass send): an unanswered call is
#: OutcomeUnknown. "upload": media (a repeat stores a second copy at worst). "read": queries.
CallKind = Literal["create", "upload", "read"]
JSON_HEADERS = {"Content-Type": "application/json"}
DEFAULT_EXPIRES_IN = 7200  # seconds, when the token answer omits expires_in [src: wechatpy]


class WechatSettings(HttpChannelSettings):
    app_id: str = Field(min_length=1)
    app_secret: Secret
    # freepublish: published (not pushed to followers); draft: left in the draft box for a
    # person to finish; masssend: pushed to followers (limited number per day).
    mode: Literal["freepublish", "draft", "masssend"] = "freepublish"
    author: str = ""
    api_base: str = "https://api.weixin.qq.com"
    need_open_comment: bool = False
    only_fans_can_comment: bool = False
    # stable_token is separate from cgi-bin/token: another system fetching a token for the
    # same app through cgi-bin/token does not invalidate ours [src: docs/platforms.md §3.1].
    token_endpoint: Literal["stable_token", "token"] = "stable_token"
    # masssend: unset sends to every follower; a tag id sends to that tag only.
    mass_tag_id: int | None = None
    # masssend: go on when the article is judged a reprint that its author allows.
    send_ignore_reprint: bool = False
    # how long to wait between two polls of an accepted job: freepublish/get (a publish job)
    # or message/mass/get (a mass send, which 「API群发保护」 holds until an administrator
    # confirms, at most 30 minutes)
    poll_seconds: float = Field(60.0, gt=0)  # [gk] publishing takes a minute or more


class WechatApi(HttpChannel):
    """Token handling and one API call; the channel's steps are built on ``_call``."""

    Settings = WechatSettings
    settings: WechatSettings

    def _token(self) -> Token:
        """The shared token, refreshed single flight when it is missing or has < 5 min left."""
        token = self._context().credentials.get(self.name)
        if token is None or token.expires_soon(self._now()):
            token = self._refresh(token)
        return token

    def _refresh(self, stale: Token | None) -> Token:
        """A new token unless another process already replaced ``stale`` (single flight)."""
        try:
            return self._context().credentials.refresh(self.name, self._fetch_token, stale=stale)
        except StoreError as exc:  # another daemon holds the refresh lease too long
            raise Transient(f"{self._what('access token')}: {exc}") from None

    def _fetch_token(self, current: Token | None) -> Token:
        """Ask the platform for a token (called by the store while it holds the refresh lease)."""
        what = self._what("access token")
        secret = self.settings.app_secret.get_secret_value()
        if self.settings.token_endpoint == "stable_token":
            body = {
                "grant_type": "client_credential",
                "appid": self.settings.app_id,
                "secret": secret,
                "force_refresh": False,  # true invalidates the token every daemon uses
            }
            try:
                response = self.request(
                    "POST",
                    "cgi-bin/stable_token",
                    what=what,
                    data=json_bytes(body),
                    headers=JSON_HEADERS,
                    allow_redirects=False,
                )
            except OutcomeUnknown as exc:  # fetching a token changes nothing that matters
                raise Transient(str(exc), code=exc.code) from None
        else:
            params = {
                "grant_type": "client_credential",
                "appid": self.settings.app_id,
                "secret": secret,
            }
            response = self.request(
                "GET", "cgi-bin/token", what=what, params=params, allow_redirects=False
            )
        answer = self._answer(response, what, "read")
        raise_for_errcode(
            errcode_of(answer),
            answer.get("errmsg"),
            what=what,
            creates=False,
            now=self._now(),
            secrets=[secret],
            auth_hint="check app_id, app_secret and the account's IP whitelist",
        )
        access_token = answer.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise Transient(f"{what}: the answer has no access_token")
        expires_in = as_int(answer.get("expires_in"), 0) or DEFAULT_EXPIRES_IN
        self.log.info("%s: new token, valid for %d s", what, expires_in)
        return Token(access_token, expires_at=self._now() + timedelta(seconds=expires_in))

    # --- one API call -----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        step: str,
        kind: CallKind,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        upload: Media | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """One call with the shared token. A refused token is refreshed (single flight) and the
        call repeated once; errcodes in ``accept`` are returned instead of raised."""
        what = self._what(step)
        token = self._token()
        refreshed = False
        while True:
            answer = self._send(method, path, what, kind, token, body, params, upload)
            errcode = errcode_of(answer)
            if errcode in TOKEN_ERRCODES and not refreshed:
                self.log.info("%s: access token refused (errcode %d); refreshing it", what, errcode)
                token = self._refresh(token)
                refreshed = True
                continue
            if errcode in accept:
                return answer
            hint = (
                "the token was refused again right after a refresh; check that nothing else"
                " force-refreshes this app's token"
                if errcode in TOKEN_ERRCODES
                else "check the account's permissions and status in the WeChat console"
            )
            raise_for_errcode(
                errcode,
                answer.get("errmsg"),
                what=what,
                creates=kind == "create",
                now=self._now(),
                secrets=[token.access_token, self.settings.app_secret.get_secret_value()],
                auth_hint=hint,
            )
            return answer

    def _send(
        self,
        method: str,
        path: str,
        what: str,
        kind: CallKind,
        token: Token,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        upload: Media | None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "params": {**(params or {}), "access_token": token.access_token},
            "allow_redirects": False,  # a redirected POST would turn into a GET
        }
        if body is not None:
            kwargs["data"] = json_bytes(body)
            kwargs["headers"] = JSON_HEADERS
        with ExitStack() as stack:
            if upload is not None:
                try:
                    handle = stack.enter_context(open(self._media_file(upload), "rb"))
                except OSError as exc:
                    raise Permanent(
                        f"{what}: cannot read media file {upload.path} ({exc.strerror})"
                    ) from None
                # The store's name (sha256.ext) keeps the extension the platform checks.
                name = PurePosixPath(upload.path).name
                kwargs["files"] = {"media": (name, handle, upload.mime)}
            try:
                response = self.request(method, path, what=what, **kwargs)
            except OutcomeUnknown as exc:
                if kind == "create":
                    raise
                # Reads change nothing, and a repeated upload only stores a second copy.
                raise Transient(str(exc), code=exc.code) from None
        return self._answer(response, what, kind)

    def _answer(self, response: Any, what: str, kind: CallKind) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise AuthExpired(
                f"{what}: refused with HTTP {status}; check api_base and the account's IP"
                " whitelist",
                code=status,
            )
        if not 200 <= status < 300:
            if kind == "read":
                raise Transient(f"{what}: unexpected HTTP {status}", code=status)
            raise Permanent(f"{what}: refused with HTTP {status}; check api_base", code=status)
        try:
            value = response.json()
        except ValueError:
            value = None
        if not isinstance(value, dict):
            if kind == "create":
                raise OutcomeUnknown(
                    f"{what}: HTTP {status} without a JSON answer; cannot tell whether it was done",
                    code=status,
                )
            raise Transient(f"{what}: HTTP {status} without a JSON answer", code=status)
        return value

    def _field(self, answer: dict[str, Any], key: str, step: str, kind: CallKind) -> str:
        value = answer.get(key)
        if value in (None, ""):
            message = f"{self._what(step)}: success without {key}"
            if kind == "create":
                raise OutcomeUnknown(message + "; cannot tell what was made")
            raise Transient(message)
        return str(value)

    # --- helpers ----------------------------------------------------------------------------

    def _context(self) -> ChannelContext:
        if self.context is None:
            raise RuntimeError(f"channel {self.name} was built without a context")
        return self.context

    def _now(self) -> datetime:
        return self._context().now()

    def _today(self) -> date:
        """Today on the platform's calendar (datacube dates) [gk]."""
        return self._now().astimezone(PLATFORM_TZ).date()

    def _what(self, step: str) -> str:
        return f"wechat {self.name}: {step}"

    def _media_file(self, item: Media) -> str:
        return item.file or self._context().media_file(item.path)


def json_bytes(body: dict[str, Any]) -> bytes:
    # Real characters, not \\uXXXX escapes [src: docs/platforms.md §3.4, wechatpy].
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def errcode_of(answer: dict[str, Any]) -> int:
    """errcode missing or 0 is success [src]; a non-numeric one is treated as an error."""
    value = answer.get("errcode", 0)
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return -2


def as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
