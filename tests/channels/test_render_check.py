"""Settings, check() and render() of the built-in channel types: no network, no database."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kepubot.channels.base import Channel, Problem
from kepubot.channels.douyin import DouyinChannel
from kepubot.channels.feed import FeedChannel
from kepubot.channels.robot import DingtalkChannel, WecomChannel
from kepubot.channels.webhook import WebhookChannel
from kepubot.channels.wechat import MEDIA_PLACEHOLDER, WechatChannel
from kepubot.channels.weibo import WeiboChannel, weibo_length
from kepubot.models import Media, Post

MB = 1024 * 1024
SECRET_VALUE = "s3cr3t-value-never-printed"

TITLE = "勤洗手：七步洗手法的科学依据"
SUMMARY = "正确洗手能有效去除手上的病原体，七步洗手法每一步都有讲究。"
BODY = (
    "用流动水和肥皂洗手，揉搓时间不少于20秒，是阻断接触传播最经济的办法。\n\n"
    "七步洗手法依次清洁掌心、手背、指缝、指背、拇指、指尖和手腕，覆盖了最容易被忽略的部位。\n\n"
    "没有流动水时，可以使用含酒精（浓度60%以上）的免洗手消毒剂作为补充。"
)
LINK = "https://kepu.example.org/articles/0001"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KP_TOKEN", "KP_SECRET", "KP_REFRESH", "KP_KEY"):
        monkeypatch.setenv(name, SECRET_VALUE)


def media(
    kind: str = "image",
    *,
    name: str = "handwashing.png",
    mime: str = "image/png",
    size: int = 200_000,
    digest: str = "ab" * 32,
) -> Media:
    return Media(
        kind=kind,
        path=f"{digest[:2]}/{digest}.{name.rsplit('.', 1)[-1]}",
        sha256=digest,
        name=name,
        size=size,
        mime=mime,
    )


def make_post(**changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 1,
        "title": TITLE,
        "body": BODY,
        "summary": SUMMARY,
        "link": LINK,
        "tags": ["个人防护", "洗手"],
        "media": [],
        "author": "zhang",
    }
    fields.update(changes)
    return Post(**fields)


SETTINGS: dict[type[Channel], dict[str, Any]] = {
    WeiboChannel: {
        "type": "weibo",
        "access_token": "${KP_TOKEN}",
        "link_domain": "kepu.example.org",
        "rip": "203.0.113.7",
    },
    WechatChannel: {"type": "wechat", "app_id": "wx123", "app_secret": "${KP_SECRET}"},
    DouyinChannel: {
        "type": "douyin",
        "client_key": "ck",
        "client_secret": "${KP_SECRET}",
        "open_id": "oid",
        "access_token": "${KP_TOKEN}",
        "refresh_token": "${KP_REFRESH}",
    },
    FeedChannel: {
        "type": "feed",
        "output_dir": "public/feeds",
        "site_url": "https://kepu.example.org/",
        "title": "科普资讯",
    },
    WebhookChannel: {
        "type": "webhook",
        "url": "https://hooks.example.org/in",
        "secret": "${KP_SECRET}",
    },
    WecomChannel: {"type": "wecom", "webhook_key": "${KP_KEY}"},
    DingtalkChannel: {"type": "dingtalk", "access_token": "${KP_TOKEN}", "secret": "${KP_SECRET}"},
}
SECRET_KEYS = {
    WeiboChannel: "access_token",
    WechatChannel: "app_secret",
    DouyinChannel: "client_secret",
    WebhookChannel: "secret",
    WecomChannel: "webhook_key",
    DingtalkChannel: "access_token",
}
ALL = list(SETTINGS)


def make(cls: type[Channel], **changes: Any) -> Channel:
    settings = cls.Settings.model_validate({**SETTINGS[cls], **changes})
    return cls(f"{cls.type_name()}-main", settings)


def codes(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.field, p.code) for p in problems}


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.type_name())
def test_settings_validate_and_render_a_good_post(cls: type[Channel]) -> None:
    channel = make(cls)
    post = make_post(
        media=[
            media("image"),
            media("cover", name="cover-wide.png", digest="cd" * 32),
            media("video", name="short.mp4", mime="video/mp4", digest="ef" * 32),
        ]
    )
    assert channel.check(post) == []
    rendered = channel.render(post)
    assert rendered.channel == channel.name
    assert rendered.title


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.type_name())
def test_unknown_key_is_an_error(cls: type[Channel]) -> None:
    with pytest.raises(ValidationError) as info:
        cls.Settings.model_validate({**SETTINGS[cls], "acess_token": "x"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("cls", list(SECRET_KEYS), ids=lambda c: c.type_name())
def test_literal_secret_is_refused(cls: type[Channel]) -> None:
    with pytest.raises(ValidationError) as info:
        cls.Settings.model_validate({**SETTINGS[cls], SECRET_KEYS[cls]: SECRET_VALUE})
    assert SECRET_VALUE not in str(info.value)


@pytest.mark.parametrize("cls", list(SECRET_KEYS), ids=lambda c: c.type_name())
def test_secret_value_never_printed(cls: type[Channel]) -> None:
    settings = cls.Settings.model_validate(SETTINGS[cls])
    assert getattr(settings, SECRET_KEYS[cls]).get_secret_value() == SECRET_VALUE
    assert SECRET_VALUE not in str(settings)
    assert SECRET_VALUE not in repr(settings)


def test_unset_environment_variable_is_refused_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference is checked at start-up, its value read only when the channel uses it."""
    from kepubot.config import env_references, missing_env
    from kepubot.errors import ConfigError

    monkeypatch.delenv("KP_TOKEN")
    settings = WeiboChannel.Settings.model_validate(SETTINGS[WeiboChannel])
    assert missing_env(env_references(settings, "channels.w")) == [
        "channels.w.access_token: environment variable KP_TOKEN is not set;"
        " export it before starting"
    ]
    with pytest.raises(ConfigError, match="KP_TOKEN is not set"):
        settings.access_token.get_secret_value()
    monkeypatch.setenv("KP_TOKEN", SECRET_VALUE)
    assert settings.access_token.get_secret_value() == SECRET_VALUE


def test_type_names() -> None:
    assert [c.type_name() for c in ALL] == [
        "weibo",
        "wechat",
        "douyin",
        "feed",
        "webhook",
        "wecom",
        "dingtalk",
    ]


@pytest.mark.parametrize(
    ("cls", "changes"),
    [
        (WeiboChannel, {"link_domain": "https://kepu.example.org/"}),
        (WeiboChannel, {"default_link": "https://other.example.com/"}),
        (WeiboChannel, {"rip": "not-an-ip"}),
        (WeiboChannel, {"rip": "127.0.0.1"}),
        (WeiboChannel, {"rip": ""}),
        (WeiboChannel, {"rate_limit": "lots"}),
        (WechatChannel, {"mode": "publish"}),
        (DouyinChannel, {"chunk_size_mb": 4}),
        (FeedChannel, {"site_url": "kepu.example.org"}),
        (FeedChannel, {"formats": []}),
        (FeedChannel, {"formats": ["rss", "rss"]}),
        (FeedChannel, {"formats": ["rdf"]}),
        (FeedChannel, {"max_items": 0}),
        (FeedChannel, {"websub_hub": "ftp://hub"}),
        (WebhookChannel, {"url": "hooks.example.org"}),
        (WebhookChannel, {"lookup_url": "nope"}),
        (WecomChannel, {"msgtype": "image"}),
        (DingtalkChannel, {"msgtype": "feedCard"}),
    ],
)
def test_bad_settings(cls: type[Channel], changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        cls.Settings.model_validate({**SETTINGS[cls], **changes})


def test_defaults() -> None:
    weibo = WeiboChannel.Settings.model_validate(SETTINGS[WeiboChannel])
    assert (weibo.api_base, weibo.rate_limit, weibo.rip) == (
        "https://api.weibo.com",
        "30/hour",
        "203.0.113.7",
    )
    feed = FeedChannel.Settings.model_validate(SETTINGS[FeedChannel])
    assert feed.formats == ["rss", "atom", "json"]
    assert feed.site_url == "https://kepu.example.org"
    assert FeedChannel.capabilities.idempotent
    assert WecomChannel.Settings.model_validate(SETTINGS[WecomChannel]).rate_limit == "20/minute"


# --- weibo ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("", 0),
        ("科普abc", 4),
        ("科普", 2),
        ("a", 1),
        ("ab", 1),
        ("abc", 2),
        ("【洗手】", 4),
        ("https://kepu.example.org/a", 13),
    ],
)
def test_weibo_length(text: str, units: int) -> None:
    assert weibo_length(text) == units


def test_weibo_short_post() -> None:
    rendered = make(WeiboChannel).render(make_post(media=[media(), media(digest="cd" * 32)]))
    assert rendered.kind == "status"
    assert rendered.text == f"【{TITLE}】{SUMMARY} {LINK}"
    assert rendered.link == LINK
    assert rendered.media == [f"ab/{'ab' * 32}.png"]


def test_weibo_long_summary_is_shortened() -> None:
    post = make_post(summary=BODY.replace("\n\n", "") * 2)
    channel = make(WeiboChannel)
    text = channel.render(post).text
    assert weibo_length(text) <= 140
    assert weibo_length(text) >= 135  # it uses the room it has
    assert text.startswith(f"【{TITLE}】用流动水")
    assert text.endswith(f"… {LINK}")
    assert channel.check(post) == []


def test_weibo_summary_falls_back_to_body() -> None:
    text = make(WeiboChannel).render(make_post(summary="")).text
    assert "用流动水和肥皂洗手" in text and text.endswith(LINK) and weibo_length(text) <= 140


def test_weibo_hashes_removed() -> None:
    post = make_post(title="#洗手# 七步法", summary="记住＃科普＃要点", link=LINK + "#step-1")
    rendered = make(WeiboChannel).render(post)
    assert "#" not in rendered.text and "＃" not in rendered.text
    assert rendered.text == f"【洗手 七步法】记住科普要点 {LINK}"


@pytest.mark.parametrize(
    ("link", "default", "expected"),
    [
        (LINK, None, LINK),
        ("https://www.kepu.example.org/a", None, "https://www.kepu.example.org/a"),
        ("https://notkepu.example.org/a", "https://kepu.example.org/", "https://kepu.example.org/"),
        ("https://mp.weixin.qq.com/s/x", "https://kepu.example.org/", "https://kepu.example.org/"),
        ("", "https://kepu.example.org/", "https://kepu.example.org/"),
    ],
)
def test_weibo_link_choice(link: str, default: str | None, expected: str) -> None:
    channel = make(WeiboChannel, default_link=default)
    post = make_post(link=link)
    rendered = channel.render(post)
    assert rendered.link == expected
    assert rendered.text.endswith(" " + expected)
    assert channel.check(post) == []


@pytest.mark.parametrize("link", ["", "https://other.example.com/articles/1"])
def test_weibo_no_usable_link(link: str) -> None:
    channel = make(WeiboChannel)
    post = make_post(link=link)
    assert codes(channel.check(post)) == {("link", "required")}
    assert "kepu.example.org" in channel.check(post)[0].describe("zh")
    assert channel.render(post).text == f"【{TITLE}】{SUMMARY}"


def test_weibo_title_too_long() -> None:
    title = "科学" * 70
    channel = make(WeiboChannel)
    post = make_post(title=title)
    problems = channel.check(post)
    assert codes(problems) == {("text", "too_long")}
    assert problems[0].limit == 140
    assert problems[0].actual == weibo_length(f"【{title}】 {LINK}")
    rendered = channel.render(post)
    assert weibo_length(rendered.text) <= 140
    assert rendered.text.endswith(f"…】 {LINK}")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (media(mime="image/jpeg", name="a.jpg"), set()),
        (media(mime="image/gif", name="a.gif", size=5 * MB - 1), set()),
        (media(mime="image/webp", name="a.webp"), {("image", "media_type")}),
        (media(size=5 * MB), {("image", "media_size")}),
    ],
)
def test_weibo_first_image(image: Media, expected: set[tuple[str, str]]) -> None:
    # Only the first image is sent, so only the first image is checked.
    later = media(mime="image/webp", name="b.webp", size=9 * MB, digest="cd" * 32)
    assert codes(make(WeiboChannel).check(make_post(media=[image, later]))) == expected


def test_weibo_variant_applies() -> None:
    channel = make(WeiboChannel)
    post = make_post(variants={channel.name: {"summary": "微博专用摘要"}})
    assert channel.render(post).text == f"【{TITLE}】微博专用摘要 {LINK}"


# --- wechat -----------------------------------------------------------------------------------


def test_wechat_render() -> None:
    channel = make(WechatChannel, author="科普编辑部")
    cover = media("cover", name="cover-wide.png", digest="cd" * 32)
    image = media()
    body = BODY + "\n\n![七步洗手法](handwashing.png)\n\n![外链](https://example.com/x.png)"
    rendered = channel.render(make_post(body=body, media=[image, cover]))
    assert rendered.kind == "article"
    assert rendered.title == TITLE
    assert '<p style="' in rendered.html
    assert f'src="{MEDIA_PLACEHOLDER}{image.path}"' in rendered.html
    assert "https://example.com/x.png" not in rendered.html
    assert "<script" not in rendered.html
    assert rendered.extra == {
        "digest": SUMMARY,
        "author": "科普编辑部",
        "content_source_url": LINK,
        "thumb": cover.path,
    }
    assert rendered.media == [cover.path, image.path]


def test_wechat_digest_and_thumb_fallbacks() -> None:
    image = media()
    rendered = make(WechatChannel).render(make_post(summary="", media=[image]))
    assert rendered.extra["digest"] == " ".join(BODY.split())[:54]
    assert rendered.extra["thumb"] == image.path
    # An attached image the body does not show is appended to the article.
    assert rendered.html.count(MEDIA_PLACEHOLDER) == 1


def test_wechat_title_too_long() -> None:
    problems = make(WechatChannel).check(make_post(title="科" * 33, media=[media()]))
    assert problems == [Problem("title", "too_long", limit=32, actual=33)]
    assert problems[0].describe("zh") == "标题 超出长度限制：上限 32，实际 33"


@pytest.mark.parametrize(
    ("changes", "settings", "expected"),
    [
        ({"title": "科" * 32}, {}, set()),
        ({}, {"author": "作" * 17}, {("author", "too_long")}),
        ({"summary": "摘" * 129}, {}, {("digest", "too_long")}),
        ({"body": "长文。" * 7000}, {}, {("content", "too_long")}),
        ({"media": []}, {}, {("cover", "required")}),
        ({"media": [media(mime="image/webp")]}, {}, {("image", "media_type")}),
        # body images go through uploadimg: jpg/png under 1 MB [gk]; the cover may be 10 MB
        (
            {"media": [media(mime="image/bmp", size=10 * MB)]},
            {},
            {("image", "media_type"), ("image", "media_size")},
        ),
        ({"media": [media(size=MB)]}, {}, set()),
        ({"media": [media(size=MB + 1)]}, {}, {("image", "media_size")}),
        ({"media": [media(), media("cover", mime="image/bmp", size=10 * MB)]}, {}, set()),
        ({"media": [media("cover", size=10 * MB + 1)]}, {}, {("cover", "media_size")}),
    ],
)
def test_wechat_check(
    changes: dict[str, Any], settings: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    post = make_post(**{"media": [media()], **changes})
    assert codes(make(WechatChannel, **settings).check(post)) == expected


# --- douyin -----------------------------------------------------------------------------------


def test_douyin_render() -> None:
    video = media("video", name="short-video.mp4", mime="video/mp4", size=30 * MB)
    rendered = make(DouyinChannel).render(
        make_post(tags=["个人防护", "#洗手", "公共 卫生"], media=[media(digest="cd" * 32), video])
    )
    assert rendered.kind == "video"
    assert rendered.text == f"{TITLE} #个人防护 #洗手 #公共卫生"
    assert rendered.media == [video.path]
    assert rendered.extra == {"cover_tsp": 0.0}
    assert make(DouyinChannel).render(make_post(tags=[])).text == TITLE


@pytest.mark.parametrize(
    ("post_media", "changes", "expected"),
    [
        ([], {}, {("video", "required")}),
        ([media()], {}, {("video", "required")}),
        ([media("video", name="a.mov", mime="video/quicktime")], {}, set()),
        ([media("video", name="a.avi", mime="video/x-msvideo")], {}, {("video", "media_type")}),
        (
            [media("video", name="a.mp4", mime="video/mp4")],
            {"title": "长" * 1001},
            {("text", "too_long")},
        ),
    ],
)
def test_douyin_check(
    post_media: list[Media], changes: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    problems = make(DouyinChannel).check(make_post(media=post_media, **changes))
    assert codes(problems) == expected
    if ("video", "required") in expected:
        assert problems[0].detail == "抖音只发布视频，请添加 --video"


# --- feed and webhook -------------------------------------------------------------------------


def test_feed_render_and_check() -> None:
    channel = make(FeedChannel)
    rendered = channel.render(make_post())
    assert (rendered.kind, rendered.text, rendered.link) == ("feed-item", SUMMARY, LINK)
    assert rendered.html.startswith("<p>用流动水")
    assert codes(channel.check(make_post(title="  "))) == {("title", "required")}


def test_webhook_render() -> None:
    image = media()
    rendered = make(WebhookChannel).render(make_post(media=[image]))
    assert rendered.kind == "json"
    body = rendered.extra
    assert body["title"] == TITLE and body["summary"] == SUMMARY and body["body"] == BODY
    assert body["html"] == rendered.html and body["link"] == LINK
    assert body["tags"] == ["个人防护", "洗手"]
    assert body["media"] == [
        {"kind": "image", "sha256": image.sha256, "name": "handwashing.png", "mime": "image/png"}
    ]


def test_webhook_can_find_only_with_lookup_url() -> None:
    assert make(WebhookChannel).capabilities.find is False
    with_lookup = make(WebhookChannel, lookup_url="https://hooks.example.org/lookup")
    assert with_lookup.capabilities.find is True
    assert WebhookChannel.capabilities.find is False


# --- robots -----------------------------------------------------------------------------------


def test_wecom_messages() -> None:
    post = make_post()
    news = make(WecomChannel).render(post)
    assert news.kind == "message"
    assert news.extra["message"] == {
        "msgtype": "news",
        "news": {"articles": [{"title": TITLE, "description": SUMMARY, "url": LINK}]},
    }
    text = make(WecomChannel, msgtype="text").render(post).extra["message"]
    assert text == {"msgtype": "text", "text": {"content": f"{TITLE}\n{SUMMARY}\n{LINK}"}}
    markdown = make(WecomChannel, msgtype="markdown").render(post).extra["message"]
    assert markdown["msgtype"] == "markdown"
    assert f"[阅读全文]({LINK})" in markdown["markdown"]["content"]


def test_wecom_check() -> None:
    assert codes(make(WecomChannel).check(make_post(link=""))) == {("link", "required")}
    assert make(WecomChannel, msgtype="text").check(make_post(link="")) == []
    # 700 CJK characters are 2100 bytes of UTF-8.
    problems = make(WecomChannel, msgtype="text").check(make_post(summary="字" * 700))
    assert codes(problems) == {("text", "too_long")}
    assert problems[0].actual > 2048


def test_dingtalk_messages_and_check() -> None:
    post = make_post()
    link = make(DingtalkChannel).render(post).extra["message"]
    assert link == {
        "msgtype": "link",
        "link": {"title": TITLE, "text": SUMMARY, "messageUrl": LINK},
    }
    markdown = make(DingtalkChannel, msgtype="markdown").render(post).extra["message"]
    assert markdown["markdown"]["title"] == TITLE
    assert codes(make(DingtalkChannel).check(make_post(link=""))) == {("link", "required")}
    assert make(DingtalkChannel, msgtype="markdown").check(make_post(link="")) == []
