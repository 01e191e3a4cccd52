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
