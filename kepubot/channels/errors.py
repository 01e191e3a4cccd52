"""From a platform's documented error code to the error class the queue acts on, one way for
every platform (docs/architecture.md §5.7).

A channel keeps two tables as data:

- its platform's codes: ``{code: kind}`` (``ERRORS`` in ``wechat/codes.py``, ``douyin/codes.py``,
  ``weibo.py``, ``robot.py``, ...), each code with its source; codes not listed get a default
  kind, normally ``"permanent"``;
- its rules: ``{kind: ErrorRule(error class, message template)}``. A call site whose meaning
  differs (a call that creates something, where "system busy" may have been applied; a read,
  which is always safe to repeat) uses its own rule set, usually ``{**RULES, kind: ...}``.

``raise_for_code`` (or ``kind_of`` and then ``error_for``, when a channel handles a kind
itself first, such as a refused token that is refreshed and retried) builds the error. Every
message template is formatted with ``what`` (the call, e.g. ``"wechat main: draft/add"``),
``detail`` (the platform's code and text, masked and cut with ``excerpt``) and any named
fields the call site passes (``hint=...``); ``RateLimited`` gets ``retry_after``.

Which class means what for the queue (docs/delivery.md §4.4): ``Transient`` nothing happened,
retry after a backoff; ``RateLimited`` wait, then retry; ``AuthExpired`` the channel stops until
a person fixes its credentials; ``Permanent`` refused for good; ``OutcomeUnknown`` the request
may have been applied, reconcile and never resend blindly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from kepubot.channels.base import mask_secrets
from kepubot.errors import ChannelError, RateLimited

#: A platform's error codes as data: code -> kind (a key of the channel's rules).
ErrorTable = Mapping[int, str]


@dataclass(frozen=True)
class ErrorRule:
    """What a kind of error becomes: the class the queue acts on, and the message."""

    error: type[ChannelError]
    message: str = "{what}: refused ({detail})"


#: kind -> rule.
ErrorRules = Mapping[str, ErrorRule]


def kind_of(code: int | None, table: ErrorTable, default: str = "permanent") -> str:
    """The kind ``table`` gives ``code``; ``default`` for a code it does not list (or none)."""
    if code is None:
        return default
    return table.get(code, default)


def error_for(
    kind: str,
    rules: ErrorRules,
    *,
    code: int | str | None,
    what: str,
    detail: str,
    retry_after: float | None = None,
    **fields: Any,
) -> ChannelError:
    """The ChannelError that ``rules`` make of ``kind`` (to be raised by the caller)."""
    rule = rules.get(kind)
    if rule is None:
        raise RuntimeError(
            f"{what}: no rule for error kind {kind!r} (code {code}); add it to the channel's rules"
        )
    message = rule.message.format(what=what, detail=detail, **fields)
    if issubclass(rule.error, RateLimited):
        return rule.error(message, retry_after=retry_after, code=code)
    return rule.error(message, code=code)


def raise_for_code(
    code: int | None,
    table: ErrorTable,
    rules: ErrorRules,
    *,
    what: str,
    detail: str,
    default: str = "permanent",
    retry_after: float | None = None,
    **fields: Any,
) -> NoReturn:
    """Raise the ChannelError that ``code`` stands for: its kind in ``table`` (``default``
    when unlisted), made into an error by ``rules``."""
    raise error_for(
        kind_of(code, table, default),
        rules,
        code=code,
        what=what,
        detail=detail,
        retry_after=retry_after,
        **fields,
    )


def check_rules(table: ErrorTable, rules: ErrorRules, default: str = "permanent") -> None:
    """Every kind ``table`` uses (and the default) has a rule; a channel module calls this at
    import, so a kind added to a table without its rule fails at once, loudly."""
    missing = sorted({*table.values(), default} - set(rules))
    if missing:
        raise RuntimeError(f"error kinds without a rule: {', '.join(missing)}")


def excerpt(
    text: object, secrets: Iterable[str] = (), *, limit: int = 200, empty: str = "no errmsg"
) -> str:
    """A platform's error text for a message: one line, every secret masked (a platform may
    echo a credential back), at most ``limit`` characters (then "…"), ``empty`` when blank."""
    one_line = mask_secrets(" ".join(str(text or "").split()), secrets) or empty
    return one_line[:limit] + "…" if len(one_line) > limit else one_line
