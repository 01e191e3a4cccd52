"""Format dispatch."""

from __future__ import annotations

from typing import Any


def render(report: dict[str, Any], fmt: str, section: str | None = None) -> str | bytes:
    from kepubot.reports import formats

    if fmt == "table":
        return formats.to_table(report)
    if fmt == "csv":
        return formats.to_csv(report, section)
    if fmt == "json":
        return formats.to_json(report)
    if fmt == "xlsx":
        return formats.to_xlsx(report)
    if fmt == "html":
        from kepubot.reports.html import to_html

        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r}")
