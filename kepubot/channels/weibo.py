"""Sina Weibo via ``statuses/share.json`` (platforms.md §1.2): settings, content rules, rendering.

A status is ``【title】summary link``: at most 140 units, no ``#topic#``, and it must carry a
URL on the app's bound safe domain, so the link is chosen and the text shortened here, where
the editor can see the result in ``post preview`` before anything is sent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from pydantic import field_validator, model_validator

from kepubot.channels.base import (
    Channel,
    HttpChannelSettings,
    Problem,
    Rendered,
    markdown_to_text,
)
from kepubot.config import Secret
from kepubot.models import Media, Post

MAX_UNITS = 140
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif")
# share.json takes the picture as one multipart part that must be smaller than 5 MB [src].
MAX_IMAGE_BYTES = 5 * 1024 * 1024
ELLIPSIS = "…"
# Both the ASCII and the full-width number sign: removing them all guarantees no #topic#.
_HASHES = str.maketrans("", "", "#＃")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def weibo_length(text: str) -> int:
    """Weibo's length: a CJK/full-width character is 1 unit, an ASCII character ½; round up.

    Every non-ASCII character counts a whole unit. Weibo's own counter is said to count Latin-1
    characters as ½ too; counting them as 1 can only over-estimate, which is the safe side.
    """
    halves = sum(1 if ord(ch) < 0x80 else 2 for ch in text)
    return (halves + 1) // 2


def _on_domain(url: str, domain: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and (host == domain or host.endswith("." + domain))


class WeiboSettings(HttpChannelSettings):
    access_token: Secret
    # The app's bound safe domain (安全域名); every status must link to it or a subdomain.
    link_domain: str
    # Used when a post has no link on link_domain (e.g. the site's home page).
    default_link: str | None = None
    api_base: str = "https://api.weibo.com"
    rate_limit: str | None = "30/hour"
    # share.json requires the operating user's real IP; an unattended bot has only its own.
    rip: str = "127.0.0.1"

    @field_validator("link_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().lower().strip(".")
        if not _HOST.match(domain):
            raise ValueError(
                f"link_domain {value!r} must be a bare host name such as 'kepu.example.org'"
                " (no scheme, port or path)"
            )
        return domain

    @field_validator("rip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(f"rip {value!r} must be an IP address such as 203.0.113.7")
        return value.strip()

    @model_validator(mode="after")
    def _default_on_domain(self) -> WeiboSettings:
        # A default link off the safe domain would be rejected by Weibo on every post.
        if self.default_link is not None and not _on_domain(self.default_link, self.link_domain):
            raise ValueError(
                f"default_link must be an http(s) URL on link_domain {self.link_domain!r}"
            )
        return self


class WeiboChannel(Channel):
    Settings = WeiboSettings
    settings: WeiboSettings

    def choose_link(self, post: Post) -> str:
        """The post's link if Weibo will accept it, else default_link, else ""."""
        if post.link and _on_domain(post.link.strip(), self.settings.link_domain):
            link = post.link.strip()
        else:
            link = self.settings.default_link or ""
        # A fragment only matters in the browser, and its '#' could pair up into a #topic#.
        return urlunsplit(urlsplit(link)._replace(fragment="")) if link else ""

    @staticmethod
    def _clean(text: str) -> str:
        return " ".join(text.translate(_HASHES).split())

    @staticmethod
    def _compose(title: str, summary: str, link: str) -> str:
        text = f"【{title}】{summary}" if title else summary
        return f"{text} {link}" if link else text

    @staticmethod
    def _longest_prefix(text: str, fits: Callable[[str], bool]) -> str:
        """The longest ``prefix + …`` of text that fits (binary search: length is monotonic)."""
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            if fits(text[:middle].rstrip() + ELLIPSIS):
                low = middle
            else:
                high = middle - 1
        return text[:low].rstrip() + ELLIPSIS if low else ""

    def _parts(self, post: Post) -> tuple[str, str, str]:
        title = self._clean(post.title)
        # Without a summary the status is still worth reading with the start of the body.
        summary = self._clean(post.summary or markdown_to_text(post.body))
        return title, summary, self.choose_link(post)

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        title, summary, link = self._parts(post)

        def fits(candidate_title: str, candidate_summary: str) -> bool:
            return (
                weibo_length(self._compose(candidate_title, candidate_summary, link)) <= MAX_UNITS
            )

        if not fits(title, summary):
            # The summary gives way first; the title is cut only when it alone is too long
            # (check() reports that case, so it is never published cut).
            summary = self._longest_prefix(summary, lambda s: fits(title, s))
            if not fits(title, summary):
                title = self._longest_prefix(title, lambda t: fits(t, ""))
        images = post.images
        return Rendered(
            channel=self.name,
            kind="status",
            title=title,
            text=self._compose(title, summary, link),
            link=link,
            media=[images[0].path] if images else [],
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        title, _, link = self._parts(post)
        if not link:
            problems.append(
                Problem(
                    "link",
                    "required",
                    detail=f"微博要求正文含安全域名 {self.settings.link_domain} 下的链接；"
                    "请填写该域名的链接，或在配置中设置 default_link",
                )
            )
        bare = weibo_length(self._compose(title, "", link))
        if bare > MAX_UNITS:
            problems.append(Problem("text", "too_long", limit=MAX_UNITS, actual=bare))
        if post.images:
            problems.extend(_image_problems(post.images[0]))
        return problems


def _image_problems(image: Media) -> list[Problem]:
    problems = []
    if image.mime not in IMAGE_TYPES:
        problems.append(
            Problem("image", "media_type", limit=", ".join(IMAGE_TYPES), actual=image.mime)
        )
    if image.size >= MAX_IMAGE_BYTES:
        problems.append(
            Problem("image", "media_size", limit="5 MB（不含）", actual=_megabytes(image.size))
        )
    return problems


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
