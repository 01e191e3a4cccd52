"""The exception tree. Imports nothing of ours.

Every error a user can cause is a ``KepubotError`` whose message is one line saying what was
wrong, where, and what to do. ``exit_code`` is what the command line exits with.
"""

from __future__ import annotations


class KepubotError(Exception):
    """Root of every error kepubot raises on purpose."""

    exit_code = 1


class ConfigError(KepubotError):
    """The configuration file is missing, malformed or inconsistent."""

    exit_code = 2


class InvalidInput(KepubotError):
    """Input from the user (arguments, files, rows) is wrong."""

    exit_code = 2


class NotFound(InvalidInput):
    """A post, delivery or other object named by the user does not exist."""


class NotAllowed(KepubotError):
    """The action is refused: wrong role, workflow rule, or a disallowed state change."""

    exit_code = 2


class InvalidTransition(NotAllowed):
    """A delivery or post state change outside the state machine of docs/delivery.md §2."""


class StoreError(KepubotError):
    """The database is unusable (wrong schema version, corruption, locked too long)."""

    exit_code = 1


class LeaseLost(StoreError):
    """A fenced write found the row no longer held by this worker (lease owner/version changed)."""


class ChannelError(KepubotError):
    """A channel could not complete a call. Subclasses say what the queue should do next."""

    exit_code = 1

    def __init__(self, message: str, *, code: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Transient(ChannelError):
    """Nothing reached the platform (or it said so): safe to retry after a backoff."""


class RateLimited(ChannelError):
    """The platform asked us to wait. ``retry_after`` is seconds to wait, when known."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class AuthExpired(ChannelError):
    """Credentials are expired or revoked: stop the channel until re-authorized or refreshed."""


class Permanent(ChannelError):
    """The platform refused this content for good (validation, policy): do not retry."""


class OutcomeUnknown(ChannelError):
    """The request may have reached the platform (timeout, reset, 5xx): reconcile, never resend."""
