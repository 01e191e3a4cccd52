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
from types import SimpleNamespace
from typing import Any

EXTRA_CHANNELS = ("cms", "staff-wecom")  # every sample also goes to these
# Weibo's rip: a documentation-range (RFC 5737) address standing in for the operator's public IP.
DEMO_RIP = "203.0.113.10"
DEMO_SECRETS = {
    "KEPUBOT_DEMO_CMS_SECRET": "demo-cms-secret",
    "KEPUBOT_DEMO_WECOM_KEY": "demo-wecom-key",
    "KEPUBOT_DEMO_WEIBO_TOKEN": "demo-weibo-token",
    "KEPUBOT_DEMO_WECHAT_SECRET": "demo-wechat-secret",
    "KEPUBOT_DEMO_DOUYIN_SECRET": "demo-douyin-secret",
    "KEPUBOT_DEMO_DOUYIN_TOKEN": "demo-douyin-access",
    "KEPUBOT_DEMO_DOUYIN_REFRESH": "demo-douyin-refresh",
    "KEPUBOT_DEMO_BILIBILI_SECRET": "demo-bilibili-secret",
    "KEPUBOT_DEMO_BILIBILI_TOKEN": "demo-bilibili-access",
    "KEPUBOT_DEMO_BILIBILI_REFRESH": "demo-bilibili-refresh",
    "KEPUBOT_DEMO_KUAISHOU_SECRET": "demo-kuaishou-secret",
    "KEPUBOT_DEMO_KUAISHOU_TOKEN": "demo-kuaishou-access",
    "KEPUBOT_DEMO_KUAISHOU_REFRESH": "demo-kuaishou-refresh",
}
WECHAT_APPID = "wx0000000000demo"
DOUYIN_KEY = "aw-demo"
DOUYIN_OPEN_ID = "open-id-demo"
BILIBILI_CLIENT = "bili-demo"
KUAISHOU_APP = "ks-demo"
# every sample with a video also goes to these (they publish videos only)
VIDEO_CHANNELS = ("bilibili-main", "kuaishou-main")
# the outlets without an interface take a few samples each (sample file -> channels)
OUTLET_CHANNELS = {
    "01.md": ("toutiao", "paper", "screens"),
    "02.md": ("paper", "screens"),
    "03.md": ("screens",),
}
# the URL the demo's operator "published" the Toutiao task at; the sample export has it
TOUTIAO_DEMO_URL = "https://www.toutiao.com/article/7350000000000000001/"
DEMO_PASSWORD = "kepubot-demo"
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
        [users.ops]
        roles = ["operator"]

        [metrics]
        cadence = ["3s", "1h", "24h", "7d", "30d"]
        collect_seconds = 1

        [channels.weibo-main]
        type = "weibo"
        access_token = "${{KEPUBOT_DEMO_WEIBO_TOKEN}}"
        link_domain = "kepu.example.org"
        rip = "{DEMO_RIP}"
        api_base = "{sandbox}"
        timeout_seconds = 5

        [channels.wechat-main]
        type = "wechat"
        app_id = "{WECHAT_APPID}"
        app_secret = "${{KEPUBOT_DEMO_WECHAT_SECRET}}"
        mode = "freepublish"
        api_base = "{sandbox}"
        poll_seconds = 1
        timeout_seconds = 5

        [channels.douyin-main]
        type = "douyin"
        client_key = "{DOUYIN_KEY}"
        client_secret = "${{KEPUBOT_DEMO_DOUYIN_SECRET}}"
        open_id = "{DOUYIN_OPEN_ID}"
        access_token = "${{KEPUBOT_DEMO_DOUYIN_TOKEN}}"
        refresh_token = "${{KEPUBOT_DEMO_DOUYIN_REFRESH}}"
        api_base = "{sandbox}"
        timeout_seconds = 5

        [channels.bilibili-main]
        type = "bilibili"
        client_id = "{BILIBILI_CLIENT}"
        client_secret = "${{KEPUBOT_DEMO_BILIBILI_SECRET}}"
        access_token = "${{KEPUBOT_DEMO_BILIBILI_TOKEN}}"
        refresh_token = "${{KEPUBOT_DEMO_BILIBILI_REFRESH}}"
        tid = 201
        api_base = "{sandbox}"
        upload_base = "{sandbox}"
        oauth_base = "{sandbox}"
        poll_seconds = 1
        timeout_seconds = 5

        [channels.kuaishou-main]
        type = "kuaishou"
        app_id = "{KUAISHOU_APP}"
        app_secret = "${{KEPUBOT_DEMO_KUAISHOU_SECRET}}"
        access_token = "${{KEPUBOT_DEMO_KUAISHOU_TOKEN}}"
        refresh_token = "${{KEPUBOT_DEMO_KUAISHOU_REFRESH}}"
        api_base = "{sandbox}"
        poll_seconds = 1
        timeout_seconds = 5

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

        # outlets without a publishing interface (docs/platforms.md §14-§16)
        [channels.toutiao]
        type = "assisted"
        platform = "toutiao"
        output_dir = "public/packs"
        assignees = ["ops"]
        min_gap_minutes = 0

        # the demo's newspaper comes out every day, so that one issue is made at once
        [channels.paper]
        type = "print"
        title = "科普周刊·科普版"
        output_dir = "public/paper"
        issue_days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
        issue_time = "00:00"
        min_gap_minutes = 0

        [channels.screens]
        type = "screen"
        title = "科普e站"
        output_dir = "public/screens"
        min_gap_minutes = 0
        """
    )


MARKER = ".kepubot-demo"
# what a demo run makes in its workspace (the daemon and the console add some of these)
DEMO_ENTRIES = (
    "kepubot.toml",
    "demo.env",
    "sensitive_words.txt",
    "kepubot.db",
    "kepubot.db-wal",
    "kepubot.db-shm",
    "kepubot.db-journal",
    "media",
    "public",
    "reports",
    "daemon.log",
    "token.key",
    "web_secret.key",
)


def _write_marker(folder: Path, made: list[str]) -> None:
    marker = folder / MARKER
    marker.write_text(
        json.dumps({"kepubot_demo": 1, "made": made}, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )


def _marker_entries(folder: Path) -> list[str] | None:
    """The names a previous demo recorded as its own, or None when this is no demo workspace."""
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kepubot_demo") != 1:
        return None
    made = data.get("made")
    names = [m for m in made if isinstance(m, str)] if isinstance(made, list) else []
    # a plain name in this folder only: never a path that leads elsewhere
    return [n for n in names if n not in ("", ".", "..") and "/" not in n and "\\" not in n]


def _database_in_use(database: Path) -> bool:
    """Whether another process has this SQLite database open in WAL mode: every open
    connection holds a read lock on the "DMS" byte (128) of the ``-shm`` file (SQLite's
    os_unix.c). Linux only; elsewhere (and on any doubt) a leftover ``-wal`` counts as in use."""
    import fcntl
    import struct
    import sys

    shm = database.with_name(database.name + "-shm")
    if not shm.exists():
        return False
    if not sys.platform.startswith("linux"):
        return database.with_name(database.name + "-wal").exists()
    try:
        fd = os.open(shm, os.O_RDWR)
    except OSError:
        return database.with_name(database.name + "-wal").exists()
    try:
        query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 128, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        return struct.unpack("hhqqi", answer)[0] != fcntl.F_UNLCK
    except OSError:
        return True
    finally:
        os.close(fd)


def prepare_workspace(folder: Path) -> set[str]:
    """Make ``folder`` ready for a demo run without deleting anything the demo did not make.

    A missing or empty folder is used as it is. A folder holding the marker of an earlier
    demo has that demo's own files removed (whatever else is in it stays). Anything else is
    refused. Returns the names left in the folder (not the demo's)."""
    from kepubot.errors import InvalidInput

    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InvalidInput(f"demo --dir {folder}: not a folder; give a new or empty folder")
    if not folder.exists():
        folder.mkdir(parents=True)
    entries = {p.name for p in folder.iterdir()}
    if entries:
        recorded = _marker_entries(folder)
        if recorded is None:
            raise InvalidInput(
                f"demo --dir {folder}: the folder is not empty and is no demo workspace"
                f" (no {MARKER} file); nothing was deleted; give a new or empty folder"
            )
        if _database_in_use(folder / "kepubot.db"):
            raise InvalidInput(
                f"demo --dir {folder}: the previous demo's database is in use (a console or"
                " daemon is running on it); stop it first or give another folder"
            )
        names = set(recorded)
        if "kepubot.db" in names:  # the database's own companions go with it
            names |= {"kepubot.db-wal", "kepubot.db-shm", "kepubot.db-journal"}
        for name in sorted(names & entries):
            path = folder / name
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
        (folder / MARKER).unlink(missing_ok=True)
    kept = {p.name for p in folder.iterdir()}
    _write_marker(folder, [n for n in DEMO_ENTRIES if n not in kept])
    return kept | {MARKER}


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _post_json(url: str, payload: Any) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


Say = Callable[[str, str], str]


def _outlets(app: Any, data: Any, echo: Callable[[str], None], say: Say) -> list[str]:
    """The person's part of assisted publishing, as an operator would do it: confirm the
    Toutiao task with its URL and import the outlet's data export; then where the copy pack,
    the newspaper's issue and the screen pages are."""
    from kepubot.files.metricsimport import import_file
    from kepubot.services.assisted import confirm
    from kepubot.timeutil import utcnow

    lines: list[str] = []
    tasks = app.store.assisted.open_tasks(["toutiao"])
    for task in tasks:
        confirm(app, "ops", task.id, url=TOUTIAO_DEMO_URL, now=utcnow())
        echo(
            say(
                f"operator ops published Toutiao task {task.id} by hand and confirmed it",
                f"运维 ops 已手工发布头条任务 {task.id} 并确认",
            )
        )
    with as_file(data / "samples" / "toutiao-export.csv") as export:
        result = import_file(
            app,
            "ops",
            Path(export),
            channel="toutiao",
            export_format="toutiao",
            mapping={},
            now=utcnow(),
        )
    errors = [say(e, _translate_line(e)) for e in result.errors]
    echo(
        say(
            f"imported Toutiao's data export: {len(result.stored)} rows matched,"
            f" {len(result.unmatched)} unmatched{'; ' + '; '.join(errors) if errors else ''}",
            f"已导入头条的数据导出：匹配 {len(result.stored)} 行，"
            f"未匹配 {len(result.unmatched)} 行{'；' + '；'.join(errors) if errors else ''}",
        )
    )
    for task in tasks:
        pack = task.progress.get("zip", "")
        lines.append(say(f"copy pack: {pack}", f"素材包：{pack}"))
    issues = sorted(
        {d.remote_url or "" for d in app.store.deliveries.list_deliveries(channel="paper")}
    )
    for url in issues:
        if url:
            issue = url.removeprefix("file://")
            lines.append(say(f"newspaper issue: {issue}", f"报纸科普版：{issue}"))
    screens = app.config.resolve("public/screens")
    landscape, portrait = screens / "landscape.html", screens / "portrait.html"
    lines.append(
        say(f"screen pages: {landscape}, {portrait}", f"科普显示屏页面：{landscape}、{portrait}")
    )
    return lines


def _translate_line(line: str) -> str:
    from kepubot.web.messages import translate_line

    return translate_line(line)


def run_demo(folder: Path, echo: Callable[[str], None], language: str = "zh") -> int:
    """The demo, telling what it does in ``language`` (zh or en; docs/architecture.md §15.5):
    the English lines are the ones scripts read, so their words stay as they are."""
    from kepubot.app import App
    from kepubot.cli import say as say_to
    from kepubot.cli import zh_state
    from kepubot.config import load_config
    from kepubot.files.importer import read_posts
    from kepubot.sandbox.server import Sandbox
    from kepubot.services.posts import approve, create_posts, submit
    from kepubot.timeutil import utcnow

    reader = SimpleNamespace(language=language)

    def say(english: str, chinese_text: str) -> str:
        return say_to(reader, english, chinese_text)

    started = time.monotonic()
    kept = prepare_workspace(folder)
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)

    sandbox = Sandbox()
    base = sandbox.start()
    try:
        _post_json(
            f"{base}/_sandbox/secrets",
            {
                "webhook": {"cms": os.environ["KEPUBOT_DEMO_CMS_SECRET"]},
                "wecom_keys": [os.environ["KEPUBOT_DEMO_WECOM_KEY"]],
                "weibo_tokens": [os.environ["KEPUBOT_DEMO_WEIBO_TOKEN"]],
                "wechat": {WECHAT_APPID: os.environ["KEPUBOT_DEMO_WECHAT_SECRET"]},
                "douyin": {
                    "client_key": DOUYIN_KEY,
                    "client_secret": os.environ["KEPUBOT_DEMO_DOUYIN_SECRET"],
                    "access_token": os.environ["KEPUBOT_DEMO_DOUYIN_TOKEN"],
                    "refresh_token": os.environ["KEPUBOT_DEMO_DOUYIN_REFRESH"],
                    "open_id": DOUYIN_OPEN_ID,
                },
                "bilibili": {
                    "client_id": BILIBILI_CLIENT,
                    "client_secret": os.environ["KEPUBOT_DEMO_BILIBILI_SECRET"],
                    "access_token": os.environ["KEPUBOT_DEMO_BILIBILI_TOKEN"],
                    "refresh_token": os.environ["KEPUBOT_DEMO_BILIBILI_REFRESH"],
                    "openid": "bili-openid-demo",
                },
                "kuaishou": {
                    "app_id": KUAISHOU_APP,
                    "app_secret": os.environ["KEPUBOT_DEMO_KUAISHOU_SECRET"],
                    "access_token": os.environ["KEPUBOT_DEMO_KUAISHOU_TOKEN"],
                    "refresh_token": os.environ["KEPUBOT_DEMO_KUAISHOU_REFRESH"],
                    "open_id": "ks-open-id-demo",
                },
            },
        )
        # the emulated WeChat finishes publishing after one poll; the emulated Douyin skips
        # its review delay; the demo publishes more articles a minute than WeChat's default
        _post_json(
            f"{base}/_sandbox/settings",
            {
                "publish_polls_before_done": 1,
                "douyin_review_seconds": 0,
                # Bilibili and Kuaishou review for a second; the demo's fast-forward moves the
                # platforms' clock an hour ahead of the signatures' timestamps
                "bilibili_review_seconds": 1,
                "bilibili_list_delay_seconds": 1,
                "bilibili_timestamp_skew_seconds": 7200,
                "kuaishou_pending_seconds": 1,
                "kuaishou_list_delay_seconds": 1,
                "wechat_publishes_per_minute": 100,
                # Weibo asks for the operator's real public IP; the demo's stand-in is a
                # documentation address, which the emulated Weibo must be told to accept.
                "weibo_rip_allow": [DEMO_RIP],
                "weibo_safe_domains": ["kepu.example.org"],
            },
        )
        config_path = folder / "kepubot.toml"
        config_path.write_text(_config(base), encoding="utf-8")
        # the config references its (made-up, sandbox-only) secrets as ${ENV}; this file lets
        # a person run further commands on the demo workspace: `. demo.env && kepubot ...`
        env_file = folder / "demo.env"
        env_file.write_text(
            "".join(f"export {name}={value}\n" for name, value in DEMO_SECRETS.items()),
            encoding="utf-8",
        )
        env_file.chmod(0o600)
        data = files("kepubot") / "data"
        (folder / "sensitive_words.txt").write_text(
            (data / "sensitive_words.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
        echo(say(f"workspace: {folder}", f"工作目录：{folder}"))
        echo(say(f"sandbox:   {base}", f"沙盒服务：{base}"))

        app = App(load_config(config_path))
        app.channels  # noqa: B018
        with as_file(data / "samples" / "posts") as posts_dir:
            items = read_posts(Path(posts_dir))
            for item, source in items:
                item.channels = [*(item.channels or []), *EXTRA_CHANNELS]
                item.channels += list(OUTLET_CHANNELS.get(Path(source).name, ()))
                if item.video is not None:
                    item.channels += [c for c in VIDEO_CHANNELS if c not in item.channels]
            ids = create_posts(app, "zhang", items, now=utcnow())
        echo(
            say(
                f"editor zhang imported {len(ids)} sample posts",
                f"编辑 zhang 导入了 {len(ids)} 篇示例稿件",
            )
        )
        from kepubot.services.accounts import set_password

        for name in app.config.data.users:
            # a demo workspace only: every demo user can sign in to the console with this
            set_password(app, "demo", name, DEMO_PASSWORD, now=utcnow())
        submit(app, "zhang", ids, now=utcnow())
        for reviewer, level in zip(REVIEWERS, app.config.review_levels, strict=True):
            approve(app, reviewer, ids, now=utcnow(), comment=f"{level}通过")
            echo(
                say(
                    f"reviewer {reviewer} approved all at level {level}",
                    f"审核员 {reviewer} 在{level}通过了全部稿件",
                )
            )
        total = sum(app.store.deliveries.counts_by_state().values())
        echo(
            say(
                f"{total} deliveries queued; starting the daemon (kepubot run)",
                f"{total} 个发布任务已排队；启动守护进程（kepubot run）",
            )
        )

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
            counts = app.store.deliveries.counts_by_state()
            settled = sum(
                counts.get(s, 0) for s in ("published", "failed", "needs_attention", "cancelled")
            )
            # a Toutiao task waits for a person (待人工发布): settled as far as the daemon goes
            if settled + len(app.store.assisted.open_tasks(["toutiao"])) == total:
                break
            time.sleep(0.3)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        ledger = _get_json(f"{base}/_sandbox/ledger")
        # fast-forward: an hour later on the platforms and for the collector (the 1 h point)
        from datetime import timedelta

        from kepubot.bot.collect import collect_pass
        from kepubot.bot.dispatch import Engine

        _post_json(f"{base}/_sandbox/clock", {"advance": 3600})
        later = utcnow() + timedelta(hours=1, seconds=5)
        engine = Engine(app, worker="demo", clock=lambda: later)
        try:
            collected = collect_pass(engine)["collected"]
        finally:
            engine.close()
        echo(
            say(
                f"an hour later: metrics collected for {collected} deliveries",
                f"一小时后：已采集 {collected} 个发布任务的数据",
            )
        )
        outlets = _outlets(app, data, echo, say)
        counts = app.store.deliveries.counts_by_state()
    finally:
        sandbox.stop()

    published = counts.get("published", 0)
    echo("")
    seconds = f"{time.monotonic() - started:.1f}"
    echo(
        say(
            f"published {published} of {total} deliveries in {seconds} s",
            f"{total} 个发布任务中{zh_state('published')} {published} 个，用时 {seconds} 秒",
        )
    )
    for channel, done in sorted(app.store.deliveries.counts_by_channel("published").items()):
        echo(
            say(
                f"  {channel:<12} {done} published",
                f"  {channel:<12} {zh_state('published')} {done}",
            )
        )
    by_route: dict[str, int] = {}
    for entry in ledger.get("accepted", []):
        # count publications, not the intermediate steps (WeChat drafts, uploads)
        if entry.get("kind") in (
            None,
            "status",
            "freepublish",
            "mass",
            "video",
            "archive",
            "photo",
        ):
            by_route[entry["route"]] = by_route.get(entry["route"], 0) + 1
    duplicates = len(ledger.get("duplicates", []))
    received = sorted(by_route.items())
    echo(
        say(
            "sandbox received: "
            + ", ".join(f"{route} {n}" for route, n in received)
            + f"; duplicates {duplicates}",
            "沙盒收到："
            + "，".join(f"{route} {n}" for route, n in received)
            + f"；重复 {duplicates}",
        )
    )
    from kepubot.reports.aggregate import build_report

    report = build_report(app, now=utcnow(), language="zh")
    totals = {k: "-" if v is None else v for k, v in report["totals"].items()}
    config = folder / "kepubot.toml"
    env_file = folder / "demo.env"
    report_command = (
        f". {env_file} && kepubot --config {config} report --format html --out report.html"
    )
    echo(
        say(
            f"reach so far: views {totals['views']}, likes {totals['likes']},"
            f" shares {totals['shares']} ({report_command})",
            f"目前的触达：阅读/播放 {totals['views']}，点赞 {totals['likes']}，"
            f"转发/分享 {totals['shares']}（{report_command}）",
        )
    )
    feeds = app.config.resolve("public/feeds")
    for name in ("feed.xml", "atom.xml", "feed.json"):
        echo(say(f"feed: {feeds / name}", f"订阅源：{feeds / name}"))
    for line in outlets:
        echo(line)
    chain = app.store.audit.verify()
    echo(
        say(
            f"audit chain: {'intact' if chain.ok else 'BROKEN'} ({chain.rows} rows)",
            f"审计链：{'完整' if chain.ok else '已损坏'}（共 {chain.rows} 行）",
        )
    )
    status_command = f". {env_file} && kepubot --config {config} status"
    echo(say(f"next: {status_command}", f"下一步：{status_command}"))
    web_command = f". {env_file} && kepubot --config {config} web"
    echo(
        say(
            f"console: {web_command}, then sign in at"
            f" http://127.0.0.1:8080/ as wang (reviewer, manager) or zhang (editor),"
            f" password {DEMO_PASSWORD}",
            f"控制台：{web_command}，然后在 http://127.0.0.1:8080/ 以 wang（审核员、主管）"
            f"或 zhang（编辑）登录，密码 {DEMO_PASSWORD}",
        )
    )
    app.close()
    _write_marker(folder, sorted(p.name for p in folder.iterdir() if p.name not in kept))
    ok = published == total and duplicates == 0 and chain.ok
    if not ok:
        log = folder / "daemon.log"
        named = "，".join(f"{zh_state(s)} {n}" for s, n in sorted(counts.items()))
        echo(
            say(
                f"demo did not finish cleanly: {counts}; see {log}",
                f"演示未能顺利完成：{named}；请查看 {log}",
            )
        )
    return 0 if ok else 1
