"""The Douyin emulator against a real HTTP client: the current /api/douyin/v1/video/
interfaces only, what it refuses (retired paths, unknown credentials, missing capabilities,
whole-file uploads over the limit), token renewal, processing and review, and "accepted, then
the answer is lost" on every creating call.

Each test starts its own Sandbox on a free port; time moves with the sandbox clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from kepubot.sandbox import Sandbox

TIMEOUT = 5
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00\x01\r\n" * 200
BEIJING = timezone(timedelta(hours=8))
V1 = "/api/douyin/v1/video/"
DY = {
    "client_key": "awkey",
    "client_secret": "douyin-SECRET",
    "access_token": "act.douyin-TOKEN",
    "refresh_token": "rft.douyin-REFRESH",
    "open_id": "open-id-1",
}
CURRENT = (
    ("POST", "upload_video/"),
    ("POST", "init_video_part_upload/"),
    ("POST", "upload_video_part/"),
    ("POST", "complete_video_part_upload/"),
    ("POST", "create_video/"),
    ("GET", "video_list/"),
    ("POST", "video_data/"),
)
RETIRED = (
    ("POST", "/video/upload/"),
    ("POST", "/video/part/init/"),
    ("POST", "/video/part/upload/"),
    ("POST", "/video/part/complete/"),
    ("POST", "/video/create/"),
    ("GET", "/video/list/"),
    ("POST", "/video/data/"),
)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def control(sb: Sandbox, method: str, action: str, payload: Any = None) -> requests.Response:
    return requests.request(method, sb.url(f"/_sandbox/{action}"), json=payload, timeout=TIMEOUT)


def settings(sb: Sandbox, **values: Any) -> None:
    response = control(sb, "POST", "settings", values)
    assert response.status_code == 200, response.text


def faults(sb: Sandbox, *rules: dict[str, Any]) -> None:
    assert control(sb, "POST", "faults", list(rules)).status_code == 200


def stats(sb: Sandbox) -> dict[str, Any]:
    return control(sb, "GET", "stats?route=douyin").json()["douyin"]


def ledger(sb: Sandbox) -> dict[str, list[dict[str, Any]]]:
    return control(sb, "GET", "ledger?route=douyin").json()


@pytest.fixture
def douyin(sandbox: Sandbox) -> Sandbox:
    assert control(sandbox, "POST", "secrets", {"douyin": DY}).status_code == 200
    settings(sandbox, douyin_processing_seconds=0)
    return sandbox


def dy(
    sb: Sandbox,
    path: str,
    method: str = "POST",
    token: str | None = DY["access_token"],
    open_id: str = DY["open_id"],
    **kwargs: Any,
) -> Any:
    params = {"open_id": open_id, **kwargs.pop("params", {})}
    headers = {} if token is None else {"access-token": token}
    response = requests.request(
        method, sb.url(V1 + path), params=params, headers=headers, timeout=TIMEOUT, **kwargs
    )
    assert response.status_code == 200
    return response.json()


def code(answer: Any) -> int:
    assert answer["extra"]["error_code"] == answer["data"]["error_code"]
    return int(answer["data"]["error_code"])


def upload(sb: Sandbox, data: bytes = MP4) -> str:
    answer = dy(sb, "upload_video/", files={"video": ("v.mp4", data, "video/mp4")})
    assert code(answer) == 0, answer
    return str(answer["data"]["video"]["video_id"])


def create(sb: Sandbox, video_id: str, text: str = "洗手 #科普") -> Any:
    return dy(sb, "create_video/", json={"video_id": video_id, "text": text})


def oauth(sb: Sandbox, path: str, **form: str) -> Any:
    response = requests.post(sb.url(f"/oauth/{path}/"), data=form, timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def refresh_form(token: str = DY["refresh_token"]) -> dict[str, str]:
    return {"client_key": "awkey", "grant_type": "refresh_token", "refresh_token": token}


def set_beijing_time(sb: Sandbox, when: datetime) -> None:
    sb.clock_offset = when.replace(tzinfo=BEIJING).timestamp() - time.time()


# -- paths and credentials -------------------------------------------------------------------


def test_retired_paths_get_the_404_of_an_unknown_path(douyin: Sandbox) -> None:
    unknown = requests.post(douyin.url("/no/such/path/"), timeout=TIMEOUT)
    unknown_v1 = requests.post(douyin.url(V1 + "no_such_interface/"), timeout=TIMEOUT)
    assert unknown.status_code == unknown_v1.status_code == 404
    assert unknown.json() == unknown_v1.json()
    token = {"open_id": DY["open_id"], "access_token": DY["access_token"]}
    for method, path in RETIRED:
        response = requests.request(method, douyin.url(path), params=token, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (404, unknown.json()), path
    # the current ones answer (here: a Douyin error about the missing parameters)
    for method, path in CURRENT:
        assert dy(douyin, path, method)["extra"]["logid"], path
    assert ledger(douyin)["accepted"] == []


def test_the_token_goes_in_the_access_token_header_only(douyin: Sandbox) -> None:
    in_query = requests.get(
        douyin.url(V1 + "video_list/"),
        params={"open_id": DY["open_id"], "access_token": DY["access_token"]},
        timeout=TIMEOUT,
    ).json()
    assert code(in_query) == 28001003
    assert code(dy(douyin, "video_list/", "GET")) == 0
    assert code(dy(douyin, "video_list/", "GET", token="act.wrong")) == 28001003
    assert code(dy(douyin, "video_list/", "GET", open_id="someone-else")) == 28001015
    control(douyin, "POST", "expire", {"route": "douyin", "what": "access"})
    assert code(dy(douyin, "video_list/", "GET")) == 28001008
    assert control(douyin, "POST", "expire", {"route": "douyin"}).status_code == 400


def test_unknown_credentials_are_refused_before_any_registration(sandbox: Sandbox) -> None:
    """No "first token wins": a fresh sandbox knows no token, key or refresh token."""
    assert code(dy(sandbox, "video_list/", "GET")) == 28001003
    assert code(dy(sandbox, "upload_video/", files={"video": ("v.mp4", MP4)})) == 28001003
    refreshed = oauth(sandbox, "refresh_token", **refresh_form())
    assert (refreshed["message"], refreshed["data"]["error_code"]) == ("error", 10013)
    client = oauth(
        sandbox,
        "client_token",
        client_key="awkey",
        client_secret="douyin-SECRET",
        grant_type="client_credential",
    )
    assert client["data"]["error_code"] == 10013
    # still refused after a first attempt: nothing was adopted
    assert code(dy(sandbox, "video_list/", "GET")) == 28001003
    control(sandbox, "POST", "secrets", {"douyin": {"client_key": "awkey", "client_secret": "s"}})
    assert (
        oauth(sandbox, "refresh_token", **refresh_form("rft.unknown"))["data"]["error_code"]
        == 10010
    )


# -- uploads and create ------------------------------------------------------------------------


def test_upload_create_and_a_reused_video_id(douyin: Sandbox) -> None:
    video_id = upload(douyin)
    created = create(douyin, video_id)
    assert code(created) == 0
    item_id = created["data"]["item_id"]
    assert set(created["extra"]) == {
        "error_code",
        "description",
        "sub_error_code",
        "sub_description",
        "logid",
        "now",
    }
    assert code(create(douyin, video_id, "again")) == 2100005
    assert code(dy(douyin, "create_video/", json={"text": "no video"})) == 2100005
    assert code(create(douyin, "v-unknown")) == 2100005
    assert code(dy(douyin, "upload_video/", files={"video": ("x", b"not a video")})) != 0
    entries = ledger(douyin)
    [entry] = entries["accepted"]
    assert (entry["kind"], entry["id"], entry["name_or_key"]) == ("video", item_id, "open-id-1")
    assert [d["id"] for d in entries["duplicates"]] == [item_id]


def test_whole_file_upload_over_the_limit_is_refused(douyin: Sandbox) -> None:
    assert control(douyin, "GET", "settings").json()["douyin_upload_limit_bytes"] == 128 << 20
    settings(douyin, douyin_upload_limit_bytes=len(MP4))
    assert upload(douyin)  # exactly at the limit: fine
    bigger = dy(douyin, "upload_video/", files={"video": ("v.mp4", MP4 + b"\x00")})
    assert code(bigger) == 2100005
    assert "128M" in bigger["data"]["description"] and "分片" in bigger["data"]["description"]
    assert stats(douyin)["videos_uploaded"] == 1


def test_chunked_upload(douyin: Sandbox) -> None:
    init = dy(douyin, "init_video_part_upload/")
    upload_id = init["data"]["upload_id"]
    assert "+" in upload_id and "/" in upload_id  # the client must URL-encode it
    five_mb = MP4 + b"\x00" * (5 * 1024 * 1024 - len(MP4))

    def part(number: int, data: bytes, uid: str = upload_id) -> int:
        answer = dy(
            douyin,
            "upload_video_part/",
            params={"upload_id": uid, "part_number": number},
            files={"video": ("v.mp4", data, "video/mp4")},
        )
        return code(answer)

    assert part(0, five_mb) == 2100005
    assert part(2, b"tail bytes") == 0  # parts may arrive in any order
    incomplete = dy(douyin, "complete_video_part_upload/", params={"upload_id": upload_id})
    assert code(incomplete) == 2100005  # part 1 is missing
    assert part(1, five_mb) == 0
    done = dy(douyin, "complete_video_part_upload/", params={"upload_id": upload_id})
    assert code(done) == 0
    video_id = done["data"]["video"]["video_id"]
    retried = dy(douyin, "complete_video_part_upload/", params={"upload_id": upload_id})
    assert retried["data"]["video"]["video_id"] == video_id
    assert code(create(douyin, video_id)) == 0

    small = dy(douyin, "init_video_part_upload/")["data"]["upload_id"]
    for number in (1, 2):
        assert part(number, b"x" * 1000, small) == 0
    too_small = dy(douyin, "complete_video_part_upload/", params={"upload_id": small})
    assert code(too_small) == 2100005  # part 1 is not the last and under 5 MB

    late = dy(douyin, "init_video_part_upload/")["data"]["upload_id"]
    douyin.advance_clock(7201)
    assert part(1, five_mb, late) == 2100005
    assert part(1, five_mb, "@no-such-upload") == 2100005


def test_each_call_needs_its_capability_and_the_users_grant(sandbox: Sandbox) -> None:
    # the user granted the data scopes only (publishing not granted)
    granted = {**DY, "scope": "video.list.bind,video.data.bind"}
    control(sandbox, "POST", "secrets", {"douyin": granted})
    settings(sandbox, douyin_processing_seconds=0)
    upload_answer = dy(sandbox, "upload_video/", files={"video": ("v.mp4", MP4)})
    assert code(upload_answer) == 28001012
    assert code(create(sandbox, "v-any")) == 28001012
    assert code(dy(sandbox, "video_list/", "GET")) == 0
    # the application lost the capability to list videos
    settings(sandbox, douyin_app_capabilities=["video.create.bind", "video.data.bind"])
    listed = dy(sandbox, "video_list/", "GET")
    assert code(listed) == 28001018 and "video.list.bind" in listed["data"]["description"]
    assert code(dy(sandbox, "video_data/", json={"item_ids": []})) == 0
    assert ledger(sandbox)["accepted"] == [] and stats(sandbox)["videos_uploaded"] == 0


# -- tokens ------------------------------------------------------------------------------------


def test_refresh_rotation_renewal_limit_and_10010(douyin: Sandbox) -> None:
    refreshed = oauth(douyin, "refresh_token", **refresh_form())
    assert refreshed["message"] == "success"
    data = refreshed["data"]
    assert (data["error_code"], data["open_id"]) == (0, "open-id-1")
    assert data["expires_in"] == 15 * 86400
    assert data["refresh_token"] != DY["refresh_token"]  # rotated...
    assert 30 * 86400 - 5 <= data["refresh_expires_in"] <= 30 * 86400  # ...but not extended
    assert code(dy(douyin, "video_list/", "GET", token=data["access_token"])) == 0
    old = oauth(douyin, "refresh_token", **refresh_form())
    assert (old["message"], old["data"]["error_code"]) == ("error", 10010)

    current = data["refresh_token"]
    douyin.advance_clock(20 * 86400)
    for _ in range(5):
        renewed = oauth(douyin, "renew_refresh_token", client_key="awkey", refresh_token=current)
        assert renewed["data"]["error_code"] == 0
        assert renewed["data"]["expires_in"] == 30 * 86400
        stale = current
        current = renewed["data"]["refresh_token"]
        # the old one stops working
        again = oauth(douyin, "renew_refresh_token", client_key="awkey", refresh_token=stale)
        assert again["data"]["error_code"] == 10010
    douyin.advance_clock(25 * 86400)  # past the first token's 30 days: the renewed one lives
    late = oauth(douyin, "refresh_token", **refresh_form(current))["data"]
    assert late["error_code"] == 0
    current = late["refresh_token"]  # rotated again, same authorization
    limit = oauth(douyin, "renew_refresh_token", client_key="awkey", refresh_token=current)
    assert limit["data"]["error_code"] == 10020
    assert stats(douyin)["refresh_token_renewals"] == 5

    wrong_key = oauth(douyin, "refresh_token", **{**refresh_form(current), "client_key": "x"})
    assert wrong_key["data"]["error_code"] == 10013


def test_renewal_needs_its_permission(douyin: Sandbox) -> None:
    settings(douyin, douyin_app_capabilities=["video.create.bind", "video.list.bind"])
    answer = oauth(
        douyin, "renew_refresh_token", client_key="awkey", refresh_token=DY["refresh_token"]
    )
    assert answer["data"]["error_code"] == 10004
    assert stats(douyin)["refresh_token_renewals"] == 0


def test_refresh_without_rotation_and_natural_expiry(douyin: Sandbox) -> None:
    settings(douyin, douyin_rotate_on_refresh=False)
    form = refresh_form()
    assert oauth(douyin, "refresh_token", **form)["data"]["refresh_token"] == DY["refresh_token"]
    douyin.advance_clock(15 * 86400)
    assert code(dy(douyin, "video_list/", "GET")) == 28001008  # the 15-day access token
    assert oauth(douyin, "refresh_token", **form)["data"]["error_code"] == 0
    douyin.advance_clock(15 * 86400)
    assert oauth(douyin, "refresh_token", **form)["data"]["error_code"] == 10010


def test_code_exchange_and_client_token(douyin: Sandbox) -> None:
    form = {
        "client_key": "awkey",
        "client_secret": "douyin-SECRET",
        "code": "auth-code",
        "grant_type": "authorization_code",
    }
    granted = oauth(douyin, "access_token", **form)["data"]
    assert granted["access_token"].startswith("act.")
    assert granted["refresh_expires_in"] == 30 * 86400
    assert oauth(douyin, "access_token", **form)["data"]["error_code"] == 10007
    assert (
        oauth(douyin, "access_token", **{**form, "client_secret": "x"})["data"]["error_code"]
        == 10013
    )
    client = requests.post(
        douyin.url("/oauth/client_token/"),
        json={
            "grant_type": "client_credential",
            "client_key": "awkey",
            "client_secret": "douyin-SECRET",
        },
        timeout=TIMEOUT,
    ).json()
    assert client["data"]["access_token"].startswith("clt.")
    assert client["data"]["expires_in"] == 7200
    assert stats(douyin)["client_token_fetches"] == 1


# -- processing, review, figures ---------------------------------------------------------------


def test_a_new_video_is_invisible_while_processing(douyin: Sandbox) -> None:
    settings(douyin, douyin_processing_seconds=300, douyin_review_seconds=60)
    item_id = create(douyin, upload(douyin))["data"]["item_id"]

    assert dy(douyin, "video_list/", "GET")["data"]["list"] == []
    assert dy(douyin, "video_data/", json={"item_ids": [item_id]})["data"]["list"] == []
    douyin.advance_clock(299)
    assert dy(douyin, "video_list/", "GET")["data"]["list"] == []
    douyin.advance_clock(1)
    [listed] = dy(douyin, "video_list/", "GET")["data"]["list"]
    assert (listed["item_id"], listed["video_status"], listed["is_reviewed"]) == (
        item_id,
        4,
        False,
    )
    douyin.advance_clock(60)
    [data] = dy(douyin, "video_data/", json={"item_ids": [item_id]})["data"]["list"]
    assert (data["video_status"], data["is_reviewed"]) == (1, True)
    assert control(douyin, "GET", "settings").json()["douyin_processing_seconds"] == 300
    control(douyin, "POST", "reset")
    assert control(douyin, "GET", "settings").json()["douyin_processing_seconds"] == 120


def test_review_and_growing_statistics(douyin: Sandbox) -> None:
    set_beijing_time(douyin, datetime(2024, 5, 1, 9, 0))
    items = []
    for text in ("第一条", "第二条"):
        created = create(douyin, upload(douyin), text)
        items.append(created["data"]["item_id"])

    fresh = dy(douyin, "video_data/", json={"item_ids": [*items, "@not-mine"]})["data"]["list"]
    assert [v["item_id"] for v in fresh] == items
    assert all(v["is_reviewed"] is False and v["video_status"] == 4 for v in fresh)
    assert all(v["statistics"]["play_count"] == 0 for v in fresh)

    douyin.advance_clock(60 + 3600)
    [video] = dy(douyin, "video_data/", json={"item_ids": items[:1]})["data"]["list"]
    assert (video["is_reviewed"], video["video_status"]) == (True, 1)
    assert set(video["statistics"]) == {
        "play_count",
        "digg_count",
        "comment_count",
        "share_count",
        "forward_count",
        "download_count",
    }
    assert video["statistics"]["play_count"] > 0
    douyin.advance_clock(3600)
    [later] = dy(douyin, "video_data/", json={"item_ids": items[:1]})["data"]["list"]
    assert later["statistics"]["play_count"] > video["statistics"]["play_count"]

    listed = dy(douyin, "video_list/", "GET", params={"cursor": 0, "count": 1})["data"]
    assert [v["title"] for v in listed["list"]] == ["第二条"]
    assert listed["has_more"] is True
    rest = dy(douyin, "video_list/", "GET", params={"cursor": listed["cursor"], "count": 1})
    assert [v["title"] for v in rest["data"]["list"]] == ["第一条"]

    def base() -> Any:
        answer = requests.get(
            douyin.url("/data/external/item/base/"),
            params={"open_id": DY["open_id"], "item_id": items[0]},
            headers={"access-token": DY["access_token"]},
            timeout=TIMEOUT,
        ).json()
        assert code(answer) == 0
        return answer["data"]["result"]

    assert base()["total_play"] == 0  # T+1: nothing before today's midnight
    douyin.advance_clock(86400)
    assert base()["total_play"] > 0


# -- accepted, then the answer is lost -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop_after", "hang_after", "error_after"])
def test_every_creating_call_can_be_applied_and_lose_its_answer(douyin: Sandbox, mode: str) -> None:
    five_mb = MP4 + b"\x00" * (5 * 1024 * 1024 - len(MP4))
    seconds = {"seconds": 3} if mode == "hang_after" else {}

    def lost(path: str, call: Any) -> None:
        faults(douyin, {"route": "douyin", "path": path, "mode": mode, "count": 1, **seconds})
        try:
            if mode == "hang_after":
                with pytest.raises(requests.exceptions.ReadTimeout):
                    call(0.5)
            elif mode == "drop_after":
                with pytest.raises(requests.ConnectionError):
                    call(TIMEOUT)
            else:
                assert call(TIMEOUT).status_code == 502
        finally:
            control(douyin, "DELETE", "faults")

    def post(path: str, **kwargs: Any) -> Any:
        params = {"open_id": DY["open_id"], **kwargs.pop("params", {})}
        headers = {"access-token": DY["access_token"]}
        return lambda timeout: requests.post(
            douyin.url(V1 + path), params=params, headers=headers, timeout=timeout, **kwargs
        )

    lost("upload_video/", post("upload_video/", files={"video": ("v.mp4", MP4)}))
    assert stats(douyin)["videos_uploaded"] == 1

    upload_id = dy(douyin, "init_video_part_upload/")["data"]["upload_id"]
    part = {"upload_id": upload_id, "part_number": 1}
    lost("upload_video_part/", post("upload_video_part/", params=part, files={"video": five_mb}))
    assert stats(douyin)["parts_received"] == 1
    tail = {"upload_id": upload_id, "part_number": 2}
    assert code(dy(douyin, "upload_video_part/", params=tail, files={"video": b"end"})) == 0
    complete = {"upload_id": upload_id}
    lost("complete_video_part_upload/", post("complete_video_part_upload/", params=complete))
    assert stats(douyin)["uploads_completed"] == 1
    # the answer was lost, the video exists: asking again answers the same video
    video_id = dy(douyin, "complete_video_part_upload/", params=complete)["data"]["video"][
        "video_id"
    ]

    lost("create_video/", post("create_video/", json={"video_id": video_id, "text": "丢失"}))
    [accepted] = ledger(douyin)["accepted"]
    assert accepted["body"]["video_id"] == video_id
    # repeating the create publishes nothing more: the platform refuses the used video_id
    assert code(create(douyin, video_id, "丢失")) == 2100005
    assert len(ledger(douyin)["accepted"]) == 1


def test_video_list_taken_offline(douyin: Sandbox) -> None:
    faults(
        douyin,
        {"route": "douyin", "path": "video_list", "mode": "platform_error", "code": 28001056},
    )
    assert code(dy(douyin, "video_list/", "GET")) == 28001056
    assert code(dy(douyin, "video_data/", json={"item_ids": []})) == 0


# -- `kepubot channels check` against the emulator -------------------------------------------


def test_channels_check_shows_both_expiries(
    douyin: Sandbox, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from kepubot.cli import cli

    monkeypatch.setenv("KP_DY_SECRET", DY["client_secret"])
    monkeypatch.setenv("KP_DY_TOKEN", DY["access_token"])
    monkeypatch.setenv("KP_DY_REFRESH", DY["refresh_token"])
    config = tmp_path / "kepubot.toml"
    config.write_text(
        f"""[kepubot]
database = "kepubot.db"

[channels.douyin-main]
type = "douyin"
client_key = "{DY["client_key"]}"
client_secret = "${{KP_DY_SECRET}}"
open_id = "{DY["open_id"]}"
access_token = "${{KP_DY_TOKEN}}"
refresh_token = "${{KP_DY_REFRESH}}"
api_base = "{douyin.url()}"
timeout_seconds = 5
""",
        encoding="utf-8",
    )

    def check() -> str:
        result = CliRunner().invoke(
            cli, ["--config", str(config), "--lang", "en", "channels", "check"]
        )
        assert result.exit_code == 0, result.output
        return result.output

    first = check()  # the configured tokens: the access token's expiry is not known yet
    assert "douyin-main (douyin): ok:" in first and "access token expires unknown" in first
    control(douyin, "POST", "expire", {"route": "douyin", "what": "access"})
    second = check()  # 28001008 -> one refresh: now Douyin has said when both expire
    assert stats(douyin)["token_refreshes"] == 1
    line = next(x for x in second.splitlines() if x.startswith("douyin-main (douyin): ok:"))
    assert "access token expires 20" in line and "refresh token expires 20" in line
    assert "0/5 renewals used" in line and "authorization ends by 20" in line
    for secret in (DY["client_secret"], DY["access_token"], DY["refresh_token"]):
        assert secret not in second
    assert "missing permission" not in second  # the refresh reported every scope granted
