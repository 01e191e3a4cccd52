"""Publishing to and looking up from a generic JSON webhook, against `responses` fakes."""

from __future__ import annotations

import hashlib
import hmac
import json
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from kepubot.channels.base import HttpChannel, Published
from kepubot.channels.webhook import WebhookChannel
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Post

NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
KEY = "delivery-42-attempt-key"
SECRET = "hook-secret-SECRET-5678"
# Receivers often put a token in the URL: it must never show in an error message either.
URL_TOKEN = "hook-url-token-SECRET-1234"
URL = f"https://hooks.example.org/in?token={URL_TOKEN}"
LOOKUP_URL = f"https://hooks.example.org/lookup?token={URL_TOKEN}"
NEVER_PRINTED = (SECRET, URL_TOKEN)


class Context:
    def now(self) -> datetime:
        return NOW

    def media_file(self, relative: str) -> str:
        return f"/media/{relative}"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_HOOK_SECRET", SECRET)


def make_post(**changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 7,
        "title": "勤洗手：七步洗手法的科学依据",
        "body": "用流动水和肥皂洗手，揉搓时间不少于**20秒**。",
        "summary": "正确洗手能有效去除手上的病原体。",
        "link": "https://kepu.example.org/articles/0007",
        "tags": ["个人防护"],
        "author": "zhang",
    }
    fields.update(changes)
    return Post(**fields)


def webhook(**changes: Any) -> WebhookChannel:
    values = {
        "type": "webhook",
        "url": URL,
        "secret": "${KP_HOOK_SECRET}",
        "lookup_url": LOOKUP_URL,
        **changes,
    }
    values = {k: v for k, v in values.items() if v is not None}
    settings = WebhookChannel.Settings.model_validate(values)
    return WebhookChannel("site-hook", settings, Context())


def assert_no_secret(error: BaseException) -> None:
    printed = str(error) + "".join(traceback.format_exception(error))
    for secret in NEVER_PRINTED:
        assert secret not in printed


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, f"/in?token={URL_TOKEN}", reason))  # type: ignore[arg-type]


# --- the tables ----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    fake: dict[str, Any]  # keyword arguments of responses.add
    expect: Published | type[ChannelError] | None
    attrs: dict[str, Any] = field(default_factory=dict)  # expected attributes of the error
    says: str = ""  # expected in the error message


PUBLISH_CASES = [
    Case(
        "200 with id and url",
        {"json": {"id": "r-1", "url": "https://site.example/r-1"}},
        Published("r-1", "https://site.example/r-1", NOW),
    ),
    Case("201 with a numeric id", {"status": 201, "json": {"id": 17}}, Published("17", None, NOW)),
    Case("204 no content", {"status": 204, "body": ""}, Published(KEY, None, NOW)),
    Case("200 not JSON", {"body": "thanks"}, Published(KEY, None, NOW)),
    Case("409 already there", {"status": 409, "body": "duplicate"}, OutcomeUnknown, {"code": 409}),
    Case("401", {"status": 401, "body": "bad signature"}, AuthExpired, {"code": 401}),
    Case("403", {"status": 403, "body": "forbidden"}, AuthExpired, {"code": 403}),
    Case(
        "400 with a long body",
        {"status": 400, "json": {"error": "title too long " + "x" * 500}},
        Permanent,
        {"code": 400},
        says="title too long",
    ),
    Case(
        "422 echoing the secret",
        {"status": 422, "body": f"bad body, signed with {SECRET}"},
        Permanent,
        {"code": 422},
        says="bad body",
    ),
    Case("404", {"status": 404, "body": "no such hook"}, Permanent, {"code": 404}),
    Case(
        "302 redirect is not followed",
        {"status": 302, "headers": {"Location": "https://elsewhere.example/"}},
        Permanent,
        {"code": 302},
    ),
    Case("408 request timeout", {"status": 408, "body": ""}, Transient, {"code": 408}),
    Case("500", {"status": 500, "body": "oops"}, OutcomeUnknown, {"code": 500}),
    Case(
        "503 with Retry-After",
        {"status": 503, "headers": {"Retry-After": "30"}, "body": ""},
        OutcomeUnknown,
        {"code": 503},
    ),
    Case(
        "429 Retry-After",
        {"status": 429, "headers": {"Retry-After": "120"}, "body": ""},
        RateLimited,
        {"retry_after": 120, "code": 429},
    ),
    Case("read timeout", {"body": requests.exceptions.ReadTimeout()}, OutcomeUnknown),
    Case("connect timeout", {"body": requests.exceptions.ConnectTimeout()}, Transient),
    Case("connection refused", {"body": refused()}, Transient),
    Case(
        "connection reset",
        {"body": requests.ConnectionError("Connection reset by peer")},
        OutcomeUnknown,
    ),
]

FIND_CASES = [
    Case(
        "200 found",
        {"json": {"id": "r-1", "url": "https://site.example/r-1"}},
        Published("r-1", "https://site.example/r-1"),
    ),
    Case("200 without id", {"json": {}}, Published(KEY, None)),
    Case("404 not there", {"status": 404, "body": ""}, None),
    Case("500", {"status": 500, "body": ""}, Transient, {"code": 500}),
    Case("401", {"status": 401, "body": ""}, Transient, {"code": 401}),
    Case("302", {"status": 302, "headers": {"Location": "https://x.example/"}}, Transient),
    Case(
        "429 Retry-After",
        {"status": 429, "headers": {"Retry-After": "120"}, "body": ""},
        RateLimited,
        {"retry_after": 120},
    ),
    Case("read timeout", {"body": requests.exceptions.ReadTimeout()}, Transient),
]


def run(method: str, url: str, call: Any, case: Case) -> None:
    """Fake one answer, make the call once, compare with the expectation."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(method, url, **case.fake)
        if not isinstance(case.expect, type):
            assert call() == case.expect
        else:
            with pytest.raises(ChannelError) as info:
                call()
            error = info.value
            assert type(error) is case.expect, f"{case.name}: got {type(error).__name__}: {error}"
            for name, value in case.attrs.items():
                assert getattr(error, name) == value, f"{case.name}: {name}"
            assert case.says in str(error)
            assert len(str(error)) < 400
            assert_no_secret(error)
        assert len(fake.calls) == 1  # never repeated by the client


@pytest.mark.parametrize("case", PUBLISH_CASES, ids=lambda c: c.name)
def test_publish(case: Case) -> None:
    channel = webhook()
    run(
        responses.POST,
        URL,
        lambda: channel.publish(make_post(), {"idempotency_key": KEY}),
        case,
    )


@pytest.mark.parametrize("case", FIND_CASES, ids=lambda c: c.name)
def test_find(case: Case) -> None:
    channel = webhook()
    run(
        responses.GET,
        f"https://hooks.example.org/lookup?token={URL_TOKEN}&key={KEY}",
        lambda: channel.find(make_post(), NOW, {"idempotency_key": KEY}),
        case,
    )


# --- what is sent --------------------------------------------------------------------------------


@responses.activate
def test_publish_sends_the_rendered_body_signed_with_the_key() -> None:
    responses.add(responses.POST, URL, json={"id": "r-1"})
    channel = webhook()
    post = make_post()
    channel.publish(post, {"idempotency_key": KEY})
    request = responses.calls[0].request

    body = request.body
    assert isinstance(body, bytes)
    expected = {**channel.render(post).extra, "idempotency_key": KEY}
    assert json.loads(body) == expected
    assert body == json.dumps(expected, ensure_ascii=False).encode("utf-8")
    assert "勤洗手".encode() in body  # UTF-8, not \\u escapes

    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == KEY
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers["X-Kepubot-Signature"] == f"sha256={signature}"


@responses.activate
def test_without_secret_there_is_no_signature() -> None:
    responses.add(responses.POST, URL, status=204)
    webhook(secret=None).publish(make_post(), {"idempotency_key": KEY})
    request = responses.calls[0].request
    assert "X-Kepubot-Signature" not in request.headers
    assert request.headers["Idempotency-Key"] == KEY


@responses.activate
def test_the_same_key_is_sent_on_every_attempt() -> None:
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, URL, status=204)
    channel = webhook()
    with pytest.raises(OutcomeUnknown):
        channel.publish(make_post(), {"idempotency_key": KEY})
    channel.publish(make_post(), {"idempotency_key": KEY})
    first, second = (call.request for call in responses.calls)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == KEY
    assert first.body == second.body
    assert first.headers["X-Kepubot-Signature"] == second.headers["X-Kepubot-Signature"]


@responses.activate
def test_find_asks_with_the_key() -> None:
    responses.add(responses.GET, "https://hooks.example.org/lookup", status=404)
    assert webhook().find(make_post(), NOW, {"idempotency_key": "k/1 +x"}) is None
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query == {"token": [URL_TOKEN], "key": ["k/1 +x"]}


# --- contract -------------------------------------------------------------------------------------


def test_can_find_only_with_a_lookup_url() -> None:
    assert isinstance(webhook(), HttpChannel)
    assert webhook().capabilities.find is True
    channel = webhook(lookup_url=None)
    assert channel.capabilities.find is False
    with pytest.raises(NotImplementedError):
        channel.find(make_post(), NOW, {"idempotency_key": KEY})


@responses.activate
def test_publish_needs_the_idempotency_key() -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        webhook().publish(make_post(), {})
    assert len(responses.calls) == 0


@responses.activate
def test_the_body_names_the_author_by_display_name_never_by_login() -> None:
    """Issue 11 item 20: receivers publish what they get; a login name is not for the public."""
    from types import SimpleNamespace

    users = {"zhang": SimpleNamespace(name="张编辑"), "chen": SimpleNamespace(name=None)}

    class Configured(Context):
        config = SimpleNamespace(data=SimpleNamespace(users=users))

    settings = WebhookChannel.Settings.model_validate({"type": "webhook", "url": URL})
    channel = WebhookChannel("site-hook", settings, Configured())
    responses.add(responses.POST, URL, json={"id": "r-1"})
    responses.add(responses.POST, URL, json={"id": "r-2"})
    channel.publish(make_post(author="zhang"), {"idempotency_key": KEY})
    channel.publish(make_post(author="chen"), {"idempotency_key": KEY + "-2"})
    first, second = (json.loads(call.request.body) for call in responses.calls)
    assert first["author"] == "张编辑"
    assert second["author"] is None  # no display name configured: no byline at all
    for call in responses.calls:
        assert b"zhang" not in call.request.body and b"chen" not in call.request.body
