"""Group-chat robots: WeCom (企业微信, platforms.md §4.3) and DingTalk (钉钉, §4.4).

Both take one JSON message per post, POSTed to a webhook URL; they are used to tell a team
that an article is out, so the message is short: title, summary and the link.
"""

from __future__ import annotations

from typing import Any, Literal

from kepubot.channels.base import (
    Channel,
    HttpChannelSettings,
    Problem,
    Rendered,
    markdown_to_text,
)
from kepubot.config import Secret
from kepubot.models import Post

# WeCom text messages: content at most 2048 bytes of UTF-8 [src].
WECOM_MAX_TEXT_BYTES = 2048
EXCERPT = 120  # characters of body text standing in for a missing summary


def _excerpt(post: Post) -> str:
    if post.summary.strip():
        return post.summary.strip()
    text = " ".join(markdown_to_text(post.body).split())
    return text if len(text) <= EXCERPT else text[:EXCERPT].rstrip() + "…"


def _plain(post: Post) -> str:
    return "\n".join(part for part in (post.title.strip(), _excerpt(post), post.link) if part)


def _markdown(post: Post) -> str:
    lines = [f"**{post.title.strip()}**", "", _excerpt(post)]
    if post.link:
        lines += ["", f"[阅读全文]({post.link})"]
    return "\n".join(lines)


def _link_required(post: Post, what: str) -> list[Problem]:
    if post.link.strip():
        return []
    return [Problem("link", "required", detail=f"{what}需要点击跳转的链接，请填写 --link")]


# --- WeCom ------------------------------------------------------------------------------------


class WecomSettings(HttpChannelSettings):
    # The key in the robot's webhook URL is its only credential (no signature).
    webhook_key: Secret
    api_base: str = "https://qyapi.weixin.qq.com"
    rate_limit: str | None = "20/minute"  # per robot [gk]
    msgtype: Literal["news", "markdown", "text"] = "news"


class WecomChannel(Channel):
    Settings = WecomSettings
    settings: WecomSettings

    @classmethod
    def type_name(cls) -> str:
        return "wecom"

    def message(self, post: Post) -> dict[str, Any]:
        kind = self.settings.msgtype
        if kind == "news":
            # picurl needs a public image URL, which a post's local media does not have.
            article = {"title": post.title, "description": _excerpt(post), "url": post.link}
            return {"msgtype": "news", "news": {"articles": [article]}}
        if kind == "markdown":
            return {"msgtype": "markdown", "markdown": {"content": _markdown(post)}}
        return {"msgtype": "text", "text": {"content": _plain(post)}}

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        text = _markdown(post) if self.settings.msgtype == "markdown" else _plain(post)
        return Rendered(
            channel=self.name,
            kind="message",
            title=post.title,
            text=text,
            link=post.link,
            extra={"message": self.message(post)},
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        if self.settings.msgtype == "news":
            problems += _link_required(post, "企业微信图文消息")
        elif self.settings.msgtype == "text":
            size = len(_plain(post).encode("utf-8"))
            if size > WECOM_MAX_TEXT_BYTES:
                problems.append(
                    Problem("text", "too_long", limit=f"{WECOM_MAX_TEXT_BYTES} 字节", actual=size)
                )
        return problems


# --- DingTalk ---------------------------------------------------------------------------------


class DingtalkSettings(HttpChannelSettings):
    access_token: Secret
    # Set when the robot's security setting is "加签" (signing); the value starts with "SEC".
    secret: Secret | None = None
    api_base: str = "https://oapi.dingtalk.com"
    # 20 messages a minute; going over throttles the robot for 10 minutes [src].
    rate_limit: str | None = "20/minute"
    msgtype: Literal["link", "markdown", "text"] = "link"


class DingtalkChannel(Channel):
    Settings = DingtalkSettings
    settings: DingtalkSettings

    @classmethod
    def type_name(cls) -> str:
        return "dingtalk"

    def message(self, post: Post) -> dict[str, Any]:
        kind = self.settings.msgtype
        if kind == "link":
            # picUrl is optional and needs a public URL, which local media does not have.
            body = {"title": post.title, "text": _excerpt(post), "messageUrl": post.link}
            return {"msgtype": "link", "link": body}
        if kind == "markdown":
            # title is what the notification shows; text is the message itself.
            return {
                "msgtype": "markdown",
                "markdown": {"title": post.title, "text": _markdown(post)},
            }
        return {"msgtype": "text", "text": {"content": _plain(post)}}

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        text = _markdown(post) if self.settings.msgtype == "markdown" else _plain(post)
        return Rendered(
            channel=self.name,
            kind="message",
            title=post.title,
            text=text,
            link=post.link,
            extra={"message": self.message(post)},
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        if self.settings.msgtype == "link":
            problems += _link_required(post, "钉钉链接消息")
        return problems
