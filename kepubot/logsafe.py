"""Secrets never reach logs: a filter that masks tokens in URLs and headers and the literal
values of every loaded secret, installed on the root logger's handlers."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_PATTERNS = [
    re.compile(
        r"((?:access_token|access-token|refresh_token|client_secret|secret|key|sign|appsecret|app_secret)=)[^&\s'\"]+",
        re.I,
    ),
    re.compile(
        r"((?:authorization|access-token|x-kepubot-signature)\s*[:=]\s*)(?:bearer\s+)?[^\s,'\"}]+",
        re.I,
    ),
]
MASK = "***"


class SecretFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s and len(s) >= 4}

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets |= {s for s in secrets if s and len(s) >= 4}

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = SecretFilter()


def install(secrets: Iterable[str] = ()) -> SecretFilter:
    """Attach the filter to every root handler (idempotent) and register more secret values."""
    _FILTER.add(secrets)
    root = logging.getLogger()
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER


def secret_values(obj: object) -> list[str]:
    """Every SecretStr value inside a pydantic model (recursively)."""
    from pydantic import BaseModel, SecretStr

    from kepubot.config import EnvSecret

    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            if isinstance(value, EnvSecret) and not value.is_set():
                return  # a variable that is not set holds nothing to hide
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(obj)
    return found
