"""``post preview``: exactly what each channel would send, with every problem."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from kepubot.errors import InvalidInput
from kepubot.models import Post

if TYPE_CHECKING:
    from kepubot.app import App


def preview_post(app: App, post_id: int, channel: str | None = None) -> list[dict[str, Any]]:
    from kepubot.services.posts import get_post

    post = get_post(app, post_id)
    names = post.channels
    if channel is not None:
        if channel not in app.channels:
            raise InvalidInput(
                f"--channel {channel!r}: no such channel (configured: {', '.join(sorted(app.channels))})"
            )
        names = [channel]
    return preview_items(app, post, names)


def preview_unsaved(
    app: App,
    *,
    author: str,
    title: str,
    body: str,
    summary: str = "",
    link: str = "",
    tags: list[str] | None = None,
    channels: list[str] | None = None,
    base: Post | None = None,
    variants: dict[str, dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """The preview of text an editor is still typing (the console's live preview): the
    saved post's media and variants (if any; ``variants`` when the page sent its own) with the
    typed fields over them. Unknown
    channel names are left out; saving reports them."""
    post = Post(
        id=base.id if base is not None else 0,
        title=title,
        body=body,
        summary=summary,
        link=link,
        tags=tags or [],
        media=list(base.media) if base is not None else [],
        channels=[c for c in (channels or []) if c in app.channels],
        variants=variants
        if variants is not None
        else dict(base.variants)
        if base is not None
        else {},
        author=author,
    )
    return preview_items(app, post, post.channels)


def preview_items(app: App, post: Post, names: list[str]) -> list[dict[str, Any]]:
    """Per channel: what it would send (``Rendered``) and every problem, sensitive words
    included."""
    fields = {
        "title": post.title,
        "summary": post.summary,
        "body": post.body,
        "tags": "\n".join(post.tags),
    }
    # a warn word shows as "warning word ...", a block word as a problem
    # (docs/architecture.md §4.3)
    hits = [
        h.describe() if h.level == "warn" else f"sensitive word {h.describe()}"
        for h in app.sensitive_words.scan(fields)
    ]
    hit_fields = [h.field for h in app.sensitive_words.scan(fields)]
    from kepubot.proofread import findings_for

    # 三校 warnings, with their line and column (docs/architecture.md §13)
    proofreading = [finding_json(f, app.language) for f in findings_for(app, post)]
    items = []
    for name in names:
        ch = app.channels[name]
        variant = post.for_channel(name)
        rendered = ch.render(variant)
        checked = ch.check(variant)
        problems = [p.describe(app.language) for p in checked]
        item: dict[str, Any] = {
            "channel": name,
            "type": ch.type_name(),
            "targeted": name in post.channels,
            "rendered": asdict(rendered),
            "problems": problems + hits,
            # the field each problem concerns: the console shows it next to that part
            "problem_fields": [
                [field, message]
                for field, message in zip(
                    [p.field for p in checked] + hit_fields, problems + hits, strict=True
                )
            ],
            "proofreading": proofreading,
        }
        if rendered.kind == "status":
            from kepubot.channels.weibo import MAX_UNITS, weibo_length

            # the status is cut to fit when it can be; when it cannot (a title alone too
            # long), check() reports the uncut length, and so does the counter
            item["units"] = max(
                [weibo_length(rendered.text)]
                + [
                    int(p.actual)
                    for p in checked
                    if p.field == "text" and p.code == "too_long" and isinstance(p.actual, int)
                ]
            )
            item["unit_limit"] = MAX_UNITS
        items.append(item)
    return items


def finding_json(finding: Any, language: str) -> dict[str, Any]:
    return {
        "key": finding.key,
        "kind": finding.kind,
        "field": finding.field,
        "line": finding.line,
        "column": finding.column,
        "text": finding.text,
        "suggestion": finding.suggestion,
        "message": finding.describe(language),
    }


def render_preview_text(app: App, items: list[dict[str, Any]]) -> str:
    from kepubot.i18n import label

    out: list[str] = []
    for item in items:
        r = item["rendered"]
        out.append(f"== {item['channel']} ({item['type']}) ==")
        out.append(f"{label(app, 'kind')}: {r['kind']}")
        if r["title"]:
            out.append(f"{label(app, 'title')}: {r['title']}")
        if r["text"]:
            out.append(f"{label(app, 'text')}:")
            out.extend(f"  {line}" for line in r["text"].splitlines())
        if r["link"]:
            out.append(f"{label(app, 'link')}: {r['link']}")
        if r["media"]:
            out.append(f"{label(app, 'media')}: {', '.join(r['media'])}")
        if r["html"]:
            # the article body exactly as it will be sent (media placeholders are replaced
            # by the platform's URLs when they are uploaded)
            out.append(f"{label(app, 'html')} ({len(r['html'])}):")
            out.extend(f"  {line}" for line in r["html"].splitlines())
        for key, value in (r.get("extra") or {}).items():
            if isinstance(value, str | int | float) and value != "":
                out.append(f"{key}: {value}")
        if item["problems"]:
            out.append(f"{label(app, 'problems')}:")
            out.extend(f"  - {p}" for p in item["problems"])
        else:
            out.append(f"{label(app, 'problems')}: {label(app, 'none')}")
        out.append("")
    # the 三校 findings concern the post, not one channel: listed once, after the channels
    findings = (items[0].get("proofreading") or []) if items else []
    heading = "proofreading" if app.language == "en" else "校对提示"
    if findings:
        out.append(f"{heading}:")
        out.extend(f"  - {f['message']}" for f in findings)
    else:
        out.append(f"{heading}: {label(app, 'none')}")
    return "\n".join(out).rstrip()
