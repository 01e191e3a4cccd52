"""`kepubot demo` runs the whole flow on a fresh folder with no credentials."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kepubot.cli import cli
from kepubot.demo import DEMO_SECRETS, MARKER, prepare_workspace

# the demo is SQLite's by design (docs/architecture.md §11): its own folder, its own file
pytestmark = pytest.mark.sqlite_only


def test_demo_publishes_everything_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "kepubot", "--lang", "en", "demo", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published 72 of 72 deliveries" in done.stdout
    assert "duplicates 0" in done.stdout
    assert "audit chain: intact" in done.stdout
    assert (folder / "public" / "feeds" / "feed.xml").exists()
    # the outlets without an interface (issue 14): the Toutiao task confirmed by the demo's
    # operator, its figures imported, the newspaper's issue and the screen pages written
    assert "confirmed it" in done.stdout and "1 rows matched" in done.stdout
    pack = done.stdout.split("copy pack: ")[1].split()[0]
    issue = done.stdout.split("newspaper issue: ")[1].split()[0]
    assert Path(pack).is_file() and Path(issue).is_file() and issue.endswith(".docx")
    assert (folder / "public" / "screens" / "landscape.html").is_file()
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "kepubot",
            "--config",
            str(folder / "kepubot.toml"),
            "status",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**dict.fromkeys(DEMO_SECRETS, "x"), "PATH": "/usr/bin:/bin"},
    )
    assert status.returncode == 0, status.stderr
    assert '"published": 72' in status.stdout
    for name in ("weibo", "wechat", "douyin", "bilibili", "kuaishou", "webhook", "wecom"):
        assert f"{name} " in done.stdout.split("sandbox received:")[1]
    # the workspace says it is the demo's, and which entries the demo made
    made = json.loads((folder / MARKER).read_text(encoding="utf-8"))["made"]
    assert {"kepubot.toml", "kepubot.db", "demo.env", "public", "daemon.log"} <= set(made)
    assert MARKER not in made


def test_demo_speaks_chinese_by_default(tmp_path: Path) -> None:
    """No --lang: the narrative is Simplified Chinese (docs/architecture.md §15.5), with the
    console's state names; paths, numbers and command lines stay as they are."""
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "kepubot", "demo", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "编辑 zhang 导入了 13 篇示例稿件" in lines
    assert "72 个发布任务中已发布 72 个，用时 " in done.stdout
    assert "  weibo-main   已发布 12" in lines
    received = next(line for line in lines if line.startswith("沙盒收到："))
    assert received.endswith("；重复 0") and "weibo 12" in received
    assert "审计链：完整（共 " in done.stdout
    assert f"订阅源：{folder.resolve() / 'public' / 'feeds' / 'feed.xml'}" in lines
    assert f"下一步：. {folder.resolve() / 'demo.env'} && kepubot --config" in done.stdout
    # none of the English narrative is left
    for english in ("published 72 of", "duplicates", "audit chain", "feed: ", "next: "):
        assert english not in done.stdout


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_demo_refuses_a_folder_that_is_no_demo_workspace(tmp_path: Path) -> None:
    """A real workspace given by mistake: refused (exit 2, one line), nothing deleted."""
    folder = tmp_path / "work"
    (folder / "media" / "ab").mkdir(parents=True)
    (folder / "kepubot.toml").write_text("[kepubot]\n", encoding="utf-8")
    sqlite3.connect(folder / "kepubot.db").close()
    (folder / "media" / "ab" / "photo.png").write_bytes(b"\x89PNG precious")
    before = _tree(folder)
    result = CliRunner().invoke(cli, ["--lang", "en", "demo", "--dir", str(folder)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "not empty" in lines[0] and "nothing was deleted" in lines[0]
    # in Chinese by default, and as one line too
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "文件夹不是空的" in lines[0] and "没有删除任何东西" in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert _tree(folder) == before


def test_demo_refuses_a_file_and_a_forged_marker(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(target)])
    assert result.exit_code == 2
    assert target.read_text(encoding="utf-8") == "keep me"
    # a marker that is not the demo's own (not its JSON) does not make a folder deletable
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / MARKER).write_text("whatever", encoding="utf-8")
    (folder / "kepubot.db").write_bytes(b"data")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder)])
    assert result.exit_code == 2, result.output
    assert (folder / "kepubot.db").read_bytes() == b"data"


def _previous_demo(folder: Path) -> None:
    (folder / "public" / "feeds").mkdir(parents=True)
    (folder / "public" / "feeds" / "feed.xml").write_text("<rss/>", encoding="utf-8")
    (folder / "kepubot.toml").write_text("# demo\n", encoding="utf-8")
    sqlite3.connect(folder / "kepubot.db").close()
    (folder / "daemon.log").write_text("", encoding="utf-8")
    (folder / MARKER).write_text(
        json.dumps(
            {
                "kepubot_demo": 1,
                "made": ["public", "kepubot.toml", "kepubot.db", "daemon.log", "../outside"],
            }
        ),
        encoding="utf-8",
    )


def test_a_previous_demo_workspace_loses_only_what_the_demo_made(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    _previous_demo(folder)
    (folder / "my-notes.md").write_text("mine", encoding="utf-8")
    (folder / "reports").mkdir()  # a name the demo can make, but this time the user did
    (folder / "reports" / "mine.html").write_text("<p>mine</p>", encoding="utf-8")
    (folder / "kepubot.db-wal").write_bytes(b"stale")  # goes with the demo's database
    outside = tmp_path / "outside"
    outside.write_text("not the demo's", encoding="utf-8")
    kept = prepare_workspace(folder)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "my-notes.md", "reports"]
    assert (folder / "my-notes.md").read_text(encoding="utf-8") == "mine"
    assert (folder / "reports" / "mine.html").exists()
    assert outside.read_text(encoding="utf-8") == "not the demo's"
    assert kept == {"my-notes.md", "reports", MARKER}
    # the fresh marker already names what this run will make, so a crash can be replaced too
    made = json.loads((folder / MARKER).read_text(encoding="utf-8"))["made"]
    assert "kepubot.db" in made and "my-notes.md" not in made


def test_a_new_or_empty_folder_is_used(tmp_path: Path) -> None:
    assert prepare_workspace(tmp_path / "new" / "demo") == {MARKER}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_workspace(empty) == {MARKER}
    assert (empty / MARKER).is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lock probe is Linux-only")
def test_a_demo_workspace_in_use_is_not_replaced(tmp_path: Path) -> None:
    """Re-running the demo while a console (here: another process) has its database open."""
    from kepubot.errors import InvalidInput

    folder = tmp_path / "demo"
    folder.mkdir()
    _previous_demo(folder)
    database = folder / "kepubot.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            # a real SQLite connection in another process: the lock probe reads SQLite's own
            # locks on the -shm file, so no test helper may stand in for it
            f"c = sqlite3.connect({str(database)!r})\n"
            "c.execute('pragma journal_mode=wal')\n"
            "c.execute('create table t (x)')\n"
            "c.commit()\n"
            "c.execute('select * from t').fetchall()\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        before = _tree(folder)
        with pytest.raises(InvalidInput, match="in use"):
            prepare_workspace(folder)
        assert _tree(folder) == before
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    prepare_workspace(folder)  # closed: now it is replaced
    assert not database.exists()
