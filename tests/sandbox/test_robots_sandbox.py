"""The emulated group robots refuse what WeCom and DingTalk refuse (issue 10 §4/§5), and
kepubot's robot channels get through them when configured like the robot.

WeCom: text content ≤ 2048 bytes, markdown content ≤ 4096 bytes (40058 over it), unknown keys
93000. DingTalk custom robots: the robot's 安全设置 (signing, custom keywords, IP allow-list)
decide; a message that does not meet them is 310000; an unknown token is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from kepubot.channels.base import Published
from kepubot.channels.robot import DingtalkChannel, WecomChannel
from kepubot.errors import AuthExpired, Permanent, RateLimited
from kepubot.models import Post
from kepubot.sandbox import Sandbox, dingtalk_sign

TIMEOUT = 10
OK = {"errcode": 0, "errmsg": "ok"}
KEY = "delivery-9-key"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def control(sb: Sandbox, action: str, payload: Any) -> requests.Response:
    return requests.post(sb.url(f"/_sandbox/{action}"), json=payload, timeout=TIMEOUT)


def register(sb: Sandbox, payload: Any) -> None:
    response = control(sb, "secrets", payload)
    assert response.status_code == 200, response.text


def wecom(sb: Sandbox, key: str, message: dict[str, Any]) -> dict[str, Any]:
    return requests.post(
        sb.url("/cgi-bin/webhook/send"), params={"key": key}, json=message, timeout=TIMEOUT
    ).json()


def dingtalk(
    sb: Sandbox, token: str, message: dict[str, Any], secret: str | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"access_token": token}
    if secret is not None:
        timestamp = int(time.time() * 1000)
        params.update(timestamp=timestamp, sign=dingtalk_sign(secret, timestamp))
    return requests.post(sb.url("/robot/send"), params=params, json=message, timeout=TIMEOUT).json()


def text(content: str) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content}}


def accepted(sb: Sandbox, route: str) -> list[dict[str, Any]]:
    ledger = requests.get(sb.url("/_sandbox/ledger"), params={"route": route}, timeout=TIMEOUT)
    return [entry["body"] for entry in ledger.json()["accepted"]]


# --- WeCom --------------------------------------------------------------------------------------


def test_wecom_byte_limits(sandbox: Sandbox) -> None:
    register(sandbox, {"wecom_keys": ["k"]})
    markdown = {"msgtype": "markdown", "markdown": {"content": "字" * 1365 + "a"}}  # 4096 bytes
    assert wecom(sandbox, "k", markdown) == OK
    markdown["markdown"]["content"] += "a"  # 4097
    too_long = wecom(sandbox, "k", markdown)
    assert too_long["errcode"] == 40058 and "4096" in too_long["errmsg"]
    assert wecom(sandbox, "k", text("a" * 2048)) == OK
    assert wecom(sandbox, "k", text("a" * 2049))["errcode"] == 40058
    assert len(accepted(sandbox, "wecom")) == 2


def test_wecom_unknown_key_is_refused_even_first(sandbox: Sandbox) -> None:
    assert wecom(sandbox, "first-comer", text("hi"))["errcode"] == 93000
    assert accepted(sandbox, "wecom") == []


# --- DingTalk -----------------------------------------------------------------------------------


def test_dingtalk_unknown_token_is_refused_even_first(sandbox: Sandbox) -> None:
    assert dingtalk(sandbox, "first-comer", text("hi")) == {
        "errcode": 300005,
        "errmsg": "token is not exist",
    }
    assert accepted(sandbox, "dingtalk") == []


def test_dingtalk_keyword_is_required_when_configured(sandbox: Sandbox) -> None:
    register(sandbox, {"dingtalk": {"kw": {"keywords": ["科普", "周报"]}}})
    refused = dingtalk(sandbox, "kw", text("今天的新文章"))
    assert refused == {"errcode": 310000, "errmsg": "keywords not in content"}
    assert dingtalk(sandbox, "kw", text("【科普】今天的新文章")) == OK
    link = {"title": "本期周报", "text": "三篇", "messageUrl": "https://kepu.example.org/w/1"}
    assert dingtalk(sandbox, "kw", {"msgtype": "link", "link": link}) == OK  # title counts
    assert len(accepted(sandbox, "dingtalk")) == 2


def test_dingtalk_ip_allow_list(sandbox: Sandbox) -> None:
    register(
        sandbox,
        {"dingtalk": {"far": {"ips": ["198.51.100.0/24"]}, "near": {"ips": ["127.0.0.1"]}}},
    )
    refused = dingtalk(sandbox, "far", text("hi"))
    assert refused["errcode"] == 310000 and "not in whitelist" in refused["errmsg"]
    assert dingtalk(sandbox, "near", text("hi")) == OK


def test_dingtalk_every_configured_setting_must_hold(sandbox: Sandbox) -> None:
    register(sandbox, {"dingtalk": {"both": {"secret": "SECboth", "keywords": ["科普"]}}})
    assert dingtalk(sandbox, "both", text("科普"))["errmsg"] == "sign not match"  # unsigned
    assert dingtalk(sandbox, "both", text("无关"), secret="SECboth")["errcode"] == 310000
    assert dingtalk(sandbox, "both", text("科普"), secret="SECboth") == OK


def test_dingtalk_webhook_over_limit(sandbox: Sandbox) -> None:
    register(sandbox, {"dingtalk": {"t": ""}})
    assert control(sandbox, "settings", {"dingtalk_webhook_allowance": 2}).status_code == 200
    assert [dingtalk(sandbox, "t", text(f"m{i}"))["errcode"] for i in range(3)] == [0, 0, 90030]


@pytest.mark.parametrize(
    "bad",
    [{"t": 5}, {"t": {"keywords": "科普"}}, {"t": {"ips": ["not-an-ip"]}}, {"t": {"other": 1}}],
)
def test_dingtalk_security_settings_are_checked(sandbox: Sandbox, bad: Any) -> None:
    assert control(sandbox, "secrets", {"dingtalk": bad}).status_code == 400


# --- kepubot's channels through them ------------------------------------------------------------


class Context:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def media_file(self, relative: str) -> str:
        return relative


def make_post(**changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 9,
        "title": "勤洗手：七步洗手法",
        "body": "正文",
        "summary": "正确洗手能有效去除手上的病原体。",
        "link": "https://kepu.example.org/a/9",
        "author": "zhang",
        **changes,
    }
    return Post(**fields)


def ding_channel(sb: Sandbox, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> DingtalkChannel:
    monkeypatch.setenv("KP_SB_DING_TOKEN", "ding-token")
    monkeypatch.setenv("KP_SB_DING_SECRET", "SECding")
    settings = DingtalkChannel.Settings.model_validate(
        {
            "type": "dingtalk",
            "access_token": "${KP_SB_DING_TOKEN}",
            "api_base": sb.url(""),
            "timeout_seconds": 5,
            **changes,
        }
    )
    return DingtalkChannel("team-ding", settings, Context())


def test_dingtalk_channel_with_signing_and_keyword(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(sandbox, {"dingtalk": {"ding-token": {"secret": "SECding", "keywords": ["科普"]}}})
    configured = ding_channel(
        sandbox, monkeypatch, secret="${KP_SB_DING_SECRET}", keywords=["科普"], msgtype="markdown"
    )
    result = configured.publish(make_post(), {"idempotency_key": KEY})
    assert isinstance(result, Published)
    [body] = accepted(sandbox, "dingtalk")
    assert body["markdown"]["text"].startswith("【科普】")

    # Configured without the keyword the robot has: refused with 310000, a channel problem.
    unaware = ding_channel(sandbox, monkeypatch, secret="${KP_SB_DING_SECRET}")
    with pytest.raises(AuthExpired) as info:
        unaware.publish(make_post(), {"idempotency_key": KEY})
    assert info.value.code == 310000
    assert "ding-token" not in str(info.value) and "SECding" not in str(info.value)


def test_dingtalk_channel_over_the_allowance_waits(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(sandbox, {"dingtalk": {"ding-token": {"ips": ["127.0.0.1"]}}})
    control(sandbox, "settings", {"dingtalk_webhook_allowance": 1})
    channel = ding_channel(sandbox, monkeypatch, ip_allowlist=True)
    assert isinstance(channel.publish(make_post(), {"idempotency_key": KEY}), Published)
    with pytest.raises(RateLimited) as info:
        channel.publish(make_post(title="第二篇"), {"idempotency_key": "k2"})
    assert (info.value.code, info.value.retry_after) == (90030, 3600)


def test_wecom_channel_refuses_over_limit_markdown_before_sending(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(sandbox, {"wecom_keys": ["wk"]})
    monkeypatch.setenv("KP_SB_WECOM", "wk")
    settings = WecomChannel.Settings.model_validate(
        {
            "type": "wecom",
            "webhook_key": "${KP_SB_WECOM}",
            "msgtype": "markdown",
            "api_base": sandbox.url(""),
        }
    )
    channel = WecomChannel("team-wecom", settings, Context())
    long_post = make_post(summary="字" * 1400)
    assert [p.code for p in channel.check(long_post)] == ["too_long"]
    with pytest.raises(Permanent):
        channel.publish(long_post, {"idempotency_key": KEY})
    assert accepted(sandbox, "wecom") == []
    # What the sandbox says to the same content sent anyway: 40058, read as permanent.
    content = channel.message(long_post)["markdown"]["content"]
    assert (
        wecom(sandbox, "wk", {"msgtype": "markdown", "markdown": {"content": content}})["errcode"]
        == 40058
    )
    assert isinstance(channel.publish(make_post(), {"idempotency_key": KEY}), Published)


def test_dingtalk_same_msguuid_is_sent_once(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msgUuid is the send page's idempotency key: a requeued delivery (same key) is answered
    as sent and posts nothing the second time."""
    register(sandbox, {"dingtalk": {"ding-token": {"keywords": ["科普"]}}})
    channel = ding_channel(sandbox, monkeypatch, keywords=["科普"])
    first = channel.publish(make_post(), {"idempotency_key": KEY})
    again = channel.publish(make_post(), {"idempotency_key": KEY})
    assert first.remote_id == again.remote_id == f"dingtalk:{KEY}"
    [body] = accepted(sandbox, "dingtalk")
    assert body["msgUuid"] == KEY
    ledger = requests.get(sandbox.url("/_sandbox/ledger"), params={"route": "dingtalk"}, timeout=5)
    [repeat] = ledger.json()["duplicates"]
    assert repeat["idempotency_key"] == KEY
    channel.publish(make_post(title="另一篇"), {"idempotency_key": "other-key"})
    assert len(accepted(sandbox, "dingtalk")) == 2
