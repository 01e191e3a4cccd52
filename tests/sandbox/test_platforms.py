"""The Weibo, WeChat OA and Douyin emulators against a real HTTP client.

Each test starts its own Sandbox on a free port. Time-based behaviour (token expiry, rate
windows, publishing, growing counts, T+1 dates) moves the sandbox clock instead of sleeping.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from kepubot.sandbox import Sandbox
from kepubot.sandbox.forms import parse_multipart
from kepubot.sandbox.weibo import weibo_time, weibo_units

TIMEOUT = 5
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 2
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\r\n--x\r\n" * 40
GIF = b"GIF89a" + b"\x01" * 100
BMP = b"BM" + b"\x00" * 100
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00\x01\r\n" * 200
BEIJING = timezone(timedelta(hours=8))


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


def ledger(sb: Sandbox, route: str) -> dict[str, list[dict[str, Any]]]:
    return requests.get(sb.url("/_sandbox/ledger"), params={"route": route}, timeout=5).json()


def stats(sb: Sandbox, route: str) -> dict[str, Any]:
    return requests.get(sb.url("/_sandbox/stats"), params={"route": route}, timeout=5).json()[route]


def set_beijing_time(sb: Sandbox, when: datetime) -> None:
    sb.clock_offset = when.replace(tzinfo=BEIJING).timestamp() - time.time()


# -- Weibo ---------------------------------------------------------------------------------

WEIBO_TOKEN = "2.00weibo-TOKEN-abc"
LINK = "https://kepu.example.org/a/1"


def share(
    sb: Sandbox,
    status: str | None = "洗手的科学 " + LINK,
    token: str | None = WEIBO_TOKEN,
    rip: str | None = "203.0.113.7",
    pic: bytes | None = None,
    header: bool = False,
    multipart: bool = False,
) -> requests.Response:
    fields: dict[str, str] = {}
    headers = {}
    if token is not None and header:
        headers["Authorization"] = f"OAuth2 {token}"
    elif token is not None:
        fields["access_token"] = token
    if status is not None:
        fields["status"] = status
    if rip is not None:
        fields["rip"] = rip
    url = sb.url("/2/statuses/share.json")
    if pic is not None or multipart:
        files = {"pic": ("p.png", pic, "image/png")} if pic is not None else {}
        files_and_fields: Any = {**{k: (None, v) for k, v in fields.items()}, **files}
        return requests.post(url, files=files_and_fields, headers=headers, timeout=TIMEOUT)
    return requests.post(url, data=fields, headers=headers, timeout=TIMEOUT)


@pytest.fixture
def weibo_token(sandbox: Sandbox) -> None:
    """WEIBO_TOKEN registered: the emulated Weibo refuses any token it does not know."""
    control(sandbox, "POST", "secrets", {"weibo_tokens": [WEIBO_TOKEN]})


def weibo_get(sb: Sandbox, name: str, **params: Any) -> requests.Response:
    params.setdefault("access_token", WEIBO_TOKEN)
    return requests.get(sb.url(f"/2/statuses/{name}"), params=params, timeout=TIMEOUT)


def weibo_error(response: requests.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) >= {"error", "error_code", "request"}, body
    return response.status_code, body["error_code"]


@pytest.mark.usefixtures("weibo_token")
def test_weibo_share_answers_the_status_object_and_fills_the_ledger(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "secrets", {"weibo_tokens": [WEIBO_TOKEN]})

    response = share(sandbox)

    assert response.status_code == 200
    status = response.json()
    assert isinstance(status["id"], int)
    assert status["idstr"] == str(status["id"]) == status["mid"]
    assert re.fullmatch(r"\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} \+0800 \d{4}", status["created_at"])
    assert status["text"] == "洗手的科学 " + LINK
    assert status["user"]["idstr"] == str(status["user"]["id"])
    assert (status["reposts_count"], status["comments_count"], status["attitudes_count"]) == (
        0,
        0,
        0,
    )
    assert status["visible"] == {"type": 0, "list_id": 0}
    [entry] = ledger(sandbox, "weibo")["accepted"]
    assert (entry["kind"], entry["id"], entry["name_or_key"]) == (
        "status",
        status["idstr"],
        status["user"]["idstr"],
    )
    assert entry["body"]["status"] == status["text"]


@pytest.mark.usefixtures("weibo_token")
def test_weibo_token_in_header_and_picture_in_multipart(sandbox: Sandbox) -> None:
    response = share(sandbox, header=True, pic=PNG)

    assert response.status_code == 200, response.text
    status = response.json()
    assert status["original_pic"].startswith("http://wx1.sinaimg.cn/large/")
    assert status["pic_urls"] == [{"thumbnail_pic": status["thumbnail_pic"]}]
    [entry] = ledger(sandbox, "weibo")["accepted"]
    assert entry["body"]["pic"]["type"] == "png"
    assert entry["body"]["pic"]["size"] == len(PNG)


def test_weibo_counts_cjk_as_one_and_ascii_as_half() -> None:
    assert weibo_units("科普") == 2
    assert weibo_units("ab") == 1
    assert weibo_units("a") == 0.5
    assert weibo_time(0) == "Thu Jan 01 08:00:00 +0800 1970"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"status": None}, (400, "20008")),
        ({"status": "  "}, (400, "20008")),
        ({"rip": None}, (400, "10016")),
        ({"rip": "not-an-ip"}, (400, "10017")),
        # The doc asks for the operator's real IP: loopback and private addresses are refused.
        ({"rip": "127.0.0.1"}, (400, "10017")),
        ({"rip": "192.168.1.20"}, (400, "10017")),
        ({"rip": "10.0.0.5"}, (400, "10017")),
        ({"rip": "::1"}, (400, "10017")),
        ({"rip": "192.0.2.1"}, (400, "10017")),  # documentation range, not in weibo_rip_allow
        ({"status": "科" * 126 + " " + LINK + "x"}, (400, "20012")),
        ({"status": "#科普# 洗手 " + LINK}, (400, "10017")),
        ({"status": "没有链接"}, (400, "10017")),
        ({"pic": BMP}, (400, "20005")),
        ({"pic": PNG[:8] + b"\x00" * (5 * 1024 * 1024)}, (400, "20006")),
        ({"multipart": True}, (400, "20007")),
        ({"token": None}, (403, 21301)),
    ],
)
@pytest.mark.usefixtures("weibo_token")
def test_weibo_share_rejections(
    sandbox: Sandbox, kwargs: dict[str, Any], expected: tuple[int, Any]
) -> None:
    response = share(sandbox, **kwargs)

    status, code = weibo_error(response)
    assert (status, code) == expected
    assert response.json()["request"] == "/statuses/share.json"
    assert ledger(sandbox, "weibo")["accepted"] == []


@pytest.mark.usefixtures("weibo_token")
def test_weibo_length_limit_is_exactly_140_units(sandbox: Sandbox) -> None:
    text = "科" * 125 + " " + LINK  # 125 + 29 / 2 = 139.5 units
    assert weibo_units(text) == 139.5
    assert share(sandbox, status=text).status_code == 200
    assert share(sandbox, status=text + "x").status_code == 200  # exactly 140
    assert weibo_error(share(sandbox, status=text + "科")) == (400, "20012")


@pytest.mark.usefixtures("weibo_token")
def test_weibo_safe_domains_and_gif(sandbox: Sandbox) -> None:
    settings(sandbox, weibo_safe_domains=["example.org"])

    assert share(sandbox, status="看 https://kepu.example.org/x").status_code == 200
    assert share(sandbox, status="看 https://example.org/y", pic=GIF).status_code == 200
    assert share(sandbox, status="详见HTTPS://kepu.example.org详情").status_code == 200
    assert weibo_error(share(sandbox, status="看 https://evil.test/z")) == (400, "10017")


def test_weibo_tokens_unknown_expired_and_registered_again(sandbox: Sandbox) -> None:
    # No "first token wins": with nothing registered, a token is still unknown.
    first = share(sandbox, token="anything-goes")
    assert (first.status_code, first.json()["error_code"]) == (403, 21332)
    control(sandbox, "POST", "secrets", {"weibo_tokens": [WEIBO_TOKEN]})
    assert share(sandbox).status_code == 200

    unknown = share(sandbox, token="someone-else", status="另一条 " + LINK)
    assert unknown.status_code == 403
    assert unknown.json()["error_code"] == 21332
    assert unknown.json()["error_description"]

    assert control(sandbox, "POST", "expire", {"route": "weibo"}).status_code == 200
    expired = share(sandbox, status="第三条 " + LINK)
    assert (expired.status_code, expired.json()["error"]) == (403, "expired_token")
    assert expired.json()["error_code"] == 21327
    assert weibo_get(sandbox, "count.json", ids="1").json()["error_code"] == 21327

    control(sandbox, "POST", "secrets", {"weibo_tokens": [WEIBO_TOKEN]})
    assert share(sandbox, status="第三条 " + LINK).status_code == 200


@pytest.mark.usefixtures("weibo_token")
def test_weibo_same_text_twice_is_20019_and_counted_as_a_duplicate(sandbox: Sandbox) -> None:
    first = share(sandbox).json()

    repeat = share(sandbox)

    assert weibo_error(repeat) == (400, "20019")
    entries = ledger(sandbox, "weibo")
    assert len(entries["accepted"]) == 1
    [dup] = entries["duplicates"]
    assert dup["id"] == first["idstr"]
    # Only the last post counts, and only within the window.
    assert share(sandbox, status="别的 " + LINK).status_code == 200
    assert share(sandbox).status_code == 200
    sandbox.advance_clock(86401)
    assert share(sandbox).status_code == 200


@pytest.mark.usefixtures("weibo_token")
def test_weibo_30_posts_an_hour(sandbox: Sandbox) -> None:
    answers = [share(sandbox, status=f"第{i}条 {LINK}") for i in range(31)]

    assert [a.status_code for a in answers[:30]] == [200] * 30
    assert weibo_error(answers[30]) == (403, "20016")
    assert len(ledger(sandbox, "weibo")["accepted"]) == 30
    sandbox.advance_clock(3600)
    assert share(sandbox, status="一小时后 " + LINK).status_code == 200


@pytest.mark.usefixtures("weibo_token")
def test_weibo_rate_limit_and_its_code_are_settable(sandbox: Sandbox) -> None:
    settings(sandbox, weibo_posts_per_hour=2, weibo_rate_limit_code=10023)
    assert share(sandbox, status="1 " + LINK).status_code == 200
    assert share(sandbox, status="2 " + LINK).status_code == 200
    assert weibo_error(share(sandbox, status="3 " + LINK)) == (403, "10023")


@pytest.mark.usefixtures("weibo_token")
def test_weibo_counts_grow_and_unknown_ids_are_dropped(sandbox: Sandbox) -> None:
    a = share(sandbox, status="一 " + LINK).json()["id"]
    b = share(sandbox, status="二 " + LINK).json()["id"]

    fresh = weibo_get(sandbox, "count.json", ids=f"{a},{b},999").json()
    assert fresh == [
        {"id": a, "comments": 0, "reposts": 0, "attitudes": 0},
        {"id": b, "comments": 0, "reposts": 0, "attitudes": 0},
    ]
    sandbox.advance_clock(2 * 3600)
    later = weibo_get(sandbox, "count.json", ids=f"{a},{b}").json()
    assert all(item["attitudes"] > 0 and item["comments"] > 0 for item in later)
    sandbox.advance_clock(3600)
    latest = weibo_get(sandbox, "count.json", ids=str(a)).json()[0]
    assert latest["attitudes"] > later[0]["attitudes"]

    shown = weibo_get(sandbox, "show.json", id=a).json()
    assert shown["attitudes_count"] == latest["attitudes"]
    assert weibo_error(weibo_get(sandbox, "show.json", id=999)) == (400, "20101")
    too_many = ",".join(str(a) for _ in range(101))
    assert weibo_error(weibo_get(sandbox, "count.json", ids=too_many)) == (400, "10017")
    assert weibo_error(weibo_get(sandbox, "count.json")) == (400, "10016")


@pytest.mark.usefixtures("weibo_token")
def test_weibo_timeline_newest_first_after_the_indexing_delay(sandbox: Sandbox) -> None:
    settings(sandbox, timeline_delay_seconds=90)
    first = share(sandbox, status="一 " + LINK).json()["id"]
    sandbox.advance_clock(30)
    second = share(sandbox, status="二 " + LINK).json()["id"]

    assert weibo_get(sandbox, "user_timeline.json").json()["statuses"] == []
    sandbox.advance_clock(60)
    only_first = weibo_get(sandbox, "user_timeline.json").json()
    assert [s["id"] for s in only_first["statuses"]] == [first]
    sandbox.advance_clock(30)
    both = weibo_get(sandbox, "user_timeline.json").json()
    assert [s["id"] for s in both["statuses"]] == [second, first]
    assert both["total_number"] == 2
    newer = weibo_get(sandbox, "user_timeline.json", since_id=first).json()["statuses"]
    assert [s["id"] for s in newer] == [second]
    page = weibo_get(sandbox, "user_timeline.json", count=1, page=2).json()["statuses"]
    assert [s["id"] for s in page] == [first]


@pytest.mark.usefixtures("weibo_token")
def test_weibo_slow_success_20032_still_posts(sandbox: Sandbox) -> None:
    settings(sandbox, weibo_slow_success=1)

    assert weibo_error(share(sandbox)) == (400, "20032")
    assert len(ledger(sandbox, "weibo")["accepted"]) == 1
    assert weibo_error(share(sandbox)) == (400, "20019")  # the retry finds it was posted
    assert len(weibo_get(sandbox, "user_timeline.json").json()["statuses"]) == 1


def test_weibo_oauth_code_exchange_and_token_info(sandbox: Sandbox) -> None:
    form = {
        "client_id": "123",
        "client_secret": "s",
        "grant_type": "authorization_code",
        "code": "c-1",
        "redirect_uri": "https://kepu.example.org/cb",
    }
    granted = requests.post(sandbox.url("/oauth2/access_token"), data=form, timeout=5).json()
    assert isinstance(granted["expires_in"], str)
    assert int(granted["expires_in"]) > 5 * 364 * 86400
    again = requests.post(sandbox.url("/oauth2/access_token"), data=form, timeout=5)
    assert (again.status_code, again.json()["error_code"]) == (400, 21325)

    info = requests.post(
        sandbox.url("/oauth2/get_token_info"),
        data={"access_token": granted["access_token"]},
        timeout=5,
    ).json()
    assert str(info["uid"]) == granted["uid"]
    assert info["appkey"] == "123"
    assert 0 < info["expire_in"] <= int(granted["expires_in"])
    assert stats(sandbox, "weibo")["tokens_granted"] == 1


# -- WeChat OA -----------------------------------------------------------------------------

APPID, SECRET = "wx0123456789abcdef", "wechat-SECRET-value"


def wx_token(sb: Sandbox, appid: str = APPID, secret: str = SECRET, **extra: str) -> Any:
    params = {"grant_type": "client_credential", "appid": appid, "secret": secret, **extra}
    return requests.get(sb.url("/cgi-bin/token"), params=params, timeout=TIMEOUT).json()


def wx(sb: Sandbox, path: str, token: str, body: Any = None, **params: Any) -> Any:
    """POST JSON the way WeChat wants it: UTF-8, real characters rather than \\u escapes."""
    raw = json.dumps(body if body is not None else {}, ensure_ascii=False).encode()
    response = requests.post(
        sb.url(path), params={"access_token": token, **params}, data=raw, timeout=TIMEOUT
    )
    assert response.status_code == 200
    return response.json()


def wx_count(sb: Sandbox, token: str) -> Any:
    """``GET draft/count``: the cheapest way to try a token."""
    params = {"access_token": token}
    return requests.get(sb.url("/cgi-bin/draft/count"), params=params, timeout=TIMEOUT).json()


def wx_upload(sb: Sandbox, path: str, token: str, data: bytes, **params: Any) -> Any:
    response = requests.post(
        sb.url(path),
        params={"access_token": token, **params},
        files={"media": ("cover.png", data, "image/png")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def wechat(sandbox: Sandbox) -> str:
    """A registered app and a fresh token."""
    control(sandbox, "POST", "secrets", {"wechat": {APPID: SECRET}})
    return str(wx_token(sandbox)["access_token"])


def article(thumb: str, **fields: Any) -> dict[str, Any]:
    return {
        "title": "七步洗手法的科学依据",
        "author": "科普编辑部",
        "content": "<p>用流动水和肥皂洗手，揉搓时间不少于20秒。</p>",
        "content_source_url": "https://kepu.example.org/a/1",
        "thumb_media_id": thumb,
        **fields,
    }


def new_draft(sb: Sandbox, token: str, **fields: Any) -> str:
    thumb = wx_upload(sb, "/cgi-bin/material/add_material", token, PNG, type="image")
    answer = wx(
        sb, "/cgi-bin/draft/add", token, {"articles": [article(thumb["media_id"], **fields)]}
    )
    assert "media_id" in answer, answer
    return str(answer["media_id"])


def test_wechat_token_errors_and_invalidation_on_refetch(sandbox: Sandbox, wechat: str) -> None:
    first = wechat
    assert wx(sandbox, "/cgi-bin/draft/batchget", first, {"count": 5})["total_count"] == 0
    second = wx_token(sandbox)
    assert second["expires_in"] == 7200
    assert len(second["access_token"]) > 100

    stale = wx(sandbox, "/cgi-bin/draft/batchget", first, {"count": 5})
    assert stale["errcode"] == 40001
    assert stale["errmsg"].startswith("invalid credential")
    assert wx(sandbox, "/cgi-bin/draft/batchget", second["access_token"], {"count": 5}) == {
        "total_count": 0,
        "item_count": 0,
        "item": [],
    }
    assert stats(sandbox, "wechat")["token_fetches"] == 2

    assert wx_token(sandbox, secret="wrong")["errcode"] == 40001
    assert wx_token(sandbox, appid="wx-unknown")["errcode"] == 40013
    assert wx_token(sandbox, grant_type="password")["errcode"] == 40002
    assert wx(sandbox, "/cgi-bin/draft/batchget", "", {"count": 5})["errcode"] == 41001
    assert stats(sandbox, "wechat")["token_fetches"] == 2

    sandbox.advance_clock(7200)
    assert wx(sandbox, "/cgi-bin/draft/batchget", second["access_token"])["errcode"] == 42001


def test_wechat_overlap_and_control_expire(sandbox: Sandbox, wechat: str) -> None:
    settings(sandbox, wechat_token_overlap_seconds=300)
    newer = wx_token(sandbox)["access_token"]
    assert wx_count(sandbox, wechat) == {"total_count": 0}  # still works for 5 minutes
    sandbox.advance_clock(301)
    assert wx_count(sandbox, wechat)["errcode"] == 40001

    assert control(sandbox, "POST", "expire", {"route": "wechat"}).status_code == 200
    assert wx_count(sandbox, newer)["errcode"] == 42001
    assert control(sandbox, "POST", "expire", {"route": "nowhere"}).status_code == 400


def test_wechat_stable_token(sandbox: Sandbox, wechat: str) -> None:
    def stable(force: bool = False) -> Any:
        body: dict[str, Any] = {"grant_type": "client_credential", "appid": APPID}
        body.update(secret=SECRET, force_refresh=force)
        return requests.post(sandbox.url("/cgi-bin/stable_token"), json=body, timeout=5).json()

    first = stable()
    sandbox.advance_clock(100)
    same = stable()
    assert same["access_token"] == first["access_token"]
    assert first["expires_in"] - 101 <= same["expires_in"] <= first["expires_in"] - 100
    wx_token(sandbox)  # cgi-bin/token does not touch the stable token
    assert wx_count(sandbox, first["access_token"]) == {"total_count": 0}

    sandbox.advance_clock(7200 - 100 - 200)  # 200 s left: renewed, the old one still valid
    renewed = stable()
    assert renewed["access_token"] != first["access_token"]
    assert renewed["expires_in"] == 7200
    assert wx_count(sandbox, first["access_token"]) == {"total_count": 0}

    forced = stable(force=True)
    assert forced["access_token"] != renewed["access_token"]
    assert wx_count(sandbox, renewed["access_token"])["errcode"] == 40001
    assert wx_count(sandbox, forced["access_token"]) == {"total_count": 0}
    assert stable(force=True)["errcode"] == 45011
    assert stats(sandbox, "wechat")["stable_token_fetches"] == 5


def test_wechat_media_and_draft_add(sandbox: Sandbox, wechat: str) -> None:
    image = wx_upload(sandbox, "/cgi-bin/media/uploadimg", wechat, PNG)
    assert image["url"].startswith("http://mmbiz.qpic.cn/")
    cover = wx_upload(sandbox, "/cgi-bin/material/add_material", wechat, PNG, type="image")
    assert set(cover) == {"media_id", "url"}
    temporary = wx_upload(sandbox, "/cgi-bin/media/upload", wechat, PNG, type="image")
    content = (
        f'<p>正文</p><img src="{image["url"].replace("http:", "https:")}">'
        '<img src="https://elsewhere.example/x.png"><script>alert(1)</script>'
    )

    answer = wx(
        sandbox,
        "/cgi-bin/draft/add",
        wechat,
        {"articles": [article(cover["media_id"], content=content)]},
    )

    assert set(answer) == {"media_id"}
    [item] = wx(sandbox, "/cgi-bin/draft/get", wechat, {"media_id": answer["media_id"]})[
        "news_item"
    ]
    assert "mmbiz.qpic.cn" in item["content"]
    assert "elsewhere.example" not in item["content"]
    assert "<script>" not in item["content"]
    assert item["digest"] == "正文"
    assert item["thumb_url"] == cover["url"]
    [entry] = ledger(sandbox, "wechat")["accepted"]
    assert (entry["kind"], entry["id"], entry["name_or_key"]) == (
        "draft",
        answer["media_id"],
        APPID,
    )

    with_temporary = article(temporary["media_id"])
    assert (
        wx(sandbox, "/cgi-bin/draft/add", wechat, {"articles": [with_temporary]})["errcode"]
        == 40007
    )
    assert wx(sandbox, "/cgi-bin/draft/count", wechat)["errcode"] == 43001  # GET only
    assert (
        wx(sandbox, "/cgi-bin/draft/delete", wechat, {"media_id": answer["media_id"]})["errcode"]
        == 0
    )
    assert (
        wx(sandbox, "/cgi-bin/draft/get", wechat, {"media_id": answer["media_id"]})["errcode"]
        == 40007
    )


@pytest.mark.parametrize(
    ("fields", "errcode"),
    [
        ({"title": "题" * 33}, 45003),
        ({"title": ""}, 44004),
        ({"author": "作" * 17}, 45110),
        ({"digest": "摘" * 129}, 45004),
        ({"content": "文" * 20000}, 45002),
        ({"content_source_url": "https://x/" + "a" * 1020}, 45005),
        ({"thumb_media_id": "no-such-media"}, 40007),
        ({"need_open_comment": 2}, 47001),
    ],
)
def test_wechat_draft_rejections(
    sandbox: Sandbox, wechat: str, fields: dict[str, Any], errcode: int
) -> None:
    cover = wx_upload(sandbox, "/cgi-bin/material/add_material", wechat, PNG, type="image")
    good = article(cover["media_id"])
    assert wx(sandbox, "/cgi-bin/draft/add", wechat, {"articles": [good]}).get("media_id")

    answer = wx(sandbox, "/cgi-bin/draft/add", wechat, {"articles": [{**good, **fields}]})

    assert answer["errcode"] == errcode, answer
    assert " rid: " in answer["errmsg"]
    assert len(ledger(sandbox, "wechat")["accepted"]) == 1


def test_wechat_request_level_rejections(sandbox: Sandbox, wechat: str) -> None:
    cover = wx_upload(sandbox, "/cgi-bin/material/add_material", wechat, PNG, type="image")
    nine = {"articles": [article(cover["media_id"])] * 9}
    assert wx(sandbox, "/cgi-bin/draft/add", wechat, nine)["errcode"] == 45008

    def raw_post(data: bytes) -> Any:
        url = sandbox.url("/cgi-bin/draft/add")
        return requests.post(url, params={"access_token": wechat}, data=data, timeout=5).json()

    assert raw_post(b"{not json")["errcode"] == 47001
    # \\u escapes stay literal on WeChat: 10 CJK characters become 60 and break the title limit.
    escaped = json.dumps({"articles": [article(cover["media_id"])]}).encode()
    assert raw_post(escaped)["errcode"] == 45003
    settings(sandbox, wechat_literal_unicode_escapes=False)
    assert "media_id" in raw_post(escaped)

    get = requests.get(sandbox.url("/cgi-bin/draft/add"), params={"access_token": wechat})
    assert get.json()["errcode"] == 43002
    assert wx_upload(sandbox, "/cgi-bin/media/uploadimg", wechat, BMP)["errcode"] == 40005
    big = PNG + b"\x00" * (1024 * 1024)
    assert wx_upload(sandbox, "/cgi-bin/media/uploadimg", wechat, big)["errcode"] == 40009
    assert (
        wx_upload(sandbox, "/cgi-bin/material/add_material", wechat, PNG, type="x")["errcode"]
        == 40004
    )
    assert (
        wx_upload(sandbox, "/cgi-bin/material/add_material", wechat, PNG, type="thumb")["errcode"]
        == 40005
    )  # thumbs are JPEG only
    no_file = requests.post(
        sandbox.url("/cgi-bin/media/uploadimg"),
        params={"access_token": wechat},
        files={"other": ("x.png", PNG)},
        timeout=5,
    )
    assert no_file.json()["errcode"] == 41005


def test_wechat_freepublish_is_asynchronous(sandbox: Sandbox, wechat: str) -> None:
    settings(sandbox, publish_polls_before_done=2)
    media_id = new_draft(sandbox, wechat)

    submitted = wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": media_id})

    assert (submitted["errcode"], submitted["errmsg"]) == (0, "ok")
    publish_id = submitted["publish_id"]
    assert isinstance(publish_id, str) and submitted["msg_data_id"]
    polls = [
        wx(sandbox, "/cgi-bin/freepublish/get", wechat, {"publish_id": publish_id})
        for _ in range(3)
    ]
    assert [p["publish_status"] for p in polls] == [1, 1, 0]
    assert "article_id" not in polls[0]
    done = polls[2]
    assert done["article_detail"]["count"] == 1
    [item] = done["article_detail"]["item"]
    assert item["idx"] == 1
    assert item["article_url"].startswith("https://mp.weixin.qq.com/s?")

    listed = wx(sandbox, "/cgi-bin/freepublish/batchget", wechat, {"offset": 0, "count": 20})
    assert listed["total_count"] == 1
    assert listed["item"][0]["article_id"] == done["article_id"]
    assert listed["item"][0]["content"]["news_item"][0]["url"] == item["article_url"]
    got = wx(sandbox, "/cgi-bin/freepublish/getarticle", wechat, {"article_id": done["article_id"]})
    assert got["news_item"][0]["title"] == "七步洗手法的科学依据"

    again = wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": media_id})
    assert again["errcode"] == 40007  # the draft left the box when it was published
    published = ledger(sandbox, "wechat")
    assert [e["kind"] for e in published["accepted"]] == ["draft", "freepublish"]
    assert [e["kind"] for e in published["duplicates"]] == ["freepublish"]
    assert wx(sandbox, "/cgi-bin/freepublish/get", wechat, {"publish_id": "9"})["errcode"] == 53502
    assert (
        wx(sandbox, "/cgi-bin/freepublish/getarticle", wechat, {"article_id": "x"})["errcode"]
        == 53600
    )


def test_wechat_publish_failure_unpolled_completion_and_rate_limit(
    sandbox: Sandbox, wechat: str
) -> None:
    settings(sandbox, publish_final_status=4, publish_polls_before_done=0)
    failing = new_draft(sandbox, wechat)
    publish_id = wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": failing})[
        "publish_id"
    ]
    failed = wx(sandbox, "/cgi-bin/freepublish/get", wechat, {"publish_id": publish_id})
    assert (failed["publish_status"], failed["fail_idx"]) == (4, [1])
    assert "news_item" in wx(sandbox, "/cgi-bin/draft/get", wechat, {"media_id": failing})

    settings(sandbox, publish_final_status=0, publish_polls_before_done=5)
    unpolled = new_draft(sandbox, wechat)
    wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": unpolled})
    page = {"offset": 0, "count": 20}
    assert wx(sandbox, "/cgi-bin/freepublish/batchget", wechat, page)["total_count"] == 0
    sandbox.advance_clock(60)  # nobody polled, but the platform finished anyway
    assert wx(sandbox, "/cgi-bin/freepublish/batchget", wechat, page)["total_count"] == 1

    settings(sandbox, wechat_publishes_per_minute=1)
    limited = wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": failing})
    assert limited.get("publish_id")
    second = wx(
        sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": new_draft(sandbox, wechat)}
    )
    assert second["errcode"] == 53501


def test_wechat_mass_send_deduplicates_clientmsgid(sandbox: Sandbox, wechat: str) -> None:
    media_id = new_draft(sandbox, wechat)
    message = {
        "filter": {"is_to_all": True},
        "mpnews": {"media_id": media_id},
        "msgtype": "mpnews",
        "send_ignore_reprint": 0,
        "clientmsgid": "post-42",
    }

    sent = wx(sandbox, "/cgi-bin/message/mass/sendall", wechat, message)
    repeat = wx(sandbox, "/cgi-bin/message/mass/sendall", wechat, message)

    assert (sent["errcode"], sent["errmsg"]) == (0, "send job submission success")
    assert isinstance(sent["msg_id"], int) and isinstance(sent["msg_data_id"], int)
    assert repeat["errcode"] == 45065
    assert repeat["msg_id"] == sent["msg_id"]
    entries = ledger(sandbox, "wechat")
    [mass] = [e for e in entries["accepted"] if e["kind"] == "mass"]
    assert (mass["idempotency_key"], mass["id"]) == ("post-42", str(sent["msg_id"]))
    assert [d["idempotency_key"] for d in entries["duplicates"]] == ["post-42"]
    status = wx(sandbox, "/cgi-bin/message/mass/get", wechat, {"msg_id": sent["msg_id"]})
    assert status == {"msg_id": sent["msg_id"], "msg_status": "SEND_SUCCESS"}

    settings(sandbox, wechat_mass_sends_per_day=0)  # the quota has its own test
    other_id = wx(sandbox, "/cgi-bin/message/mass/sendall", wechat, {**message, "clientmsgid": "x"})
    assert other_id["errcode"] == 40007  # the draft was sent and left the box
    long_id = {**message, "clientmsgid": "k" * 65}
    assert wx(sandbox, "/cgi-bin/message/mass/sendall", wechat, long_id)["errcode"] == 45067


def cube(sb: Sandbox, token: str, name: str, begin: str, end: str | None = None) -> Any:
    return wx(sb, f"/datacube/{name}", token, {"begin_date": begin, "end_date": end or begin})


def mass_send(sb: Sandbox, token: str, media_id: str, key: str | None = None) -> Any:
    body: dict[str, Any] = {
        "filter": {"is_to_all": True},
        "mpnews": {"media_id": media_id},
        "msgtype": "mpnews",
    }
    if key is not None:
        body["clientmsgid"] = key
    return wx(sb, "/cgi-bin/message/mass/sendall", token, body)


def freepublish(sb: Sandbox, token: str, media_id: str) -> Any:
    submitted = wx(sb, "/cgi-bin/freepublish/submit", token, {"media_id": media_id})
    assert submitted["errcode"] == 0, submitted
    for _ in range(5):
        done = wx(sb, "/cgi-bin/freepublish/get", token, {"publish_id": submitted["publish_id"]})
        if done["publish_status"] == 0:
            return {**submitted, **done}
    raise AssertionError(f"publish {submitted} never finished")


def test_wechat_legacy_datacube_is_t_plus_1_one_day_per_call_and_grows(
    sandbox: Sandbox, wechat: str
) -> None:
    """getarticlesummary / getarticletotal are retired (47009) unless served on purpose."""
    set_beijing_time(sandbox, datetime(2024, 5, 1, 9, 0))
    assert cube(sandbox, wechat, "getarticletotal", "2024-04-30")["errcode"] == 47009
    assert cube(sandbox, wechat, "getarticlesummary", "2024-04-30")["errcode"] == 47009
    settings(sandbox, wechat_legacy_datacube="served")
    sent = mass_send(sandbox, wechat, new_draft(sandbox, wechat, title="数据文章"))

    def summary(begin: str, end: str | None = None) -> Any:
        return cube(sandbox, wechat, "getarticlesummary", begin, end)

    assert summary("2024-05-01")["errcode"] == 61501  # today: not yet
    assert summary("2024-04-29", "2024-04-30")["errcode"] == 61500
    assert summary("2024/04/30")["errcode"] == 61500
    assert summary("2024-04-30") == {"list": []}

    set_beijing_time(sandbox, datetime(2024, 5, 2, 9, 0))
    [row] = summary("2024-05-01")["list"]
    assert row["msgid"] == f"{sent['msg_data_id']}_1"
    assert row["title"] == "数据文章"
    assert row["int_page_read_user"] > 0
    assert set(row) >= {"ori_page_read_count", "share_user", "add_to_fav_count"}
    [total] = cube(sandbox, wechat, "getarticletotal", "2024-05-01")["list"]
    assert [d["stat_date"] for d in total["details"]] == ["2024-05-01"]

    set_beijing_time(sandbox, datetime(2024, 5, 3, 9, 0))
    [total] = cube(sandbox, wechat, "getarticletotal", "2024-05-01")["list"]
    first, second = total["details"]
    assert second["stat_date"] == "2024-05-02"
    assert second["int_page_read_count"] > first["int_page_read_count"]
    assert second["target_user"] > 0
    week = cube(sandbox, wechat, "getusersummary", "2024-04-26", "2024-05-02")["list"]
    assert len(week) == 7 and all("new_user" in d and "cancel_user" in d for d in week)
    too_long = cube(sandbox, wechat, "getusersummary", "2024-04-25", "2024-05-02")
    assert too_long["errcode"] == 61500
    [total] = cube(sandbox, wechat, "getusercumulate", "2024-05-02")["list"]
    assert total["cumulate_user"] > 0


def test_wechat_getarticletotaldetail_covers_freepublish_and_mass_send(
    sandbox: Sandbox, wechat: str
) -> None:
    set_beijing_time(sandbox, datetime(2025, 12, 1, 9, 0))
    done = freepublish(sandbox, wechat, new_draft(sandbox, wechat, title="发布的文章"))
    sent = mass_send(sandbox, wechat, new_draft(sandbox, wechat, title="群发的文章"))
    assert cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01")["errcode"] == 61501
    set_beijing_time(sandbox, datetime(2025, 12, 3, 9, 0))
    too_long = cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01", "2025-12-02")
    assert too_long["errcode"] == 61500

    answer = cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01")
    assert answer["is_delay"] is False
    rows = {r["msgid"]: r for r in answer["list"]}
    assert set(rows) == {f"{done['msg_data_id']}_1", f"{sent['msg_data_id']}_1"}
    published, notified = rows[f"{done['msg_data_id']}_1"], rows[f"{sent['msg_data_id']}_1"]
    assert (published["publish_type"], notified["publish_type"]) == (1, 0)
    assert published["ref_date"] == "2025-12-01"
    # running totals per day, up to yesterday
    first, second = published["detail_list"]
    assert (first["stat_date"], second["stat_date"]) == ("2025-12-01", "2025-12-02")
    assert second["read_user"] > first["read_user"] > 0
    fields = {"share_user", "zaikan_user", "like_user", "comment_count", "collection_user"}
    assert fields <= set(second)
    assert cube(sandbox, wechat, "getarticletotaldetail", "2025-12-02")["list"] == []

    # at most 30 days of figures, however late one asks
    set_beijing_time(sandbox, datetime(2026, 2, 1, 9, 0))
    [late] = [
        r
        for r in cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01")["list"]
        if r["publish_type"] == 1
    ]
    assert len(late["detail_list"]) == 30
    assert late["detail_list"][-1]["stat_date"] == "2025-12-30"

    settings(sandbox, wechat_datacube_is_delay=True)
    assert cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01")["is_delay"] is True


def test_wechat_getarticletotaldetail_leaves_out_an_unconfirmed_or_refused_mass_send(
    sandbox: Sandbox, wechat: str
) -> None:
    """With 「API群发保护」 a mass send has readers only once an administrator confirmed it."""
    settings(
        sandbox,
        wechat_mass_protection=True,
        wechat_mass_sends_per_day=0,
        wechat_mass_confirm_seconds=1200,
    )
    set_beijing_time(sandbox, datetime(2025, 12, 1, 23, 50))
    sent = mass_send(sandbox, wechat, new_draft(sandbox, wechat), "late")
    set_beijing_time(sandbox, datetime(2025, 12, 2, 0, 5))  # not confirmed yet
    assert cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01")["list"] == []
    set_beijing_time(sandbox, datetime(2025, 12, 2, 0, 15))  # confirmed at 00:10
    rows = cube(sandbox, wechat, "getarticletotaldetail", "2025-12-01")["list"]
    assert [r["msgid"] for r in rows] == [f"{sent['msg_data_id']}_1"]

    settings(sandbox, wechat_mass_admin="refuses")
    refused = mass_send(sandbox, wechat, new_draft(sandbox, wechat), "refused")
    set_beijing_time(sandbox, datetime(2025, 12, 3, 9, 0))
    rows = cube(sandbox, wechat, "getarticletotaldetail", "2025-12-02")["list"]
    assert f"{refused['msg_data_id']}_1" not in [r["msgid"] for r in rows]
    assert rows == []


def test_wechat_getarticletotaldetail_has_nothing_before_2025_11_01(
    sandbox: Sandbox, wechat: str
) -> None:
    set_beijing_time(sandbox, datetime(2025, 10, 31, 9, 0))
    freepublish(sandbox, wechat, new_draft(sandbox, wechat))
    set_beijing_time(sandbox, datetime(2025, 11, 2, 9, 0))
    assert cube(sandbox, wechat, "getarticletotaldetail", "2025-10-31")["list"] == []


def test_wechat_unknown_credentials_get_no_token(sandbox: Sandbox) -> None:
    """No app is registered: nobody gets a token (no "first token wins")."""
    stable = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    assert wx_token(sandbox)["errcode"] == 40013
    answer = requests.post(sandbox.url("/cgi-bin/stable_token"), json=stable, timeout=TIMEOUT)
    assert answer.json()["errcode"] == 40013
    control(sandbox, "POST", "secrets", {"wechat": {APPID: SECRET}})
    assert "access_token" in wx_token(sandbox)
    assert wx_token(sandbox, appid="wx-other")["errcode"] == 40013
    wrong = {**stable, "secret": "not-the-secret"}
    answer = requests.post(sandbox.url("/cgi-bin/stable_token"), json=wrong, timeout=TIMEOUT)
    assert answer.json()["errcode"] == 40125
    assert wx_token(sandbox, secret="not-the-secret")["errcode"] == 40001
    control(sandbox, "POST", "reset")
    assert wx_token(sandbox)["errcode"] == 40013  # a reset forgets the registration


def test_wechat_unverified_account_cannot_publish_send_or_read_statistics(
    sandbox: Sandbox, wechat: str
) -> None:
    settings(sandbox, wechat_verified=False)
    media_id = new_draft(sandbox, wechat)  # the draft box works for every account
    assert wx_count(sandbox, wechat) == {"total_count": 1}
    day = {"begin_date": "2025-12-01", "end_date": "2025-12-01"}
    for path, body in (
        ("/cgi-bin/freepublish/submit", {"media_id": media_id}),
        ("/cgi-bin/freepublish/batchget", {"offset": 0, "count": 1}),
        ("/cgi-bin/freepublish/get", {"publish_id": "1"}),
        ("/cgi-bin/message/mass/sendall", {"filter": {"is_to_all": True}, "msgtype": "mpnews"}),
        ("/datacube/getarticletotaldetail", day),
        ("/datacube/getusersummary", day),
    ):
        answer = wx(sandbox, path, wechat, body)
        assert answer["errcode"] == 48001, (path, answer)
        assert answer["errmsg"].startswith("api unauthorized")
    assert [e["kind"] for e in ledger(sandbox, "wechat")["accepted"]] == ["draft"]
    settings(sandbox, wechat_verified=True)
    submitted = wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": media_id})
    assert submitted["errcode"] == 0


def test_wechat_mass_send_daily_quota(sandbox: Sandbox, wechat: str) -> None:
    set_beijing_time(sandbox, datetime(2025, 12, 1, 9, 0))
    first = mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k1")
    assert first["errcode"] == 0
    refused = mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k2")
    assert refused["errcode"] == 45028 and refused["errmsg"].startswith("has no masssend quota")
    # a repeated clientmsgid is still recognised (45065), not counted
    assert mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k1")["errcode"] == 45065
    set_beijing_time(sandbox, datetime(2025, 12, 2, 0, 1))  # a new day in Beijing
    assert mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k3")["errcode"] == 0
    settings(sandbox, wechat_mass_sends_per_day=2)
    assert mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k4")["errcode"] == 0
    assert mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k5")["errcode"] == 45028
    settings(sandbox, wechat_mass_sends_per_day=0)  # no limit
    assert mass_send(sandbox, wechat, new_draft(sandbox, wechat), "k6")["errcode"] == 0
    mass = [e for e in ledger(sandbox, "wechat")["accepted"] if e["kind"] == "mass"]
    assert [e["idempotency_key"] for e in mass] == ["k1", "k3", "k4", "k6"]


@pytest.mark.parametrize(
    ("content", "errcode"),
    [
        ('<p>详见<a href="https://www.who.int/">世界卫生组织</a></p>', 45166),
        ("<p><A HREF='http://example.org/x'>外链</A></p>", 45166),
        ('<p><a href="javascript:alert(1)">x</a></p>', 45166),
        ('<p><a href="https://mp.weixin.qq.com.evil.org/s/x">x</a></p>', 45166),
        ('<p>往期：<a href="https://mp.weixin.qq.com/s/abc">文章</a></p>', None),
        ("<p>世界卫生组织（https://www.who.int/）</p>", None),
    ],
)
def test_wechat_draft_refuses_links_to_outside_domains(
    sandbox: Sandbox, wechat: str, content: str, errcode: int | None
) -> None:
    thumb = wx_upload(sandbox, "/cgi-bin/material/add_material", wechat, PNG, type="image")
    answer = wx(
        sandbox,
        "/cgi-bin/draft/add",
        wechat,
        {"articles": [article(thumb["media_id"], content=content)]},
    )
    if errcode is None:
        assert "media_id" in answer, answer
    else:
        assert answer["errcode"] == errcode and "invalid content" in answer["errmsg"]
        assert ledger(sandbox, "wechat")["accepted"] == []


# -- Douyin (its own tests are in test_douyin_sandbox.py) -----------------------------------

DY = {
    "client_key": "awkey",
    "client_secret": "douyin-SECRET",
    "access_token": "act.douyin-TOKEN",
    "refresh_token": "rft.douyin-REFRESH",
    "open_id": "open-id-1",
}


def dy(sb: Sandbox, path: str, method: str = "POST", **kwargs: Any) -> Any:
    """One call to a current Douyin video interface (``path`` under /api/douyin/v1/video/)."""
    response = requests.request(
        method,
        sb.url(f"/api/douyin/v1/video/{path}"),
        params={"open_id": DY["open_id"]},
        headers={"access-token": DY["access_token"]},
        timeout=TIMEOUT,
        **kwargs,
    )
    assert response.status_code == 200
    return response.json()


def dy_code(answer: Any) -> int:
    assert answer["extra"]["error_code"] == answer["data"]["error_code"]
    return int(answer["data"]["error_code"])


def oauth(sb: Sandbox, path: str, **form: str) -> Any:
    response = requests.post(sb.url(f"/oauth/{path}/"), data=form, timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


# -- faults, settings, stats and the request log ---------------------------------------------


@pytest.mark.usefixtures("weibo_token")  # count.json below needs a known token
def test_fault_rules_filter_on_path(sandbox: Sandbox, wechat: str) -> None:
    rules = [
        {"route": "wechat", "path": "freepublish/submit", "mode": "drop_after", "count": 1},
        {"route": "weibo", "path": "share.json", "mode": "error_before"},
        {"route": "wechat", "path": "draft/count", "mode": "platform_error", "code": 48001},
    ]
    assert control(sandbox, "POST", "faults", rules).status_code == 200
    media_id = new_draft(sandbox, wechat)  # draft/add and add_material are not faulted

    with pytest.raises(requests.ConnectionError):
        wx(sandbox, "/cgi-bin/freepublish/submit", wechat, {"media_id": media_id})

    published = [e for e in ledger(sandbox, "wechat")["accepted"] if e["kind"] == "freepublish"]
    assert len(published) == 1  # applied, answer lost
    assert share(sandbox).status_code == 502
    assert weibo_get(sandbox, "count.json", ids="1").status_code == 200
    assert wx_count(sandbox, wechat)["errcode"] == 48001
    assert ledger(sandbox, "weibo")["accepted"] == []

    for bad in (
        [{"route": "wechat", "mode": "busy", "path": ""}],
        [{"route": "wechat", "mode": "busy", "path": 5}],
        [{"route": "wechat", "mode": "platform_error"}],
        [{"route": "wechat", "mode": "busy", "code": 1}],
    ):
        assert control(sandbox, "POST", "faults", bad).status_code == 400, bad


def test_busy_answers_of_the_new_platforms(sandbox: Sandbox, wechat: str) -> None:
    control(sandbox, "POST", "faults", [{"route": "*", "mode": "busy"}])

    weibo = share(sandbox)
    assert (weibo.status_code, weibo.json()["error_code"]) == (503, "10009")
    assert wx(sandbox, "/cgi-bin/draft/batchget", wechat, {"count": 1})["errcode"] == -1
    douyin = dy(sandbox, "video_list/", "GET")
    assert dy_code(douyin) == 2100004
    refresh = oauth(sandbox, "refresh_token", refresh_token="r")
    assert (refresh["message"], refresh["data"]["error_code"]) == ("error", 2100004)


def test_settings_are_checked_all_or_nothing_and_reset(sandbox: Sandbox) -> None:
    defaults = control(sandbox, "GET", "settings").json()
    assert defaults["weibo_posts_per_hour"] == 30
    assert defaults["publish_polls_before_done"] == 1
    assert defaults["douyin_min_part_bytes"] == 5 * 1024 * 1024

    bad = control(
        sandbox, "POST", "settings", {"weibo_posts_per_hour": 5, "publish_final_status": 9}
    )
    assert bad.status_code == 400
    assert "publish_final_status" in bad.json()["error"]
    assert control(sandbox, "POST", "settings", {"no_such_knob": 1}).status_code == 400
    assert control(sandbox, "GET", "settings").json() == defaults

    settings(sandbox, weibo_posts_per_hour=5, timeline_delay_seconds=90)
    assert control(sandbox, "GET", "settings").json()["weibo_posts_per_hour"] == 5
    settings(sandbox, weibo_posts_per_hour=None)
    assert control(sandbox, "GET", "settings").json()["weibo_posts_per_hour"] == 30
    control(sandbox, "POST", "reset")
    assert control(sandbox, "GET", "settings").json() == defaults


def test_stats_and_reset(sandbox: Sandbox, wechat: str) -> None:
    everything = control(sandbox, "GET", "stats").json()
    assert set(everything) >= {"weibo", "wechat", "douyin"}
    assert everything["wechat"]["token_fetches"] == 1
    assert control(sandbox, "GET", "stats?route=nowhere").status_code == 400

    control(sandbox, "POST", "reset")

    assert stats(sandbox, "wechat")["token_fetches"] == 0
    # Forgotten: the token, and the registration (no app gets a token until one is
    # registered again).
    assert wx_count(sandbox, wechat)["errcode"] == 40001
    assert wx_token(sandbox)["errcode"] == 40013
    assert wx_token(sandbox, appid="wx-any", secret="any")["errcode"] == 40013


def test_request_log_strips_platform_secrets(sandbox: Sandbox, wechat: str) -> None:
    weibo_get(sandbox, "count.json", ids="1")
    wx_token(sandbox)
    dy(sandbox, "video_list/", "GET")

    log = requests.get(sandbox.url("/_sandbox/requests"), timeout=TIMEOUT).json()
    dumped = json.dumps(log)
    for secret in (WEIBO_TOKEN, SECRET, wechat, DY["access_token"]):
        assert secret not in dumped
    assert [e["route"] for e in log] == ["wechat", "weibo", "wechat", "douyin"]
    assert "secret=***" in log[2]["path"]


def test_multipart_parser_keeps_binary_data_exact() -> None:
    boundary = "b0undary"
    payload = b"\r\n--b0undar\r\n\x00\xff\r\n"
    body = (
        b"preamble\r\n--b0undary\r\n"
        b'Content-Disposition: form-data; name="status"\r\n\r\n'
        b"\xe7\xa7\x91\xe6\x99\xae\r\n--b0undary\r\n"
        b"Content-Disposition: form-data; name=\"pic\"; filename*=UTF-8''%E5%9B%BE.png\r\n"
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--b0undary--\r\nepilogue"
    )

    text, pic = parse_multipart(boundary, body)

    assert (text.name, text.filename, text.data.decode()) == ("status", None, "科普")
    assert (pic.name, pic.filename, pic.content_type) == ("pic", "图.png", "image/png")
    assert pic.data == payload
