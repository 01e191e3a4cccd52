"""The emulated Weibo refuses what Weibo refuses (issue 10 §4/§5), and kepubot's Weibo channel
gets a status with "+", "%", "&" and a #topic# through it unchanged, with and without a picture.

Written from the statuses/share doc: ``status`` must be URL-encoded (also in a multipart
post), must not contain ``#topic#`` and must link to the app's safe domain; ``rip`` is the
operating user's real IP. The sandbox decodes a multipart ``status`` once, as a form value.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from kepubot.channels.base import Published, Undecided
from kepubot.channels.weibo import WeiboChannel
from kepubot.models import Media, Post
from kepubot.sandbox import Sandbox

TIMEOUT = 10
TOKEN = "2.00weibo-sandbox-token"
LINK = "https://kepu.example.org/a/42"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# Everything a form decoder could get wrong: "+" (a space in a form), "%" (an escape), "&"
# (a separator), "=" and a #topic#.
TITLE = "C++ 与 100% 的真相"
SUMMARY = "盐&糖=? 1+1=2，浓度50%+ #话题# 讨论"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.start()
    try:
        control(sb, "secrets", {"weibo_tokens": [TOKEN]})
        yield sb
    finally:
        sb.stop()


def control(sb: Sandbox, action: str, payload: Any) -> requests.Response:
    response = requests.post(sb.url(f"/_sandbox/{action}"), json=payload, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response


def statuses(sb: Sandbox) -> list[str]:
    ledger = requests.get(sb.url("/_sandbox/ledger"), params={"route": "weibo"}, timeout=TIMEOUT)
    return [entry["body"]["status"] for entry in ledger.json()["accepted"]]


def share(sb: Sandbox, fields: dict[str, str], pic: bytes | None = None) -> requests.Response:
    url = sb.url("/2/statuses/share.json")
    data = {"access_token": TOKEN, "rip": "203.0.113.10", **fields}
    if pic is None:
        return requests.post(url, data=data, timeout=TIMEOUT)
    files: Any = {**{k: (None, v) for k, v in data.items()}, "pic": ("p.png", pic, "image/png")}
    return requests.post(url, files=files, timeout=TIMEOUT)


# --- the emulated platform ----------------------------------------------------------------------


def test_multipart_status_is_url_decoded_once(sandbox: Sandbox) -> None:
    text = f"1+1=2 & 100% {LINK}"
    assert share(sandbox, {"status": quote(text, safe="")}, pic=PNG).status_code == 200
    # The same text sent raw, as the client used to: "+" becomes a space, as in any form.
    raw = share(sandbox, {"status": f"3+4 & 5 {LINK}"}, pic=PNG)
    assert raw.status_code == 200
    assert statuses(sandbox) == [text, f"3 4 & 5 {LINK}"]


def test_an_encoded_topic_is_still_a_topic(sandbox: Sandbox) -> None:
    """The doc forbids #topic#: the check runs on the decoded text ("%23" is "#")."""
    answer = share(sandbox, {"status": quote(f"#科普# 洗手 {LINK}", safe="")}, pic=PNG)
    assert (answer.status_code, answer.json()["error_code"]) == (400, "10017")
    assert statuses(sandbox) == []


def test_safe_domains_default_is_not_empty_and_cannot_be_emptied(sandbox: Sandbox) -> None:
    settings = requests.get(sandbox.url("/_sandbox/settings"), timeout=TIMEOUT).json()
    assert settings["weibo_safe_domains"] == ["kepu.example.org"]
    off_domain = share(sandbox, {"status": "看 https://elsewhere.example.net/x"})
    assert (off_domain.status_code, off_domain.json()["error_code"]) == (400, "10017")
    emptied = requests.post(
        sandbox.url("/_sandbox/settings"), json={"weibo_safe_domains": []}, timeout=TIMEOUT
    )
    assert emptied.status_code == 400
    assert share(sandbox, {"status": f"看 {LINK}"}).status_code == 200


@pytest.mark.parametrize("rip", ["127.0.0.1", "10.8.0.2", "172.31.0.9", "192.168.0.100", "::1"])
def test_loopback_or_private_rip_is_refused_even_when_allowed(sandbox: Sandbox, rip: str) -> None:
    control(sandbox, "settings", {"weibo_rip_allow": ["0.0.0.0/0", "::/0"]})
    answer = share(sandbox, {"status": f"看 {LINK}", "rip": rip})
    assert (answer.status_code, answer.json()["error_code"]) == (400, "10017")
    assert "rip" in answer.json()["error"]


def test_documentation_rip_only_when_configured(sandbox: Sandbox) -> None:
    control(sandbox, "settings", {"weibo_rip_allow": []})
    refused = share(sandbox, {"status": f"一 {LINK}", "rip": "203.0.113.10"})
    assert (refused.status_code, refused.json()["error_code"]) == (400, "10017")
    assert share(sandbox, {"status": f"二 {LINK}", "rip": "116.62.1.1"}).status_code == 200
    control(sandbox, "settings", {"weibo_rip_allow": ["203.0.113.10"]})
    assert share(sandbox, {"status": f"三 {LINK}", "rip": "203.0.113.10"}).status_code == 200


def test_unknown_token_is_refused_even_as_the_first(tmp_path: Path) -> None:
    sb = Sandbox()
    sb.start()
    try:
        answer = requests.post(
            sb.url("/2/statuses/share.json"),
            data={"access_token": "first-comer", "status": f"看 {LINK}", "rip": "116.62.1.1"},
            timeout=TIMEOUT,
        )
        assert (answer.status_code, answer.json()["error_code"]) == (403, 21332)
        assert statuses(sb) == []
    finally:
        sb.stop()


# --- kepubot's channel through it ---------------------------------------------------------------


class Context:
    def __init__(self, media_dir: Path, now: datetime) -> None:
        self.media_dir = media_dir
        self.clock = now

    def now(self) -> datetime:
        return self.clock

    def media_file(self, relative: str) -> str:
        return str(self.media_dir / relative)


def weibo_channel(sb: Sandbox, media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> WeiboChannel:
    monkeypatch.setenv("KP_SANDBOX_WEIBO", TOKEN)
    settings = WeiboChannel.Settings.model_validate(
        {
            "type": "weibo",
            "access_token": "${KP_SANDBOX_WEIBO}",
            "link_domain": "kepu.example.org",
            "rip": "203.0.113.10",
            "api_base": sb.url(""),
            "timeout_seconds": 5,
        }
    )
    return WeiboChannel("weibo-main", settings, Context(media_dir, datetime.now(UTC)))


def post(media: list[Media] | None = None) -> Post:
    return Post(
        id=42,
        title=TITLE,
        body="正文",
        summary=SUMMARY,
        link=LINK,
        author="zhang",
        media=media or [],
    )


def png_media(media_dir: Path) -> Media:
    path = media_dir / "ab" / "pic.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)
    return Media(
        kind="image",
        path="ab/pic.png",
        sha256="ab" * 32,
        name="pic.png",
        size=len(PNG),
        mime="image/png",
        file=str(path),
    )


@pytest.mark.parametrize("with_picture", [True, False], ids=["multipart", "form"])
def test_special_characters_arrive_unchanged(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_picture: bool
) -> None:
    channel = weibo_channel(sandbox, tmp_path, monkeypatch)
    item = post([png_media(tmp_path)] if with_picture else None)
    rendered = channel.render(item).text
    # The doc forbids #topic#: the channel drops the number signs and keeps the word.
    assert "#" not in rendered and "话题" in rendered
    assert all(ch in rendered for ch in "+%&=")

    result = channel.publish(item, {})

    assert isinstance(result, Published)
    assert statuses(sandbox) == [rendered]
    shown = requests.get(
        sandbox.url("/2/statuses/show.json"),
        params={"access_token": TOKEN, "id": result.remote_id},
        timeout=TIMEOUT,
    ).json()
    assert shown["text"] == rendered
    if with_picture:
        assert shown["original_pic"]


def test_find_after_a_send_is_undecided_then_found_or_absent(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the timeline slow to show a new status, find() answers Undecided while the send
    is fresh, finds it once it shows, and calls it absent only after the settle time."""
    control(sandbox, "settings", {"timeline_delay_seconds": 60})
    channel = weibo_channel(sandbox, tmp_path, monkeypatch)
    context = channel.context
    assert isinstance(context, Context)
    progress: dict[str, Any] = {}
    item = post()
    result = channel.publish(item, progress)
    assert isinstance(result, Published)
    since = context.clock - timedelta(minutes=10)

    fresh = channel.find(item, since, progress)
    assert isinstance(fresh, Undecided)

    sandbox.advance_clock(61)
    context.clock += timedelta(seconds=61)
    found = channel.find(item, since, progress)
    assert isinstance(found, Published) and found.remote_id == result.remote_id

    other = post().model_copy(update={"summary": "从未发出的另一条。"})
    sent = {"weibo_sent_at": context.clock.isoformat()}
    assert isinstance(channel.find(other, since, sent), Undecided)
    context.clock += timedelta(seconds=channel.settings.timeline_settle_seconds)
    assert channel.find(other, since, sent) is None
