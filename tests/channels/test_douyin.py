"""Douyin videos against `responses` fakes: tokens, upload, create, lookup, figures, check.

The bodies under tests/fixtures/douyin/ follow the documented shapes (docs/platforms.md §4.1-§4.4):
``{"data": {..., "error_code", "description"}, "extra": {...}}``, the oauth
``{"data": {...}, "message": ...}`` and the newer ``{"err_no", "err_msg", "log_id"}``.
Tokens live in a real CredentialStore on a temporary SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import open_platforms
import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from kepubot.channels import douyin
from kepubot.channels.base import HttpChannel, Progress, Published, Token, Undecided
from kepubot.channels.douyin import ERRORS, PATHS, DouyinChannel
from kepubot.channels.douyin.api import CapabilityOffline
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Delivery, Media, Post

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLE_VIDEO = FIXTURES / "samples" / "media" / "short-video.mp4"
NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
NAME = "douyin-main"
BASE = "https://open.douyin.com"
URL = {route: f"{BASE}/{path}" for route, path in PATHS.items()}
OPEN_ID = "open-id-1"
CLIENT_KEY = "awkey"

CLIENT_SECRET = "client-secret-SECRET-0001"
ACCESS = "act.configured-SECRET-0002"
REFRESH = "rft.configured-SECRET-0003"
NEW_ACCESS = "act.reauthorized-SECRET-0004"
NEW_REFRESH = "rft.reauthorized-SECRET-0005"
REFRESHED = "act.refreshed-SECRET-aaaa"  # refresh_ok.json
ROTATED = "rft.rotated-SECRET-bbbb"  # refresh_ok.json
SECRETS = (CLIENT_SECRET, ACCESS, REFRESH, NEW_ACCESS, NEW_REFRESH, REFRESHED, ROTATED)

TITLE = "勤洗手：七步洗手法的科学依据"
TEXT = f"{TITLE} #个人防护 #洗手"
VIDEO_SHA = hashlib.sha256(SAMPLE_VIDEO.read_bytes()).hexdigest()
VIDEO_SIZE = SAMPLE_VIDEO.stat().st_size
UPLOADED = "v0200fg10000cp1example0001"  # upload_ok.json
COMPLETED = "v0200fg10000cp1example0002"  # part_complete_ok.json
ITEM = "@9VwKzuuES8gmaXS7ZohqTs3yPGDsNP72BP1zpwKlLlcSa/Ny60zdQdf7x4kPMd8p"  # create_ok.json


def fx(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "douyin" / f"{name}.json").read_text(encoding="utf-8"))


class Context(open_platforms.Context):
    """The shared test context (a real CredentialStore on a temporary SQLite file) at NOW."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, NOW)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_DY_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("KP_DY_TOKEN", ACCESS)
    monkeypatch.setenv("KP_DY_REFRESH", REFRESH)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(tmp_path)


def channel(ctx: Context, **changes: Any) -> DouyinChannel:
    settings = DouyinChannel.Settings.model_validate(
        {
            "type": "douyin",
            "client_key": CLIENT_KEY,
            "client_secret": "${KP_DY_SECRET}",
            "open_id": OPEN_ID,
            "access_token": "${KP_DY_TOKEN}",
            "refresh_token": "${KP_DY_REFRESH}",
            **changes,
        }
    )
    return DouyinChannel(NAME, settings, ctx)


def video_media(ctx: Context, source: Path = SAMPLE_VIDEO) -> Media:
    return open_platforms.media(ctx, source, "video", "video/mp4")


def make_post(ctx: Context, **changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 7,
        "title": TITLE,
        "body": "用流动水和肥皂洗手，揉搓时间不少于20秒。",
        "tags": ["个人防护", "#洗手"],
        "media": [video_media(ctx)],
        "author": "zhang",
    }
    fields.update(changes)
    return Post(**fields)


def recorded() -> tuple[Progress, list[dict[str, Any]]]:
    saves: list[dict[str, Any]] = []
    return Progress({"idempotency_key": "kepubot-1-7"}, on_save=saves.append), saves


def calls_to(fake: responses.RequestsMock, route: str) -> list[Any]:
    return [c.request for c in fake.calls if urlsplit(c.request.url).path == f"/{PATHS[route]}"]


def query(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def sent_token(request: Any) -> str:
    """The access token a request carried: header on /api/ paths, query on the older ones."""
    header = request.headers.get("access-token")
    return header if header is not None else query(request)["access_token"][0]


def assert_no_secret(error: BaseException) -> None:
    printed = str(error) + "".join(traceback.format_exception(error))
    for secret in SECRETS:
        assert secret not in printed


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused (with a token in the URL, as a
    platform redirect or a wrong api_base could put one there)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    url = f"/api/douyin/v1/video/video_list/?open_id={OPEN_ID}&access_token={ACCESS}"
    return requests.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]


def sent() -> dict[str, Any]:
    """The progress of a delivery whose create_video was sent and never answered."""
    return {"video_id": UPLOADED, "video_sha256": VIDEO_SHA, "create_sent_at": NOW.isoformat()}


def stored(ctx: Context) -> Token:
    token = ctx.credentials.get(NAME)
    assert token is not None
    return token


def seed(ctx: Context, **token: Any) -> None:
    """Let the channel adopt the configured tokens, then make the stored ones look like
    ``token`` (as if refreshed earlier)."""
    channel(ctx).token()
    if token:
        ctx.credentials.put(NAME, Token(**token))


# --- the platform's table ------------------------------------------------------------------------


def test_every_error_row_has_a_fixture_of_the_documented_shape() -> None:
    kinds = {
        "auth",
        "refresh_expired",
        "denied",
        "scope",
        "offline",
        "rate_limited",
        "busy",
        "transient",
        "permanent",
    }
    assert set(ERRORS.values()) <= kinds
    for code in ERRORS:
        body = fx(f"error_{code}")
        carried = {body.get("err_no"), body["data"].get("error_code")}
        carried.add(body.get("extra", {}).get("error_code"))
        assert code in carried


@dataclass
class Case:
    name: str
    fake: dict[str, Any]  # keyword arguments of responses.add
    expect: type[ChannelError]
    attrs: dict[str, Any] = field(default_factory=dict)
    says: str = ""


EXPECTED_ON_CREATE = {
    "auth": AuthExpired,  # after one refresh and one repeated create
    "refresh_expired": AuthExpired,
    "denied": AuthExpired,
    "scope": AuthExpired,
    "offline": CapabilityOffline,
    "rate_limited": RateLimited,
    "busy": OutcomeUnknown,  # create may have gone through
    "transient": OutcomeUnknown,  # "network call error, retry": it may have gone through
    "permanent": Permanent,
}


@pytest.mark.parametrize(("code", "kind"), sorted(ERRORS.items()), ids=lambda v: str(v))
def test_every_error_code_on_create(ctx: Context, code: int, kind: str) -> None:
    seed(ctx)
    progress = {"video_id": UPLOADED, "video_sha256": VIDEO_SHA}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["create"], json=fx(f"error_{code}"))
        if kind == "auth":
            fake.add(responses.POST, URL["refresh"], json=fx("refresh_ok"))
            fake.add(responses.POST, URL["create"], json=fx(f"error_{code}"))
        with pytest.raises(ChannelError) as info:
            channel(ctx).publish(make_post(ctx), progress)
        creates = calls_to(fake, "create")
        assert len(creates) == (2 if kind == "auth" else 1)
        assert len(calls_to(fake, "refresh")) == (1 if kind == "auth" else 0)
    error = info.value
    assert type(error) is EXPECTED_ON_CREATE[kind], f"{code}: {type(error).__name__}: {error}"
    assert error.code == code
    assert str(code) in str(error)
    if kind == "rate_limited":
        assert isinstance(error, RateLimited) and error.retry_after == douyin.RATE_LIMIT_RETRY_AFTER
    if kind in ("auth", "refresh_expired"):
        assert "authorize the app again" in str(error)
    assert_no_secret(error)
    assert "item_id" not in progress


def create_cases() -> list[Case]:
    def body(name: str) -> dict[str, Any]:
        return {"json": fx(name)}

    return [
        Case(
            "video_id already used: an earlier create went through",
            body("error_video_id_used"),
            OutcomeUnknown,
            {"code": 2100005},
            "already used",
        ),
        Case("unlisted code", body("error_unlisted"), Permanent, {"code": 9990001}),
        Case(
            "description echoing the token",
            {"json": {"data": {"error_code": 2100005, "description": f"bad token {ACCESS}"}}},
            Permanent,
            {"code": 2100005},
            "bad token ***",
        ),
        Case("busy, in extra only", body("error_extra_only"), OutcomeUnknown, {"code": 2100004}),
        Case(
            "success without item_id",
            {"json": {"data": {"error_code": 0, "description": ""}, "extra": {}}},
            OutcomeUnknown,
        ),
        Case("200 not JSON", {"body": "<html>ok</html>"}, OutcomeUnknown, {"code": 200}),
        Case("404 not JSON", {"status": 404, "body": "not found"}, Permanent, {"code": 404}),
        Case("500", {"status": 500, "body": ""}, OutcomeUnknown, {"code": 500}),
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


@pytest.mark.parametrize("case", create_cases(), ids=lambda c: c.name)
def test_create_answers(ctx: Context, case: Case) -> None:
    seed(ctx)
    progress = {"video_id": UPLOADED, "video_sha256": VIDEO_SHA}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["create"], **case.fake)
        with pytest.raises(ChannelError) as info:
            channel(ctx).publish(make_post(ctx), progress)
        assert len(fake.calls) == 1  # create is never repeated by the client
    error = info.value
    assert type(error) is case.expect, f"{case.name}: {type(error).__name__}: {error}"
    for name, value in case.attrs.items():
        assert getattr(error, name) == value, f"{case.name}: {name}"
    assert case.says in str(error)
    assert_no_secret(error)
    assert progress["video_id"] == UPLOADED  # kept: a re-run proves or disproves the create


def upload_cases() -> list[Case]:
    return [
        Case("busy", {"json": fx("error_2100004")}, Transient, {"code": 2100004}),
        Case("invalid parameter", {"json": fx("error_2100005")}, Permanent, {"code": 2100005}),
        Case("rate limited", {"json": fx("error_2118110")}, RateLimited, {"code": 2118110}),
        Case("success without video_id", {"json": fx("part_upload_ok")}, Transient),
        # An upload publishes nothing: an unknown outcome leaves at most an unused video_id.
        Case("read timeout", {"body": requests.exceptions.ReadTimeout()}, Transient),
        Case("500", {"status": 500, "body": ""}, Transient, {"code": 500}),
    ]


@pytest.mark.parametrize("case", upload_cases(), ids=lambda c: c.name)
def test_upload_answers(ctx: Context, case: Case) -> None:
    seed(ctx)
    progress, saves = recorded()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["upload"], **case.fake)
        with pytest.raises(ChannelError) as info:
            channel(ctx).publish(make_post(ctx), progress)
        assert not calls_to(fake, "create")
    assert type(info.value) is case.expect, f"{case.name}: {info.value}"
    for name, value in case.attrs.items():
        assert getattr(info.value, name) == value
    assert "video_id" not in progress and saves == []
    assert_no_secret(info.value)


# --- publishing ------------------------------------------------------------------------------------


def test_small_video_is_uploaded_then_created(ctx: Context) -> None:
    seed(ctx)
    progress, saves = recorded()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["upload"], json=fx("upload_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        result = channel(ctx).publish(make_post(ctx), progress)
        (upload,) = calls_to(fake, "upload")
        (create,) = calls_to(fake, "create")
    assert result == Published(ITEM, None, NOW)

    # the current upload path: open_id in the query, the token in the access-token header
    assert query(upload) == {"open_id": [OPEN_ID]}
    assert upload.headers["access-token"] == ACCESS
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="video"; filename="' in upload.body
    assert SAMPLE_VIDEO.read_bytes() in upload.body

    assert query(create) == {"open_id": [OPEN_ID]}
    assert create.headers["access-token"] == ACCESS
    assert json.loads(create.body) == {"video_id": UPLOADED, "text": TEXT, "cover_tsp": 0.0}

    # the video_id is checkpointed before create is called, the item_id after
    assert saves[0]["video_id"] == UPLOADED and "item_id" not in saves[0]
    assert saves[0]["video_sha256"] == VIDEO_SHA
    assert saves[-1]["item_id"] == ITEM
    assert progress["item_id"] == ITEM


def test_create_is_never_called_twice_for_one_delivery(ctx: Context) -> None:
    progress = {"video_id": UPLOADED, "item_id": ITEM, "created_at": NOW.isoformat()}
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        assert channel(ctx).publish(make_post(ctx), progress) == Published(ITEM, None, NOW)


def test_resume_with_a_video_id_skips_the_upload(ctx: Context) -> None:
    seed(ctx)
    progress, saves = recorded()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["upload"], json=fx("upload_ok"))
        fake.add(responses.POST, URL["create"], body=requests.ConnectionError("reset"))
        with pytest.raises(OutcomeUnknown):
            channel(ctx).publish(make_post(ctx), progress)
    # the daemon crashed or reconciled: a new run starts from the saved checkpoint
    resumed = Progress(saves[-1])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        assert channel(ctx).publish(make_post(ctx), resumed).remote_id == ITEM
        assert not calls_to(fake, "upload")
        assert json.loads(calls_to(fake, "create")[0].body)["video_id"] == UPLOADED


def test_a_changed_video_is_uploaded_again(ctx: Context, tmp_path: Path) -> None:
    seed(ctx)
    other = tmp_path / "other.mp4"
    other.write_bytes(SAMPLE_VIDEO.read_bytes() + b"\0edited")
    post = make_post(ctx, media=[video_media(ctx, other)])
    progress = {"video_id": "v-of-the-old-video", "video_sha256": VIDEO_SHA}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["upload"], json=fx("upload_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        channel(ctx).publish(post, progress)
        assert json.loads(calls_to(fake, "create")[0].body)["video_id"] == UPLOADED


def test_missing_video_file_is_permanent(ctx: Context) -> None:
    seed(ctx)
    post = make_post(ctx)
    Path(ctx.media_file(post.media[0].path)).unlink()
    with responses.RequestsMock(assert_all_requests_are_fired=True), pytest.raises(Permanent):
        channel(ctx).publish(post, {})


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """chunk_size_mb=5 with 2 KiB "megabytes": 10 KiB parts, so the sample has 3 parts."""
    monkeypatch.setattr(douyin.channel, "CHUNK_UNIT", 2048)  # the module that reads it
    return 5 * 2048


def test_big_video_is_uploaded_in_parts(ctx: Context, small_chunks: int) -> None:
    seed(ctx)
    progress, saves = recorded()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["part_init"], json=fx("part_init_ok"))
        fake.add(responses.POST, URL["part_upload"], json=fx("part_upload_ok"))
        fake.add(responses.POST, URL["part_complete"], json=fx("part_complete_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        channel(ctx, chunk_size_mb=5).publish(make_post(ctx), progress)
        (init,) = calls_to(fake, "part_init")
        parts = calls_to(fake, "part_upload")
        (complete,) = calls_to(fake, "part_complete")
        (create,) = calls_to(fake, "create")
        assert not calls_to(fake, "upload")

    # the current paths: open_id (and upload_id, part_number) in the query, the token in the
    # access-token header, never in the query
    for request in (init, *parts, complete, create):
        assert urlsplit(request.url).path.startswith("/api/douyin/v1/video/")
        assert request.headers["access-token"] == ACCESS
        assert "access_token" not in query(request)
    assert query(init) == {"open_id": [OPEN_ID]}
    content = SAMPLE_VIDEO.read_bytes()
    assert len(parts) == 3
    for number, part in enumerate(parts, start=1):
        assert query(part) == {
            "open_id": [OPEN_ID],
            "upload_id": ["upload-id-0001@example"],
            "part_number": [str(number)],
        }
        chunk = content[(number - 1) * small_chunks : number * small_chunks]
        assert chunk in part.body and b'name="video"' in part.body
    assert query(complete)["upload_id"] == ["upload-id-0001@example"]
    assert json.loads(create.body)["video_id"] == COMPLETED

    # upload_id and the parts are checkpointed as they go
    assert saves[0]["upload_id"] == "upload-id-0001@example"
    assert saves[0]["uploaded_parts"] == []
    assert [s["uploaded_parts"] for s in saves[1:4]] == [[1], [1, 2], [1, 2, 3]]
    assert saves[4]["video_id"] == COMPLETED and "upload_id" not in saves[4]
    assert saves[4]["create_sent_at"] is None  # uploaded; create not yet sent
    assert saves[5]["create_sent_at"] == NOW.isoformat() and "item_id" not in saves[5]


def test_a_chunked_upload_resumes_after_the_last_part_sent(ctx: Context, small_chunks: int) -> None:
    seed(ctx)
    progress, saves = recorded()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["part_init"], json=fx("part_init_ok"))
        fake.add(responses.POST, URL["part_upload"], json=fx("part_upload_ok"))
        fake.add(responses.POST, URL["part_upload"], body=requests.exceptions.ReadTimeout())
        with pytest.raises(Transient):
            channel(ctx, chunk_size_mb=5).publish(make_post(ctx), progress)
    assert saves[-1]["uploaded_parts"] == [1]

    ctx.clock = NOW + timedelta(minutes=30)  # the upload_id is still valid
    resumed = Progress(saves[-1])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["part_upload"], json=fx("part_upload_ok"))
        fake.add(responses.POST, URL["part_complete"], json=fx("part_complete_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        channel(ctx, chunk_size_mb=5).publish(make_post(ctx), resumed)
        assert not calls_to(fake, "part_init")
        assert [query(p)["part_number"] for p in calls_to(fake, "part_upload")] == [["2"], ["3"]]


def test_an_expired_upload_id_starts_a_new_upload(ctx: Context, small_chunks: int) -> None:
    seed(ctx)
    progress = {
        "upload_id": "upload-id-from-yesterday",
        "upload_started_at": (NOW - timedelta(hours=3)).isoformat(),
        "uploaded_parts": [1, 2],
        "video_sha256": VIDEO_SHA,
    }
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["part_init"], json=fx("part_init_ok"))
        fake.add(responses.POST, URL["part_upload"], json=fx("part_upload_ok"))
        fake.add(responses.POST, URL["part_complete"], json=fx("part_complete_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        channel(ctx, chunk_size_mb=5).publish(make_post(ctx), progress)
        assert len(calls_to(fake, "part_upload")) == 3


# --- tokens ----------------------------------------------------------------------------------------


def test_configured_tokens_are_stored_with_a_fingerprint_not_the_secret(ctx: Context) -> None:
    token = channel(ctx).token()
    assert (token.access_token, token.refresh_token) == (ACCESS, REFRESH)
    assert stored(ctx).refresh_expires_at == NOW + timedelta(days=30)  # an upper bound
    source = ctx.credentials.get(f"{NAME}:source")
    assert source is not None and source.refresh_token is None
    assert source.access_token == channel(ctx).source_fingerprint()
    dump = "\n".join(sqlite3.connect(ctx.db).iterdump())
    assert REFRESH in dump  # the token itself, in its row
    assert dump.count(REFRESH) == 1 and CLIENT_SECRET not in dump


def test_expired_token_is_refreshed_and_the_call_repeated_once(ctx: Context) -> None:
    seed(ctx)
    progress = {"video_id": UPLOADED, "video_sha256": VIDEO_SHA}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["create"], json=fx("error_2190008"))
        fake.add(responses.POST, URL["refresh"], json=fx("refresh_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        assert channel(ctx).publish(make_post(ctx), progress).remote_id == ITEM
        first, second = calls_to(fake, "create")
        (refresh,) = calls_to(fake, "refresh")
    assert (sent_token(first), sent_token(second)) == (ACCESS, REFRESHED)
    assert refresh.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(refresh.body) == {
        "client_key": [CLIENT_KEY],
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
    }
    token = stored(ctx)
    assert (token.access_token, token.refresh_token) == (REFRESHED, ROTATED)
    assert token.expires_at == NOW + timedelta(seconds=1296000)
    assert token.refresh_expires_at == NOW + timedelta(seconds=2592000)


def test_token_is_refreshed_before_it_expires(ctx: Context) -> None:
    seed(ctx, access_token="act.old", refresh_token=REFRESH, expires_at=NOW + timedelta(minutes=10))
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["refresh"], json=fx("refresh_ok"))
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).find(make_post(ctx), NOW, sent())
        assert [urlsplit(c.request.url).path for c in fake.calls] == [
            "/oauth/refresh_token/",
            "/api/douyin/v1/video/video_list/",
        ]
        assert sent_token(fake.calls[1].request) == REFRESHED


def test_the_rotated_refresh_token_is_used_and_never_blanked(ctx: Context) -> None:
    seed(ctx, access_token="act.old", refresh_token=ROTATED, expires_at=NOW - timedelta(hours=1))
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["refresh"], json=fx("refresh_ok_empty_refresh_token"))
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).find(make_post(ctx), NOW, sent())
        (refresh,) = calls_to(fake, "refresh")
    assert parse_qs(refresh.body)["refresh_token"] == [ROTATED]
    token = stored(ctx)
    assert token.access_token == "act.refreshed-SECRET-cccc"
    assert token.refresh_token == ROTATED  # the empty one in the answer did not replace it
    assert token.refresh_expires_at == NOW + timedelta(days=30)  # kept as well


def refresh_failure_cases() -> list[Case]:
    return [
        Case(
            "10010 refresh token expired",
            {"json": fx("error_10010")},
            AuthExpired,
            {"code": 10010},
            "authorize the app again",
        ),
        Case(
            "refresh expiry said in words",
            {"json": fx("error_refresh_expired_text")},
            AuthExpired,
            {"code": 2190002},
            "authorize the app again",
        ),
        Case(
            "10020 refresh limit",
            {"json": fx("error_10020")},
            AuthExpired,
            {"code": 10020},
            "authorize the app again",
        ),
        Case(
            "10013 wrong client key",
            {"json": fx("error_10013")},
            AuthExpired,
            {"code": 10013},
            "client_secret",
        ),
        Case("10002 parameter error", {"json": fx("error_10002")}, AuthExpired, {"code": 10002}),
        Case("busy", {"json": fx("error_2100004")}, Transient, {"code": 2100004}),
        Case("rate limited", {"json": fx("error_2118110")}, RateLimited, {"code": 2118110}),
        Case("read timeout", {"body": requests.exceptions.ReadTimeout()}, Transient),
        Case("500", {"status": 500, "body": ""}, Transient, {"code": 500}),
        Case("not JSON", {"body": "<html>"}, Transient),
        Case("success without access_token", {"json": {"data": {"error_code": 0}}}, Transient),
    ]


@pytest.mark.parametrize("case", refresh_failure_cases(), ids=lambda c: c.name)
def test_refresh_failures(ctx: Context, case: Case) -> None:
    seed(ctx, access_token="act.old", refresh_token=ROTATED, expires_at=NOW - timedelta(hours=1))
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["refresh"], **case.fake)
        with pytest.raises(ChannelError) as info:
            channel(ctx).publish(make_post(ctx), {"video_id": UPLOADED, "video_sha256": VIDEO_SHA})
        assert len(fake.calls) == 1  # nothing else was called
    error = info.value
    assert type(error) is case.expect, f"{case.name}: {type(error).__name__}: {error}"
    for name, value in case.attrs.items():
        assert getattr(error, name) == value
    assert case.says in str(error)
    assert_no_secret(error)
    token = stored(ctx)
    assert (token.access_token, token.refresh_token) == ("act.old", ROTATED)  # untouched


def test_refresh_token_expired_on_a_call_asks_for_authorization(ctx: Context) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["create"], json=fx("error_2190008"))
        fake.add(responses.POST, URL["refresh"], json=fx("error_10010"))
        with pytest.raises(AuthExpired) as info:
            channel(ctx).publish(make_post(ctx), {"video_id": UPLOADED, "video_sha256": VIDEO_SHA})
        assert len(calls_to(fake, "create")) == 1
    assert "authorize the app again" in str(info.value)
    assert f"[channels.{NAME}]" in str(info.value)


def test_a_known_expired_refresh_token_is_not_sent(ctx: Context) -> None:
    seed(
        ctx,
        access_token="act.old",
        refresh_token=ROTATED,
        expires_at=NOW - timedelta(hours=1),
        refresh_expires_at=NOW - timedelta(days=1),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True), pytest.raises(AuthExpired):
        channel(ctx).find(make_post(ctx), NOW, sent())


def test_reauthorized_configured_tokens_win_over_stored_ones(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ctx, access_token=REFRESHED, refresh_token=ROTATED, expires_at=NOW + timedelta(days=9))
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).find(make_post(ctx), NOW, sent())
        assert sent_token(fake.calls[0].request) == REFRESHED  # the stored one while unchanged

    # The account authorized again; the operator configured the new tokens.
    monkeypatch.setenv("KP_DY_TOKEN", NEW_ACCESS)
    monkeypatch.setenv("KP_DY_REFRESH", NEW_REFRESH)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("error_2190008"))
        fake.add(responses.POST, URL["refresh"], json=fx("refresh_ok"))
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).find(make_post(ctx), NOW, sent())
        assert sent_token(fake.calls[0].request) == NEW_ACCESS
        assert parse_qs(fake.calls[1].request.body)["refresh_token"] == [NEW_REFRESH]
    token = stored(ctx)
    assert (token.access_token, token.refresh_token) == (REFRESHED, ROTATED)

    # Same configuration again: the stored (refreshed) tokens stay in use.
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).find(make_post(ctx), NOW, sent())
        assert sent_token(fake.calls[0].request) == REFRESHED
    dump = "\n".join(sqlite3.connect(ctx.db).iterdump())
    assert NEW_ACCESS not in dump and NEW_REFRESH not in dump  # superseded, not kept aside


def test_reauthorization_replaces_a_known_refresh_expiry(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(
        ctx,
        access_token="act.old",
        refresh_token=ROTATED,
        expires_at=NOW - timedelta(hours=1),
        refresh_expires_at=NOW - timedelta(days=1),
    )
    monkeypatch.setenv("KP_DY_TOKEN", NEW_ACCESS)
    monkeypatch.setenv("KP_DY_REFRESH", NEW_REFRESH)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).find(make_post(ctx), NOW, sent())
        assert sent_token(fake.calls[0].request) == NEW_ACCESS
    assert stored(ctx).refresh_expires_at == NOW + timedelta(days=30)


def test_one_refresh_for_several_daemons(tmp_path: Path) -> None:
    first = Context(tmp_path)
    seed(
        first, access_token="act.old", refresh_token=REFRESH, expires_at=NOW + timedelta(minutes=5)
    )
    contexts = [first, *(Context(tmp_path) for _ in range(3))]  # one store (owner) each

    def slow_refresh(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.2)  # everyone else must wait for this one, not refresh as well
        return 200, {}, json.dumps(fx("refresh_ok"))

    tokens: list[str] = []
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add_callback(responses.POST, URL["refresh"], callback=slow_refresh)
        threads = [
            threading.Thread(target=lambda c=c: tokens.append(channel(c).token().access_token))
            for c in contexts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(fake.calls) == 1
    assert tokens == [REFRESHED] * 4


# --- lookup ----------------------------------------------------------------------------------------


def test_find_pages_through_the_list_and_matches_the_text(ctx: Context) -> None:
    seed(ctx)
    progress = sent()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_page1"))
        fake.add(responses.GET, URL["list"], json=fx("list_page2"))
        found = channel(ctx).find(make_post(ctx), NOW - timedelta(minutes=1), progress)
        first, second = (c.request for c in fake.calls)
    assert found == Published(
        "@item-ours",
        "https://www.iesdouyin.com/share/video/2/",
        datetime.fromtimestamp(1714552500, UTC),
    )
    assert first.headers["access-token"] == ACCESS
    assert query(first) == {
        "open_id": [OPEN_ID],
        "cursor": ["0"],
        "count": [str(douyin.LIST_PAGE_SIZE)],
    }
    assert query(second)["cursor"] == ["1714550000000"]


def test_find_also_matches_a_title_shown_without_topics(ctx: Context) -> None:
    seed(ctx)
    page = fx("list_page2")
    page["data"]["list"][0]["title"] = TITLE
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=page)
        found = channel(ctx).find(make_post(ctx), NOW, sent())
    assert found is not None and found.remote_id == "@item-ours"


@pytest.mark.parametrize(
    ("title", "since"),
    [
        ("另一个标题", NOW - timedelta(minutes=1)),  # no such text
        (TITLE, NOW + timedelta(minutes=11)),  # ours is older than the attempt (+ slack)
    ],
)
def test_a_sent_create_not_in_the_list_is_undecided_never_absent(
    ctx: Context, title: str, since: datetime
) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_page1"))
        fake.add(responses.GET, URL["list"], json=fx("list_page2"))
        # list_page2 reaches videos older than `since`, so the lookup stops there
        found = channel(ctx).find(make_post(ctx, title=title), since, sent())
        assert len(fake.calls) == 2
    assert isinstance(found, Undecided), found
    assert UPLOADED in found.reason and "not in the account's video_list" in found.reason
    assert any("video_list: 2 page(s)" in line for line in found.checked)
    assert "creator.douyin.com" in found.look_at and title in found.look_at


def test_find_on_an_empty_account_is_undecided(ctx: Context) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        assert isinstance(channel(ctx).find(make_post(ctx), NOW, sent()), Undecided)


@pytest.mark.parametrize(
    "progress",
    [
        {},  # nothing uploaded: create_video cannot have been sent without a video_id
        {"upload_id": "u-1", "uploaded_parts": [1], "upload_started_at": NOW.isoformat()},
        # uploaded and checkpointed, create never sent with it
        {"video_id": UPLOADED, "video_sha256": VIDEO_SHA, "create_sent_at": None},
    ],
    ids=["nothing", "upload in parts", "uploaded"],
)
def test_absent_only_when_the_checkpoints_prove_create_was_never_sent(
    ctx: Context, progress: dict[str, Any]
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        assert channel(ctx).find(make_post(ctx), NOW, progress) is None
        assert not fake.calls  # our own checkpoints are the proof; nothing to ask


def test_a_video_id_without_the_create_mark_is_not_proof(ctx: Context) -> None:
    """Progress saved by an older version (no create_sent_at key): create may have been sent."""
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        found = channel(ctx).find(make_post(ctx), NOW, {"video_id": UPLOADED})
    assert isinstance(found, Undecided)


def test_find_matches_the_uploaded_video_id(ctx: Context) -> None:
    seed(ctx)
    page = fx("list_page1")
    page["data"]["has_more"] = False
    page["data"]["list"][0].update(video_id=UPLOADED, title="平台改写了标题", create_time=1)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=page)
        found = channel(ctx).find(make_post(ctx), NOW, sent())
    assert isinstance(found, Published) and found.remote_id == "@item-newest"


def test_video_list_offline_falls_back_and_says_so(ctx: Context) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("error_28001056"))
        found = channel(ctx).find(make_post(ctx), NOW, sent())
    assert isinstance(found, Undecided)
    assert "28001056" in found.reason and "offline" in found.reason
    assert "video_list: 28001056 (offline)" in found.checked
    # the proofs that need no list still work: a checkpointed item_id, an unsent create
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        assert channel(ctx).find(make_post(ctx), NOW, {**sent(), "item_id": ITEM}) is not None
        assert channel(ctx).find(make_post(ctx), NOW, {**sent(), "create_sent_at": None}) is None


def test_a_list_too_long_to_read_is_undecided(ctx: Context) -> None:
    seed(ctx)
    page = fx("list_page1")
    page["data"]["list"][0]["create_time"] = int(NOW.timestamp()) + 60  # newer than `since`
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.add(responses.GET, URL["list"], json=page)
        found = channel(ctx).find(make_post(ctx), NOW, sent())
        assert len(fake.calls) == douyin.channel.FIND_MAX_PAGES
    assert isinstance(found, Undecided) and "not read" in found.reason


def test_find_knows_its_own_item_id(ctx: Context) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        found = channel(ctx).find(make_post(ctx), NOW, {"item_id": ITEM})
    assert found is not None and found.remote_id == ITEM


@pytest.mark.parametrize(
    ("fake", "expect"),
    [
        ({"json": fx("error_2100004")}, Transient),
        ({"json": fx("error_28001006")}, Transient),
        ({"json": fx("error_2118110")}, RateLimited),
        ({"json": fx("error_28003018")}, RateLimited),
        ({"json": fx("error_10010")}, AuthExpired),
        ({"status": 500, "body": ""}, Transient),
        ({"body": requests.exceptions.ReadTimeout()}, Transient),
    ],
    ids=[
        "busy",
        "network error",
        "rate limited",
        "too frequent",
        "refresh expired",
        "500",
        "read timeout",
    ],
)
def test_find_failures(ctx: Context, fake: dict[str, Any], expect: type[ChannelError]) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, URL["list"], **fake)
        with pytest.raises(ChannelError) as info:
            channel(ctx).find(make_post(ctx), NOW, sent())
    assert type(info.value) is expect
    assert_no_secret(info.value)


# --- figures ---------------------------------------------------------------------------------------


def delivery(number: int, remote_id: str | None) -> Delivery:
    return Delivery(
        id=number,
        post_id=number,
        channel=NAME,
        state="published",
        due_at=NOW,
        not_before=NOW,
        remote_id=remote_id,
        published_at=NOW,
    )


def test_metrics_maps_video_data(ctx: Context) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["data"], json=fx("data_ok"))
        figures = channel(ctx).metrics([delivery(1, "@item-1"), delivery(2, "@item-2")])
        (request,) = (c.request for c in fake.calls)
    assert query(request) == {"open_id": [OPEN_ID]}
    assert request.headers["access-token"] == ACCESS
    assert json.loads(request.body) == {"item_ids": ["@item-1", "@item-2"]}
    first = figures["@item-1"]
    assert (first.views, first.likes, first.comments, first.shares) == (1520, 87, 9, 14)
    assert first.favorites is None
    assert first.raw["statistics"]["forward_count"] == 3
    assert figures["@item-2"].raw["video_status"] == 4


def test_metrics_go_in_batches(ctx: Context) -> None:
    seed(ctx)
    asked: list[list[str]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = json.loads(request.body)["item_ids"]
        asked.append(ids)
        items = [
            {"item_id": i, "statistics": {"play_count": 1, "digg_count": 2}, "video_status": 1}
            for i in ids
        ]
        body = fx("data_ok")
        body["data"]["list"] = items
        return 200, {}, json.dumps(body)

    deliveries = [delivery(n, f"@item-{n}") for n in range(25)] + [delivery(99, None)]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add_callback(responses.POST, URL["data"], callback=answer)
        figures = channel(ctx).metrics(deliveries)
    assert [len(ids) for ids in asked] == [douyin.DATA_BATCH, 25 - douyin.DATA_BATCH]
    assert set(figures) == {f"@item-{n}" for n in range(25)}
    assert figures["@item-3"].views == 1 and figures["@item-3"].comments is None


def test_metrics_read_failure_is_transient(ctx: Context) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["data"], status=502, body="")
        with pytest.raises(Transient):
            channel(ctx).metrics([delivery(1, "@item-1")])


# --- the credential check --------------------------------------------------------------------------


def test_verify_reports_the_account_and_the_expiry(ctx: Context) -> None:
    seed(
        ctx,
        access_token=REFRESHED,
        refresh_token=ROTATED,
        expires_at=NOW + timedelta(days=10),
        refresh_expires_at=NOW + timedelta(days=20),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_page1"))
        line = channel(ctx).verify()
        assert query(fake.calls[0].request)["count"] == ["1"]
    assert "\n" not in line
    assert OPEN_ID in line
    assert "2024-05-11 08:30 UTC" in line and "2024-05-21 08:30 UTC" in line
    for secret in SECRETS:
        assert secret not in line


def test_verify_with_configured_tokens_says_the_expiry_is_unknown(ctx: Context) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        line = channel(ctx).verify()
    assert "access token expires unknown" in line and "no videos yet" in line


def test_verify_refuses_an_expired_refresh_token(ctx: Context) -> None:
    seed(
        ctx,
        access_token=REFRESHED,
        refresh_token=ROTATED,
        expires_at=NOW + timedelta(days=3),
        refresh_expires_at=NOW - timedelta(hours=1),
    )
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True),
        pytest.raises(AuthExpired) as info,
    ):
        channel(ctx).verify()
    assert "authorize the app again" in str(info.value)


def test_verify_when_the_refresh_is_refused(ctx: Context) -> None:
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("error_2190008"))
        fake.add(responses.POST, URL["refresh"], json=fx("error_10010"))
        with pytest.raises(AuthExpired):
            channel(ctx).verify()


# --- contract --------------------------------------------------------------------------------------


def test_contract() -> None:
    settings = DouyinChannel.Settings.model_validate(
        {
            "type": "douyin",
            "client_key": CLIENT_KEY,
            "client_secret": "${KP_DY_SECRET}",
            "open_id": OPEN_ID,
            "access_token": "${KP_DY_TOKEN}",
            "refresh_token": "${KP_DY_REFRESH}",
        }
    )
    plain = DouyinChannel(NAME, settings)
    assert isinstance(plain, HttpChannel)
    assert DouyinChannel.capabilities.find is True
    assert DouyinChannel.capabilities.idempotent is False
    assert plain.http_settings.api_base == BASE
    assert plain.settings.chunk_size_mb == 20


def test_permissions_are_the_scopes_the_last_refresh_reported(ctx: Context) -> None:
    unknown = {p.name: p for p in channel(ctx).permissions()}
    assert set(unknown) == {"video.create.bind", "video.list.bind", "video.data.bind"}
    assert all(p.held is None and "none seen yet" in p.detail for p in unknown.values())
    seed(ctx, access_token="act.old", refresh_token=REFRESH, expires_at=NOW - timedelta(hours=1))
    answer = fx("refresh_ok")
    answer["data"]["scope"] = "user_info,video.data.bind"  # publishing was not granted
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["refresh"], json=answer)
        fake.add(responses.GET, URL["list"], json=fx("list_empty"))
        channel(ctx).verify()
    found = {p.name: p for p in channel(ctx).permissions()}
    assert found["video.data.bind"].held is True
    create = found["video.create.bind"]
    assert create.held is False and create.needed_for == "publishing videos"
    assert "user_info, video.data.bind" in create.detail


# --- issue 10: limits, permission messages, refresh-token renewal ----------------------------------


@pytest.mark.parametrize(("size", "ok"), [(4, False), (5, True), (128, True), (129, False)])
def test_chunk_size_is_bounded_to_what_the_docs_allow(size: int, ok: bool) -> None:
    from pydantic import ValidationError

    settings = {
        "type": "douyin",
        "client_key": CLIENT_KEY,
        "client_secret": "${KP_DY_SECRET}",
        "open_id": OPEN_ID,
        "access_token": "${KP_DY_TOKEN}",
        "refresh_token": "${KP_DY_REFRESH}",
        "chunk_size_mb": size,
    }
    if ok:
        assert DouyinChannel.Settings.model_validate(settings).chunk_size_mb == size
    else:
        with pytest.raises(ValidationError):
            DouyinChannel.Settings.model_validate(settings)


@pytest.mark.parametrize(("unit", "route"), [(128, "part_init"), (256, "upload")])
def test_whole_file_upload_up_to_128_mb_then_parts(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, unit: int, route: str
) -> None:
    """chunk_size_mb = 128 (the whole-file limit) with ``unit``-byte "megabytes": the 27 KB
    sample is above 128 units of 128 bytes (parts) and below 128 units of 256 (whole)."""
    monkeypatch.setattr(douyin.channel, "CHUNK_UNIT", unit)
    seed(ctx)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        for name in ("upload", "part_init", "part_upload", "part_complete"):
            fake.add(responses.POST, URL[name], json=fx(f"{name}_ok"))
        fake.add(responses.POST, URL["create"], json=fx("create_ok"))
        channel(ctx, chunk_size_mb=128).publish(make_post(ctx), {})
        assert len(calls_to(fake, route)) == 1
        assert len(calls_to(fake, "upload")) == (1 if route == "upload" else 0)


@pytest.mark.parametrize(
    ("route", "scope", "call"),
    [
        ("create", "video.create.bind", "publish"),
        ("list", "video.list.bind", "find"),
        ("data", "video.data.bind", "metrics"),
    ],
)
@pytest.mark.parametrize("code", [28001018, 28001012, 28001019, 2190004])
def test_a_missing_capability_is_named(
    ctx: Context, route: str, scope: str, call: str, code: int
) -> None:
    seed(ctx)
    method = responses.GET if route == "list" else responses.POST
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(method, URL[route], json=fx(f"error_{code}"))
        with pytest.raises(AuthExpired) as info:
            if call == "publish":
                channel(ctx).publish(make_post(ctx), {"video_id": UPLOADED})
            elif call == "find":
                channel(ctx).find(make_post(ctx), NOW, sent())
            else:
                channel(ctx).metrics([delivery(1, "@item-1")])
    message = str(info.value)
    assert f"该账号授权的抖音应用缺少 {scope} 能力" in message and str(code) in message
    assert info.value.code == code
    ctx.language = "en"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(method, URL[route], json=fx(f"error_{code}"))
        with pytest.raises(AuthExpired) as info:
            channel(ctx).metrics([delivery(1, "@item-1")]) if call == "metrics" else (
                channel(ctx).find(make_post(ctx), NOW, sent())
                if call == "find"
                else channel(ctx).publish(make_post(ctx), {"video_id": UPLOADED})
            )
    assert f"this account's application lacks {scope}" in str(info.value)


def near_refresh_end(ctx: Context, days_left: float = 1) -> None:
    seed(
        ctx,
        access_token=REFRESHED,
        refresh_token=ROTATED,
        expires_at=NOW + timedelta(days=10),
        refresh_expires_at=NOW + timedelta(days=days_left),
    )


def renewed(token: str = "rft.renewed-SECRET-dddd") -> dict[str, Any]:
    return {
        "data": {"description": "", "error_code": 0, "expires_in": 2592000, "refresh_token": token},
        "message": "success",
    }


def test_the_refresh_token_is_renewed_before_it_runs_out(ctx: Context) -> None:
    near_refresh_end(ctx, days_left=3)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["data"], json=fx("data_ok"))
        channel(ctx).metrics([delivery(1, "@item-1")])  # 3 days left: not yet
    assert stored(ctx).refresh_token == ROTATED
    near_refresh_end(ctx, days_left=1)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["renew"], json=renewed())
        fake.add(responses.POST, URL["data"], json=fx("data_ok"))
        channel(ctx).metrics([delivery(1, "@item-1")])
        (renew,) = calls_to(fake, "renew")
    assert parse_qs(renew.body) == {"client_key": [CLIENT_KEY], "refresh_token": [ROTATED]}
    token = stored(ctx)
    assert token.refresh_token == "rft.renewed-SECRET-dddd"
    assert token.refresh_expires_at == NOW + timedelta(days=30)
    assert token.access_token == REFRESHED  # renewal leaves the access token alone
    assert channel(ctx).renewals_used() == 1
    assert ctx.alerts == []


def test_five_renewals_then_an_alert_seven_days_before_the_end(ctx: Context) -> None:
    near_refresh_end(ctx, days_left=1)
    for number in range(1, 6):
        ctx.clock = NOW + timedelta(days=28 * (number - 1))
        ctx.credentials.put(
            NAME, Token(REFRESHED, stored(ctx).refresh_token, None, ctx.clock + timedelta(days=1))
        )
        with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
            fake.add(responses.POST, URL["renew"], json=renewed(f"rft.renewed-{number}"))
            channel(ctx).token()
        assert channel(ctx).renewals_used() == number
    assert ctx.alerts == []
    last_end = stored(ctx).refresh_expires_at
    assert last_end is not None
    ctx.clock = last_end - timedelta(days=8)
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        channel(ctx).token()  # more than 7 days left: no alert
    assert ctx.alerts == []
    ctx.clock = last_end - timedelta(days=1)
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        channel(ctx).token()  # no sixth renewal is tried
        channel(ctx).token()
    [(_, title, body)] = ctx.alerts
    assert NAME in title and "授权" in title and f"[channels.{NAME}]" in body
    assert "重新授权" in body


def test_10020_means_no_renewal_is_left(ctx: Context) -> None:
    near_refresh_end(ctx, days_left=1)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["renew"], json=fx("error_10020"))
        token = channel(ctx).token()  # the refresh token still works: no error
    assert token.refresh_token == ROTATED
    assert channel(ctx).renewals_used() == douyin.api.RENEW_LIMIT
    assert len(ctx.alerts) == 1  # 1 day left, nothing to renew with
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        channel(ctx).token()  # not asked again


def test_one_renewal_for_several_daemons(tmp_path: Path) -> None:
    first = Context(tmp_path)
    near_refresh_end(first, days_left=1)
    contexts = [first, *(Context(tmp_path) for _ in range(3))]

    def slow_renew(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.2)
        return 200, {}, json.dumps(renewed())

    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add_callback(responses.POST, URL["renew"], callback=slow_renew)
        threads = [threading.Thread(target=lambda c=c: channel(c).token()) for c in contexts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(fake.calls) == 1
    assert channel(first).renewals_used() == 1


def test_a_lost_renewal_answer_keeps_the_token_and_the_call_goes_on(ctx: Context) -> None:
    near_refresh_end(ctx, days_left=1)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["renew"], body=requests.exceptions.ReadTimeout())
        fake.add(responses.POST, URL["data"], json=fx("data_ok"))
        assert channel(ctx).metrics([delivery(1, "@item-1")])
    assert stored(ctx).refresh_token == ROTATED
    assert channel(ctx).renewals_used() == 0


def test_verify_shows_both_expiries_and_the_renewals(ctx: Context) -> None:
    seed(
        ctx,
        access_token=REFRESHED,
        refresh_token=ROTATED,
        expires_at=NOW + timedelta(days=10),
        refresh_expires_at=NOW + timedelta(days=20),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.GET, URL["list"], json=fx("error_28001056"))
        line = channel(ctx).verify()
    assert "access token expires 2024-05-11 08:30 UTC" in line
    assert "refresh token expires 2024-05-21 08:30 UTC" in line
    assert "0/5 renewals used" in line
    # 20 days, then 5 renewals of 28 days each
    assert f"authorization ends by {(NOW + timedelta(days=160)):%Y-%m-%d %H:%M} UTC" in line
    assert "28001056" in line


def test_a_refused_complete_starts_the_upload_over(ctx: Context, small_chunks: int) -> None:
    """A complete repeated after its answer was lost may be refused: the next attempt uploads
    again instead of failing for good on the old upload_id."""
    seed(ctx)
    progress, saves = recorded()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.add(responses.POST, URL["part_init"], json=fx("part_init_ok"))
        fake.add(responses.POST, URL["part_upload"], json=fx("part_upload_ok"))
        fake.add(responses.POST, URL["part_complete"], json=fx("error_2100005"))
        with pytest.raises(Transient) as info:
            channel(ctx, chunk_size_mb=5).publish(make_post(ctx), progress)
        assert not calls_to(fake, "create")
    assert "uploads the video again" in str(info.value)
    assert not {"upload_id", "uploaded_parts", "video_id"} & set(saves[-1])
    assert "create_sent_at" not in saves[-1]  # nothing was ever created: provably absent
    assert channel(ctx).find(make_post(ctx), NOW, saves[-1]) is None


def test_the_apps_alert_reaches_the_alerts_table_once(workspace: Any) -> None:
    """The seam the renewal alert uses: App.alert (ChannelContext) is the watchdog's alert."""
    from kepubot.app import App
    from kepubot.config import load_config

    app = App(load_config(workspace.config))
    try:
        assert app.alert("douyin-authorization:x:2024-06-01", "标题", "正文") is True
        assert app.alert("douyin-authorization:x:2024-06-01", "标题", "正文") is False
        rows = app.store.conn().execute("SELECT key, message FROM alerts").fetchall()
    finally:
        app.close()
    assert [tuple(r) for r in rows] == [("douyin-authorization:x:2024-06-01", "标题: 正文")]


def test_a_video_over_4_gb_is_refused_at_submit(ctx: Context) -> None:
    post = make_post(ctx)
    huge = post.media[0].model_copy(update={"size": 4 * 1024**3 + 1})
    problems = channel(ctx).check(make_post(ctx, media=[huge]))
    assert [(p.field, p.code) for p in problems] == [("video", "media_size")]
    assert channel(ctx).check(post) == []
