"""What the video-platform emulators (Douyin, Bilibili, Kuaishou) share: a user's access and
refresh tokens with their expiry, the control API's checks of ``POST /_sandbox/secrets``,
``POST /_sandbox/expire`` and the counters behind ``stats``.

Only plumbing lives here: each emulator keeps its own grants, codes, messages, fields and
answers, written from its platform's documentation and as strict as it. Like every emulator,
this module never imports kepubot.channels (docs/architecture.md §2.2).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kepubot.sandbox.base import Endpoint, Request, Response, json_response

H = TypeVar("H")


class PlatformError(Exception):
    """A platform's refusal: its code and message, answered in the platform's own shape."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def find_route(
    request: Request, routes: Mapping[str, tuple[str | tuple[str, ...], H]], not_found: Response
) -> H | Response:
    """The handler of the request's path and method: else ``not_found`` (the platform's 404)
    or a 405 naming the allowed method."""
    entry = routes.get(request.path)
    if entry is None:
        return not_found
    methods, handler = entry
    allowed = (methods,) if isinstance(methods, str) else methods
    if request.method not in allowed:
        return json_response(405, {"error": "method not allowed"}, {"Allow": allowed[0]})
    return handler


@dataclass
class Token:
    """An access or refresh token of one grant (the emulator's own record of the user)."""

    grant: Any
    expires_at: float
    expired: bool = False  # by the control API
    replaced: bool = False  # refresh tokens: rotated or renewed away

    def ended(self, now: float) -> bool:
        """Expired by the control API or by time (``replaced`` is the caller's to check)."""
        return self.expired or now >= self.expires_at


class UserTokenEndpoint(Endpoint):
    """An emulated open platform whose calls act for a user holding tokens.

    A subclass sets ``route`` and the settings ``<route>_access_expires_in`` and
    ``<route>_refresh_expires_in`` (seconds), and provides ``_zero_stats``. Token tables are
    guarded by ``_lock``; ``_client`` holds the application's (id, secret) once registered.
    """

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._lock = threading.Lock()
        self._client: tuple[str, str] | None = None
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}
        self._stats = self._zero_stats()

    def _zero_stats(self) -> dict[str, int]:
        raise NotImplementedError

    def _new_access(self, grant: Any, now: float) -> Token:
        return Token(grant, now + self.setting(f"{self.route}_access_expires_in"))

    def _new_refresh(self, grant: Any, now: float) -> Token:
        return Token(grant, now + self.setting(f"{self.route}_refresh_expires_in"))

    # -- control ---------------------------------------------------------------------------

    def _check_secret_names(self, value: Any, names: set[str]) -> None:
        if not isinstance(value, dict) or set(value) - names:
            raise ValueError(f'"{self.route}" takes an object with some of {sorted(names)}')

    def _check_secret_pairs(self, value: dict[str, Any], app: tuple[str, str], owner: str) -> None:
        """The application's id and secret come together; tokens name the user they belong to."""
        if (app[0] in value) != (app[1] in value):
            raise ValueError(f'"{self.route}" needs {app[0]} and {app[1]} together')
        if ("access_token" in value or "refresh_token" in value) and owner not in value:
            raise ValueError(f'"{self.route}" tokens need the {owner} they belong to')

    def _secret_scopes(self, value: dict[str, Any], default: list[str]) -> list[str]:
        scopes = value.get("scopes", default)
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ValueError(f'"{self.route}" scopes must be a list of strings')
        return list(scopes)

    def _set_app_and_tokens(
        self,
        value: Any,
        *,
        app: tuple[str, str],
        owner: str,
        scopes: list[str],
        grant: Callable[[str, list[str]], Any],
    ) -> None:
        """``POST /_sandbox/secrets`` for a platform whose tokens carry a list of ``scopes``:
        the application's (id, secret) and the user's tokens, for ``grant(owner, scopes)``."""
        self._check_secret_names(value, {*app, "access_token", "refresh_token", owner, "scopes"})
        self._check_secret_pairs(value, app, owner)
        granted = self._secret_scopes(value, scopes)
        now = self.context.now()
        with self._lock:
            if app[0] in value:
                self._client = (str(value[app[0]]), str(value[app[1]]))
            if "access_token" in value or "refresh_token" in value:
                self._register_tokens(value, grant(str(value[owner]), granted), now)

    def _register_tokens(self, value: dict[str, Any], grant: Any, now: float) -> None:
        """Registering is a fresh authorization: the tokens are valid again. Caller holds the
        lock."""
        if "access_token" in value:
            self._access[value["access_token"]] = self._new_access(grant, now)
        if "refresh_token" in value:
            self._refresh[value["refresh_token"]] = self._new_refresh(grant, now)

    def expire(self, payload: dict[str, Any]) -> None:
        what = payload.get("what")
        if what not in ("access", "refresh"):
            raise ValueError(f'{self.route}: send "what": "access" or "refresh"')
        with self._lock:
            for token in (self._access if what == "access" else self._refresh).values():
                token.expired = True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._stats)

    def _reset_tokens(self) -> None:
        """Forget the application, every token and the counters. Caller holds the lock."""
        self._client = None
        self._access.clear()
        self._refresh.clear()
        self._stats = self._zero_stats()
