"""``kepubot demo``: the whole product end to end on this machine, with no credentials.

A fresh workspace, a config whose channels point at the local sandbox (a news feed written
to files, an in-house CMS webhook and a WeCom staff group robot), the sample posts imported
by an editor, reviewed at three levels, published by the daemon (a real ``kepubot run``
subprocess), then a short summary: what went where, exactly once, and where the feeds are.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

DEMO_CHANNELS = ("news-feed", "cms", "staff-wecom")
REVIEWERS = ("li", "wang", "zhao")
DAEMON_DEADLINE_SECONDS = 45.0


def _config(sandbox: str) -> str:
    return textwrap.dedent(
        f"""
        # Written by `kepubot demo`: every channel points at the local sandbox.
        [kepubot]
        database = "kepubot.db"
        timezone = "Asia/Shanghai"

        [daemon]
        poll_seconds = 0.5
        workers = 4
        lease_seconds = 30
        reconcile_after_seconds = 2
        shutdown_seconds = 5

        [review]
        levels = ["初审", "复审", "终审"]
        sensitive_words = "sensitive_words.txt"

        [users.zhang]
        roles = ["editor"]
        [users.li]
        roles = ["reviewer"]
        [users.wang]
        roles = ["reviewer", "manager"]
        [users.zhao]
        roles = ["reviewer"]

        [channels.news-feed]
        type = "feed"
        output_dir = "public/feeds"
        site_url = "https://kepu.example.org"
        title = "科普资讯"
        min_gap_minutes = 0

        [channels.cms]
        type = "webhook"
        url = "{sandbox}/webhook/cms"
        secret = "${{KEPUBOT_DEMO_CMS_SECRET}}"
        lookup_url = "{sandbox}/webhook/cms/lookup"
        timeout_seconds = 5

        [channels.staff-wecom]
        type = "wecom"
        webhook_key = "${{KEPUBOT_DEMO_WECOM_KEY}}"
        api_base = "{sandbox}"
        rate_limit = "20/minute"
        timeout_seconds = 5
        """
    )


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _post_json(url: str, payload: Any) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def run_demo(folder: Path, echo: Callable[[str], None]) -> int:
    from kepubot.app import App
    from kepubot.config import load_config
    from kepubot.queue import audit, deliveries
    from kepubot.queue.importer import read_posts
    from kepubot.queue.posts import approve, create_posts, submit
    from kepubot.sandbox.server import Sandbox
    from kepubot.timeutil import utcnow

    started = time.monotonic()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ.setdefault("KEPUBOT_DEMO_CMS_SECRET", "demo-cms-secret")
    os.environ.setdefault("KEPUBOT_DEMO_WECOM_KEY", "demo-wecom-key")

    sandbox = Sandbox()
    base = sandbox.start()
    try:
        _post_json(
            f"{base}/_sandbox/secrets",
            {
                "webhook": {"cms": os.environ["KEPUBOT_DEMO_CMS_SECRET"]},
                "wecom_keys": [os.environ["KEPUBOT_DEMO_WECOM_KEY"]],
            },
        )
        config_path = folder / "kepubot.toml"
        config_path.write_text(_config(base), encoding="utf-8")
        data = files("kepubot") / "data"
        (folder / "sensitive_words.txt").write_text(
            (data / "sensitive_words.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
        echo(f"workspace: {folder}")
        echo(f"sandbox:   {base}")

        app = App(load_config(config_path))
        app.channels  # noqa: B018
        with as_file(data / "samples" / "posts") as posts_dir:
            items = read_posts(Path(posts_dir))
            for item, _source in items:
                # The samples name the platform channels; the demo publishes them to its own.
                item.channels = list(DEMO_CHANNELS)
            ids = create_posts(app, "zhang", items, now=utcnow())
        echo(f"editor zhang imported {len(ids)} sample posts")
        submit(app, "zhang", ids, now=utcnow())
        for reviewer, level in zip(REVIEWERS, app.config.review_levels, strict=True):
            approve(app, reviewer, ids, now=utcnow(), comment=f"{level}通过")
            echo(f"reviewer {reviewer} approved all at level {level}")
        total = len(ids) * len(DEMO_CHANNELS)
        echo(f"{total} deliveries queued; starting the daemon (kepubot run)")

        env = dict(os.environ, KEPUBOT_LOG_LEVEL="warning")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "kepubot", "--config", str(config_path), "run"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "daemon.log").open("w"),
        )
        deadline = time.monotonic() + DAEMON_DEADLINE_SECONDS
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = deliveries.counts_by_state(app.conn)
            settled = sum(
                counts.get(s, 0) for s in ("published", "failed", "needs_attention", "cancelled")
            )
            if settled == total:
                break
            time.sleep(0.3)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        ledger = _get_json(f"{base}/_sandbox/ledger")
    finally:
        sandbox.stop()

    published = counts.get("published", 0)
    echo("")
    echo(f"published {published} of {total} deliveries in {time.monotonic() - started:.1f} s")
    for channel in DEMO_CHANNELS:
        done = app.conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE channel = ? AND state = 'published'", (channel,)
        ).fetchone()[0]
        echo(f"  {channel:<12} {done} published")
    by_route: dict[str, int] = {}
    for entry in ledger.get("accepted", []):
        by_route[entry["route"]] = by_route.get(entry["route"], 0) + 1
    duplicates = len(ledger.get("duplicates", []))
    echo(
        "sandbox received: "
        + ", ".join(f"{route} {n}" for route, n in sorted(by_route.items()))
        + f"; duplicates {duplicates}"
    )
    feeds = app.config.resolve("public/feeds")
    for name in ("feed.xml", "atom.xml", "feed.json"):
        echo(f"feed: {feeds / name}")
    chain = audit.verify(app.conn)
    echo(f"audit chain: {'intact' if chain.ok else 'BROKEN'} ({chain.rows} rows)")
    echo(f"next: kepubot --config {folder / 'kepubot.toml'} status")
    app.close()
    ok = published == total and duplicates == 0 and chain.ok
    if not ok:
        echo(f"demo did not finish cleanly: {counts}; see {folder / 'daemon.log'}")
    return 0 if ok else 1
