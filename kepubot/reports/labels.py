"""Report wording: Simplified Chinese by default, English as an option."""

from __future__ import annotations

_LABELS: dict[str, tuple[str, str]] = {
    "title": ("科普传播效果报告", "Engagement report"),
    "period": ("统计周期", "Period"),
    "timezone": ("时区", "Time zone"),
    "generated": ("生成时间", "Generated"),
    "previous": ("上一周期", "Previous period"),
    "totals": ("总览", "Totals"),
    "channels": ("各渠道", "By channel"),
    "channel": ("渠道", "Channel"),
    "top_posts": ("阅读量最高的稿件", "Top posts by views"),
    "top_engagement": ("互动率最高的稿件", "Top posts by engagement"),
    "tags": ("按标签", "By tag"),
    "tag": ("标签", "Tag"),
    "authors": ("按作者", "By author"),
    "author": ("作者", "Author"),
    "daily": ("每日趋势", "Daily trend"),
    "date": ("日期", "Date"),
    "metric": ("指标", "Metric"),
    "value": ("数值", "Value"),
    "change": ("环比", "Change"),
    "post": ("稿件", "Post"),
    "post_id": ("编号", "Id"),
    "posts": ("发布稿件数", "Posts"),
    "deliveries": ("发布次数", "Deliveries"),
    "views": ("阅读/播放", "Views"),
    "likes": ("点赞", "Likes"),
    "comments": ("评论", "Comments"),
    "shares": ("转发/分享", "Shares"),
    "favorites": ("收藏", "Favorites"),
    "interactions": ("互动总数", "Interactions"),
    "engagement_rate": ("互动率", "Engagement rate"),
    "rate_interactions": ("互动率：互动数", "Engagement rate: interactions"),
    "rate_views": ("互动率：阅读/播放数", "Engagement rate: views"),
    "rate_deliveries": ("互动率：计入的发布次数", "Engagement rate: deliveries counted"),
    "rate_definition": (
        "互动率 = 互动数（点赞+评论+转发/分享+收藏）÷ 阅读/播放数，只计报告阅读/播放数的发布"
        "（本期 {count} 次发布：{interactions} ÷ {views}）；不报告阅读数的平台不计入。",
        "Engagement rate = interactions (likes + comments + shares + favorites) ÷ views, over"
        " the deliveries that report views (this period {count} deliveries: {interactions} ÷"
        " {views}); platforms that report no views are left out.",
    ),
    "failed": ("发布失败", "Failed"),
    "needs_attention": ("待人工处理", "Needs attention"),
    "followers_gained": ("新增关注", "Followers gained"),
    "retracted": ("已撤回稿件", "Retracted posts"),
    "title_col": ("标题", "Title"),
    "none": ("无数据", "no data"),
    "filters": ("筛选", "Filters"),
    "no_charts": (
        "本期没有采集到阅读或互动数据，暂无图表。",
        "No views or interactions were collected in this period, so there are no charts.",
    ),
    "chart_views": ("每日阅读/播放", "Views per day"),
    "chart_channels": ("各渠道阅读/播放", "Views per channel"),
    "chart_interactions": ("每日互动（点赞、评论、转发/分享、收藏）", "Interactions per day"),
    "chart_channel_interactions": ("各渠道互动", "Interactions per channel"),
}


def label(key: str, language: str) -> str:
    zh, en = _LABELS.get(key, (key, key))
    return en if language == "en" else zh


def fmt(value: object, key: str = "") -> str:
    if value is None:
        return "-"
    if key in ("engagement_rate",) and isinstance(value, int | float):
        return f"{value * 100:.2f}%"
    if key == "change" and isinstance(value, int | float):
        return f"{value * 100:+.1f}%"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
