"""What the Bilibili and Kuaishou channel tests share (issue 15): a channel context with a real
CredentialStore on a temporary SQLite file, the sample video and cover in a media store, the
channels' settings pointed at a base URL, and the sandbox's credentials for both."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kepubot.channels.base import Progress
from kepubot.channels.bilibili import BilibiliChannel
from kepubot.channels.kuaishou import KuaishouChannel
from kepubot.models import Media, Post
from kepubot.queue.credentials import CredentialStore
from kepubot.queue.db import open_database
from kepubot.queue.store import Store
from kepubot.timeutil import to_db

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples" / "media"
VIDEO = SAMPLES / "short-video.mp4"
COVER = SAMPLES / "cover-wide.png"

BILI = {
    "client_id": "bili-client-1",
    "client_secret": "bili-secret-SECRET-0001",
    "access_token": "bili-access-SECRET-0002",
    "refresh_token": "bili-refresh-SECRET-0003",
    "openid": "bili-openid-1",
}
KS = {
    "app_id": "ks-app-1",
    "app_secret": "ks-secret-SECRET-0001",
    "access_token": "ks-access-SECRET-0002",
    "refresh_token": "ks-refresh-SECRET-0003",
    "open_id": "ks-open-id-1",
}
ENV = {
    "KP_BILI_SECRET": BILI["client_secret"],
    "KP_BILI_TOKEN": BILI["access_token"],
    "KP_BILI_REFRESH": BILI["refresh_token"],
    "KP_KS_SECRET": KS["app_secret"],
    "KP_KS_TOKEN": KS["access_token"],
    "KP_KS_REFRESH": KS["refresh_token"],
}
TITLE = "勤洗手：七步洗手法的科学依据"


class Context:
    """now(), media_file(), alert() and a real CredentialStore on a temporary SQLite file."""

    def __init__(self, root: Path, now: datetime | None = None) -> None:
        self.db = root / "kepubot.db"
        self.clock = now or datetime.now(UTC)
        if not self.db.exists():
            open_database(self.db, to_db(self.clock)).close()
        self.media_root = root / "media"
        self.credentials = CredentialStore(Store(self.db), f"test-{id(self)}", clock=self.now)
        self.language = "zh"
        self.alerts: list[tuple[str, str, str]] = []

    def now(self) -> datetime:
        return self.clock

    def alert(self, key: str, title: str, body: str) -> bool:
        if any(seen == key for seen, _, _ in self.alerts):
            return False
        self.alerts.append((key, title, body))
        return True

    def media_file(self, relative: str) -> str:
        return str(self.media_root / relative)


def media(ctx: Context, source: Path, kind: str, mime: str) -> Media:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    relative = f"{digest[:2]}/{digest}{source.suffix}"
    target = ctx.media_root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return Media(
        kind=kind,  # type: ignore[arg-type]
        path=relative,
        sha256=digest,
        name=source.name,
        size=source.stat().st_size,
        mime=mime,
    )


def make_post(ctx: Context, **changes: Any) -> Post:
    fields: dict[str, Any] = {
        "id": 7,
        "title": TITLE,
        "body": "用流动水和肥皂洗手，揉搓时间不少于20秒。",
        "tags": ["个人防护", "#洗手"],
        "media": [
            media(ctx, VIDEO, "video", "video/mp4"),
            media(ctx, COVER, "cover", "image/png"),
        ],
        "author": "zhang",
    }
    fields.update(changes)
    return Post(**fields)


def bilibili(ctx: Context, base: str, **changes: Any) -> BilibiliChannel:
    settings = BilibiliChannel.Settings.model_validate(
        {
            "type": "bilibili",
            "client_id": BILI["client_id"],
            "client_secret": "${KP_BILI_SECRET}",
            "access_token": "${KP_BILI_TOKEN}",
            "refresh_token": "${KP_BILI_REFRESH}",
            "api_base": base,
            "upload_base": base,
            "oauth_base": base,
            "tid": 201,
            "timeout_seconds": 2,
            **changes,
        }
    )
    return BilibiliChannel("bilibili-main", settings, ctx)


def kuaishou(ctx: Context, base: str, **changes: Any) -> KuaishouChannel:
    settings = KuaishouChannel.Settings.model_validate(
        {
            "type": "kuaishou",
            "app_id": KS["app_id"],
            "app_secret": "${KP_KS_SECRET}",
            "access_token": "${KP_KS_TOKEN}",
            "refresh_token": "${KP_KS_REFRESH}",
            "api_base": base,
            "timeout_seconds": 2,
            **changes,
        }
    )
    return KuaishouChannel("kuaishou-main", settings, ctx)


def recorded() -> tuple[Progress, list[dict[str, Any]]]:
    saves: list[dict[str, Any]] = []
    return Progress({"idempotency_key": "kepubot-1-7"}, on_save=saves.append), saves
