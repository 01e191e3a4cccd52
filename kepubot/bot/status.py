"""``kepubot status``: what an operator looks at first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kepubot.timeutil import from_db, show

if TYPE_CHECKING:
    from kepubot.app import App

HEARTBEAT_STALE = timedelta(seconds=30)


def collect_status(app: App, now: datetime) -> dict[str, Any]:
    return {"deliveries": app.store.deliveries.counts_by_state(), **collect_health(app, now)}


def collect_health(app: App, now: datetime) -> dict[str, Any]:
    """The oldest overdue delivery, open breakers and the daemons' heartbeats: small
    queries however much was published (the console shows them on every deliveries page)."""
    store = app.store
    overdue = store.deliveries.oldest_overdue(now)
    breakers = [
        {
            "channel": s.channel,
            "breaker": s.breaker,
            "open_until": show(s.open_until, app.tz) or None,
            "reason": s.reason,
        }
        for s in store.limits.states()
        if s.breaker != "closed"
    ]
    daemons = []
    for row in store.ops.daemons():
        beat = from_db(row["heartbeat_at"])
        running = row["stopped_at"] is None and now - beat < HEARTBEAT_STALE
        daemons.append(
            {
                "worker": row["worker"],
                "host": row["host"],
                "pid": row["pid"],
                "started_at": show(row["started_at"], app.tz),
                "last_heartbeat": show(beat, app.tz),
                "seconds_ago": round((now - beat).total_seconds(), 1),
                "running": running,
            }
        )
    return {
        "paused": [
            {
                "scope": p["scope"],
                "reason": p["reason"],
                "paused_by": p["paused_by"],
                "paused_at": show(p["paused_at"], app.tz),
            }
            for p in store.pauses.paused()
        ],
        # posts held back one by one (docs/delivery.md §18)
        "paused_posts": [
            {
                "post_id": p["post_id"],
                "reason": p["reason"],
                "paused_by": p["paused_by"],
                "paused_at": show(p["paused_at"], app.tz),
            }
            for p in store.post_pauses.paused_posts()
        ],
        "oldest_overdue": (
            {
                "id": overdue["id"],
                "post_id": overdue["post_id"],
                "channel": overdue["channel"],
                "state": overdue["state"],
                "due_at": show(overdue["due_at"], app.tz),
                "late_minutes": round((now - from_db(overdue["due_at"])).total_seconds() / 60, 1),
            }
            if overdue
            else None
        ),
        "open_breakers": breakers,
        "daemons": daemons,
    }


def render_status(app: App, data: dict[str, Any]) -> str:
    if getattr(app, "language", "zh") != "en":
        return _render_zh(app, data)
    from kepubot.i18n import label

    lines = []
    for p in data.get("paused", []):
        where = "全部渠道" if p["scope"] == "*" else p["scope"]
        lines.append(
            f"已暂停 (paused): {where}，由 {p['paused_by']} 于 {p['paused_at']}，原因：{p['reason']}"
            if getattr(app, "language", "zh") != "en"
            else f"paused: {'every channel' if p['scope'] == '*' else p['scope']} by"
            f" {p['paused_by']} at {p['paused_at']}: {p['reason']}"
        )
    for p in data.get("paused_posts", []):
        lines.append(
            f"paused post {p['post_id']} by {p['paused_by']} at {p['paused_at']}"
            + (f": {p['reason']}" if p["reason"] else "")
        )
    lines.append(f"{label(app, 'deliveries')}:")
    if data["deliveries"]:
        for state, count in sorted(data["deliveries"].items()):
            lines.append(f"  {label(app, state)} ({state}): {count}")
    else:
        lines.append("  -")
    overdue = data["oldest_overdue"]
    lines.append(
        "oldest overdue: "
        + (
            f"delivery {overdue['id']} (post {overdue['post_id']} on {overdue['channel']}, {overdue['state']}),"
            f" due {overdue['due_at']}, {overdue['late_minutes']} min late"
            if overdue
            else "none"
        )
    )
    lines.append(
        "open breakers: "
        + (
            ", ".join(
                f"{b['channel']} ({b['breaker']} until {b['open_until']}: {b['reason']})"
                for b in data["open_breakers"]
            )
            or "none"
        )
    )
    hosts = sorted({d["host"] for d in data["daemons"]})
    lines.append(f"daemons ({len(hosts)} hosts: {', '.join(hosts)}):" if hosts else "daemons:")
    for d in data["daemons"]:
        state = "running" if d["running"] else "stopped"
        lines.append(
            f"  {d['worker']}  on {d['host']}  {state}  last heartbeat {d['last_heartbeat']}"
            f" ({d['seconds_ago']} s ago)"
        )
    if not data["daemons"]:
        lines.append("  none has run yet")
    return "\n".join(lines)


def _render_zh(app: App, data: dict[str, Any]) -> str:
    """``status`` in Chinese (the default where [kepubot] language is zh); times are already in
    the configured zone (collect_status)."""
    from kepubot.i18n import label

    lines = []
    for p in data.get("paused", []):
        where = "全部渠道" if p["scope"] == "*" else p["scope"]
        lines.append(
            f"已暂停：{where}，由 {p['paused_by']} 于 {p['paused_at']}，原因：{p['reason']}"
        )
    for p in data.get("paused_posts", []):
        lines.append(
            f"已暂停稿件 {p['post_id']}：由 {p['paused_by']} 于 {p['paused_at']} 暂停"
            + (f"，原因：{p['reason']}" if p["reason"] else "")
        )
    lines.append("发布任务：")
    if data["deliveries"]:
        for state, count in sorted(data["deliveries"].items()):
            lines.append(f"  {label(app, state)}（{state}）：{count}")
    else:
        lines.append("  无")
    overdue = data["oldest_overdue"]
    lines.append(
        "最久逾期："
        + (
            f"发布任务 {overdue['id']}（稿件 {overdue['post_id']}，{overdue['channel']}，"
            f"{label(app, overdue['state'])}），应于 {overdue['due_at']} 发布，"
            f"已晚 {overdue['late_minutes']} 分钟"
            if overdue
            else "无"
        )
    )
    lines.append(
        "熔断中的渠道："
        + (
            "；".join(
                f"{b['channel']}（{b['breaker']}，至 {b['open_until']}：{b['reason']}）"
                for b in data["open_breakers"]
            )
            or "无"
        )
    )
    hosts = sorted({d["host"] for d in data["daemons"]})
    lines.append(
        f"发布程序（{len(hosts)} 台主机：{'、'.join(hosts)}）：" if hosts else "发布程序："
    )
    for d in data["daemons"]:
        state = "运行中" if d["running"] else "已停止"
        lines.append(
            f"  {d['worker']}  主机 {d['host']}  {state}  最近心跳 {d['last_heartbeat']}"
            f"（{d['seconds_ago']} 秒前）"
        )
    if not data["daemons"]:
        lines.append("  尚未运行过")
    return "\n".join(lines)
