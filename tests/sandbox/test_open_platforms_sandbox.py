"""Bilibili and Kuaishou channels against the sandbox's emulators (issue 15): the contract
(preview, check, publish, review polling, find, metrics, followers, check) and every fault
(errors before and after applying, accepted-then-lost answers, hangs, rate limits, expired
tokens, review refusals, unknown credentials). The sandbox is written from the platforms'
documentation, not from the channels; what it accepted is read from its ledger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from open_platforms import (
    BILI,
    COVER,
    ENV,
    KS,
    VIDEO,
    Context,
    bilibili,
    kuaishou,
    make_post,
    recorded,
)

from kepubot.channels.base import Processing, Published, Retracted, Undecided
from kepubot.errors import AuthExpired, OutcomeUnknown, Permanent, RateLimited, Transient
from kepubot.models import Delivery
from kepubot.sandbox.server import Sandbox
from platform_env import sandbox_request

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Platform:
    route: str
    make: Any
    secrets: dict[str, Any]
    review: str  # the setting holding the review time
    list_delay: str
    refuse: str  # the setting holding refused words
    creating: str  # the path of the creating call
    remote: str  # the checkpoint holding the created id
    sent: str  # the mark saved before the creating call


BILIBILI = Platform(
    "bilibili",
    bilibili,
    BILI,
    "bilibili_review_seconds",
    "bilibili_list_delay_seconds",
    "bilibili_refuse_titles",
    "add-by-utoken",
    "resource_id",
    "submit_sent_at",
)
KUAISHOU = Platform(
    "kuaishou",
    kuaishou,
    KS,
    "kuaishou_pending_seconds",
    "kuaishou_list_delay_seconds",
    "kuaishou_refuse_captions",
    "photo/publish",
    "photo_id",
    "publish_sent_at",
)
PLATFORMS = [pytest.param(BILIBILI, id="bilibili"), pytest.param(KUAISHOU, id="kuaishou")]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def control(sb: Sandbox, action: str, payload: Any = None, method: str = "POST") -> Any:
    return sandbox_request(sb.url(f"/_sandbox/{action}"), payload, method)


def ready(sb: Sandbox, p: Platform, **values: Any) -> None:
    control(sb, "secrets", {p.route: p.secrets})
    control(sb, "settings", {p.review: 60, p.list_delay: 30, **values})


def ledger(sb: Sandbox, p: Platform) -> dict[str, list[dict[str, Any]]]:
    return sandbox_request(sb.url(f"/_sandbox/ledger?route={p.route}"))


def delivery(progress: dict[str, Any], remote: str) -> Delivery:
    return Delivery.model_validate(
        {
            "id": 1,
            "post_id": 7,
            "channel": "x",
            "state": "processing",
            "remote_id": progress.get(remote),
            "progress": dict(progress),
            "due_at": NOW,
            "not_before": NOW,
        }
    )


@pytest.mark.parametrize("p", PLATFORMS)
def test_publish_review_figures_and_check(sandbox: Sandbox, tmp_path: Path, p: Platform) -> None:
    ready(sandbox, p)
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    post = make_post(ctx)
    assert channel.check(post) == []
    rendered = channel.render(post)
    assert rendered.kind == "video" and len(rendered.media) == 2
    progress, saves = recorded()
    result = channel.publish(post, progress)
    assert isinstance(result, Processing)  # under review
    remote = progress[p.remote]
    # the mark was saved before the creating call, the id right after it
    assert any(s.get(p.sent) and p.remote not in s for s in saves)
    assert isinstance(channel.poll(delivery(progress, p.remote)), Processing)
    sandbox.advance_clock(61)
    published = channel.poll(delivery(progress, p.remote))
    assert isinstance(published, Published) and published.remote_id == remote
    assert published.remote_url and remote in published.remote_url
    # publishing the same delivery again never creates a second one
    assert isinstance(channel.publish(post, progress), Processing)
    assert [e["id"] for e in ledger(sandbox, p)["accepted"]] == [remote]
    sandbox.advance_clock(7200)
    ctx.clock += timedelta(seconds=7261)  # the signature's timestamp follows our clock
    figures = channel.metrics([delivery(progress, p.remote)])[remote]
    assert figures.views and figures.views > 0 and figures.likes and figures.comments
    assert figures.raw  # the platform's own figures are kept
    if p is BILIBILI:
        assert figures.favorites is not None and {"coin", "danmaku"} <= set(figures.raw)
    followers = channel.account_metrics()
    assert followers and followers["followers"] > 0
    assert "refresh token expires" in channel.verify()


@pytest.mark.parametrize("p", PLATFORMS)
def test_a_refusal_in_review_is_recorded_with_its_reason(
    sandbox: Sandbox, tmp_path: Path, p: Platform
) -> None:
    ready(sandbox, p, **{p.refuse: ["七步"]})
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    progress, _ = recorded()
    channel.publish(make_post(ctx), progress)
    sandbox.advance_clock(61)
    with pytest.raises(Permanent) as refused:
        channel.poll(delivery(progress, p.remote))
    assert progress[p.remote] in str(refused.value)
    if p is BILIBILI:
        assert "七步" in str(refused.value)  # the reject_reason


@pytest.mark.parametrize("mode", ["drop_after", "error_after", "hang_after"])
@pytest.mark.parametrize("p", PLATFORMS)
def test_a_lost_answer_to_the_creating_call_is_found_never_repeated(
    sandbox: Sandbox, tmp_path: Path, p: Platform, mode: str
) -> None:
    ready(sandbox, p)
    rule = {"route": p.route, "path": p.creating, "mode": mode, "count": 1, "seconds": 5}
    control(sandbox, "faults", [rule])
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url, timeout_seconds=1)
    post = make_post(ctx)
    progress, _ = recorded()
    since = ctx.now()
    with pytest.raises(OutcomeUnknown):
        channel.publish(post, progress)
    assert progress[p.sent] and p.remote not in progress
    # not listed yet: undecided, never absent
    found = channel.find(post, since, dict(progress))
    assert isinstance(found, Undecided) and found.look_at and found.checked
    sandbox.advance_clock(31)
    found = channel.find(post, since, dict(progress))
    assert isinstance(found, Published | Processing)
    [accepted] = ledger(sandbox, p)["accepted"]
    remote = found.remote_id if isinstance(found, Published) else found.progress[p.remote]
    assert remote == accepted["id"]
    assert ledger(sandbox, p)["duplicates"] == []


@pytest.mark.parametrize("p", PLATFORMS)
def test_absent_only_when_the_checkpoints_prove_it(
    sandbox: Sandbox, tmp_path: Path, p: Platform
) -> None:
    ready(sandbox, p)
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    post = make_post(ctx)
    assert channel.find(post, ctx.now(), {"idempotency_key": "k"}) is None  # nothing uploaded
    # the upload fails before the creating call: its mark is still null, so absent
    step = "part/upload" if p is BILIBILI else "api/upload"
    control(sandbox, "faults", [{"route": p.route, "path": step, "mode": "error_before"}])
    progress, _ = recorded()
    with pytest.raises(Transient):
        channel.publish(post, progress)
    assert progress[p.sent] is None
    assert channel.find(post, ctx.now(), dict(progress)) is None
    # the next attempt resumes with the same upload token and creates once
    token = progress["upload_token"]
    sandbox_request(sandbox.url("/_sandbox/faults"), None, "DELETE")
    assert isinstance(channel.publish(post, progress), Processing)
    assert progress["upload_token"] == token
    assert len(ledger(sandbox, p)["accepted"]) == 1


@pytest.mark.parametrize("p", PLATFORMS)
def test_refused_creating_call_before_applying_is_not_repeated_blindly(
    sandbox: Sandbox, tmp_path: Path, p: Platform
) -> None:
    """A 502 before applying looks like one after applying to the client: undecided."""
    ready(sandbox, p, **{p.list_delay: 0})
    control(sandbox, "faults", [{"route": p.route, "path": p.creating, "mode": "error_before"}])
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    post = make_post(ctx)
    progress, _ = recorded()
    with pytest.raises(OutcomeUnknown):
        channel.publish(post, progress)
    found = channel.find(post, ctx.now(), dict(progress))
    assert isinstance(found, Undecided)  # not listed because never applied, but unprovable
    assert ledger(sandbox, p)["accepted"] == []


@pytest.mark.parametrize("p", PLATFORMS)
def test_rate_limits_and_busy(sandbox: Sandbox, tmp_path: Path, p: Platform) -> None:
    ready(sandbox, p)
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    control(sandbox, "faults", [{"route": p.route, "mode": "rate_limit", "seconds": 7}])
    with pytest.raises(RateLimited) as limited:
        channel.verify()
    assert limited.value.retry_after == 7
    control(sandbox, "faults", [{"route": p.route, "path": p.creating, "mode": "busy"}])
    progress, _ = recorded()
    with pytest.raises(OutcomeUnknown):  # busy on the creating call: may exist
        channel.publish(make_post(ctx), progress)
    assert ledger(sandbox, p)["accepted"] == []


@pytest.mark.parametrize("p", PLATFORMS)
def test_expired_tokens_refresh_once_then_pause(
    sandbox: Sandbox, tmp_path: Path, p: Platform
) -> None:
    ready(sandbox, p)
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    control(sandbox, "expire", {"route": p.route, "what": "access"})
    progress, _ = recorded()
    assert isinstance(channel.publish(make_post(ctx), progress), Processing)
    stats = sandbox_request(sandbox.url(f"/_sandbox/stats?route={p.route}"))[p.route]
    assert stats["token_refreshes"] == 1
    stored = ctx.credentials.get(channel.name)
    assert stored is not None and stored.access_token != p.secrets["access_token"]
    # both expire: the account must authorise again; the channel pauses, nothing is lost
    control(sandbox, "expire", {"route": p.route, "what": "access"})
    control(sandbox, "expire", {"route": p.route, "what": "refresh"})
    with pytest.raises(AuthExpired) as paused:
        channel.metrics([delivery(progress, p.remote)])
    assert "authorise the application again" in str(paused.value)
    for secret in (p.secrets["access_token"], p.secrets["refresh_token"], stored.access_token):
        assert secret not in str(paused.value)


@pytest.mark.parametrize("p", PLATFORMS)
def test_unknown_credentials_are_refused(sandbox: Sandbox, tmp_path: Path, p: Platform) -> None:
    """Nothing registered: the sandbox adopts no credentials on first sight."""
    ctx = Context(tmp_path)
    with pytest.raises(AuthExpired):
        p.make(ctx, sandbox.base_url).verify()
    control(sandbox, "secrets", {p.route: p.secrets})
    assert "refresh token expires" in p.make(Context(tmp_path / "x"), sandbox.base_url).verify()


def test_bilibili_signature_and_permissions(sandbox: Sandbox, tmp_path: Path) -> None:
    ready(sandbox, BILIBILI, bilibili_app_scopes=["ARC_BASE"])
    ctx = Context(tmp_path)
    channel = bilibili(ctx, sandbox.base_url)
    # a request without a valid signature is refused (-3)
    answer = requests.get(
        sandbox.url("/arcopen/fn/archive/viewlist"),
        headers={"access-token": BILI["access_token"]},
        timeout=5,
    ).json()
    assert answer["code"] == -3
    # the application lacks DATA: figures are refused with a clear message
    with pytest.raises(AuthExpired) as lacking:
        channel.account_metrics()
    assert "DATA" in str(lacking.value)
    channel.verify()
    held = {p.name: p.held for p in channel.permissions()}
    assert held == {"ARC_BASE": True, "DATA": False}


def test_bilibili_content_rules(sandbox: Sandbox, tmp_path: Path) -> None:
    ctx = Context(tmp_path)
    channel = bilibili(ctx, sandbox.base_url)
    post = make_post(ctx, title="长" * 81, tags=[], summary="简" * 251)
    post = post.model_copy(update={"media": [m for m in post.media if m.kind == "video"]})
    fields = {(p.field, p.code) for p in channel.check(post)}
    assert {("title", "too_long"), ("summary", "too_long"), ("tags", "required")} <= fields
    assert ("cover", "required") in fields
    no_video = make_post(ctx)
    no_video = no_video.model_copy(
        update={"media": [m for m in no_video.media if m.kind != "video"]}
    )
    assert ("video", "required") in {(p.field, p.code) for p in channel.check(no_video)}
    with pytest.raises(ValueError, match="tid"):
        bilibili(ctx, sandbox.base_url, tid=None)
    with pytest.raises(ValueError, match="source"):
        bilibili(ctx, sandbox.base_url, copyright=2)


def test_kuaishou_uploads_large_videos_in_fragments(sandbox: Sandbox, tmp_path: Path) -> None:
    ready(sandbox, KUAISHOU)
    big = tmp_path / "big.mp4"
    big.write_bytes(VIDEO.read_bytes() + b"\0" * (2 * 1024 * 1024 + 512 * 1024))
    ctx = Context(tmp_path)
    from open_platforms import media

    post = make_post(ctx)
    post = post.model_copy(
        update={
            "media": [
                media(ctx, big, "video", "video/mp4"),
                *(m for m in post.media if m.kind == "cover"),
            ]
        }
    )
    channel = kuaishou(ctx, sandbox.base_url, chunk_size_mb=1)
    control(
        sandbox,
        "faults",
        [{"route": "kuaishou", "path": "upload/fragment", "mode": "error_after", "count": 1}],
    )
    progress, _ = recorded()
    with pytest.raises(Transient):  # the first fragment's answer is lost
        channel.publish(post, progress)
    assert isinstance(channel.publish(post, progress), Processing)
    assert progress["uploaded_fragments"] == [0, 1, 2]
    stats = sandbox_request(sandbox.url("/_sandbox/stats?route=kuaishou"))["kuaishou"]
    assert stats["fragments_received"] == 4  # fragment 0 twice, then 1 and 2
    assert len(ledger(sandbox, KUAISHOU)["accepted"]) == 1
    assert os.path.getsize(big) > 2 * 1024 * 1024


@pytest.mark.parametrize("p", PLATFORMS)
def test_retract_deletes_once_and_a_repeat_is_success(
    sandbox: Sandbox, tmp_path: Path, p: Platform
) -> None:
    ready(sandbox, p, **{p.review: 0})
    ctx = Context(tmp_path)
    channel = p.make(ctx, sandbox.base_url)
    post = make_post(ctx)
    progress, _ = recorded()
    channel.publish(post, progress)
    d = delivery(progress, p.remote)
    assert channel.find_retracted(d, dict(progress)) is None  # still there
    # the delete is applied and its answer lost: the lookup says it is gone
    control(
        sandbox, "faults", [{"route": p.route, "path": "delete", "mode": "drop_after", "count": 1}]
    )
    with pytest.raises(OutcomeUnknown):
        channel.retract(d, post, dict(progress))
    assert isinstance(channel.find_retracted(d, dict(progress)), Retracted)
    assert channel.retract(d, post, dict(progress)).how == "already_gone"
    deleted = ledger(sandbox, p)["deleted"]
    assert [e["id"] for e in deleted] == [progress[p.remote]]


def test_bilibili_refuses_what_the_submission_rules_refuse(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Unknown category, a second submission of one upload_token (a duplicate in the ledger),
    and a refresh token used twice (rotation voids the old one)."""
    ready(sandbox, BILIBILI)
    ctx = Context(tmp_path)
    channel = bilibili(ctx, sandbox.base_url, tid=9999)
    progress, _ = recorded()
    with pytest.raises(Permanent, match="分区"):
        channel.publish(make_post(ctx), progress)
    good = bilibili(ctx, sandbox.base_url)
    token = progress["upload_token"]
    body = {"title": "t", "cover": progress["cover_url"], "tid": 201, "tag": "a", "copyright": 1}
    assert good.call("POST", "submit", what="x", params={"upload_token": token}, json_body=body)
    with pytest.raises(Permanent, match="21012"):
        good.call("POST", "submit", what="x", params={"upload_token": token}, json_body=body)
    assert len(ledger(sandbox, BILIBILI)["duplicates"]) == 1
    refresh = {
        "client_id": BILI["client_id"],
        "client_secret": BILI["client_secret"],
        "grant_type": "refresh_token",
        "refresh_token": BILI["refresh_token"],
    }
    url = sandbox.url("/x/account-oauth2/v1/refresh_token")
    assert requests.post(url, params=refresh, timeout=5).json()["code"] == 0
    assert requests.post(url, params=refresh, timeout=5).json()["code"] == -101


def test_kuaishou_refuses_publishing_before_the_upload_and_twice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ready(sandbox, KUAISHOU)
    auth = {"app_id": KS["app_id"], "access_token": KS["access_token"]}
    start = requests.post(sandbox.url("/openapi/photo/start_upload"), params=auth, timeout=5).json()
    assert start["result"] == 1 and start["endpoint"]
    publish = sandbox.url("/openapi/photo/publish")
    params = {**auth, "upload_token": start["upload_token"]}
    cover = {"cover": ("c.png", COVER.read_bytes(), "image/png")}
    early = requests.post(publish, params=params, data={"caption": "c"}, files=cover, timeout=5)
    assert early.json()["result"] == 10000200  # nothing uploaded yet
    upload = f"http://{start['endpoint']}/api/upload"
    answer = requests.post(
        upload, params={"upload_token": start["upload_token"]}, data=VIDEO.read_bytes(), timeout=5
    ).json()
    assert answer["result"] == 1
    first = requests.post(publish, params=params, data={"caption": "c"}, files=cover, timeout=5)
    assert first.json()["video_info"]["pending"] is True
    again = requests.post(publish, params=params, data={"caption": "c"}, files=cover, timeout=5)
    assert again.json()["result"] == 10000200
    assert len(ledger(sandbox, KUAISHOU)["duplicates"]) == 1
    # the refreshed refresh token keeps the old one's expiry; the old one stops working
    form = {
        **{"app_id": KS["app_id"], "app_secret": KS["app_secret"]},
        "grant_type": "refresh_token",
    }
    url = sandbox.url("/oauth2/refresh_token")
    one = requests.get(url, params={**form, "refresh_token": KS["refresh_token"]}, timeout=5).json()
    sandbox.advance_clock(3600)
    two = requests.get(
        url, params={**form, "refresh_token": one["refresh_token"]}, timeout=5
    ).json()
    assert two["refresh_token_expires_in"] <= one["refresh_token_expires_in"] - 3600 + 1
    old = requests.get(url, params={**form, "refresh_token": KS["refresh_token"]}, timeout=5).json()
    assert old["result"] == 100200101
    wrong = requests.get(
        url, params={**form, "app_secret": "nope", "refresh_token": "x"}, timeout=5
    )
    assert wrong.json()["result"] == 100200104
