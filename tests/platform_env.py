"""What the end-to-end tests against the sandbox share: its control requests, the daemon
settings that make a run quick, and the Weibo and WeChat channels pointed at it."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

# quick ticks, short leases and backoffs: a test's daemon settles in seconds
FAST_DAEMON = """
[daemon]
poll_seconds = 0.2
workers = 4
lease_seconds = 10
reconcile_after_seconds = 0.5
backoff_base_seconds = 0.2
backoff_cap_seconds = 1
shutdown_seconds = 5
max_attempts = 20
breaker_open_seconds = 1
"""


def weibo_wechat_channels(base: str, wechat_appid: str) -> str:
    """``weibo-main`` and ``wechat-main`` (freepublish) on the sandbox at ``base``; their
    secrets come from KEPUBOT_WEIBO_TOKEN and KEPUBOT_WECHAT_SECRET."""
    return f"""
[channels.weibo-main]
type = "weibo"
access_token = "${{KEPUBOT_WEIBO_TOKEN}}"
link_domain = "kepu.example.org"
rip = "203.0.113.10"
api_base = "{base}"
rate_limit = "30/hour"
timeout_seconds = 2

[channels.wechat-main]
type = "wechat"
app_id = "{wechat_appid}"
app_secret = "${{KEPUBOT_WECHAT_SECRET}}"
mode = "freepublish"
api_base = "{base}"
timeout_seconds = 2
poll_seconds = 0.5
"""


def sandbox_request(url: str, payload: Any = None, method: str | None = None) -> Any:
    """One JSON request to the sandbox (its /_sandbox/ control routes); the JSON answer."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None
