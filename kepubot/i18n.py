"""Labels that editors and managers read: Simplified Chinese by default, English as an option."""

from __future__ import annotations

from typing import Any

LABELS: dict[str, tuple[str, str]] = {
    "id": ("编号", "id"),
    "post": ("稿件", "post"),
    "state": ("状态", "state"),
    "author": ("作者", "author"),
    "scheduled": ("计划时间", "scheduled"),
    "channels": ("渠道", "channels"),
    "channel": ("渠道", "channel"),
    "title": ("标题", "title"),
    "tags": ("标签", "tags"),
    "link": ("链接", "link"),
    "media": ("媒体", "media"),
    "summary": ("摘要", "summary"),
    "reviews": ("审核记录", "reviews"),
    "deliveries": ("发布任务", "deliveries"),
    "due": ("到期时间", "due"),
    "attempts": ("尝试次数", "attempts"),
    "remote": ("平台链接/错误", "remote / error"),
    "kind": ("类型", "kind"),
    "text": ("文本", "text"),
    "html": ("正文 HTML", "HTML"),
    "problems": ("问题", "problems"),
    "none": ("无", "none"),
    "extra": ("其他字段", "other fields"),
    "content_hash": ("内容哈希", "content hash"),
    "accepted_words": ("已接受的提示词", "accepted warning words"),
    # post states
    "draft": ("草稿", "draft"),
    "in_review": ("审核中", "in review"),
    "approved": ("已通过", "approved"),
    "rejected": ("已退回", "rejected"),
    "cancelled": ("已撤销", "cancelled"),
    # review decisions
    "approve": ("通过", "approve"),
    "reject": ("退回", "reject"),
    # delivery states
    "pending": ("待审", "pending"),
    "queued": ("排队中", "queued"),
    "claimed": ("已领取", "claimed"),
    "sending": ("发送中", "sending"),
    "processing": ("平台处理中", "processing"),
    "unknown": ("结果未知", "unknown"),
    "needs_attention": ("需人工处理", "needs attention"),
    "published": ("已发布", "published"),
    "failed": ("失败", "failed"),
    # retraction (docs/delivery.md §14) and the emergency stop
    "retracting": ("撤回中", "retracting"),
    "retracted": ("已撤回", "retracted"),
    "retract:failed": ("撤回失败", "retraction failed"),
    "retract:needs_attention": ("撤回需人工处理", "retraction needs attention"),
    "paused": ("已暂停", "paused"),
    # assisted publishing (docs/delivery.md §17): the delivery state awaiting_person
    "awaiting_person": ("待人工发布", "awaiting a person"),
    # where a metric snapshot came from
    "source:imported": ("导入", "imported"),
    "source:manual": ("手工录入", "entered by hand"),
}


def label(app: Any, key: str) -> str:
    zh, en = LABELS.get(key, (key, key))
    return en if getattr(app, "language", "zh") == "en" else zh


def state_name(text: str, states: tuple[str, ...] | list[str]) -> str | None:
    """A state as the user wrote it, in English (``in_review``) or by its Chinese name
    (审核中); None when it is neither."""
    wanted = text.strip()
    if wanted in states:
        return wanted
    for state in states:
        zh, en = LABELS.get(state, (state, state))
        if wanted in (zh, en):
            return state
    return None
