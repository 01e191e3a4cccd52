"""The newspaper's 科普 page (docs/platforms.md §15): a ``print`` channel gathers the posts
targeted at it into one issue per ``issue_days`` day, a DOCX (python-docx) and a plain-text
copy written atomically in ``output_dir``, and tells the newspaper's ``contact``.

Each delivery walks the ordinary engine: ``publish()`` files the post into the next issue
(a state file next to the issues, ``.kepubot-print.json``, rewritten atomically) and answers
``Processing``; ``poll()`` builds the issue once its day has come and answers ``Published``
with the DOCX as the remote reference. ``find()`` reads the state file, so a lost answer is
settled without filing the post twice.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from kepubot.channels.base import (
    Capabilities,
    Problem,
    Processing,
    Published,
    Rendered,
    display_name,
    markdown_to_html,
    markdown_to_text,
    parse_hhmm,
)
from kepubot.channels.feed import _folder_lock, write_atomically
from kepubot.channels.outlet import OutletChannel, OutletSettings
from kepubot.config import MaybeSecret
from kepubot.errors import Transient
from kepubot.models import Delivery, Post

STATE_FILE = ".kepubot-print.json"
DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
Day = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
_BUILD_LOCK = threading.Lock()


def _thursday() -> list[Day]:
    return ["THU"]


class PrintSettings(OutletSettings):
    title: str = Field("科普版", min_length=1)  # the page's name, heads every issue
    issue_days: list[Day] = Field(default_factory=_thursday, min_length=1)
    issue_time: str = "06:00"  # local time the issue is put together on an issue day
    max_characters: int = Field(3000, ge=100, le=100_000)
    # apprise URLs of the newspaper's editor, told when an issue is ready
    contact: list[MaybeSecret] = Field(default_factory=list)
    timezone: str = "Asia/Shanghai"

    @field_validator("issue_time")
    @classmethod
    def _time(cls, value: str) -> str:
        parse_hhmm(value)
        return value


class PrintChannel(OutletChannel):
    channel_type = "print"
    Settings = PrintSettings
    settings: PrintSettings
    capabilities = Capabilities(find=True, poll=True, verify=True)

    def check(self, post: Post) -> list[Problem]:
        problems = super().check(post)
        post = post.for_channel(self.name)
        length = len(markdown_to_text(post.body))
        if length > self.settings.max_characters:
            problems.append(Problem("body", "too_long", self.settings.max_characters, length))
        return problems

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        return Rendered(
            channel=self.name,
            kind="print",
            title=post.title,
            text=markdown_to_text(post.body),
            html=markdown_to_html(post.body),
            media=[m.path for m in post.images],
            extra={"issue": self.next_issue(self._now()).isoformat()},
        )

    # --- when ---------------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def issue_moment(self, day: date) -> datetime:
        hour, minute = parse_hhmm(self.settings.issue_time)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)

    def next_issue(self, now: datetime, *, after: date | None = None) -> date:
        """The first issue day on or after today (local), or after ``after``."""
        day = now.astimezone(self.zone).date()
        if after is not None and day <= after:
            day = after + timedelta(days=1)
        for _ in range(8):
            if DAYS[day.weekday()] in self.settings.issue_days:
                return day
            day += timedelta(days=1)
        raise AssertionError("issue_days is never empty")

    # --- the state file -----------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        path = self.output_path / STATE_FILE
        if not path.is_file():
            return {"issues": {}}
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def _save(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True).encode()
        write_atomically(self.output_path / STATE_FILE, data)

    def _item(self, post: Post) -> dict[str, Any]:
        images = []
        for media in post.images:
            images.append({"file": str(self.media_source(media)), "caption": media.alt})
        return {
            "post_id": post.id,
            "title": post.title,
            "summary": post.summary,
            "body": post.body,
            "images": images,
            "sources": [{"title": s.title, "href": s.href} for s in post.sources],
            "byline": display_name(self.context, post.author) or "",
        }

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Processing:
        post = post.for_channel(self.name)
        folder = self.output_path
        key = str(progress.get("idempotency_key", post.id))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _folder_lock(folder):
                state = self._load()
                found = self._filed(state, key)
                if found is not None and not state["issues"][found].get("file"):
                    # filed again before its issue was built (an edit approved again): the
                    # issue takes the current content
                    state["issues"][found]["items"][key] = self._item(post)
                    self._save(state)
                elif found is None:
                    built = [d for d, i in state["issues"].items() if i.get("file")]
                    last = max((date.fromisoformat(d) for d in built), default=None)
                    issue = self.next_issue(self._now(), after=last)
                    entry = state["issues"].setdefault(issue.isoformat(), {"items": {}})
                    entry["items"][key] = self._item(post)
                    self._save(state)
                    found = issue.isoformat()
        except OSError as exc:
            raise Transient(f"print: cannot write in {folder}: {exc.strerror or exc}") from None
        return self._waiting(found)

    @staticmethod
    def _filed(state: dict[str, Any], key: str) -> str | None:
        for day, issue in state["issues"].items():
            if key in issue["items"]:
                return str(day)
        return None

    def _waiting(self, issue: str) -> Processing:
        wait = (self.issue_moment(date.fromisoformat(issue)) - self._now()).total_seconds()
        return Processing(progress={"issue": issue}, poll_after_seconds=max(1.0, wait))

    def find(self, post: Post, since: Any, progress: dict[str, Any]) -> Processing | None:
        key = str(progress.get("idempotency_key", post.id))
        found = self._filed(self._load(), key)
        return None if found is None else self._waiting(found)

    def poll(self, delivery: Delivery) -> Published | Processing:
        issue = str(delivery.progress.get("issue", ""))
        if not issue:
            from kepubot.errors import Permanent

            raise Permanent("print: the delivery has no issue date; retry it")
        moment = self.issue_moment(date.fromisoformat(issue))
        if self._now() < moment:
            return self._waiting(issue)
        docx = self.build_issue(issue)
        return Published(remote_id=docx.name, remote_url=docx.resolve().as_uri())

    # --- the issue ----------------------------------------------------------------------------

    def issue_stem(self, issue: str) -> str:
        return f"{self.name}-{issue}"

    def build_issue(self, issue: str) -> Path:
        """Write the issue's DOCX and text copy once (later polls find them); tell the contact."""
        folder = self.output_path
        docx_path = folder / f"{self.issue_stem(issue)}.docx"
        text_path = folder / f"{self.issue_stem(issue)}.txt"
        with _BUILD_LOCK, _folder_lock(folder):
            state = self._load()
            entry = state["issues"].get(issue, {"items": {}})
            if entry.get("file") and docx_path.is_file():
                return docx_path
            items = sorted(entry["items"].values(), key=lambda i: i["post_id"])
            try:
                write_atomically(text_path, self.issue_text(issue, items).encode("utf-8"))
                write_atomically(docx_path, self.issue_docx(issue, items))
                entry["file"] = docx_path.name
                state["issues"][issue] = entry
                self._save(state)
            except OSError as exc:
                raise Transient(f"print: cannot write {docx_path}: {exc.strerror or exc}") from None
        if self.settings.contact:
            from kepubot.alerts import notify

            titles = "\n".join(f"- {i['title']}" for i in items)
            notify(
                [u.get_secret_value() for u in self.settings.contact],
                f"{self.settings.title} {issue} 稿件已备好",
                f"共 {len(items)} 篇，文件：{docx_path.name}、{text_path.name}\n{titles}",
            )
        return docx_path

    def issue_text(self, issue: str, items: list[dict[str, Any]]) -> str:
        parts = [f"{self.settings.title}  {issue}", ""]
        for item in items:
            parts += ["=" * 20, item["title"], ""]
            if item["summary"]:
                parts += [item["summary"], ""]
            parts += [markdown_to_text(item["body"]), ""]
            for image in item["images"]:
                if image["caption"]:
                    parts.append(f"〔图〕{image['caption']}")
            if item["sources"]:
                parts.append("参考资料：")
                parts += [
                    f"{n}. {s['title']} {s['href']}" for n, s in enumerate(item["sources"], 1)
                ]
            if item["byline"]:
                parts.append(f"（作者：{item['byline']}）")
            parts.append("")
        return "\n".join(parts)

    def issue_docx(self, issue: str, items: list[dict[str, Any]]) -> bytes:
        from docx import Document
        from docx.shared import Cm
        from markdown_it import MarkdownIt

        document = Document()
        document.core_properties.title = f"{self.settings.title} {issue}"
        document.add_heading(f"{self.settings.title}  {issue}", level=0)
        parser = MarkdownIt("commonmark")
        for number, item in enumerate(items):
            if number:
                document.add_page_break()
            document.add_heading(item["title"], level=1)  # headline
            if item["summary"]:  # standfirst
                standfirst = document.add_paragraph()
                standfirst.add_run(item["summary"]).italic = True
            _markdown_into(document, parser.parse(item["body"]))
            for image in item["images"]:
                try:
                    document.add_picture(image["file"], width=Cm(14))
                except Exception:  # a format Word cannot embed (webp): its caption still says so
                    document.add_paragraph(f"〔图片 {Path(image['file']).name} 请另附〕")
                if image["caption"]:
                    document.add_paragraph(image["caption"], style="Caption")
            if item["sources"]:
                document.add_heading("参考资料", level=3)
                for source in item["sources"]:
                    document.add_paragraph(
                        f"{source['title']} {source['href']}", style="List Number"
                    )
            if item["byline"]:
                document.add_paragraph(f"（作者：{item['byline']}）")
        buffer = io.BytesIO()
        document.save(buffer)
        return buffer.getvalue()


def _markdown_into(document: Any, tokens: list[Any]) -> None:
    """Headings, paragraphs and lists of a post's Markdown as Word paragraphs."""
    list_styles: list[str] = []
    heading: int | None = None
    for token in tokens:
        if token.type == "heading_open":
            heading = min(int(token.tag[1]) + 1, 4)
        elif token.type == "heading_close":
            heading = None
        elif token.type == "bullet_list_open":
            list_styles.append("List Bullet")
        elif token.type == "ordered_list_open":
            list_styles.append("List Number")
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            list_styles.pop()
        elif token.type == "inline":
            text = (
                "".join(
                    child.content
                    for child in token.children or []
                    if child.type in ("text", "code_inline")
                )
                or token.content
            )
            if heading is not None:
                document.add_heading(text, level=heading)
            elif list_styles:
                document.add_paragraph(text, style=list_styles[-1])
            else:
                document.add_paragraph(text)
