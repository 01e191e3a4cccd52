"""Deleting publications against the sandbox's emulators (issue 13 §6): the WeChat channel's
freepublish and mass-send retractions and their lookups, and the refusals each deletion
interface documents (Weibo 20101/20102, WeChat 40059 and 53600)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from test_wechat_channel import World, delivery, publish

from kepubot.channels.base import Retracted

TIMEOUT = 10


@pytest.fixture
def world(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KP_WECHAT_SECRET", "wechat-SECRET-value")
    made = World(tmp_path)
    try:
        yield made
    finally:
        made.sandbox.stop()


def _retract_row(progress: dict[str, Any], published: Any) -> Any:
    return delivery(
        progress,
        state="sending",
        kind="retract",
        remote_id=published.remote_id,
        remote_url=published.remote_url,
        published_at=datetime(2025, 12, 1, tzinfo=UTC),
    )


def _ledger(world: World) -> dict[str, Any]:
    return requests.get(f"{world.base}/_sandbox/ledger?route=wechat", timeout=TIMEOUT).json()


def test_freepublish_retraction_deletes_once_and_a_redo_is_already_gone(world: World) -> None:
    channel = world.channel()
    published, progress = publish(channel, world.post(1), "key-1")
    row = _retract_row(progress, published)
    assert channel.find_retracted(row, {}) is None  # still there
    assert channel.retract(row, world.post(1), {}) == Retracted(how="deleted")
    assert channel.find_retracted(row, {}) == Retracted(how="deleted")  # every item is_deleted
    assert channel.retract(row, world.post(1), {}) == Retracted(how="deleted")
    deleted = _ledger(world)["deleted"]
    assert [(e["kind"], e["id"]) for e in deleted] == [("freepublish", published.remote_id)]


def test_mass_send_retraction_and_its_lookup(world: World) -> None:
    channel = world.channel(mode="masssend")
    sent, progress = publish(channel, world.post(2), "key-2")
    row = _retract_row(progress, sent)
    assert channel.find_retracted(row, {}) is None
    assert channel.retract(row, world.post(2), {}) == Retracted(how="deleted")
    assert channel.find_retracted(row, {}) == Retracted(how="already_gone")  # mass/get: DELETE
    # deleting again answers 40059; the channel looks and calls it already gone
    assert channel.retract(row, world.post(2), {}) == Retracted(how="already_gone")
    assert [e["kind"] for e in _ledger(world)["deleted"]] == ["mass"]


def _token(world: World) -> str:
    answer = requests.get(
        f"{world.base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": "wx0123456789abcdef"}
        | {"secret": "wechat-SECRET-value"},
        timeout=TIMEOUT,
    ).json()
    return str(answer["access_token"])


@pytest.mark.parametrize(
    ("path", "body", "errcode"),
    [
        ("message/mass/delete", {"msg_id": 12345, "article_idx": 0}, 40059),
        ("freepublish/delete", {"article_id": "nope", "index": 0}, 53600),
    ],
)
def test_wechat_deletion_refusals(world: World, path: str, body: dict, errcode: int) -> None:
    answer = requests.post(
        f"{world.base}/cgi-bin/{path}",
        params={"access_token": _token(world)},
        json=body,
        timeout=TIMEOUT,
    ).json()
    assert answer["errcode"] == errcode


def test_weibo_destroy_refusals_and_ledger(tmp_path: Any) -> None:
    from kepubot.sandbox import Sandbox

    sandbox = Sandbox()
    base = sandbox.start()
    try:
        requests.post(
            f"{base}/_sandbox/secrets", json={"weibo_tokens": ["tok-a", "tok-b"]}, timeout=TIMEOUT
        )
        share = requests.post(
            f"{base}/2/statuses/share.json",
            data={
                "access_token": "tok-a",
                "status": "【洗手】揉搓不少于20秒 https://kepu.example.org/a/1",
                "rip": "203.0.113.10",
            },
            timeout=TIMEOUT,
        ).json()
        status_id = str(share["id"])
        other = requests.post(
            f"{base}/2/statuses/destroy.json",
            data={"access_token": "tok-b", "id": status_id},
            timeout=TIMEOUT,
        )
        assert other.json()["error_code"] in ("20102", 20102)  # not one's own
        mine = requests.post(
            f"{base}/2/statuses/destroy.json",
            data={"access_token": "tok-a", "id": status_id},
            timeout=TIMEOUT,
        )
        assert mine.status_code == 200 and str(mine.json()["id"]) == status_id
        again = requests.post(
            f"{base}/2/statuses/destroy.json",
            data={"access_token": "tok-a", "id": status_id},
            timeout=TIMEOUT,
        )
        assert again.json()["error_code"] in ("20101", 20101)
        shown = requests.get(
            f"{base}/2/statuses/show.json",
            params={"access_token": "tok-a", "id": status_id},
            timeout=TIMEOUT,
        )
        assert shown.json()["error_code"] in ("20101", 20101)
        ledger = requests.get(f"{base}/_sandbox/ledger?route=weibo", timeout=TIMEOUT).json()
        assert [e["id"] for e in ledger["deleted"]] == [status_id]
    finally:
        sandbox.stop()
