"""Collect requests: how many metric requests does one `collect_pass` make, against the fewest
the platforms' batch sizes allow?

    .venv/bin/python bench/collect_requests.py           # 6,000 Weibo + 3,000 Douyin + 1,000 WeChat
    .venv/bin/python bench/collect_requests.py --quick   # 1,000 + 300 + 100
    .venv/bin/python bench/collect_requests.py --weibo 3000 --douyin 500 --wechat 200 --days 14

Set-up:
- The sandbox (``kepubot.sandbox.server.Sandbox``) runs in this process on a free port, with
  the credentials of ``tests/bot/test_platforms_e2e.py`` registered through
  ``POST /_sandbox/secrets``, Weibo's hourly posting limit and WeChat's publishing limit off and
  Douyin's review time 0.
- Every delivery's remote object is made on the sandbox first, with plain ``requests`` calls
  (not through kepubot): Weibo ``statuses/share.json``; Douyin
  ``/api/douyin/v1/video/upload_video/`` + ``create_video/`` (token in the ``access-token``
  header); WeChat ``material/add_material`` once, then ``draft/add`` and, in turn,
  ``freepublish/submit`` + ``freepublish/get`` or ``message/mass/sendall`` per article
  (``datacube/getarticletotaldetail`` reports both kinds; the sandbox's mass-send quota is off).
  The sandbox clock is shifted back for each one, so the objects were made 1.5 hours (WeChat:
  1.2 days) to ``--days`` days ago and their counters have grown.
- The workspace's ``kepubot.toml`` is the e2e test's (``api_base`` of weibo-main,
  wechat-main and douyin-main = the sandbox). Its database gets one post and one
  ``published`` delivery per remote object by direct SQL, with the remote id, ``published_at``
  as on the platform, the progress the channel would have saved (WeChat: ``publish_id`` or
  ``msg_id``, ``msg_data_id``, ``sent_on``, ``title``) and
  ``next_metrics_at = published_at``, the mark the ``deliveries_start_metrics`` trigger sets:
  every delivery's collection point is due.

Measured: one ``kepubot.bot.collect.collect_pass(Engine(App))`` on a fresh copy of that
database, twice: with the default ``[metrics] batch_limit`` (2,000 deliveries per channel per
pass) and with ``batch_limit`` raised so that one pass covers every due delivery. The platform
requests of the pass are read from ``GET /_sandbox/requests``. The minimum for the deliveries
the pass asked about (``metrics_step`` moved past 0) is ceil(n / 100) ``count.json`` calls
for Weibo, ceil(n / DATA_BATCH) ``/api/douyin/v1/video/video_data/`` calls for Douyin, and one
``datacube/getarticletotaldetail`` call per distinct publishing day (Beijing; the interface
answers one day per call) for WeChat. The goal is requests = minimum.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sqlite3
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from _common import OUT, header, write_png

from kepubot.app import App
from kepubot.bot.collect import collect_pass
from kepubot.bot.dispatch import Engine
from kepubot.channels.douyin import DATA_BATCH
from kepubot.channels.wechat.codes import PLATFORM_TZ
from kepubot.channels.weibo import COUNT_BATCH
from kepubot.config import load_config
from kepubot.queue.db import open_database
from kepubot.sandbox.server import Sandbox
from kepubot.timeutil import to_db, utcnow

DIR = OUT / "collect_requests"

# The credentials of tests/bot/test_platforms_e2e.py.
WEIBO_TOKEN = "weibo-token-VALUE-1"
WECHAT_APPID = "wx00000000demo01"
WECHAT_SECRET = "wechat-secret-VALUE-2"
DOUYIN = {
    "client_key": "aw-demo-key",
    "client_secret": "douyin-secret-VALUE-3",
    "access_token": "douyin-access-VALUE-4",
    "refresh_token": "douyin-refresh-VALUE-5",
    "open_id": "open-id-demo",
}
ENV = {
    "KEPUBOT_WEIBO_TOKEN": WEIBO_TOKEN,
    "KEPUBOT_WECHAT_SECRET": WECHAT_SECRET,
    "KEPUBOT_DOUYIN_SECRET": DOUYIN["client_secret"],
    "KEPUBOT_DOUYIN_TOKEN": DOUYIN["access_token"],
    "KEPUBOT_DOUYIN_REFRESH": DOUYIN["refresh_token"],
}
METRIC_PATHS = {
    "weibo": ("/2/statuses/count.json",),
    # the current interface only: the retired /video/data/ would be a 404
    "douyin": ("/api/douyin/v1/video/video_data/",),
    "wechat": ("/datacube/getarticletotaldetail",),
}
CHANNEL_OF = {"weibo": "weibo-main", "douyin": "douyin-main", "wechat": "wechat-main"}
DEFAULT_BATCH_LIMIT = 2000
# A minimal ISO media file: the sandbox checks the box type at offset 4.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 512


def config(base: str, batch_limit: int | None) -> str:
    """tests/bot/test_platforms_e2e.py's config (WeChat's mode does not matter for metrics:
    getarticletotaldetail covers freepublish and mass send alike)."""
    metrics = f"\n[metrics]\nbatch_limit = {batch_limit}\n" if batch_limit else ""
    return (
        textwrap.dedent(
            f"""
            [kepubot]
            database = "kepubot.db"

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

            [users.ed]
            roles = ["editor"]
            [users.rev]
            roles = ["reviewer"]

            [channels.weibo-main]
            type = "weibo"
            access_token = "${{KEPUBOT_WEIBO_TOKEN}}"
            link_domain = "kepu.example.org"
            rip = "203.0.113.7"
            api_base = "{base}"
            rate_limit = "30/hour"
            timeout_seconds = 2

            [channels.wechat-main]
            type = "wechat"
            app_id = "{WECHAT_APPID}"
            app_secret = "${{KEPUBOT_WECHAT_SECRET}}"
            api_base = "{base}"
            timeout_seconds = 2
            poll_seconds = 0.5

            [channels.douyin-main]
            type = "douyin"
            client_key = "{DOUYIN["client_key"]}"
            client_secret = "${{KEPUBOT_DOUYIN_SECRET}}"
            open_id = "{DOUYIN["open_id"]}"
            access_token = "${{KEPUBOT_DOUYIN_TOKEN}}"
            refresh_token = "${{KEPUBOT_DOUYIN_REFRESH}}"
            api_base = "{base}"
            timeout_seconds = 2

            [channels.news-feed]
            type = "feed"
            output_dir = "public/feeds"
            site_url = "https://kepu.example.org"
            title = "科普资讯"
            """
        )
        + metrics
    )


# --- making the remote objects -----------------------------------------------------------------


class Seeder:
    """Makes statuses, videos and WeChat articles (published and mass-sent in turn) on the
    sandbox, each at a chosen age."""

    def __init__(self, sandbox: Sandbox, base: str, days: float, seed: int = 11) -> None:
        self.sandbox = sandbox
        self.base = base
        self.days = days
        self.rng = random.Random(seed)
        self.http = requests.Session()
        self.http.trust_env = False

    def _at_age(self, min_age: float) -> float:
        """Shift the sandbox clock back by a random age; returns the platform's 'now'."""
        age = self.rng.uniform(min_age, self.days * 86400)
        self.sandbox.clock_offset = -age
        return self.sandbox.now()

    def _ok(self, response: requests.Response, what: str) -> Any:
        if response.status_code != 200:
            raise SystemExit(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def weibo(self, count: int) -> list[dict[str, Any]]:
        made = []
        for i in range(count):
            at = self._at_age(1.5 * 3600)
            text = f"科普第{i}期：黑洞到底是什么？ https://kepu.example.org/a/{i}"
            answer = self._ok(
                self.http.post(
                    f"{self.base}/2/statuses/share.json",
                    data={"access_token": WEIBO_TOKEN, "status": text, "rip": "203.0.113.7"},
                ),
                "weibo share.json",
            )
            if "id" not in answer:
                raise SystemExit(f"weibo share.json: {answer}")
            remote = str(answer["id"])
            made.append(
                {
                    "channel": "weibo-main",
                    "title": f"科普第{i}期",
                    "remote_id": remote,
                    "remote_url": f"https://weibo.com/{answer['user']['id']}/{remote}",
                    "published": at,
                    "progress": {},
                }
            )
        return made

    def douyin(self, count: int) -> list[dict[str, Any]]:
        made = []
        params = {"open_id": DOUYIN["open_id"]}
        headers = {"access-token": DOUYIN["access_token"]}
        v1 = f"{self.base}/api/douyin/v1/video"
        for i in range(count):
            at = self._at_age(1.5 * 3600)
            upload = self._ok(
                self.http.post(
                    f"{v1}/upload_video/",
                    params=params,
                    headers=headers,
                    files={"video": (f"v{i}.mp4", MP4, "video/mp4")},
                ),
                "douyin upload_video",
            )
            video_id = upload.get("data", {}).get("video", {}).get("video_id")
            if not video_id:
                raise SystemExit(f"douyin upload_video: {upload}")
            created = self._ok(
                self.http.post(
                    f"{v1}/create_video/",
                    params=params,
                    headers=headers,
                    json={"video_id": video_id, "text": f"科普短视频第{i}期"},
                ),
                "douyin create_video",
            )
            item_id = created.get("data", {}).get("item_id")
            if not item_id:
                raise SystemExit(f"douyin create_video: {created}")
            made.append(
                {
                    "channel": "douyin-main",
                    "title": f"科普短视频第{i}期",
                    "remote_id": item_id,
                    "remote_url": None,
                    "published": at,
                    "progress": {"video_id": video_id},
                }
            )
        return made

    def wechat(self, count: int, png: Path) -> list[dict[str, Any]]:
        self.sandbox.clock_offset = 0.0
        token = self._ok(
            self.http.get(
                f"{self.base}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": WECHAT_APPID,
                    "secret": WECHAT_SECRET,
                },
            ),
            "wechat cgi-bin/token",
        )["access_token"]
        query = {"access_token": token}
        material = self._ok(
            self.http.post(
                f"{self.base}/cgi-bin/material/add_material",
                params={**query, "type": "image"},
                files={"media": ("cover.png", png.read_bytes(), "image/png")},
            ),
            "wechat add_material",
        )
        thumb = material["media_id"]
        headers = {"Content-Type": "application/json"}
        made = []
        for i in range(count):
            at = self._at_age(1.2 * 86400)
            title = f"科普周刊第{i}期"
            article = {
                "article_type": "news",
                "title": title,
                "author": "",
                "digest": "",
                "content": f"<p>第{i}期正文：研究人员给出了详细的观测数据。</p>",
                "content_source_url": f"https://kepu.example.org/a/{i}",
                "thumb_media_id": thumb,
            }
            draft = self._ok(
                self.http.post(
                    f"{self.base}/cgi-bin/draft/add",
                    params=query,
                    data=json.dumps({"articles": [article]}, ensure_ascii=False).encode(),
                    headers=headers,
                ),
                "wechat draft/add",
            )
            if "media_id" not in draft:
                raise SystemExit(f"wechat draft/add: {draft}")
            key = f"bench-{i:06d}"
            progress = {
                "idempotency_key": key,
                "thumb_media_id": thumb,
                "draft_requested_at": int(at),
                "title": title,
                "draft_media_id": draft["media_id"],
                "sent_on": datetime.fromtimestamp(at, PLATFORM_TZ).date().isoformat(),
            }
            if i % 2 == 0:
                remote_id, remote_url = self._freepublish(query, draft["media_id"], progress)
            else:
                remote_id, remote_url = self._mass_send(query, draft["media_id"], key, progress)
            made.append(
                {
                    "channel": "wechat-main",
                    "title": title,
                    "remote_id": remote_id,
                    "remote_url": remote_url,
                    "published": at,
                    "progress": progress,
                }
            )
        return made

    def _post_json(self, query: dict[str, str], path: str, body: dict[str, Any]) -> Any:
        answer = self._ok(
            self.http.post(
                f"{self.base}/cgi-bin/{path}",
                params=query,
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            ),
            f"wechat {path}",
        )
        if answer.get("errcode") not in (0, None):
            raise SystemExit(f"wechat {path}: {answer}")
        return answer

    def _freepublish(
        self, query: dict[str, str], media_id: str, progress: dict[str, Any]
    ) -> tuple[str, str | None]:
        """freepublish/submit, then freepublish/get (the sandbox is set to finish the job at
        the first poll)."""
        submitted = self._post_json(query, "freepublish/submit", {"media_id": media_id})
        progress.update(
            publish_id=str(submitted["publish_id"]), msg_data_id=str(submitted["msg_data_id"])
        )
        done = self._post_json(query, "freepublish/get", {"publish_id": submitted["publish_id"]})
        if done.get("publish_status") != 0:
            raise SystemExit(f"wechat freepublish/get: {done}")
        items = done.get("article_detail", {}).get("item") or [{}]
        return str(done["article_id"]), items[0].get("article_url")

    def _mass_send(
        self, query: dict[str, str], media_id: str, key: str, progress: dict[str, Any]
    ) -> tuple[str, str | None]:
        body = {
            "filter": {"is_to_all": True},
            "mpnews": {"media_id": media_id},
            "msgtype": "mpnews",
            "send_ignore_reprint": 0,
            "clientmsgid": key,
        }
        sent = self._post_json(query, "message/mass/sendall", body)
        if "msg_id" not in sent:
            raise SystemExit(f"wechat message/mass/sendall: {sent}")
        progress.update(msg_id=str(sent["msg_id"]), msg_data_id=str(sent["msg_data_id"]))
        return str(sent["msg_id"]), None


# --- the database ----------------------------------------------------------------------------


def build_db(path: Path, items: list[dict[str, Any]]) -> None:
    """Schema from kepubot's migrations; one post and one published delivery per item."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    now = utcnow()
    open_database(path, to_db(now)).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for index, item in enumerate(items, start=1):
        published = to_db(datetime.fromtimestamp(item["published"], UTC))
        due = to_db(datetime.fromtimestamp(item["published"] - 5, UTC))
        digest = f"{index:064x}"
        conn.execute(
            "INSERT INTO posts (id, title, body, link, tags, channels, author, state,"
            " review_round, review_level, content_hash, approved_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'ed', 'approved', 1, 1, ?, ?, ?, ?)",
            (
                index,
                item["title"],
                f"{item['title']}的正文。",
                f"https://kepu.example.org/a/{index}",
                json.dumps(["科普"], ensure_ascii=False),
                json.dumps([item["channel"]]),
                digest,
                digest,
                due,
                due,
            ),
        )
        conn.execute(
            "INSERT INTO post_channels (post_id, channel) VALUES (?, ?)", (index, item["channel"])
        )
        conn.execute(
            "INSERT INTO deliveries (id, post_id, channel, state, due_at, not_before, attempts,"
            " progress, content_hash, remote_id, remote_url, published_at, next_metrics_at,"
            " metrics_step, created_at, updated_at)"
            " VALUES (?, ?, ?, 'published', ?, ?, 1, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                index,
                index,
                item["channel"],
                due,
                due,
                json.dumps(item["progress"], ensure_ascii=False),
                digest,
                item["remote_id"],
                item["remote_url"],
                published,
                published,  # the mark deliveries_start_metrics sets: plan the points
                due,
                published,
            ),
        )
    conn.execute("COMMIT")
    conn.close()


# --- one pass --------------------------------------------------------------------------------


def get_json(url: str) -> Any:
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.json()


def one_pass(
    template: Path, workspace: Path, base: str, batch_limit: int | None, *, drain: bool = False
) -> dict[str, Any]:
    """A fresh copy of the database, one collect_pass (``drain``: passes until one finds
    nothing due), its requests and the minimum for the deliveries it asked about."""
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    db = workspace / "kepubot.db"
    shutil.copyfile(template, db)
    (workspace / "kepubot.toml").write_text(config(base, batch_limit), encoding="utf-8")
    app = App(load_config(workspace / "kepubot.toml"))
    engine = Engine(app, worker="bench")
    conn = app.store.conn()
    now = utcnow()
    due = dict(
        conn.execute(
            "SELECT channel, COUNT(*) FROM deliveries WHERE state = 'published'"
            " AND next_metrics_at <= ? GROUP BY channel",
            (to_db(now),),
        ).fetchall()
    )
    before = len(get_json(f"{base}/_sandbox/requests"))
    started = time.perf_counter()
    outcomes = [collect_pass(engine)]
    per_pass = [_pass_detail(conn, base, before, set())] if drain else []
    while drain and sum(outcomes[-1].values()) and len(outcomes) < 20:
        outcomes.append(collect_pass(engine))
        per_pass.append(_pass_detail(conn, base, per_pass[-1]["log"], per_pass[-1]["asked"]))
    elapsed = time.perf_counter() - started - sum(p["seconds"] for p in per_pass)
    outcome = outcomes[0] if len(outcomes) == 1 else outcomes
    entries = get_json(f"{base}/_sandbox/requests")[before:]
    engine.close()

    by_path = Counter(
        (e["route"], e["method"], e["path"].split("?")[0], e["status"]) for e in entries
    )
    asked = dict(
        conn.execute(
            "SELECT channel, COUNT(*) FROM deliveries WHERE metrics_step > 0 GROUP BY channel"
        ).fetchall()
    )
    collected = dict(
        conn.execute(
            "SELECT d.channel, COUNT(*) FROM metrics m JOIN deliveries d ON d.id = m.delivery_id"
            " GROUP BY d.channel"
        ).fetchall()
    )
    yesterday = (now.astimezone(PLATFORM_TZ) - timedelta(days=1)).date().isoformat()
    wechat_days = sorted(
        {
            json.loads(p)["sent_on"]
            for (p,) in conn.execute(
                "SELECT progress FROM deliveries WHERE channel = 'wechat-main' AND metrics_step > 0"
            )
            if json.loads(p).get("sent_on", "9999") <= yesterday
        }
    )
    app.close()
    minimum = {
        "weibo": math.ceil(asked.get("weibo-main", 0) / COUNT_BATCH),
        "douyin": math.ceil(asked.get("douyin-main", 0) / DATA_BATCH),
        "wechat": len(wechat_days),
    }
    metric_calls = {
        route: sum(n for (r, _m, path, _s), n in by_path.items() if r == route and path in paths)
        for route, paths in METRIC_PATHS.items()
    }
    other_calls = {
        f"{r} {m} {path} -> {s}": n
        for (r, m, path, s), n in sorted(by_path.items(), key=lambda kv: str(kv[0]))
        if path not in METRIC_PATHS.get(r, ())
    }
    statuses = Counter(
        e["status"] for e in entries if e["path"].split("?")[0] in sum(METRIC_PATHS.values(), ())
    )
    return {
        "passes": len(outcomes),
        "per_pass": [
            {k: v for k, v in p.items() if k not in ("asked", "log", "seconds")} for p in per_pass
        ],
        "batch_limit": batch_limit or DEFAULT_BATCH_LIMIT,
        "due": due,
        "outcome": outcome,
        "seconds": round(elapsed, 2),
        "asked": asked,
        "collected": collected,
        "wechat_days": wechat_days,
        "metric_calls": metric_calls,
        "minimum": minimum,
        "other_calls": other_calls,
        "metric_statuses": {str(k): v for k, v in statuses.items()},
    }


def _pass_detail(
    conn: sqlite3.Connection, base: str, log_before: int, asked_before: set[int]
) -> dict[str, Any]:
    """After one pass of a drain: its metric requests and the WeChat sending days it asked
    about (not timed: subtracted from the passes' time)."""
    started = time.perf_counter()
    log = get_json(f"{base}/_sandbox/requests")
    calls = Counter(
        route
        for e in log[log_before:]
        for route, paths in METRIC_PATHS.items()
        if e["route"] == route and e["path"].split("?")[0] in paths
    )
    asked: set[int] = set()
    days: set[str] = set()
    for delivery_id, channel, progress in conn.execute(
        "SELECT id, channel, progress FROM deliveries WHERE metrics_step > 0"
    ):
        asked.add(delivery_id)
        if channel == "wechat-main" and delivery_id not in asked_before:
            days.add(json.loads(progress).get("sent_on", "?"))
    return {
        "metric_calls": dict(calls),
        "newly_asked": len(asked - asked_before),
        "wechat_days": sorted(days),
        "asked": asked,
        "log": len(log),
        "seconds": time.perf_counter() - started,
    }


def show(run: dict[str, Any]) -> None:
    passes = f"{run['passes']} passes" if run["passes"] > 1 else "collect_pass"
    print(
        f"   {passes}: {run['seconds']} s, result {run['outcome']};"
        f" metric answers by HTTP status {run['metric_statuses']}"
    )
    print(
        f"   {'platform':<8} {'due':>6} {'asked':>6} {'stored':>7} {'requests':>9}"
        f" {'minimum':>8} {'excess':>7}  batch rule"
    )
    rules = {
        "weibo": f"count.json, ≤ {COUNT_BATCH} ids per call",
        "douyin": f"video_data/, {DATA_BATCH} item_ids per call (DATA_BATCH)",
        "wechat": (
            f"datacube/getarticletotaldetail, 1 day per call ({len(run['wechat_days'])} days)"
        ),
    }
    for route, channel in CHANNEL_OF.items():
        calls, least = run["metric_calls"][route], run["minimum"][route]
        print(
            f"   {route:<8} {run['due'].get(channel, 0):>6,} {run['asked'].get(channel, 0):>6,}"
            f" {run['collected'].get(channel, 0):>7,} {calls:>9,} {least:>8,}"
            f" {calls - least:>+7,}  {rules[route]}"
        )
    for number, detail in enumerate(run.get("per_pass", []), start=1):
        days = detail["wechat_days"]
        span = f" ({days[0]} .. {days[-1]})" if days else ""
        print(
            f"   pass {number}: {detail['newly_asked']:,} deliveries asked about, metric"
            f" requests {detail['metric_calls'] or 0}; WeChat sending days {len(days)}{span}"
        )
    if run["other_calls"]:
        print("   other platform requests during the pass:")
        for key, n in run["other_calls"].items():
            print(f"     {n:>5} × {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 + 300 + 100 deliveries")
    parser.add_argument("--weibo", type=int, help="Weibo deliveries (default 6,000)")
    parser.add_argument("--douyin", type=int, help="Douyin deliveries (default 3,000)")
    parser.add_argument("--wechat", type=int, help="WeChat deliveries (default 1,000)")
    parser.add_argument("--days", type=float, default=30, help="objects made up to this long ago")
    args = parser.parse_args()
    quick = (1_000, 300, 100)
    full = (6_000, 3_000, 1_000)
    defaults = quick if args.quick else full
    n_weibo = args.weibo if args.weibo is not None else defaults[0]
    n_douyin = args.douyin if args.douyin is not None else defaults[1]
    n_wechat = args.wechat if args.wechat is not None else defaults[2]

    header("collect_requests: metric requests of one collect_pass against the batch minimum")
    import os

    os.environ.update(ENV)
    DIR.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox()
    base = sandbox.start()
    try:
        http = requests.Session()
        http.trust_env = False
        http.post(
            f"{base}/_sandbox/secrets",
            json={
                "weibo_tokens": [WEIBO_TOKEN],
                "wechat": {WECHAT_APPID: WECHAT_SECRET},
                "douyin": DOUYIN,
            },
        ).raise_for_status()
        http.post(
            f"{base}/_sandbox/settings",
            json={
                "weibo_posts_per_hour": 0,
                "douyin_review_seconds": 0,
                "wechat_publishes_per_minute": 0,
                "wechat_mass_sends_per_day": 0,
                "publish_polls_before_done": 0,
            },
        ).raise_for_status()

        seeder = Seeder(sandbox, base, args.days)
        items: list[dict[str, Any]] = []
        for name, count, make in (
            ("weibo", n_weibo, lambda n: seeder.weibo(n)),
            ("douyin", n_douyin, lambda n: seeder.douyin(n)),
            (
                "wechat",
                n_wechat,
                lambda n: seeder.wechat(n, write_png(DIR / "cover.png", (40, 120, 200))),
            ),
        ):
            started = time.perf_counter()
            made = make(count)
            items.extend(made)
            print(
                f"   made {len(made):,} {name} objects on the sandbox in"
                f" {time.perf_counter() - started:.1f} s"
            )
            sys.stdout.flush()
        sandbox.clock_offset = 0.0
        ledger = get_json(f"{base}/_sandbox/ledger")
        kinds = Counter(f"{e['route']}:{e.get('kind')}" for e in ledger["accepted"])
        print(f"   sandbox ledger: {dict(kinds)}; duplicates {len(ledger['duplicates'])}")

        template = DIR / "template.db"
        build_db(template, items)
        print(f"   database: {len(items):,} published deliveries, every collection point due")

        runs = []
        total = max(n_weibo, n_douyin, n_wechat)
        covers = max(total, DEFAULT_BATCH_LIMIT)
        for label, limit, drain in (
            (
                f"one collect_pass, default batch_limit ({DEFAULT_BATCH_LIMIT:,} per channel)",
                None,
                False,
            ),
            (f"one collect_pass, batch_limit = {covers:,} (covers all)", covers, False),
            (
                "collect_pass repeated until nothing is due, default batch_limit",
                None,
                True,
            ),
        ):
            if total <= DEFAULT_BATCH_LIMIT and (limit is not None or drain):
                continue  # the default already covers everything in one pass
            print(f"\n-- {label}")
            run = one_pass(template, DIR / "workspace", base, limit, drain=drain)
            run["label"] = label
            show(run)
            runs.append(run)
            sys.stdout.flush()
    finally:
        sandbox.stop()

    out = DIR / f"results-{n_weibo}-{n_douyin}-{n_wechat}.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "deliveries": {"weibo": n_weibo, "douyin": n_douyin, "wechat": n_wechat},
                "days": args.days,
                "runs": runs,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
