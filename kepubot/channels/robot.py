"""Group-chat robots: WeCom (企业微信, docs/platforms.md §6) and DingTalk (钉钉, §7).

Both take one JSON message per post, POSTed to a webhook URL; they are used to tell a team
that an article is out, so the message is short: title, summary and the link.

Both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success and a non-zero errcode
otherwise; the errcodes are data (``WECOM_ERRORS``, ``DINGTALK_ERRORS``) read by one helper,
:func:`raise_for_errcode` (through kepubot/channels/errors.py). Robots cannot list earlier
messages, so ``capabilities.find`` stays False and an unknown outcome goes to a person.

The robot's key/token/secret travel in the query string: neither the URL nor a credential is
ever put in an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kepubot.channels.base import (
    Capabilities,
    HttpChannel,
    HttpChannelSettings,
    Problem,
    Published,
    Rendered,
    Retracted,
    json_object,
    markdown_to_text,
)
from kepubot.channels.errors import ErrorRule, check_rules, excerpt, raise_for_code
from kepubot.config import Secret
from kepubot.errors import (
    AuthExpired,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Delivery, Post

# WeCom group robot: text content at most 2048 bytes of UTF-8 [src], markdown content at most
# 4096 bytes (docs/platforms.md §1.3, from the current robot doc). Over the limit WeCom answers 40058
# ("... exceed max length", [gk]), so check() reports it before anything is sent.
WECOM_MAX_TEXT_BYTES = 2048
WECOM_MAX_MARKDOWN_BYTES = 4096
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


def _fit_bytes(text: str, limit: int) -> str:
    """``text`` cut (with "…") so that its UTF-8 form is at most ``limit`` bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text
    budget = limit - len("…".encode())
    cut = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return cut.rstrip() + "…"


def _link_required(post: Post, what: str) -> list[Problem]:
    if post.link.strip():
        return []
    return [Problem("link", "required", detail=f"{what}需要点击跳转的链接，请填写 --link")]


# --- errcodes ---------------------------------------------------------------------------------

#: Kinds of a platform errcode: what the queue should do with it.
#: "unknown" means the platform may have delivered the message anyway (reconcile, never resend).
ErrorKind = Literal["rate_limited", "auth", "permanent", "transient", "unknown"]
ERRMSG_CHARS = 200  # of the platform's errmsg, in the error message
#: What each kind becomes (kepubot/channels/errors.py); ``detail`` is "<platform> errcode N: errmsg".
RULES: dict[str, ErrorRule] = {
    "rate_limited": ErrorRule(RateLimited, "{what}: rate limited ({detail})"),
    "auth": ErrorRule(AuthExpired, "{what}: credentials refused ({detail}){hint}"),
    "transient": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "unknown": ErrorRule(
        OutcomeUnknown, "{what}: the platform may or may not have sent the message ({detail})"
    ),
    "permanent": ErrorRule(Permanent, "{what}: refused ({detail})"),
}


def raise_for_errcode(
    platform: str,
    errors: dict[int, str],
    errcode: int,
    errmsg: str,
    *,
    what: str,
    retry_after: float | None = None,
    auth_hint: str = "",
    secrets: Iterable[str] = (),
) -> None:
    """Raise the ChannelError that ``errcode`` stands for (``errors`` maps it to a kind).

    Unknown non-zero codes are Permanent, with the platform's errmsg. ``secrets`` are masked out
    of the errmsg, in case the platform echoes a credential back.
    """
    if errcode == 0:
        return
    text = excerpt(errmsg, secrets, limit=ERRMSG_CHARS)
    raise_for_code(
        errcode,
        errors,
        RULES,
        what=what,
        detail=f"{platform} errcode {errcode}: {text}",
        retry_after=retry_after,
        hint=f"; {auth_hint}" if auth_hint else "",
    )


def _idempotency_key(progress: dict[str, Any] | None) -> str:
    key = (progress or {}).get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise ValueError("progress has no idempotency_key; the daemon must set it before the call")
    return key


class _RobotChannel(HttpChannel):
    """What WeCom and DingTalk robots share: one POST, an errcode answer, no lookup."""

    platform: str = ""
    errors: dict[int, str] = {}  # noqa: RUF012 - set per subclass, never mutated
    rate_limit_retry_after: float | None = None
    auth_hint: str = ""

    def message(self, post: Post) -> dict[str, Any]:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        raise NotImplementedError

    #: errcode -> seconds to wait, where it differs from ``rate_limit_retry_after``.
    waits: dict[int, float] = {}  # noqa: RUF012 - set per subclass, never mutated

    def send(
        self, path: str, params: dict[str, str], message: dict[str, Any], key: str
    ) -> Published:
        what = f"{self.platform} {self.name}: send"
        # No redirects: a redirected POST would become a GET and could look like success.
        response = self.request(
            "POST", path, what=what, json=message, params=params, allow_redirects=False
        )
        answer = json_object(response)
        errcode = answer.get("errcode")
        if isinstance(errcode, int) and not isinstance(errcode, bool):
            raise_for_errcode(
                self.platform,
                self.errors,
                errcode,
                str(answer.get("errmsg", "")),
                what=what,
                retry_after=self.waits.get(errcode, self.rate_limit_retry_after),
                auth_hint=self.auth_hint,
                secrets=self.secrets(),
            )
            if 200 <= response.status_code < 300:
                return Published(
                    remote_id=f"{self.platform}:{key}", remote_url=None, published_at=self._now()
                )
        status = response.status_code
        if status in (401, 403):
            raise AuthExpired(f"{what}: refused with HTTP {status}; {self.auth_hint}", code=status)
        if status >= 300:
            raise Permanent(
                f"{what}: refused with HTTP {status}; check api_base ({self.http_settings.api_base})",
                code=status,
            )
        # 2xx without an errcode: something answered, but not the robot API as documented.
        raise OutcomeUnknown(
            f"{what}: HTTP {status} without an errcode; cannot tell whether the message was sent",
            code=status,
        )

    def _now(self) -> datetime | None:
        return self.context.now() if self.context is not None else None

    def target(self) -> tuple[str, dict[str, str]]:
        """The send path and its query parameters (credentials included)."""
        raise NotImplementedError

    def markdown_message(self, title: str, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def notify_text(self, title: str, text: str, key: str) -> Published:
        """A short markdown message that is not a post (e.g. the weekly report summary)."""
        path, params = self.target()
        return self.send(path, params, self.markdown_message(title, text), key)

    # A robot cannot take a message back: a retraction is a short notice that the article
    # was withdrawn (docs/delivery.md §14), sent once with its own key.
    capabilities = Capabilities(retract=True)

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        key = progress.get("retract_key")
        if not isinstance(key, str) or not key:
            raise ValueError("progress has no retract_key; the daemon must set it before the call")
        title = "撤回通知"
        text = f"此前推送的《{post.title}》已撤回，请勿再转发。"
        if delivery.retract_reason:
            text += f"\n撤回原因：{delivery.retract_reason}"
        self.notify_text(title, text, key)
        return Retracted(how="notice_sent")


# --- WeCom ------------------------------------------------------------------------------------


class WecomSettings(HttpChannelSettings):
    # The key in the robot's webhook URL is its only credential (no signature).
    webhook_key: Secret
    api_base: str = "https://qyapi.weixin.qq.com"
    rate_limit: str | None = "20/minute"  # per robot [gk]
    msgtype: Literal["news", "markdown", "text"] = "news"


# errcode -> kind for the WeCom group robot (docs/platforms.md §6). [gk] = general knowledge, not
# confirmed by a source; unknown non-zero codes are Permanent.
WECOM_ERRORS: dict[int, str] = {
    -1: "unknown",  # system busy: the message may have gone out [gk]
    45009: "rate_limited",  # api freq out of limit (20 messages/min per robot) [gk]
    93000: "auth",  # invalid webhook url: the key is wrong or the robot was removed [gk]
    40008: "permanent",  # invalid message type [gk]
    40058: "permanent",  # invalid parameter, e.g. content over 2048/4096 bytes [gk]
    44004: "permanent",  # empty text content [gk]
}
check_rules(WECOM_ERRORS, RULES)
WECOM_RATE_LIMIT_RETRY_AFTER = 60.0  # the limit is per minute [gk]


class WecomChannel(_RobotChannel):
    channel_type = "wecom"
    Settings = WecomSettings
    settings: WecomSettings
    platform = "wecom"
    errors = WECOM_ERRORS
    rate_limit_retry_after = WECOM_RATE_LIMIT_RETRY_AFTER
    auth_hint = "check webhook_key (the key= part of the robot's webhook address)"

    def message(self, post: Post) -> dict[str, Any]:
        kind = self.settings.msgtype
        if kind == "news":
            # picurl needs a public image URL, which a post's local media does not have.
            article = {"title": post.title, "description": _excerpt(post), "url": post.link}
            return {"msgtype": "news", "news": {"articles": [article]}}
        if kind == "markdown":
            return {"msgtype": "markdown", "markdown": {"content": _markdown(post)}}
        return {"msgtype": "text", "text": {"content": _plain(post)}}

    def size_problems(self, message: dict[str, Any]) -> list[Problem]:
        """The message's content over WeCom's byte limit (text 2048, markdown 4096)."""
        kind = message.get("msgtype")
        limits = {"text": WECOM_MAX_TEXT_BYTES, "markdown": WECOM_MAX_MARKDOWN_BYTES}
        if kind not in limits:
            return []
        size = len(str(message[kind]["content"]).encode("utf-8"))
        if size <= limits[kind]:
            return []
        field_name = "text" if kind == "text" else "content"
        return [Problem(field_name, "too_long", limit=f"{limits[kind]} 字节", actual=size)]

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
        problems += self.size_problems(self.message(post))
        return problems

    def secrets(self) -> list[str]:
        return [self.settings.webhook_key.get_secret_value()]

    def target(self) -> tuple[str, dict[str, str]]:
        return "cgi-bin/webhook/send", {"key": self.settings.webhook_key.get_secret_value()}

    def markdown_message(self, title: str, text: str) -> dict[str, Any]:
        # A notice (the weekly report) is cut to fit rather than refused.
        content = _fit_bytes(f"**{title}**\n{text}", WECOM_MAX_MARKDOWN_BYTES)
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def publish(self, post: Post, progress: dict[str, Any]) -> Published:
        key = _idempotency_key(progress)
        message = self.render(post).extra["message"]
        problems = self.size_problems(message)
        if problems:
            # check() ran at submission; this is the last guard before anything is sent.
            raise Permanent(
                f"wecom {self.name}: send: the message breaks WeCom's limits: "
                + "; ".join(problem.describe("en") for problem in problems)
            )
        path, params = self.target()
        return self.send(path, params, message, key)


# --- DingTalk ---------------------------------------------------------------------------------


DINGTALK_MAX_KEYWORDS = 10


class DingtalkSettings(HttpChannelSettings):
    """A DingTalk custom robot (自定义机器人). A robot created today must have at least one
    security setting (安全设置), and kepubot must be told which: signing (加签, ``secret``,
    the "SEC..." string), custom keywords (自定义关键词, ``keywords``: every message must
    contain one; the channel adds the first when a message has none) and/or an IP allow-list
    (IP地址(段), ``ip_allowlist = true``: this host's public address is on the robot's list).
    """

    access_token: Secret
    secret: Secret | None = None
    keywords: list[str] = Field(default_factory=list)
    ip_allowlist: bool = False
    api_base: str = "https://oapi.dingtalk.com"
    # 20 messages a minute; going over throttles the robot for 10 minutes [src].
    rate_limit: str | None = "20/minute"
    msgtype: Literal["link", "markdown", "text"] = "link"

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        words = [word.strip() for word in value]
        if any(not word for word in words):
            raise ValueError("keywords must not contain empty words")
        if len(words) > DINGTALK_MAX_KEYWORDS:
            raise ValueError(
                f"keywords: a DingTalk robot has at most {DINGTALK_MAX_KEYWORDS} custom keywords"
            )
        return words

    @model_validator(mode="after")
    def _secured(self) -> DingtalkSettings:
        if self.secret is None and not self.keywords and not self.ip_allowlist:
            raise ValueError(
                "a DingTalk custom robot needs one of its security settings (安全设置) here:"
                ' secret = "${...}" for signing (加签), keywords = [...] for custom keywords'
                " (自定义关键词), or ip_allowlist = true when this host's IP is on the robot's"
                " IP allow-list; copy what the robot's 安全设置 page shows"
            )
        return self


# errcode -> kind for the DingTalk custom robot (docs/platforms.md §7, §1.3). The 4xxxxx codes are the
# error table of the custom-robot send doc (open.dingtalk.com "自定义机器人发送群聊消息") as we
# remember it: [gk], the table could not be re-read for these notes. 310000, 130101, 90030,
# 300001 and 300005 are what users report seeing [gk]. Unknown non-zero codes are Permanent.
DINGTALK_ERRORS: dict[int, str] = {
    -1: "unknown",  # system busy: the message may have gone out [gk]
    130101: "rate_limited",  # send too fast: over 20/min, robot throttled for 10 minutes [gk]
    410100: "rate_limited",  # 发送速度太快而限流 (the doc's code for the same) [gk]
    90030: "rate_limited",  # webhook over limit: the robot's call allowance is used up [gk]
    310000: "auth",  # security setting not met: sign, keyword or IP allow-list [gk]
    300005: "auth",  # token is not exist [?] (seen in third-party tests, no doc)
    400101: "auth",  # access_token 不存在 [gk]
    400102: "auth",  # 机器人已停用 (the robot was disabled) [gk]
    400106: "auth",  # 机器人不存在 (the robot was removed) [gk]
    400013: "auth",  # 群已被解散 (the group is gone) [gk]
    300001: "permanent",  # "param error"; older robots also say "token is not exist" here [gk]
    400105: "permanent",  # 不支持的消息类型 [gk]
    430101: "permanent",  # 含有不安全的外链 (an unsafe link) [gk]
    430102: "permanent",  # 含有不合适的文本 [gk]
    430103: "permanent",  # 含有不合适的图片 [gk]
    430104: "permanent",  # 含有不合适的内容 [gk]
}
check_rules(DINGTALK_ERRORS, RULES)
DINGTALK_THROTTLE_SECONDS = 600.0  # going over the limit throttles the robot for 10 minutes
# 90030: the period of the allowance is not documented where we could read it [?]; look again
# in an hour (one refused call an hour costs nothing).
DINGTALK_WAITS: dict[int, float] = {90030: 3600.0}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\n{secret}")), not yet URL-encoded."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _timestamp_ms() -> int:
    return int(time.time() * 1000)


class DingtalkChannel(_RobotChannel):
    channel_type = "dingtalk"
    Settings = DingtalkSettings
    settings: DingtalkSettings
    platform = "dingtalk"
    errors = DINGTALK_ERRORS
    waits = DINGTALK_WAITS
    rate_limit_retry_after = DINGTALK_THROTTLE_SECONDS
    auth_hint = (
        "check access_token and compare secret, keywords and ip_allowlist with the robot's"
        " 安全设置 (security settings) in DingTalk"
    )

    def message(self, post: Post) -> dict[str, Any]:
        kind = self.settings.msgtype
        if kind == "link":
            # picUrl is optional and needs a public URL, which local media does not have.
            body = {"title": post.title, "text": _excerpt(post), "messageUrl": post.link}
            return self.with_keyword({"msgtype": "link", "link": body})
        if kind == "markdown":
            # title is what the notification shows; text is the message itself.
            return self.with_keyword(
                {"msgtype": "markdown", "markdown": {"title": post.title, "text": _markdown(post)}}
            )
        return self.with_keyword({"msgtype": "text", "text": {"content": _plain(post)}})

    def with_keyword(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message, with the first custom keyword put in front of its text when it holds
        none of them (a robot with keywords refuses such a message with 310000)."""
        if not self.settings.keywords or self.keyword_problems(message) == []:
            return message
        kind = message["msgtype"]
        field_name = "content" if kind == "text" else "text"
        section = dict(message[kind])
        section[field_name] = f"【{self.settings.keywords[0]}】{section[field_name]}"
        return {**message, kind: section}

    def keyword_problems(self, message: dict[str, Any]) -> list[Problem]:
        """A problem when the robot has keywords and the message contains none of them."""
        keywords = self.settings.keywords
        if not keywords:
            return []
        section = message.get(message.get("msgtype", ""), {})
        text = " ".join(str(v) for v in section.values() if isinstance(v, str))
        if any(word in text for word in keywords):
            return []
        return [
            Problem(
                "text",
                "required",
                detail="钉钉机器人设置了自定义关键词，消息须包含其中之一：" + "、".join(keywords),
            )
        ]

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
        problems += self.keyword_problems(self.message(post))
        return problems

    def secrets(self) -> list[str]:
        values = [self.settings.access_token.get_secret_value()]
        if self.settings.secret is not None:
            values.append(self.settings.secret.get_secret_value())
        return values

    def params(self) -> dict[str, str]:
        """Query parameters. ``sign`` is plain Base64 here; requests URL-encodes it once."""
        params = {"access_token": self.settings.access_token.get_secret_value()}
        if self.settings.secret is not None:
            timestamp = _timestamp_ms()
            params["timestamp"] = str(timestamp)
            params["sign"] = dingtalk_sign(self.settings.secret.get_secret_value(), timestamp)
        return params

    def target(self) -> tuple[str, dict[str, str]]:
        return "robot/send", self.params()

    def markdown_message(self, title: str, text: str) -> dict[str, Any]:
        return self.with_keyword(
            {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n{text}"}}
        )

    def publish(self, post: Post, progress: dict[str, Any]) -> Published:
        key = _idempotency_key(progress)
        message = self.render(post).extra["message"]
        path, params = self.target()
        return self.send(path, params, message, key)

    def send(
        self, path: str, params: dict[str, str], message: dict[str, Any], key: str
    ) -> Published:
        # msgUuid: the send page's idempotency key ("retry with the same msgUuid to avoid
        # sending duplicate messages" [gk: read on the English copy of the page]). The
        # delivery's key is stable across attempts, so a message sent again by a person's
        # requeue is dropped by DingTalk. kepubot does not rely on it: an unknown outcome still
        # goes to a person (robots cannot look up what they sent).
        return super().send(path, params, {**message, "msgUuid": key}, key)
