"""Douyin open platform videos (platforms.md §3): settings, content rules, rendering,
publishing, lookup, figures and the credential check.

Douyin publishes videos only: the file is uploaded (in chunks when large) and then
``create_video`` is called with the text, where ``#话题`` tags become topics.

Tokens (platforms.md §3.1, reliability.md §6.4). The configured ``access_token`` and
``refresh_token`` are the user's initial tokens. They are copied into the credentials store
under the channel's name, and from then on the stored tokens are used; they are refreshed
single-flight across daemons shortly before they expire and when Douyin says the access token
expired (then the call is repeated once). The store never replaces a refresh token with an
empty one (postiz PR #1884). Next to the tokens, under ``"<name>:source"``, the store keeps a
salted digest of the configured refresh token: when the operator configures new tokens (the
account authorized again) the digest differs and the configured tokens win over the stored
ones. An expired refresh token raises AuthExpired, which pauses the channel (its deliveries
stay queued) until new tokens are configured.

Checkpoints in the delivery's progress, saved at once:
``video_id``/``video_sha256`` right after the upload (an unused video_id is never uploaded
again), ``upload_id``/``upload_started_at``/``uploaded_parts`` during a chunked upload, and
``item_id`` after create (create is never called twice for one delivery). Each create needs a
fresh video_id, so a create refused because the video_id was used is evidence of an earlier
success: the outcome is unknown and reconciliation looks the video up.

Facts marked [gk] come from general knowledge and [?] are uncertain (platforms.md's tags).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from pydantic import Field

from kepubot.channels.base import (
    Credentials,
    HttpChannel,
    HttpChannelSettings,
    Permission,
    Problem,
    Published,
    Rendered,
    Token,
    checkpoint,
    json_object,
    mask_secrets,
)
from kepubot.config import Secret
from kepubot.errors import (
    AuthExpired,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    StoreError,
    Transient,
)
from kepubot.models import Delivery, Media, MetricSnapshot, Post

# MP4 is what the upload documentation asks for; QuickTime (.mov, the same container family,
# what phones record) is accepted by the app and assumed to be accepted by the API [?].
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# No source gives a length limit for the create text; 1000 characters is only a sanity bound
# so that a body pasted by mistake is caught at review rather than by the platform [?].
MAX_TEXT = 1000


class DouyinSettings(HttpChannelSettings):
    client_key: str = Field(min_length=1)
    client_secret: Secret
    open_id: str = Field(min_length=1)
    access_token: Secret
    refresh_token: Secret
    api_base: str = "https://open.douyin.com"
    # Chunked upload parts must be at least 5 MB; 20 MB is the recommended size [src].
    chunk_size_mb: int = Field(20, ge=5)


# --- the platform, as data ---------------------------------------------------------------------

#: Paths under api_base (platforms.md §3.1, §3.3, §3.4). The /api/douyin/v1/ paths take the
#: token in the ``access-token`` header, the older ones in the ``access_token`` query parameter;
#: every user-scoped call carries ``open_id`` in the query.
PATHS: dict[str, str] = {
    "refresh": "oauth/refresh_token/",
    "upload": "api/douyin/v1/video/upload_video/",
    # platforms.md names the /api/douyin/v1/ form of the chunked init only, not of the part
    # and complete steps, so one upload session uses the three documented legacy steps [?].
    "part_init": "video/part/init/",
    "part_upload": "video/part/upload/",
    "part_complete": "video/part/complete/",
    "create": "api/douyin/v1/video/create_video/",
    "list": "video/list/",
    "data": "video/data/",
}

#: error_code -> kind (platforms.md §3.1, §3.2). Unknown non-zero codes are permanent.
#: auth: the access token is refused; refresh it once (single-flight) and repeat the call once.
#: refresh_expired: the user must authorize the app again -> AuthExpired (channel paused).
#: denied: the app or account lacks a right; refreshing cannot help -> AuthExpired.
#: rate_limited -> RateLimited. busy: on create the video may exist (OutcomeUnknown), elsewhere
#: Transient. transient -> Transient. permanent -> Permanent.
ERRORS: dict[int, str] = {
    2190008: "auth",  # access_token expired [src]
    10008: "auth",  # access_token expired (older code) [src]
    2190002: "auth",  # access_token invalid [src]
    28001008: "auth",  # token expired, /api/ endpoints [src]
    28001003: "auth",  # token invalid, /api/ endpoints [src]
    10010: "refresh_expired",  # refresh_token expired: authorize again [src]
    # "refresh limit exceeded" (renew_refresh_token, client_token); from the refresh endpoint we
    # read it as "this authorization cannot be refreshed any more" [?]
    10020: "refresh_expired",
    28001016: "denied",  # app banned [src]
    28001018: "denied",  # app lacks the capability (e.g. video.create.bind) [src]
    10013: "denied",  # wrong client_key or client_secret [src]
    # "requests too frequent", seen on one API with a QPS limit of 100 [src]; the rate-limit
    # code of the video APIs is not known [?]
    2118110: "rate_limited",
    2100004: "busy",  # system busy, retry [src]
    2100005: "permanent",  # invalid parameter [src]
    10002: "permanent",  # parameter error [src]
    10005: "permanent",  # parameter error [src]
}
RATE_LIMIT_RETRY_AFTER = 60.0  # seconds; no source says how long to wait [gk]

# A create refused because its video_id was already used: an earlier create went through. No
# source gives the code or wording, so the description is matched [?].
_VIDEO_ID_USED = re.compile(
    r"video_id.{0,40}(used|已使用|已被使用|重复)|(已使用|已被使用|重复使用).{0,40}video_id",
    re.I | re.S,
)
# A refresh refused because the refresh token expired, whatever the code.
_REFRESH_EXPIRED = re.compile(
    r"refresh[_ ]?token.{0,40}(expire|过期|失效)|(过期|失效).{0,40}refresh[_ ]?token", re.I | re.S
)

CHUNK_UNIT = 1024 * 1024  # bytes per chunk_size_mb
UPLOAD_ID_REUSE = timedelta(minutes=110)  # an upload_id is valid 2 hours [src]; 10 min to spare
REFRESH_MARGIN_SECONDS = 3600.0  # refresh this long before the access token expires
# The refresh token lives 30 days [src]: an upper bound for configured tokens of unknown age.
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
SOURCE_SUFFIX = ":source"  # credentials key of the configured-token digest
SCOPE_SUFFIX = ":scope"  # credentials key of the scopes Douyin last reported granted
#: scopes the channel needs: publishing (video.create.bind [src] §3.3; the older
#: video.create counts too) and reach figures (video.data.bind / video.data [gk])
NEEDED_SCOPES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("video.create.bind", frozenset({"video.create.bind", "video.create"}), "publishing videos"),
    ("video.data.bind", frozenset({"video.data.bind", "video.data"}), "collecting reach figures"),
)
LIST_PAGE_SIZE = 20  # videos per video/list page; the allowed maximum is not documented [gk]
FIND_MAX_PAGES = 10
FIND_CLOCK_SLACK = timedelta(minutes=5)  # our clock against Douyin's create_time
# item_ids per video/data call: platforms.md gives no limit; 20 is the commonly cited one [gk]
DATA_BATCH = 20
DESCRIPTION_CHARS = 160  # of Douyin's description, in an error message
_UPLOAD_KEYS = ("upload_id", "upload_started_at", "uploaded_parts")


def _topic(tag: str) -> str:
    # A topic ends at the first space, and a tag written as "#科普" must not become "##科普".
    return "".join(tag.strip().lstrip("#＃").split())


class _TokenRefused(Exception):
    """Douyin refused the access token (an "auth" code): refresh once and repeat once."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class DouyinChannel(HttpChannel):
    Settings = DouyinSettings
    settings: DouyinSettings
    can_find = True

    def text(self, post: Post) -> str:
        topics = [t for t in (_topic(tag) for tag in post.tags) if t]
        return " ".join([post.title.strip(), *("#" + t for t in topics)]).strip()

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        video = post.video
        return Rendered(
            channel=self.name,
            kind="video",
            title=post.title,
            text=self.text(post),
            link=post.link,
            media=[video.path] if video else [],
            # The first frame is the cover unless publishing is told otherwise.
            extra={"cover_tsp": 0.0},
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        video = post.video
        if video is None:
            problems.append(Problem("video", "required", detail="抖音只发布视频，请添加 --video"))
        elif video.mime not in VIDEO_TYPES:
            problems.append(
                Problem("video", "media_type", limit=", ".join(VIDEO_TYPES), actual=video.mime)
            )
        text = self.text(post)
        if len(text) > MAX_TEXT:
            problems.append(Problem("text", "too_long", limit=MAX_TEXT, actual=len(text)))
        return problems

    # --- publishing -----------------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published:
        what = f"douyin {self.name}: create"
        if progress.get("item_id"):
            # create went through on an earlier run: never call it twice for one delivery
            return Published(
                str(progress["item_id"]), None, _parse_time(progress.get("created_at"))
            )
        post = post.for_channel(self.name)
        video = post.video
        if video is None:
            raise Permanent(f"{what}: the post has no video; Douyin publishes videos only")
        rendered = self.render(post)
        video_id = self._video_id(video, progress)
        body = {
            "video_id": video_id,
            "text": rendered.text,
            "cover_tsp": float(rendered.extra.get("cover_tsp", 0.0)),
        }
        data = self._call("POST", "create", what=what, publishing=True, json=body)
        item_id = data.get("item_id")
        if not item_id:
            raise OutcomeUnknown(
                f"{what}: Douyin answered success without an item_id; cannot tell whether the"
                " video was created"
            )
        now = self._now()
        progress["item_id"] = str(item_id)
        progress["created_at"] = now.isoformat()
        checkpoint(progress)
        return Published(str(item_id), None, now)

    def _video_id(self, video: Media, progress: dict[str, Any]) -> str:
        """The video_id to create with: the one uploaded on an earlier run if unused, else a
        new upload (checkpointed at once)."""
        if progress.get("video_sha256") not in (None, video.sha256):
            # The post's video changed since that upload: it is of no use any more.
            for key in ("video_id", "video_sha256", *_UPLOAD_KEYS):
                progress.pop(key, None)
        if progress.get("video_id"):
            return str(progress["video_id"])
        path = self._context_media(video)
        size = os.path.getsize(path)
        chunk = self.settings.chunk_size_mb * CHUNK_UNIT
        if size <= chunk:
            video_id = self._upload_whole(path, video)
        else:
            video_id = self._upload_chunks(path, size, chunk, video, progress)
        progress["video_id"] = video_id
        progress["video_sha256"] = video.sha256
        for key in _UPLOAD_KEYS:
            progress.pop(key, None)
        checkpoint(progress)
        return video_id

    def _context_media(self, video: Media) -> str:
        if self.context is None:
            raise RuntimeError(f"douyin {self.name}: no context to find media files in")
        path = self.context.media_file(video.path)
        if not os.path.isfile(path):
            raise Permanent(
                f"douyin {self.name}: upload: the video file {video.path} is missing from the"
                " media store; add the video to the post again"
            )
        return path

    def _upload_whole(self, path: str, video: Media) -> str:
        what = f"douyin {self.name}: upload"
        with open(path, "rb") as file:
            content = file.read()
        files = {"video": (os.path.basename(path), content, video.mime)}
        data = self._call("POST", "upload", what=what, files=files)
        return _uploaded_video_id(data, what)

    def _upload_chunks(
        self, path: str, size: int, chunk: int, video: Media, progress: dict[str, Any]
    ) -> str:
        what = f"douyin {self.name}: chunked upload"
        parts = math.ceil(size / chunk)
        now = self._now()
        upload_id = progress.get("upload_id")
        started = _parse_time(progress.get("upload_started_at"))
        if not upload_id or started is None or now - started >= UPLOAD_ID_REUSE:
            data = self._call("POST", "part_init", what=f"{what} init")
            upload_id = data.get("upload_id")
            if not upload_id:
                raise Transient(f"{what} init: Douyin answered success without an upload_id")
            progress.update(
                upload_id=str(upload_id),
                upload_started_at=now.isoformat(),
                uploaded_parts=[],
                video_sha256=video.sha256,
            )
            checkpoint(progress)
        done = {int(n) for n in progress.get("uploaded_parts") or []}
        name = os.path.basename(path)
        with open(path, "rb") as file:
            for number in range(1, parts + 1):  # parts are numbered from 1 [src]
                if number in done:
                    continue
                file.seek((number - 1) * chunk)
                content = file.read(chunk)
                self._call(
                    "POST",
                    "part_upload",
                    what=f"{what} part {number}/{parts}",
                    params={"upload_id": str(upload_id), "part_number": number},
                    files={"video": (name, content, video.mime)},
                )
                done.add(number)
                progress["uploaded_parts"] = sorted(done)
                checkpoint(progress)
        data = self._call(
            "POST", "part_complete", what=f"{what} complete", params={"upload_id": str(upload_id)}
        )
        return _uploaded_video_id(data, f"{what} complete")

    # --- lookup, figures, check -----------------------------------------------------------------

    def find(self, post: Post, since: datetime, progress: dict[str, Any]) -> Published | None:
        """The account's video list, newest first [gk], matched on the create text."""
        if progress.get("item_id"):
            return Published(
                str(progress["item_id"]), None, _parse_time(progress.get("created_at"))
            )
        what = f"douyin {self.name}: video list"
        text = self.render(post).text
        wanted, wanted_bare = _comparable(text), _comparable(_without_topics(text))
        earliest = since - FIND_CLOCK_SLACK
        cursor: Any = 0
        for _ in range(FIND_MAX_PAGES):
            data = self._call(
                "GET", "list", what=what, params={"cursor": cursor, "count": LIST_PAGE_SIZE}
            )
            items = [item for item in data.get("list") or [] if isinstance(item, dict)]
            for item in items:
                created = _from_unix(item.get("create_time"))
                if created is None or created < earliest or not item.get("item_id"):
                    continue
                title = str(item.get("title") or "")
                # Douyin may present the #topics apart from the title, so a match without them
                # counts too [?].
                if _comparable(title) == wanted or (
                    wanted_bare and _comparable(_without_topics(title)) == wanted_bare
                ):
                    return Published(str(item["item_id"]), item.get("share_url") or None, created)
            # Newest first [gk], pinned videos (is_top) aside: once one is older, so is the rest.
            times = [_from_unix(i.get("create_time")) for i in items if not i.get("is_top")]
            older = any(t is not None and t < earliest for t in times)
            if not data.get("has_more") or not items or older or data.get("cursor") is None:
                return None
            cursor = data["cursor"]
        raise Transient(
            f"{what}: more than {FIND_MAX_PAGES * LIST_PAGE_SIZE} videos since"
            f" {since:%Y-%m-%d %H:%M} UTC; cannot tell whether the post is among them"
        )

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """video/data by item ids, in batches: plays, likes (digg), comments, shares."""
        ids = list(dict.fromkeys(d.remote_id for d in deliveries if d.remote_id))
        figures: dict[str, MetricSnapshot] = {}
        for start in range(0, len(ids), DATA_BATCH):
            batch = ids[start : start + DATA_BATCH]
            data = self._call(
                "POST", "data", what=f"douyin {self.name}: video data", json={"item_ids": batch}
            )
            for item in data.get("list") or []:
                if not isinstance(item, dict) or not item.get("item_id"):
                    continue
                stats = _dict(item.get("statistics"))
                figures[str(item["item_id"])] = MetricSnapshot(
                    views=_int(stats.get("play_count")),  # author-only; 0 when private [src]
                    likes=_int(stats.get("digg_count")),
                    comments=_int(stats.get("comment_count")),
                    shares=_int(stats.get("share_count")),
                    raw={
                        "statistics": stats,
                        "is_reviewed": item.get("is_reviewed"),
                        "video_status": item.get("video_status"),
                    },
                )
        return figures

    def verify(self) -> str:
        """Read one page of the account's videos; report the account and the token expiry."""
        what = f"douyin {self.name}: check"
        token = self.token()
        if token.refresh_expires_at is not None and token.refresh_expires_at <= self._now():
            raise AuthExpired(
                self._reauthorize(
                    what, f"the refresh token expired at {_when(token.refresh_expires_at)}"
                )
            )
        data = self._call("GET", "list", what=what, params={"cursor": 0, "count": 1})
        token = self._credentials().get(self.name) or token
        videos = "has videos" if data.get("list") else "no videos yet"
        return (
            f"open_id {self.settings.open_id} ({videos}); access token expires"
            f" {_when(token.expires_at)}, refresh token by {_when(token.refresh_expires_at)}"
        )

    def permissions(self) -> list[Permission]:
        """The scopes publishing and figures need, against those Douyin reported with the
        last token refresh (it reports them nowhere else)."""
        stored = self._credentials().get(self.name + SCOPE_SUFFIX)
        if stored is None:
            return [
                Permission(
                    name,
                    needed_for,
                    None,
                    "Douyin reports the granted scopes with a token refresh; none seen yet",
                )
                for name, _, needed_for in NEEDED_SCOPES
            ]
        granted = {part.strip() for part in stored.access_token.split(",") if part.strip()}
        return [
            Permission(
                name,
                needed_for,
                bool(granted & accepted),
                "" if granted & accepted else f"granted: {', '.join(sorted(granted)) or 'none'}",
            )
            for name, accepted, needed_for in NEEDED_SCOPES
        ]

    # --- tokens ---------------------------------------------------------------------------------

    def _credentials(self) -> Credentials:
        if self.context is None:
            raise RuntimeError(f"douyin {self.name}: no context, so no credentials store")
        return self.context.credentials

    def _now(self) -> datetime:
        return self.context.now() if self.context is not None else datetime.now(UTC)

    def source_fingerprint(self) -> str:
        """A salted digest of the configured refresh token: enough to notice that the operator
        configured new tokens, useless for recovering them."""
        digest = hashlib.sha256(b"kepubot-douyin-source-v1")
        for part in (
            self.name,
            self.settings.client_key,
            self.settings.open_id,
            self.settings.refresh_token.get_secret_value(),
        ):
            digest.update(b"\0" + part.encode("utf-8"))
        return digest.hexdigest()[:32]

    def token(self) -> Token:
        """The token to call with: the stored one (the configured ones when they are new),
        refreshed single-flight when it expires within REFRESH_MARGIN_SECONDS."""
        credentials = self._credentials()
        stored = credentials.get(self.name)
        source = credentials.get(self.name + SOURCE_SUFFIX)
        fingerprint = self.source_fingerprint()
        if stored is None or source is None or source.access_token != fingerprint:
            stored = self._seed(credentials, stored, fingerprint)
        if stored.expires_soon(self._now(), margin_seconds=REFRESH_MARGIN_SECONDS):
            stored = self._refresh(stored, what=f"douyin {self.name}: token refresh")
        return stored

    def _seed(self, credentials: Credentials, stored: Token | None, fingerprint: str) -> Token:
        """Store the configured tokens (first use, or the operator configured new ones)."""
        configured = Token(
            access_token=self.settings.access_token.get_secret_value(),
            refresh_token=self.settings.refresh_token.get_secret_value(),
            # Unknown: refreshed when Douyin says it expired.
            expires_at=None,
            # Unknown too; the refresh token's whole life is an upper bound. (Also replaces the
            # expiry of the tokens these supersede, which the store would otherwise keep.)
            refresh_expires_at=self._now() + REFRESH_TOKEN_LIFETIME,
        )
        try:
            # Under the refresh lease: a process that refreshed or seeded meanwhile wins.
            token = credentials.refresh(self.name, lambda current: configured, stale=stored)
        except StoreError as exc:
            raise Transient(f"douyin {self.name}: token store: {exc}") from None
        if token.access_token == configured.access_token:
            credentials.put(self.name + SOURCE_SUFFIX, Token(access_token=fingerprint))
            self.log.info("douyin %s: using the configured tokens", self.name)
        return token

    def _refresh(self, stale: Token, *, what: str) -> Token:
        if stale.refresh_expires_at is not None and stale.refresh_expires_at <= self._now():
            raise AuthExpired(
                self._reauthorize(
                    what, f"the refresh token expired at {_when(stale.refresh_expires_at)}"
                )
            )
        try:
            return self._credentials().refresh(self.name, self._fetch_token, stale=stale)
        except StoreError as exc:
            raise Transient(f"{what}: token store: {exc}") from None

    def _fetch_token(self, current: Token | None) -> Token:
        """``POST oauth/refresh_token/`` (form: client_key, grant_type, refresh_token)."""
        what = f"douyin {self.name}: token refresh"
        configured = self.settings.refresh_token.get_secret_value()
        refresh_token = current.refresh_token if current and current.refresh_token else configured
        now = self._now()
        form = {
            "client_key": self.settings.client_key,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        try:
            response = self.request(
                "POST", PATHS["refresh"], what=what, data=form, allow_redirects=False
            )
        except OutcomeUnknown as exc:
            # A refresh publishes nothing: asking again later is safe.
            raise Transient(str(exc), code=exc.code) from None
        body = json_object(response)
        code, detail = _error_of(body, self._secrets(current))
        if code is None:
            raise Transient(
                f"{what}: HTTP {response.status_code} without a Douyin answer; check api_base"
                f" ({self.http_settings.api_base})",
                code=response.status_code,
            )
        if code != 0:
            self._raise_refresh_error(code, detail, what)
        data = _dict(body.get("data"))
        access_token = str(data.get("access_token") or "")
        if not access_token:
            raise Transient(f"{what}: Douyin answered success without an access_token")
        if data.get("open_id") and str(data["open_id"]) != self.settings.open_id:
            self.log.warning(
                "douyin %s: the tokens belong to open_id %s but open_id %s is configured",
                self.name,
                data["open_id"],
                self.settings.open_id,
            )
        expires_in = _int(data.get("expires_in"))
        refresh_in = _int(data.get("refresh_expires_in"))
        self.log.info("douyin %s: access token refreshed", self.name)
        scope = str(data.get("scope") or "").strip()
        if scope:
            # what the user granted, for `kepubot channels check` (only refreshes report it)
            self._credentials().put(self.name + SCOPE_SUFFIX, Token(access_token=scope))
        return Token(
            access_token=access_token,
            # An empty refresh_token never replaces the stored one (the store guards it too).
            refresh_token=str(data.get("refresh_token") or "") or None,
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            refresh_expires_at=now + timedelta(seconds=refresh_in) if refresh_in else None,
        )

    def _raise_refresh_error(self, code: int, detail: str, what: str) -> NoReturn:
        kind = ERRORS.get(code, "permanent")
        if kind == "rate_limited":
            raise RateLimited(
                f"{what}: rate limited ({detail})", retry_after=RATE_LIMIT_RETRY_AFTER, code=code
            )
        if kind in ("busy", "transient") and not _REFRESH_EXPIRED.search(detail):
            raise Transient(f"{what}: temporarily refused ({detail})", code=code)
        if kind == "denied":
            raise AuthExpired(
                f"{what}: refused ({detail}); check client_key and client_secret and the app's"
                " status on the Douyin open platform",
                code=code,
            )
        # Expired, or refused for any other reason: this authorization cannot be refreshed.
        raise AuthExpired(
            self._reauthorize(what, f"Douyin refused the refresh ({detail})"), code=code
        )

    def _reauthorize(self, what: str, reason: str) -> str:
        return (
            f"{what}: {reason}; the Douyin account must authorize the app again, then set the new"
            f" access_token and refresh_token of [channels.{self.name}] (its deliveries stay"
            " queued until then)"
        )

    def _secrets(self, token: Token | None) -> list[str]:
        values = [
            self.settings.client_secret.get_secret_value(),
            self.settings.access_token.get_secret_value(),
            self.settings.refresh_token.get_secret_value(),
        ]
        if token is not None:
            values += [token.access_token, token.refresh_token or ""]
        return values

    # --- one call -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        route: str,
        *,
        what: str,
        publishing: bool = False,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One user-scoped call; returns the answer's ``data``. A refused access token is
        refreshed once (single flight) and the call repeated once: the refusal means the
        request was not applied."""
        token = self.token()
        try:
            return self._send(method, route, token, what, publishing, params, kwargs)
        except _TokenRefused:
            pass
        token = self._refresh(token, what=what)
        try:
            return self._send(method, route, token, what, publishing, params, kwargs)
        except _TokenRefused as refused:
            raise AuthExpired(
                self._reauthorize(
                    what, f"Douyin refused the access token right after a refresh ({refused})"
                ),
                code=refused.code,
            ) from None

    def _send(
        self,
        method: str,
        route: str,
        token: Token,
        what: str,
        publishing: bool,
        params: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        path = PATHS[route]
        query: dict[str, Any] = {"open_id": self.settings.open_id}
        headers: dict[str, str] = {}
        if path.startswith("api/"):
            headers["access-token"] = token.access_token
        else:
            query["access_token"] = token.access_token
        query.update(params or {})
        try:
            # No redirects: requests would turn a redirected POST into a GET.
            response = self.request(
                method,
                path,
                what=what,
                params=query,
                headers=headers,
                allow_redirects=False,
                **kwargs,
            )
        except OutcomeUnknown as exc:
            if publishing:
                raise
            # Only create publishes: an upload or read that may have been applied leaves at
            # most an unused video_id behind, so asking again is safe.
            raise Transient(str(exc), code=exc.code) from None
        body = json_object(response)
        code, detail = _error_of(body, self._secrets(token))
        status = response.status_code
        if code is None:
            if status == 401:
                raise _TokenRefused(status, f"HTTP {status}")
            if publishing and 200 <= status < 300:
                raise OutcomeUnknown(
                    f"{what}: HTTP {status} without a Douyin answer; cannot tell whether the"
                    " video was created",
                    code=status,
                )
            if status >= 300:
                raise Permanent(
                    f"{what}: HTTP {status} without a Douyin answer; check api_base"
                    f" ({self.http_settings.api_base})",
                    code=status,
                )
            raise Transient(f"{what}: HTTP {status} without a Douyin answer", code=status)
        if code != 0:
            self._raise_for(code, detail, what, publishing)
        return _dict(body.get("data"))

    def _raise_for(self, code: int, detail: str, what: str, publishing: bool) -> NoReturn:
        kind = ERRORS.get(code, "permanent")
        if kind == "auth":
            raise _TokenRefused(code, detail)
        if kind == "refresh_expired":
            raise AuthExpired(
                self._reauthorize(what, f"the authorization expired ({detail})"), code=code
            )
        if kind == "denied":
            raise AuthExpired(
                f"{what}: refused ({detail}); check the app's status and capabilities"
                " (video.create.bind) on the Douyin open platform, and authorize again if the"
                " scope changed",
                code=code,
            )
        if kind == "rate_limited":
            raise RateLimited(
                f"{what}: rate limited ({detail})", retry_after=RATE_LIMIT_RETRY_AFTER, code=code
            )
        if kind == "busy" and publishing:
            raise OutcomeUnknown(
                f"{what}: Douyin was busy ({detail}); the video may or may not have been created",
                code=code,
            )
        if kind in ("busy", "transient"):
            raise Transient(f"{what}: temporarily refused ({detail})", code=code)
        if publishing and _VIDEO_ID_USED.search(detail):
            raise OutcomeUnknown(
                f"{what}: Douyin says the video_id was already used ({detail}), so an earlier"
                " create went through",
                code=code,
            )
        raise Permanent(f"{what}: refused ({detail})", code=code)


# --- helpers -------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _error_of(body: dict[str, Any], secrets: list[str]) -> tuple[int | None, str]:
    """(error code, one-line detail) of a Douyin answer, None when it is not one.

    Classic answers carry ``data.error_code``/``description`` and ``extra.error_code``/
    ``description``/``sub_error_code``/``sub_description``/``logid``; some newer ones
    ``err_no``/``err_msg``/``log_id`` (platforms.md §3.2). A non-zero code anywhere wins.
    """
    data, extra = _dict(body.get("data")), _dict(body.get("extra"))
    codes = [
        c
        for c in (
            _int(data.get("error_code")),
            _int(extra.get("error_code")),
            _int(body.get("err_no")),
        )
        if c is not None
    ]
    if not codes:
        return None, ""
    code = next((c for c in codes if c != 0), 0)
    if code == 0:
        return 0, ""
    description = next(
        (
            str(v)
            for v in (data.get("description"), extra.get("description"), body.get("err_msg"))
            if v
        ),
        "no description",
    )
    detail = f"error_code {code}: {description}"
    sub_code, sub = _int(extra.get("sub_error_code")), extra.get("sub_description")
    if sub_code or sub:
        detail += f" (sub_error_code {sub_code}: {sub})"
    detail = mask_secrets(detail, secrets)
    detail = " ".join(detail.split())
    if len(detail) > DESCRIPTION_CHARS:
        detail = detail[:DESCRIPTION_CHARS] + "…"
    logid = extra.get("logid") or body.get("log_id")
    if logid:
        detail += f"; logid {str(logid)[:40]}"
    return code, detail


def _uploaded_video_id(data: dict[str, Any], what: str) -> str:
    # data.video{video_id, width, height} [src]; a flat data.video_id is accepted too [?]
    video_id = _dict(data.get("video")).get("video_id") or data.get("video_id")
    if not video_id:
        raise Transient(f"{what}: Douyin answered success without a video_id")
    return str(video_id)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_unix(value: Any) -> datetime | None:
    seconds = _int(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


_TOPIC = re.compile(r"[#＃]\S+")


def _without_topics(text: str) -> str:
    return _TOPIC.sub(" ", text)


def _comparable(text: str) -> str:
    return " ".join(text.split()).casefold()
