"""Channel types under the names people use (issue 15: 哔哩哔哩, 快手): next to each channel on
the compose page and in each channel's preview, in Chinese by default and English on request;
a plugin type nobody named shows its own name."""

from __future__ import annotations

import pytest
from test_console import Console, _console

from conftest import Workspace
from kepubot.web.labels import CHANNEL_TYPE_LABELS, channel_type_label


@pytest.fixture(name="console")
def console_fixture(workspace: Workspace) -> Console:
    return _console(workspace)


def test_labels_of_the_video_platforms() -> None:
    assert channel_type_label("zh", "bilibili") == "哔哩哔哩"
    assert channel_type_label("zh", "kuaishou") == "快手"
    assert channel_type_label("en", "kuaishou") == "Kuaishou"
    assert channel_type_label("zh", "someplugin") == "someplugin"


def test_every_built_in_type_has_a_label() -> None:
    from kepubot.channels.base import channel_types

    assert set(channel_types()) <= set(CHANNEL_TYPE_LABELS)


def test_the_console_shows_the_labels(console: Console) -> None:
    page = console.client("zhang").get("/posts/new").text
    assert "douyin-main <small>(抖音)</small>" in page
    assert "weibo-main <small>(微博)</small>" in page
    post_id = console.workspace.add_post("--channel", "weibo-main")
    assert "<small>(微博)</small>" in console.client("zhang").get(f"/posts/{post_id}").text
