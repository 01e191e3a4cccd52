"""Engagement reports: every format shows the same numbers, equal to an independent sum of
the latest snapshots; bad input is refused with one line."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import CHROMIUM_FLAGS
from kepubot.app import App
from kepubot.cli import cli
from kepubot.config import load_config
from kepubot.models import MetricSnapshot
from kepubot.queue import deliveries
from kepubot.queue import metrics as store
from kepubot.services.posts import PostInput, approve, create_posts, submit

# Asia/Shanghai days 2026-11-20 .. 2026-11-26 are the report period below
DAY = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

CONFIG = """
[users.ed]
roles = ["editor"]
[users.ed2]
roles = ["editor"]
[users.rev]
roles = ["reviewer"]
[users.mgr]
roles = ["manager"]
[channels.cms]
type = "webhook"
url = "http://127.0.0.1:9/a"
[channels.plain]
type = "webhook"
url = "http://127.0.0.1:9/b"
"""


@pytest.fixture
def app(tmp_path: Path):
    (tmp_path / "kepubot.toml").write_text(CONFIG, encoding="utf-8")
    application = App(load_config(tmp_path / "kepubot.toml"))
    yield application
    application.close()


def publish(
    app: App, author: str, title: str, tags: list[str], channels: list[str], at: datetime
) -> dict[str, int]:
    ids = create_posts(
        app,
        author,
        [(PostInput(title=title, body="b", tags=tags, channels=channels), "t")],
        now=at - timedelta(hours=2),
    )
    submit(app, author, ids, now=at - timedelta(hours=2))
    approve(app, "rev", ids, now=at - timedelta(hours=2))
    out = {}
    while (
        d := deliveries.claim_next(app.store.conn(), worker="w", now=at, lease_seconds=60)
    ) is not None:
        deliveries.begin_send(app.store.conn(), delivery=d, worker="w", now=at, lease_seconds=60)
        deliveries.record_published(
            app.store.conn(), delivery=d, worker="w", now=at, remote_id=f"r{d.id}", remote_url=None
        )
        out[d.channel] = d.id
    return out


# (author, title, tags, {channel: latest snapshot or None}, day offset)
POSTS = [
    (
        "ed",
        "洗手",
        ["个人防护"],
        {
            "cms": MetricSnapshot(views=1000, likes=50, comments=5, shares=10),
            "plain": MetricSnapshot(views=200, likes=4),
        },
        0,
    ),
    (
        "ed",
        "口罩",
        ["个人防护", "口罩"],
        {"cms": MetricSnapshot(views=300, likes=30, comments=3, shares=3, favorites=2)},
        1,
    ),
    ("ed2", "通风", ["环境卫生"], {"plain": None}, 3),  # no figures yet
    ("ed2", "疫苗", ["疫苗"], {"cms": MetricSnapshot(views=50, likes=10)}, 6),
]


@pytest.fixture
def data(app: App) -> list[tuple[int, str, MetricSnapshot | None]]:
    rows = []
    # a post in the previous period, for the change figures
    prev = publish(app, "ed", "旧稿", [], ["cms"], DAY - timedelta(days=3))
    store.store(
        app.store.conn(),
        prev["cms"],
        MetricSnapshot(views=100, likes=5),
        now=DAY,
        next_at=None,
        step=1,
    )
    for author, title, tags, figures, offset in POSTS:
        at = DAY + timedelta(days=offset)
        ids = publish(app, author, title, tags, list(figures), at)
        for channel, snapshot in figures.items():
            if snapshot is not None:
                # an older snapshot first: only the latest may count
                store.store(
                    app.store.conn(),
                    ids[channel],
                    MetricSnapshot(views=1, likes=1),
                    now=at + timedelta(hours=1),
                    next_at=None,
                    step=1,
                )
                store.store(
                    app.store.conn(),
                    ids[channel],
                    snapshot,
                    now=at + timedelta(days=1),
                    next_at=None,
                    step=2,
                )
            rows.append((ids[channel], channel, snapshot))
    return rows


def run(app: App, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, ["--config", str(app.config.path), "--as", "mgr", *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def json_report(app: App, *args: str) -> dict:
    code, out, err = run(
        app, "report", "--since", "2026-11-20", "--until", "2026-11-26", "--format", "json", *args
    )
    assert code == 0, err
    return json.loads(out)


def test_totals_equal_an_independent_sum(app: App, data: list) -> None:
    report = json_report(app)
    snapshots = [s for _, _, s in data if s is not None]
    for name in ("views", "likes", "comments", "shares", "favorites"):
        assert report["totals"][name] == sum(getattr(s, name) or 0 for s in snapshots), name
    assert report["totals"]["posts"] == 4 and report["totals"]["deliveries"] == 5
    interactions = sum(
        (s.likes or 0) + (s.comments or 0) + (s.shares or 0) + (s.favorites or 0) for s in snapshots
    )
    assert report["totals"]["interactions"] == interactions
    assert report["totals"]["engagement_rate"] == pytest.approx(interactions / 1550, abs=1e-6)
    assert report["channels"]["cms"] == {
        **report["channels"]["cms"],
        "posts": 3,
        "views": 1350,
        "likes": 90,
        "comments": 8,
        "shares": 13,
        "favorites": 2,
        "failed": 0,
    }
    # plain reported no favorites, comments or shares at all: null, not 0
    assert report["channels"]["plain"]["favorites"] is None
    assert report["channels"]["plain"]["views"] == 200
    assert report["previous"]["totals"]["views"] == 100
    assert report["change"]["views"] == pytest.approx(14.5)
    assert [p["title"] for p in report["top_posts"]][:2] == ["洗手", "口罩"]
    assert report["tags"]["个人防护"]["views"] == 1500
    assert report["authors"]["ed2"]["views"] == 50
    assert [d["date"] for d in report["daily"]] == [f"2026-11-{d}" for d in range(20, 27)]
    assert report["daily"][0]["views"] == 1200 and report["daily"][3]["views"] is None
    assert set(report) >= {"period", "totals", "channels", "top_posts", "tags", "daily"}
    assert report["period"] == {
        **report["period"],
        "since": "2026-11-20",
        "until": "2026-11-26",
        "timezone": "Asia/Shanghai",
    }


def test_channel_and_tag_filters(app: App, data: list) -> None:
    assert json_report(app, "--channel", "plain")["totals"]["views"] == 200
    assert json_report(app, "--tag", "口罩")["totals"]["views"] == 300


def test_csv_has_a_bom_and_the_same_numbers(app: App, data: list, tmp_path: Path) -> None:
    report = json_report(app)
    out = tmp_path / "r.csv"
    code, _, err = run(
        app,
        "report",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-26",
        "--format",
        "csv",
        "--section",
        "总览",  # the Chinese title names it too
        "--out",
        str(out),
    )
    assert code == 0, err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["指标", "数值", "上一周期", "环比"]  # the header first: pivot-ready
    totals = {r[0]: r[1] for r in rows if len(r) == 4 and r[0] and r[1] != ""}
    assert totals["阅读/播放"] == str(report["totals"]["views"])
    assert totals["点赞"] == str(report["totals"]["likes"])


def test_xlsx_opens_with_the_same_numbers(app: App, data: list, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    report = json_report(app)
    out = tmp_path / "r.xlsx"
    code, _, err = run(
        app,
        "report",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-26",
        "--format",
        "xlsx",
        "--out",
        str(out),
    )
    assert code == 0, err
    book = load_workbook(out)
    assert book.sheetnames[:2] == ["总览", "各渠道"]
    totals = {row[0].value: row[1].value for row in book["总览"].iter_rows(min_row=3)}
    assert totals["阅读/播放"] == report["totals"]["views"]
    assert totals["收藏"] == report["totals"]["favorites"]
    channels = {row[0].value: row[3].value for row in book["各渠道"].iter_rows(min_row=3)}
    assert channels == {name: c["views"] for name, c in report["channels"].items()}
    # issue 16: a title row with the period, the header frozen, a sheet per section
    for sheet in book.worksheets:
        assert "2026-11-20 ~ 2026-11-26" in sheet["A1"].value
        assert sheet.freeze_panes == "B3"
    assert len(book.sheetnames) == 7
    # rates as percentages, days as dates
    rate = next(r for r in book["总览"].iter_rows(min_row=3) if r[0].value == "互动率")
    assert rate[1].number_format == "0.00%" and rate[1].value == report["totals"]["engagement_rate"]
    daily = book["每日趋势"]
    assert daily["A3"].is_date and daily["A3"].number_format == "yyyy-mm-dd"
    # native charts: the daily trend and the channels, one series per metric reported
    assert len(daily._charts) == 1 and len(book["各渠道"]._charts) == 1
    reported = [
        k
        for k in ("views", "likes", "comments", "shares", "favorites")
        if any(c[k] is not None for c in report["channels"].values())
    ]
    assert len(book["各渠道"]._charts[0].series) == len(reported)
    # wide enough for the Chinese header text
    assert book["各渠道"].column_dimensions["B"].width >= 12


def test_english_table(app: App, data: list) -> None:
    code, out, _ = run(
        app, "--lang", "en", "report", "--since", "2026-11-20", "--until", "2026-11-26"
    )
    assert code == 0 and "Engagement report" in out and "Views" in out and "1550" in out


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_renders_its_charts_in_a_browser(app: App, data: list, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, _, err = run(
        app,
        "report",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-26",
        "--format",
        "html",
        "--out",
        str(out),
    )
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    # pygal's charts (issue 16): each metric reported, channel names in full, and nothing
    # from outside: no script, no address but the SVG namespaces
    assert html.count("<svg") == 4 and "<script" not in html
    assert "http" not in html.split("<body>")[0]
    outside = set(re.findall(r"https?://[^\s\"'<>)]+", html)) - {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert not outside, outside
    for chart_id in ("chart-daily-views", "chart-daily-interactions", "chart-channel-views"):
        assert f'id="{chart_id}"' in html
    assert 'id="charts-empty"' not in html
    interactions = html.split('id="chart-daily-interactions"')[1].split("</svg>")[0]
    assert "点赞" in interactions and "评论" in interactions  # not only views
    channel_chart = html.split('id="chart-channel-views"')[1].split("</svg>")[0]
    assert all(name in channel_chart for name in report_channels(app))
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            out.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 20_000
    artifacts = Path(__file__).parent.parent.parent / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / "report.png")


@pytest.mark.parametrize(
    ("lang", "needle"),
    [("zh", "本期没有采集到阅读或互动数据，暂无图表。"), ("en", "so there are no charts")],
)
def test_html_of_a_period_without_figures_says_so(
    app: App, data: list, tmp_path: Path, lang: str, needle: str
) -> None:
    """A week before any delivery: no empty axes, one sentence a manager can read."""
    out = tmp_path / "empty.html"
    args = ("--since", "2026-10-01", "--until", "2026-10-07", "--format", "html", "--out")
    code, _, err = run(app, "--lang", lang, "report", *args, str(out))
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    assert "<svg" not in html
    assert 'id="charts-empty">' in html
    assert needle in html.split('id="charts-empty">')[1].split("</p>")[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--channel", "nope"), "--channel 'nope': no such channel"),
        (("--since", "2026-12-01", "--until", "2026-11-01"), "is after --until"),
        (("--since", "last week"), "--since 'last week': not a date"),
        (("--since", "0001-01-01", "--until", "0001-01-03"), "--since 0001-01-01: out of range"),
        (("--until", "9999-12-31"), "--until 9999-12-31: out of range"),
        (("--format", "xlsx"), "needs --out"),
    ],
)
def test_bad_input(app: App, args: tuple[str, ...], needle: str) -> None:
    code, _, err = run(app, "report", *args)
    assert code == 2
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_sql_totals_equal_the_row_by_row_sums(app: App, data: list) -> None:
    """The previous period's totals come from one SQL aggregate; they must equal what the
    row-by-row buckets give for any period, channel and tag."""
    from kepubot.queue import reporting
    from kepubot.reports.aggregate import Bucket

    start = DAY - timedelta(days=5)
    for days in (1, 3, 7, 12):
        for channel in (None, "cms", "plain"):
            for tag in (None, "个人防护", "口罩", "没有"):
                for offset in range(0, 10, 3):
                    since = start + timedelta(days=offset)
                    until = since + timedelta(days=days)
                    rows = reporting.published_rows(app.store.conn(), since, until, channel)
                    expected = Bucket()
                    for row in rows:
                        if tag is None or tag in row["tags"]:
                            expected.add(row)
                    summed = reporting.period_totals(app.store.conn(), since, until, channel, tag)
                    got = Bucket.from_totals(summed).as_dict()
                    assert got == expected.as_dict(), (days, channel, tag, offset)


def test_csv_is_a_zip_of_one_file_per_section(app: App, data: list, tmp_path: Path) -> None:
    import zipfile

    report = json_report(app)
    out = tmp_path / "r.zip"
    span = ("--since", "2026-11-20", "--until", "2026-11-26")
    code, _, err = run(app, "report", *span, "--format", "csv", "--out", str(out))
    assert code == 0, err
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names == [
            "README.txt",
            "01-totals.csv",
            "02-channels.csv",
            "03-top_posts.csv",
            "04-top_engagement.csv",
            "05-tags.csv",
            "06-authors.csv",
            "07-daily.csv",
        ]
        channels = list(
            csv.reader(io.StringIO(archive.read("02-channels.csv").decode("utf-8-sig")))
        )
        assert "2026-11-20 ~ 2026-11-26" in archive.read("README.txt").decode()
    views = channels[0].index("阅读/播放")
    assert {r[0]: int(r[views]) for r in channels[1:]} == {
        n: c["views"] for n, c in report["channels"].items()
    }
    # without --out a zip is refused; an unknown section names the choices
    code, _, err = run(app, "report", *span, "--format", "csv")
    assert code == 2 and "--section" in err
    code, _, err = run(app, "report", *span, "--format", "csv", "--section", "nope")
    assert code == 2 and "各渠道" in err and "channels" in err


def test_engagement_rate_shows_the_set_it_covers(app: App, data: list) -> None:
    """interactions ÷ views over the deliveries that report views, with their count; the same
    numbers in every format (issue 16)."""
    report = json_report(app)
    totals = report["totals"]
    assert totals["rate_views"] == 1550
    assert totals["engagement_rate"] == pytest.approx(
        totals["rate_interactions"] / totals["rate_views"], abs=1e-6
    )
    viewed = [s for _, _, s in data if s is not None and s.views is not None]
    assert totals["rate_deliveries"] == len(viewed)
    assert totals["rate_interactions"] == sum(
        (s.likes or 0) + (s.comments or 0) + (s.shares or 0) + (s.favorites or 0) for s in viewed
    )
    for name, channel in report["channels"].items():
        assert channel["rate_deliveries"] <= channel["deliveries"], name
    code, table, _ = run(app, "report", "--since", "2026-11-20", "--until", "2026-11-26")
    assert code == 0
    definition = f"本期 {len(viewed)} 次发布：{totals['rate_interactions']} ÷ 1550"
    assert definition in table
    code, page, _ = run(
        app, "report", "--since", "2026-11-20", "--until", "2026-11-26", "--format", "html"
    )
    assert definition in page and 'id="rate-definition"' in page
    basis = page.split('id="rate-basis">')[1].split("</div>")[0]
    assert basis.startswith(f"{totals['rate_interactions']} ÷ 1550")


def report_channels(app: App) -> list[str]:
    return list(json_report(app)["channels"])


def test_followers_gained_stay_in_the_rows_of_their_channels(app: App, data: list) -> None:
    store.store_account(app.store.conn(), "cms", "2026-11-21", {"followers_gained": 40}, DAY)
    store.store_account(app.store.conn(), "cms", "2026-11-22", {"followers_gained": 2}, DAY)
    # a channel with followers but nothing published in the period still has its row
    store.store_account(app.store.conn(), "quiet", "2026-11-23", {"followers_gained": 5}, DAY)
    store.store_account(
        app.store.conn(), "cms", "2026-12-01", {"followers_gained": 900}, DAY
    )  # later
    report = json_report(app)
    assert report["channels"]["cms"]["followers_gained"] == 42
    assert report["channels"]["plain"]["followers_gained"] is None
    assert report["channels"]["quiet"]["followers_gained"] == 5
    assert report["totals"]["followers_gained"] == 47
