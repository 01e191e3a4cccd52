"""The daemon's side of assisted publishing (docs/delivery.md §17.2): tell the channel's
assignees about each new task once, and alert when a task is not confirmed within the
channel's ``confirm_within_hours``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kepubot.queue.assisted import STATE_LABEL_ZH

if TYPE_CHECKING:
    from kepubot.bot.dispatch import Engine

log = logging.getLogger("kepubot.bot.assisted")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def assisted_channels(app: Any) -> dict[str, Any]:
    return {n: c for n, c in app.channels.items() if c.type_name() == "assisted"}


def task_link(app: Any, delivery_id: int) -> str:
    base = app.config.data.web.base_url
    return f"{base.rstrip('/')}/tasks/{delivery_id}" if base else f"投递 {delivery_id}"


def _urls_for(app: Any, assignees: list[str]) -> list[str]:
    urls: list[str] = []
    for login in assignees:
        user = app.config.data.users.get(login)
        urls += [u.get_secret_value() for u in getattr(user, "notify", []) or []]
    return urls or [u.get_secret_value() for u in app.config.data.alerts.urls]


def check_tasks(engine: Engine) -> list[str]:
    """Notify new tasks (once each) and alert on overdue ones; returns the lines sent."""
    from kepubot.alerts import notify

    app = engine.app
    store = engine.store
    now = engine.clock()
    channels = assisted_channels(app)
    lines: list[str] = []
    for delivery in store.assisted.open_tasks(list(channels)):
        channel = channels[delivery.channel]
        settings = channel.settings
        link = task_link(app, delivery.id)
        pack = delivery.progress.get("zip", "")
        key = f"assisted-task:{delivery.id}"
        if not store.ops.alerted_since(key, EPOCH):
            title = f"kepubot: {STATE_LABEL_ZH} — {channel.profile.name_zh}"
            who = "、".join(settings.assignees) or "值班运营"
            body = (
                f"{who}：投递 {delivery.id}（稿件 {delivery.post_id}）请发布到"
                f"{channel.profile.name_zh}。素材包：{pack}\n任务页：{link}\n"
                f"发布后确认：kepubot delivery confirm {delivery.id} --url 发布地址"
            )
            store.ops.remember_alerts([key], now, title)
            notify(_urls_for(app, settings.assignees), title, body)
            lines.append(body)
        since_text = delivery.progress.get("awaiting_since")
        if not since_text:
            continue
        since = datetime.fromisoformat(str(since_text))
        if now - since < timedelta(hours=settings.confirm_within_hours):
            continue
        late = f"assisted-late:{delivery.id}"
        window = now - timedelta(minutes=app.config.data.alerts.repeat_minutes)
        if store.ops.alerted_since(late, window):
            continue
        body = (
            f"delivery {delivery.id} (post {delivery.post_id} on {delivery.channel},"
            f" {STATE_LABEL_ZH}): not confirmed within {settings.confirm_within_hours:g} h"
            f" — {link}"
        )
        store.ops.remember_alerts([late], now, body)
        log.error("ALERT %s", body)
        notify(
            [u.get_secret_value() for u in app.config.data.alerts.urls]
            + _urls_for(app, settings.assignees),
            f"kepubot: {STATE_LABEL_ZH}任务超时未确认",
            body,
        )
        lines.append(body)
    lines += _tell_cancelled(app, channels, now)
    return lines


def _tell_cancelled(app: Any, channels: dict[str, Any], now: datetime) -> list[str]:
    """A task whose post was cancelled before anyone confirmed it (docs/delivery.md §17.2):
    its assignees are told once not to publish it (cancelled in the last week: older ones were
    told by an earlier pass)."""
    from kepubot.alerts import notify

    if not channels:
        return []
    store = app.store
    lines: list[str] = []
    for delivery in store.assisted.cancelled_since(list(channels), now - timedelta(days=7)):
        key = f"assisted-cancelled:{delivery.id}"
        if not delivery.progress.get("awaiting_person") or store.ops.alerted_since(key, EPOCH):
            continue
        channel = channels[delivery.channel]
        title = f"kepubot: 已取消，请勿发布 — {channel.profile.name_zh}"
        body = (
            f"投递 {delivery.id}（稿件 {delivery.post_id}）的稿件已撤销，请不要再发布到"
            f"{channel.profile.name_zh}。如已发布，请联系值班运营处理。"
        )
        store.ops.remember_alerts([key], now, title)
        notify(_urls_for(app, channel.settings.assignees), title, body)
        lines.append(body)
    return lines
