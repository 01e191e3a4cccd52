"""Sources of a post (docs/architecture.md §14): parsing, checking, and the submit rule.

A source is a title and either a URL or a DOI. Written on the command line (and in import
CSV cells) as ``TITLE|URL`` or ``TITLE|doi:DOI`` (a bare ``10.xxxx/...`` after the bar is a
DOI too); the text after the last ``|`` is the URL or DOI, so a title may hold ``|``.
In Markdown front matter: a list of tables ``{title, url}`` or ``{title, doi}``.

The rule: a post carrying one of ``[review] sources_required_for_tags`` needs at least one
authoritative source to be submitted: a URL whose host is one of ``authoritative_domains``
or a subdomain of one, or a DOI (a DOI names a registered, citable scholarly publication, and
it resolves through doi.org, which is itself on the shipped list).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kepubot.models import MAX_SOURCE_TITLE_CHARS, MAX_SOURCES, Source

if TYPE_CHECKING:
    from kepubot.config import ReviewSection
    from kepubot.models import Post

DOI = re.compile(r"^10\.\d{4,9}/\S+$")
SYNTAX = "write it as 标题|https://… or 标题|doi:10.xxxx/…"


def _doi_of(value: str) -> str | None:
    text = value.strip()
    if text.lower().startswith("doi:"):
        return text[4:].strip()
    return text if DOI.match(text) else None


def parse(text: str, where: str) -> tuple[dict[str, str] | None, str | None]:
    """``TITLE|URL`` or ``TITLE|doi:DOI`` -> ({title, url} or {title, doi}, None), or
    (None, the problem). Only the shape is checked here; ``problems`` checks the values."""
    title, bar, target = text.rpartition("|")
    if not bar:
        return None, f"{where} {text!r}: no '|' between the title and the link; {SYNTAX}"
    doi = _doi_of(target)
    if doi is not None:
        return {"title": title.strip(), "doi": doi}, None
    return {"title": title.strip(), "url": target.strip()}, None


def from_mapping(value: Any, where: str) -> tuple[dict[str, str] | None, str | None]:
    """A front-matter table ``{title, url}`` or ``{title, doi}``."""
    if not isinstance(value, dict):
        return None, f"{where}: each source is a table with title and url (or doi)"
    unknown = set(value) - {"title", "url", "doi"}
    if unknown:
        return None, (
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a source has title and url"
            " (or doi)"
        )
    if not all(isinstance(v, str) for v in value.values()):
        return None, f"{where}: title, url and doi are text"
    item = {"title": value.get("title", "").strip()}
    if value.get("url", "").strip():
        item["url"] = value["url"].strip()
    if value.get("doi", "").strip():
        doi = _doi_of(value["doi"])
        item["doi"] = doi if doi is not None else value["doi"].strip()
    return item, None


def problems(items: list[dict[str, str]], where: str) -> list[str]:
    """One line per bad source (the title, the link through the central link validator, the
    DOI's shape)."""
    from kepubot.services.validate import link_problem, text_problems

    lines: list[str] = []
    if len(items) > MAX_SOURCES:
        lines.append(f"{where}: {len(items)} sources, at most {MAX_SOURCES} are allowed")
    for number, item in enumerate(items, start=1):
        place = f"{where} #{number}"
        title = item.get("title", "")
        if not title:
            lines.append(f"{place}: the source has no title; {SYNTAX}")
        elif len(title) > MAX_SOURCE_TITLE_CHARS:
            lines.append(
                f"{place}: the title has {len(title)} characters, at most"
                f" {MAX_SOURCE_TITLE_CHARS} are allowed; shorten it"
            )
        else:
            lines.extend(text_problems(title, place))
        url, doi = item.get("url", ""), item.get("doi", "")
        if url and doi:
            lines.append(f"{place}: give a url or a doi, not both")
        elif doi:
            if not DOI.match(doi):
                lines.append(
                    f"{place} {doi!r}: not a DOI; a DOI looks like 10.1038/s41586-020-2012-7"
                )
        elif url:
            problem = link_problem(url, place)
            if problem:
                lines.append(problem)
        else:
            lines.append(f"{place}: the source has no url or doi; {SYNTAX}")
    return lines


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def is_authoritative(source: Source, domains: list[str]) -> bool:
    """A DOI, or a URL on one of ``domains`` or a subdomain of one."""
    if source.doi:
        return True
    host = host_of(source.url)
    return bool(host) and any(host == d or host.endswith("." + d) for d in domains)


def requirement_problem(post: Post, review: ReviewSection) -> str | None:
    """Why ``post`` may not be submitted for lack of an authoritative source, or None."""
    wanted = set(review.sources_required_for_tags)
    tags = [t for t in post.tags if t in wanted]
    if not tags:
        return None
    if any(is_authoritative(s, review.authoritative_domains) for s in post.sources):
        return None
    have = (
        f"none of its {len(post.sources)} source(s) is one" if post.sources else "it has no sources"
    )
    return (
        f"the tag {tags[0]} needs at least one source from an authoritative domain or a DOI;"
        f" {have}; add one with --source 标题|https://… (authoritative domains: see"
        " [review] authoritative_domains)"
    )


# --- how channels publish them ---------------------------------------------------------------

HEADING = "参考资料"


def as_json(sources: list[Source]) -> list[dict[str, str]]:
    """For machine readers (the webhook body): title, url (a DOI as its doi.org link), doi."""
    return [{"title": s.title, "url": s.href, "doi": s.doi} for s in sources]


def html_list(sources: list[Source], *, links: bool = True) -> str:
    """A 参考资料 section: a heading and a numbered list. ``links=False`` writes each address
    out as text (WeChat refuses hyperlinks to outside domains)."""
    import html as htmllib

    if not sources:
        return ""
    items = []
    for source in sources:
        title, href = htmllib.escape(source.title), htmllib.escape(source.href)
        if links:
            items.append(f'<li><a href="{href}">{title}</a></li>')
        else:
            items.append(f"<li>{title}：{href}</li>")
    return f"<h3>{HEADING}</h3><ol>{''.join(items)}</ol>"
