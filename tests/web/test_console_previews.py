"""The console's channel previews as readers see them, per-channel variants on the compose
page, and the phone layout's markup (issue 16)."""

from __future__ import annotations

import json
import re

import pytest
from test_console import Console, _console, _publish_with_metrics, approved_post, token_of

from conftest import Workspace
from kepubot.channels.weibo import weibo_length


@pytest.fixture(name="console")
def console_fixture(workspace: Workspace) -> Console:
    return _console(workspace)


def card(page: str, channel: str) -> str:
    start = page.index(f'data-channel="{channel}"')
    end = page.find('<div class="channel-preview', start)
    return page[start : end if end != -1 else len(page)]


def test_each_channel_previews_as_its_readers_see_it(console: Console) -> None:
    ws = console.workspace
    post_id = ws.add_post(
        *("--channel", "weibo-main", "--channel", "wechat-main"),
        *("--channel", "douyin-main", "--channel", "news-feed"),
        *("--tag", "健康", "--tag", "洗手"),
    )
    page = console.client("zhang").get(f"/posts/{post_id}").text
    shown = json.loads(ws.ok("post", "preview", str(post_id), "--json"))
    texts = {item["channel"]: item["rendered"]["text"] for item in shown}
    # Weibo: a status card with the 140-unit counter, the link and the first image
    weibo = card(page, "weibo-main")
    units = weibo_length(texts["weibo-main"])
    assert 'class="wb-card"' in weibo and f'data-units="{units}"' in weibo
    assert f"{units}/140 字" in weibo
    assert 'href="https://kepu.example.org/articles/0001"' in weibo
    assert "<figcaption>handwashing.png</figcaption>" in weibo
    # WeChat: the chat-list card and the article frame, 阅读原文 as the link
    wechat = card(page, "wechat-main")
    assert wechat.index('class="wx-chat"') < wechat.index('class="wx-article"')
    assert re.search(r'<p class="wx-title">勤洗手[^<]*</p>', wechat)
    assert re.search(r'<a href="https://kepu.example.org/articles/0001"[^>]*>阅读原文</a>', wechat)
    assert "封面：cover-wide.png" in wechat
    # Douyin: a phone frame with the cover and the caption's topics; the missing video is
    # reported next to the frame, not at the bottom of the card
    douyin = card(page, "douyin-main")
    assert 'class="phone-frame"' in douyin and 'alt="cover-wide.png"' in douyin
    assert '<span class="topic">#健康</span>' in douyin
    frame_end = douyin.index("链接：")
    problems_near_frame = douyin[douyin.index('class="phone-frame"') : frame_end]
    assert '<ul class="problems">' in problems_near_frame and "视频" in problems_near_frame
    # the feed: the item as a reader's feed shows it, with its tags
    feed = card(page, "news-feed")
    assert 'class="feed-item"' in feed and '<span class="label">洗手</span>' in feed
    # no API field names and no stored (hashed) file names in what people read
    visible = re.sub(r"<[^>]+>", " ", page)
    for raw in ("content_source_url", "cover_tsp", "digest:", "thumb"):
        assert raw not in visible, raw
    for item in shown:
        for path in item["rendered"]["media"]:
            assert path not in visible and path.rsplit("/", 1)[-1] not in visible, path
    assert "封面取自视频第几秒" in douyin  # cover_tsp under its Chinese name
    assert "将要发送的内容" in page


def test_a_weibo_problem_is_shown_beside_the_part_it_concerns(console: Console) -> None:
    ws = console.workspace
    post_id = ws.add_post("--channel", "weibo-main", title="洗手" * 80)
    ws.ok("post", "edit", str(post_id), "--link", "https://elsewhere.example.net/a")
    page = console.client("zhang").get(f"/posts/{post_id}").text
    weibo = card(page, "weibo-main")
    # a title too long to cut: the counter says by how much, in red
    units = re.search(r'<p class="counter over" data-units="(\d+)">(\d+)/140 字<', weibo)
    assert units and int(units.group(1)) > 140
    # the length problem under the text, the link problem by the link, none under the card
    counter = weibo.index('class="counter')
    link = weibo.index("<!-- link -->")
    image = weibo.index('class="wb-image"')
    at_text = re.findall(r"<li>(.*?)</li>", weibo[counter:link])
    at_link = re.findall(r"<li>(.*?)</li>", weibo[link:image])
    assert len(at_text) == 1 and "超出长度限制" in at_text[0], at_text
    assert len(at_link) == 1 and "链接" in at_link[0], at_link
    assert "<li>" not in weibo[image:]


def test_the_post_page_says_what_was_sent_once_published(console: Console) -> None:
    post_id = approved_post(console.workspace)
    client = console.client("zhang")
    assert "将要发送的内容" in client.get(f"/posts/{post_id}").text
    _publish_with_metrics(console, post_id)
    page = client.get(f"/posts/{post_id}").text
    assert 'id="channels-heading">各渠道已发送的内容<' in page


def variants_of(console: Console, post_id: int) -> dict[str, dict[str, str]]:
    from kepubot.services.posts import get_post

    app = console.app()
    try:
        return get_post(app, post_id).variants
    finally:
        app.close()


def _form(**fields: object) -> dict[str, object]:
    return {
        "title": "勤洗手",
        "body": "用流动水洗手。",
        "link": "https://kepu.example.org/articles/0001",
        "channels": ["weibo-main", "news-feed"],
        "variants_field": "1",
        "variant_channels": ["weibo-main", "news-feed"],
        **fields,
    }


def test_per_channel_variants_are_seen_and_edited_next_to_the_channel_preview(
    console: Console,
) -> None:
    ws = console.workspace
    client = console.client("zhang")
    saved = console.save(client, "/posts/new", _form(**{"variant_title:weibo-main": "微博版标题"}))
    assert saved.status_code == 303, saved.text
    post_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    assert variants_of(console, post_id) == {"weibo-main": {"title": "微博版标题"}}
    # the post page's Weibo card is the variant, the feed keeps the post's own title
    page = client.get(f"/posts/{post_id}").text
    assert "【微博版标题】" in card(page, "weibo-main")
    assert "微博版标题" not in card(page, "news-feed")
    # the compose page shows the variant's fields next to that channel's preview, filled in
    edit = client.get(f"/posts/{post_id}/edit").text
    weibo = card(edit, "weibo-main")
    assert 'name="variant_title:weibo-main" value="微博版标题" form="compose-form"' in weibo
    assert '<details class="variant" open>' in weibo
    assert 'name="variant_title:news-feed" value=""' in card(edit, "news-feed")
    # the live preview uses what is typed into a variant
    token = token_of(edit)
    live = client.post(
        "/preview",
        data={
            **_form(**{"variant_title:weibo-main": "正在输入的微博标题"}),
            "post_id": str(post_id),
            "csrf_token": token,
        },
    )
    assert live.status_code == 200 and "【正在输入的微博标题】" in card(live.text, "weibo-main")
    # a variant the service layer refuses (too long for a title) is an error on the page
    refused = console.save(
        client, f"/posts/{post_id}/edit", _form(**{"variant_title:weibo-main": "长" * 300})
    )
    assert refused.status_code == 400 and 'id="form-error"' in refused.text
    error = re.findall(r'id="form-error">([^<]*)', refused.text)
    assert error and "本渠道专用版本" in error[0] and "weibo-main.title" in error[0], error
    assert "标题有 300 个字符，最多 200 个" in error[0]
    assert variants_of(console, post_id) == {"weibo-main": {"title": "微博版标题"}}
    # a channel not on the page (not targeted now) keeps its version; emptied fields drop one
    kept = console.save(
        client,
        f"/posts/{post_id}/edit",
        _form(channels=["news-feed"], variant_channels=["news-feed"]),
    )
    assert kept.status_code == 303
    assert variants_of(console, post_id) == {"weibo-main": {"title": "微博版标题"}}
    cleared = console.save(
        client, f"/posts/{post_id}/edit", _form(**{"variant_title:weibo-main": "  "})
    )
    assert cleared.status_code == 303
    assert variants_of(console, post_id) == {}
    # a form without the variant fields (a script, an old page) leaves them alone
    ws.ok("post", "edit", str(post_id), "--title", "勤洗手")
    again = console.save(client, "/posts/new", {**_form(), "variants_field": ""})
    assert again.status_code == 303


def test_phone_layout_markup(console: Console) -> None:
    client = console.client("zhang")
    page = client.get("/posts").text
    # the navigation folds into a menu without a script; compose has an edit/preview tab
    assert 'id="menu-toggle"' in page and 'for="menu-toggle"' in page and 'id="main-nav"' in page
    compose = client.get("/posts/new").text
    assert 'id="tab-edit"' in compose and 'id="tab-preview"' in compose
    assert compose.index('id="tab-preview"') < compose.index('class="compose"')
    css = client.get("/static/app.css").text
    assert "@media (max-width:700px)" in css
    assert ".menu-toggle:checked~nav{display:flex}" in css
    assert "#tab-edit:checked~.compose .preview{display:none}" in css


def test_robots_webhooks_and_any_video_channel(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KP_WECOM", "KP_HOOK", "KP_KS_SECRET", "KP_KS_TOKEN", "KP_KS_REFRESH"):
        monkeypatch.setenv(name, f"{name.lower()}-value-123456")
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8")
        + """
[channels.staff]
type = "wecom"
webhook_key = "${KP_WECOM}"

[channels.cms]
type = "webhook"
url = "https://cms.example.org/hook"
secret = "${KP_HOOK}"

[channels.kuaishou-main]
type = "kuaishou"
app_id = "ks0123456789"
app_secret = "${KP_KS_SECRET}"
access_token = "${KP_KS_TOKEN}"
refresh_token = "${KP_KS_REFRESH}"
""",
        encoding="utf-8",
    )
    console = _console(workspace)
    ws = console.workspace
    post_id = ws.add_post(
        *("--channel", "staff", "--channel", "cms", "--channel", "kuaishou-main"),
        *("--tag", "健康"),
    )
    page = console.client("zhang").get(f"/posts/{post_id}").text
    # the robot: the message as the group sees it, the request behind a fold
    staff = card(page, "staff")
    assert 'class="chat"' in staff and 'class="bubble"' in staff and "勤洗手" in staff
    assert "<summary>请求内容</summary>" in staff
    # the webhook: what it receives
    cms = card(page, "cms")
    assert "<summary>请求内容</summary>" in cms and "&#34;title&#34;" in cms
    # another video channel gets the same phone frame as Douyin, its video problem beside it
    kuaishou = card(page, "kuaishou-main")
    assert 'data-kind="video"' in kuaishou and 'class="phone-frame"' in kuaishou
    assert 'alt="cover-wide.png"' in kuaishou
    near = kuaishou[kuaishou.index('class="phone-frame"') : kuaishou.index("链接：")]
    assert '<ul class="problems">' in near and "视频" in near
