"""One helper maps every platform's documented error codes to our error classes
(kepubot/channels/errors.py, docs/architecture.md §5.7). The messages are the ones each channel
wrote before the helper existed, character for character."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from kepubot.channels import errors as codes
from kepubot.channels import robot, weibo
from kepubot.channels.douyin import api as douyin_api
from kepubot.channels.douyin.channel import DouyinChannel
from kepubot.channels.errors import ErrorRule, check_rules, error_for, excerpt, raise_for_code
from kepubot.channels.wechat import codes as wechat
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)

NOW = datetime(2026, 3, 2, 1, 0, 0, tzinfo=UTC)  # 09:00 in Beijing

RULES = {
    "wait": ErrorRule(RateLimited, "{what}: wait ({detail})"),
    "gone": ErrorRule(Permanent),
    "key": ErrorRule(AuthExpired, "{what}: refused ({detail}){hint}"),
}


def caught(call: Any, *args: Any, **kwargs: Any) -> ChannelError:
    with pytest.raises(ChannelError) as info:
        call(*args, **kwargs)
    return info.value


# --- the helper ------------------------------------------------------------------------------


def test_a_code_becomes_its_rules_class_and_message() -> None:
    table = {7: "wait", 8: "key"}
    error = caught(
        raise_for_code, 7, table, RULES, what="x main: send", detail="e 7", retry_after=12.0
    )
    assert type(error) is RateLimited
    assert str(error) == "x main: send: wait (e 7)"
    assert error.code == 7 and error.retry_after == 12.0
    error = caught(raise_for_code, 8, table, RULES, what="x", detail="e 8", hint="; fix it")
    assert type(error) is AuthExpired and str(error) == "x: refused (e 8); fix it"


def test_unlisted_codes_get_the_default_kind() -> None:
    error = caught(raise_for_code, 99, {}, RULES, what="x", detail="e 99", default="gone")
    assert type(error) is Permanent and str(error) == "x: refused (e 99)"
    assert codes.kind_of(None, {1: "wait"}) == "permanent"
    assert codes.kind_of(1, {1: "wait"}) == "wait"


def test_braces_in_the_platforms_text_are_kept_as_text() -> None:
    error = error_for("gone", RULES, code=1, what="x", detail='{"errmsg": "{what}"}')
    assert str(error) == 'x: refused ({"errmsg": "{what}"})'


def test_a_kind_without_a_rule_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="no rule for error kind 'new'"):
        error_for("new", RULES, code=5, what="x", detail="d")
    with pytest.raises(RuntimeError, match="error kinds without a rule: new, permanent"):
        check_rules({5: "new", 6: "wait"}, RULES)


def test_excerpt_is_one_masked_line_cut_at_the_limit() -> None:
    assert excerpt("bad\n  token S3CRET here", ["S3CRET"]) == "bad token *** here"
    assert excerpt("", ()) == "no errmsg"
    assert excerpt(None, (), empty="no error text") == "no error text"
    assert excerpt("x" * 205, (), limit=200) == "x" * 200 + "…"


@pytest.mark.parametrize(
    ("table", "rules"),
    [
        (wechat.ERRORS, wechat.RULES),
        (wechat.ERRORS, wechat.CREATING_RULES),
        (robot.WECOM_ERRORS, robot.RULES),
        (robot.DINGTALK_ERRORS, robot.RULES),
        (weibo.ERRORS, weibo.RULES),
        (weibo.ERRORS, weibo.READ_RULES),
        ({k: v for k, v in douyin_api.ERRORS.items() if v != "auth"}, douyin_api.RULES),
        (douyin_api.ERRORS, douyin_api.PUBLISHING_RULES | {"auth": ErrorRule(AuthExpired)}),
    ],
    ids=[
        "wechat",
        "wechat-creating",
        "wecom",
        "dingtalk",
        "weibo",
        "weibo-read",
        "douyin",
        "dy-pub",
    ],
)
def test_every_platform_table_has_a_rule_for_each_kind(table: Any, rules: Any) -> None:
    check_rules(table, rules)


# --- each platform, messages as before ------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "creates", "cls", "message"),
    [
        (
            -1,
            True,
            OutcomeUnknown,
            "w: the platform was busy and may or may not have done it ({d})",
        ),
        (-1, False, Transient, "w: the platform was busy ({d})"),
        (45065, True, OutcomeUnknown, "w: the platform already has this ({d})"),
        (45011, True, RateLimited, "w: rate limited ({d})"),
        (42001, False, AuthExpired, "w: refused ({d}); check appid"),
        (61501, False, Transient, "w: temporarily refused ({d})"),
        (45002, True, Permanent, "w: refused ({d})"),
        (99999, True, Permanent, "w: refused ({d})"),
    ],
)
def test_wechat(errcode: int, creates: bool, cls: type, message: str) -> None:
    error = caught(
        wechat.raise_for_errcode,
        errcode,
        "some\nmsg SECRET",
        what="w",
        creates=creates,
        now=NOW,
        secrets=["SECRET"],
        auth_hint="check appid",
    )
    assert type(error) is cls
    assert str(error) == message.format(d=f"wechat errcode {errcode}: some msg ***")
    assert error.code == errcode


def test_wechat_waits() -> None:
    daily = caught(wechat.raise_for_errcode, 45009, "quota", what="w", creates=True, now=NOW)
    assert isinstance(daily, RateLimited) and daily.retry_after == 15 * 3600  # to 00:00 Beijing
    minute = caught(wechat.raise_for_errcode, 45066, "", what="w", creates=True, now=NOW)
    assert isinstance(minute, RateLimited) and minute.retry_after == 60.0
    assert str(minute) == "w: rate limited (wechat errcode 45066: no errmsg)"
    eligibility = caught(
        wechat.raise_for_errcode, 48001, "unauthorized", what="w", creates=True, now=NOW
    )
    assert str(eligibility).startswith(
        "w: refused (wechat errcode 48001: unauthorized); 接口未授权"
    )
    assert wechat.raise_for_errcode(0, "ok", what="w", creates=True, now=NOW) is None


@pytest.mark.parametrize(
    ("errcode", "cls", "message"),
    [
        (-1, OutcomeUnknown, "r: the platform may or may not have sent the message ({d})"),
        (45009, RateLimited, "r: rate limited ({d})"),
        (93000, AuthExpired, "r: credentials refused ({d}); check webhook_key"),
        (40058, Permanent, "r: refused ({d})"),
        (12345, Permanent, "r: refused ({d})"),
    ],
)
def test_wecom_robot(errcode: int, cls: type, message: str) -> None:
    error = caught(
        robot.raise_for_errcode,
        "wecom",
        robot.WECOM_ERRORS,
        errcode,
        "bad",
        what="r",
        retry_after=60.0,
        auth_hint="check webhook_key",
    )
    assert type(error) is cls and error.code == errcode
    assert str(error) == message.format(d=f"wecom errcode {errcode}: bad")
    if isinstance(error, RateLimited):
        assert error.retry_after == 60.0


def _weibo_error(code: Any, reading: bool, retry_after: str | None = None) -> ChannelError:
    response = requests.Response()
    response.status_code = 400
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    answer = {"error_code": code, "error": "some text"}
    channel = object.__new__(weibo.WeiboChannel)  # _raise_error reads only _mask's settings
    channel._mask = lambda text: text  # type: ignore[method-assign]
    return caught(channel._raise_error, response, answer, "wb", reading=reading)


@pytest.mark.parametrize(
    ("code", "reading", "cls", "message"),
    [
        ("10023", False, RateLimited, "wb: rate limited ({d})"),
        (21327, True, AuthExpired, "wb: the access token was refused ({d}); " + weibo.REAUTHORIZE),
        (
            20019,
            False,
            OutcomeUnknown,
            "wb: Weibo already has this text ({d}); an earlier attempt probably got through, so"
            " it is looked up instead of being sent again",
        ),
        (20019, True, Transient, "wb: temporarily refused ({d})"),
        (20032, False, OutcomeUnknown, "wb: accepted, but Weibo is slow ({d})"),
        (20032, True, Transient, "wb: temporarily refused ({d})"),
        (20012, False, Permanent, "wb: refused ({d})"),
        (None, False, Permanent, "wb: refused ({d})"),
    ],
)
def test_weibo(code: Any, reading: bool, cls: type, message: str) -> None:
    error = _weibo_error(code, reading)
    number = int(code) if code is not None else None
    shown = number if number is not None else "(no code)"
    assert type(error) is cls and error.code == number
    assert str(error) == message.format(d=f"Weibo error {shown}: some text")


def test_weibo_rate_limit_wait() -> None:
    assert _weibo_error(10022, False).retry_after == weibo.RATE_LIMIT_WAIT  # type: ignore[attr-defined]
    assert _weibo_error(10022, False, "90").retry_after == 90.0  # type: ignore[attr-defined]


@pytest.fixture
def douyin(monkeypatch: pytest.MonkeyPatch) -> DouyinChannel:
    for name in ("KP_DY_SECRET", "KP_DY_TOKEN", "KP_DY_REFRESH"):
        monkeypatch.setenv(name, "value-" + name)
    settings = DouyinChannel.Settings.model_validate(
        {
            "type": "douyin",
            "client_key": "ck",
            "client_secret": "${KP_DY_SECRET}",
            "open_id": "oid",
            "access_token": "${KP_DY_TOKEN}",
            "refresh_token": "${KP_DY_REFRESH}",
        }
    )
    return DouyinChannel("dy", settings, None)


REAUTH = (
    "the Douyin account must authorize the app again, then set the new access_token and"
    " refresh_token of [channels.dy] (its deliveries stay queued until then)"
)


@pytest.mark.parametrize(
    ("code", "detail", "publishing", "cls", "message"),
    [
        (10010, "d", False, AuthExpired, "x: the authorization expired (d); " + REAUTH),
        (
            28001056,
            "d",
            False,
            douyin_api.CapabilityOffline,
            "x: Douyin took this interface"
            " offline for the app (d); ask the open platform whether a replacement exists",
        ),
        (
            28001016,
            "d",
            False,
            AuthExpired,
            "x: refused (d); check the app's status, client_key"
            " and open_id on the Douyin open platform, and authorize again if the account changed",
        ),
        (28003018, "d", False, RateLimited, "x: rate limited (d)"),
        (
            2100004,
            "d",
            True,
            OutcomeUnknown,
            "x: Douyin was busy (d); the video may or may not have been created",
        ),
        (28001006, "d", False, Transient, "x: temporarily refused (d)"),
        (
            2100005,
            "video_id 已被使用",
            True,
            OutcomeUnknown,
            "x: Douyin says the video_id was"
            " already used (video_id 已被使用), so an earlier create went through",
        ),
        (2100005, "video_id 已被使用", False, Permanent, "x: refused (video_id 已被使用)"),
        (1, "d", False, Permanent, "x: refused (d)"),
    ],
)
def test_douyin_calls(
    douyin: DouyinChannel, code: int, detail: str, publishing: bool, cls: type, message: str
) -> None:
    error = caught(douyin._raise_for, code, detail, "x", publishing, "create")
    assert type(error) is cls and str(error) == message and error.code == code


def test_douyin_scope_and_refused_token(douyin: DouyinChannel) -> None:
    error = caught(douyin._raise_for, 28001018, "d", "x", False, "list")
    assert type(error) is AuthExpired
    assert str(error) == "x: " + douyin.scope_message("video.list.bind", "d")
    with pytest.raises(douyin_api._TokenRefused):
        douyin._raise_for(28001008, "d", "x", False, "list")


@pytest.mark.parametrize(
    ("code", "detail", "cls", "message"),
    [
        (28003018, "d", RateLimited, "x: rate limited (d)"),
        (2100004, "d", Transient, "x: temporarily refused (d)"),
        (
            2100004,
            "refresh_token 已过期",
            AuthExpired,
            "x: Douyin refused the refresh (refresh_token 已过期); " + REAUTH,
        ),
        (
            10013,
            "d",
            AuthExpired,
            "x: refused (d); check client_key and client_secret and the"
            " app's status and permissions on the Douyin open platform",
        ),
        (
            10004,
            "d",
            AuthExpired,
            "x: refused (d); check client_key and client_secret and the"
            " app's status and permissions on the Douyin open platform",
        ),
        (10010, "d", AuthExpired, "x: Douyin refused the refresh (d); " + REAUTH),
        (28001008, "d", AuthExpired, "x: Douyin refused the refresh (d); " + REAUTH),
        (777, "d", AuthExpired, "x: Douyin refused the refresh (d); " + REAUTH),
    ],
)
def test_douyin_refresh(
    douyin: DouyinChannel, code: int, detail: str, cls: type, message: str
) -> None:
    error = caught(douyin._raise_refresh_error, code, detail, "x")
    assert type(error) is cls and str(error) == message and error.code == code
    if isinstance(error, RateLimited):
        assert error.retry_after == douyin_api.RATE_LIMIT_RETRY_AFTER


# --- Bilibili and Kuaishou (issue 15), through the same helper ------------------------------


@pytest.fixture
def open_ctx(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from open_platforms import ENV, Context

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return Context(tmp_path)


def test_bilibili_and_kuaishou_tables_have_rules() -> None:
    from kepubot.channels.bilibili import api as bili
    from kepubot.channels.kuaishou import api as ks

    for module in (bili, ks):
        calls = {k: v for k, v in module.ERRORS.items() if v != "auth"}
        check_rules(calls, module.RULES)
        check_rules(calls, module.PUBLISHING_RULES)


def test_bilibili_messages(open_ctx: Any) -> None:
    from open_platforms import bilibili

    from kepubot.channels.bilibili.codes import ERRORS

    channel = bilibili(open_ctx, "https://member.bilibili.com")
    code_of = {kind: code for code, kind in ERRORS.items()}
    published = caught(channel._raise_for, code_of["busy"], "d", "x", True, "submit")
    assert type(published) is OutcomeUnknown
    assert str(published) == (
        "x: Bilibili was busy (d); the archive may or may not have been submitted"
    )
    read = caught(channel._raise_for, code_of["busy"], "d", "x", False, "list")
    assert type(read) is Transient and str(read) == "x: temporarily refused (d)"
    limited = caught(channel._raise_for, code_of["rate_limited"], "d", "x", False, "list")
    assert type(limited) is RateLimited and str(limited) == "x: rate limited (d)"
    unknown = caught(channel._raise_for, 987654321, "d", "x", True, "submit")
    assert type(unknown) is Permanent and str(unknown) == "x: refused (d)"


def test_kuaishou_messages(open_ctx: Any) -> None:
    from open_platforms import kuaishou

    from kepubot.channels.kuaishou.api import PhotoMissing
    from kepubot.channels.kuaishou.codes import ERRORS

    channel = kuaishou(open_ctx, "https://open.kuaishou.com")
    code_of = {kind: code for code, kind in ERRORS.items()}
    missing = caught(channel._raise_for, code_of["not_found"], "gone", "x", False, "list")
    assert type(missing) is PhotoMissing and str(missing) == "x: gone"
    busy = caught(channel._raise_for, code_of["busy"], "d", "x", True, "publish")
    assert type(busy) is OutcomeUnknown
    assert str(busy) == "x: Kuaishou was busy (d); the video may or may not have been published"
    ended = caught(channel._raise_for, code_of["refresh_expired"], "d", "x", False, "list")
    assert type(ended) is AuthExpired
    assert str(ended) == channel.reauthorize("x", "the authorization ended (d)")
    denied = caught(channel._raise_for, code_of["denied"], "d", "x", False, "list")
    assert str(denied) == "x: refused (d); check app_id and app_secret"
