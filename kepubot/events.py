"""Audit events as sentences people read (docs/architecture.md §15.5): "李审核 于 12-05 17:38
通过初审" instead of ``post.approved_level``. The stored record is unchanged; this is how the
console's audit page words it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from kepubot.timeutil import to_local

# action -> (Chinese phrase, English phrase); {level}, {reason}, {channel}, {at}, {round}
_PHRASES: dict[str, tuple[str, str]] = {
    "post.created": ("写了这篇稿件", "wrote the post"),
    "post.edited": ("修改了稿件", "edited the post"),
    "post.submitted": ("提交审核（第 {round} 轮）", "submitted it for review (round {round})"),
    "post.approved_level": ("通过{level}", "passed it at {level}"),
    "post.approved": ("通过{level}，审核完成", "passed it at {level}; review complete"),
    "post.rejected": ("在{level}退回：{reason}", "rejected it at {level}: {reason}"),
    "post.scheduled": ("把发布时间定为 {at}", "set the publishing time to {at}"),
    "post.cancelled": ("撤销了稿件", "withdrew the post"),
    "post.paused": ("暂停了稿件的发布", "paused its publishing"),
    "post.resumed": ("恢复了稿件的发布", "resumed its publishing"),
    "post.retract": ("要求撤回：{reason}", "asked to retract it: {reason}"),
    "post.correction": ("发布更正", "published a correction"),
    "delivery.queued": ("让{channel}的发布任务进入队列", "queued the {channel} delivery"),
    "delivery.held": ("暂缓{channel}的发布任务", "held the {channel} delivery"),
    "delivery.rescheduled": ("调整了{channel}的发布时间", "moved the {channel} delivery"),
    "delivery.claimed": ("开始处理{channel}的发布任务", "took the {channel} delivery"),
    "delivery.sending": ("向{channel}发送", "sent it to {channel}"),
    "delivery.processing": ("{channel}平台处理中", "{channel} is processing it"),
    "delivery.awaiting_person": (
        "{channel}素材包已生成，待人工发布",
        "{channel}: copy pack written, awaiting a person",
    ),
    "delivery.unknown": ("{channel}结果未知，待核对", "{channel}: outcome unknown, to check"),
    "delivery.reconciled": ("核对了{channel}的结果", "checked the {channel} outcome"),
    "delivery.published": ("在{channel}发布成功", "published it on {channel}"),
    "delivery.failed": ("{channel}发布失败", "{channel} failed"),
    "delivery.retry": ("重新排队{channel}的发布任务", "retried the {channel} delivery"),
    "delivery.cancelled": ("取消了{channel}的发布任务", "cancelled the {channel} delivery"),
    "delivery.released": ("释放了{channel}的发布任务", "released the {channel} delivery"),
    "delivery.lease_expired": (
        "{channel}的发布任务租约过期，重新排队",
        "the {channel} delivery's lease expired",
    ),
    "delivery.resolved_by_operator": (
        "人工确认了{channel}的结果",
        "resolved the {channel} delivery by hand",
    ),
    "delivery.confirmed_by_person": (
        "确认已在{channel}人工发布",
        "confirmed it was published on {channel} by hand",
    ),
    "delivery.retract_requested": ("要求在{channel}撤回", "asked {channel} to retract it"),
    "delivery.retract_by_person": (
        "确认已在{channel}人工撤回",
        "retracted it on {channel} by hand",
    ),
    "delivery.retracted": ("在{channel}撤回成功", "retracted it on {channel}"),
}


def when_short(value: Any, tz: ZoneInfo) -> str:
    local = to_local(value, tz)
    return local.strftime("%m-%d %H:%M") if local is not None else str(value)


def sentence(
    row: Any,
    *,
    language: str,
    tz: ZoneInfo,
    name_of: Callable[[str], str],
    channel_of: Callable[[int | None], str] = lambda _id: "",
) -> str:
    """One audit row as a sentence: who, when (in ``tz``), what."""
    detail: dict[str, Any] = row.detail or {}
    phrase = _PHRASES.get(row.action)
    if row.action == "post.resumed" and detail.get("cause") == "cancelled":
        # cancelling a paused post lifts its pause (docs/delivery.md §18): not a resume
        phrase = ("撤销稿件时解除了暂停", "lifted its pause by withdrawing it")
    english = language == "en"
    channel = channel_of(row.delivery_id) or str(detail.get("channel") or "")
    at = detail.get("at")
    values = {
        "level": detail.get("level_name") or detail.get("level") or "",
        "reason": detail.get("reason") or "",
        "round": detail.get("round") or "",
        "channel": channel or ("a channel" if english else "某渠道"),
        "at": when_short(at, tz)
        if at
        else ("each channel's next free slot" if english else "各渠道的下一个空闲时段")
        if detail.get("next_slot")
        else ("as soon as approved" if english else "审核通过后立即发布"),
    }
    # a new kind of event without a phrase: its name, never hidden
    what = row.action if phrase is None else (phrase[1] if english else phrase[0]).format(**values)
    who = name_of(row.actor)
    moment = when_short(row.at, tz)
    if english:
        return f"{who} {what} at {moment}"
    return f"{who} 于 {moment} {what}"
