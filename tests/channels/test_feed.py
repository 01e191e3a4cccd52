"""Publishing of the feed channel: RSS 2.0, Atom 1.0 and JSON Feed 1.1 files, round-tripped.

No database and no network: a tiny context supplies the clock, the media store and the config
folder; WebSub hubs are faked with ``responses``.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import json
import logging
import os
import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import feedparser
import pytest
import responses

from kepubot.channels.feed import STATE_FILE, FeedChannel
from kepubot.errors import Permanent, Transient
from kepubot.models import Media, Post

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples" / "media"
SITE = "https://kepu.example.org"
HUB = "https://hub.example.org/"
START = datetime(2024, 5, 1, 0, 30, tzinfo=UTC)

TITLES = [
    "勤洗手：七步洗手法的科学依据",
    "开窗通风：每天至少两次，每次三十分钟",
    "口罩怎么戴：鼻夹要压紧，口罩要盖住口鼻",
]
TAGS = [["健康", "洗手"], ["通风"], ["口罩", "防护"]]
BODY = "用流动水和肥皂洗手，揉搓时间不少于**20秒**。\n\n七步洗手法覆盖最容易被忽略的部位。"


class Context:
    """What the App offers a channel: the clock, the media store, and the config folder."""

    def __init__(self, media_root: Path, base_dir: Path) -> None:
        self.media_root = media_root
        self.clock = START
        # [users]: zhang has a display name, chen has none (the feed's title stands in)
        users = {"zhang": SimpleNamespace(name="张编辑"), "chen": SimpleNamespace(name=None)}
        self.config = SimpleNamespace(base_dir=base_dir, data=SimpleNamespace(users=users))

    def now(self) -> datetime:
        return self.clock

    def media_file(self, relative: str) -> str:
        return str(self.media_root / relative)

    def tick(self, minutes: int = 10) -> None:
        self.clock += timedelta(minutes=minutes)


@pytest.fixture
def context(tmp_path: Path) -> Context:
    base = tmp_path / "site"
    base.mkdir()
    return Context(tmp_path / "media-store", base)


def store_image(context: Context, sample: str = "handwashing.png", kind: str = "image") -> Media:
    """Copy a sample into the content-addressed media store, as ``post add`` does."""
    data = (SAMPLES / sample).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    ext = sample.rsplit(".", 1)[-1]
    relative = f"{digest[:2]}/{digest}.{ext}"
    target = context.media_root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLES / sample, target)
    mime = "image/png" if ext == "png" else "image/jpeg"
    return Media(
        kind=kind,
        path=relative,
        sha256=digest,
        name=sample,
        size=len(data),
        mime=mime,
        alt="七步洗手",
    )


def make_post(number: int, **changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": number,
        "title": TITLES[(number - 1) % len(TITLES)],
        "body": BODY,
        "summary": f"第{number}篇科普摘要",
        "link": f"{SITE}/articles/{number:04d}",
        "tags": TAGS[(number - 1) % len(TAGS)],
        "channels": ["news-feed"],
        "author": "zhang",
        "state": "approved",
    }
    fields.update(changes)
    return Post(**fields)


def make_channel(context: Context, **settings: Any) -> FeedChannel:
    values: dict[str, Any] = {
        "type": "feed",
        "output_dir": "public/feeds",  # relative: resolved against the config folder
        "site_url": SITE,
        "title": "科普资讯",
        "description": "每日健康科普",
        **settings,
    }
    return FeedChannel("news-feed", FeedChannel.Settings.model_validate(values), context)


def out(context: Context) -> Path:
    return context.config.base_dir / "public" / "feeds"


def publish_three(channel: FeedChannel, context: Context) -> list[Post]:
    image = store_image(context)
    posts = [make_post(1, media=[image]), make_post(2), make_post(3)]
    for post in posts:
        context.tick()
        channel.publish(post, {})
    return posts


def parse(path: Path) -> Any:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def item_id(number: int) -> str:
    return f"{SITE}/kepubot/posts/{number}"


# --- the three formats ----------------------------------------------------------------------


def test_publish_writes_rss_atom_and_json_feed(context: Context) -> None:
    channel = make_channel(context)
    posts = publish_three(channel, context)
    folder = out(context)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".kepubot-feed.json", ".kepubot-feed.lock", "atom.xml", "feed.json", "feed.xml", "media"]
    )
    image = posts[0].media[0]
    copied = folder / "media" / Path(image.path).name
    assert copied.read_bytes() == (context.media_root / image.path).read_bytes()
    newest_first = [item_id(3), item_id(2), item_id(1)]

    rss = parse(folder / "feed.xml")
    assert rss.version == "rss20"
    assert rss.feed.title == "科普资讯"
    assert rss.feed.link == SITE
    assert [e.id for e in rss.entries] == newest_first
    assert [e.title for e in rss.entries] == [TITLES[2], TITLES[1], TITLES[0]]
    assert all(e.guidislink is False for e in rss.entries)
    first = rss.entries[2]
    assert first.link == f"{SITE}/articles/0001"
    assert [t.term for t in first.tags] == ["健康", "洗手"]
    assert "<strong>20秒</strong>" in first.content[0].value
    assert first.summary == "第1篇科普摘要"
    assert first.author == "张编辑"
    (enclosure,) = first.enclosures
    assert enclosure.href == f"{SITE}/feeds/media/{copied.name}"
    assert enclosure.type == "image/png"
    assert int(enclosure.length) == copied.stat().st_size
    assert rss.entries[0].enclosures == []
    assert datetime(*first.published_parsed[:6], tzinfo=UTC) == START + timedelta(minutes=10)
    assert {link.rel: link.href for link in rss.feed.links} == {
        "alternate": SITE,
        "self": f"{SITE}/feeds/feed.xml",
    }
    pub_dates = [parsedate_to_datetime(e.published) for e in rss.entries]
    assert pub_dates == sorted(pub_dates, reverse=True)

    atom = parse(folder / "atom.xml")
    assert atom.version == "atom10"
    assert atom.feed.id == f"{SITE}/feeds/atom.xml"
    assert atom.feed.updated_parsed is not None
    assert atom.feed.author == "科普资讯"
    links = {link.rel: link.href for link in atom.feed.links}
    assert links == {"self": f"{SITE}/feeds/atom.xml", "alternate": SITE}
    assert [e.id for e in atom.entries] == newest_first
    first = atom.entries[2]
    assert first.title == TITLES[0]
    assert [t.term for t in first.tags] == ["健康", "洗手"]
    assert first.author == "张编辑"
    assert "<strong>20秒</strong>" in first.content[0].value
    assert first.published_parsed is not None and first.updated_parsed is not None
    enclosures = [link for link in first.links if link.rel == "enclosure"]
    assert [(e.href, e.type, int(e.length)) for e in enclosures] == [
        (f"{SITE}/feeds/media/{copied.name}", "image/png", copied.stat().st_size)
    ]

    data = json.loads((folder / "feed.json").read_text(encoding="utf-8"))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert data["title"] == "科普资讯"
    assert data["feed_url"] == f"{SITE}/feeds/feed.json"
    assert data["home_page_url"] == SITE
    assert [i["id"] for i in data["items"]] == newest_first
    first = data["items"][2]
    assert first["title"] == TITLES[0]
    assert first["url"] == f"{SITE}/articles/0001"
    assert first["tags"] == ["健康", "洗手"]
    assert first["authors"] == [{"name": "张编辑"}]
    assert "<strong>20秒</strong>" in first["content_html"]
    assert first["image"] == f"{SITE}/feeds/media/{copied.name}"
    assert first["attachments"] == [
        {
            "url": f"{SITE}/feeds/media/{copied.name}",
            "mime_type": "image/png",
            "size_in_bytes": copied.stat().st_size,
            "title": "七步洗手",
        }
    ]
    assert datetime.fromisoformat(first["date_published"]) == START + timedelta(minutes=10)
    assert "hubs" not in data

    # The same ids, the same published times in every format.
    rss_times = [parsedate_to_datetime(e.published) for e in rss.entries]
    atom_times = [datetime.fromisoformat(e.published) for e in atom.entries]
    json_times = [datetime.fromisoformat(i["date_published"]) for i in data["items"]]
    assert rss_times == atom_times == json_times


def test_publish_returns_the_stable_id_and_the_item_url(context: Context) -> None:
    channel = make_channel(context)
    context.tick()
    published = channel.publish(make_post(7), {})
    assert published.remote_id == f"{SITE}/kepubot/posts/7"
    assert published.remote_url == f"{SITE}/articles/0007"
    assert published.published_at == context.clock
    # Without a link the item points at the site.
    published = channel.publish(make_post(8, link=""), {})
    assert published.remote_url == SITE


def test_variant_of_the_channel_is_published(context: Context) -> None:
    channel = make_channel(context)
    post = make_post(1, variants={"news-feed": {"title": "订阅版标题"}})
    channel.publish(post, {})
    assert parse(out(context) / "atom.xml").entries[0].title == "订阅版标题"


def test_only_the_configured_formats_are_written(context: Context) -> None:
    channel = make_channel(
        context, formats=["atom"], output_dir=str(context.media_root.parent / "x")
    )
    channel.publish(make_post(1), {})
    folder = context.media_root.parent / "x"  # an absolute output_dir is used as it is
    assert (folder / "atom.xml").is_file()
    assert not (folder / "feed.xml").exists()
    assert not (folder / "feed.json").exists()


def test_media_and_feed_urls_can_be_set(context: Context) -> None:
    channel = make_channel(
        context, feed_url="https://cdn.example.org/rss/", media_url="https://img.example.org/m"
    )
    image = store_image(context, "ventilation.png", kind="cover")
    channel.publish(make_post(1, media=[image]), {})
    rss = parse(out(context) / "feed.xml")
    assert rss.entries[0].enclosures[0].href == f"https://img.example.org/m/{image.sha256}.png"
    links = {link.rel: link.href for link in rss.feed.links if link.rel == "self"}
    assert links == {"self": "https://cdn.example.org/rss/feed.xml"}


def test_cover_comes_first_and_every_image_is_listed(context: Context) -> None:
    channel = make_channel(context)
    image = store_image(context, "handwashing.png")
    cover = store_image(context, "cover-wide.png", kind="cover")
    photo = store_image(context, "handwashing.jpg")
    channel.publish(make_post(1, media=[image, cover, photo]), {})
    names = [f"{m.sha256}.{m.path.rsplit('.', 1)[-1]}" for m in (cover, image, photo)]
    rss = parse(out(context) / "feed.xml")
    assert [e.href.rsplit("/", 1)[-1] for e in rss.entries[0].enclosures] == names[:1]
    atom = parse(out(context) / "atom.xml")
    hrefs = [link.href for link in atom.entries[0].links if link.rel == "enclosure"]
    assert [h.rsplit("/", 1)[-1] for h in hrefs] == names
    item = json.loads((out(context) / "feed.json").read_text(encoding="utf-8"))["items"][0]
    assert item["image"].endswith(names[0])
    assert [a["mime_type"] for a in item["attachments"]] == ["image/png", "image/png", "image/jpeg"]


# --- idempotence, ordering, trimming ---------------------------------------------------------


def test_redo_replaces_the_item_and_keeps_its_first_publication_time(context: Context) -> None:
    channel = make_channel(context)
    posts = publish_three(channel, context)
    before = {
        name: (out(context) / name).read_bytes() for name in ("feed.xml", "atom.xml", "feed.json")
    }
    first_published = channel.publish(posts[0], {}).published_at  # an unknown outcome, redone
    context.tick(60)
    again = channel.publish(posts[0], {})
    assert again.published_at == first_published == START + timedelta(minutes=10)
    assert again.remote_id == item_id(1)
    for name, content in before.items():  # nothing readers see changed
        assert (out(context) / name).read_bytes() == content
    rss = parse(out(context) / "feed.xml")
    assert len(rss.entries) == 3
    assert [e.id for e in rss.entries] == [item_id(3), item_id(2), item_id(1)]
    assert parsedate_to_datetime(rss.entries[2].published) == START + timedelta(minutes=10)


def test_an_edited_post_is_updated_in_place(context: Context) -> None:
    channel = make_channel(context)
    posts = publish_three(channel, context)
    context.tick(60)
    channel.publish(posts[0].model_copy(update={"title": "勤洗手（修订版）"}), {})
    atom = parse(out(context) / "atom.xml")
    assert len(atom.entries) == 3
    edited = atom.entries[2]  # still ordered by first publication
    assert (edited.id, edited.title) == (item_id(1), "勤洗手（修订版）")
    assert datetime.fromisoformat(edited.published) == START + timedelta(minutes=10)
    assert datetime.fromisoformat(edited.updated) == context.clock
    assert datetime.fromisoformat(atom.feed.updated) == context.clock


def test_max_items_keeps_the_newest(context: Context) -> None:
    channel = make_channel(context, max_items=2)
    publish_three(channel, context)
    rss = parse(out(context) / "feed.xml")
    assert [e.id for e in rss.entries] == [item_id(3), item_id(2)]
    atom = parse(out(context) / "atom.xml")
    assert [e.id for e in atom.entries] == [item_id(3), item_id(2)]
    data = json.loads((out(context) / "feed.json").read_text(encoding="utf-8"))
    assert [i["id"] for i in data["items"]] == [item_id(3), item_id(2)]
    state = json.loads((out(context) / STATE_FILE).read_text(encoding="utf-8"))
    assert [i["id"] for i in state["items"]] == [item_id(3), item_id(2)]


def test_two_channel_objects_share_the_state_of_one_folder(context: Context) -> None:
    make_channel(context).publish(make_post(1), {})
    context.tick()
    make_channel(context).publish(make_post(2), {})  # e.g. the next run of the daemon
    assert len(parse(out(context) / "feed.xml").entries) == 2


# --- safety -----------------------------------------------------------------------------------


def test_scripts_never_reach_a_feed(context: Context) -> None:
    channel = make_channel(context)
    body = (
        "正文<script>alert('x')</script>\n\n"
        '<img src="x" onerror="alert(1)">\n\n'
        "[链接](javascript:alert(2))"
    )
    channel.publish(make_post(1, body=body, title="标题\x0b<b>粗</b>"), {})
    for name in ("feed.xml", "atom.xml", "feed.json"):
        raw = (out(context) / name).read_text(encoding="utf-8")
        assert "<script" not in raw.lower(), name
        assert "\x0b" not in raw, name
    contents = [
        parse(out(context) / n).entries[0].content[0].value for n in ("feed.xml", "atom.xml")
    ]
    item = json.loads((out(context) / "feed.json").read_text(encoding="utf-8"))["items"][0]
    for html in [*contents, item["content_html"]]:
        assert "<script" not in html
        assert "<img" not in html  # raw HTML in Markdown is text, never markup
        assert 'href="javascript' not in html
        assert "&lt;script&gt;" in html  # shown to readers as the text it was
    # Titles are plain text in every format (XML-escaped in RSS/Atom); control characters,
    # which XML forbids, are dropped everywhere.
    assert item["title"] == "标题<b>粗</b>"
    assert parse(out(context) / "atom.xml").entries[0].title == "标题<b>粗</b>"


def test_files_are_replaced_atomically(context: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = make_channel(context)
    publish_three(channel, context)
    folder = out(context)
    assert not [p.name for p in folder.rglob("*.tmp")]
    assert oct((folder / "feed.xml").stat().st_mode & 0o777) == oct(0o644)

    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((Path(src).name, Path(dst).name))
        assert Path(src).parent == Path(dst).parent  # same folder: rename is atomic
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    context.tick()
    channel.publish(make_post(4), {})
    targets = [dst for _, dst in replaced]
    assert targets == [STATE_FILE, "feed.xml", "atom.xml", "feed.json"]
    assert all(src.startswith(f".{dst}.") and src.endswith(".tmp") for src, dst in replaced)

    # A failure half-way leaves the old file complete and no temp file behind.
    before = (folder / "atom.xml").read_bytes()

    def broken(src: Any, dst: Any) -> None:
        if Path(dst).name == "atom.xml":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", broken)
    context.tick()
    with pytest.raises(Transient, match="No space left on device"):
        channel.publish(make_post(5), {})
    assert (folder / "atom.xml").read_bytes() == before
    assert not [p.name for p in folder.rglob("*.tmp")]
    monkeypatch.setattr(os, "replace", real_replace)
    channel.publish(make_post(5), {})  # the retry completes the feed
    assert len(parse(folder / "atom.xml").entries) == 5


def test_a_missing_media_file_is_a_permanent_error(context: Context) -> None:
    channel = make_channel(context)
    image = store_image(context)
    (context.media_root / image.path).unlink()
    with pytest.raises(Permanent, match="missing from the media store"):
        channel.publish(make_post(1, media=[image]), {})


def test_a_damaged_state_file_is_reported(context: Context) -> None:
    out(context).mkdir(parents=True)
    (out(context) / STATE_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(Permanent, match="damaged"):
        make_channel(context).publish(make_post(1), {})


# --- WebSub -----------------------------------------------------------------------------------


@responses.activate
def test_websub_hub_is_advertised_and_pinged(context: Context) -> None:
    responses.add(responses.POST, HUB, status=204)
    channel = make_channel(context, websub_hub=HUB)
    channel.publish(make_post(1), {})
    pinged = [parse_qs(call.request.body) for call in responses.calls]
    assert pinged == [
        {"hub.mode": ["publish"], "hub.url": [f"{SITE}/feeds/{name}"]}
        for name in ("feed.xml", "atom.xml", "feed.json")
    ]
    assert all(
        call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        for call in responses.calls
    )
    rss = parse(out(context) / "feed.xml")
    assert {link.rel: link.href for link in rss.feed.links} == {
        "alternate": SITE,
        "self": f"{SITE}/feeds/feed.xml",
        "hub": HUB,
    }
    atom = parse(out(context) / "atom.xml")
    assert {"rel": "hub", "href": HUB} in [
        {"rel": link.rel, "href": link.href} for link in atom.feed.links
    ]
    data = json.loads((out(context) / "feed.json").read_text(encoding="utf-8"))
    assert data["hubs"] == [{"type": "WebSub", "url": HUB}]


@responses.activate
def test_a_failing_hub_does_not_fail_the_publication(
    context: Context, caplog: pytest.LogCaptureFixture
) -> None:
    responses.add(responses.POST, HUB, status=500)
    channel = make_channel(context, websub_hub=HUB, formats=["rss"])
    with caplog.at_level(logging.WARNING, logger="kepubot.channels"):
        published = channel.publish(make_post(1), {})
    assert published.remote_id == item_id(1)
    assert len(parse(out(context) / "feed.xml").entries) == 1
    assert "WebSub ping" in caplog.text and "500" in caplog.text


@responses.activate
def test_a_hub_refusing_the_ping_is_only_a_warning(
    context: Context, caplog: pytest.LogCaptureFixture
) -> None:
    responses.add(responses.POST, HUB, status=400)
    channel = make_channel(context, websub_hub=HUB, formats=["json"])
    with caplog.at_level(logging.WARNING, logger="kepubot.channels"):
        channel.publish(make_post(1), {})
    assert "HTTP 400" in caplog.text


@responses.activate
def test_no_hub_no_ping(context: Context) -> None:
    make_channel(context).publish(make_post(1), {})
    assert len(responses.calls) == 0
    root = ET.parse(out(context) / "feed.xml").getroot()
    hubs = [e for e in root.iter("{http://www.w3.org/2005/Atom}link") if e.get("rel") == "hub"]
    assert hubs == []


# --- verify and render ------------------------------------------------------------------------


def test_verify_checks_that_the_folder_can_be_written(context: Context, tmp_path: Path) -> None:
    channel = make_channel(context)
    assert str(out(context)) in channel.verify()  # not there yet, but its parent is writable
    assert not out(context).exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Permanent, match="not a folder"):
        make_channel(context, output_dir=str(blocker)).verify()


def test_render_is_still_a_feed_item(context: Context) -> None:
    rendered = make_channel(context).render(make_post(1))
    assert rendered.kind == "feed-item"
    assert "<strong>20秒</strong>" in rendered.html
    assert rendered.text == "第1篇科普摘要"
    assert rendered.extra == {"tags": ["健康", "洗手"]}


# --- hostile text and bylines (issue 11 items 6 and 20) -------------------------------------

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script> 科普 & <b>粗</b>'


def test_every_feed_field_is_plain_text_or_sanitised_html(context: Context) -> None:
    """A summary and a title full of markup reach no reader as markup: RSS <title> and
    <description> are HTML-escaped plain text, Atom and JSON Feed carry them as text, and the
    body is the sanitiser's HTML. Parsed without feedparser's own sanitiser, to see the raw."""
    channel = make_channel(context)
    context.tick()
    body = "正文 <script>alert(3)</script>\n\n[点我](javascript:alert(4))"
    channel.publish(make_post(1, title=HOSTILE, summary=HOSTILE, body=body), {})
    folder = out(context)
    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse((folder / name).read_bytes(), sanitize_html=False)
        assert not parsed.bozo, parsed.get("bozo_exception")
        (entry,) = parsed.entries
        for detail in (entry.title_detail, entry.summary_detail):
            value = detail.value
            if detail.type == "text/html":  # RSS: HTML that shows the text as text
                assert "<script" not in value and "<img" not in value and "<b>" not in value
                assert htmllib.unescape(value) == HOSTILE, value
            else:  # Atom: type="text", shown as it is
                assert detail.type == "text/plain" and value == HOSTILE, (name, detail)
        content = entry.content[0].value
        assert "<script" not in content and 'href="javascript' not in content
    raw = (folder / "feed.xml").read_text(encoding="utf-8")
    assert "&lt;script" not in raw.replace("&amp;lt;script", "")  # escaped twice, never once
    data = json.loads((folder / "feed.json").read_text(encoding="utf-8"))
    (item,) = data["items"]
    assert item["title"] == HOSTILE and item["summary"] == HOSTILE  # JSON Feed: plain text
    assert "<script" not in item["content_html"] and 'href="javascript' not in item["content_html"]


def test_bylines_are_display_names_never_logins(context: Context) -> None:
    channel = make_channel(context)
    context.tick()
    channel.publish(make_post(1, author="zhang"), {})
    context.tick()
    channel.publish(make_post(2, author="chen"), {})  # no display name: the feed's title
    folder = out(context)
    rss = (folder / "feed.xml").read_text(encoding="utf-8")
    assert "<dc:creator>张编辑</dc:creator>" in rss and "<dc:creator>科普资讯</dc:creator>" in rss
    for name in ("feed.xml", "atom.xml", "feed.json", STATE_FILE):
        text = (folder / name).read_text(encoding="utf-8")
        assert '"zhang"' not in text and ">zhang<" not in text, name
        assert '"chen"' not in text and ">chen<" not in text, name


def test_an_item_written_with_a_login_gets_the_display_name_on_the_next_write(
    context: Context,
) -> None:
    channel = make_channel(context)
    context.tick()
    channel.publish(make_post(1), {})
    state = out(context) / STATE_FILE
    data = json.loads(state.read_text(encoding="utf-8"))
    data["items"][0]["author"] = "zhang"  # as written before bylines used display names
    state.write_text(json.dumps(data), encoding="utf-8")
    context.tick()
    channel.publish(make_post(2), {})
    atom = parse(out(context) / "atom.xml")
    assert [e.author for e in atom.entries] == ["张编辑", "张编辑"]
