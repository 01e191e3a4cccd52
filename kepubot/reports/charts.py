"""The report's charts, drawn on the server as SVG by pygal (docs/architecture.md §15.4).

Each chart shows every metric the platforms report (a metric no row reported is left out, not
drawn as zero) and channel names in full. The SVG stands alone: pygal's script tags (its
tooltip loader and its config) and its comments are removed, so the chart needs nothing from
outside, obeys a Content-Security-Policy without inline script and prints as it shows."""

from __future__ import annotations

import re
from typing import Any

from kepubot.reports.labels import label

INTERACTION_KEYS = ("likes", "comments", "shares", "favorites")
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FONT = '"PingFang SC","Noto Sans CJK SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif'


def _style() -> Any:
    from pygal.style import Style

    return Style(
        font_family=_FONT,
        background="white",
        plot_background="white",
        foreground="#1f2933",
        foreground_strong="#1f2933",
        foreground_subtle="#9aa5b1",
        colors=("#3b7ddd", "#f0883e", "#1a7f37", "#8250df", "#c62828"),
        title_font_size=15,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        value_font_size=10,
    )


def _config(kind: Any, title: str, **extra: Any) -> Any:
    return kind(
        title=title,
        style=_style(),
        js=[],  # no script from outside (pygal loads its tooltips from the web by default)
        disable_xml_declaration=True,  # embedded in HTML
        explicit_size=False,  # scales with the page, in print too
        width=640,
        height=340,
        truncate_label=-1,  # channel names in full
        truncate_legend=-1,
        legend_at_bottom=True,
        show_legend=True,
        allow_interruptions=True,  # a day without figures is a gap, not zero
        print_values=False,
        **extra,
    )


def _clean(svg: str) -> str:
    return _COMMENT.sub("", _SCRIPT.sub("", svg))


def _series(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[str, list[Any]]]:
    """(metric, values) for each of ``keys`` some row reported; None stays a gap."""
    found = []
    for key in keys:
        values = [row.get(key) for row in rows]
        if any(v is not None for v in values):
            found.append((key, values))
    return found


def charts(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, SVG) of each chart: the daily views and interactions, the channels' views and
    interactions. A chart with nothing reported is left out."""
    import pygal

    lang = report["language"]
    days = report["daily"]
    channels = list(report["channels"].items())
    out: list[tuple[str, str]] = []
    day_labels = [d["date"][5:] for d in days]
    plan = [
        ("chart-daily-views", "chart_views", pygal.Line, days, ("views",), day_labels),
        (
            "chart-daily-interactions",
            "chart_interactions",
            pygal.Line,
            days,
            INTERACTION_KEYS,
            day_labels,
        ),
        (
            "chart-channel-views",
            "chart_channels",
            pygal.HorizontalBar,
            [c for _, c in channels],
            ("views",),
            [name for name, _ in channels],
        ),
        (
            "chart-channel-interactions",
            "chart_channel_interactions",
            pygal.HorizontalBar,
            [c for _, c in channels],
            INTERACTION_KEYS,
            [name for name, _ in channels],
        ),
    ]
    for chart_id, title_key, kind, rows, keys, labels in plan:
        series = _series(rows, keys)
        if not series:
            continue
        extra: dict[str, Any] = {}
        if kind is pygal.Line:
            extra["x_label_rotation"] = 0 if len(labels) <= 14 else 45
            extra["show_minor_x_labels"] = len(labels) <= 31
            extra["x_labels_major_every"] = max(1, len(labels) // 10)
        chart = _config(kind, label(title_key, lang), **extra)
        chart.x_labels = labels
        for key, values in series:
            chart.add(label(key, lang), values)
        out.append((chart_id, _clean(chart.render())))
    return out
