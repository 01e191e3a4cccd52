"""Alerts: an ERROR log line, plus a message to every ``[alerts] urls`` destination through
apprise (DingTalk, WeCom, Feishu, e-mail, ...). A failing destination is logged and never
blocks the caller: delivery runs in a background thread with a time limit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

log = logging.getLogger("kepubot.alerts")

SEND_TIMEOUT_SECONDS = 20.0


def notify(
    urls: Iterable[str], title: str, body: str, *, wait: float = SEND_TIMEOUT_SECONDS
) -> None:
    targets = [u for u in urls if u]
    if not targets:
        return

    def send() -> None:
        try:
            import apprise

            sender = apprise.Apprise()
            for url in targets:
                if not sender.add(url):
                    log.warning(
                        "alert destination #%d is not a valid apprise URL", targets.index(url) + 1
                    )
            if len(sender) and not sender.notify(title=title, body=body):
                log.warning("an alert destination did not accept the message: %s", title)
        except Exception:  # a broken destination must never take the daemon down
            log.exception("sending an alert failed: %s", title)

    thread = threading.Thread(target=send, name="kepubot-alert", daemon=True)
    thread.start()
    thread.join(wait)
    if thread.is_alive():
        log.warning("alert destinations did not answer within %.0f s: %s", wait, title)
