"""Kuaishou videos against `responses` fakes (issue 15): the token in the query, refresh with
the inherited expiry, start_upload → upload to the returned endpoint (whole or in fragments) →
photo/publish with its checkpoints, pending photos polled, lookup, figures, errors.

The bodies under tests/fixtures/kuaishou/ follow the documented shapes (``result`` 1 on
success, ``error_msg`` on errors; docs/platforms.md §13.2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from open_platforms import ENV, KS, VIDEO, Context, kuaishou, make_post, media, recorded

from kepubot.channels.base import Processing, Published, Undecided
from kepubot.channels.kuaishou import PATHS, KuaishouChannel
from kepubot.errors import AuthExpired, OutcomeUnknown, Permanent, RateLimited, Transient
from kepubot.models import Delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kuaishou"
NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
BASE = "https://open.kuaishou.com"
URL = {route: f"{BASE}/{path}" for route, path in PATHS.items()}
GATEWAY = "http://uploader.test.gifshow.com/api/upload"
SECRETS = (*(v for k, v in ENV.items() if "KS" in k), "ks-refreshed-SECRET-aaaa")


def fx(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(tmp_path, NOW)


def channel(ctx: Context, **changes: Any) -> KuaishouChannel:
    return kuaishou(ctx, BASE, timeout_seconds=30, **changes)


def delivery(photo_id: str) -> Delivery:
    return Delivery.model_validate(
        {
            "id": 1,
            "post_id": 7,
            "channel": "kuaishou-main",
            "state": "processing",
            "remote_id": photo_id,
            "progress": {"photo_id": photo_id},
            "due_at": NOW,
            "not_before": NOW,
        }
    )


def test_publish_uploads_to_the_returned_endpoint_and_marks_before_publishing(
    ctx: Context,
) -> None:
    post = make_post(ctx)
    progress, saves = recorded()
    with responses.RequestsMock() as fake:
        fake.post(URL["start_upload"], json=fx("start_upload_ok"))
        fake.post(GATEWAY, json=fx("ok"))
        fake.post(URL["publish"], json=fx("publish_ok"))
        result = channel(ctx).publish(post, progress)
        start, upload, publish = (c.request for c in fake.calls)
    assert parse_qs(urlsplit(start.url).query) == {
        "app_id": [KS["app_id"]],
        "access_token": [KS["access_token"]],
    }
    assert parse_qs(urlsplit(upload.url).query) == {"upload_token": ["3xwn3kkerxj6g9n"]}
    assert upload.body == VIDEO.read_bytes() and upload.headers["Content-Type"] == "video/mp4"
    query = parse_qs(urlsplit(publish.url).query)
    assert query["upload_token"] == ["3xwn3kkerxj6g9n"]
    assert b'name="caption"' in publish.body and b'name="cover"' in publish.body
    assert "#个人防护 #洗手".encode() in publish.body
    assert isinstance(result, Processing) and result.progress["photo_id"] == "3xd6v4ts6ykdaq4"
    assert saves[0]["publish_sent_at"] is None and saves[0]["endpoint"]
    marked = next(s for s in saves if s.get("publish_sent_at"))
    assert marked["uploaded"] is True and "photo_id" not in marked
    assert saves[-1]["photo_id"] == "3xd6v4ts6ykdaq4"
    with responses.RequestsMock():  # never published twice for one delivery
        assert isinstance(channel(ctx).publish(post, progress), Processing)


def test_large_videos_go_in_fragments_then_complete(ctx: Context, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(VIDEO.read_bytes() + b"\0" * (1024 * 1024 + 10))
    post = make_post(ctx)
    post = post.model_copy(
        update={
            "media": [
                media(ctx, big, "video", "video/mp4"),
                *(m for m in post.media if m.kind == "cover"),
            ]
        }
    )
    progress, _ = recorded()
    with responses.RequestsMock() as fake:
        fake.post(URL["start_upload"], json=fx("start_upload_ok"))
        fake.post(GATEWAY + "/fragment", json=fx("ok"))
        fake.post(GATEWAY + "/complete", json=fx("ok"))
        fake.post(URL["publish"], json=fx("publish_ok"))
        channel(ctx, chunk_size_mb=1).publish(post, progress)
        fragments = [
            parse_qs(urlsplit(c.request.url).query)["fragment_id"]
            for c in fake.calls
            if urlsplit(c.request.url).path == "/api/upload/fragment"
        ]
        complete = next(c.request for c in fake.calls if "complete" in c.request.url)
    assert fragments == [["0"], ["1"]]
    assert parse_qs(urlsplit(complete.url).query)["fragment_count"] == ["2"]
    assert progress["uploaded_fragments"] == [0, 1]


def test_a_lost_publish_answer_is_unknown(ctx: Context) -> None:
    progress, _ = recorded()
    with responses.RequestsMock() as fake:
        fake.post(URL["start_upload"], json=fx("start_upload_ok"))
        fake.post(GATEWAY, json=fx("ok"))
        fake.post(URL["publish"], body=requests.ConnectionError("reset"))
        with pytest.raises(OutcomeUnknown):
            channel(ctx).publish(make_post(ctx), progress)
    assert progress["publish_sent_at"] and "photo_id" not in progress


def test_refresh_keeps_the_inherited_expiry_and_repeats_once(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["user_info"], json={"result": 100200102, "error_msg": "无效的 access_token"})
        fake.get(URL["refresh"], json=fx("refresh_ok"))
        fake.get(URL["user_info"], json=fx("user_info"))
        assert channel(ctx).account_metrics() == {"followers": 3210, "following": 12}
        refresh = next(c.request for c in fake.calls if "oauth2" in c.request.url)
        repeated = fake.calls[-1].request
    query = parse_qs(urlsplit(refresh.url).query)
    assert query["grant_type"] == ["refresh_token"] and query["app_id"] == [KS["app_id"]]
    assert parse_qs(urlsplit(repeated.url).query)["access_token"] == ["ks-refreshed-SECRET-aaaa"]
    stored = ctx.credentials.get("kuaishou-main")
    assert stored is not None and stored.refresh_token == "ks-rotated-SECRET-bbbb"
    assert stored.refresh_expires_at == NOW + timedelta(seconds=648000)
    assert stored.expires_at == NOW + timedelta(seconds=172800)
    held = {p.name: p.held for p in channel(ctx).permissions()}
    assert held == {"user_video_publish": True, "user_video_info": True}


def test_a_refused_refresh_pauses_without_naming_secrets(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["list"], json={"result": 100200103, "error_msg": "access_token 已过期"})
        fake.get(URL["refresh"], json={"result": 100200101, "error_msg": "refresh_token 已过期"})
        with pytest.raises(AuthExpired) as paused:
            channel(ctx).verify()
    assert "authorise the application again" in str(paused.value)
    for secret in SECRETS:
        assert secret not in str(paused.value)


def test_scope_rate_limit_and_parameter_errors(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.post(URL["start_upload"], json={"result": 100200105, "error_msg": "未授权"})
        with pytest.raises(AuthExpired, match="user_video_publish"):
            channel(ctx).publish(make_post(ctx), recorded()[0])
    with responses.RequestsMock() as fake:
        fake.get(URL["info"], json={"result": 100100403, "error_msg": "请求过于频繁"})
        with pytest.raises(RateLimited):
            channel(ctx).poll(delivery("3xd6v4ts6ykdaq4"))
    with responses.RequestsMock() as fake:
        fake.get(URL["info"], json={"result": 100200107, "error_msg": "作品不存在"})
        with pytest.raises(Permanent, match="refused in review or deleted"):
            channel(ctx).poll(delivery("3xd6v4ts6ykdaq4"))


def test_pending_photos_are_polled_then_published(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["info"], json={**fx("publish_ok")})
        assert isinstance(channel(ctx).poll(delivery("3xd6v4ts6ykdaq4")), Processing)
    with responses.RequestsMock() as fake:
        fake.get(URL["info"], json=fx("info_done"))
        done = channel(ctx).poll(delivery("3xd6v4ts6ykdaq4"))
    assert isinstance(done, Published) and done.remote_url
    assert done.published_at == datetime.fromtimestamp(1714552260, UTC)


def test_find_is_absent_only_with_proof(ctx: Context) -> None:
    chan = channel(ctx)
    post = make_post(ctx)
    with responses.RequestsMock():
        assert chan.find(post, NOW, {}) is None
        assert chan.find(post, NOW, {"upload_token": "t", "publish_sent_at": None}) is None
    sent = {"upload_token": "t", "uploaded": True, "publish_sent_at": NOW.isoformat()}
    with responses.RequestsMock() as fake:
        fake.get(URL["list"], json=fx("list_empty"))
        found = chan.find(post, NOW, sent)
    assert isinstance(found, Undecided) and "cp.kuaishou.com" in found.look_at
    with responses.RequestsMock() as fake:
        fake.get(URL["list"], json=fx("list_one"))
        found = chan.find(post, NOW, sent)
    assert isinstance(found, Processing) and found.progress["photo_id"] == "3xd6v4ts6ykdaq4"


def test_figures(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["info"], json=fx("info_done"))
        snap = channel(ctx).metrics([delivery("3xd6v4ts6ykdaq4")])["3xd6v4ts6ykdaq4"]
    assert (snap.views, snap.likes, snap.comments) == (480, 12, 3)
    assert snap.shares is None and snap.favorites is None  # not reported: empty, never 0
    assert snap.raw["view_count"] == 480


def test_an_upload_token_the_gateway_refuses_starts_the_upload_over(ctx: Context) -> None:
    post = make_post(ctx)
    progress, _ = recorded()
    with responses.RequestsMock() as fake:
        fake.post(URL["start_upload"], json=fx("start_upload_ok"))
        fake.post(GATEWAY, json={"result": 10000200, "error_msg": "upload_token 无效"})
        with pytest.raises(Transient, match="uploads the video again"):
            channel(ctx).publish(post, progress)
    assert "upload_token" not in progress and progress["publish_sent_at"] is None
    assert channel(ctx).find(post, NOW, dict(progress)) is None  # publish never sent
    with responses.RequestsMock() as fake:
        fake.post(URL["start_upload"], json=fx("start_upload_ok"))
        fake.post(GATEWAY, json=fx("ok"))
        fake.post(URL["publish"], json=fx("publish_ok"))
        assert isinstance(channel(ctx).publish(post, progress), Processing)
