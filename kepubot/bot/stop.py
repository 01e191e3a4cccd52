"""The emergency stop as people use it (docs/operations.md §13): role check, channel names,
the pause itself (kepubot/services/pauses.py) and an alert for pause and resume alike."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from kepubot.errors import InvalidInput
from kepubot.services import pauses

if TYPE_CHECKING:
    from kepubot.app import App


def _check(app: App, actor: str, channels: list[str], doing: str) -> None:
    app.require_role(actor, "operator", action=doing)
    unknown = [c for c in channels if c not in app.config.data.channels]
    if unknown:
        known = ", ".join(sorted(app.config.data.channels)) or "none"
        raise InvalidInput(
            f"--channel {', '.join(unknown)}: no such channel in the configuration"
            f" (configured: {known})"
        )


def _alert(app: App, key: str, now: datetime, title: str, body: str) -> None:
    from kepubot.services.alerts import raise_alert

    raise_alert(app, key=key, now=now, title=title, body=body)


def pause_channels(
    app: App, actor: str, channels: list[str], *, reason: str, now: datetime
) -> list[str]:
    _check(app, actor, channels, "pausing publishing")
    if not reason.strip():
        raise InvalidInput("--reason must say why publishing stops")
    added = pauses.pause(app, channels=channels, reason=reason.strip(), actor=actor, now=now)
    if added:
        english = getattr(app, "language", "zh") == "en"
        where = ("、" if not english else ", ").join(
            pauses.describe(s, "en" if english else "zh") for s in added
        )
        key = f"pause:{','.join(added)}:{now.isoformat()}"
        if english:
            _alert(
                app,
                key,
                now,
                f"kepubot: publishing paused ({where})",
                f"{actor} paused publishing on {where}: {reason.strip()}. Sends in flight"
                " finish; queued posts wait and are not lost. Resume: `kepubot resume`",
            )
        else:
            _alert(
                app,
                key,
                now,
                f"kepubot：已暂停发布（{where}）",
                f"{actor} 暂停了 {where} 的发布，原因：{reason.strip()}。正在发送的会发完，排队中的"
                "稿件等待恢复，不会丢失。恢复：`kepubot resume`",
            )
    return added


def resume_channels(app: App, actor: str, channels: list[str], *, now: datetime) -> list[str]:
    _check(app, actor, channels, "resuming publishing")
    lifted = pauses.resume(app, channels=channels, actor=actor, now=now)
    english = getattr(app, "language", "zh") == "en"
    where = ("、" if not english else ", ").join(
        pauses.describe(s, "en" if english else "zh") for s in lifted
    )
    key = f"resume:{','.join(lifted)}:{now.isoformat()}"
    if english:
        _alert(
            app,
            key,
            now,
            f"kepubot: publishing resumed ({where})",
            f"{actor} resumed publishing on {where}; queued posts go out as planned.",
        )
    else:
        _alert(
            app,
            key,
            now,
            f"kepubot：已恢复发布（{where}）",
            f"{actor} 恢复了 {where} 的发布；排队中的稿件按计划发出。",
        )
    return lifted
