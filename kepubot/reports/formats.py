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
    "rate_interactions",
    "rate_views",
    "rate_deliveries",
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
    "rate_deliveries",
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
            [
                [_marked(name, c.get("figure_sources"), lang), *[c.get(k) for k in CHANNEL_KEYS]]
                for name, c in report["channels"].items()
            ],
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


def rate_definition(report: dict[str, Any]) -> str:
    """How the engagement rate is made, with the interactions, views and count of deliveries
    it covers (the same set as the headline's rate), so that it can be checked by hand."""
    totals = report["totals"]
    return label("rate_definition", report["language"]).format(
        count=totals.get("rate_deliveries") or 0,
        interactions=fmt(totals.get("rate_interactions")),
        views=fmt(totals.get("rate_views")),
    )


def to_table(report: dict[str, Any]) -> str:
    lang = report["language"]
    period = report["period"]
    lines = [
        f"{label('title', lang)}  {period['since']} ~ {period['until']} ({period['timezone']})",
        f"{label('previous', lang)}: {report['previous']['since']} ~ {report['previous']['until']}",
        rate_definition(report),
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


def _marked(name: str, sources: dict[str, int] | None, lang: str) -> str:
    """A channel whose figures came from an import or by hand says so next to its name
    (docs/delivery.md §17.3)."""
    if not sources:
        return name
    words = {"imported": ("导入", "imported"), "manual": ("手工录入", "by hand")}
    marks = [words[k][1 if lang == "en" else 0] for k in sorted(sources) if k in words]
    if not marks:
        return name
    if lang == "en":
        return f"{name} (figures {', '.join(marks)})"
    return f"{name}（数据：{'、'.join(marks)}）"


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


SECTION_NAMES = ("totals", "channels", "top_posts", "top_engagement", "tags", "authors", "daily")


def section_name(text: str) -> str:
    """A section as the user named it: its English name or its Chinese title (各渠道)."""
    from kepubot.errors import InvalidInput

    wanted = text.strip()
    for name in SECTION_NAMES:
        if wanted in (name, label(name, "zh"), label(name, "en")):
            return name
    choices = ", ".join(f"{n} ({label(n, 'zh')})" for n in SECTION_NAMES)
    raise InvalidInput(f"--section {text!r}: no such section; use one of {choices}")


def section_csv(report: dict[str, Any], name: str) -> bytes:
    """One section as a CSV a spreadsheet pivots directly: the header on the first row, one
    record per row, raw numbers, empty for null; UTF-8 with BOM so that Excel opens Chinese
    text correctly.

    Every text cell (titles, tags, authors, channel names) is neutralised by ``safe_text`` and
    every non-numeric cell is quoted, with embedded quotes doubled, as OWASP recommends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    for found, header, rows in sections(report):
        if found != name:
            continue
        writer.writerow([_csv_cell(h) for h in header])
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def to_csv(report: dict[str, Any], section: str | None = None) -> bytes:
    """``section``: that section's CSV; otherwise a zip with one CSV per section
    (``01-totals.csv`` …) and ``README.txt`` naming the period, its zone and the rate's
    definition."""
    import zipfile

    if section is not None:
        return section_csv(report, section_name(section))
    period = report["period"]
    lang = report["language"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        note = (
            f"{label('title', lang)}\n{label('period', lang)}: {period['since']} ~"
            f" {period['until']} ({period['timezone']})\n{rate_definition(report)}\n"
        )
        archive.writestr("README.txt", note.encode("utf-8"))
        for index, name in enumerate(SECTION_NAMES, start=1):
            archive.writestr(f"{index:02d}-{name}.csv", section_csv(report, name))
    return buffer.getvalue()


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


#: the metric columns each chart draws, when the platform reported them
CHART_KEYS = ("views", "likes", "comments", "shares", "favorites")


def to_xlsx(report: dict[str, Any]) -> bytes:
    """A workbook with a sheet per section: a title row naming the report, section and period,
    a frozen header row, dates as dates, rates as percentages, columns as wide as their
    (Chinese) text, and native Excel charts of the daily trend and the channels."""
    from datetime import date

    from openpyxl import Workbook
    from openpyxl.styles import Font

    lang = report["language"]
    period = report["period"]
    book = Workbook()
    first = True
    for name, header, rows in sections(report):
        sheet = book.active if first else book.create_sheet()
        first = False
        assert sheet is not None
        sheet.title = label(name, lang)[:31]
        title = (
            f"{label('title', lang)} · {label(name, lang)} · {label('period', lang)}"
            f" {period['since']} ~ {period['until']} ({period['timezone']})"
        )
        _append_text_safe(sheet, [title])
        sheet["A1"].font = Font(bold=True, size=13)
        _append_text_safe(sheet, header)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        widths = [_display_width(str(h)) for h in header]
        for r, row in enumerate(rows):
            values = list(row)
            if name == "daily" and isinstance(values[0], str):
                values[0] = date.fromisoformat(values[0])  # a date Excel can sort and chart
            _append_text_safe(sheet, values)
            for i, cell in enumerate(sheet[sheet.max_row]):
                key = cell_key(name, r, i)
                if isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
                elif key in ("engagement_rate",) and isinstance(cell.value, int | float):
                    cell.number_format = "0.00%"
                elif key == "change" and isinstance(cell.value, int | float):
                    cell.number_format = "+0.0%;-0.0%;0.0%"
                widths[i] = max(widths[i], _display_width(_cell(row[i], key)))
        for index, width in enumerate(widths, start=1):
            letter = sheet.cell(2, index).column_letter
            sheet.column_dimensions[letter].width = min(60, max(8, width + 2))
        # the title and header rows stay in view, and so does the first column
        sheet.freeze_panes = "B3"
        if name in ("daily", "channels") and rows:
            _chart(sheet, name, header, len(rows), lang)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _chart(sheet: Any, name: str, header: list[str], count: int, lang: str) -> None:
    """A native chart beside the table: the daily trend as lines, the channels as bars, one
    series per metric the rows report (a metric no row reported is left out)."""
    from openpyxl.chart import BarChart, LineChart, Reference

    keys = _keys_for(name)
    chart: Any = LineChart() if name == "daily" else BarChart()
    chart.title = label(name, lang)
    chart.height, chart.width = 9, 18
    last = 2 + count
    for column, key in enumerate(keys, start=1):
        if key not in CHART_KEYS:
            continue
        reported = any(sheet.cell(row, column).value is not None for row in range(3, last + 1))
        if reported:
            data = Reference(sheet, min_col=column, min_row=2, max_row=last)
            chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=3, max_row=last))
    if name == "daily":
        chart.x_axis.number_format = "mm-dd"
    sheet.add_chart(chart, f"{sheet.cell(1, len(header) + 2).column_letter}3")
