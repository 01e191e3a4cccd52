"""Docs checked by tests: every command is in the README, the example config is complete."""

from __future__ import annotations

import re
from pathlib import Path

import click

from kepubot.cli import cli

ROOT = Path(__file__).parent.parent


def command_paths(group: click.Group, prefix: str = "kepubot") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                paths.append(path)
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p for p in command_paths(cli) if not re.search(re.escape(p) + r"\b", readme)]
    assert not missing, missing


def test_example_config_is_the_one_init_writes() -> None:
    root_copy = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    packaged = (ROOT / "kepubot" / "data" / "config.example.toml").read_text(encoding="utf-8")
    assert root_copy == packaged


def test_every_channel_type_has_a_documented_section() -> None:
    from kepubot.channels.base import channel_types

    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for name in channel_types():
        assert re.search(rf'^#? ?type = "{name}"', example, re.M), name


def test_every_commented_setting_in_the_example_is_valid(tmp_path: Path, monkeypatch) -> None:
    """Uncomment every example channel and setting: the file must still load and validate."""
    from kepubot.app import App
    from kepubot.config import load_config

    lines = []
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if re.match(r"^# ?(\[channels\.|[a-z_]+ = )", stripped) and not stripped.startswith(
            ('# rate_limit = "30/hour"  ', '# api_base = "https://..."')
        ):
            line = stripped[1:].lstrip()
        lines.append(line)
    text = "\n".join(lines)
    for name in set(re.findall(r"\$\{([A-Z_]+)\}", text)):
        monkeypatch.setenv(name, "x" * 12)
    (tmp_path / "kepubot.toml").write_text(text, encoding="utf-8")
    (tmp_path / "sensitive_words.txt").write_text("最佳\n", encoding="utf-8")
    app = App(load_config(tmp_path / "kepubot.toml"))
    assert {"weibo", "wechat", "douyin", "feed", "webhook", "wecom", "dingtalk"} <= {
        c.type_name() for c in app.channels.values()
    }


def test_every_command_in_the_readme_exists() -> None:
    """The reverse check: a command documented but never registered is caught too."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    known = set(command_paths(cli))
    documented = set()
    for line in readme.splitlines():
        match = re.match(r"^kepubot ((?:[a-z]+)(?: [a-z]+)?)", line.strip())
        if match:
            words = match.group(1).split()
            documented.add("kepubot " + " ".join(words))
    missing = [
        d for d in sorted(documented) if d not in known and " ".join(d.split()[:2]) not in known
    ]
    assert not missing, missing
