"""The WeChat Official Account channel against a `responses` fake of the documented API
(docs/platforms.md §3), with the real credentials store on a temporary SQLite file."""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from kepubot.channels.base import (
    Processing,
    Progress,
    Published,
    Token,
    Undecided,
    load_channel_class,
)
from kepubot.channels.wechat import (
    ERRORS,
    MAX_CONTENT,
    MEDIA_PLACEHOLDER,
    TOKEN_ERRCODES,
    WechatChannel,
    article_html,
    clientmsgid,
)
from kepubot.channels.wechat.codes import RETRY_AFTER
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Delivery, Media, MetricSnapshot, Post
from kepubot.queue.credentials import CredentialStore
from kepubot.queue.db import connect, open_database
from kepubot.queue.store import Store
from kepubot.timeutil import to_db

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wechat"
BASE = "https://api.weixin.qq.com"
NOW = datetime(2024, 5, 10, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
APP_ID = "wx0123456789abcdef"
APP_SECRET = "wechat-app-secret-SECRET-9999"
KEY = "kepubot-3f9a-42"
CHANNEL = "wechat-main"
TITLE = "勤洗手：七步洗手法的科学依据"
LINK = "https://kepu.example.org/articles/0001"
BODY = (
    "用流动水和肥皂洗手，揉搓时间不少于**20秒**。\n\n"
    "![七步洗手法](handwashing.png)\n\n"
    "详见[世界卫生组织](https://www.who.int/)和[往期文章](https://mp.weixin.qq.com/s/abc)。"
)
URL_2 = "http://mmbiz.qpic.cn/mmbiz_png/SECONDIMAGE/0?wx_fmt=png"


def fixture(name: str, **subs: Any) -> Any:
    """A fixture file; string values equal to a key of ``subs`` are replaced."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value in subs:
            return subs[value]
        return value

    return walk(data)


ERROR_ANSWERS: dict[str, dict[str, Any]] = fixture("errors")
URL_1 = fixture("media_uploadimg")["url"]


def error(code: int) -> dict[str, Any]:
    return copy.deepcopy(ERROR_ANSWERS[str(code)])


def said(code: int) -> str:
    """What an error message quotes of the platform's errmsg (whitespace collapsed)."""
    return " ".join(ERROR_ANSWERS[str(code)]["errmsg"].split(" rid:")[0].split())


# --- the fake platform ---------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def token(self) -> str | None:
        return self.query.get("access_token")


class Fake:
    """The platform: queued answers per path (the last one repeats); tokens are issued by the
    token endpoints, and a call with a token it never issued gets errcode 40001."""

    TOKEN_PATHS = ("cgi-bin/stable_token", "cgi-bin/token")

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.answers: dict[str, list[Any]] = {}
        self.calls: list[Call] = []
        self.valid: set[str] = set()
        self.issued = 0
        self.token_delay = 0.0
        self._lock = threading.Lock()
        pattern = re.compile(re.escape(BASE) + r"/.*")
        for method in ("GET", "POST"):
            mock.add_callback(method, pattern, callback=self._answer)

    def on(self, path: str, *answers: Any) -> None:
        self.answers[path] = list(answers)

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]

    def to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def _issue(self) -> dict[str, Any]:
        if self.token_delay:
            threading.Event().wait(self.token_delay)  # a slow platform
        with self._lock:
            self.issued += 1
            token = f"tok-{self.issued}-SECRET"
            self.valid.add(token)
        return {"access_token": token, "expires_in": 7200}

    def _answer(self, request: Any) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):  # a streamed multipart body
            body = b"".join(body)
        call = Call(
            request.method,
            parts.path.lstrip("/"),
            {k: v[0] for k, v in parse_qs(parts.query).items()},
            body,
            dict(request.headers),
        )
        with self._lock:
            self.calls.append(call)
            if call.path not in self.TOKEN_PATHS and call.token not in self.valid:
                return 200, {}, json.dumps(error(40001))
            queue = self.answers.get(call.path)
            answer = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        if isinstance(answer, Exception):
            return 200, {}, answer
        if answer is None:
            if call.path not in self.TOKEN_PATHS:
                return 404, {}, "no such endpoint in the fake"
            answer = self._issue()
        if isinstance(answer, tuple):
            return answer[0], {}, answer[1]
        if isinstance(answer.get("access_token"), str):
            self.valid.add(answer["access_token"])
        return 200, {"Content-Type": "application/json"}, json.dumps(answer, ensure_ascii=False)


# --- the world a channel lives in ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW


class Context:
    def __init__(self, store: CredentialStore, media_dir: Path, clock: Clock) -> None:
        self.store = store
        self.media_dir = media_dir
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now

    def media_file(self, relative: str) -> str:
        return str(self.media_dir / relative)

    @property
    def credentials(self) -> CredentialStore:
        return self.store


@dataclass
class World:
    db: Path
    media_dir: Path
    clock: Clock
    fake: Fake
    media_files: dict[str, Media] = field(default_factory=dict)

    def store(self, owner: str = "test") -> CredentialStore:
        return CredentialStore(Store(self.db), owner, clock=lambda: self.clock.now)

    def channel(self, owner: str = "daemon-1", **changes: Any) -> WechatChannel:
        values = {
            "type": "wechat",
            "app_id": APP_ID,
            "app_secret": "${KP_WECHAT_SECRET}",
            "author": "科普编辑部",
            **changes,
        }
        settings = WechatChannel.Settings.model_validate(values)
        context = Context(self.store(owner), self.media_dir, self.clock)
        return WechatChannel(CHANNEL, settings, context)

    def put_token(self, value: str, seconds: float = 3600, *, valid: bool = True) -> None:
        self.store().put(
            CHANNEL, Token(value, expires_at=self.clock.now + timedelta(seconds=seconds))
        )
        if valid:
            self.fake.valid.add(value)

    def media(self, kind: str, name: str) -> Media:
        content = f"{kind}:{name}".encode() * 50
        digest = sha256(content).hexdigest()
        path = f"{digest[:2]}/{digest}.png"
        target = self.media_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        item = Media(
            kind=kind, path=path, sha256=digest, name=name, size=len(content), mime="image/png"
        )
        self.media_files[name] = item
        return item

    def post(self, **changes: Any) -> Post:
        fields: dict[str, Any] = {
            "id": 1,
            "title": TITLE,
            "body": BODY,
            "summary": "正确洗手能有效去除手上的病原体。",
            "link": LINK,
            "media": [
                self.media("image", "handwashing.png"),
                self.media("image", "mask.png"),
                self.media("cover", "cover-wide.png"),
            ],
            "author": "zhang",
        }
        fields.update(changes)
        return Post(**fields)

    def ready_for_draft(self, post: Post) -> Progress:
        """Progress of a delivery whose uploads are done (only draft/add is left)."""
        _, inline = article_html(post)
        urls = iter([URL_1, URL_2])
        return Progress(
            {
                "idempotency_key": KEY,
                "images": {path: next(urls) for path in inline},
                "thumb_media_id": "THUMB_MEDIA_ID",
            }
        )

    def ready_to_send(self, post: Post) -> Progress:
        progress = self.ready_for_draft(post)
        progress.update(draft_media_id="DRAFT_MEDIA_ID", title=post.title)
        return progress


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("KP_WECHAT_SECRET", APP_SECRET)
    db = tmp_path / "kepubot.db"
    open_database(db, to_db(NOW)).close()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield World(db, tmp_path / "media", Clock(), Fake(mock))


def happy_path(fake: Fake) -> None:
    fake.on("cgi-bin/media/uploadimg", fixture("media_uploadimg"), {"url": URL_2})
    fake.on("cgi-bin/material/add_material", fixture("material_add_material"))
    fake.on("cgi-bin/draft/add", fixture("draft_add"))
    fake.on("cgi-bin/freepublish/submit", fixture("freepublish_submit"))


def assert_no_secret(world: World, exc: BaseException) -> None:
    printed = str(exc) + "".join(traceback.format_exception(exc))
    for secret in [APP_SECRET, *world.fake.valid, "tok-old"]:
        assert secret not in printed
    assert "access_token=" not in printed and BASE not in printed


def delivery(progress: dict[str, Any], **changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "id": 9,
        "post_id": 1,
        "channel": CHANNEL,
        "state": "processing",
        "due_at": NOW,
        "not_before": NOW,
        "progress": dict(progress),
    }
    values.update(changes)
    return Delivery(**values)


# --- every errcode of the table ------------------------------------------------------------------


def test_the_error_fixtures_cover_the_table() -> None:
    assert {int(code) for code in ERROR_ANSWERS} == set(ERRORS)
    assert set(ERRORS.values()) <= {
        "auth",
        "rate_limited",
        "permanent",
        "transient",
        "busy",
        "duplicate",
    }
    assert {40001, 40014, 42001} == TOKEN_ERRCODES


EXPECTED = {
    "auth": AuthExpired,
    "rate_limited": RateLimited,
    "permanent": Permanent,
    "transient": Transient,
    "duplicate": OutcomeUnknown,
}


@pytest.mark.parametrize("step", ["draft/add", "media/uploadimg"])
@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_errcode(world: World, code: int, step: str) -> None:
    """Each row of ERRORS, on a call that creates something (draft/add) and on an upload."""
    post = world.post()
    world.put_token("tok-0")
    channel = world.channel()
    if step == "draft/add":
        progress = world.ready_for_draft(post)
    else:
        progress = Progress({"idempotency_key": KEY})
    world.fake.on(f"cgi-bin/{step}", error(code))
    with pytest.raises(ChannelError) as info:
        channel.publish(post, progress)
    exc = info.value
    kind = ERRORS[code]
    if kind == "busy":
        expected: type[ChannelError] = OutcomeUnknown if step == "draft/add" else Transient
    else:
        expected = EXPECTED[kind]
    assert type(exc) is expected, f"{code}: {type(exc).__name__}: {exc}"
    assert exc.code == code
    assert f"errcode {code}" in str(exc)
    assert said(code) in str(exc)
    assert len(str(exc)) < 500
    assert_no_secret(world, exc)
    calls = world.fake.to(f"cgi-bin/{step}")
    if code in TOKEN_ERRCODES:
        # refreshed once (single flight), repeated once with the new token, then given up
        assert [c.token for c in calls] == ["tok-0", "tok-1-SECRET"]
        assert len(world.fake.to("cgi-bin/stable_token")) == 1
    else:
        assert len(calls) == 1
        assert world.fake.to("cgi-bin/stable_token") == []
    if kind == "rate_limited":
        assert isinstance(exc, RateLimited)
        # 45009/45028 are daily quotas: wait until midnight in Beijing (now 10:00 there)
        wait = 14 * 3600.0 if code in (45009, 45028) else RETRY_AFTER[code]
        assert exc.retry_after == wait
    assert "cgi-bin/draft/add" not in world.fake.paths()[1:] or step == "draft/add"


def test_an_unknown_errcode_is_permanent(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/draft/add", {"errcode": 99999, "errmsg": "something new"})
    with pytest.raises(Permanent, match="errcode 99999: something new"):
        world.channel().publish(post, world.ready_for_draft(post))


def test_an_errmsg_echoing_a_secret_is_masked(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    echo = {"errcode": 45166, "errmsg": f"invalid content, token tok-0 secret {APP_SECRET}"}
    world.fake.on("cgi-bin/draft/add", echo)
    with pytest.raises(Permanent) as info:
        world.channel().publish(post, world.ready_for_draft(post))
    assert "invalid content, token *** secret ***" in str(info.value)
    assert "tok-0" not in str(info.value)


# --- transport outcomes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "answer", "expected"),
    [
        ("draft/add", requests.exceptions.ReadTimeout(), OutcomeUnknown),
        ("draft/add", requests.ConnectionError("Connection reset by peer"), OutcomeUnknown),
        ("draft/add", requests.exceptions.ConnectTimeout(), Transient),
        ("draft/add", (500, "oops"), OutcomeUnknown),
        ("draft/add", (200, "<html>gateway</html>"), OutcomeUnknown),
        ("draft/add", {"errcode": 0, "errmsg": "ok"}, OutcomeUnknown),  # no media_id
        ("draft/add", (404, "not found"), Permanent),
        ("draft/add", (403, "forbidden"), AuthExpired),
        ("media/uploadimg", requests.exceptions.ReadTimeout(), Transient),
        ("media/uploadimg", (502, "bad gateway"), Transient),
        ("media/uploadimg", (200, "not json"), Transient),
        ("media/uploadimg", {}, Transient),  # no url
        ("freepublish/submit", requests.exceptions.ReadTimeout(), OutcomeUnknown),
        ("freepublish/submit", {"errcode": 0, "errmsg": "ok"}, OutcomeUnknown),  # no publish_id
    ],
)
def test_transport_outcomes(
    world: World, step: str, answer: Any, expected: type[ChannelError]
) -> None:
    post = world.post()
    world.put_token("tok-0")
    progress = {
        "draft/add": world.ready_for_draft(post),
        "media/uploadimg": Progress({"idempotency_key": KEY}),
        "freepublish/submit": world.ready_to_send(post),
    }[step]
    world.fake.on(f"cgi-bin/{step}", answer)
    with pytest.raises(ChannelError) as info:
        world.channel().publish(post, progress)
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
    assert_no_secret(world, info.value)
    assert len(world.fake.to(f"cgi-bin/{step}")) == 1  # never repeated by the client


@pytest.mark.parametrize(
    "answer", [requests.exceptions.ReadTimeout(), (500, ""), (404, ""), (200, "nope")]
)
def test_a_failed_poll_is_transient(world: World, answer: Any) -> None:
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/get", answer)
    with pytest.raises(Transient) as info:
        world.channel().poll(delivery({"publish_id": "100000001"}))
    assert_no_secret(world, info.value)


# --- the freepublish flow ------------------------------------------------------------------------


def test_freepublish_flow(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kepubot")
    post = world.post()
    happy_path(world.fake)
    saved: list[dict[str, Any]] = []
    progress = Progress({"idempotency_key": KEY}, on_save=saved.append)
    channel = world.channel()

    result = channel.publish(post, progress)

    assert isinstance(result, Processing)
    assert result.progress == {"publish_id": "100000001"}
    assert world.fake.paths() == [
        "cgi-bin/stable_token",
        "cgi-bin/media/uploadimg",
        "cgi-bin/media/uploadimg",
        "cgi-bin/material/add_material",
        "cgi-bin/draft/add",
        "cgi-bin/freepublish/submit",
    ]
    token_call, *api_calls = world.fake.calls
    assert token_call.method == "POST"
    assert token_call.json == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": APP_SECRET,
        "force_refresh": False,
    }
    assert {c.token for c in api_calls} == {"tok-1-SECRET"}
    stored = world.store().get(CHANNEL)
    assert stored is not None and stored.access_token == "tok-1-SECRET"
    assert stored.expires_at == NOW + timedelta(seconds=7200)

    handwashing, mask, cover = (
        world.media_files[n] for n in ("handwashing.png", "mask.png", "cover-wide.png")
    )
    up1, up2, material = api_calls[:3]
    for call, item in ((up1, handwashing), (up2, mask), (material, cover)):
        assert call.headers["Content-Type"].startswith("multipart/form-data")
        name = item.path.rsplit("/", 1)[1]
        assert f'name="media"; filename="{name}"'.encode() in call.body
        assert (world.media_dir / item.path).read_bytes() in call.body
    assert material.query["type"] == "image"

    draft_call = api_calls[3]
    assert TITLE.encode("utf-8") in draft_call.body  # real characters, not \u escapes
    (article,) = draft_call.json["articles"]
    assert article["title"] == TITLE
    assert article["author"] == "科普编辑部"
    assert article["digest"] == "正确洗手能有效去除手上的病原体。"
    assert article["content_source_url"] == LINK
    assert article["thumb_media_id"] == "THUMB_MEDIA_ID"
    assert article["need_open_comment"] == 0
    assert article["only_fans_can_comment"] == 0
    content = article["content"]
    assert f'src="{URL_1}"' in content and f'src="{URL_2}"' in content
    assert MEDIA_PLACEHOLDER not in content
    assert 'style="' in content and "<script" not in content and "class=" not in content
    assert (
        "世界卫生组织（https://www.who.int/）" in content and 'href="https://www.who' not in content
    )
    assert '<a href="https://mp.weixin.qq.com/s/abc">往期文章</a>' in content

    assert api_calls[4].json == {"media_id": "DRAFT_MEDIA_ID"}

    # every step was saved at once, in order; the creating calls are marked before they leave
    draft_saved = ["draft_requested_at", "images", "send_marks", "thumb_media_id", "title"]
    assert [sorted(set(s) - {"idempotency_key"}) for s in saved] == [
        ["images"],
        ["images"],
        ["images", "thumb_media_id"],
        draft_saved,
        sorted([*draft_saved, "draft_media_id"]),
        sorted([*draft_saved, "draft_media_id", "submit_requested_at"]),
        sorted(
            [
                *draft_saved,
                "draft_media_id",
                "submit_requested_at",
                "msg_data_id",
                "publish_id",
                "sent_on",
            ]
        ),
    ]
    assert saved[-2]["submit_requested_at"] == int(NOW.timestamp())
    assert saved[1]["images"] == {handwashing.path: URL_1, mask.path: URL_2}
    assert saved[-1]["publish_id"] == "100000001"
    assert saved[-1]["sent_on"] == "2024-05-10"

    # then the platform publishes it
    world.fake.on(
        "cgi-bin/freepublish/get",
        fixture("freepublish_get_publishing"),
        fixture("freepublish_get_success"),
    )
    processing = delivery(saved[-1])
    assert isinstance(channel.poll(processing), Processing)
    assert channel.poll(processing) == Published(
        "ARTICLE_ID", "https://mp.weixin.qq.com/s/ARTICLE_URL", NOW
    )
    assert [c.json for c in world.fake.to("cgi-bin/freepublish/get")] == [
        {"publish_id": "100000001"}
    ] * 2
    for secret in ["tok-1-SECRET", APP_SECRET]:
        assert secret not in caplog.text


class Crash(Exception):
    """The process dies right after a checkpoint was written."""


def test_a_crash_after_draft_add_never_makes_a_second_draft(world: World) -> None:
    post = world.post()
    happy_path(world.fake)
    disk: dict[str, Any] = {}

    def save_then_crash(data: dict[str, Any]) -> None:
        disk.clear()
        disk.update(copy.deepcopy(data))
        if "draft_media_id" in data:
            raise Crash

    with pytest.raises(Crash):
        world.channel().publish(post, Progress({"idempotency_key": KEY}, on_save=save_then_crash))
    assert disk["draft_media_id"] == "DRAFT_MEDIA_ID"
    assert "cgi-bin/freepublish/submit" not in world.fake.paths()

    # a restarted daemon (another process, same database) resumes from the saved progress
    before = len(world.fake.calls)
    result = world.channel(owner="daemon-2").publish(post, Progress(disk))
    assert isinstance(result, Processing)
    assert world.fake.paths()[before:] == ["cgi-bin/freepublish/submit"]
    assert len(world.fake.to("cgi-bin/draft/add")) == 1
    assert len(world.fake.to("cgi-bin/media/uploadimg")) == 2
    assert len(world.fake.to("cgi-bin/material/add_material")) == 1
    assert len(world.fake.to("cgi-bin/stable_token")) == 1  # the stored token is shared


def test_resume_uploads_only_what_is_missing(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    happy_path(world.fake)
    world.fake.on("cgi-bin/media/uploadimg", {"url": URL_2})
    progress = world.ready_for_draft(post)
    first = next(iter(progress["images"]))
    progress["images"] = {first: URL_1}
    del progress["thumb_media_id"]
    world.channel().publish(post, progress)
    assert world.fake.paths() == [
        "cgi-bin/media/uploadimg",
        "cgi-bin/material/add_material",
        "cgi-bin/draft/add",
        "cgi-bin/freepublish/submit",
    ]


def test_progress_with_a_draft_goes_straight_to_submit(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    happy_path(world.fake)
    result = world.channel().publish(post, world.ready_to_send(post))
    assert isinstance(result, Processing)
    assert world.fake.paths() == ["cgi-bin/freepublish/submit"]


def test_progress_with_a_publish_id_is_never_submitted_again(world: World) -> None:
    post = world.post()
    progress = world.ready_to_send(post)
    progress["publish_id"] = "100000001"
    result = world.channel().publish(post, progress)
    assert isinstance(result, Processing)
    assert result.progress == {"publish_id": "100000001"}
    assert world.fake.calls == []


def test_an_unanswered_draft_add_is_found_in_the_draft_box(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    happy_path(world.fake)
    world.fake.on("cgi-bin/draft/batchget", fixture("draft_batchget", TITLE=TITLE))
    progress = world.ready_for_draft(post)
    progress.update(draft_requested_at=1715300000 - 30, title=TITLE)
    world.channel().publish(post, progress)
    assert world.fake.paths() == ["cgi-bin/draft/batchget", "cgi-bin/freepublish/submit"]
    assert world.fake.calls[0].json == {"offset": 0, "count": 20, "no_content": 0}
    assert world.fake.calls[1].json == {"media_id": "EARLIER_DRAFT_MEDIA_ID"}
    assert progress["draft_media_id"] == "EARLIER_DRAFT_MEDIA_ID"


def test_without_that_draft_in_the_box_a_draft_is_made(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    happy_path(world.fake)
    world.fake.on("cgi-bin/draft/batchget", fixture("draft_batchget"))  # other titles only
    progress = world.ready_for_draft(post)
    progress.update(draft_requested_at=1715300000 - 30, title=TITLE)
    world.channel().publish(post, progress)
    assert world.fake.paths() == [
        "cgi-bin/draft/batchget",
        "cgi-bin/draft/add",
        "cgi-bin/freepublish/submit",
    ]


# --- content rules at publishing time ------------------------------------------------------------


def test_publish_checks_the_limits_again(world: World) -> None:
    with pytest.raises(Permanent, match="title is too long: limit 32, actual 33"):
        world.channel().publish(world.post(title="科" * 33), Progress({"idempotency_key": KEY}))
    with pytest.raises(Permanent, match="author is too long"):
        world.channel(author="作" * 17).publish(world.post(), Progress({"idempotency_key": KEY}))
    assert world.fake.calls == []


def test_content_too_long_once_the_image_urls_are_in(world: World) -> None:
    long_url = "http://mmbiz.qpic.cn/mmbiz_png/" + "x" * 300
    post = world.post(body="![图](handwashing.png)\n\n")
    html, _ = article_html(post)
    post = world.post(body="字" * (MAX_CONTENT - len(html) - 100) + "\n\n![图](handwashing.png)")
    assert world.channel().check(post) == []
    world.put_token("tok-0")
    world.fake.on("cgi-bin/media/uploadimg", {"url": long_url})
    world.fake.on("cgi-bin/material/add_material", fixture("material_add_material"))
    with pytest.raises(Permanent, match="with the image URLs"):
        world.channel().publish(post, Progress({"idempotency_key": KEY}))
    assert "cgi-bin/draft/add" not in world.fake.paths()


# --- poll ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (2, "failed the originality (原创) check; failing article index 1"),
        (3, "failed (normal failure) (publish_status 3)"),
        (4, "was rejected by the platform's audit; failing article index 1"),
        (5, "was deleted by a user"),
        (6, "was banned by the platform"),
    ],
)
def test_poll_failures_are_permanent(world: World, status: int, says: str) -> None:
    world.put_token("tok-0")
    answer = fixture("freepublish_get_failed")
    answer["publish_status"] = status
    world.fake.on("cgi-bin/freepublish/get", answer)
    with pytest.raises(Permanent) as info:
        world.channel().poll(delivery({"publish_id": "100000001"}))
    assert says in str(info.value)
    assert "publish task 100000001" in str(info.value)
    if status == 3:
        assert "failing article index" not in str(info.value)


def test_poll_an_undocumented_status_keeps_polling(world: World) -> None:
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/get", {"publish_id": "100000001", "publish_status": 9})
    with pytest.raises(Transient, match="undocumented publish_status 9"):
        world.channel().poll(delivery({"publish_id": "100000001"}))


def test_poll_without_a_publish_id(world: World) -> None:
    with pytest.raises(Permanent, match="neither a publish_id nor a msg_id"):
        world.channel().poll(delivery({"draft_media_id": "DRAFT_MEDIA_ID"}))


# --- access token --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(TOKEN_ERRCODES))
def test_a_refused_token_is_refreshed_once_and_the_call_repeated(world: World, code: int) -> None:
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/get", error(code), fixture("freepublish_get_success"))
    result = world.channel().poll(delivery({"publish_id": "100000001"}))
    assert isinstance(result, Published) and result.remote_id == "ARTICLE_ID"
    assert [(c.path, c.token) for c in world.fake.calls] == [
        ("cgi-bin/freepublish/get", "tok-0"),
        ("cgi-bin/stable_token", None),
        ("cgi-bin/freepublish/get", "tok-1-SECRET"),
    ]
    stored = world.store().get(CHANNEL)
    assert stored is not None and stored.access_token == "tok-1-SECRET"


def test_a_create_call_refused_for_its_token_is_made_once_more(world: World) -> None:
    post = world.post()
    world.put_token("tok-old", valid=False)  # e.g. another process fetched through cgi-bin/token
    happy_path(world.fake)
    world.channel().publish(post, world.ready_for_draft(post))
    assert [(c.path, c.token) for c in world.fake.calls] == [
        ("cgi-bin/draft/add", "tok-old"),
        ("cgi-bin/stable_token", None),
        ("cgi-bin/draft/add", "tok-1-SECRET"),
        ("cgi-bin/freepublish/submit", "tok-1-SECRET"),
    ]


def test_a_second_token_error_is_auth_expired(world: World) -> None:
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/get", error(40001))
    with pytest.raises(AuthExpired) as info:
        world.channel().poll(delivery({"publish_id": "100000001"}))
    assert "refused again right after a refresh" in str(info.value)
    assert len(world.fake.to("cgi-bin/stable_token")) == 1
    assert len(world.fake.to("cgi-bin/freepublish/get")) == 2
    assert_no_secret(world, info.value)


@pytest.mark.parametrize(("seconds_left", "refreshed"), [(200, True), (299, True), (600, False)])
def test_refreshed_before_it_expires(world: World, seconds_left: float, refreshed: bool) -> None:
    world.put_token("tok-0", seconds_left)
    world.fake.on("cgi-bin/freepublish/get", fixture("freepublish_get_publishing"))
    world.channel().poll(delivery({"publish_id": "100000001"}))
    expected = ["cgi-bin/stable_token"] if refreshed else []
    assert world.fake.paths() == [*expected, "cgi-bin/freepublish/get"]
    assert world.fake.calls[-1].token == ("tok-1-SECRET" if refreshed else "tok-0")


def test_the_classic_token_endpoint(world: World) -> None:
    world.fake.on("cgi-bin/freepublish/get", fixture("freepublish_get_publishing"))
    world.fake.on("cgi-bin/token", fixture("token", ACCESS_TOKEN="tok-classic-SECRET"))
    world.channel(token_endpoint="token").poll(delivery({"publish_id": "100000001"}))
    token_call = world.fake.calls[0]
    assert (token_call.method, token_call.path) == ("GET", "cgi-bin/token")
    assert token_call.query == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": APP_SECRET,
    }
    assert world.fake.calls[1].token == "tok-classic-SECRET"


@pytest.mark.parametrize("scenario", ["expiring", "refused"])
def test_concurrent_refresh_is_single_flight(world: World, scenario: str) -> None:
    """Six daemons (own channel, own store connection) find the token stale at once: the
    platform is asked once, and everyone uses the one new token."""
    if scenario == "expiring":
        world.put_token("tok-old", 60)
    else:
        world.put_token("tok-old", 3600, valid=False)  # the platform answers 40001
    world.fake.token_delay = 0.3
    world.fake.on("cgi-bin/freepublish/get", fixture("freepublish_get_publishing"))
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def daemon(i: int) -> None:
        channel = world.channel(owner=f"daemon-{i}")
        barrier.wait()
        try:
            results.append(channel.poll(delivery({"publish_id": "100000001"})))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=daemon, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 6 and all(isinstance(r, Processing) for r in results)
    assert len(world.fake.to("cgi-bin/stable_token")) == 1
    polls = world.fake.to("cgi-bin/freepublish/get")
    assert {c.token for c in polls if c.token != "tok-old"} == {"tok-1-SECRET"}
    assert sum(c.token == "tok-1-SECRET" for c in polls) == 6
    stored = world.store().get(CHANNEL)
    assert stored is not None and stored.access_token == "tok-1-SECRET"


def test_a_refresh_lease_held_too_long_is_transient(world: World) -> None:
    """Another daemon holds the refresh lease (and hangs): wait a little, then retry later."""
    world.put_token("tok-old", 60)
    conn = connect(world.db)
    conn.execute(
        "UPDATE credentials SET lease_owner = 'hung-daemon', lease_until = ? WHERE channel = ?",
        (to_db(NOW + timedelta(minutes=5)), CHANNEL),
    )
    channel = world.channel()
    assert isinstance(channel.context, Context)
    channel.context.store.wait_seconds = 0.2
    with pytest.raises(Transient, match="holds the token refresh too long"):
        channel.poll(delivery({"publish_id": "100000001"}))
    assert world.fake.calls == []


# --- verify --------------------------------------------------------------------------------------


def test_verify(world: World) -> None:
    world.fake.on("cgi-bin/draft/count", fixture("draft_count"))
    line = world.channel().verify()
    assert "\n" not in line
    assert APP_ID in line
    assert "access token valid until 2024-05-10 04:00 UTC" in line
    assert "3 drafts" in line
    assert "tok-1" not in line and APP_SECRET not in line
    assert world.fake.paths() == ["cgi-bin/stable_token", "cgi-bin/draft/count"]
    assert world.fake.calls[1].method == "GET"


@pytest.mark.parametrize("code", [40125, 40001, 40013, 40164])
def test_verify_with_a_bad_secret(world: World, code: int) -> None:
    answer = error(code)
    answer["errmsg"] += f" (secret {APP_SECRET})"  # even if the platform echoed it
    world.fake.on("cgi-bin/stable_token", answer)
    with pytest.raises(AuthExpired) as info:
        world.channel().verify()
    message = str(info.value)
    assert said(code) in message
    assert "check app_id, app_secret" in message
    assert_no_secret(world, info.value)
    assert world.fake.paths() == ["cgi-bin/stable_token"]  # no refresh loop
    assert world.store().get(CHANNEL) is None


# --- mass send -----------------------------------------------------------------------------------


def test_masssend(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/message/mass/sendall", fixture("message_mass_sendall"))
    progress = world.ready_to_send(post)
    result = world.channel(mode="masssend").publish(post, progress)
    # accepted is not sent: under 「API群发保护」 an administrator must confirm it first
    assert result == Processing(progress={"msg_id": "34182"}, poll_after_seconds=60.0)
    assert progress["mass_requested_at"] == int(NOW.timestamp())
    (call,) = world.fake.calls
    assert call.path == "cgi-bin/message/mass/sendall"
    assert call.json == {
        "filter": {"is_to_all": True},
        "mpnews": {"media_id": "DRAFT_MEDIA_ID"},
        "msgtype": "mpnews",
        "send_ignore_reprint": 0,
        "clientmsgid": KEY,
    }
    assert progress["msg_id"] == "34182" and progress["msg_data_id"] == "206227730"
    assert progress["sent_on"] == "2024-05-10"


def test_masssend_to_a_tag(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/message/mass/sendall", fixture("message_mass_sendall"))
    channel = world.channel(mode="masssend", mass_tag_id=7, send_ignore_reprint=True)
    channel.publish(post, world.ready_to_send(post))
    body = world.fake.calls[0].json
    assert body["filter"] == {"is_to_all": False, "tag_id": 7}
    assert body["send_ignore_reprint"] == 1


def test_masssend_repeat_after_a_lost_answer_is_recognised(world: World) -> None:
    """45065: the clientmsgid was used already: that earlier send is this delivery."""
    post = world.post()
    world.put_token("tok-0")
    world.fake.on(
        "cgi-bin/message/mass/sendall",
        requests.exceptions.ReadTimeout(),
        fixture("message_mass_sendall_45065"),
    )
    channel = world.channel(mode="masssend")
    progress = world.ready_to_send(post)
    with pytest.raises(OutcomeUnknown):
        channel.publish(post, progress)
    assert "msg_id" not in progress
    first_mark = progress["mass_requested_at"]
    world.clock.now = NOW + timedelta(minutes=5)
    processing = Processing(progress={"msg_id": "34182"}, poll_after_seconds=60.0)
    assert channel.publish(post, progress) == processing
    first, second = world.fake.to("cgi-bin/message/mass/sendall")
    assert first.json["clientmsgid"] == second.json["clientmsgid"] == KEY
    assert progress["msg_id"] == "34182"
    assert progress["mass_requested_at"] == first_mark  # the window counts from the first send
    # and once known, never sent again
    assert channel.publish(post, progress) == processing
    assert len(world.fake.to("cgi-bin/message/mass/sendall")) == 2


def test_masssend_45065_without_a_msg_id_is_unknown(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/message/mass/sendall", error(45065))
    with pytest.raises(OutcomeUnknown) as info:
        world.channel(mode="masssend").publish(post, world.ready_to_send(post))
    assert info.value.code == 45065


def test_clientmsgid_fits_the_platform_limit() -> None:
    assert clientmsgid({"idempotency_key": KEY}) == KEY
    long_key = "kepubot-" + "f" * 80 + "-42"
    value = clientmsgid({"idempotency_key": long_key})
    assert len(value.encode()) <= 64
    assert value == clientmsgid({"idempotency_key": long_key})
    with pytest.raises(ValueError, match="idempotency_key"):
        clientmsgid({})


# --- draft mode ----------------------------------------------------------------------------------


def test_draft_mode_leaves_the_article_in_the_draft_box(world: World) -> None:
    post = world.post()
    happy_path(world.fake)
    result = world.channel(mode="draft").publish(post, Progress({"idempotency_key": KEY}))
    assert result == Published("draft:DRAFT_MEDIA_ID", None, NOW)
    assert world.fake.paths()[-1] == "cgi-bin/draft/add"
    assert "cgi-bin/freepublish/submit" not in world.fake.paths()


# --- find ----------------------------------------------------------------------------------------


def test_find_by_publish_id(world: World) -> None:
    world.put_token("tok-0")
    world.fake.on(
        "cgi-bin/freepublish/get",
        fixture("freepublish_get_success"),
        fixture("freepublish_get_publishing"),
        fixture("freepublish_get_failed"),
    )
    channel = world.channel()
    progress = {"idempotency_key": KEY, "publish_id": "100000001"}
    found = channel.find(world.post(), NOW - timedelta(hours=1), progress)
    assert found == Published("ARTICLE_ID", "https://mp.weixin.qq.com/s/ARTICLE_URL", NOW)
    # still publishing, or ended in a failure: the task exists, so it is polled (poll()
    # reports success or the failure's reason); it is never submitted again
    job = Processing(progress={"publish_id": "100000001"}, poll_after_seconds=60.0)
    assert channel.find(world.post(), NOW - timedelta(hours=1), progress) == job
    assert channel.find(world.post(), NOW - timedelta(hours=1), progress) == job
    assert world.fake.paths() == ["cgi-bin/freepublish/get"] * 3


def test_find_with_a_msg_id_polls_the_mass_send(world: World) -> None:
    progress = {"idempotency_key": KEY, "msg_id": "34182"}
    found = world.channel(mode="masssend").find(world.post(), NOW, progress)
    assert found == Processing(progress={"msg_id": "34182"}, poll_after_seconds=60.0)
    assert world.fake.calls == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("SEND_SUCCESS", "published"),
        ("SENDING", "processing"),
        ("SEND_FAIL", "API群发保护"),
        ("DELETE", "deleted after sending"),
        ("SOMETHING_NEW", Transient),
    ],
)
def test_poll_a_mass_send(world: World, status: str, expected: Any) -> None:
    """message/mass/get: only SEND_SUCCESS is published; SENDING (an administrator has not
    confirmed yet) keeps polling; SEND_FAIL and DELETE fail with the reason."""
    world.put_token("tok-0")
    answer = fixture("message_mass_get")
    answer["msg_status"] = status
    world.fake.on("cgi-bin/message/mass/get", answer)
    channel = world.channel(mode="masssend", poll_seconds=15)
    processing = delivery({"idempotency_key": KEY, "msg_id": "34182"})
    if expected == "published":
        assert channel.poll(processing) == Published("34182", None, NOW)
    elif expected == "processing":
        assert channel.poll(processing) == Processing(poll_after_seconds=15.0)
    elif isinstance(expected, str):
        with pytest.raises(Permanent, match=expected):
            channel.poll(processing)
    else:
        with pytest.raises(expected):
            channel.poll(processing)
    assert world.fake.calls[0].json == {"msg_id": "34182"}


@pytest.mark.parametrize(
    ("title", "since", "found"),
    [
        (TITLE, datetime.fromtimestamp(1715300000 - 600, UTC), True),
        (TITLE, datetime.fromtimestamp(1715300000 + 1, UTC), False),  # older than since
        ("另一篇文章", datetime.fromtimestamp(1715300000 - 600, UTC), False),
    ],
)
def test_find_in_freepublish_batchget(
    world: World, title: str, since: datetime, found: bool
) -> None:
    world.put_token("tok-0")
    world.fake.on(
        "cgi-bin/freepublish/batchget",
        fixture("freepublish_batchget", TITLE=TITLE, CONTENTSOURCEURL=LINK),
    )
    world.fake.on("cgi-bin/draft/get", error(40007))
    progress = {"idempotency_key": KEY, "draft_media_id": "DRAFT_MEDIA_ID", "send_marks": 1}
    progress["submit_requested_at"] = 1715300000 - 60
    result = world.channel().find(world.post(title=title), since, progress)
    if found:
        assert result == Published(
            "ARTICLE_ID",
            "https://mp.weixin.qq.com/s/ARTICLE_URL",
            datetime.fromtimestamp(1715300000, UTC),
        )
        assert world.fake.paths() == ["cgi-bin/freepublish/batchget"]  # total_count reached
    else:
        # not listed: the job may still be running. Never absent.
        assert isinstance(result, Undecided)
        assert world.fake.paths() == ["cgi-bin/freepublish/batchget", "cgi-bin/draft/get"]
    assert world.fake.calls[0].json == {"offset": 0, "count": 20, "no_content": 0}


def test_a_same_titled_article_with_another_link_is_not_ours(world: World) -> None:
    world.put_token("tok-0")
    world.fake.on(
        "cgi-bin/freepublish/batchget",
        fixture("freepublish_batchget", TITLE=TITLE, CONTENTSOURCEURL=LINK + "-other"),
    )
    world.fake.on("cgi-bin/draft/get", {"news_item": [{"title": TITLE}]})
    progress = {"idempotency_key": KEY, "draft_media_id": "DRAFT_MEDIA_ID"}
    since = datetime.fromtimestamp(1715300000 - 600, UTC)
    assert isinstance(world.channel().find(world.post(), since, progress), Undecided)


@pytest.mark.parametrize("in_box", [True, False])
def test_a_lost_submit_answer_is_undecided_never_absent(world: World, in_box: bool) -> None:
    """The issue's scenario: submit accepted, answer lost, the article not listed yet. Whether
    the draft is still in the box (the job may keep it there) or gone (submitted), the answer
    is Undecided, and it says what was checked and where a person should look."""
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/batchget", fixture("freepublish_batchget"))
    world.fake.on(
        "cgi-bin/draft/get", {"news_item": [{"title": TITLE}]} if in_box else error(40007)
    )
    progress = {
        "idempotency_key": KEY,
        "draft_media_id": "DRAFT_MEDIA_ID",
        "send_marks": 1,
        "submit_requested_at": int(NOW.timestamp()),
    }
    found = world.channel().find(world.post(), NOW - timedelta(minutes=10), progress)
    assert isinstance(found, Undecided)
    assert "DRAFT_MEDIA_ID" in found.reason
    assert ("仍在草稿箱" if in_box else "已不在草稿箱") in " ".join(found.checked)
    assert "发表记录" in found.look_at and "草稿箱" in found.look_at
    assert world.fake.to("cgi-bin/draft/get")[0].json == {"media_id": "DRAFT_MEDIA_ID"}
    assert "cgi-bin/freepublish/submit" not in world.fake.paths()


@pytest.mark.parametrize(
    ("progress", "why"),
    [
        ({}, "nothing was made"),
        ({"draft_requested_at": 1715300000}, "draft/add may have run, submit never did"),
        (
            {"draft_requested_at": 1715300000, "draft_media_id": "D", "send_marks": 1},
            "the submit mark is saved before the call: without it the call never left",
        ),
        (
            {
                "draft_media_id": "D",
                "send_marks": 1,
                "submit_requested_at": None,  # cleared after a definite refusal
            },
            "the submit was refused",
        ),
    ],
)
def test_proofs_of_absence_in_freepublish(world: World, progress: dict[str, Any], why: str) -> None:
    progress = {"idempotency_key": KEY, **progress}
    assert world.channel().find(world.post(), NOW, progress) is None, why
    assert world.fake.calls == []  # the checkpoints alone prove it


def test_without_marks_an_old_delivery_is_never_proven_absent(world: World) -> None:
    """A delivery checkpointed by an earlier version has no marks: a missing submit mark
    proves nothing there."""
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/batchget", fixture("freepublish_batchget"))
    world.fake.on("cgi-bin/draft/get", {"news_item": [{"title": TITLE}]})
    progress = {"idempotency_key": KEY, "draft_media_id": "DRAFT_MEDIA_ID"}
    assert isinstance(world.channel().find(world.post(), NOW, progress), Undecided)


def test_a_refused_submit_clears_its_mark(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/submit", error(53501))
    progress = world.ready_to_send(post)
    with pytest.raises(RateLimited):
        world.channel().publish(post, progress)
    assert progress["send_marks"] == 1 and progress["submit_requested_at"] is None
    assert world.channel().find(post, NOW, progress) is None


def test_an_unanswered_submit_keeps_its_mark(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/submit", requests.exceptions.ReadTimeout())
    progress = world.ready_to_send(post)
    with pytest.raises(OutcomeUnknown):
        world.channel().publish(post, progress)
    assert progress["submit_requested_at"] == int(NOW.timestamp())


def test_a_repeated_mass_send_that_finds_the_draft_gone_is_not_repeated_again(
    world: World,
) -> None:
    """If the platform checks the draft before the clientmsgid, the repeat answers 40007 (the
    first send took the draft): reconciliation must not count on the clientmsgid again, or it
    would send round and round."""
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/message/mass/sendall", error(40007))
    channel = world.channel(mode="masssend")
    progress = world.ready_to_send(post)
    progress.update(send_marks=1, mass_requested_at=int(NOW.timestamp()) - 60)
    with pytest.raises(OutcomeUnknown):
        channel.publish(post, progress)
    assert progress["mass_draft_gone_at"] == int(NOW.timestamp())
    found = channel.find(post, NOW - timedelta(minutes=10), progress)
    assert isinstance(found, Undecided) and "40007" in found.reason


def test_find_in_draft_mode(world: World) -> None:
    channel = world.channel(mode="draft")
    progress = {"idempotency_key": KEY, "draft_media_id": "DRAFT_MEDIA_ID"}
    assert channel.find(world.post(), NOW, progress) == Published("draft:DRAFT_MEDIA_ID", None)
    assert world.fake.calls == []
    assert channel.find(world.post(), NOW, {"idempotency_key": KEY}) is None  # never asked
    world.put_token("tok-0")
    world.fake.on(
        "cgi-bin/draft/batchget", fixture("draft_batchget", TITLE=TITLE, CONTENTSOURCEURL=LINK)
    )
    since = datetime.fromtimestamp(1715300000 - 600, UTC)
    asked = {"idempotency_key": KEY, "draft_requested_at": 1715300000}
    found = channel.find(world.post(), since, asked)
    assert found == Published("draft:EARLIER_DRAFT_MEDIA_ID", None)


def test_find_for_a_mass_send_without_a_msg_id(world: World) -> None:
    channel = world.channel(mode="masssend")
    progress = {
        "idempotency_key": KEY,
        "draft_media_id": "DRAFT_MEDIA_ID",
        "send_marks": 1,
        "mass_requested_at": int((NOW - timedelta(hours=1)).timestamp()),
    }
    # within the clientmsgid window a new attempt is recognised by the platform (45065):
    # acting on "absent" cannot send twice
    assert channel.find(world.post(), NOW - timedelta(hours=1), progress) is None
    # after it, a repeat would not be recognised: undecided, a person decides
    progress["mass_requested_at"] = int((NOW - timedelta(hours=25)).timestamp())
    found = channel.find(world.post(), NOW - timedelta(hours=25), progress)
    assert isinstance(found, Undecided) and KEY in found.reason
    assert "API群发保护" in found.look_at
    # never sent at all (no mark): absent
    del progress["mass_requested_at"]
    assert channel.find(world.post(), NOW, progress) is None
    assert world.fake.calls == []


# --- metrics -------------------------------------------------------------------------------------

STATS_NOW = datetime(2025, 12, 10, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, after 2025-11-01
DETAIL = "datacube/getarticletotaldetail"
PUBLISHED_ON_8TH = datetime(2025, 12, 8, 3, 0, tzinfo=UTC)


def published(progress: dict[str, Any], remote_id: str, **changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "state": "published",
        "remote_id": remote_id,
        "published_at": PUBLISHED_ON_8TH,
    }
    values.update(changes)
    return delivery(progress, **values)


def test_metrics_from_getarticletotaldetail(world: World) -> None:
    """Freepublish (publish_type 1) and mass send (0) alike, matched by msgid; read_user,
    share_user, like_user, comment_count and collection_user become our figures."""
    world.clock.now = STATS_NOW
    world.put_token("tok-0")
    world.fake.on(DETAIL, fixture("datacube_getarticletotaldetail"))
    mass_url = "https://mp.weixin.qq.com/s?__biz=MzA3&mid=2247490177&idx=1&sn=abc#rd"
    deliveries = [
        published({"msg_data_id": "2247490098", "sent_on": "2025-12-08"}, "ARTICLE_A", id=1),
        published({}, "34182", id=2, remote_url=mass_url),
        published({"msg_data_id": "2247490200", "sent_on": "2025-12-08"}, "ARTICLE_C", id=3),
        published({"msg_data_id": "1111", "sent_on": "2025-12-08"}, "NOT_LISTED", id=4),
        published({"sent_on": "2025-12-08"}, "draft:X", id=5),
    ]
    figures = world.channel().metrics(deliveries)
    assert set(figures) == {"ARTICLE_A", "34182", "ARTICLE_C"}
    first = figures["ARTICLE_A"]
    assert isinstance(first, MetricSnapshot)
    assert (first.views, first.shares, first.likes, first.comments, first.favorites) == (
        5000,
        400,
        410,
        15,
        60,
    )
    # the newest day up to yesterday; every other figure is kept
    assert first.raw["stat_date"] == "2025-12-09" and first.raw["msgid"] == "2247490098_1"
    assert first.raw["publish_type"] == 1 and first.raw["is_delay"] is False
    assert first.raw["zaikan_user"] == 200 and first.raw["read_subscribe_user"] == 3
    assert first.raw["source"] == DETAIL
    mass = figures["34182"]
    assert (mass.views, mass.favorites) == (900, 7) and mass.raw["publish_type"] == 0
    partial = figures["ARTICLE_C"]
    assert (partial.views, partial.shares) == (77, 4)
    # not reported by the platform: empty, never 0
    assert partial.likes is None and partial.comments is None and partial.favorites is None
    (call,) = world.fake.calls
    assert call.path == DETAIL and call.method == "POST"
    assert call.json == {"begin_date": "2025-12-08", "end_date": "2025-12-08"}


def test_metrics_never_call_the_retired_interfaces(world: World) -> None:
    world.clock.now = STATS_NOW
    world.put_token("tok-0")
    world.fake.on(DETAIL, {"list": [], "is_delay": False})
    world.channel().metrics([published({"msg_data_id": "1"}, "A")])
    assert world.fake.paths() == [DETAIL]
    assert not {"datacube/getarticletotal", "datacube/getarticlesummary"} & set(world.fake.paths())


def test_a_job_finished_after_midnight_is_looked_for_under_both_days(world: World) -> None:
    """Submitted at 23:59 on the 8th, seen published at 00:10 on the 9th (Beijing): the
    platform files it under one of the two days; both are asked, each once."""
    world.clock.now = STATS_NOW
    world.put_token("tok-0")
    row = fixture("datacube_getarticletotaldetail")["list"][0]
    world.fake.on(DETAIL, {"list": [], "is_delay": False}, {"list": [row], "is_delay": True})
    late = published(
        {"msg_data_id": "2247490098", "sent_on": "2025-12-08"},
        "ARTICLE_A",
        published_at=datetime(2025, 12, 8, 16, 10, tzinfo=UTC),
    )
    figures = world.channel().metrics([late])
    assert figures["ARTICLE_A"].views == 5000
    assert figures["ARTICLE_A"].raw["is_delay"] is True  # the platform says: not final yet
    assert [c.json["begin_date"] for c in world.fake.calls] == ["2025-12-08", "2025-12-09"]


def test_metrics_never_ask_for_today_in_beijing(world: World) -> None:
    world.clock.now = datetime(2025, 12, 9, 17, 0, tzinfo=UTC)  # 01:00 on 12-10 in Beijing
    world.put_token("tok-0")
    world.fake.on(DETAIL, {"list": []})
    deliveries = [
        # 00:30 on 12-10 in Beijing: today there, although still 12-09 in UTC
        published({}, "A", id=1, published_at=datetime(2025, 12, 9, 16, 30, tzinfo=UTC)),
        # 23:00 on 12-09 in Beijing: yesterday
        published({}, "B", id=2, published_at=datetime(2025, 12, 9, 15, 0, tzinfo=UTC)),
        published({"sent_on": "2025-12-10"}, "C", id=3, published_at=world.clock.now),
    ]
    assert world.channel().metrics(deliveries) == {}
    bodies = [c.json for c in world.fake.to(DETAIL)]
    assert bodies == [{"begin_date": "2025-12-09", "end_date": "2025-12-09"}]


def test_metrics_of_nothing_published_yet_asks_nothing(world: World) -> None:
    world.clock.now = STATS_NOW
    today = published({}, "A", published_at=STATS_NOW)
    before_the_statistics_start = published(
        {"sent_on": "2025-10-31"}, "B", published_at=datetime(2025, 10, 31, 3, 0, tzinfo=UTC)
    )
    assert world.channel().metrics([today, before_the_statistics_start]) == {}
    assert world.fake.calls == []


def test_account_metrics_from_getusersummary_and_getusercumulate(world: World) -> None:
    world.clock.now = STATS_NOW
    world.put_token("tok-0")
    world.fake.on("datacube/getusersummary", fixture("datacube_getusersummary"))
    world.fake.on("datacube/getusercumulate", fixture("datacube_getusercumulate"))
    figures = world.channel().account_metrics()
    assert figures is not None
    assert figures["followers"] == 1217056
    assert figures["followers_gained"] == (15 + 4) - (2 + 1)
    assert figures["ref_date"] == "2025-12-09"
    yesterday = {"begin_date": "2025-12-09", "end_date": "2025-12-09"}
    assert [(c.path, c.json) for c in world.fake.calls] == [
        ("datacube/getusersummary", yesterday),
        ("datacube/getusercumulate", yesterday),
    ]


def test_account_figures_the_platform_leaves_out_stay_empty(world: World) -> None:
    world.clock.now = STATS_NOW
    world.put_token("tok-0")
    world.fake.on("datacube/getusersummary", {"list": []})
    world.fake.on("datacube/getusercumulate", {"list": []})
    figures = world.channel().account_metrics()
    assert figures is not None
    assert figures["followers"] is None and figures["followers_gained"] is None


# --- contract ------------------------------------------------------------------------------------


def test_entry_point_and_contract() -> None:
    assert load_channel_class("wechat", "test") is WechatChannel
    assert WechatChannel.type_name() == "wechat"
    assert WechatChannel.capabilities.find is True
    assert WechatChannel.capabilities.daily_metrics is True
    assert WechatChannel.Settings.model_fields["api_base"].default == BASE


def test_settings_never_print_the_secret(world: World) -> None:
    channel = world.channel()
    assert APP_SECRET not in repr(channel.settings) and APP_SECRET not in str(channel.settings)


def test_permissions_found_with_harmless_reads(world: World) -> None:
    """48001 on a read means the account lacks that interface; each one a line."""
    world.fake.on("cgi-bin/draft/count", fixture("draft_count"))
    world.fake.on("cgi-bin/material/get_materialcount", {"image_count": 3, "video_count": 0})
    world.fake.on("cgi-bin/freepublish/batchget", error(48001))
    world.fake.on("datacube/getusersummary", {"list": []})
    channel = world.channel()
    assert "3 drafts in the box" in channel.verify()
    found = {p.name: p for p in channel.permissions()}
    assert found["draft (草稿箱)"].held is True
    assert found["material (永久素材)"].held is True
    assert found["datacube (数据统计)"].held is True
    refused = found["freepublish (发布能力)"]
    assert refused.held is False and "48001" in refused.detail
    assert "未认证的订阅号" in refused.detail  # the cause, named before the first post
    assert refused.needed_for == "publishing the article"
    assert all(
        c.method == ("POST" if "batchget" in c.path or "datacube" in c.path else "GET")
        for c in world.fake.calls
        if "token" not in c.path
    )


def test_a_refused_draft_box_is_a_missing_permission_not_a_failed_check(world: World) -> None:
    world.fake.on("cgi-bin/draft/count", error(48001))
    world.fake.on("cgi-bin/material/get_materialcount", {"image_count": 0})
    world.fake.on("datacube/getusersummary", error(48001))
    channel = world.channel(mode="draft")
    assert "no draft-box permission" in channel.verify()
    found = {p.name: p for p in channel.permissions()}
    assert found["draft (草稿箱)"].held is False
    assert found["datacube (数据统计)"].held is False
    assert "freepublish (发布能力)" not in found  # draft mode does not publish
    unknown = world.channel(mode="masssend")
    assert any(p.held is None and "群发" in p.name for p in unknown.permissions())


def test_a_permission_probe_the_platform_does_not_know_is_not_checked(world: World) -> None:
    world.fake.on("cgi-bin/draft/count", fixture("draft_count"))
    world.fake.on("datacube/getusersummary", {"list": []})
    world.fake.on("cgi-bin/freepublish/batchget", {"item": [], "total_count": 0})
    found = {p.name: p for p in world.channel().permissions()}
    material = found["material (永久素材)"]
    assert material.held is None and "not checked" in material.detail  # 404 from this fake


def test_masssend_mode_checks_the_verification_freepublish_shares(world: World) -> None:
    """Mass sending cannot be tried without sending, but an unverified account shows on the
    freepublish list, which has the same "verified only" note."""
    world.fake.on("cgi-bin/draft/count", fixture("draft_count"))
    world.fake.on("cgi-bin/material/get_materialcount", {"image_count": 1})
    world.fake.on("cgi-bin/freepublish/batchget", error(48001))
    world.fake.on("datacube/getusersummary", {"list": []})
    found = {p.name: p for p in world.channel(mode="masssend").permissions()}
    verification = found["verification (微信认证，群发需要)"]
    assert verification.held is False and "未认证" in verification.detail
    assert found["mass send (群发)"].held is None
    (probe,) = world.fake.to("cgi-bin/freepublish/batchget")
    assert probe.json == {"offset": 0, "count": 1, "no_content": 1}


def test_a_verified_masssend_account_passes_the_check(world: World) -> None:
    world.fake.on("cgi-bin/draft/count", fixture("draft_count"))
    world.fake.on("cgi-bin/material/get_materialcount", {"image_count": 1})
    world.fake.on("cgi-bin/freepublish/batchget", {"item": [], "total_count": 0, "item_count": 0})
    world.fake.on("datacube/getusersummary", {"list": []})
    found = {p.name: p for p in world.channel(mode="masssend").permissions()}
    assert found["verification (微信认证，群发需要)"].held is True


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (48001, "未认证的订阅号不能调用发布"),
        (48004, "接口被封禁"),
        (53500, "发布功能被封禁"),
        (50002, "账号受限"),
    ],
)
def test_an_ineligible_account_is_told_the_cause_at_submit(
    world: World, code: int, cause: str
) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/freepublish/submit", error(code))
    with pytest.raises(AuthExpired) as caught:
        world.channel().publish(post, world.ready_to_send(post))
    assert cause in str(caught.value) and f"errcode {code}" in str(caught.value)
    assert_no_secret(world, caught.value)


@pytest.mark.parametrize(("code", "cause"), [(48001, "未认证"), (48003, "群发协议未同意")])
def test_an_ineligible_account_is_told_the_cause_at_mass_send(
    world: World, code: int, cause: str
) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/message/mass/sendall", error(code))
    with pytest.raises(AuthExpired, match=cause):
        world.channel(mode="masssend").publish(post, world.ready_to_send(post))


def test_no_mass_send_quota_left_waits_for_midnight_in_beijing(world: World) -> None:
    post = world.post()
    world.put_token("tok-0")
    world.fake.on("cgi-bin/message/mass/sendall", error(45028))
    with pytest.raises(RateLimited) as caught:
        world.channel(mode="masssend").publish(post, world.ready_to_send(post))
    # NOW is 10:00 in Beijing: 14 hours to the platform's midnight
    assert caught.value.retry_after == pytest.approx(14 * 3600)


@pytest.mark.parametrize(
    "body",
    [
        "见[世卫组织](https://www.who.int/)",
        "见 <https://www.who.int/>",
        "见[参考][1]\n\n[1]: https://example.org/ref",
        '见 <a href="https://www.who.int/">世卫组织</a>',
        "见 <A HREF='https://example.org'>x</A>",
        "见[旧文](http://mp.weixin.qq.com/s/abc)",
        "见[伪装](https://mp.weixin.qq.com.evil.org/s/x)",
    ],
)
def test_article_html_never_links_outside_wechat(world: World, body: str) -> None:
    """The platform refuses <a href> to outside domains (45166): whatever the Markdown, the
    article HTML passes the sandbox's rule, and the link's address is still readable."""
    from kepubot.sandbox.wechat import _check_links

    html, _ = article_html(world.post(body=body))
    _check_links(html)  # raises WechatError(45166) on an outside link
    assert "<a " not in html.lower() or 'href="https://mp.weixin.qq.com/' in html
