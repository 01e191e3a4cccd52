"""The WeChat channel against the sandbox's WeChat (not a fake that shares our assumptions):
statistics from getarticletotaldetail for freepublish and mass send, followers, the
unverified-account refusals and their message, the mass-send quota and the link rule, with
the real credentials store on a temporary SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
import requests

from kepubot.channels.base import Processing, Published
from kepubot.channels.wechat import WechatChannel
from kepubot.errors import AuthExpired, RateLimited
from kepubot.models import Delivery, Media, Post
from kepubot.queue.credentials import CredentialStore
from kepubot.queue.db import open_database
from kepubot.queue.store import Store
from kepubot.sandbox import Sandbox
from kepubot.timeutil import to_db

APPID, SECRET = "wx0123456789abcdef", "wechat-SECRET-value"
BEIJING = timezone(timedelta(hours=8))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 2
TIMEOUT = 10


class Context:
    def __init__(self, store: CredentialStore, media_dir: Path, clock: list[float]) -> None:
        self.store = store
        self.media_dir = media_dir
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock[0], UTC)

    def media_file(self, relative: str) -> str:
        return str(self.media_dir / relative)

    @property
    def credentials(self) -> CredentialStore:
        return self.store


class World:
    """A frozen clock shared by the sandbox and the channel, moved by the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = [datetime(2025, 12, 1, 9, 0, tzinfo=BEIJING).timestamp()]
        self.sandbox = Sandbox(clock=lambda: self.clock[0])
        self.base = self.sandbox.start()
        self.db = tmp_path / "kepubot.db"
        open_database(self.db, to_db(datetime.now(UTC))).close()
        self.media_dir = tmp_path / "media"
        self.control("secrets", {"wechat": {APPID: SECRET}})
        self.control("settings", {"publish_polls_before_done": 0})

    def control(self, action: str, payload: Any) -> None:
        answer = requests.post(f"{self.base}/_sandbox/{action}", json=payload, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text

    def at(self, when: datetime) -> None:
        self.clock[0] = when.replace(tzinfo=BEIJING).timestamp()

    def channel(self, **changes: Any) -> WechatChannel:
        store = CredentialStore(
            Store(self.db), "test", clock=lambda: datetime.fromtimestamp(self.clock[0], UTC)
        )
        values = {
            "type": "wechat",
            "app_id": APPID,
            "app_secret": "${KP_WECHAT_SECRET}",
            "api_base": self.base,
            "timeout_seconds": 5,
            **changes,
        }
        settings = WechatChannel.Settings.model_validate(values)
        return WechatChannel("wechat-main", settings, Context(store, self.media_dir, self.clock))

    def post(self, post_id: int, body: str = "正文：洗手要用流动水，揉搓不少于20秒。") -> Post:
        content = PNG + post_id.to_bytes(4, "big")
        digest = sha256(content).hexdigest()
        path = f"{digest[:2]}/{digest}.png"
        target = self.media_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        cover = Media(
            kind="cover",
            path=path,
            sha256=digest,
            name="cover.png",
            size=len(content),
            mime="image/png",
        )
        return Post(
            id=post_id,
            title=f"科普第{post_id}期",
            body=body,
            summary="摘要",
            link=f"https://kepu.example.org/a/{post_id}",
            media=[cover],
            author="ed",
        )

    def cube(self, name: str, day: str) -> Any:
        token = requests.get(
            f"{self.base}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
            timeout=TIMEOUT,
        ).json()["access_token"]
        return requests.post(
            f"{self.base}/datacube/{name}",
            params={"access_token": token},
            json={"begin_date": day, "end_date": day},
            timeout=TIMEOUT,
        ).json()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("KP_WECHAT_SECRET", SECRET)
    made = World(tmp_path)
    try:
        yield made
    finally:
        made.sandbox.stop()


def publish(channel: WechatChannel, post: Post, key: str) -> tuple[Published, dict[str, Any]]:
    """publish, then poll until the job is done (the sandbox finishes it at the first poll)."""
    progress: dict[str, Any] = {"idempotency_key": key}
    result = channel.publish(post, progress)
    for _ in range(5):
        if isinstance(result, Published):
            return result, progress
        assert isinstance(result, Processing)
        progress.update(result.progress)
        result = channel.poll(delivery(progress))
    raise AssertionError(f"never published: {result}")


def delivery(progress: dict[str, Any], **changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "id": 1,
        "post_id": 1,
        "channel": "wechat-main",
        "state": "processing",
        "due_at": datetime(2025, 12, 1, tzinfo=UTC),
        "not_before": datetime(2025, 12, 1, tzinfo=UTC),
        "progress": dict(progress),
    }
    values.update(changes)
    return Delivery(**values)


def test_statistics_of_published_and_mass_sent_articles_equal_the_platforms(
    world: World,
) -> None:
    published, free_progress = publish(world.channel(), world.post(1), "key-1")
    sent, mass_progress = publish(world.channel(mode="masssend"), world.post(2), "key-2")
    when = datetime.fromtimestamp(world.clock[0], UTC)
    deliveries = [
        delivery(
            free_progress,
            id=1,
            state="published",
            remote_id=published.remote_id,
            remote_url=published.remote_url,
            published_at=when,
        ),
        delivery(
            mass_progress, id=2, state="published", remote_id=sent.remote_id, published_at=when
        ),
    ]
    assert world.channel().metrics(deliveries) == {}  # T+1: nothing before tomorrow

    world.at(datetime(2025, 12, 3, 10, 0))
    figures = world.channel().metrics(deliveries)
    platform = {r["msgid"]: r for r in world.cube("getarticletotaldetail", "2025-12-01")["list"]}
    assert set(figures) == {published.remote_id, sent.remote_id}
    for remote_id, progress, publish_type in (
        (published.remote_id, free_progress, 1),
        (sent.remote_id, mass_progress, 0),
    ):
        row = platform[f"{progress['msg_data_id']}_1"]
        latest = row["detail_list"][-1]
        assert latest["stat_date"] == "2025-12-02"
        snapshot = figures[remote_id]
        assert (
            snapshot.views,
            snapshot.shares,
            snapshot.likes,
            snapshot.comments,
            snapshot.favorites,
        ) == (
            latest["read_user"],
            latest["share_user"],
            latest["like_user"],
            latest["comment_count"],
            latest["collection_user"],
        )
        assert snapshot.views and snapshot.views > 0
        assert snapshot.raw["publish_type"] == publish_type
        assert snapshot.raw["zaikan_user"] == latest["zaikan_user"]
    paths = [
        e["path"].split("?")[0]
        for e in requests.get(f"{world.base}/_sandbox/requests", timeout=TIMEOUT).json()
    ]
    assert "/datacube/getarticletotal" not in paths


def test_followers_equal_the_platforms(world: World) -> None:
    world.at(datetime(2025, 12, 3, 10, 0))
    figures = world.channel().account_metrics()
    assert figures is not None
    [total] = world.cube("getusercumulate", "2025-12-02")["list"]
    summary = world.cube("getusersummary", "2025-12-02")["list"]
    assert figures["followers"] == total["cumulate_user"]
    gained = sum(r["new_user"] - r["cancel_user"] for r in summary)
    assert figures["followers_gained"] == gained


def test_an_unverified_account_is_named_as_the_cause(world: World) -> None:
    world.control("settings", {"wechat_verified": False})
    channel = world.channel()
    assert "drafts in the box" in channel.verify()
    found = {p.name: p for p in channel.permissions()}
    assert found["draft (草稿箱)"].held is True
    for name in ("freepublish (发布能力)", "datacube (数据统计)"):
        assert found[name].held is False and "未认证的订阅号" in found[name].detail
    with pytest.raises(AuthExpired) as caught:
        publish(channel, world.post(3), "key-3")
    assert "errcode 48001" in str(caught.value) and "未认证的订阅号" in str(caught.value)
    masssend = {p.name: p for p in world.channel(mode="masssend").permissions()}
    assert masssend["verification (微信认证，群发需要)"].held is False


def test_a_second_mass_send_in_a_day_waits_for_the_quota(world: World) -> None:
    channel = world.channel(mode="masssend")
    publish(channel, world.post(4), "key-4")
    with pytest.raises(RateLimited) as caught:
        publish(channel, world.post(5), "key-5")
    assert caught.value.code == 45028
    # 09:00 in Beijing: 15 hours to the platform's midnight, when the quota comes back
    assert caught.value.retry_after == pytest.approx(15 * 3600)


def test_links_outside_wechat_never_reach_the_platform_as_links(world: World) -> None:
    """The platform refuses <a href> to outside domains (45166); the channel writes them out
    as text and keeps links to WeChat articles."""
    body = "详见[世界卫生组织](https://www.who.int/)和[往期文章](https://mp.weixin.qq.com/s/abc)。"
    published, _ = publish(world.channel(), world.post(6, body), "key-6")
    assert published.remote_id
    ledger = requests.get(
        f"{world.base}/_sandbox/ledger", params={"route": "wechat"}, timeout=TIMEOUT
    ).json()
    [draft] = [e for e in ledger["accepted"] if e["kind"] == "draft"]
    content = draft["body"]["articles"][0]["content"]
    assert "https://www.who.int/" in content and 'href="https://www.who.int/"' not in content
    assert 'href="https://mp.weixin.qq.com/s/abc"' in content


def test_an_article_found_without_its_msg_data_id_is_matched_by_its_address(
    world: World,
) -> None:
    """After a lost submit answer the delivery has no msg_data_id; the article's address (mid
    and idx, as freepublish/get and batchget give it) still finds its statistics row."""
    published, progress = publish(world.channel(), world.post(7), "key-7")
    assert published.remote_url and "mid=" in published.remote_url
    found = delivery(
        {"idempotency_key": "key-7", "sent_on": "2025-12-01"},
        state="published",
        remote_id=published.remote_id,
        remote_url=published.remote_url,
        published_at=datetime.fromtimestamp(world.clock[0], UTC),
    )
    world.at(datetime(2025, 12, 2, 10, 0))
    figures = world.channel().metrics([found])
    snapshot = figures[published.remote_id]
    assert snapshot.raw["msgid"] == f"{progress['msg_data_id']}_1"
    assert snapshot.views and snapshot.views > 0
