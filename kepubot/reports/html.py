"""One self-contained HTML file: tables plus inline SVG charts, readable offline, printable."""

from __future__ import annotations

from html import escape
from typing import Any

from kepubot.reports.formats import cell_key, rate_definition, sections
from kepubot.reports.labels import fmt, label

# the standalone file's page: font, width, headings, print
_PAGE_CSS = """
body{font-family:"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",system-ui,sans-serif;
margin:2em auto;max-width:1080px;color:#1f2933;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:2px solid #3b7ddd;
padding-bottom:.2em}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,.chart{break-inside:avoid}}
"""
#: the report's own content (cards, tables, charts): the standalone file and the console's
#: report page both use it
CONTENT_CSS = """
.meta{color:#52606d}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}.card{border:1px solid #d9e2ec;border-radius:6px;
padding:.6em 1em;min-width:8em}.card .k{color:#52606d;font-size:.85em}.card .v{font-size:1.4em;font-weight:600}
.card .c{font-size:.8em}.up{color:#1a7f37}.down{color:#c62828}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:.5em 0}
th,td{border-bottom:1px solid #e4e7eb;padding:.35em .5em;text-align:right}
th:first-child,td:first-child,td.text,th.text{text-align:left}th{background:#f5f7fa}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.chart{flex:1 1 460px}
.chart svg{width:100%;height:auto}
"""

_TEXT_COLUMNS = {"top_posts": {1, 2, 3}, "top_engagement": {1, 2, 3}}


def to_html(report: dict[str, Any]) -> str:
    """A standalone HTML document (inline CSS and SVG, no scripts, no outside files)."""
    lang = report["language"]
    period = report["period"]
    return (
        "<!DOCTYPE html>"
        f'<html lang="{"en" if lang == "en" else "zh-CN"}"><head><meta charset="utf-8">'
        f"<title>{escape(label('title', lang))} {period['since']} ~ {period['until']}</title>"
        f"<style>{_PAGE_CSS}{CONTENT_CSS}</style></head><body>{body_html(report)}</body></html>"
    )


def body_html(report: dict[str, Any]) -> str:
    """The report's content (headings, figure cards, SVG charts, tables), for embedding."""
    lang = report["language"]
    L = lambda key: label(key, lang)  # noqa: E731
    period, totals, change = report["period"], report["totals"], report["change"]
    cards = []
    for key in (
        "posts",
        "deliveries",
        "views",
        "likes",
        "comments",
        "shares",
        "favorites",
        "engagement_rate",
        "followers_gained",
        "failed",
        "retracted",
    ):
        delta = change.get(key)
        css = "" if delta is None else ("up" if delta >= 0 else "down")
        # the rate's own set under it: interactions ÷ views of the deliveries reporting views
        basis = (
            f'<div class="c" id="rate-basis">{escape(fmt(totals.get("rate_interactions")))} ÷'
            f" {escape(fmt(totals.get('rate_views')))}"
            f" ({escape(L('rate_deliveries'))} {totals.get('rate_deliveries') or 0})</div>"
            if key == "engagement_rate"
            else ""
        )
        cards.append(
            f'<div class="card"><div class="k">{escape(L(key))}</div>'
            f'<div class="v">{escape(fmt(totals.get(key), key))}</div>{basis}'
            f'<div class="c {css}">{escape(L("change"))} {escape(fmt(delta, "change"))}</div></div>'
        )
    from kepubot.reports.charts import charts as drawn

    # pygal's SVG, without its scripts: offline, printable, CSP-safe (docs/architecture.md §15.4)
    drawings = drawn(report)
    charts = (
        '<div class="charts">'
        + "".join(f'<div class="chart" id="{cid}">{svg}</div>' for cid, svg in drawings)
        + "</div>"
        if drawings
        # nothing reported in the period: say so rather than draw empty axes
        else f'<p class="meta" id="charts-empty">{escape(L("no_charts"))}</p>'
    )
    tables = []
    for name, header, rows in sections(report):
        text_cols = _TEXT_COLUMNS.get(name, set())
        head = "".join(
            f"<th{' class=text' if i in text_cols else ''}>{escape(str(h))}</th>"
            for i, h in enumerate(header)
        )
        body = []
        for r, row in enumerate(rows):
            cells = []
            for i, value in enumerate(row):
                css = ' class="text"' if i in text_cols else ""
                cells.append(f"<td{css}>{escape(fmt(value, cell_key(name, r, i)))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        if not rows:
            body.append(f'<tr><td colspan="{len(header)}">{escape(L("none"))}</td></tr>')
        tables.append(
            f"<h2>{escape(L(name))}</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items() if v)
    return (
        f"<h1>{escape(L('title'))}</h1>"
        f'<p class="meta">{escape(L("period"))}: {period["since"]} ~ {period["until"]} ({escape(period["timezone"])})'
        f" · {escape(L('previous'))}: {report['previous']['since']} ~ {report['previous']['until']}"
        f" · {escape(L('generated'))}: {escape(report['generated_at'])}"
        + (f" · {escape(L('filters'))}: {escape(filters)}" if filters else "")
        + "</p>"
        f'<div class="cards">{"".join(cards)}</div>{_rate_definition(report)}{charts}'
        f"{''.join(tables)}"
    )


def _rate_definition(report: dict[str, Any]) -> str:
    return f'<p class="meta" id="rate-definition">{escape(rate_definition(report))}</p>'
