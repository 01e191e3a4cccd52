"""``kepubot metrics import FILE --channel C`` (docs/delivery.md §17.3): an outlet's own data
export (CSV or XLSX) becomes metric snapshots marked ``imported``, all or nothing.

Rows are matched to the channel's published deliveries by URL, else by title and the day
of publication (local time). A row that matches nothing is listed, not stored; a row with a
bad figure is an error (file, row, column) and nothing is stored.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepubot.models import MetricSnapshot
from kepubot.timeutil import from_db

if TYPE_CHECKING:
    from kepubot.app import App

#: Toutiao's 作品数据 export (头条号后台 → 数据 → 作品数据 → 导出), column names [gk]: read
#: from help pages and shared exports, not confirmed against a current download. A differing
#: file is imported with ``--mapping`` (our field=their column).
TOUTIAO_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("标题", "作品标题", "文章标题"),
    "published": ("发布时间", "首发时间"),
    "url": ("链接", "作品链接", "文章链接"),
    "views": ("阅读量", "阅读数", "播放量", "展现量"),
    "likes": ("点赞量", "点赞数"),
    "comments": ("评论量", "评论数"),
    "shares": ("分享量", "转发量", "分享数"),
    "favorites": ("收藏量", "收藏数"),
}
#: The generic export: English or Chinese headers; override with --mapping.
GENERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "标题"),
    "published": ("published", "date", "发布时间", "日期"),
    "url": ("url", "link", "链接"),
    "views": ("views", "reads", "阅读量", "播放量"),
    "likes": ("likes", "点赞量"),
    "comments": ("comments", "评论量"),
    "shares": ("shares", "分享量"),
    "favorites": ("favorites", "收藏量"),
}
FIGURES = ("views", "likes", "comments", "shares", "favorites")


@dataclass
class ImportResult:
    stored: list[tuple[int, int, dict[str, int | None]]] = field(default_factory=list)
    unmatched: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_rows(path: Path) -> list[list[str]]:
    """The file's rows as text cells; ValueError with the reason when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            import openpyxl
        except ImportError:  # pragma: no cover - openpyxl is a dependency
            raise ValueError("reading .xlsx needs openpyxl; save the export as CSV") from None
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise ValueError(f"not a readable .xlsx file ({type(exc).__name__})") from None
        sheet = book.worksheets[0]
        rows = [
            ["" if v is None else (v.isoformat(" ") if isinstance(v, datetime) else str(v))
             for v in row]
            for row in sheet.iter_rows(values_only=True)
        ]  # fmt: skip
        book.close()
        return rows
    if suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):  # Chinese Excel saves CSV as GBK
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError("the file is neither UTF-8 nor GBK text; save it as UTF-8 CSV")
        return [row for row in csv.reader(io.StringIO(text))]
    raise ValueError(f"unsupported file type {suffix or '(none)'}; give a .csv or .xlsx export")


def _number(text: str) -> int | None:
    text = text.strip().replace(",", "")
    if text in ("", "-", "--"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(万|w|W)?", text)
    if not match:
        raise ValueError(text)
    value = float(match.group(1)) * (10000 if match.group(2) else 1)
    return round(value)


def _day(text: str) -> str | None:
    match = re.match(r"\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})", text)
    if not match:
        return None
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}-{int(match.group(3)):02d}"


def import_file(
    app: App,
    actor: str,
    path: Path,
    *,
    channel: str,
    export_format: str,
    mapping: dict[str, str],
    now: datetime,
) -> ImportResult:
    from kepubot.services.assisted import may_act

    result = ImportResult()
    where = path.name
    if not may_act(app, actor, channel):
        result.errors.append(
            f"importing figures for {channel} needs the operator role or being one of its"
            f" assignees; user {actor!r} is neither"
        )
        return result
    try:
        rows = read_rows(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        result.errors.append(f"{where}: {reason}")
        return result
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        result.errors.append(f"{where}: the file is empty; export the outlet's data again")
        return result
    header = [c.strip() for c in rows[0]]
    known = TOUTIAO_COLUMNS if export_format == "toutiao" else GENERIC_COLUMNS
    columns: dict[str, int] = {}
    for name, candidates in known.items():
        wanted = (mapping[name],) if name in mapping else candidates
        for candidate in wanted:
            if candidate in header:
                columns[name] = header.index(candidate)
                break
        else:
            if name in mapping:
                result.errors.append(
                    f"{where}: row 1: no column {mapping[name]!r} (mapped to {name});"
                    f" columns are: {', '.join(header)}"
                )
    if "title" not in columns and "url" not in columns:
        result.errors.append(
            f"{where}: row 1: no title or link column (looked for"
            f" {', '.join(known['title'] + known['url'])}); pass --mapping title=COLUMN"
        )
    if not any(f in columns for f in FIGURES):
        result.errors.append(
            f"{where}: row 1: no figure column (looked for {', '.join(known['views'])} …);"
            " pass --mapping views=COLUMN"
        )
    if result.errors:
        return result

    from zoneinfo import ZoneInfo

    zone = ZoneInfo(app.config.timezone)
    by_url: dict[str, int] = {}
    by_title_day: dict[tuple[str, str], int] = {}
    for d in app.store.assisted.published_on(channel):
        if d["remote_url"]:
            by_url[d["remote_url"].strip().rstrip("/")] = d["id"]
        if d["published_at"]:
            local_day = from_db(d["published_at"]).astimezone(zone).date().isoformat()
            by_title_day[(d["title"].strip(), local_day)] = d["id"]

    def cell(row: list[str], name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    for number, row in enumerate(rows[1:], start=2):
        figures: dict[str, int | None] = {}
        for name in FIGURES:
            if name not in columns:
                continue
            try:
                figures[name] = _number(cell(row, name))
            except ValueError as exc:
                header_name = header[columns[name]]
                result.errors.append(
                    f"{where}: row {number}, column {header_name}: {exc.args[0]!r} is not a"
                    " number; fix the cell or remove the row"
                )
        url = cell(row, "url").rstrip("/")
        title = cell(row, "title")
        day = _day(cell(row, "published")) if "published" in columns else None
        delivery_id = by_url.get(url) if url else None
        if delivery_id is None and title and day:
            delivery_id = by_title_day.get((title, day))
        if delivery_id is None:
            result.unmatched.append((number, title or url))
            continue
        result.stored.append((number, delivery_id, figures))
    if result.errors:
        result.stored = []
        return result
    with app.store.transaction():
        for number, delivery_id, figures in result.stored:
            raw: dict[str, Any] = {"file": where, "row": number}
            app.store.metrics.store_snapshot(
                delivery_id,
                MetricSnapshot(**figures, raw=raw),
                now=now,
                source="imported",
                actor=actor,
            )
    return result
