"""The ``douyin`` channel: content rules, rendering, publishing (upload, chunked upload,
create), lookup, figures and the credential check.

Checkpoints in the delivery's progress, saved at once:
``video_id``/``video_sha256`` right after the upload (an unused video_id is never uploaded
again) with ``create_sent_at: null``, ``upload_id``/``upload_started_at``/``uploaded_parts``
during a chunked upload, ``create_sent_at`` (the time) just before create_video is sent, and
``item_id`` after create (create is never called twice for one delivery). Each create needs a
fresh video_id, so a create refused because the video_id was used is evidence of an earlier
success: the outcome is unknown and reconciliation looks the video up.

Lookup (``find``), in the words of docs/proof-of-absence.md: published when the item_id is
checkpointed or the account's video_list shows the video (by the uploaded video_id where the
list carries it [gk], else by its text, on or after the attempt); absent only when our own
checkpoints prove create_video was never sent (no video_id, or ``create_sent_at`` still null);
otherwise undecided: Douyin may still be processing an accepted create, and video_list may be
offline for the app (28001056). The reconciler looks again until ``settle_minutes``.

Facts marked [gk] come from general knowledge and [?] are uncertain (docs/platforms.md §1.1).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from typing import Any

from kepubot.channels.base import (
    Capabilities,
    Permission,
    Problem,
    Published,
    Rendered,
    Undecided,
    checkpoint,
)
from kepubot.channels.douyin.api import (
    RENEW_LIMIT,
    SCOPE_SUFFIX,
    CapabilityOffline,
    DouyinApi,
)
from kepubot.channels.douyin.codes import (
    MAX_VIDEO_BYTES,
    WHOLE_UPLOAD_LIMIT_MB,
    _dict,
    _from_unix,
    _int,
    _parse_time,
)
from kepubot.channels.openvideo import (
    PART_UNIT,
    forget_changed_video,
    granted_permissions,
    media_path,
    never_sent,
    restart_upload_on_refusal,
    topic,
    upload_parts,
    video_problems,
)
from kepubot.channels.usertoken import when
from kepubot.errors import (
    OutcomeUnknown,
    Permanent,
    Transient,
)
from kepubot.models import Delivery, Media, MetricSnapshot, Post

# MP4 is what the upload documentation asks for; QuickTime (.mov, the same container family,
# what phones record) is accepted by the app and assumed to be accepted by the API [?].
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# No source gives a length limit for the create text; 1000 characters is only a sanity bound
# so that a body pasted by mistake is caught at review rather than by the platform [?].
MAX_TEXT = 1000


CHUNK_UNIT = PART_UNIT  # bytes per chunk_size_mb
UPLOAD_ID_REUSE = timedelta(minutes=110)  # an upload_id is valid 2 hours [src]; 10 min to spare
#: scopes the channel needs: publishing (video.create.bind [src] docs/platforms.md §4.3; the older
#: video.create counts too) and reach figures (video.data.bind / video.data [gk])
NEEDED_SCOPES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("video.create.bind", frozenset({"video.create.bind", "video.create"}), "publishing videos"),
    ("video.list.bind", frozenset({"video.list.bind", "video.list"}), "looking up videos"),
    ("video.data.bind", frozenset({"video.data.bind", "video.data"}), "collecting reach figures"),
)
LIST_PAGE_SIZE = 20  # videos per video_list page; the allowed maximum is not documented [gk]
FIND_MAX_PAGES = 10
FIND_CLOCK_SLACK = timedelta(minutes=5)  # our clock against Douyin's create_time
# item_ids per video_data call: no page gives a limit; 20 is the commonly cited one [gk]
DATA_BATCH = 20
_UPLOAD_KEYS = ("upload_id", "upload_started_at", "uploaded_parts")
# Where a person checks by hand: the account's works in the creator centre [gk].
LOOK_AT = "抖音创作者服务中心（creator.douyin.com）→ 内容管理 → 作品管理"


class DouyinChannel(DouyinApi):
    channel_type = "douyin"
    # No retract: the open platform's current OpenAPI list (developer.open-douyin.com, 内容能力)
    # offers this kind of app no deletion of a published video; older SDKs name a
    # `video.delete` scope that the current list does not have [gk]. A retraction is therefore
    # a task for a person, tracked in needs_attention (docs/delivery.md §14.2).
    capabilities = Capabilities(find=True, metrics=True, verify=True, permissions=True)

    def text(self, post: Post) -> str:
        topics = [t for t in (topic(tag) for tag in post.tags) if t]
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
        # 4 GB at most [src]
        problems += video_problems(
            post.video, VIDEO_TYPES, MAX_VIDEO_BYTES, "抖音只发布视频，请添加 --video"
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
        # From here on the create may reach Douyin: find() can no longer prove it absent.
        checkpoint(progress, create_sent_at=self._now().isoformat())
        data = self.call("POST", "create", what=what, publishing=True, json=body)
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
        forget_changed_video(progress, video, ("video_id", "video_sha256", *_UPLOAD_KEYS))
        if progress.get("video_id"):
            return str(progress["video_id"])
        path = self._context_media(video)
        size = os.path.getsize(path)
        chunk = self.settings.chunk_size_mb * CHUNK_UNIT
        # whole-file upload up to 128 MB [src] and up to chunk_size_mb; above, in parts
        if size <= min(chunk, WHOLE_UPLOAD_LIMIT_MB * CHUNK_UNIT):
            video_id = self._upload_whole(path, video)
        else:
            video_id = self._upload_chunks(path, chunk, video, progress)
        progress["video_id"] = video_id
        progress["video_sha256"] = video.sha256
        progress["create_sent_at"] = None  # this video_id has not been used for a create
        for key in _UPLOAD_KEYS:
            progress.pop(key, None)
        checkpoint(progress)
        return video_id

    def _context_media(self, video: Media) -> str:
        return media_path(
            self,
            video,
            f"douyin {self.name}: upload: the video file {video.path} is missing from the"
            " media store; add the video to the post again",
        )

    def _upload_whole(self, path: str, video: Media) -> str:
        what = f"douyin {self.name}: upload"
        with open(path, "rb") as file:
            content = file.read()
        files = {"video": (os.path.basename(path), content, video.mime)}
        data = self.call("POST", "upload", what=what, files=files)
        return _uploaded_video_id(data, what)

    def _upload_chunks(self, path: str, chunk: int, video: Media, progress: dict[str, Any]) -> str:
        what = f"douyin {self.name}: chunked upload"
        now = self._now()
        upload_id = progress.get("upload_id")
        started = _parse_time(progress.get("upload_started_at"))
        if not upload_id or started is None or now - started >= UPLOAD_ID_REUSE:
            data = self.call("POST", "part_init", what=f"{what} init")
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
        name = os.path.basename(path)

        def send(number: int, parts: int, content: bytes) -> None:
            self.call(
                "POST",
                "part_upload",
                what=f"{what} part {number}/{parts}",
                params={"upload_id": str(upload_id), "part_number": number},
                files={"video": (name, content, video.mime)},
            )

        # parts are numbered from 1 [src]
        upload_parts(progress, "uploaded_parts", path, chunk, send, first=1)
        # e.g. a complete repeated after its answer was lost, on a platform that does not
        # answer it again [?]: start a new upload next time rather than fail for good
        with restart_upload_on_refusal(progress, _UPLOAD_KEYS):
            data = self.call(
                "POST",
                "part_complete",
                what=f"{what} complete",
                params={"upload_id": str(upload_id)},
            )
        return _uploaded_video_id(data, f"{what} complete")

    # --- lookup, figures, check -----------------------------------------------------------------

    def find(
        self, post: Post, since: datetime, progress: dict[str, Any]
    ) -> Published | Undecided | None:
        """Published, absent (proved by our checkpoints) or undecided; see the module doc."""
        if progress.get("item_id"):
            return Published(
                str(progress["item_id"]), None, _parse_time(progress.get("created_at"))
            )
        if never_sent(progress, "video_id", "create_sent_at"):
            return None  # no video_id, or create_video was never sent with it
        video_id = progress["video_id"]
        text = self.render(post).text
        checked = [f"the delivery's checkpoints: video_id {video_id}, no item_id"]
        try:
            found = self._find_in_list(text, str(video_id), since, checked)
        except CapabilityOffline as exc:
            return Undecided(
                reason=(
                    f"create_video may have been applied with video_id {video_id}, but"
                    " video_list is offline for this app (28001056) and the other proofs"
                    " (a checkpointed item_id, video_data by item_id) need the item_id, which"
                    f" was never received ({exc})"
                ),
                checked=(*checked, "video_list: 28001056 (offline)"),
                look_at=f"{LOOK_AT}：查找标题「{text}」",
            )
        if isinstance(found, Published):
            return found
        sent = progress.get("create_sent_at")
        return Undecided(
            reason=(
                f"create_video may have been applied with video_id {video_id}"
                f" (sent {sent or 'at an unknown time'}); the video is not in the account's"
                " video_list yet, and Douyin lists a video only once it has processed it"
                + (f"; {found}" if found else "")
            ),
            checked=tuple(checked),
            look_at=f"{LOOK_AT}：查找标题「{text}」",
        )

    def _find_in_list(
        self, text: str, video_id: str, since: datetime, checked: list[str]
    ) -> Published | str:
        """The account's video_list, newest first [gk], matched by video_id where the items
        carry it [gk], else by the create text on or after ``since``. A str says why the list
        could not be read to the end."""
        what = f"douyin {self.name}: video list"
        wanted, wanted_bare = _comparable(text), _comparable(_without_topics(text))
        earliest = since - FIND_CLOCK_SLACK
        cursor: Any = 0
        seen = 0
        for page in range(1, FIND_MAX_PAGES + 1):
            data = self.call(
                "GET", "list", what=what, params={"cursor": cursor, "count": LIST_PAGE_SIZE}
            )
            items = [item for item in data.get("list") or [] if isinstance(item, dict)]
            seen += len(items)
            for item in items:
                if not item.get("item_id"):
                    continue
                created = _from_unix(item.get("create_time"))
                if item.get("video_id") and str(item["video_id"]) == video_id:
                    return Published(str(item["item_id"]), item.get("share_url") or None, created)
                if created is None or created < earliest:
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
                checked.append(
                    f"video_list: {page} page(s), {seen} videos back to {since:%Y-%m-%d %H:%M}"
                    " UTC: no video with this video_id or text"
                )
                return ""
            cursor = data["cursor"]
        checked.append(f"video_list: the first {seen} videos, none of them this one")
        return f"more than {seen} videos since {since:%Y-%m-%d %H:%M} UTC; the rest were not read"

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """video_data by item ids, in batches: plays, likes (digg), comments, shares."""
        ids = list(dict.fromkeys(d.remote_id for d in deliveries if d.remote_id))
        figures: dict[str, MetricSnapshot] = {}
        for start in range(0, len(ids), DATA_BATCH):
            batch = ids[start : start + DATA_BATCH]
            data = self.call(
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
        """Read one page of the account's videos; report the account, both token expiries and
        the refresh-token renewals left."""
        what = f"douyin {self.name}: check"
        token = self.token()
        if token.refresh_expires_at is not None and token.refresh_expires_at <= self._now():
            raise self.refresh_expired(token, what)
        try:
            data = self.call("GET", "list", what=what, params={"cursor": 0, "count": 1})
            videos = "has videos" if data.get("list") else "no videos yet"
        except CapabilityOffline:
            videos = "video_list is offline for this app (28001056): lookups use checkpoints only"
        token = self._credentials().get(self.name) or token
        used = self.renewals_used()
        return (
            f"open_id {self.settings.open_id} ({videos}); access token expires"
            f" {when(token.expires_at)}, refresh token expires {when(token.refresh_expires_at)}"
            f" ({used}/{RENEW_LIMIT} renewals used; authorization ends by"
            f" {when(self.authorization_ends(token))} unless the account authorises again)"
        )

    def permissions(self) -> list[Permission]:
        """The scopes publishing and figures need, against those Douyin reported with the
        last token refresh (it reports them nowhere else)."""
        stored = self._credentials().get(self.name + SCOPE_SUFFIX)
        return granted_permissions(
            stored.access_token if stored is not None else None,
            NEEDED_SCOPES,
            "Douyin reports the granted scopes with a token refresh; none seen yet",
        )


def _uploaded_video_id(data: dict[str, Any], what: str) -> str:
    # data.video{video_id, width, height} [src]; a flat data.video_id is accepted too [?]
    video_id = _dict(data.get("video")).get("video_id") or data.get("video_id")
    if not video_id:
        raise Transient(f"{what}: Douyin answered success without a video_id")
    return str(video_id)


_TOPIC = re.compile(r"[#＃]\S+")


def _without_topics(text: str) -> str:
    return _TOPIC.sub(" ", text)


def _comparable(text: str) -> str:
    return " ".join(text.split()).casefold()
