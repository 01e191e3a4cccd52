"""Append-only, thread-safe records of what the sandbox accepted and what it was asked.

The ledger is the "platform side" of the Jepsen-style checker in docs/delivery.md §13.1: every
accepted post is in ``accepted`` once per acceptance, every repeat the platform refused is in
``duplicates``. Nothing is ever removed except by a whole reset.
"""

from __future__ import annotations

import copy
import threading
from typing import Any


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: list[dict[str, Any]] = []
        self._duplicates: list[dict[str, Any]] = []
        self._deleted: list[dict[str, Any]] = []

    def delete(
        self,
        route: str,
        name_or_key: str,
        at: float,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A publication the platform took down at its owner's request (a retraction), once per
        deletion that changed something: deleting what is already gone is not recorded."""
        return self._add(
            self._deleted, _entry(route, name_or_key, None, at, idempotency_key, extra)
        )

    def accept(
        self,
        route: str,
        name_or_key: str,
        body: Any,
        at: float,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return self._add(
            self._accepted, _entry(route, name_or_key, body, at, idempotency_key, extra)
        )

    def duplicate(
        self,
        route: str,
        name_or_key: str,
        body: Any,
        at: float,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return self._add(
            self._duplicates, _entry(route, name_or_key, body, at, idempotency_key, extra)
        )

    def _add(self, entries: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entries.append(entry)
        return entry

    def snapshot(self, route: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Deep copies of both lists, oldest first, optionally of one route only."""
        with self._lock:
            accepted = [e for e in self._accepted if route is None or e["route"] == route]
            duplicates = [e for e in self._duplicates if route is None or e["route"] == route]
            deleted = [e for e in self._deleted if route is None or e["route"] == route]
            return {
                "accepted": copy.deepcopy(accepted),
                "duplicates": copy.deepcopy(duplicates),
                "deleted": copy.deepcopy(deleted),
            }

    def clear(self) -> None:
        with self._lock:
            self._accepted.clear()
            self._duplicates.clear()
            self._deleted.clear()


def _entry(
    route: str,
    name_or_key: str,
    body: Any,
    at: float,
    idempotency_key: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "route": route,
        "name_or_key": name_or_key,
        "idempotency_key": idempotency_key,
        "body": copy.deepcopy(body),
        "at": at,
    }
    entry.update(extra)
    return entry


class RequestLog:
    """Every request the emulated platforms saw, with secrets already stripped from the path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(
        self,
        route: str | None,
        method: str,
        path: str,
        at: float,
        status: int | None,
        fault: str | None,
    ) -> None:
        entry = {
            "route": route,
            "method": method,
            "path": path,
            "at": at,
            "status": status,
            "fault": fault,
        }
        with self._lock:
            self._entries.append(entry)

    def snapshot(self, route: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries if route is None or e["route"] == route]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
