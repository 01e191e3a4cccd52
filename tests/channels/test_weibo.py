"""Publishing to, looking up on, counting on and checking Sina Weibo, against `responses` fakes.

The answers under tests/fixtures/weibo/ follow the documented shapes (docs/platforms.md §2, §11.1):
the status object of share.json, ``{"request", "error_code" (a string), "error"}`` errors, the
OAuth-shaped ``{"error", "error_code", "error_description"}``, count.json's list and
get_token_info's object.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, unquote, unquote_plus, urlsplit

import pytest
import requests
import responses
from pydantic import ValidationError
from urllib3.exceptions import MaxRetryError, NewConnectionError

from kepubot.channels import weibo
from kepubot.channels.base import HttpChannel, Processing, Progress, Published, Undecided
from kepubot.channels.weibo import ERRORS, WeiboChannel, match_key, parse_created_at
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Delivery, Media, Post

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "weibo"
NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
TOKEN = "weibo-token-SECRET-4242/+="  # "/", "+" and "=" so that URL-encoded forms differ
API = "https://api.weibo.com"
SHARE_URL = f"{API}/2/statuses/share.json"
TIMELINE_URL = f"{API}/2/statuses/user_timeline.json"
COUNT_URL = f"{API}/2/statuses/count.json"
TOKEN_INFO_URL = f"{API}/oauth2/get_token_info"
USERS_SHOW_URL = f"{API}/2/users/show.json"

LINK = "https://kepu.example.org/articles/0007"
TEXT = f"【勤洗手：七步洗手法的科学依据】正确洗手能有效去除手上的病原体。 {LINK}"
SHORT_LINK = "http://t.cn/A6Xq9kL2"  # how Weibo writes our link back
# The smallest valid file headers of each type Weibo takes, plus padding.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64


class Context:
    """What the channel may ask of the store: the clock and media files."""

    def __init__(self, media_dir: Path, now: datetime = NOW) -> None:
        self.media_dir = media_dir
        self.clock = now

    def now(self) -> datetime:
        return self.clock

    def media_file(self, relative: str) -> str:
        return str(self.media_dir / relative)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_WEIBO_TOKEN", TOKEN)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


def channel(media_dir: Path | None = None, now: datetime = NOW, **changes: Any) -> WeiboChannel:
    settings = WeiboChannel.Settings.model_validate(
        {
            "type": "weibo",
            "access_token": "${KP_WEIBO_TOKEN}",
            "link_domain": "kepu.example.org",
            "rip": "203.0.113.7",
            **changes,
        }
    )
    return WeiboChannel("weibo-main", settings, Context(media_dir or Path("/nonexistent"), now))


def make_post(**changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 7,
        "title": "勤洗手：七步洗手法的科学依据",
        "body": "用流动水和肥皂洗手，揉搓时间不少于20秒。",
        "summary": "正确洗手能有效去除手上的病原体。",
        "link": LINK,
        "author": "zhang",
    }
    fields.update(changes)
    return Post(**fields)


def image(
    media_dir: Path,
    content: bytes = PNG,
    *,
    mime: str = "image/png",
    name: str = "handwashing.png",
    size: int | None = None,
    with_file: bool = True,
) -> Media:
    """A media-store image: written under media_dir; ``file`` set as the App does, or not."""
    digest = "ab" * 32
    relative = f"ab/{digest}.{name.rsplit('.', 1)[-1]}"
    path = media_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Media(
        kind="image",
        path=relative,
        sha256=digest,
        name=name,
        size=len(content) if size is None else size,
        mime=mime,
        file=str(path) if with_file else None,
    )


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def error_body(code: int) -> dict[str, Any]:
    body: dict[str, Any] = fixture("errors")[str(code)]
    return body


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused (the URL carries the token)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    url = f"/2/statuses/share.json?access_token={quote_plus(TOKEN)}"
    return requests.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]


def assert_no_secret(error: BaseException) -> None:
    printed = str(error) + "".join(traceback.format_exception(error))
    for form in (TOKEN, quote_plus(TOKEN), quote(TOKEN, safe="")):
        assert form not in printed
    # No URL either: api_base may point at a gateway whose address is private.
    assert "://" not in str(error)
    assert "api.weibo.com" not in str(error)


# --- publish: the table ----------------------------------------------------------------------

KIND_TO_ERROR: dict[str, type[ChannelError]] = {
    "rate_limited": RateLimited,
    "auth": AuthExpired,
    "permanent": Permanent,
    "unknown": OutcomeUnknown,
}


@dataclass
class Case:
    name: str
    fake: dict[str, Any]  # keyword arguments of responses.add
    expect: Published | type[ChannelError] | type[Processing]
    attrs: dict[str, Any] = field(default_factory=dict)  # expected attributes of the error
    says: str = ""  # expected in str(error)


SHARED = Published(
    remote_id="5030467823454210",
    remote_url="https://weibo.com/7654321098/5030467823454210",
    published_at=datetime(2024, 5, 1, 8, 30, 5, tzinfo=UTC),
)


def error_cases() -> list[Case]:
    """One case per row of ERRORS (20032, success, has its own cases)."""
    cases = []
    for code, kind in sorted(ERRORS.items()):
        if kind == "accepted":
            continue
        attrs: dict[str, Any] = {"code": code}
        if kind == "rate_limited":
            attrs["retry_after"] = 3600
        says = "re-authorize" if kind == "auth" else error_body(code)["error"]
        cases.append(
            Case(
                f"{code} {kind}",
                {"status": 400, "json": error_body(code)},
                KIND_TO_ERROR[kind],
                attrs,
                says,
            )
        )
    return cases


def publish_cases() -> list[Case]:
    return [
        Case("ok", {"json": fixture("share_ok")}, SHARED),
        *error_cases(),
        Case(
            "21327 OAuth-shaped body",
            {"status": 401, "json": fixture("oauth_expired_token")},
            AuthExpired,
            {"code": 21327},
            "re-authorize",
        ),
        Case(
            "10023 with Retry-After",
            {"status": 403, "json": error_body(10023), "headers": {"Retry-After": "900"}},
            RateLimited,
            {"code": 10023, "retry_after": 900},
        ),
        Case(
            "unlisted code",
            {"status": 400, "json": error_body(20099)},
            Permanent,
            {"code": 20099},
            "Some error nobody listed",
        ),
        Case(
            "20032 accepted, slow",
            {"status": 400, "json": fixture("accepted_slow")},
            Processing,
        ),
        Case(
            "20032 with the status id",
            {"json": {**fixture("accepted_slow"), **fixture("share_ok")}},
            SHARED,
        ),
        # HTTP and transport (base.request maps these).
        Case("HTTP 500", {"status": 500, "body": "oops"}, OutcomeUnknown, {"code": 500}),
        Case("HTTP 502", {"status": 502, "body": "bad gateway"}, OutcomeUnknown, {"code": 502}),
        Case(
            "HTTP 429 Retry-After",
            {"status": 429, "headers": {"Retry-After": "120"}, "body": ""},
            RateLimited,
            {"retry_after": 120, "code": 429},
        ),
        Case("HTTP 403 no error body", {"status": 403, "body": "forbidden"}, AuthExpired),
        Case("HTTP 404 no error body", {"status": 404, "body": "not found"}, Permanent),
        Case(
            "HTTP 302 redirect",
            {"status": 302, "headers": {"Location": "https://elsewhere.example/"}},
            Permanent,
        ),
        Case("200 not JSON", {"status": 200, "body": "<html>ok</html>"}, OutcomeUnknown),
        Case("200 JSON without id", {"json": {"result": True}}, OutcomeUnknown),
        Case("connection refused", {"body": refused()}, Transient),
        Case(
            "connection reset",
            {"body": requests.ConnectionError("Connection reset by peer")},
            OutcomeUnknown,
        ),
        Case("read timeout", {"body": requests.exceptions.ReadTimeout()}, OutcomeUnknown),
        Case("connect timeout", {"body": requests.exceptions.ConnectTimeout()}, Transient),
    ]


@pytest.mark.parametrize("case", publish_cases(), ids=lambda c: c.name)
def test_publish(case: Case) -> None:
    weibo_channel = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, SHARE_URL, **case.fake)
        if isinstance(case.expect, Published):
            assert weibo_channel.publish(make_post(), {"idempotency_key": "k"}) == case.expect
        elif case.expect is Processing:
            result = weibo_channel.publish(make_post(), {"idempotency_key": "k"})
            assert isinstance(result, Processing)
            assert result.progress == {
                "weibo_accepted_at": NOW.isoformat(),
                "weibo_text": TEXT,
            }
            assert 60 <= result.poll_after_seconds <= 300  # "wait 1-2 minutes"
        else:
            with pytest.raises(ChannelError) as info:
                weibo_channel.publish(make_post(), {"idempotency_key": "k"})
            error = info.value
            assert type(error) is case.expect, f"{case.name}: got {type(error).__name__}: {error}"
            for name, value in case.attrs.items():
                assert getattr(error, name) == value, f"{case.name}: {name}"
            assert case.says in str(error)
            assert_no_secret(error)
        assert len(fake.calls) == 1  # a POST is never repeated by the client


def test_every_error_row_has_a_fixture_and_a_known_kind() -> None:
    bodies = fixture("errors")
    assert {str(code) for code in ERRORS} <= set(bodies)
    assert set(ERRORS.values()) <= {"rate_limited", "auth", "permanent", "unknown", "accepted"}
    # The codes docs/platforms.md §2.4 names, by what they must do.
    assert {ERRORS[c] for c in (10022, 10023, 10024, 20016)} == {"rate_limited"}
    assert {ERRORS[c] for c in (21327, 21314, 21315, 21316, 21317, 21319, 21332)} == {"auth"}
    assert {ERRORS[c] for c in (20017, 20019, 20111)} == {"unknown"}
    assert ERRORS[20032] == "accepted"
    assert 20099 not in ERRORS
    for body in bodies.values():  # the documented shape: error_code as a string
        assert set(body) == {"request", "error_code", "error"}
        assert isinstance(body["error_code"], str)


@responses.activate
def test_error_text_echoing_the_token_is_masked() -> None:
    echo = f"invalid access_token {TOKEN} / {quote_plus(TOKEN)}"
    responses.add(
        responses.POST,
        SHARE_URL,
        status=400,
        json={"request": "/2/statuses/share.json", "error_code": "21332", "error": echo},
    )
    with pytest.raises(AuthExpired) as info:
        channel().publish(make_post(), {})
    assert "invalid access_token" in str(info.value)
    assert_no_secret(info.value)


# --- publish: what is sent ---------------------------------------------------------------------


def multipart_fields(request: Any) -> dict[str, Any]:
    """The parts of a multipart/form-data body by field name (email parser, not our code)."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    message = BytesParser(policy=policy.default).parsebytes(raw)
    return {
        part.get_param("name", header="content-disposition"): part for part in message.iter_parts()
    }


@responses.activate
def test_image_is_sent_as_multipart_pic(media_dir: Path) -> None:
    responses.add(responses.POST, SHARE_URL, json=fixture("share_ok"))
    post = make_post(media=[image(media_dir)])
    assert channel(media_dir).publish(post, {}) == SHARED
    request = responses.calls[0].request
    assert urlsplit(request.url).query == ""  # the token is in the body, not the URL
    parts = multipart_fields(request)
    assert set(parts) == {"access_token", "status", "rip", "pic"}
    # Plain parts carry no charset; the text travels as UTF-8 bytes.
    values = {
        name: parts[name].get_payload(decode=True).decode("utf-8")
        for name in ("access_token", "status", "rip")
    }
    # The doc asks for status URL-encoded, also in a multipart post (docs/platforms.md §2.2): every byte but
    # unreserved ASCII is escaped, so it decodes back the same with or without "+" = space.
    assert values == {
        "access_token": TOKEN,
        "status": quote(TEXT, safe=""),
        "rip": "203.0.113.7",
    }
    assert unquote_plus(values["status"]) == unquote(values["status"]) == TEXT
    pic = parts["pic"]
    assert pic.get_content_type() == "image/png"
    assert pic.get_filename()
    assert pic.get_payload(decode=True) == PNG


@responses.activate
def test_image_is_read_through_the_context_when_not_loaded(media_dir: Path) -> None:
    responses.add(responses.POST, SHARE_URL, json=fixture("share_ok"))
    # Only the first image is sent; its declared type is checked, its real type is sent.
    first = image(media_dir, JPEG, mime="image/jpeg", name="a.jpg", with_file=False)
    post = make_post(media=[first])
    channel(media_dir).publish(post, {})
    pic = multipart_fields(responses.calls[0].request)["pic"]
    assert pic.get_content_type() == "image/jpeg"
    assert pic.get_payload(decode=True) == JPEG


@responses.activate
def test_without_image_a_plain_form_post() -> None:
    responses.add(responses.POST, SHARE_URL, json=fixture("share_ok"))
    channel().publish(make_post(), {})
    request = responses.calls[0].request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urlsplit(request.url).query == ""
    assert parse_qs(request.body) == {
        "access_token": [TOKEN],
        "status": [TEXT],
        "rip": ["203.0.113.7"],
    }


@responses.activate
def test_api_base_is_a_setting() -> None:
    responses.add(
        responses.POST,
        "https://gw.example.net/weibo/2/statuses/share.json",
        json=fixture("share_ok"),
    )
    assert channel(api_base="https://gw.example.net/weibo/").publish(make_post(), {}) == SHARED


def test_default_api_base_is_the_real_host() -> None:
    weibo_channel = channel()
    assert isinstance(weibo_channel, HttpChannel)
    assert weibo_channel.settings.api_base == API
    assert weibo_channel.url(weibo.SHARE_PATH) == SHARE_URL
    assert weibo_channel.capabilities.find is True


@pytest.mark.parametrize(
    ("make_media", "changes", "says"),
    [
        (lambda d: image(d, WEBP, mime="image/webp", name="a.webp"), {}, "unsupported type"),
        (lambda d: image(d, size=5 * 1024 * 1024), {}, "too large"),
        # The store says PNG under 5 MB; the file itself is something else, or too big.
        (lambda d: image(d, b"<html>not an image</html>"), {}, "not JPEG, PNG or GIF"),
        (lambda d: image(d, PNG + b"\x00" * (5 * 1024 * 1024), size=1000), {}, "under 5 MB"),
        (
            lambda d: image(d, with_file=False).model_copy(update={"path": "zz/gone.png"}),
            {},
            "cannot read",
        ),
        (lambda d: None, {"link": "https://elsewhere.example.com/a"}, "link"),
        (lambda d: None, {"title": "长" * 200}, "too long"),
    ],
    ids=[
        "webp",
        "declared 5 MB",
        "not an image",
        "file 5 MB",
        "missing file",
        "no link",
        "long title",
    ],
)
@responses.activate
def test_publish_rechecks_before_sending(
    media_dir: Path, make_media: Any, changes: dict[str, Any], says: str
) -> None:
    media = make_media(media_dir)
    post = make_post(media=[media] if media else [], **changes)
    with pytest.raises(Permanent) as info:
        channel(media_dir).publish(post, {})
    assert says in str(info.value)
    assert len(responses.calls) == 0  # nothing was sent
    assert_no_secret(info.value)


# --- find --------------------------------------------------------------------------------------


def test_timeline_fixture_holds_our_text_with_a_shortened_link() -> None:
    texts = [status["text"] for status in fixture("timeline")["statuses"]]
    assert TEXT.replace(LINK, SHORT_LINK) in texts
    assert channel().render(make_post()).text == TEXT


@pytest.mark.parametrize(
    ("since", "expected_id"),
    [
        (datetime(2024, 5, 1, 7, 55, tzinfo=UTC), "5030461234567890"),  # posted 08:05:12 UTC
        (datetime(2024, 5, 1, 8, 5, 12, tzinfo=UTC), "5030461234567890"),  # exactly then
        (datetime(2024, 4, 20, tzinfo=UTC), "5030461234567890"),  # the newest match wins
        (datetime(2024, 5, 1, 8, 5, 13, tzinfo=UTC), None),  # only the older copy remains
        (datetime(2024, 5, 1, 16, 10), None),  # naive: read as UTC, after everything
    ],
)
@responses.activate
def test_find_matches_text_without_links_within_the_window(
    since: datetime, expected_id: str | None
) -> None:
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    # A day later: every send has long settled, so "not in the timeline" is absence.
    later = datetime(2024, 5, 2, tzinfo=UTC)
    found = channel(now=later).find(make_post(), since, {"idempotency_key": "k"})
    if expected_id is None:
        assert found is None
    else:
        assert found == Published(
            remote_id=expected_id,
            remote_url=f"https://weibo.com/7654321098/{expected_id}",
            published_at=datetime(2024, 5, 1, 8, 5, 12, tzinfo=UTC),
        )
    assert len(responses.calls) == 1
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query == {"access_token": [TOKEN], "count": ["100"], "page": ["1"]}


@responses.activate
def test_find_does_not_match_another_post() -> None:
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    post = make_post(summary="正确洗手能有效去除手上的病原体！")  # one character differs
    assert channel().find(post, datetime(2024, 4, 1, tzinfo=UTC), {}) is None


@responses.activate
def test_find_reads_html_escaped_text() -> None:
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    post = make_post(title="食品安全", summary="剩菜&剩饭怎么保存？")
    found = channel().find(post, datetime(2024, 4, 1, tzinfo=UTC), {})
    assert found is not None and found.remote_id == "5030000000000002"


def newer_page(count: int = 100) -> dict[str, Any]:
    """A full page of other statuses, all after the window's start."""
    statuses = [
        {
            "created_at": "Wed May 01 16:25:00 +0800 2024",
            "id": 5030466000000000 + i,
            "idstr": str(5030466000000000 + i),
            "mid": str(5030466000000000 + i),
            "text": f"转发第{i}条 http://t.cn/A6Xq{i:04d}",
            "user": {"id": 7654321098, "idstr": "7654321098"},
        }
        for i in range(count)
    ]
    return {"statuses": statuses, "total_number": 1000}


@responses.activate
def test_find_pages_back_to_the_window() -> None:
    responses.add(responses.GET, TIMELINE_URL, json=newer_page())
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    found = channel().find(make_post(), datetime(2024, 5, 1, 8, tzinfo=UTC), {})
    assert found is not None and found.remote_id == "5030461234567890"
    pages = [parse_qs(urlsplit(c.request.url).query)["page"] for c in responses.calls]
    assert pages == [["1"], ["2"]]


@responses.activate
def test_find_cannot_confirm_absence_beyond_its_pages() -> None:
    for _ in range(weibo.FIND_MAX_PAGES):
        responses.add(responses.GET, TIMELINE_URL, json=newer_page())
    found = channel().find(make_post(), datetime(2024, 5, 1, 8, tzinfo=UTC), {})
    assert isinstance(found, Undecided)
    assert "more than 300 statuses" in found.reason
    assert found.checked and found.look_at
    assert len(responses.calls) == weibo.FIND_MAX_PAGES
    assert TOKEN not in repr(found)


@responses.activate
def test_find_is_undecided_until_the_last_send_has_settled() -> None:
    """statuses/share is synchronous, but a slow write (20032) shows up 1-2 minutes later:
    "not in the timeline" proves absence only timeline_settle_seconds after the last send."""
    responses.add(responses.GET, TIMELINE_URL, json={"statuses": [], "total_number": 0})
    responses.add(responses.GET, TIMELINE_URL, json={"statuses": [], "total_number": 0})
    sent = NOW - timedelta(seconds=60)
    progress = {"weibo_sent_at": sent.isoformat(), "weibo_text": TEXT}
    since = NOW - timedelta(minutes=20)

    early = channel().find(make_post(), since, progress)
    assert isinstance(early, Undecided)
    assert "60 s ago" in early.reason

    settled = channel(now=sent + timedelta(seconds=180)).find(make_post(), since, progress)
    assert settled is None


@responses.activate
def test_find_looks_for_the_text_that_was_sent() -> None:
    """The checkpointed text wins over a fresh render (the post may have been edited since)."""
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    edited = make_post(summary="编辑后的摘要，与发出的不同。")
    progress = {"weibo_text": TEXT, "weibo_sent_at": (NOW - timedelta(hours=1)).isoformat()}
    found = channel().find(edited, datetime(2024, 5, 1, 8, tzinfo=UTC), progress)
    assert isinstance(found, Published) and found.remote_id == "5030461234567890"


@responses.activate
def test_publish_checkpoints_the_text_and_send_time_before_the_request() -> None:
    saved: list[dict[str, Any]] = []
    progress = Progress(on_save=lambda values: saved.append(values))
    responses.add(responses.POST, SHARE_URL, body=requests.exceptions.ReadTimeout())
    with pytest.raises(OutcomeUnknown):
        channel().publish(make_post(), progress)
    assert saved == [{"weibo_text": TEXT, "weibo_sent_at": NOW.isoformat()}]


@responses.activate
def test_find_stops_at_an_empty_page() -> None:
    responses.add(responses.GET, TIMELINE_URL, json={"statuses": [], "total_number": 0})
    assert channel().find(make_post(), datetime(2024, 5, 1, 8, tzinfo=UTC), {}) is None


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        ({"status": 500, "body": "oops"}, Transient),  # a read: safe to repeat
        ({"body": requests.exceptions.ReadTimeout()}, Transient),
        ({"status": 400, "json": error_body(21332)}, AuthExpired),
        ({"status": 403, "json": error_body(10023)}, RateLimited),
        ({"status": 200, "json": {"unexpected": True}}, Transient),
    ],
    ids=["500", "read timeout", "invalid token", "rate limited", "no statuses"],
)
@responses.activate
def test_find_errors_raise(fake: dict[str, Any], expected: type[ChannelError]) -> None:
    responses.add(responses.GET, TIMELINE_URL, **fake)
    with pytest.raises(ChannelError) as info:
        channel().find(make_post(), NOW, {})
    assert type(info.value) is expected
    assert_no_secret(info.value)


# --- poll (after 20032) -----------------------------------------------------------------------


def accepted_delivery(accepted_at: datetime) -> Delivery:
    return Delivery(
        id=42,
        post_id=7,
        channel="weibo-main",
        state="processing",
        due_at=accepted_at,
        not_before=accepted_at,
        progress={
            "idempotency_key": "k",
            "weibo_accepted_at": accepted_at.isoformat(),
            "weibo_text": TEXT,
        },
    )


@responses.activate
def test_poll_finds_the_accepted_status() -> None:
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    accepted = datetime(2024, 5, 1, 8, 5, tzinfo=UTC)
    result = channel(now=accepted + timedelta(minutes=2)).poll(accepted_delivery(accepted))
    assert isinstance(result, Published) and result.remote_id == "5030461234567890"


@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        (timedelta(minutes=2), 120),
        (timedelta(hours=1), 1800),
        (timedelta(hours=20), 3600),
        (timedelta(hours=25), Permanent),
    ],
)
@responses.activate
def test_poll_keeps_looking_then_hands_over(waited: timedelta, expected: Any) -> None:
    responses.add(responses.GET, TIMELINE_URL, json=fixture("timeline"))
    accepted = datetime(2024, 5, 2, 8, tzinfo=UTC)  # after everything in the timeline
    weibo_channel = channel(now=accepted + waited)
    if expected is Permanent:
        with pytest.raises(Permanent, match="before requeueing"):
            weibo_channel.poll(accepted_delivery(accepted))
    else:
        result = weibo_channel.poll(accepted_delivery(accepted))
        assert isinstance(result, Processing)
        assert result.poll_after_seconds == expected


def test_poll_without_a_record_is_refused() -> None:
    delivery = accepted_delivery(NOW).model_copy(update={"progress": {"idempotency_key": "k"}})
    with pytest.raises(Permanent):
        channel().poll(delivery)


# --- metrics -----------------------------------------------------------------------------------


def delivery(number: int, remote_id: str | None) -> Delivery:
    return Delivery(
        id=number,
        post_id=number,
        channel="weibo-main",
        state="published",
        due_at=NOW,
        not_before=NOW,
        remote_id=remote_id,
    )


@responses.activate
def test_metrics_maps_the_counters() -> None:
    responses.add(responses.GET, COUNT_URL, json=fixture("count"))
    deliveries = [
        delivery(1, "5030467823454210"),
        delivery(2, "5030461234567890"),
        delivery(3, "5030000000000099"),  # deleted: Weibo drops it
        delivery(4, None),  # never published
        delivery(5, "https://weibo.com/7654321098/Nabc"),  # resolved by hand with a URL
    ]
    snapshots = channel().metrics(deliveries)
    assert set(snapshots) == {"5030467823454210", "5030461234567890"}
    first = snapshots["5030467823454210"]
    assert (first.views, first.likes, first.comments, first.shares) == (None, 45, 3, 12)
    assert first.raw == fixture("count")[0]
    assert snapshots["5030461234567890"].likes == 7
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query == {
        "access_token": [TOKEN],
        "ids": ["5030467823454210,5030461234567890,5030000000000099"],
    }


@responses.activate
def test_metrics_batches_of_at_most_100() -> None:
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
        counts = [{"id": int(i), "comments": 1, "reposts": 2, "attitudes": 3} for i in ids]
        return 200, {}, json.dumps(counts)

    responses.add_callback(responses.GET, COUNT_URL, callback=answer)
    deliveries = [delivery(n, str(5030000000000000 + n)) for n in range(250)]
    snapshots = channel().metrics(deliveries)
    sizes = [
        len(parse_qs(urlsplit(c.request.url).query)["ids"][0].split(",")) for c in responses.calls
    ]
    assert sizes == [100, 100, 50]
    assert len(snapshots) == 250
    assert snapshots["5030000000000249"].shares == 2


@responses.activate
def test_metrics_without_published_deliveries_calls_nothing() -> None:
    assert channel().metrics([delivery(1, None)]) == {}
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        ({"status": 503, "body": ""}, Transient),
        ({"status": 400, "json": error_body(10023)}, RateLimited),
        ({"status": 400, "json": error_body(21315)}, AuthExpired),
        ({"json": {"statuses": []}}, Transient),
    ],
    ids=["503", "rate limited", "token expired", "not a list"],
)
@responses.activate
def test_metrics_errors_raise(fake: dict[str, Any], expected: type[ChannelError]) -> None:
    responses.add(responses.GET, COUNT_URL, **fake)
    with pytest.raises(ChannelError) as info:
        channel().metrics([delivery(1, "5030467823454210")])
    assert type(info.value) is expected
    assert_no_secret(info.value)


# --- verify ------------------------------------------------------------------------------------


@responses.activate
def test_verify_reports_account_and_expiry() -> None:
    responses.add(responses.POST, TOKEN_INFO_URL, json=fixture("token_info"))
    responses.add(responses.GET, USERS_SHOW_URL, json=fixture("users_show"))
    line = channel().verify()
    until = NOW + timedelta(seconds=157679471)
    assert line == (
        f"account @科普示例 (uid 7654321098); token valid for 1824 days more,"
        f" until {until:%Y-%m-%d %H:%M} UTC"
    )
    assert "\n" not in line
    token_request = responses.calls[0].request
    assert parse_qs(token_request.body) == {"access_token": [TOKEN]}
    show_query = parse_qs(urlsplit(responses.calls[1].request.url).query)
    assert show_query == {"access_token": [TOKEN], "uid": ["7654321098"]}


@responses.activate
def test_verify_older_field_name_and_string_seconds() -> None:
    info = {"uid": "7654321098", "appkey": "1234567890", "expires_in": "7200"}
    responses.add(responses.POST, TOKEN_INFO_URL, json=info)
    responses.add(responses.GET, USERS_SHOW_URL, status=400, json=error_body(10014))
    # The screen name is a courtesy: without it the line still reports the uid and expiry.
    assert channel().verify().startswith("account uid 7654321098; token valid for 2 hours more")


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        ({"status": 400, "json": fixture("oauth_expired_token")}, AuthExpired),
        ({"status": 400, "json": error_body(21332)}, AuthExpired),
        ({"json": {**fixture("token_info"), "expire_in": 0}}, AuthExpired),
        ({"status": 500, "body": ""}, Transient),  # a POST, but only a read
        ({"body": requests.exceptions.ReadTimeout()}, Transient),
    ],
    ids=["expired_token", "invalid token", "no time left", "500", "read timeout"],
)
@responses.activate
def test_verify_failures(fake: dict[str, Any], expected: type[ChannelError]) -> None:
    responses.add(responses.POST, TOKEN_INFO_URL, **fake)
    with pytest.raises(ChannelError) as info:
        channel().verify()
    assert type(info.value) is expected
    if expected is AuthExpired:
        assert "re-authorize" in str(info.value)
    assert_no_secret(info.value)


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue May 31 17:46:55 +0800 2011", datetime(2011, 5, 31, 9, 46, 55, tzinfo=UTC)),
        ("Wed Oct 24 23:49:17 +0800 2012", datetime(2012, 10, 24, 15, 49, 17, tzinfo=UTC)),
        ("Thu Jan 01 00:30:00 +0800 2015", datetime(2014, 12, 31, 16, 30, tzinfo=UTC)),
        ("Mon Mar 04 10:00:00 -0130 2019", datetime(2019, 3, 4, 11, 30, tzinfo=UTC)),
        ("2011-05-31 17:46:55", None),
        ("Tue Foo 31 17:46:55 +0800 2011", None),
        (None, None),
    ],
)
def test_parse_created_at(text: Any, expected: datetime | None) -> None:
    assert parse_created_at(text) == expected


def test_match_key_ignores_links_and_spaces() -> None:
    assert match_key(TEXT) == match_key(TEXT.replace(LINK, SHORT_LINK))
    assert match_key(f"链接{SHORT_LINK}后面的字") == "链接后面的字"
    assert match_key("a  b\nc") == "abc"


# --- rip: the operator's real public IP ---------------------------------------------------------


def weibo_settings(**changes: Any) -> Any:
    return WeiboChannel.Settings.model_validate(
        {
            "type": "weibo",
            "access_token": "${KP_WEIBO_TOKEN}",
            "link_domain": "kepu.example.org",
            **changes,
        }
    )


def test_rip_is_required() -> None:
    with pytest.raises(ValidationError) as info:
        weibo_settings()
    [error] = info.value.errors()
    assert error["loc"] == ("rip",)
    assert "required" in error["msg"] and '"auto"' in error["msg"]


@pytest.mark.parametrize(
    ("rip", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.20.0.5", "private"),
        ("192.168.31.7", "private"),
        ("100.64.3.2", "carrier-grade NAT"),
        ("169.254.1.1", "link-local"),
        ("::1", "loopback"),
        ("fd00::5", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_rip_refuses_loopback_and_private_addresses(rip: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        weibo_settings(rip=rip)
    message = info.value.errors()[0]["msg"]
    assert reason in message and "public" in message


@pytest.mark.parametrize("rip", ["203.0.113.7", "198.51.100.20", "116.62.1.1", "2408:8000::1"])
def test_rip_takes_a_public_address(rip: str) -> None:
    assert weibo_settings(rip=f" {rip} ").rip == rip


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the outward-address probe reads (one entry per call); the cache is emptied."""
    calls: list[str] = []
    answers = iter(["198.51.100.23", "198.51.100.99"])

    def fake() -> str:
        calls.append(next(answers))
        return calls[-1]

    monkeypatch.setattr(weibo, "probe_outward_address", fake)
    weibo.outward_address.cache_clear()
    yield calls
    weibo.outward_address.cache_clear()


def test_rip_auto_reads_the_outward_address_once(probe: list[str]) -> None:
    assert weibo_settings(rip="auto").rip == "198.51.100.23"
    assert weibo_settings(rip="AUTO").rip == "198.51.100.23"  # read once, at start
    assert probe == ["198.51.100.23"]


@pytest.mark.parametrize(
    ("found", "reason"), [("192.168.1.5", "private"), ("127.0.1.1", "loopback")]
)
def test_rip_auto_refuses_a_host_behind_nat(found: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        weibo.checked_outward_address(found)
    assert "set rip to the public IP" in str(info.value)
    assert weibo.checked_outward_address("198.51.100.23") == "198.51.100.23"


def test_the_probe_reads_a_local_address_without_sending() -> None:
    """connect() on a UDP socket only picks a route: the answer is one of this host's
    addresses, or a clear error when there is no route out."""
    try:
        found = weibo.probe_outward_address()
    except ValueError as exc:
        assert "no route" in str(exc)
    else:
        import ipaddress

        ipaddress.ip_address(found)  # raises if it is not an address


def test_missing_rip_is_a_config_error_naming_it(workspace: Any) -> None:
    text = workspace.config.read_text(encoding="utf-8")
    assert 'rip = "203.0.113.7"\n' in text
    workspace.config.write_text(text.replace('rip = "203.0.113.7"\n', ""), encoding="utf-8")
    output = workspace.refused("post", "list", contains="channels.weibo-main.rip")
    assert "auto" in output


def test_private_rip_is_a_config_error(workspace: Any) -> None:
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        text.replace('rip = "203.0.113.7"', 'rip = "192.168.1.10"'), encoding="utf-8"
    )
    workspace.refused("post", "list", contains="192.168.1.10 is a private (RFC 1918) address")
