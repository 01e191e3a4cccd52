"""The WeChat emulator's asynchronous jobs (issue 10): a publish job nobody can poll stays in
progress past a client's timeout, its draft stays in the box meanwhile (and a second submit
starts a second job, which the ledger shows), and a mass send under 「API群发保护」 waits for an
administrator who confirms, refuses or ignores it.

Time moves with the sandbox clock (``/_sandbox/clock``), never by sleeping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kepubot.sandbox import Sandbox

TIMEOUT = 5
APPID = "wx00000000jobs01"
SECRET = "wechat-secret-JOBS"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 2


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def control(sb: Sandbox, action: str, payload: Any = None, method: str = "POST") -> Any:
    response = requests.request(
        method, sb.url(f"/_sandbox/{action}"), json=payload, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


def advance(sb: Sandbox, seconds: float) -> None:
    control(sb, "clock", {"advance": seconds})


@pytest.fixture
def token(sandbox: Sandbox) -> str:
    control(sandbox, "secrets", {"wechat": {APPID: SECRET}})
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    answer = requests.get(sandbox.url("/cgi-bin/token"), params=params, timeout=TIMEOUT).json()
    return str(answer["access_token"])


def wx(sb: Sandbox, path: str, token: str, body: Any = None) -> Any:
    raw = json.dumps(body if body is not None else {}, ensure_ascii=False).encode()
    response = requests.post(
        sb.url(path), params={"access_token": token}, data=raw, timeout=TIMEOUT
    )
    assert response.status_code == 200
    return response.json()


def new_draft(sb: Sandbox, token: str, title: str = "七步洗手法的科学依据") -> str:
    thumb = requests.post(
        sb.url("/cgi-bin/material/add_material"),
        params={"access_token": token, "type": "image"},
        files={"media": ("cover.png", PNG, "image/png")},
        timeout=TIMEOUT,
    ).json()["media_id"]
    article = {
        "title": title,
        "content": "<p>用流动水和肥皂洗手，揉搓时间不少于20秒。</p>",
        "content_source_url": "https://kepu.example.org/a/1",
        "thumb_media_id": thumb,
    }
    answer = wx(sb, "/cgi-bin/draft/add", token, {"articles": [article]})
    return str(answer["media_id"])


def listed(sb: Sandbox, token: str) -> int:
    body = {"offset": 0, "count": 20, "no_content": 1}
    return int(wx(sb, "/cgi-bin/freepublish/batchget", token, body)["total_count"])


def freepublish_entries(sb: Sandbox) -> list[dict[str, Any]]:
    ledger = requests.get(sb.url("/_sandbox/ledger"), params={"route": "wechat"}, timeout=5)
    return [e for e in ledger.json()["accepted"] if e["kind"] == "freepublish"]


def test_an_unpolled_job_runs_past_the_client_timeout_with_its_draft_in_the_box(
    sandbox: Sandbox, token: str
) -> None:
    settings = control(sandbox, "settings", method="GET")
    assert settings["publish_unpolled_seconds"] > 30  # a client's default timeout
    assert settings["wechat_draft_during_publish"] == "stays"
    control(sandbox, "settings", {"publish_unpolled_seconds": 120})
    media_id = new_draft(sandbox, token)
    assert wx(sandbox, "/cgi-bin/freepublish/submit", token, {"media_id": media_id})["publish_id"]
    # the answer is "lost": nobody polls. For 120 s the article is in no list and the draft
    # is still in the box, exactly as if nothing had been submitted
    advance(sandbox, 119)
    assert listed(sandbox, token) == 0
    assert "news_item" in wx(sandbox, "/cgi-bin/draft/get", token, {"media_id": media_id})
    drafts = wx(sandbox, "/cgi-bin/draft/batchget", token, {"offset": 0, "count": 20})
    assert [d["media_id"] for d in drafts["item"]] == [media_id]
    advance(sandbox, 2)
    assert listed(sandbox, token) == 1
    gone = wx(sandbox, "/cgi-bin/draft/get", token, {"media_id": media_id})
    assert gone["errcode"] == 40007  # the draft left the box when its job succeeded


def test_a_second_submit_during_the_job_publishes_twice_and_the_ledger_says_so(
    sandbox: Sandbox, token: str
) -> None:
    media_id = new_draft(sandbox, token)
    first = wx(sandbox, "/cgi-bin/freepublish/submit", token, {"media_id": media_id})
    advance(sandbox, 3.5)  # the reconciliation of the bug report, 3.5 s later
    second = wx(sandbox, "/cgi-bin/freepublish/submit", token, {"media_id": media_id})
    assert second["publish_id"] != first["publish_id"]
    entries = freepublish_entries(sandbox)
    assert [e["draft"] for e in entries] == [media_id, media_id]
    assert entries[1]["repeat_of"] == [first["publish_id"]]
    advance(sandbox, 61)
    assert listed(sandbox, token) == 2  # the duplicate the issue saw


def test_with_leaves_the_draft_leaves_at_submit(sandbox: Sandbox, token: str) -> None:
    control(sandbox, "settings", {"wechat_draft_during_publish": "leaves"})
    media_id = new_draft(sandbox, token)
    wx(sandbox, "/cgi-bin/freepublish/submit", token, {"media_id": media_id})
    assert wx(sandbox, "/cgi-bin/draft/get", token, {"media_id": media_id})["errcode"] == 40007
    again = wx(sandbox, "/cgi-bin/freepublish/submit", token, {"media_id": media_id})
    assert again["errcode"] == 40007
    assert len(freepublish_entries(sandbox)) == 1


def mass_send(sb: Sandbox, token: str, media_id: str, clientmsgid: str) -> Any:
    message = {
        "filter": {"is_to_all": True},
        "mpnews": {"media_id": media_id},
        "msgtype": "mpnews",
        "send_ignore_reprint": 0,
        "clientmsgid": clientmsgid,
    }
    return wx(sb, "/cgi-bin/message/mass/sendall", token, message)


def mass_status(sb: Sandbox, token: str, msg_id: Any) -> str:
    return str(wx(sb, "/cgi-bin/message/mass/get", token, {"msg_id": str(msg_id)})["msg_status"])


@pytest.mark.parametrize(
    ("admin", "wait", "before", "after"),
    [
        ("confirms", 60, "SENDING", "SEND_SUCCESS"),
        ("refuses", 60, "SENDING", "SEND_FAIL"),
        ("ignores", 1800, "SENDING", "SEND_FAIL"),  # unconfirmed within 30 minutes
    ],
)
def test_a_protected_mass_send_waits_for_the_administrator(
    sandbox: Sandbox, token: str, admin: str, wait: float, before: str, after: str
) -> None:
    control(
        sandbox,
        "settings",
        {
            "wechat_mass_protection": True,
            "wechat_mass_admin": admin,
            "wechat_mass_confirm_seconds": 60,
        },
    )
    sent = mass_send(sandbox, token, new_draft(sandbox, token), "post-1")
    assert sent["errcode"] == 0 and sent["msg_id"]
    assert mass_status(sandbox, token, sent["msg_id"]) == before
    advance(sandbox, wait - 1)
    assert mass_status(sandbox, token, sent["msg_id"]) == before
    advance(sandbox, 1)
    assert mass_status(sandbox, token, sent["msg_id"]) == after
    # decided once and for all
    control(sandbox, "settings", {"wechat_mass_admin": "confirms"})
    assert mass_status(sandbox, token, sent["msg_id"]) == after


def test_an_unprotected_mass_send_is_sent_at_once_and_unknown_ids_are_40059(
    sandbox: Sandbox, token: str
) -> None:
    sent = mass_send(sandbox, token, new_draft(sandbox, token), "post-2")
    assert mass_status(sandbox, token, sent["msg_id"]) == "SEND_SUCCESS"
    assert wx(sandbox, "/cgi-bin/message/mass/get", token, {"msg_id": "1"})["errcode"] == 40059
