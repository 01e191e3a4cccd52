"""Assisted publishing (docs/platforms.md §14, docs/delivery.md §17): outlets with no
publishing interface for us (头条号, 科普中国, 视频号, 小红书, 知乎). kepubot checks the post against
the outlet's rules, writes a copy pack a person pastes from, and tracks the task until the
person confirms it with the published URL (``kepubot delivery confirm``) or declines it.

The delivery walks the ordinary engine: ``publish()`` writes the pack and answers
``Processing`` with ``progress["awaiting_person"]``, which the engine records as the state
``awaiting_person`` (待人工发布; never polled or claimed); only a person's confirmation
publishes it (``kepubot.queue.assisted.confirm``). A lost answer is settled by
``find()``: the pack is written under a name derived from the delivery's idempotency key, so
its presence proves the earlier attempt got that far.
"""

from __future__ import annotations

import hashlib
import html
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from kepubot.channels.base import (
    Capabilities,
    Problem,
    Processing,
    Rendered,
    markdown_to_html,
    markdown_to_text,
)
from kepubot.channels.feed import write_atomically
from kepubot.channels.outlet import OutletChannel, OutletSettings, write_folder
from kepubot.errors import Transient
from kepubot.models import Delivery, Post
from kepubot.sources import html_list

MB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    """One outlet's rules, from its public help pages. Every figure is [gk] (read from help
    pages, not confirmed against the outlet's editor); a person publishes by hand, so a rule
    that is slightly off costs an edit, never a lost post."""

    name_zh: str
    title_min: int
    title_max: int
    body_format: Literal["text", "html"]
    body_max: int | None
    min_images: int
    max_images: int
    image_max_bytes: int
    video_required: bool
    cover_required: bool
    where: str  # README line: where the person publishes


PROFILES: dict[str, Profile] = {
    # 头条号 图文: title 2–30 characters [gk] (mp.toutiao.com help: 标题 2-30 字), the editor
    # takes pasted rich text [gk], images up to 20 MB [gk], a cover chosen from the images.
    "toutiao": Profile(
        "今日头条（头条号）", 2, 30, "html", None, 0, 100, 20 * MB, False, False,
        "登录头条号后台（mp.toutiao.com）→ 创作 → 文章",
    ),
    # 科普中国 contribution: title at most 50 characters [gk], rich text [gk], images 5 MB [gk].
    "kepuchina": Profile(
        "科普中国", 1, 50, "html", None, 0, 50, 5 * MB, False, False,
        "登录科普中国投稿平台 → 发布内容",
    ),
    # 视频号: a video is required; 短标题 6–16 characters [gk], description up to 1000
    # characters [gk], a cover [gk] (the first frame otherwise; we ask for one).
    "wechat_channels": Profile(
        "微信视频号", 6, 16, "text", 1000, 0, 0, 20 * MB, True, False,
        "打开视频号助手（channels.weixin.qq.com）→ 发表视频",
    ),
    # 小红书 note: title at most 20 characters [gk], body at most 1000 characters [gk], 1–18
    # images [gk] (or a video), each up to 20 MB [gk].
    "xiaohongshu": Profile(
        "小红书", 1, 20, "text", 1000, 1, 18, 20 * MB, False, False,
        "打开小红书创作服务平台（creator.xiaohongshu.com）→ 发布笔记",
    ),
    # 知乎 article: title at most 100 characters [gk], rich text [gk], images 20 MB [gk].
    "zhihu": Profile(
        "知乎", 1, 100, "html", None, 0, 100, 20 * MB, False, False,
        "登录知乎 → 写文章（zhuanlan.zhihu.com/write）",
    ),
    "generic": Profile(
        "其他平台", 1, 200, "text", None, 0, 100, 100 * MB, False, False,
        "在该平台的后台按其要求发布",
    ),
}  # fmt: skip

PlatformName = Literal["toutiao", "kepuchina", "wechat_channels", "xiaohongshu", "zhihu", "generic"]


class AssistedSettings(OutletSettings):
    platform: PlatformName = "generic"
    # logins of the people who publish by hand ([users.X]); they are notified (their
    # [users.X] notify URLs, else [alerts] urls) and may confirm or decline
    assignees: list[str] = Field(default_factory=list)
    # a task not confirmed within this many hours alerts (watchdog)
    confirm_within_hours: float = Field(24.0, gt=0, le=8784)
    # an HTML body for outlets that take pasted rich text; None: the profile's choice
    body_format: Literal["text", "html"] | None = None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def pack_name(channel: str, post: Post, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{_safe(channel)}-post{post.id}-{digest}"


class AssistedChannel(OutletChannel):
    channel_type = "assisted"
    Settings = AssistedSettings
    settings: AssistedSettings
    capabilities = Capabilities(find=True, poll=True, verify=True)

    @property
    def profile(self) -> Profile:
        return PROFILES[self.settings.platform]

    @property
    def body_format(self) -> str:
        return self.settings.body_format or self.profile.body_format

    # --- rules --------------------------------------------------------------------------------

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        p = self.profile
        problems: list[Problem] = []
        title = post.title.strip()
        if not title:
            problems.append(Problem("title", "required", detail="标题不能为空"))
        elif len(title) > p.title_max:
            problems.append(Problem("title", "too_long", p.title_max, len(title)))
        elif len(title) < p.title_min:
            problems.append(
                Problem("title", "not_allowed", detail=f"{p.name_zh}标题至少 {p.title_min} 字")
            )
        if p.body_max is not None:
            length = len(markdown_to_text(post.body))
            if length > p.body_max:
                problems.append(Problem("body", "too_long", p.body_max, length))
        images = post.images
        if len(images) > p.max_images:
            problems.append(
                Problem(
                    "image",
                    "not_allowed",
                    detail=f"{p.name_zh}最多 {p.max_images} 张，实际 {len(images)}",
                )
            )
        if len(images) < p.min_images and post.video is None:
            problems.append(
                Problem(
                    "image",
                    "required",
                    detail=f"{p.name_zh}至少需要 {p.min_images} 张图片或一个视频",
                )
            )
        for media in images:
            if media.size > p.image_max_bytes:
                problems.append(
                    Problem(
                        "image",
                        "media_size",
                        f"{p.image_max_bytes // MB} MB",
                        f"{media.name} {media.size / MB:.1f} MB",
                    )
                )
        if p.video_required and post.video is None:
            problems.append(Problem("video", "required", detail=f"{p.name_zh}只发布视频"))
        if p.cover_required and post.cover is None:
            problems.append(Problem("cover", "required", detail=f"{p.name_zh}需要封面"))
        return problems

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        text = markdown_to_text(post.body)
        body_html = markdown_to_html(post.body) + html_list(post.sources)
        return Rendered(
            channel=self.name,
            kind="copy-pack",
            title=post.title,
            text=text,
            html=body_html if self.body_format == "html" else "",
            link=post.link,
            media=[m.path for m in post.media],
            extra={"platform": self.settings.platform, "outlet": self.profile.name_zh},
        )

    # --- the copy pack ------------------------------------------------------------------------

    def pack_paths(self, post: Post, progress: dict[str, Any]) -> tuple[Path, Path]:
        """One pack per delivery and content: an edited, approved-again post gets a new pack
        instead of the old one."""
        key = f"{progress.get('idempotency_key', '')}:{post.content_hash}"
        name = pack_name(self.name, post, key)
        folder = self.output_path / name
        return folder, folder.with_suffix(".zip")

    def publish(self, post: Post, progress: dict[str, Any]) -> Processing:
        post = post.for_channel(self.name)
        folder, archive = self.pack_paths(post, progress)
        delivery_id = progress.get("delivery_id")
        write_folder(folder, lambda temp: self._fill(temp, post, delivery_id))
        if not archive.is_file():
            self._zip(folder, archive)
        return self._waiting(folder, archive)

    def _waiting(self, folder: Path, archive: Path) -> Processing:
        return Processing(
            progress={
                "awaiting_person": True,
                "awaiting_since": self._now().isoformat(),
                "pack": str(folder),
                "zip": str(archive),
            },
            poll_after_seconds=3600,
        )

    def find(self, post: Post, since: Any, progress: dict[str, Any]) -> Processing | None:
        """The pack's folder is renamed into place in one step: present means written, absent
        means nothing reached a person (a new attempt writes it)."""
        folder, archive = self.pack_paths(post.for_channel(self.name), progress)
        if folder.is_dir():
            if not archive.is_file():
                self._zip(folder, archive)
            return self._waiting(folder, archive)
        return None

    def poll(self, delivery: Delivery) -> Processing:
        """Only a person ends the task (confirm or decline); the daemon just waits."""
        return Processing(progress={}, poll_after_seconds=3600)

    def parts(self, post: Post) -> dict[str, str]:
        """Each part a person pastes, by README name (also shown on the console task page)."""
        post = post.for_channel(self.name)
        rendered = self.render(post)
        sources = "\n".join(f"{i}. {s.title}：{s.href}" for i, s in enumerate(post.sources, 1))
        body = rendered.html if self.body_format == "html" else _text_body(post)
        return {
            "title": post.title,
            "summary": post.summary,
            "body": body,
            "link": post.link,
            "sources": sources,
            "tags": " ".join(f"#{t}" for t in post.tags),
        }

    def _fill(self, folder: Path, post: Post, delivery_id: Any = None) -> None:
        parts = self.parts(post)
        body_name = "body.html" if self.body_format == "html" else "body.txt"
        files = {
            "title.txt": parts["title"],
            body_name: _html_page(post.title, parts["body"])
            if body_name == "body.html"
            else parts["body"],
            "summary.txt": parts["summary"],
            "link.txt": parts["link"],
            "sources.txt": parts["sources"],
            "tags.txt": parts["tags"],
        }
        for name, text in files.items():
            if text:
                (folder / name).write_text(text + "\n", encoding="utf-8")
        copied: list[str] = []
        for i, media in enumerate(post.images, 1):
            name = f"image-{i:02d}{Path(media.name).suffix.lower() or '.jpg'}"
            (folder / name).write_bytes(self.media_source(media).read_bytes())
            copied.append(name)
        for extra, stem in ((post.video, "video"), (post.cover, "cover")):
            if extra is not None:
                name = f"{stem}{Path(extra.name).suffix.lower()}"
                (folder / name).write_bytes(self.media_source(extra).read_bytes())
                copied.append(name)
        (folder / "README.txt").write_text(
            self._readme(post, body_name, copied, files, delivery_id), encoding="utf-8"
        )

    def _readme(
        self,
        post: Post,
        body_name: str,
        copied: list[str],
        files: dict[str, str],
        delivery_id: Any = None,
    ) -> str:
        p = self.profile
        if delivery_id is None:  # the engine always passes it; a direct call may not
            raise ValueError("a copy pack's README needs the delivery id (progress['delivery_id'])")
        ident = str(int(delivery_id))
        lines = [
            f"发布到：{p.name_zh}（渠道 {self.name}，投递编号 {ident}）",
            f"发布位置：{p.where}",
            "",
            "按下面的顺序粘贴：",
            f"1. 标题：复制 title.txt 的内容（{p.title_min}–{p.title_max} 字）",
        ]
        if body_name == "body.html":
            lines.append("2. 正文：用浏览器打开 body.html，全选复制后粘贴到编辑器（保留格式）")
        else:
            lines.append("2. 正文：复制 body.txt 的内容（段落之间空一行）")
        if files.get("summary.txt"):
            lines.append("3. 摘要/简介：summary.txt")
        if copied:
            lines.append("4. 图片、视频、封面按文件名顺序上传：" + "、".join(copied))
        if files.get("link.txt"):
            lines.append("5. 原文链接：link.txt")
        if files.get("sources.txt"):
            lines.append("6. 参考资料放在正文末尾：sources.txt")
        if files.get("tags.txt"):
            lines.append("7. 话题标签：tags.txt")
        lines += [
            "",
            "发布后请确认并填写发布地址：",
            f"  控制台任务页点“确认已发布”，或命令行：kepubot delivery confirm {ident} --url 发布地址",
            f"无法发布时请说明原因：kepubot delivery decline {ident} --reason 原因",
        ]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _zip(folder: Path, archive: Path) -> None:
        import io

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                zf.write(path, f"{folder.name}/{path.name}")
        try:
            write_atomically(archive, buffer.getvalue())
        except OSError as exc:
            raise Transient(f"cannot write {archive}: {exc.strerror or exc}") from None


def _text_body(post: Post) -> str:
    """Plain text with a blank line between paragraphs (what text-only editors keep)."""
    text = markdown_to_text(post.body)
    paragraphs = [line.strip() for line in text.split("\n") if line.strip()]
    return "\n\n".join(paragraphs)


def _html_page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>"
    )
