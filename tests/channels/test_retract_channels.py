"""Retraction and correction links per channel against `responses` fakes (issue 13 §6):
what each channel sends to take a publication back, and how a lost answer is settled."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import responses

from kepubot.channels.base import Retracted
from kepubot.channels.webhook import WebhookChannel
from kepubot.errors import OutcomeUnknown
from kepubot.models import Delivery, Post

NOW = datetime(2026, 4, 1, 8, 30, tzinfo=UTC)
SECRET = "hook-secret-SECRET-9999"
URL = "https://hooks.example.org/in"
LOOKUP = "https://hooks.example.org/lookup"


class Context:
    def now(self) -> datetime:
        return NOW

    def media_file(self, relative: str) -> str:
        return f"/media/{relative}"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_HOOK_SECRET", SECRET)


def hook(**extra: Any) -> WebhookChannel:
    values = {"type": "webhook", "url": URL, "secret": "${KP_HOOK_SECRET}", **extra}
    return WebhookChannel("cms", WebhookChannel.Settings.model_validate(values), Context())


def post(**changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 7,
        "title": "勤洗手",
        "body": "正文",
        "link": "https://kepu.example.org/a/7",
        "author": "zhang",
        **changes,
    }
    return Post(**fields)


def delivery() -> Delivery:
    return Delivery(
        id=3,
        post_id=7,
        channel="cms",
        state="sending",
        due_at=NOW,
        not_before=NOW,
        kind="retract",
        retract_reason="数据有误",
        remote_id="cms-1",
        remote_url="https://cms.example.org/1",
        progress={"idempotency_key": "kepubot-x-3"},
    )


@responses.activate
def test_webhook_retract_is_a_signed_event_with_its_own_key() -> None:
    responses.add(responses.POST, URL, json={"id": "cms-2"}, status=201)
    result = hook().retract(delivery(), post(), {"retract_key": "kepubot-x-3-retract"})
    assert result == Retracted(how="event_sent")
    sent = responses.calls[0].request
    body = json.loads(sent.body)
    assert body["event"] == "retracted" and body["reason"] == "数据有误"
    assert body["retracts"] == {
        "idempotency_key": "kepubot-x-3",
        "id": "cms-1",
        "url": "https://cms.example.org/1",
    }
    assert sent.headers["Idempotency-Key"] == "kepubot-x-3-retract" == body["idempotency_key"]
    expected = "sha256=" + hmac.new(SECRET.encode(), sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["X-Kepubot-Signature"] == expected


@responses.activate
def test_webhook_retract_seen_before_is_looked_up_not_resent() -> None:
    responses.add(responses.POST, URL, json={"error": "duplicate"}, status=409)
    channel = hook(lookup_url=LOOKUP)
    with pytest.raises(OutcomeUnknown):
        channel.retract(delivery(), post(), {"retract_key": "k-retract"})
    responses.add(responses.GET, LOOKUP, json={"id": "cms-2"}, status=200)
    assert channel.find_retracted(delivery(), {"retract_key": "k-retract"}) == Retracted(
        how="event_sent"
    )
    assert responses.calls[-1].request.url.endswith("key=k-retract")
    assert not hook().capabilities.find_retracted  # without lookup_url it cannot look


@responses.activate
def test_webhook_correction_names_the_post_it_corrects() -> None:
    responses.add(responses.POST, URL, json={"id": "cms-9"}, status=201)
    corrects = {"post_id": 5, "title": "旧文", "link": "https://kepu.example.org/a/5", "urls": {}}
    hook().publish(post(corrects=corrects), {"idempotency_key": "k"})
    body = json.loads(responses.calls[0].request.body)
    assert body["correction_of"] == {
        "post_id": 5,
        "title": "旧文",
        "url": "https://kepu.example.org/a/5",
    }


@responses.activate
@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_robots_send_a_short_withdrawal_notice(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepubot.channels.robot import DingtalkChannel, WecomChannel

    monkeypatch.setenv("KP_ROBOT", "robot-SECRET-1")
    if platform == "wecom":
        channel: Any = WecomChannel(
            "staff",
            WecomChannel.Settings.model_validate(
                {"type": "wecom", "webhook_key": "${KP_ROBOT}", "api_base": "https://r.example"}
            ),
            Context(),
        )
        url = "https://r.example/cgi-bin/webhook/send"
    else:
        channel = DingtalkChannel(
            "staff",
            DingtalkChannel.Settings.model_validate(
                {
                    "type": "dingtalk",
                    "access_token": "${KP_ROBOT}",
                    "keywords": ["科普"],
                    "api_base": "https://r.example",
                }
            ),
            Context(),
        )
        url = "https://r.example/robot/send"
    responses.add(responses.POST, url, json={"errcode": 0, "errmsg": "ok"})
    row = delivery()
    result = channel.retract(row, post(), {"retract_key": "kepubot-x-3-retract"})
    assert result == Retracted(how="notice_sent")
    sent = json.loads(responses.calls[0].request.body)
    text = json.dumps(sent, ensure_ascii=False)
    assert "撤回" in text and "《勤洗手》" in text and "数据有误" in text
    if platform == "dingtalk":
        assert sent["msgUuid"] == "kepubot-x-3-retract"  # its own key, not the post's
        assert "科普" in text  # the robot's keyword, or DingTalk refuses it (310000)
    assert channel.capabilities.retract and not channel.capabilities.find_retracted


# --- Weibo: statuses/destroy ----------------------------------------------------------------

WEIBO = "https://api.weibo.com"


def weibo_channel(monkeypatch: pytest.MonkeyPatch) -> Any:
    from kepubot.channels.weibo import WeiboChannel

    monkeypatch.setenv("KP_WEIBO_TOKEN", "weibo-SECRET-token")
    settings = WeiboChannel.Settings.model_validate(
        {
            "type": "weibo",
            "access_token": "${KP_WEIBO_TOKEN}",
            "link_domain": "kepu.example.org",
            "rip": "203.0.113.7",
            "api_base": WEIBO,
        }
    )
    return WeiboChannel("weibo-main", settings, Context())


def weibo_row() -> Delivery:
    row = delivery()
    row.channel, row.remote_id = "weibo-main", "4900000000000001"
    return row


@responses.activate
def test_weibo_retract_destroys_the_status_and_gone_counts_as_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = weibo_channel(monkeypatch)
    url = f"{WEIBO}/2/statuses/destroy.json"
    status = {"id": 4900000000000001, "idstr": "4900000000000001", "text": "x", "created_at": ""}
    responses.add(responses.POST, url, json=status)
    assert channel.retract(weibo_row(), post(), {}) == Retracted(how="deleted")
    sent = responses.calls[0].request
    assert "id=4900000000000001" in sent.body and "access_token=" in sent.body
    gone = {"error": "Target weibo does not exist!", "error_code": "20101"}
    responses.add(responses.POST, url, json=gone, status=400)
    assert channel.retract(weibo_row(), post(), {}) == Retracted(how="already_gone")


@responses.activate
def test_weibo_lost_delete_answer_is_settled_by_statuses_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = weibo_channel(monkeypatch)
    responses.add(responses.POST, f"{WEIBO}/2/statuses/destroy.json", status=502)
    with pytest.raises(OutcomeUnknown):
        channel.retract(weibo_row(), post(), {})
    show = f"{WEIBO}/2/statuses/show.json"
    status = {"id": 4900000000000001, "idstr": "4900000000000001", "text": "x", "created_at": ""}
    responses.add(responses.GET, show, json=status)
    assert channel.find_retracted(weibo_row(), {}) is None  # still there: delete again
    responses.replace(
        responses.GET,
        show,
        json={"error": "Target weibo does not exist!", "error_code": "20101"},
        status=400,
    )
    assert channel.find_retracted(weibo_row(), {}) == Retracted(how="already_gone")
