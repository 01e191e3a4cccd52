"""Output formats. Every format lays out the same numbers from ``aggregate.build_report``."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from typing import Any

from kepubot.reports.labels import fmt, label

SUMMARY_KEYS = (
    "posts",
    "deliveries",
    "views",
    "likes",
    "comments",
    "shares",
    "favorites",
    "interactions",
    "engagement_rate",
    "failed",
    "needs_attention",
    "followers_gained",
    "retracted",
)
CHANNEL_KEYS = (
    "posts",
    "deliveries",
    "views",
    "likes",
    "comments",
    "shares",
    "favorites",
    "engagement_rate",
    "failed",
    "needs_attention",
    "followers_gained",
)
POST_KEYS = ("views", "likes", "comments", "shares", "favorites", "engagement_rate")
GROUP_KEYS = (
    "posts",
    "deliveries",
    "views",
    "likes",
    "comments",
    "shares",
    "favorites",
    "engagement_rate",
)


def sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(name, header, rows) tables shared by table, CSV and XLSX. Values are raw (None stays
    None) so each format renders them its own way."""
    lang = report["language"]
    L = lambda key: label(key, lang)  # noqa: E731
    totals, change = report["totals"], report["change"]
    out: list[tuple[str, list[str], list[list[Any]]]] = []
    out.append(
        (
            "totals",
            [L("metric"), L("value"), L("previous"), L("change")],
            [
                [L(k), totals.get(k), report["previous"]["totals"].get(k), change.get(k)]
                for k in SUMMARY_KEYS
            ],
        )
    )
    out.append(
        (
            "channels",
            [L("channel"), *[L(k) for k in CHANNEL_KEYS]],
            [[name, *[c.get(k) for k in CHANNEL_KEYS]] for name, c in report["channels"].items()],
        )
    )
    for key in ("top_posts", "top_engagement"):
        out.append(
            (
                key,
                [
                    L("post_id"),
                    L("title_col"),
                    L("author"),
                    L("channel"),
                    *[L(k) for k in POST_KEYS],
                ],
                [
                    [
                        p["post_id"],
                        p["title"],
                        p["author"],
                        ",".join(p["channels"]),
                        *[p.get(k) for k in POST_KEYS],
                    ]
                    for p in report[key]
                ],
            )
        )
    for key, first in (("tags", "tag"), ("authors", "author")):
        out.append(
            (
                key,
                [L(first), *[L(k) for k in GROUP_KEYS]],
                [[name, *[g.get(k) for k in GROUP_KEYS]] for name, g in report[key].items()],
            )
        )
    out.append(
        (
            "daily",
            [L("date"), *[L(k) for k in GROUP_KEYS]],
            [[d["date"], *[d.get(k) for k in GROUP_KEYS]] for d in report["daily"]],
        )
    )
    return out


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell(value: Any, header_key: str) -> str:
    return fmt(value, header_key)


def to_table(report: dict[str, Any]) -> str:
    lang = report["language"]
    period = report["period"]
    lines = [
        f"{label('title', lang)}  {period['since']} ~ {period['until']} ({period['timezone']})",
        f"{label('previous', lang)}: {report['previous']['since']} ~ {report['previous']['until']}",
    ]
    for name, header, rows in sections(report):
        lines.append("")
        lines.append(f"== {label(name, lang)} ==")
        text_rows = [
            [_cell(v, cell_key(name, r, i)) for i, v in enumerate(row)]
            for r, row in enumerate(rows)
        ]
        widths = [
            max([_display_width(h)] + [_display_width(r[i]) for r in text_rows])
            for i, h in enumerate(header)
        ]
        for row in [header, *text_rows]:
            lines.append(
                "  ".join(
                    c + " " * (widths[i] - _display_width(c)) for i, c in enumerate(row)
                ).rstrip()
            )
        if not rows:
            lines.append(f"({label('none', lang)})")
    return "\n".join(lines) + "\n"


def cell_key(name: str, row: int, column: int) -> str:
    """The metric a cell holds, so that a rate prints as a percentage and a change as +x%."""
    if name == "totals":
        return ("", SUMMARY_KEYS[row], SUMMARY_KEYS[row], "change")[column]
    keys = _keys_for(name)
    return keys[column] if column < len(keys) else ""


def _keys_for(name: str) -> list[str]:
    """The metric key of each column, so a rate prints as a percentage."""
    if name == "totals":
        return ["", "", "", "change"]
    if name == "channels":
        return ["", *CHANNEL_KEYS]
    if name in ("top_posts", "top_engagement"):
        return ["", "", "", "", *POST_KEYS]
    return ["", *GROUP_KEYS]


# A text cell starting with one of these is read as a formula (or a DDE command) by Excel,
# LibreOffice and Google Sheets; OWASP's advice for CSV is to prefix such a cell with "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    return value


def to_csv(report: dict[str, Any]) -> bytes:
    """UTF-8 with BOM so that Excel opens Chinese text correctly; raw numbers, empty for null.

    Every text cell (titles, tags, authors, channel names) is neutralised by ``safe_text`` and
    every non-numeric cell is quoted, with embedded quotes doubled, as OWASP recommends."""
    lang = report["language"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    period = report["period"]
    first = [label("period", lang), period["since"], period["until"], period["timezone"]]
    writer.writerow([_csv_cell(v) for v in first])
    for name, header, rows in sections(report):
        writer.writerow([])
        writer.writerow([_csv_cell(label(name, lang))])
        writer.writerow([_csv_cell(h) for h in header])
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


def _append_text_safe(sheet: Any, values: list[Any]) -> None:
    """Append a row whose text cells stay text: openpyxl turns any string starting with "="
    into a formula, so each string cell is typed back to a plain string ("s"), and marked
    with a quote prefix so that editing it in Excel keeps it text."""
    sheet.append(values)
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"
            cell.quotePrefix = True


def to_xlsx(report: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    lang = report["language"]
    book = Workbook()
    first = True
    for name, header, rows in sections(report):
        sheet = book.active if first else book.create_sheet()
        first = False
        assert sheet is not None
        sheet.title = label(name, lang)[:31]
        _append_text_safe(sheet, header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            _append_text_safe(sheet, list(row))
        for index, column in enumerate(header, start=1):
            width = max(
                [_display_width(str(column))]
                + [_display_width(str(r[index - 1] or "")) for r in rows]
            )
            sheet.column_dimensions[sheet.cell(1, index).column_letter].width = min(60, width + 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
