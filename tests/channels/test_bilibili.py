"""Bilibili videos against `responses` fakes (issue 15): signatures, tokens, the upload and
submission steps with their checkpoints, review polling, lookup, figures, errors.

The bodies under tests/fixtures/bilibili/ follow the documented shape ``{"code", "message",
"ttl", "request_id", "data"}`` (docs/platforms.md §12.2). Tokens live in a real
CredentialStore on a temporary SQLite file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from open_platforms import BILI, ENV, Context, bilibili, make_post, recorded

from kepubot.channels.base import Processing, Published, Undecided
from kepubot.channels.bilibili import PATHS, BilibiliChannel
from kepubot.errors import AuthExpired, OutcomeUnknown, Permanent, RateLimited, Transient
from kepubot.models import Delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bilibili"
NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
BASE = "https://member.bilibili.com"
UPLOAD = "https://openupos.bilivideo.com"
OAUTH = "https://api.bilibili.com"
URL = {
    route: f"{UPLOAD if route == 'part_upload' else OAUTH if route == 'refresh' else BASE}/{path}"
    for route, path in PATHS.items()
}
SECRETS = (*(v for k, v in ENV.items() if "BILI" in k), "bili-refreshed-SECRET-aaaa")


def fx(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(tmp_path, NOW)


def channel(ctx: Context, **changes: Any) -> BilibiliChannel:
    return bilibili(ctx, BASE, upload_base=UPLOAD, oauth_base=OAUTH, timeout_seconds=30, **changes)


def delivery(progress: dict[str, Any]) -> Delivery:
    return Delivery.model_validate(
        {
            "id": 1,
            "post_id": 7,
            "channel": "bilibili-main",
            "state": "processing",
            "remote_id": progress.get("resource_id"),
            "progress": dict(progress),
            "due_at": NOW,
            "not_before": NOW,
        }
    )


def publish_flow(fake: responses.RequestsMock) -> None:
    fake.post(URL["init"], json=fx("init_ok"))
    fake.post(URL["part_upload"], json=fx("ok"))
    fake.post(URL["complete"], json=fx("ok"))
    fake.post(URL["cover"], json=fx("cover_ok"))
    fake.post(URL["submit"], json=fx("submit_ok"))


def test_every_call_is_signed_as_documented(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["scopes"], json={"code": 0, "data": {"openid": "o", "scopes": ["ARC_BASE"]}})
        channel(ctx).verify()
        request = fake.calls[0].request
    headers = request.headers
    names = sorted(h.lower() for h in headers if h.lower().startswith("x-bili-"))
    assert names == [
        "x-bili-accesskeyid",
        "x-bili-content-md5",
        "x-bili-signature-method",
        "x-bili-signature-nonce",
        "x-bili-signature-version",
        "x-bili-timestamp",
    ]
    text = "\n".join(f"{n}:{headers[n]}" for n in names)
    wanted = hmac.new(BILI["client_secret"].encode(), text.encode(), "sha256").hexdigest()
    assert headers["Authorization"] == wanted
    assert headers["x-bili-content-md5"] == hashlib.md5(b"").hexdigest()
    assert headers["x-bili-timestamp"] == str(int(NOW.timestamp()))
    assert headers["access-token"] == BILI["access_token"]
    assert "access_token" not in (urlsplit(request.url).query or "")


def test_publish_checkpoints_each_step_and_marks_before_submitting(ctx: Context) -> None:
    post = make_post(ctx)
    progress, saves = recorded()
    with responses.RequestsMock() as fake:
        publish_flow(fake)
        result = channel(ctx).publish(post, progress)
        submit = next(c.request for c in fake.calls if "add-by-utoken" in c.request.url)
        init = next(c.request for c in fake.calls if "video/init" in c.request.url)
    assert isinstance(result, Processing) and result.progress == {"resource_id": "BV17B4y1s7R1"}
    assert parse_qs(urlsplit(submit.url).query)["upload_token"] == [
        fx("init_ok")["data"]["upload_token"]
    ]
    body = json.loads(submit.body)
    assert body["tid"] == 201 and body["tag"] == "个人防护,洗手" and body["copyright"] == 1
    assert body["cover"] == fx("cover_ok")["data"]["url"]
    assert submit.headers["x-bili-content-md5"] == hashlib.md5(submit.body).hexdigest()
    assert json.loads(init.body)["utype"] == "0"
    # the order of the checkpoints: token (submit mark null), parts, merged, cover, mark, id
    assert saves[0]["upload_token"] and saves[0]["submit_sent_at"] is None
    marked = next(i for i, s in enumerate(saves) if s.get("submit_sent_at"))
    assert "resource_id" not in saves[marked] and saves[marked]["merged"] is True
    assert saves[-1]["resource_id"] == "BV17B4y1s7R1"
    # a second publish of the same delivery sends nothing
    with responses.RequestsMock():
        assert isinstance(channel(ctx).publish(post, progress), Processing)
    for secret in SECRETS:
        assert secret not in json.dumps(saves)


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {"code": -503, "message": "过载保护"}},
        {"body": requests.ConnectionError("reset")},
        {"status": 502, "body": "bad gateway"},
    ],
    ids=["busy", "connection lost", "502"],
)
def test_a_submission_that_may_have_been_applied_is_unknown(ctx: Context, answer: Any) -> None:
    progress, _ = recorded()
    with responses.RequestsMock() as fake:
        fake.post(URL["init"], json=fx("init_ok"))
        fake.post(URL["part_upload"], json=fx("ok"))
        fake.post(URL["complete"], json=fx("ok"))
        fake.post(URL["cover"], json=fx("cover_ok"))
        fake.post(URL["submit"], **answer)
        with pytest.raises(OutcomeUnknown):
            channel(ctx).publish(make_post(ctx), progress)
    assert progress["submit_sent_at"] and "resource_id" not in progress


def test_a_refused_token_is_refreshed_once_and_the_call_repeated(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["user_stat"], json={"code": -101, "message": "账号未登录"})
        fake.post(URL["refresh"], json=fx("refresh_ok"))
        fake.get(URL["user_stat"], json=fx("user_stat"))
        figures = channel(ctx).account_metrics()
        refresh = next(c.request for c in fake.calls if "refresh_token" in c.request.url)
        repeated = fake.calls[-1].request
    assert figures == {"followers": 50, "following": 234, "archives_passed": 2}
    query = parse_qs(urlsplit(refresh.url).query)
    assert query["grant_type"] == ["refresh_token"] and query["refresh_token"] == [
        BILI["refresh_token"]
    ]
    assert repeated.headers["access-token"] == "bili-refreshed-SECRET-aaaa"
    stored = ctx.credentials.get("bilibili-main")
    assert stored is not None and stored.refresh_token == "bili-rotated-SECRET-bbbb"
    assert stored.expires_at == datetime.fromtimestamp(1893456000, UTC)


def test_a_refused_refresh_pauses_the_channel_and_names_no_secret(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["user_stat"], json={"code": -658, "message": "token 过期"})
        fake.post(
            URL["refresh"],
            json={"code": -101, "message": f"refresh_token {BILI['refresh_token']} 已失效"},
        )
        with pytest.raises(AuthExpired) as paused:
            channel(ctx).account_metrics()
    text = str(paused.value)
    assert "authorise the application again" in text and "[channels.bilibili-main]" in text
    for secret in SECRETS:
        assert secret not in text


def test_an_alert_before_the_refresh_token_runs_out(ctx: Context) -> None:
    chan = channel(ctx)
    with responses.RequestsMock() as fake:
        fake.get(URL["user_stat"], json=fx("user_stat"))
        chan.account_metrics()  # seeds the configured tokens
    stored = ctx.credentials.get("bilibili-main")
    assert stored is not None and not ctx.alerts
    ctx.clock = stored.refresh_expires_at - timedelta(days=6)  # type: ignore[operator]
    with responses.RequestsMock() as fake:
        fake.get(URL["user_stat"], json=fx("user_stat"))
        chan.account_metrics()
    [(key, title, body)] = ctx.alerts
    assert key.startswith("bilibili-authorization:bilibili-main:") and "哔哩哔哩" in title
    assert "重新授权" in body


def test_missing_permission_and_rate_limits(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["arc_stat"], json={"code": -403, "message": "访问权限不足"})
        with pytest.raises(AuthExpired, match="DATA"):
            channel(ctx).metrics([delivery({"resource_id": "BV17B4y1s7R1"})])
    with responses.RequestsMock() as fake:
        fake.get(URL["view"], json={"code": -509, "message": "请求过于频繁"})
        with pytest.raises(RateLimited):
            channel(ctx).poll(delivery({"resource_id": "BV17B4y1s7R1"}))


def test_review_is_polled_until_open_or_returned_with_its_reason(ctx: Context) -> None:
    chan = channel(ctx)
    d = delivery({"resource_id": "BV17B4y1s7R1"})
    with responses.RequestsMock() as fake:
        fake.get(URL["view"], json=fx("view_review"))
        assert isinstance(chan.poll(d), Processing)
    with responses.RequestsMock() as fake:
        fake.get(URL["view"], json=fx("view_open"))
        published = chan.poll(d)
    assert isinstance(published, Published)
    assert published.remote_url and "BV17B4y1s7R1" in published.remote_url
    with responses.RequestsMock() as fake:
        fake.get(URL["view"], json=fx("view_returned"))
        with pytest.raises(Permanent, match="封面与内容不符"):
            chan.poll(d)


def test_find_is_absent_only_with_proof_and_undecided_while_unlisted(ctx: Context) -> None:
    chan = channel(ctx)
    post = make_post(ctx)
    with responses.RequestsMock():  # no call: the checkpoints prove absence
        assert chan.find(post, NOW, {}) is None
        assert chan.find(post, NOW, {"upload_token": "t", "submit_sent_at": None}) is None
    sent = {"upload_token": "t", "merged": True, "submit_sent_at": NOW.isoformat()}
    with responses.RequestsMock() as fake:
        fake.get(URL["list"], json=fx("viewlist_empty"))
        found = chan.find(post, NOW, sent)
    assert isinstance(found, Undecided) and "member.bilibili.com" in found.look_at
    with responses.RequestsMock() as fake:
        fake.get(URL["list"], json=fx("viewlist_one"))
        found = chan.find(post, NOW, sent)
    assert isinstance(found, Processing) and found.progress["resource_id"] == "BV17B4y1s7R1"
    # an archive with the same title from before the attempt is not this one
    with responses.RequestsMock() as fake:
        fake.get(URL["list"], json=fx("viewlist_one"))
        later = NOW + timedelta(hours=1)
        assert isinstance(chan.find(post, later, sent), Undecided)


def test_figures_map_into_our_names_and_keep_the_rest(ctx: Context) -> None:
    with responses.RequestsMock() as fake:
        fake.get(URL["arc_stat"], json=fx("arc_stat"))
        figures = channel(ctx).metrics([delivery({"resource_id": "BV17B4y1s7R1"})])
        query = parse_qs(urlsplit(fake.calls[0].request.url).query)
    snap = figures["BV17B4y1s7R1"]
    assert (snap.views, snap.likes, snap.comments, snap.shares, snap.favorites) == (
        290,
        21,
        4,
        2,
        5,
    )
    assert snap.raw["coin"] == 3 and snap.raw["danmaku"] == 7
    assert query["resource_id"] == ["BV17B4y1s7R1"]


def test_settings_need_a_category_and_a_source_for_reposts(ctx: Context) -> None:
    with pytest.raises(ValueError, match="tid"):
        BilibiliChannel.Settings.model_validate(
            {
                "type": "bilibili",
                "client_id": "c",
                "client_secret": "${KP_BILI_SECRET}",
                "access_token": "${KP_BILI_TOKEN}",
                "refresh_token": "${KP_BILI_REFRESH}",
            }
        )
    with pytest.raises(ValueError, match="source"):
        channel(ctx, copyright=2)
    assert channel(ctx, copyright=2, source="https://example.org/a").settings.copyright == 2


def test_an_upload_token_bilibili_no_longer_knows_starts_the_upload_over(ctx: Context) -> None:
    post = make_post(ctx)
    progress, _ = recorded()
    with responses.RequestsMock() as fake:
        fake.post(URL["init"], json=fx("init_ok"))
        fake.post(URL["part_upload"], json=fx("ok"))
        fake.post(URL["complete"], json={"code": -404, "message": "upload_token 不存在"})
        with pytest.raises(Transient, match="uploads the video again"):
            channel(ctx).publish(post, progress)
    assert "upload_token" not in progress and progress["submit_sent_at"] is None
    assert channel(ctx).find(post, NOW, dict(progress)) is None  # never submitted
    with responses.RequestsMock() as fake:
        publish_flow(fake)
        assert isinstance(channel(ctx).publish(post, progress), Processing)


def test_an_undecided_submission_waits_an_hour_before_a_person_is_asked(ctx: Context) -> None:
    from kepubot.channels.base import SETTLE_MINUTES_DEFAULTS

    assert channel(ctx).settings.settle_window() == 60
    assert SETTLE_MINUTES_DEFAULTS["kuaishou"] == 60
    assert channel(ctx, settle_minutes=5).settings.settle_window() == 5
