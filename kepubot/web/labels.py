"""What the console says, in Simplified Chinese (default) and English."""

from __future__ import annotations

from kepubot.i18n import LABELS as CLI_LABELS

WEB_LABELS: dict[str, tuple[str, str]] = {
    "app": ("kepubot 科普发布台", "kepubot console"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "user": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "bad_credentials": ("用户名或密码错误。", "Wrong user name or password."),
    "too_many": (
        "登录失败次数过多，请 {minutes} 分钟后再试。",
        "Too many failed sign-ins; try again in {minutes} minutes.",
    ),
    "no_password_hint": (
        "还没有密码？请管理员运行 kepubot user passwd 用户名。",
        "No password yet? Ask an administrator to run kepubot user passwd NAME.",
    ),
    "posts": ("稿件", "Posts"),
    "compose": ("写稿", "Compose"),
    "review": ("审核", "Review"),
    "calendar": ("日历", "Calendar"),
    "deliveries": ("发布任务", "Deliveries"),
    "reports": ("报表", "Reports"),
    "audit": ("审计记录", "Audit trail"),
    "language": ("语言", "Language"),
    "filter": ("筛选", "Filter"),
    "search_title": ("搜索标题", "Search titles"),
    "all": ("全部", "all"),
    "tag": ("标签", "tag"),
    "created_from": ("创建自", "created from"),
    "created_until": ("创建至", "created until"),
    "next_page": ("下一页", "Next page"),
    "prev_page": ("上一页", "Previous page"),
    "no_posts": ("没有符合条件的稿件。", "No posts match."),
    "updated": ("更新时间", "updated"),
    "body": ("正文（Markdown）", "Body (Markdown)"),
    "images": ("图片", "Images"),
    "video": ("视频（MP4）", "Video (MP4)"),
    "cover": ("封面", "Cover"),
    "target_channels": ("发布渠道", "Target channels"),
    "when": ("发布时间", "When"),
    "when_now": ("审核通过后立即发布", "As soon as approved"),
    "when_at": ("指定时间", "At a time"),
    "when_next": ("各渠道的下一个空闲时段", "Each channel's next free slot"),
    "save_draft": ("保存草稿", "Save draft"),
    "save_submit": ("保存并提交审核", "Save and submit for review"),
    "live_preview": ("实时预览", "Live preview"),
    "preview_note": (
        "新选的图片先在本机预览，保存后随稿件上传；视频在保存后进入预览。",
        "Newly chosen images preview from this computer and upload with the post when saved;"
        " a video appears in the preview once saved.",
    ),
    "channel_preview": ("各渠道预览（将要发送的内容）", "Per-channel preview (what will be sent)"),
    "tags_hint": ("用逗号或空格分隔", "separated by commas or spaces"),
    "remove_images": (
        "移除现有图片（不上传新图片时）",
        "Remove the current images (when choosing none)",
    ),
    "keep_media": ("不选择文件则保留现有媒体", "Choose no file to keep the current media"),
    "edit": ("编辑", "Edit"),
    "submit": ("提交审核", "Submit for review"),
    "approve_with": ("通过", "Approve"),
    "reject_with": ("退回", "Reject"),
    "comment": ("意见", "Comment"),
    "reason": ("退回原因", "Reason"),
    "schedule": ("设定发布时间", "Schedule"),
    "cancel_post": ("撤销稿件", "Withdraw post"),
    "level": ("审核级别", "Review level"),
    "current_level": ("当前审核级别", "Current level"),
    # warn sensitive words at review (docs/architecture.md §4.3)
    "warning_words": ("提示词（需审核人写明理由后接受）", "Warning words (accept with a reason)"),
    "accept_warnings": ("接受以上提示词", "Accept these warning words"),
    # 三校 and sources (docs/architecture.md §13, §14)
    "proofreading": ("校对提示", "Proofreading"),
    "proofreading_ack_hint": (
        "终审需逐条确认以下校对提示（已核对，无需修改）后才能通过。",
        "At the final level, tick each proofreading finding you have checked before approving.",
    ),
    "sources": ("参考资料", "Sources"),
    "sources_hint": (
        "每行一条：标题|https://… 或 标题|doi:10.xxxx/…",
        "One per field: title|https://… or title|doi:10.xxxx/…",
    ),
    "accept_reason": ("接受理由", "Reason for accepting"),
    "not_yours": ("（不可审核：{reason}）", "(cannot review: {reason})"),
    "queue_empty": ("此级别没有待审稿件。", "Nothing waits at this level."),
    "your_posts": ("我的稿件", "My posts"),
    "week": ("周", "Week"),
    "month": ("月", "Month"),
    "today": ("今天", "Today"),
    "previous": ("上一段", "Earlier"),
    "next": ("下一段", "Later"),
    "planned": ("计划", "planned"),
    # the calendar (issue 16)
    "agenda": ("列表", "Agenda"),
    "mixed": ("多种状态", "mixed"),
    "more_cards": ("还有 {n} 篇", "+{n} more"),
    "move": ("改期", "Move"),
    "move_hint": (
        "拖动计划中的稿件到另一天可改期（规则同 kepubot post schedule：最小间隔、禁发时段、不能选过去的时间）；也可用卡片上的“改期”。",
        "Drag a planned post to another day to move it (the rules of kepubot post schedule: min gap, blackout windows, no past times), or use Move on its card.",
    ),
    "moved": ("稿件 {post} 已改到 {at}。", "Post {post} moved to {at}."),
    "new_day": ("日期", "Day"),
    "new_time": ("时间", "Time"),
    "all_channels": ("全部渠道", "All channels"),
    "all_states": ("全部状态", "All states"),
    "all_authors": ("全部作者", "All authors"),
    "nothing_this_day": ("这一天没有安排", "Nothing on this day"),
    "menu": ("菜单", "Menu"),
    "edit_tab": ("编辑", "Edit"),
    "preview_tab": ("预览", "Preview"),
    "to_be_sent": ("将要发送的内容", "What will be sent"),
    "was_sent": ("各渠道已发送的内容", "Per-channel: what was sent"),
    "variant": ("本渠道专用版本", "This channel's own version"),
    "variant_hint": (
        "留空则使用上面的标题和正文。",
        "Leave empty to use the title and body above.",
    ),
    "variant_title": ("本渠道标题", "Title on this channel"),
    "variant_body": ("本渠道正文", "Body on this channel"),
    "variant_summary": ("本渠道摘要", "Summary on this channel"),
    "units": ("{n}/{limit} 字", "{n}/{limit} units"),
    "read_original": ("阅读原文", "Read more"),
    "web_link": ("网页链接", "Web link"),
    "chat_card": ("订阅号消息列表中的样子", "As followers see it in the chat list"),
    "article_frame": ("文章页", "Article page"),
    "caption": ("标题文案", "Caption"),
    "cover_image": ("封面", "Cover"),
    "first_image": ("配图", "Image"),
    "message_as_seen": ("群里看到的消息", "The message as the group sees it"),
    "feed_item": ("订阅源条目", "Feed item"),
    "request_body": ("请求内容", "Request body"),
    "no_cover": ("（无封面）", "(no cover)"),
    "author_label": ("作者", "Author"),
    "digest_label": ("摘要", "Digest"),
    "other_fields": ("其他设置", "Other settings"),
    "calendar_summary": (
        "本期共 {total} 条发布任务，太多无法逐条列出，按日、渠道和状态汇总；点开某一天的某个渠道看明细，或查看",
        "{total} deliveries in this period, too many to list one by one: counted per day, channel and state; open a day's channel for the items, or see",
    ),
    "retry": ("重新排队", "Retry"),
    "daemons": ("发布进程", "Daemons"),
    "running": ("个运行中", "running"),
    "heartbeat": ("心跳", "heartbeat"),
    "no_daemon": (
        "没有运行中的发布进程（kepubot run）：到期的任务不会发出",
        "No daemon running (kepubot run): due deliveries will not go out",
    ),
    "oldest_overdue": ("最早逾期", "Oldest overdue"),
    "minutes_late": ("分钟", "min late"),
    "breaker_open": (
        "渠道 {channel} 已暂停（熔断）：",
        "Channel {channel} is paused (breaker open):",
    ),
    "resolve_published": ("已在平台发布（填写链接或编号）", "It is published (URL or id)"),
    "resolve_not_published": ("未发布，重新发送", "Not published: send again"),
    "error": ("出错了", "Something went wrong"),
    "back": ("返回", "Back"),
    "since": ("开始日期", "From"),
    "until": ("结束日期", "To"),
    "show": ("查看", "Show"),
    "download": ("下载", "Download"),
    "actor": ("操作人", "actor"),
    "action": ("操作", "action"),
    "at": ("时间", "time"),
    "detail": ("详情", "detail"),
    "error_col": ("错误", "error"),
    "csrf": (
        "表单缺少有效的安全令牌（可能已过期）。请刷新页面后重试。",
        "The form has no valid security token (it may have expired). Reload the page and try again.",
    ),
    "signed_out": ("请先登录。", "Please sign in first."),
    "forbidden": ("没有权限", "Not allowed"),
    "forbidden_roles": (
        "这个页面或操作需要「{need}」角色；{user} 的角色是：{have}。请联系管理员。",
        "This page or action needs the {need} role; {user} has: {have}. Ask an administrator.",
    ),
    "not_found": ("找不到", "Not found"),
    "saved": ("已保存。", "Saved."),
    "done": ("完成。", "Done."),
    # what happened, said after each action (issue 16 "After publishing")
    "did_submit": ("已提交{level}。", "Submitted for {level}."),
    "did_approve_next": ("已通过{level}，进入{next}。", "Passed {level}; now at {next}."),
    "did_approve_final": (
        "已通过{level}，审核完成，等待发布。",
        "Passed {level}; review complete, waiting to publish.",
    ),
    "did_reject": (
        "已在{level}退回，作者修改后可重新提交。",
        "Rejected at {level}; the author can fix it and submit again.",
    ),
    "did_schedule": ("已设定发布时间。", "Publishing time set."),
    "did_cancel": (
        "已撤销稿件，未开始的发布任务已取消。",
        "Post cancelled; deliveries not yet started are cancelled.",
    ),
    "did_collect": (
        "已采集 {count} 条数据（{deliveries} 个发布任务）。",
        "Collected {count} figures ({deliveries} deliveries).",
    ),
    "bulk": ("批量操作", "Bulk actions"),
    "bulk_selected": ("对勾选的稿件", "On the ticked posts"),
    "bulk_pick": ("全选", "Tick all"),
    "bulk_go": ("执行", "Apply"),
    "bulk_reason": ("退回或暂停原因（全部共用）", "Reason for rejecting or pausing (for all)"),
    "bulk_refused": (
        "{count} 篇稿件均未改动：以下每一条都须先解决。",
        "None of the {count} posts changed: each refusal below must be resolved first.",
    ),
    "bulk_submit": (
        "已提交 {count} 篇稿件（{ids}）进入审核。",
        "Submitted {count} posts ({ids}) for review.",
    ),
    "bulk_approve": (
        "已通过 {count} 篇稿件（{ids}）的本级审核。",
        "Approved {count} posts ({ids}) at their level.",
    ),
    "bulk_reject": ("已退回 {count} 篇稿件（{ids}）。", "Rejected {count} posts ({ids})."),
    "bulk_schedule": (
        "已为 {count} 篇稿件（{ids}）设定发布时间。",
        "Scheduled {count} posts ({ids}).",
    ),
    "bulk_cancel": ("已撤销 {count} 篇稿件（{ids}）。", "Cancelled {count} posts ({ids})."),
    # pausing a post (docs/delivery.md §18)
    "pause_post": ("暂停", "Pause"),
    "resume_post": ("恢复", "Resume"),
    "bulk_pause": (
        "已暂停 {count} 篇稿件（{ids}）：在恢复之前不再发送，正在发送的会完成。",
        "Paused {count} posts ({ids}): nothing more is sent until resumed; a send under way"
        " finishes.",
    ),
    "bulk_resume": ("已恢复 {count} 篇稿件（{ids}）的发布。", "Resumed {count} posts ({ids})."),
    "did_pause": (
        "已暂停发布：在恢复之前不再发送，正在发送的会完成。",
        "Paused: nothing more is sent until resumed; a send under way finishes.",
    ),
    "did_resume": ("已恢复发布。", "Resumed: it is sent as planned."),
    "paused_note": (
        "已暂停：{who} 于 {at} 暂停{reason}。恢复之前不会再发送。",
        "Paused by {who} at {at}{reason}. Nothing more is sent until it is resumed.",
    ),
    "pause_reason": ("暂停原因（可不填）", "Why (optional)"),
    "insert_image": ("插入正文", "Insert into body"),
    "drop_hint": (
        "可把图片拖入或粘贴到正文中，自动上传并插入。",
        "Drop or paste images into the body: they upload and are inserted.",
    ),
    "media_library": ("图片库", "Media"),
    "used_in": ("使用于", "Used in"),
    "in_body": ("正文中引用", "shown in the body"),
    "media_scope": (
        "最近 {posts} 篇带图片的稿件所用的图片，新稿在前。",
        "The images of the latest {posts} posts with media, newest first.",
    ),
    "missing_images": ("正文引用了未附上的图片", "The body shows images that are not attached"),
    "reach": ("传播数据", "Reach"),
    "collected_at": ("采集时间", "collected at"),
    "collect_now": ("立即采集", "Collect now"),
    "collect_failed": (
        "{failed} 个发布任务这次没有取到数据（平台未返回或出错），到下一个采集点会再试。",
        "{failed} deliveries got no figures this time (the platform gave none or failed);"
        " the next collection point tries again.",
    ),
    "no_figures": ("尚无数据", "no figures yet"),
    "views": ("阅读/播放", "views"),
    "likes": ("点赞", "likes"),
    "comments": ("评论", "comments"),
    "shares": ("转发/分享", "shares"),
    "favorites": ("收藏", "favorites"),
    "collect_all_due": ("采集全部到期的数据", "Collect everything due"),
    "channel_sent": ("各渠道发出的内容", "What each channel was sent"),
    "refused": ("操作被拒绝", "Refused"),
    "bad_input": ("输入有误", "Invalid input"),
    "too_large_title": ("内容太大", "Too large"),
    "too_large": (
        "提交的内容太大：除写稿页上传文件外，每次请求不超过 {limit} MB。",
        "The request is too large: apart from the compose form's uploads, {limit} MB at most.",
    ),
    "too_large_upload": (
        "上传的内容太大：每张图片或封面不超过 {image} MB，视频不超过 {video} MB，"
        "整个表单不超过 {upload} MB。",
        "The upload is too large: {image} MB per image or cover, {video} MB for the video,"
        " {upload} MB for the whole form at most.",
    ),
    "file_too_large": (
        "{field} {name}：文件大小 {size} MB，超过上限 {limit} MB；请压缩后重新上传。",
        "{field} {name}: the file has {size} MB, more than the limit of {limit} MB;"
        " make it smaller and upload it again.",
    ),
    "users": ("用户", "Users"),
    "live_sessions": ("在线会话", "Live sessions"),
    "password_set": ("已设置", "set"),
    "sign_out_everywhere": ("全部退出登录", "Sign out everywhere"),
    "signed_out_everywhere": (
        "已让 {user} 在所有地方退出登录（结束 {sessions} 个会话）。",
        "{user} is signed out everywhere ({sessions} sessions ended).",
    ),
    "users_hint": (
        "用户和角色在配置文件的 [users] 中设置；密码用 kepubot user passwd 设置。",
        "Users and roles are set in [users] of the config file; passwords with kepubot user passwd.",
    ),
    "none_yet": ("暂无", "none yet"),
    "roles": ("角色", "roles"),
    "post_body": ("正文", "Body"),
    "problems_none": ("没有问题，可以提交。", "No problems: ready to submit."),
    "content_hash": ("内容指纹", "content hash"),
    # assisted publishing tasks (docs/delivery.md §17)
    "tasks": ("人工发布", "Publishing tasks"),
    "task": ("人工发布任务", "Publishing task"),
    "no_tasks": ("没有待人工发布的任务。", "No tasks wait for a person."),
    "task_outlet": ("发布到", "Publish on"),
    "task_where": ("发布位置", "Where"),
    "task_parts": ("逐项复制粘贴", "Copy each part"),
    "copy": ("复制", "Copy"),
    "copied": ("已复制", "Copied"),
    "task_files": ("文件下载", "Files"),
    "task_pack": ("素材包（zip）", "Copy pack (zip)"),
    "task_confirm": ("确认已发布", "Confirm published"),
    "task_url": ("发布地址", "Published URL"),
    "task_decline": ("无法发布", "Could not publish"),
    "task_reason": ("原因", "Reason"),
    "task_waiting_since": ("等待自", "Waiting since"),
    "part_title": ("标题", "Title"),
    "part_summary": ("摘要", "Summary"),
    "part_body": ("正文", "Body"),
    "part_link": ("原文链接", "Link"),
    "part_sources": ("参考资料", "Sources"),
    "part_tags": ("话题标签", "Tags"),
    "manual_metrics": ("手工录入数据", "Enter figures by hand"),
    "metric_views": ("阅读/播放", "Views"),
    "metric_likes": ("点赞", "Likes"),
    "metric_comments": ("评论", "Comments"),
    "metric_shares": ("分享", "Shares"),
    "metric_favorites": ("收藏", "Favorites"),
    "save": ("保存", "Save"),
}


#: What people call each channel type (the console shows it next to a channel's name). A
#: type not listed here (a plugin) shows its own name.
CHANNEL_TYPE_LABELS: dict[str, tuple[str, str]] = {
    "weibo": ("微博", "Weibo"),
    "wechat": ("微信公众号", "WeChat Official Account"),
    "douyin": ("抖音", "Douyin"),
    "bilibili": ("哔哩哔哩", "Bilibili"),
    "kuaishou": ("快手", "Kuaishou"),
    "feed": ("订阅源", "News feed"),
    "webhook": ("Webhook", "Webhook"),
    "wecom": ("企业微信群机器人", "WeCom group robot"),
    "dingtalk": ("钉钉群机器人", "DingTalk group robot"),
    "assisted": ("人工辅助发布", "Assisted publishing"),
    "print": ("报纸科普版", "Newspaper page"),
    "screen": ("科普显示屏", "Display screens"),
}


#: what people call each role (docs/architecture.md §15.5); a custom review role (expert)
#: shows its own name
ROLE_LABELS: dict[str, tuple[str, str]] = {
    "editor": ("编辑", "editor"),
    "reviewer": ("审核员", "reviewer"),
    "manager": ("主管", "manager"),
    "operator": ("运维", "operator"),
    "admin": ("管理员", "admin"),
}


def role_label(language: str, role: str) -> str:
    pair = ROLE_LABELS.get(role)
    if pair is None:
        return role
    return pair[1] if language == "en" else pair[0]


def roles_text(language: str, roles: object) -> str:
    """Roles as people read them, joined: 编辑、审核员."""
    names = [role_label(language, r) for r in sorted(roles)]  # type: ignore[call-overload]
    return ", ".join(names) if language == "en" else "、".join(names)


def channel_type_label(language: str, type_name: str) -> str:
    pair = CHANNEL_TYPE_LABELS.get(type_name)
    if pair is None:
        return type_name
    return pair[1] if language == "en" else pair[0]


def text(language: str, key: str, **values: object) -> str:
    pair = WEB_LABELS.get(key) or CLI_LABELS.get(key) or (key, key)
    chosen = pair[1] if language == "en" else pair[0]
    return chosen.format(**values) if values else chosen
