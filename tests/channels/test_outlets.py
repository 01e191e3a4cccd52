"""The channels without a publishing interface (issue 14): assisted copy packs, the
newspaper's print issue and the display screens' kiosk pages. No database: the feed tests'
context supplies the clock, the media store and the config folder."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kepubot.channels.assisted import PROFILES, AssistedChannel
from kepubot.channels.base import Processing, Published, Retracted
from kepubot.channels.printpage import PrintChannel
from kepubot.channels.screen import ScreenChannel
from kepubot.models import Delivery, Source
from tests.channels.test_feed import Context, make_post, store_image

# 2024-05-01 was a Wednesday; 00:30 UTC is 08:30 in Shanghai
WEDNESDAY = datetime(2024, 5, 1, 0, 30, tzinfo=UTC)


@pytest.fixture
def context(tmp_path: Path) -> Context:
    base = tmp_path / "site"
    base.mkdir()
    ctx = Context(tmp_path / "media-store", base)
    ctx.clock = WEDNESDAY
    return ctx


def assisted(context: Context, platform: str = "toutiao", **extra: Any) -> AssistedChannel:
    values = {"type": "assisted", "platform": platform, "output_dir": "packs", **extra}
    return AssistedChannel("toutiao", AssistedChannel.Settings.model_validate(values), context)


def delivery(post_id: int, progress: dict[str, Any], state: str = "processing") -> Delivery:
    return Delivery.model_validate(
        {
            "id": 7,
            "post_id": post_id,
            "channel": "x",
            "state": state,
            "due_at": WEDNESDAY,
            "not_before": WEDNESDAY,
            "content_hash": "h",
            "progress": progress,
        }
    )


# --- assisted ------------------------------------------------------------------------------


def test_every_profile_has_its_rules() -> None:
    assert set(PROFILES) == {
        "toutiao",
        "kepuchina",
        "wechat_channels",
        "xiaohongshu",
        "zhihu",
        "generic",
    }


def test_assisted_check_applies_the_outlets_rules(context: Context) -> None:
    post = make_post(1, title="标" * 31)
    problems = assisted(context).check(post)
    assert [(p.field, p.code) for p in problems] == [("title", "too_long")]
    assert "30" in problems[0].describe()
    # 视频号 takes videos only; 小红书 needs at least one image
    assert ("video", "required") in [
        (p.field, p.code)
        for p in assisted(context, "wechat_channels").check(make_post(1, title="七步洗手法的依据"))
    ]
    assert ("image", "required") in [
        (p.field, p.code)
        for p in assisted(context, "xiaohongshu").check(make_post(1, title="七步洗手"))
    ]
    assert assisted(context).check(make_post(1)) == []


def test_assisted_writes_a_complete_copy_pack_once(context: Context) -> None:
    channel = assisted(context)
    image = store_image(context)
    post = make_post(
        1,
        media=[image, store_image(context, "handwashing.png", kind="cover")],
        sources=[Source(title="世界卫生组织 洗手指南", url="https://www.who.int/hand")],
    )
    progress = {"idempotency_key": "k-1", "delivery_id": 41}
    result = channel.publish(post, progress)
    assert isinstance(result, Processing)
    assert result.progress["awaiting_person"] is True
    folder, archive = Path(result.progress["pack"]), Path(result.progress["zip"])
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "README.txt",
        "body.html",
        "cover.png",
        "image-01.png",
        "link.txt",
        "sources.txt",
        "summary.txt",
        "tags.txt",
        "title.txt",
    ]
    assert (folder / "title.txt").read_text(encoding="utf-8").strip() == post.title
    assert "<strong>20秒</strong>" in (folder / "body.html").read_text(encoding="utf-8")
    assert "世界卫生组织" in (folder / "body.html").read_text(encoding="utf-8")
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    assert "今日头条" in readme and "kepubot delivery confirm" in readme
    # the README names this delivery, not a placeholder a person must look up
    assert "kepubot delivery confirm 41 --url" in readme
    assert "kepubot delivery decline 41 --reason" in readme and "投递编号 41" in readme
    with zipfile.ZipFile(archive) as zf:
        assert sorted(Path(n).name for n in zf.namelist()) == names
    # again (a redo after a lost answer): the same pack, untouched
    before = (folder / "README.txt").stat().st_mtime_ns
    again = channel.publish(post, progress)
    assert isinstance(again, Processing)
    assert again.progress["pack"] == str(folder)
    assert (folder / "README.txt").stat().st_mtime_ns == before
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".tmp-")] == []


def test_an_edited_post_gets_a_new_pack(context: Context) -> None:
    channel = assisted(context)
    first = channel.publish(
        make_post(1, content_hash="v1"), {"idempotency_key": "k", "delivery_id": 7}
    )
    second = channel.publish(
        make_post(1, title="勤洗手：新版", content_hash="v2"),
        {"idempotency_key": "k", "delivery_id": 7},
    )
    assert isinstance(first, Processing) and isinstance(second, Processing)
    assert first.progress["pack"] != second.progress["pack"]
    title = (Path(second.progress["pack"]) / "title.txt").read_text(encoding="utf-8")
    assert title.strip() == "勤洗手：新版"


def test_text_outlets_get_paragraphs_separated_by_a_blank_line(context: Context) -> None:
    channel = assisted(context, "xiaohongshu")
    post = make_post(1, title="七步洗手", media=[store_image(context)])
    result = channel.publish(post, {"idempotency_key": "k", "delivery_id": 7})
    assert isinstance(result, Processing)
    body = (Path(result.progress["pack"]) / "body.txt").read_text(encoding="utf-8")
    assert "\n\n七步洗手法" in body and "**" not in body


def test_a_crash_mid_pack_leaves_no_half_pack(context: Context, monkeypatch: Any) -> None:
    channel = assisted(context)
    post = make_post(1, media=[store_image(context)])

    def broken(folder: Path, post: Any, *rest: Any) -> None:
        (folder / "title.txt").write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    # only the pack writer breaks, and only inside this block: monkeypatch.undo() would also
    # undo the autouse fixtures (the backend's KEPUBOT_DATABASE, the secrets, the folder)
    with monkeypatch.context() as patch:
        patch.setattr(channel, "_fill", broken)
        with pytest.raises(Exception, match="No space left"):
            channel.publish(post, {"idempotency_key": "k", "delivery_id": 7})
    packs = context.config.base_dir / "packs"
    assert [p for p in packs.iterdir() if not p.name.startswith(".")] == []
    # find(): nothing reached a person, so a new attempt may write it
    assert channel.find(post, WEDNESDAY, {"idempotency_key": "k", "delivery_id": 7}) is None
    assert isinstance(channel.publish(post, {"idempotency_key": "k", "delivery_id": 7}), Processing)
    assert isinstance(
        channel.find(post, WEDNESDAY, {"idempotency_key": "k", "delivery_id": 7}), Processing
    )
    assert [p.name for p in packs.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_pack_without_its_delivery_id_is_refused(context: Context) -> None:
    with pytest.raises(ValueError, match="delivery id"):
        assisted(context).publish(make_post(1), {"idempotency_key": "k"})


def test_poll_waits_for_a_person(context: Context) -> None:
    result = assisted(context).poll(delivery(1, {"awaiting_person": True}))
    assert isinstance(result, Processing)


# --- print ---------------------------------------------------------------------------------


def printer(context: Context, **extra: Any) -> PrintChannel:
    values = {"type": "print", "output_dir": "paper", "issue_days": ["THU"], **extra}
    return PrintChannel("paper", PrintChannel.Settings.model_validate(values), context)


def test_print_refuses_a_post_over_max_characters(context: Context) -> None:
    problems = printer(context, max_characters=100).check(make_post(1, body="字" * 101))
    assert [(p.field, p.code, p.limit, p.actual) for p in problems] == [
        ("body", "too_long", 100, 101)
    ]


def test_print_gathers_posts_into_the_thursday_issue(context: Context) -> None:
    from docx import Document

    channel = printer(context)
    image = store_image(context)
    body = "## 为什么要洗手\n\n手上有细菌。\n\n- 饭前\n- 便后\n\n1. 打湿\n2. 揉搓"
    first = make_post(
        1, body=body, media=[image], sources=[Source(title="指南", url="https://a.example/x")]
    )
    second = make_post(2)
    waits = [channel.publish(p, {"idempotency_key": f"k{p.id}"}) for p in (first, second)]
    assert all(isinstance(w, Processing) and w.progress == {"issue": "2024-05-02"} for w in waits)
    # filing the same delivery again does not file it twice; it takes the current content
    first = first.model_copy(update={"summary": "改过的导语"})
    channel.publish(first, {"idempotency_key": "k1"})
    found = channel.find(first, WEDNESDAY, {"idempotency_key": "k1"})
    assert isinstance(found, Processing) and found.progress == {"issue": "2024-05-02"}
    assert channel.find(make_post(3), WEDNESDAY, {"idempotency_key": "k3"}) is None
    # before Thursday 06:00 (Shanghai) nothing is built
    assert isinstance(channel.poll(delivery(1, {"issue": "2024-05-02"})), Processing)
    context.clock = datetime(2024, 5, 1, 22, 0, tzinfo=UTC)  # Thursday 06:00 local
    done = channel.poll(delivery(1, {"issue": "2024-05-02"}))
    assert isinstance(done, Published) and done.remote_id == "paper-2024-05-02.docx"
    again = channel.poll(delivery(2, {"issue": "2024-05-02"}))
    assert isinstance(again, Published) and again.remote_id == done.remote_id
    folder = context.config.base_dir / "paper"
    document = Document(str(folder / "paper-2024-05-02.docx"))
    texts = [(p.style.name, p.text) for p in document.paragraphs]
    assert ("Heading 1", first.title) in texts and ("Heading 1", second.title) in texts
    assert ("Heading 3", "为什么要洗手") in texts  # under the headline
    assert ("List Bullet", "饭前") in texts and ("List Number", "揉搓") in texts
    assert ("Caption", "七步洗手") in texts
    assert ("Normal", "改过的导语") in texts and ("Normal", "第1篇科普摘要") not in texts
    assert any("指南 https://a.example/x" in t for _, t in texts)
    assert any("张编辑" in t for _, t in texts)
    assert len(document.inline_shapes) == 1
    text = (folder / "paper-2024-05-02.txt").read_text(encoding="utf-8")
    assert first.title in text and "为什么要洗手" in text
    # a post filed after the issue was put together goes into the next one
    later = channel.publish(make_post(4), {"idempotency_key": "k4"})
    assert isinstance(later, Processing) and later.progress == {"issue": "2024-05-09"}


# --- screen --------------------------------------------------------------------------------


def screen(context: Context, **extra: Any) -> ScreenChannel:
    values = {"type": "screen", "output_dir": "kiosk", "max_items": 2, **extra}
    return ScreenChannel("kiosk", ScreenChannel.Settings.model_validate(values), context)


def screen_data(context: Context) -> dict[str, Any]:
    text = (context.config.base_dir / "kiosk" / "data.js").read_text(encoding="utf-8")
    prefix = "window.KEPUBOT_SCREEN = "
    assert text.startswith(prefix)
    return dict(json.loads(text[len(prefix) :].rstrip().rstrip(";")))


def test_screen_keeps_the_newest_items_with_qr_and_image(context: Context) -> None:
    channel = screen(context)
    image = store_image(context)
    for number in (1, 2, 3):
        context.tick()
        channel.publish(make_post(number, media=[image] if number == 3 else []), {})
    data = screen_data(context)
    assert [i["post_id"] for i in data["items"]] == [3, 2]
    newest = data["items"][0]
    assert newest["qr"].startswith("data:image/svg+xml")
    assert (context.config.base_dir / "kiosk" / newest["image"]).is_file()
    folder = context.config.base_dir / "kiosk"
    for name in ("landscape.html", "portrait.html"):
        page = (folder / name).read_text(encoding="utf-8")
        assert '<script src="data.js"></script>' in page
        assert "http://" not in page and "https://" not in page  # no outside requests
        assert "<script>" not in page  # no inline script
    # a redo is harmless; a retraction takes the slide off the screens
    channel.publish(make_post(3, media=[image]), {})
    assert [i["post_id"] for i in screen_data(context)["items"]] == [3, 2]
    gone = channel.retract(delivery(3, {}, "published"), make_post(3), {})
    assert gone == Retracted("removed")
    assert [i["post_id"] for i in screen_data(context)["items"]] == [2]
    assert channel.retract(delivery(3, {}, "published"), make_post(3), {}) == Retracted(
        "already_gone"
    )


def test_screen_needs_a_link_for_its_qr_code(context: Context) -> None:
    problems = screen(context).check(make_post(1, link=""))
    assert [(p.field, p.code) for p in problems] == [("link", "required")]


def test_output_dir_that_cannot_be_written_is_transient(context: Context) -> None:
    from kepubot.errors import Transient

    # a file where the folder should be: no one can write there, root included
    (context.config.base_dir / "blocked").write_text("not a folder", encoding="utf-8")
    with pytest.raises(Transient, match="cannot write"):
        screen(context, output_dir="blocked/kiosk").publish(make_post(1), {})
    with pytest.raises(Transient, match="cannot write"):
        assisted(context, output_dir="blocked/packs").publish(
            make_post(1), {"idempotency_key": "k", "delivery_id": 7}
        )
    with pytest.raises(Transient, match="cannot write"):
        printer(context, output_dir="blocked/paper").publish(
            make_post(1), {"idempotency_key": "k", "delivery_id": 7}
        )
    assert (context.config.base_dir / "blocked").read_text(encoding="utf-8") == "not a folder"
