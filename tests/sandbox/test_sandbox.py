"""The sandbox against a real HTTP client: platform behaviour, faults, ledger, control API.

Every test starts its own Sandbox on a free port; no test sleeps for long (hang and delay
faults use fractions of a second, time-based limits move the sandbox clock instead).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from kepubot.sandbox import Sandbox, dingtalk_sign, sign_body

TIMEOUT = 5


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.start()
    try:
        register_robots(sb)
        yield sb
    finally:
        sb.stop()


def control(sb: Sandbox, method: str, action: str, payload: Any = None) -> requests.Response:
    return requests.request(method, sb.url(f"/_sandbox/{action}"), json=payload, timeout=TIMEOUT)


def register_robots(sb: Sandbox) -> None:
    """The robots these tests talk to: the emulated robots refuse any key or token they do
    not know. "t" and "other" are DingTalk robots without a security setting (old robots)."""
    robots = {"wecom_keys": ["k", "other-key"], "dingtalk": {"t": "", "other": ""}}
    assert control(sb, "POST", "secrets", robots).status_code == 200


def ledger(sb: Sandbox, route: str | None = None) -> dict[str, list[dict[str, Any]]]:
    params = {"route": route} if route else None
    response = requests.get(sb.url("/_sandbox/ledger"), params=params, timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def request_log(sb: Sandbox) -> list[dict[str, Any]]:
    return requests.get(sb.url("/_sandbox/requests"), timeout=TIMEOUT).json()


def set_faults(sb: Sandbox, payload: Any) -> None:
    response = control(sb, "POST", "faults", payload)
    assert response.status_code == 200, response.text


def post_webhook(
    sb: Sandbox,
    name: str = "cms",
    body: Any = None,
    key: str | None = "k-1",
    secret: str | None = None,
    timeout: float = TIMEOUT,
    **headers: str,
) -> requests.Response:
    raw = json.dumps(body if body is not None else {"title": "Hello"}).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    if secret is not None:
        all_headers["X-Kepubot-Signature"] = sign_body(secret, raw)
    return requests.post(sb.url(f"/webhook/{name}"), data=raw, headers=all_headers, timeout=timeout)


def wecom(sb: Sandbox, key: str, message: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        sb.url("/cgi-bin/webhook/send"), params={"key": key}, json=message, timeout=TIMEOUT
    )
    assert response.status_code == 200
    return response.json()


def text(content: str = "hello") -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content}}


def dingtalk(
    sb: Sandbox,
    token: str,
    message: dict[str, Any],
    secret: str | None = None,
    timestamp: int | None = None,
    sign: str | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"access_token": token}
    if secret is not None:
        timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
        params["timestamp"] = timestamp
        params["sign"] = sign if sign is not None else dingtalk_sign(secret, timestamp)
    response = requests.post(sb.url("/robot/send"), params=params, json=message, timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


OK = {"errcode": 0, "errmsg": "ok"}


# -- webhook receiver ----------------------------------------------------------------------


def test_webhook_accepts_and_records_in_the_ledger(sandbox: Sandbox) -> None:
    response = post_webhook(sandbox, body={"title": "Black holes"}, key="post-7")

    assert response.status_code == 201
    host = sandbox.base_url.removeprefix("http://")
    assert response.json() == {"id": "cms-1", "url": f"http://{host}/cms/posts/1"}
    entries = ledger(sandbox)
    assert entries["duplicates"] == []
    [entry] = entries["accepted"]
    assert entry["route"] == "webhook"
    assert entry["name_or_key"] == "cms"
    assert entry["idempotency_key"] == "post-7"
    assert entry["body"] == {"title": "Black holes"}
    assert abs(entry["at"] - time.time()) < 5
    assert post_webhook(sandbox, key="post-8").json()["id"] == "cms-2"
    assert post_webhook(sandbox, name="other", key="post-7").json()["id"] == "other-1"


def test_duplicate_key_is_refused_with_409_and_counted(sandbox: Sandbox) -> None:
    assert post_webhook(sandbox, key="same").status_code == 201

    repeat = post_webhook(sandbox, body={"title": "again"}, key="same")

    assert repeat.status_code == 409
    assert repeat.json() == {"error": "duplicate", "id": "cms-1"}
    entries = ledger(sandbox)
    assert len(entries["accepted"]) == 1
    [dup] = entries["duplicates"]
    assert (dup["route"], dup["name_or_key"], dup["idempotency_key"]) == ("webhook", "cms", "same")
    assert dup["body"] == {"title": "again"}


def test_concurrent_posts_with_one_key_are_accepted_once(sandbox: Sandbox) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(16)

    def send() -> None:
        barrier.wait()
        statuses.append(post_webhook(sandbox, key="race").status_code)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [201] + [409] * 15
    entries = ledger(sandbox)
    assert len(entries["accepted"]) == 1
    assert len(entries["duplicates"]) == 15


def test_webhook_rejects_missing_key_and_bad_json(sandbox: Sandbox) -> None:
    assert post_webhook(sandbox, key=None).status_code == 400
    bad = requests.post(
        sandbox.url("/webhook/cms"), data=b"{not json", headers={"Idempotency-Key": "x"}
    )
    assert bad.status_code == 400
    assert requests.get(sandbox.url("/webhook/cms"), timeout=TIMEOUT).status_code == 405
    assert ledger(sandbox)["accepted"] == []


def test_lookup_and_recent_posts(sandbox: Sandbox) -> None:
    created = post_webhook(sandbox, key="a").json()
    post_webhook(sandbox, key="b")

    found = requests.get(sandbox.url("/webhook/cms/lookup"), params={"key": "a"}, timeout=TIMEOUT)
    assert found.status_code == 200
    assert found.json() == created
    missing = requests.get(
        sandbox.url("/webhook/cms/lookup"), params={"key": "zzz"}, timeout=TIMEOUT
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": "not found"}
    other = requests.get(sandbox.url("/webhook/x/lookup"), params={"key": "a"}, timeout=TIMEOUT)
    assert other.status_code == 404

    recent = requests.get(sandbox.url("/webhook/cms/posts"), timeout=TIMEOUT).json()["posts"]
    assert [p["idempotency_key"] for p in recent] == ["b", "a"]


def test_signature_checked_once_a_secret_is_set(sandbox: Sandbox) -> None:
    assert control(sandbox, "POST", "secrets", {"webhook": {"cms": "s3cret"}}).status_code == 200

    assert post_webhook(sandbox, key="1", secret="s3cret").status_code == 201
    assert post_webhook(sandbox, key="2", secret="wrong").status_code == 401
    assert post_webhook(sandbox, key="3").status_code == 401
    assert post_webhook(sandbox, key="4", **{"X-Kepubot-Signature": "sha256=00"}).status_code == 401
    # Another receiver has no secret: unsigned posts are fine there.
    assert post_webhook(sandbox, name="open", key="5").status_code == 201
    assert [e["idempotency_key"] for e in ledger(sandbox)["accepted"]] == ["1", "5"]


def test_chunked_body_and_keep_alive_session(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        for i in range(3):
            response = session.post(
                sandbox.url("/webhook/cms"),
                data=iter([b'{"n": ', str(i).encode(), b"}"]),  # chunked
                headers={"Idempotency-Key": f"c{i}"},
                timeout=TIMEOUT,
            )
            assert response.status_code == 201
    assert [e["body"] for e in ledger(sandbox)["accepted"]] == [{"n": 0}, {"n": 1}, {"n": 2}]


# -- faults --------------------------------------------------------------------------------


def test_drop_after_applies_then_closes_without_answer(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "drop_after", "count": 1}])

    with pytest.raises(requests.ConnectionError):
        post_webhook(sandbox, key="lost-answer")

    assert [e["idempotency_key"] for e in ledger(sandbox)["accepted"]] == ["lost-answer"]
    [logged] = request_log(sandbox)
    assert (logged["status"], logged["fault"]) == (None, "drop_after")
    # The client can reconcile: the post is there, and a resend is refused as a duplicate.
    found = requests.get(
        sandbox.url("/webhook/cms/lookup"), params={"key": "lost-answer"}, timeout=TIMEOUT
    )
    assert found.status_code == 200
    assert post_webhook(sandbox, key="lost-answer").status_code == 409


def test_hang_after_applies_and_the_client_times_out(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "hang_after", "seconds": 2}])

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        post_webhook(sandbox, key="slow", timeout=0.5)

    assert time.monotonic() - started < 1.5
    assert [e["idempotency_key"] for e in ledger(sandbox)["accepted"]] == ["slow"]
    assert request_log(sandbox)[0]["fault"] == "hang_after"


def test_hang_after_answers_normally_when_the_client_waits(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "hang_after", "seconds": 0.2}])
    started = time.monotonic()
    assert post_webhook(sandbox, key="k").status_code == 201
    assert time.monotonic() - started >= 0.2


def test_error_before_does_not_apply(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "*", "mode": "error_before"}])

    response = post_webhook(sandbox)

    assert response.status_code == 502
    assert ledger(sandbox) == {"accepted": [], "duplicates": [], "deleted": []}
    assert request_log(sandbox)[0]["status"] == 502


def test_error_after_applies_then_fails(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "error_after", "status": 500}])

    assert post_webhook(sandbox, key="x").status_code == 500
    assert len(ledger(sandbox)["accepted"]) == 1


def test_delay_then_normal_answer(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "delay", "seconds": 0.2}])
    started = time.monotonic()
    assert post_webhook(sandbox).status_code == 201
    assert time.monotonic() - started >= 0.2
    assert request_log(sandbox)[0]["fault"] == "delay"


def test_rate_limit_sends_retry_after(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "rate_limit", "count": 1}])
    limited = post_webhook(sandbox)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "120"

    set_faults(sandbox, [{"route": "webhook", "mode": "rate_limit", "seconds": 30}])
    assert post_webhook(sandbox).headers["Retry-After"] == "30"

    set_faults(
        sandbox, [{"route": "webhook", "mode": "rate_limit", "seconds": 90, "http_date": True}]
    )
    when = parsedate_to_datetime(post_webhook(sandbox).headers["Retry-After"]).timestamp()
    assert 80 <= when - time.time() <= 100
    assert ledger(sandbox)["accepted"] == []


def test_busy_uses_each_platform_s_own_answer(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "*", "mode": "busy"}])

    assert post_webhook(sandbox).status_code == 503
    assert wecom(sandbox, "k", text()) == {"errcode": -1, "errmsg": "system busy"}
    assert dingtalk(sandbox, "t", text()) == {"errcode": -1, "errmsg": "system busy"}
    assert ledger(sandbox)["accepted"] == []


def test_count_limits_the_fault_then_normal_service(sandbox: Sandbox) -> None:
    set_faults(sandbox, [{"route": "webhook", "mode": "error_before", "count": 2}])

    statuses = [post_webhook(sandbox, key=f"k{i}").status_code for i in range(4)]

    assert statuses == [502, 502, 201, 201]
    [rule] = control(sandbox, "GET", "faults").json()["rules"]
    assert (rule["fired"], rule["remaining"]) == (2, 0)


def test_rules_filter_on_route_and_method(sandbox: Sandbox) -> None:
    set_faults(
        sandbox,
        [
            {"route": "wecom", "mode": "error_before"},
            {"route": "webhook", "mode": "error_before", "method": "POST", "count": 1},
        ],
    )
    lookup = requests.get(sandbox.url("/webhook/cms/lookup"), params={"key": "k"}, timeout=5)
    assert lookup.status_code == 404  # GET is not faulted
    assert post_webhook(sandbox, key="k").status_code == 502
    assert post_webhook(sandbox, key="k").status_code == 201
    assert dingtalk(sandbox, "t", text()) == OK


def test_random_faults_are_reproducible_with_a_seed(sandbox: Sandbox) -> None:
    def run(payload: Any) -> list[int]:
        set_faults(sandbox, payload)
        return [post_webhook(sandbox, key=f"k{i}").status_code for i in range(30)]

    rules = [{"route": "webhook", "mode": "error_before", "rate": 0.5}]
    first = run({"seed": 7, "rules": rules})
    control(sandbox, "POST", "reset")
    second = run({"seed": 7, "rules": rules})
    control(sandbox, "POST", "reset")
    bare_list = run(rules)

    assert first == second
    assert 5 < first.count(502) < 25
    assert first.count(502) + first.count(201) == 30
    assert bare_list != first  # seed 0, another sequence
    assert control(sandbox, "GET", "faults").json()["seed"] == 0


def test_invalid_rules_are_refused_and_delete_clears(sandbox: Sandbox) -> None:
    for bad in (
        [{"route": "webhook", "mode": "explode"}],
        [{"route": "nowhere", "mode": "busy"}],
        [{"route": "webhook", "mode": "busy", "rate": 2}],
        [{"route": "webhook", "mode": "busy", "mdoe": "typo"}],
        [{"route": "webhook", "mode": "busy", "count": -1}],
        {"seed": "x", "rules": []},
        "not a list",
    ):
        response = control(sandbox, "POST", "faults", bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]

    set_faults(sandbox, [{"route": "webhook", "mode": "error_before"}])
    assert control(sandbox, "DELETE", "faults").json()["rules"] == []
    assert post_webhook(sandbox).status_code == 201


# -- WeCom ---------------------------------------------------------------------------------


def test_wecom_accepts_only_registered_keys(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "reset")
    invalid = {"errcode": 93000, "errmsg": "invalid webhook url"}
    # No "first key wins": with nothing registered, every key is unknown.
    assert wecom(sandbox, "any-key", text("hi")) == invalid

    control(sandbox, "POST", "secrets", {"wecom_keys": ["good-key"]})
    assert wecom(sandbox, "any-key", text()) == invalid
    assert wecom(sandbox, "good-key", text("hi")) == OK
    [entry] = ledger(sandbox, "wecom")["accepted"]
    assert (entry["route"], entry["name_or_key"], entry["body"]) == (
        "wecom",
        "good-key",
        text("hi"),
    )


def test_wecom_45009_after_20_messages_a_minute(sandbox: Sandbox) -> None:
    answers = [wecom(sandbox, "k", text(f"m{i}")) for i in range(21)]

    assert answers[:20] == [OK] * 20
    assert answers[20] == {"errcode": 45009, "errmsg": "api freq out of limit"}
    assert wecom(sandbox, "other-key", text()) == OK  # the limit is per robot
    assert len(ledger(sandbox, "wecom")["accepted"]) == 21

    sandbox.advance_clock(61)
    assert wecom(sandbox, "k", text()) == OK


def test_wecom_validates_messages(sandbox: Sandbox) -> None:
    assert wecom(sandbox, "k", text("字" * 682)) == OK  # 2046 bytes
    too_long = wecom(sandbox, "k", text("字" * 683))  # 2049 bytes
    assert too_long["errcode"] not in (0, 45009)
    assert wecom(sandbox, "k", {"msgtype": "text", "text": {}})["errcode"] != 0
    assert wecom(sandbox, "k", {"msgtype": "video"})["errcode"] == 40008

    news = {"msgtype": "news", "news": {"articles": [{"title": "T", "url": "https://x/1"}]}}
    assert wecom(sandbox, "k", news) == OK
    no_url = {"msgtype": "news", "news": {"articles": [{"title": "T"}]}}
    assert wecom(sandbox, "k", no_url)["errcode"] != 0
    assert wecom(sandbox, "k", {"msgtype": "markdown", "markdown": {"content": "**b**"}}) == OK

    png = b"\x89PNG fake"
    image = {
        "msgtype": "image",
        "image": {"base64": base64.b64encode(png).decode(), "md5": hashlib.md5(png).hexdigest()},
    }
    assert wecom(sandbox, "k", image) == OK
    image["image"]["md5"] = "0" * 32
    assert wecom(sandbox, "k", image)["errcode"] != 0
    bad_json = requests.post(
        sandbox.url("/cgi-bin/webhook/send?key=k"), data=b"{", timeout=TIMEOUT
    ).json()
    assert bad_json["errcode"] != 0

    assert len(ledger(sandbox, "wecom")["accepted"]) == 4


# -- DingTalk ------------------------------------------------------------------------------


def test_dingtalk_signature(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "secrets", {"dingtalk": {"tok": "SECabc", "plain": ""}})
    mismatch = {"errcode": 310000, "errmsg": "sign not match"}

    assert dingtalk(sandbox, "tok", text(), secret="SECabc") == OK
    assert dingtalk(sandbox, "tok", text(), secret="SECwrong") == mismatch
    assert dingtalk(sandbox, "tok", text()) == mismatch  # unsigned
    two_hours_ago = int((time.time() - 7200) * 1000)
    stale = dingtalk(sandbox, "tok", text(), secret="SECabc", timestamp=two_hours_ago)
    assert stale["errcode"] == 310000
    assert dingtalk(sandbox, "plain", text()) == OK  # registered without a secret
    assert dingtalk(sandbox, "unknown", text()) == {
        "errcode": 300005,
        "errmsg": "token is not exist",
    }
    assert len(ledger(sandbox, "dingtalk")["accepted"]) == 2


def test_dingtalk_sign_must_be_url_encoded(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "secrets", {"dingtalk": {"tok": "SECabc"}})
    now = int(time.time() * 1000)
    timestamp = next(t for t in range(now, now + 1000) if "+" in dingtalk_sign("SECabc", t))
    raw_sign = dingtalk_sign("SECabc", timestamp)

    # Sent raw, '+' reads as a space, as on the real platform.
    raw = requests.post(
        sandbox.url(f"/robot/send?access_token=tok&timestamp={timestamp}&sign={raw_sign}"),
        json=text(),
        timeout=TIMEOUT,
    ).json()
    assert raw["errcode"] == 310000
    assert dingtalk(sandbox, "tok", text(), secret="SECabc", timestamp=timestamp) == OK


def test_dingtalk_throttles_for_ten_minutes_after_20_a_minute(sandbox: Sandbox) -> None:
    too_fast = {"errcode": 130101, "errmsg": "send too fast"}
    answers = [dingtalk(sandbox, "t", text(f"m{i}")) for i in range(21)]
    assert answers[:20] == [OK] * 20
    assert answers[20] == too_fast

    sandbox.advance_clock(61)  # the minute is over, but the robot is throttled
    assert dingtalk(sandbox, "t", text()) == too_fast
    assert dingtalk(sandbox, "other", text()) == OK

    control(sandbox, "POST", "clock", {"advance": 540})
    assert dingtalk(sandbox, "t", text()) == OK
    assert len(ledger(sandbox, "dingtalk")["accepted"]) == 22


def test_dingtalk_validates_messages(sandbox: Sandbox) -> None:
    link = {"title": "T", "text": "x", "messageUrl": "https://x/1"}
    assert dingtalk(sandbox, "t", {"msgtype": "link", "link": link}) == OK
    no_url = {"msgtype": "link", "link": {"title": "T", "text": "x"}}
    assert dingtalk(sandbox, "t", no_url)["errcode"] != 0
    markdown = {"msgtype": "markdown", "markdown": {"title": "T", "text": "**x**"}}
    assert dingtalk(sandbox, "t", markdown) == OK
    assert dingtalk(sandbox, "t", {"msgtype": "markdown", "markdown": {"text": "x"}})["errcode"]
    assert dingtalk(sandbox, "t", {"msgtype": "text", "text": {"content": ""}})["errcode"]
    assert dingtalk(sandbox, "t", {"msgtype": "nope"})["errcode"]
    assert len(ledger(sandbox, "dingtalk")["accepted"]) == 2


# -- request log, control API, lifecycle ----------------------------------------------------


def test_request_log_never_holds_keys_or_signatures(sandbox: Sandbox) -> None:
    wecom_key = "wecom-KEY-abcdef"
    token, secret = "ding-TOKEN-123456", "SEC-ding-secret"
    control(sandbox, "POST", "secrets", {"dingtalk": {token: secret}})
    wecom(sandbox, wecom_key, text())
    timestamp = int(time.time() * 1000)
    sign = dingtalk_sign(secret, timestamp)
    dingtalk(sandbox, token, text(), secret=secret, timestamp=timestamp)
    requests.post(sandbox.url(f"/nowhere?key={wecom_key}&access_token={token}"), timeout=TIMEOUT)

    log = request_log(sandbox)
    dumped = json.dumps(log)
    for value in (wecom_key, token, sign, requests.utils.quote(sign, safe="")):
        assert value not in dumped
    assert [e["route"] for e in log] == ["wecom", "dingtalk", None]
    assert log[0]["path"] == "/cgi-bin/webhook/send?key=***"
    assert log[1]["path"] == f"/robot/send?access_token=***&timestamp={timestamp}&sign=***"
    assert (log[2]["status"], log[2]["path"]) == (404, "/nowhere?key=***&access_token=***")
    assert set(log[0]) == {"route", "method", "path", "at", "status", "fault"}


def test_control_api_is_not_logged_and_rejects_unknown_calls(sandbox: Sandbox) -> None:
    index = control(sandbox, "GET", "").json()
    assert index["routes"] == {
        "webhook": "/webhook/",
        "wecom": "/cgi-bin/webhook/",
        "dingtalk": "/robot/",
        "weibo": "/2/",
        "wechat": "/cgi-bin/",
        "douyin": "/oauth/",
        "bilibili": "/arcopen/fn/",
        "kuaishou": "/openapi/",
    }
    assert index["prefixes"]["wechat"] == ["/cgi-bin/", "/datacube/"]
    assert index["prefixes"]["kuaishou"] == ["/openapi/", "/oauth2/refresh_token", "/api/upload"]
    assert control(sandbox, "GET", "nothing").status_code == 404
    assert control(sandbox, "DELETE", "ledger").status_code == 405
    assert control(sandbox, "GET", "ledger?route=nowhere").status_code == 400
    assert control(sandbox, "POST", "secrets", {"weibo": {}}).status_code == 400
    assert control(sandbox, "POST", "secrets", {"wecom_keys": "not-a-list"}).status_code == 400
    assert request_log(sandbox) == []


def test_reset_forgets_everything(sandbox: Sandbox) -> None:
    control(sandbox, "POST", "secrets", {"webhook": {"cms": "s"}, "wecom_keys": ["k"]})
    set_faults(sandbox, [{"route": "wecom", "mode": "busy"}])
    post_webhook(sandbox, key="a", secret="s")
    sandbox.advance_clock(100)

    assert control(sandbox, "POST", "reset").status_code == 200

    assert ledger(sandbox) == {"accepted": [], "duplicates": [], "deleted": []}
    assert request_log(sandbox) == []
    assert control(sandbox, "GET", "faults").json()["rules"] == []
    assert control(sandbox, "GET", "clock").json()["offset"] == 0
    assert post_webhook(sandbox, key="a").status_code == 201  # no secret, key is new again
    # The registered key is forgotten: refused, like any unknown key.
    assert wecom(sandbox, "k", text())["errcode"] == 93000


def test_python_api_matches_the_control_api() -> None:
    with Sandbox(seed=3) as sb:
        sb.set_secrets({"webhook": {"cms": "s"}})
        sb.set_faults([{"route": "webhook", "mode": "error_after", "count": 1}])
        assert post_webhook(sb, key="a", secret="s").status_code == 502
        assert sb.ledger.snapshot("webhook")["accepted"][0]["idempotency_key"] == "a"
        assert sb.request_log.snapshot()[0]["fault"] == "error_after"
        assert sb.faults.snapshot()["seed"] == 3


def test_stop_frees_the_port() -> None:
    sb = Sandbox()
    port = int(sb.start().rsplit(":", 1)[1])
    assert post_webhook(sb).status_code == 201

    sb.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/_sandbox/", timeout=1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # raises if the port is still held
    sb.stop()  # a second stop is harmless


def test_stop_cuts_hung_answers_and_the_port_can_be_served_again() -> None:
    sb = Sandbox()
    base_url = sb.start()
    port = int(base_url.rsplit(":", 1)[1])
    sb.set_faults([{"route": "webhook", "mode": "hang_after", "seconds": 30}])

    def send_and_wait() -> None:
        with contextlib.suppress(requests.RequestException):
            post_webhook(sb, timeout=10)

    hung = threading.Thread(target=send_and_wait)
    hung.start()
    while not sb.ledger.snapshot()["accepted"]:
        time.sleep(0.01)

    started = time.monotonic()
    sb.stop()
    hung.join(5)

    assert time.monotonic() - started < 2
    assert not hung.is_alive()
    # The cut connection may sit in TIME_WAIT; a new sandbox still binds (SO_REUSEADDR).
    again = Sandbox()
    try:
        assert again.start(port=port) == base_url
        assert requests.get(again.url("/_sandbox/"), timeout=TIMEOUT).status_code == 200
    finally:
        again.stop()


def test_module_entry_point_prints_the_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kepubot.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert requests.get(base_url + "/_sandbox/", timeout=TIMEOUT).status_code == 200
        process.terminate()
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_malformed_body_is_answered_and_logged(sandbox: Sandbox) -> None:
    host, port = sandbox.url().removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as raw:
        raw.sendall(
            b"POST /webhook/cms HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\n"
            b"Content-Length: abc\r\n\r\n"
        )
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    [logged] = request_log(sandbox)
    assert (logged["route"], logged["status"]) == ("webhook", 400)
    assert ledger(sandbox)["accepted"] == []


def test_load_tests_can_raise_the_robot_limits(sandbox: Sandbox) -> None:
    assert control(sandbox, "POST", "limits", {"wecom": 100, "dingtalk": 30}).status_code == 200
    assert all(wecom(sandbox, "k", text(f"m{i}")) == OK for i in range(100))
    assert wecom(sandbox, "k", text())["errcode"] == 45009
    assert all(dingtalk(sandbox, "t", text(f"m{i}")) == OK for i in range(30))
    assert dingtalk(sandbox, "t", text())["errcode"] == 130101

    for bad in ({"wecom": 0}, {"webhook": 5}, {"weibo": 5}, ["wecom"]):
        assert control(sandbox, "POST", "limits", bad).status_code == 400, bad
    control(sandbox, "POST", "reset")
    register_robots(sandbox)  # reset forgets them
    assert all(wecom(sandbox, "k", text(f"m{i}")) == OK for i in range(20))
    assert wecom(sandbox, "k", text())["errcode"] == 45009  # back to the real 20
