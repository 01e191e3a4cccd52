"""The channel contract (docs/architecture.md §5.7): each type names itself explicitly (its entry
point's name, checked at load time) and declares what it can do in one Capabilities value that
is checked against the methods it implements."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from kepubot.channels import base
from kepubot.channels.base import (
    ENTRY_POINT_GROUP,
    Capabilities,
    Channel,
    channel_types,
    load_channel_class,
)
from kepubot.errors import ConfigError

BUILT_IN = ("weibo", "wechat", "douyin", "feed", "webhook", "wecom", "dingtalk")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_declares_its_entry_point_name(name: str) -> None:
    cls = load_channel_class(name, "test")
    assert cls.channel_type == name
    assert cls.type_name() == name
    assert isinstance(cls.capabilities, Capabilities)


def test_every_installed_type_loads_and_matches() -> None:
    for name in channel_types():
        assert load_channel_class(name, "test").channel_type == name


def test_an_entry_point_whose_class_names_another_type_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = EntryPoint(
        name="rss", value="kepubot.channels.feed:FeedChannel", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(base, "channel_types", lambda: {"rss": wrong})
    with pytest.raises(ConfigError) as caught:
        load_channel_class("rss", "kepubot.toml: [channels.news]")
    message = str(caught.value)
    assert message.startswith("kepubot.toml: [channels.news]: entry point 'rss'")
    assert "declares 'feed'" in message and "\n" not in message


def test_a_class_without_channel_type_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = EntryPoint(
        name="http", value="kepubot.channels.base:HttpChannel", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(base, "channel_types", lambda: {"http": bare})
    with pytest.raises(ConfigError, match="declares no channel_type"):
        load_channel_class("http", "here")


def test_overriding_type_name_is_refused() -> None:
    with pytest.raises(TypeError, match="declare the type's name as the class attribute"):

        class Old(Channel):
            @classmethod
            def type_name(cls) -> str:
                return "old"


@pytest.mark.parametrize(
    ("former", "field"),
    [
        ("idempotent", "idempotent"),
        ("can_find", "find"),
        ("asynchronous", "poll"),
        ("daily_metrics", "daily_metrics"),
        ("can_retract", "retract"),
        ("can_find_retracted", "find_retracted"),
    ],
)
def test_former_capability_attributes_are_refused(former: str, field: str) -> None:
    with pytest.raises(TypeError, match=rf"declare capabilities = Capabilities\({field}=\.\.\.\)"):
        type("Old", (Channel,), {former: True})


def test_a_declared_capability_needs_its_method() -> None:
    with pytest.raises(TypeError, match=r"declares capabilities.find but does not implement find"):

        class Blind(Channel):
            capabilities = Capabilities(find=True)

    with pytest.raises(TypeError, match=r"daily_metrics but does not implement metrics"):

        class Daily(Channel):
            capabilities = Capabilities(daily_metrics=True)


def test_an_optional_method_must_be_declared() -> None:
    with pytest.raises(TypeError, match=r"implements verify\(\) but does not declare"):

        class Quiet(Channel):
            def verify(self) -> str:
                return "ok"

    class Looks(Channel):  # find may be narrowed per instance (webhook): declaring is optional
        def find(self, post: Any, since: datetime, progress: dict[str, Any]) -> None:
            return None

    assert Looks.capabilities.find is False


def test_capabilities_are_frozen_and_inherited() -> None:
    class Parent(Channel):
        capabilities = Capabilities(idempotent=True)

    class Child(Parent):
        channel_type = "child"

    assert Child.capabilities == Capabilities(idempotent=True)
    with pytest.raises(AttributeError):
        Child.capabilities.idempotent = False  # type: ignore[misc]


def test_built_in_capabilities_match_what_the_engine_did_before() -> None:
    """The engine used to read these from class attributes and method overrides."""
    caps = {name: load_channel_class(name, "test").capabilities for name in BUILT_IN}
    assert {n for n, c in caps.items() if c.idempotent} == {"feed"}
    assert {n for n, c in caps.items() if c.find} == {"weibo", "wechat", "douyin"}
    assert {n for n, c in caps.items() if c.daily_metrics} == {"wechat"}
    assert {n for n, c in caps.items() if c.metrics} == {"weibo", "wechat", "douyin"}
    assert {n for n, c in caps.items() if c.account_metrics} == {"weibo", "wechat"}
    assert {n for n, c in caps.items() if c.verify} == {"weibo", "wechat", "douyin", "feed"}
    assert {n for n, c in caps.items() if c.permissions} == {"wechat", "douyin"}
    assert {n for n, c in caps.items() if c.poll} == {"weibo", "wechat"}
