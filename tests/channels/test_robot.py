"""Publishing through the WeCom and DingTalk group robots, against `responses` fakes.

The response bodies under tests/fixtures/{wecom,dingtalk}/ follow the documented shape
``{"errcode": N, "errmsg": "..."}`` (docs/platforms.md §6, §7 and §11.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
import requests
import responses
from pydantic import ValidationError
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError

from kepubot.channels import robot
from kepubot.channels.base import HttpChannel, Published
from kepubot.channels.robot import DingtalkChannel, WecomChannel, dingtalk_sign
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Post

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
KEY = "delivery-42-attempt-key"

WECOM_KEY = "wecom-key-SECRET-7777"
DING_TOKEN = "ding-token-SECRET-8888"
DING_SECRET = "SECding-secret-SECRET-9999"
SECRETS = (WECOM_KEY, DING_TOKEN, DING_SECRET)

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DING_URL = "https://oapi.dingtalk.com/robot/send"

# A timestamp whose signature holds "+", "/" and "=" (so URL-encoding is visible), and that
# signature, pinned: Base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\n{secret}")).
FIXED_TS = 1700000000005
FIXED_SIGN = "kRoMd4Z4umhWISCyQboKdn2b3r/aNMOBl2rU1KykM+M="
REAL_TIMESTAMP_MS = robot._timestamp_ms


class Context:
    def now(self) -> datetime:
        return NOW

    def media_file(self, relative: str) -> str:
        return f"/media/{relative}"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_WECOM_KEY", WECOM_KEY)
    monkeypatch.setenv("KP_DING_TOKEN", DING_TOKEN)
    monkeypatch.setenv("KP_DING_SECRET", DING_SECRET)
    monkeypatch.setattr(robot, "_timestamp_ms", lambda: FIXED_TS)


def make_post(**changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 7,
        "title": "勤洗手：七步洗手法的科学依据",
        "body": "用流动水和肥皂洗手，揉搓时间不少于20秒。",
        "summary": "正确洗手能有效去除手上的病原体。",
        "link": "https://kepu.example.org/articles/0007",
        "author": "zhang",
    }
    fields.update(changes)
    return Post(**fields)


def wecom(**changes: Any) -> WecomChannel:
    settings = WecomChannel.Settings.model_validate(
        {"type": "wecom", "webhook_key": "${KP_WECOM_KEY}", **changes}
    )
    return WecomChannel("wecom-team", settings, Context())


def dingtalk(**changes: Any) -> DingtalkChannel:
    settings = DingtalkChannel.Settings.model_validate(
        {
            "type": "dingtalk",
            "access_token": "${KP_DING_TOKEN}",
            "secret": "${KP_DING_SECRET}",
            **changes,
        }
    )
    return DingtalkChannel("dingtalk-team", settings, Context())


def fixture(platform: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text(encoding="utf-8"))


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused (the URL carries the secret)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    url = f"/cgi-bin/webhook/send?key={WECOM_KEY}&access_token={DING_TOKEN}"
    return requests.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]


# --- the table ---------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    fake: dict[str, Any]  # keyword arguments of responses.add
    expect: Published | type[ChannelError]
    attrs: dict[str, Any] = field(default_factory=dict)  # expected attributes of the error


def wecom_cases() -> list[Case]:
    def fx(name: str) -> dict[str, Any]:
        return {"json": fixture("wecom", name)}

    return [
        Case("ok", fx("ok"), Published(f"wecom:{KEY}", None, NOW)),
        Case(
            "45009 rate limited",
            fx("rate_limited"),
            RateLimited,
            {"retry_after": 60, "code": 45009},
        ),
        Case("93000 invalid key", fx("invalid_key"), AuthExpired, {"code": 93000}),
        Case("-1 system busy", fx("system_busy"), OutcomeUnknown, {"code": -1}),
        Case("40008 invalid msgtype", fx("invalid_msgtype"), Permanent, {"code": 40008}),
        Case("40058 invalid parameter", fx("invalid_param"), Permanent, {"code": 40058}),
        Case("44004 empty content", fx("empty_content"), Permanent, {"code": 44004}),
        Case("40058 markdown too long", fx("markdown_too_long"), Permanent, {"code": 40058}),
        Case("unlisted errcode", fx("unlisted_code"), Permanent, {"code": 48002}),
        *http_cases(),
    ]


def dingtalk_cases() -> list[Case]:
    def fx(name: str) -> dict[str, Any]:
        return {"json": fixture("dingtalk", name)}

    return [
        Case("ok", fx("ok"), Published(f"dingtalk:{KEY}", None, NOW)),
        Case("130101 too fast", fx("too_fast"), RateLimited, {"retry_after": 600, "code": 130101}),
        Case("310000 sign mismatch", fx("sign_mismatch"), AuthExpired, {"code": 310000}),
        Case("310000 keyword mismatch", fx("keyword_mismatch"), AuthExpired, {"code": 310000}),
        Case("300001 param error", fx("param_error"), Permanent, {"code": 300001}),
        Case("300005 token not exist", fx("token_not_exist"), AuthExpired, {"code": 300005}),
        Case("400102 robot stopped", fx("robot_stopped"), AuthExpired, {"code": 400102}),
        Case("400101 no such token", fx("access_token_missing"), AuthExpired, {"code": 400101}),
        Case("400013 group dissolved", fx("group_dissolved"), AuthExpired, {"code": 400013}),
        Case("310000 ip not allowed", fx("ip_not_allowed"), AuthExpired, {"code": 310000}),
        Case(
            "90030 webhook over limit",
            fx("webhook_over_limit"),
            RateLimited,
            {"retry_after": 3600, "code": 90030},
        ),
        Case(
            "410100 send limited",
            fx("send_limited"),
            RateLimited,
            {"retry_after": 600, "code": 410100},
        ),
        Case("430101 unsafe link", fx("unsafe_link"), Permanent, {"code": 430101}),
        Case("-1 system busy", fx("system_busy"), OutcomeUnknown, {"code": -1}),
        *http_cases(),
    ]


def http_cases() -> list[Case]:
    """Transport and HTTP-level answers, the same for both robots."""
    return [
        Case("HTTP 500", {"status": 500, "body": "oops"}, OutcomeUnknown, {"code": 500}),
        Case(
            "HTTP 429 Retry-After",
            {"status": 429, "headers": {"Retry-After": "120"}, "body": ""},
            RateLimited,
            {"retry_after": 120, "code": 429},
        ),
        Case("HTTP 403 no errcode", {"status": 403, "body": "forbidden"}, AuthExpired),
        Case("HTTP 404 no errcode", {"status": 404, "body": "not found"}, Permanent),
        Case(
            "HTTP 302 redirect",
            {"status": 302, "headers": {"Location": "https://elsewhere.example/"}},
            Permanent,
        ),
        Case("200 without errcode", {"status": 200, "body": "<html>ok</html>"}, OutcomeUnknown),
        Case("connection refused", {"body": refused()}, Transient),
        Case(
            "connection reset",
            {"body": requests.ConnectionError("Connection reset by peer")},
            OutcomeUnknown,
        ),
        Case("read timeout", {"body": requests.exceptions.ReadTimeout()}, OutcomeUnknown),
        Case("connect timeout", {"body": requests.exceptions.ConnectTimeout()}, Transient),
    ]


def run(channel: HttpChannel, url: str, params: dict[str, str], case: Case) -> None:
    """Fake one answer, publish once, compare with the expectation."""
    post = make_post()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, url, match=[matchers.query_param_matcher(params)], **case.fake)
        if isinstance(case.expect, Published):
            assert channel.publish(post, {"idempotency_key": KEY}) == case.expect
        else:
            with pytest.raises(ChannelError) as info:
                channel.publish(post, {"idempotency_key": KEY})
            error = info.value
            assert type(error) is case.expect, f"{case.name}: got {type(error).__name__}: {error}"
            for name, value in case.attrs.items():
                assert getattr(error, name) == value, f"{case.name}: {name}"
            assert_no_secret(error)
        assert len(fake.calls) == 1  # a POST is never repeated by the client


def assert_no_secret(error: BaseException) -> None:
    printed = str(error) + "".join(traceback.format_exception(error))
    for secret in SECRETS:
        assert secret not in printed
        assert quote_plus(secret) not in printed


@pytest.mark.parametrize("case", wecom_cases(), ids=lambda c: c.name)
def test_wecom_publish(case: Case) -> None:
    run(wecom(), WECOM_URL, {"key": WECOM_KEY}, case)


@pytest.mark.parametrize("case", dingtalk_cases(), ids=lambda c: c.name)
def test_dingtalk_publish(case: Case) -> None:
    params = {"access_token": DING_TOKEN, "timestamp": str(FIXED_TS), "sign": FIXED_SIGN}
    run(dingtalk(), DING_URL, params, case)


# --- what is sent --------------------------------------------------------------------------------


@responses.activate
def test_wecom_sends_the_rendered_message() -> None:
    channel = wecom(msgtype="markdown", api_base="https://robot-gateway.example")
    responses.add(
        responses.POST, "https://robot-gateway.example/cgi-bin/webhook/send", json={"errcode": 0}
    )
    post = make_post()
    channel.publish(post, {"idempotency_key": KEY})
    request = responses.calls[0].request
    assert parse_qs(urlsplit(request.url).query) == {"key": [WECOM_KEY]}
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == channel.render(post).extra["message"]
    assert json.loads(request.body)["msgtype"] == "markdown"


@responses.activate
def test_dingtalk_sign_follows_the_documented_algorithm() -> None:
    responses.add(responses.POST, DING_URL, json=fixture("dingtalk", "ok"))
    channel = dingtalk()
    post = make_post()
    channel.publish(post, {"idempotency_key": KEY})
    request = responses.calls[0].request

    # The documented algorithm, written out independently of the channel's code.
    string_to_sign = f"{FIXED_TS}\n{DING_SECRET}".encode()
    digest = hmac.new(DING_SECRET.encode(), string_to_sign, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    assert expected == FIXED_SIGN == dingtalk_sign(DING_SECRET, FIXED_TS)
    assert {"+", "/", "="} <= set(expected)  # so the encoding below is really exercised

    # URL-encoded exactly once in the final URL: one decode gives the Base64 text back.
    query = urlsplit(request.url).query
    assert f"sign={quote_plus(expected)}" in query.split("&")
    assert "%25" not in query  # no double encoding
    assert parse_qs(query) == {
        "access_token": [DING_TOKEN],
        "timestamp": [str(FIXED_TS)],
        "sign": [expected],
    }
    # The rendered message plus msgUuid, the send page's idempotency key: the delivery's key.
    assert json.loads(request.body) == {**channel.render(post).extra["message"], "msgUuid": KEY}


def test_dingtalk_timestamp_is_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(robot, "_timestamp_ms", REAL_TIMESTAMP_MS)  # the real clock
    params = dingtalk().params()
    assert abs(int(params["timestamp"]) - time.time() * 1000) < 60_000
    assert params["sign"] == dingtalk_sign(DING_SECRET, int(params["timestamp"]))


@responses.activate
def test_dingtalk_without_secret_sends_no_signature() -> None:
    responses.add(responses.POST, DING_URL, json=fixture("dingtalk", "ok"))
    settings = DingtalkChannel.Settings.model_validate(
        {"type": "dingtalk", "access_token": "${KP_DING_TOKEN}", "ip_allowlist": True}
    )
    published = DingtalkChannel("d", settings, Context()).publish(
        make_post(), {"idempotency_key": KEY}
    )
    assert published.remote_id == f"dingtalk:{KEY}"
    assert parse_qs(urlsplit(responses.calls[0].request.url).query) == {
        "access_token": [DING_TOKEN]
    }


@pytest.mark.parametrize(
    ("make", "url", "echoed"),
    [(wecom, WECOM_URL, [WECOM_KEY]), (dingtalk, DING_URL, [DING_TOKEN, DING_SECRET])],
    ids=["wecom", "dingtalk"],
)
@responses.activate
def test_errmsg_echoing_a_credential_is_masked(make: Any, url: str, echoed: list[str]) -> None:
    echo = "invalid credential " + " ".join(echoed)
    responses.add(responses.POST, url, json={"errcode": 99999, "errmsg": echo})
    with pytest.raises(Permanent) as info:
        make().publish(make_post(), {"idempotency_key": KEY})
    assert "invalid credential" in str(info.value)
    assert "errcode 99999" in str(info.value)
    assert_no_secret(info.value)


# --- contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [wecom, dingtalk], ids=["wecom", "dingtalk"])
def test_robots_cannot_look_up_and_keep_the_group_limit(make: Any) -> None:
    channel = make()
    assert isinstance(channel, HttpChannel)
    assert channel.capabilities.find is False
    assert channel.settings.rate_limit == "20/minute"


@pytest.mark.parametrize("make", [wecom, dingtalk], ids=["wecom", "dingtalk"])
@responses.activate
def test_publish_needs_the_idempotency_key(make: Any) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        make().publish(make_post(), {})
    assert len(responses.calls) == 0


def test_error_tables_use_known_kinds() -> None:
    kinds = {"rate_limited", "auth", "permanent", "transient", "unknown"}
    assert set(robot.WECOM_ERRORS.values()) <= kinds
    assert set(robot.DINGTALK_ERRORS.values()) <= kinds
    assert 0 not in robot.WECOM_ERRORS
    assert 0 not in robot.DINGTALK_ERRORS


def test_every_fixture_code_has_a_row() -> None:
    """The errcodes of the fixtures are data in the tables (not left to the default)."""
    for platform, table in (("wecom", robot.WECOM_ERRORS), ("dingtalk", robot.DINGTALK_ERRORS)):
        for path in (FIXTURES / platform).glob("*.json"):
            code = json.loads(path.read_text(encoding="utf-8"))["errcode"]
            if code not in (0, 48002):  # ok, and the deliberately unlisted code
                assert code in table, (platform, path.name)


# --- WeCom limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msgtype", "summary", "limit"),
    [("text", "字" * 700, 2048), ("markdown", "字" * 1400, 4096)],
    ids=["text over 2048 bytes", "markdown over 4096 bytes"],
)
@responses.activate
def test_wecom_content_over_its_byte_limit_is_a_problem_and_never_sent(
    msgtype: str, summary: str, limit: int
) -> None:
    channel = wecom(msgtype=msgtype)
    post = make_post(summary=summary)
    [problem] = channel.check(post)
    assert (problem.code, problem.limit) == ("too_long", f"{limit} 字节")
    assert problem.actual > limit
    assert "超出长度限制" in problem.describe()
    with pytest.raises(Permanent, match="WeCom's limits"):
        channel.publish(post, {"idempotency_key": KEY})
    assert len(responses.calls) == 0


def test_wecom_markdown_exactly_at_the_limit_passes() -> None:
    channel = wecom(msgtype="markdown")
    base = len(channel.message(make_post(summary="a"))["markdown"]["content"].encode()) - 1
    # The summary stands in for the excerpt; pad with ASCII up to exactly 4096 bytes.
    fits = make_post(summary="a" * (robot.WECOM_MAX_MARKDOWN_BYTES - base))
    assert len(channel.message(fits)["markdown"]["content"].encode()) == 4096
    assert channel.check(fits) == []
    over = make_post(summary="a" * (robot.WECOM_MAX_MARKDOWN_BYTES - base + 1))
    assert [p.code for p in channel.check(over)] == ["too_long"]


def test_wecom_notice_is_cut_to_fit() -> None:
    message = wecom().markdown_message("周报", "数据" * 3000)
    content = message["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096
    assert content.endswith("…") and content.startswith("**周报**")


# --- DingTalk security settings -----------------------------------------------------------------


def test_dingtalk_needs_a_security_setting() -> None:
    with pytest.raises(ValidationError) as info:
        DingtalkChannel.Settings.model_validate(
            {"type": "dingtalk", "access_token": "${KP_DING_TOKEN}"}
        )
    message = str(info.value)
    assert "security setting" in message and "keywords" in message and "ip_allowlist" in message
    for enough in ({"keywords": ["科普"]}, {"ip_allowlist": True}, {"secret": "${KP_DING_SECRET}"}):
        DingtalkChannel.Settings.model_validate(
            {"type": "dingtalk", "access_token": "${KP_DING_TOKEN}", **enough}
        )


@pytest.mark.parametrize("keywords", [[""], [f"词{i}" for i in range(11)]])
def test_dingtalk_keywords_are_checked(keywords: list[str]) -> None:
    with pytest.raises(ValidationError):
        dingtalk(keywords=keywords)


@pytest.mark.parametrize("msgtype", ["link", "markdown", "text"])
def test_dingtalk_adds_the_keyword_when_the_message_has_none(msgtype: str) -> None:
    channel = dingtalk(keywords=["科普快讯", "科普"], msgtype=msgtype)
    post = make_post()
    message = channel.render(post).extra["message"]
    body = message[msgtype]["content" if msgtype == "text" else "text"]
    assert body.startswith("【科普快讯】")
    assert channel.check(post) == []
    # A message that already holds one of the keywords is left as it is.
    holding = make_post(title="科普：勤洗手")
    assert "【" not in json.dumps(channel.render(holding).extra["message"], ensure_ascii=False)


def test_dingtalk_check_reports_a_message_without_keyword() -> None:
    channel = dingtalk(keywords=["科普"])
    bare = {"msgtype": "text", "text": {"content": "没有关键词"}}
    [problem] = channel.keyword_problems(bare)
    assert problem.code == "required" and "科普" in problem.describe()
    assert channel.keyword_problems(channel.with_keyword(bare)) == []
    assert dingtalk().keyword_problems(bare) == []  # no keywords configured


def test_dingtalk_notice_carries_the_keyword() -> None:
    message = dingtalk(keywords=["科普"]).markdown_message("周报", "本周发布 3 篇")
    assert "科普" in message["markdown"]["text"]
