"""Sources of a post (kepubot/sources.py): the command line, import, the submit rule and what
each channel publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace
from kepubot import sources
from kepubot.models import Post, Source, content_hash

WHO = "https://www.who.int/zh/news-room/fact-sheets/detail/influenza-(seasonal)"
DOI = "10.1056/NEJMoa2034577"


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    config = workspace.config.read_text(encoding="utf-8")
    config = config.replace(
        "[review]\n",
        "[review]\n"
        'sources_required_for_tags = ["健康", "医学"]\n'
        'authoritative_domains = ["who.int", "nhc.gov.cn", "chinacdc.cn", "nejm.org"]\n',
        1,
    )
    workspace.config.write_text(config, encoding="utf-8")
    return workspace


def add(ws: Workspace, *extra: str) -> int:
    out = ws.ok(
        "post",
        "add",
        "--title",
        "流感季如何保护自己",
        "--body",
        "接种流感疫苗是预防流感最有效的手段。",
        "--channel",
        "news-feed",
        *extra,
        user="zhang",
    )
    return int(out.strip())


def shown(ws: Workspace, post_id: int) -> dict[str, Any]:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))


def test_parse_syntax() -> None:
    assert sources.parse("世卫组织：季节性流感|" + WHO, "--source") == (
        {"title": "世卫组织：季节性流感", "url": WHO},
        None,
    )
    assert sources.parse("mRNA 疫苗试验|doi:" + DOI, "--source")[0] == {
        "title": "mRNA 疫苗试验",
        "doi": DOI,
    }
    assert sources.parse("a|b 标题|" + DOI, "--source")[0] == {"title": "a|b 标题", "doi": DOI}
    item, problem = sources.parse("没有分隔符", "--source")
    assert item is None and problem is not None and "标题|https://" in problem


def test_authoritative_domains_count_subdomains_and_dois() -> None:
    domains = ["who.int", "nih.gov"]
    assert sources.is_authoritative(Source(title="t", url=WHO), domains)
    assert sources.is_authoritative(
        Source(title="t", url="https://pubmed.ncbi.nlm.nih.gov/123/"), domains
    )
    assert sources.is_authoritative(Source(title="t", doi=DOI), domains)
    assert not sources.is_authoritative(Source(title="t", url="https://fakewho.int/"), domains)
    assert not sources.is_authoritative(
        Source(title="t", url="https://who.int.example.com/"), domains
    )


def test_add_show_and_edit_sources(ws: Workspace) -> None:
    post_id = add(ws, "--source", f"世卫组织：季节性流感|{WHO}", "--source", f"试验|doi:{DOI}")
    data = shown(ws, post_id)
    assert data["sources"] == [
        {"title": "世卫组织：季节性流感", "url": WHO},
        {"title": "试验", "doi": DOI},
    ]
    text = ws.ok("post", "show", str(post_id), lang=None)  # the config's zh
    assert f"参考资料:\n  - 世卫组织：季节性流感 {WHO}\n  - 试验 https://doi.org/{DOI}" in text
    before = data["content_hash"]
    ws.ok(
        "post",
        "edit",
        str(post_id),
        "--source",
        "国家卫健委|https://www.nhc.gov.cn/a.html",
        user="zhang",
    )
    data = shown(ws, post_id)
    assert data["sources"] == [{"title": "国家卫健委", "url": "https://www.nhc.gov.cn/a.html"}]
    assert data["content_hash"] != before  # sources are published: approval pins them
    ws.ok("post", "edit", str(post_id), "--no-sources", user="zhang")
    assert shown(ws, post_id)["sources"] == []


def test_bad_sources_are_refused_one_line_each(ws: Workspace) -> None:
    err = ws.refused(
        "post",
        "add",
        "--title",
        "t",
        "--body",
        "b",
        "--channel",
        "news-feed",
        "--source",
        "世卫|javascript:alert(1)",
        "--source",
        "|https://www.who.int/",
        "--source",
        "DOI|doi:11.1/x",
        user="zhang",
    )
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert lines[0].startswith("error: --source #1 'javascript:alert(1)': not an http(s) URL")
    assert lines[1].startswith("error: --source #2: the source has no title")
    assert lines[2].startswith("error: --source #3 '11.1/x': not a DOI")
    ws.refused(
        "post",
        "add",
        "--title",
        "t",
        "--body",
        "b",
        "--channel",
        "news-feed",
        "--source",
        "no bar here",
        user="zhang",
        contains="no '|'",
    )


def test_a_health_post_needs_an_authoritative_source_at_submit(ws: Workspace) -> None:
    post_id = add(ws, "--tag", "健康", "--source", "某博客|https://blog.example.com/flu")
    err = ws.refused("post", "submit", str(post_id), user="zhang")
    assert "the tag 健康 needs at least one source from an authoritative domain" in err
    ws.ok("post", "edit", str(post_id), "--source", f"世卫组织|{WHO}", user="zhang")
    ws.ok("post", "submit", str(post_id), user="zhang")
    # a DOI counts, and a post without such a tag needs no source
    doi_post = add(ws, "--tag", "医学", "--source", f"试验|doi:{DOI}")
    ws.ok("post", "submit", str(doi_post), user="zhang")
    plain = add(ws, "--tag", "天文")
    ws.ok("post", "submit", str(plain), user="zhang")


def test_import_csv_column_and_front_matter(ws: Workspace, tmp_path: Path) -> None:
    csv_file = tmp_path / "posts.csv"
    csv_file.write_text(
        "title,body,channels,tags,sources\n"
        f'流感,接种疫苗。,news-feed,健康,"世卫组织|{WHO}; 试验|doi:{DOI}"\n',
        encoding="utf-8",
    )
    ws.ok("post", "import", str(csv_file), user="zhang")
    md = tmp_path / "post.md"
    md.write_text(
        "+++\n"
        'title = "流感疫苗"\n'
        'channels = ["news-feed"]\n'
        "[[sources]]\n"
        'title = "中国疾控中心"\n'
        'url = "https://www.chinacdc.cn/jkzt/crb/lxxgm/"\n'
        "[[sources]]\n"
        'title = "试验"\n'
        f'doi = "{DOI}"\n'
        "+++\n正文。\n",
        encoding="utf-8",
    )
    ws.ok("post", "import", str(md), user="zhang")
    listed = json.loads(ws.ok("post", "list", "--json"))
    by_title = {row["title"]: shown(ws, row["id"])["sources"] for row in listed}
    assert by_title["流感"] == [{"title": "世卫组织", "url": WHO}, {"title": "试验", "doi": DOI}]
    assert by_title["流感疫苗"] == [
        {"title": "中国疾控中心", "url": "https://www.chinacdc.cn/jkzt/crb/lxxgm/"},
        {"title": "试验", "doi": DOI},
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "title,body,channels,sources\n流感,正文,news-feed,世卫组织 https://www.who.int\n",
        encoding="utf-8",
    )
    err = ws.refused("post", "import", str(bad), user="zhang")
    assert "bad.csv row 1 (line 2), column sources" in err


def test_hash_of_a_post_without_sources_is_unchanged() -> None:
    fields: dict[str, Any] = dict(
        title="t", body="b", summary="", link="", tags=[], media=[], channels=["f"], variants={}
    )
    assert content_hash(**fields) == content_hash(**fields, sources=[])
    assert content_hash(**fields) != content_hash(**fields, sources=[{"title": "x", "doi": DOI}])


# --- what the channels publish -------------------------------------------------------------------


def post_with_sources() -> Post:
    return Post(
        id=7,
        title="流感季如何保护自己",
        body="接种流感疫苗是预防流感最有效的手段。",
        channels=["x"],
        author="zhang",
        sources=[Source(title="世卫组织<季节性流感>", url=WHO), Source(title="试验", doi=DOI)],
    )


def test_wechat_article_gets_a_reference_section_without_outside_links() -> None:
    from kepubot.channels.wechat.content import article_html

    html, _ = article_html(post_with_sources())
    assert "参考资料" in html
    assert f"世卫组织&lt;季节性流感&gt;：{WHO}" in html
    assert f"https://doi.org/{DOI}" in html
    assert "<a " not in html  # WeChat refuses hyperlinks to outside domains (45166)
    from kepubot.sandbox.wechat import _check_links

    _check_links(html)  # the sandbox refuses what WeChat refuses: this passes
    assert '<h3 style="' in html  # styled like the rest of the article


def test_feed_item_links_each_source(tmp_path: Path) -> None:
    from kepubot.channels.feed import FeedChannel

    settings = FeedChannel.Settings.model_validate(
        {
            "type": "feed",
            "output_dir": str(tmp_path / "feeds"),
            "site_url": "https://kepu.example.org/",
            "title": "科普资讯",
        }
    )
    channel = FeedChannel("news-feed", settings)
    item = channel._item(post_with_sources(), tmp_path)
    assert f'<a href="{WHO}">世卫组织&lt;季节性流感&gt;</a>' in item["content_html"]
    assert f'<a href="https://doi.org/{DOI}">试验</a>' in item["content_html"]
    assert "参考资料" in (channel.render(post_with_sources()).html or "")


def test_webhook_body_carries_sources_and_weibo_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kepubot.channels.webhook import webhook_body
    from kepubot.channels.weibo import WeiboChannel

    monkeypatch.setenv("KP_WEIBO_TOKEN", "token-value")
    body = webhook_body(post_with_sources())
    assert body["sources"] == [
        {"title": "世卫组织<季节性流感>", "url": WHO, "doi": ""},
        {"title": "试验", "url": f"https://doi.org/{DOI}", "doi": DOI},
    ]
    settings = WeiboChannel.Settings.model_validate(
        {
            "type": "weibo",
            "access_token": "${KP_WEIBO_TOKEN}",
            "link_domain": "kepu.example.org",
            "rip": "203.0.113.7",
        }
    )
    rendered = WeiboChannel("weibo-main", settings).render(post_with_sources())
    assert WHO not in (rendered.text or "") and "参考资料" not in (rendered.text or "")
