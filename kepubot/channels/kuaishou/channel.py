"""The ``kuaishou`` channel: content rules, rendering, the three publishing steps, lookup,
figures and the credential check (docs/platforms.md §13).

Checkpoints in the delivery's progress, each saved at once: ``upload_token``/``endpoint``/
``video_sha256`` after start_upload (with ``publish_sent_at: null``), ``uploaded_fragments``
after each fragment, ``uploaded`` once the file is on the upload gateway, ``publish_sent_at``
(the time) just before photo/publish is sent, and ``photo_id`` after it. photo/publish is
never sent twice for one delivery.

A published photo may still be ``pending`` (processed or reviewed) [?]: publish and find then
answer Processing and ``poll`` reads photo/info until it is not pending. A photo Kuaishou says
does not exist any more was refused or deleted (Permanent) [?].

Lookup (docs/proof-of-absence.md, section Kuaishou): published or processing when the photo_id is
checkpointed or the account's photo list shows a photo with this caption created on or after
the attempt; absent only when our checkpoints prove photo/publish was never sent; otherwise
undecided.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from kepubot.channels.base import (
    Capabilities,
    Permission,
    Problem,
    Processing,
    Published,
    Rendered,
    Retracted,
    Undecided,
    checkpoint,
)
from kepubot.channels.kuaishou.api import KuaishouApi, PhotoMissing
from kepubot.channels.kuaishou.codes import (
    COVER_TYPES,
    MAX_CAPTION,
    MAX_COVER_BYTES,
    MAX_VIDEO_BYTES,
    UPLOAD_PATHS,
    VIDEO_TYPES,
)
from kepubot.channels.openvideo import (
    PART_UNIT,
    as_dict,
    as_int,
    cover_problems,
    forget_changed_video,
    granted_permissions,
    media_path,
    never_sent,
    restart_upload_on_refusal,
    topic,
    upload_parts,
    video_problems,
)
from kepubot.channels.usertoken import SCOPE_SUFFIX, TokenRefused, when
from kepubot.errors import OutcomeUnknown, Permanent, Transient
from kepubot.models import Delivery, Media, MetricSnapshot, Post

LIST_PAGE_SIZE = 50
FIND_MAX_PAGES = 10
FIND_CLOCK_SLACK = timedelta(minutes=5)
LOOK_AT = "快手创作者服务平台（cp.kuaishou.com）→ 作品管理"
_UPLOAD_KEYS = ("upload_token", "endpoint", "uploaded_fragments", "uploaded")
NEEDED = (
    ("user_video_publish", frozenset({"user_video_publish"}), "publishing videos"),
    (
        "user_video_info",
        frozenset({"user_video_info"}),
        "looking up videos and their figures",
    ),
)


def photo_url(photo_id: str) -> str:
    return f"https://www.kuaishou.com/short-video/{photo_id}"  # the public page [gk]


class KuaishouChannel(KuaishouApi):
    capabilities = Capabilities(
        find=True,
        poll=True,
        metrics=True,
        account_metrics=True,
        verify=True,
        permissions=True,
        retract=True,
        find_retracted=True,
    )

    def caption(self, post: Post) -> str:
        topics = [t for t in dict.fromkeys(topic(tag) for tag in post.tags) if t]
        return " ".join([post.title.strip(), *("#" + t for t in topics)]).strip()

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        return Rendered(
            channel=self.name,
            kind="video",
            title=post.title,
            text=self.caption(post),
            link=post.link,
            media=[m.path for m in (post.video, post.cover) if m is not None],
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        caption = self.caption(post)
        if len(caption) > MAX_CAPTION:
            problems.append(Problem("text", "too_long", limit=MAX_CAPTION, actual=len(caption)))
        problems += video_problems(
            post.video, VIDEO_TYPES, MAX_VIDEO_BYTES, "快手只发布视频，请添加 --video"
        )
        problems += cover_problems(post.cover, MAX_COVER_BYTES, "快手", COVER_TYPES)
        return problems

    # --- publishing -----------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published | Processing:
        what = self._what("photo/publish")
        if progress.get("photo_id"):
            return Processing({"photo_id": progress["photo_id"]}, self.settings.poll_seconds)
        post = post.for_channel(self.name)
        video, cover = post.video, post.cover
        if video is None or cover is None:
            raise Permanent(f"{what}: the post needs a video and a cover for Kuaishou")
        upload_token = self._upload(video, progress)
        cover_path = media_path(self, cover)
        with open(cover_path, "rb") as file:
            cover_bytes = file.read()
        files = {
            "caption": (None, self.caption(post)),
            "cover": (os.path.basename(cover_path), cover_bytes, cover.mime),
        }
        # From here on the publish may reach Kuaishou: find() can no longer prove it absent.
        checkpoint(progress, publish_sent_at=self._now().isoformat())
        body = self.call(
            "POST",
            "publish",
            what=what,
            publishing=True,
            params={"upload_token": upload_token},
            files=files,
        )
        info = as_dict(body.get("video_info"))
        photo_id = info.get("photo_id")
        if not photo_id:
            raise OutcomeUnknown(
                f"{what}: Kuaishou answered success without a photo_id; cannot tell whether the"
                " video was published"
            )
        checkpoint(progress, photo_id=str(photo_id))
        return self._state(str(photo_id), info)

    def _upload(self, video: Media, progress: dict[str, Any]) -> str:
        """start_upload, then the file (whole or in fragments) to the returned endpoint."""
        forget_changed_video(progress, video, ("video_sha256", *_UPLOAD_KEYS))
        path = media_path(self, video)
        token, endpoint = progress.get("upload_token"), progress.get("endpoint")
        if not token or not endpoint:
            body = self.call("POST", "start_upload", what=self._what("start_upload"))
            token, endpoint = body.get("upload_token"), body.get("endpoint")
            if not token or not endpoint:
                raise Transient(
                    f"{self._what('start_upload')}: answered without upload_token or endpoint"
                )
            checkpoint(
                progress,
                upload_token=str(token),
                endpoint=str(endpoint),
                video_sha256=video.sha256,
                uploaded_fragments=[],
                uploaded=False,
                publish_sent_at=None,  # this upload_token has not been published
            )
        if progress.get("uploaded"):
            return str(token)
        # e.g. an upload_token the gateway no longer knows [?]: nothing was published
        # (publish_sent_at is still null), so start a new upload next time
        with restart_upload_on_refusal(progress, _UPLOAD_KEYS):
            self._send_file(path, str(token), str(endpoint), video, progress)
        checkpoint(progress, uploaded=True)
        return str(token)

    def _send_file(
        self, path: str, token: str, endpoint: str, video: Media, progress: dict[str, Any]
    ) -> None:
        size = os.path.getsize(path)
        chunk = self.settings.chunk_size_mb * PART_UNIT
        base = f"http://{endpoint.strip().rstrip('/')}"
        if size <= chunk:
            with open(path, "rb") as file:
                self._gateway(
                    f"{base}/{UPLOAD_PATHS['upload']}",
                    {"upload_token": token},
                    file.read(),
                    self._what("upload"),
                    video.mime,
                )
        else:

            def send(number: int, fragments: int, content: bytes) -> None:
                self._gateway(
                    f"{base}/{UPLOAD_PATHS['fragment']}",
                    {"upload_token": token, "fragment_id": number},
                    content,
                    self._what(f"fragment {number + 1}/{fragments}"),
                    video.mime,
                )

            # fragment_id from 0 [src]
            fragments = upload_parts(progress, "uploaded_fragments", path, chunk, send, first=0)
            self._gateway(
                f"{base}/{UPLOAD_PATHS['complete']}",
                {"upload_token": token, "fragment_count": fragments},
                b"",
                self._what("upload complete"),
                None,
            )

    def _gateway(
        self, url: str, params: dict[str, Any], data: bytes, what: str, mime: str | None
    ) -> None:
        """One call to the upload gateway (the upload_token is its credential)."""
        headers = {"Content-Type": mime} if mime else {}
        try:
            response = self.request(
                "POST",
                url,
                what=what,
                params=params,
                data=data,
                headers=headers,
                allow_redirects=False,
            )
        except OutcomeUnknown as exc:
            raise Transient(str(exc), code=exc.code) from None  # re-sending a part is safe
        try:
            self.answer(response, what, False, "start_upload", None)
        except TokenRefused as refused:  # the gateway knows no access token: the upload_token
            raise Permanent(f"{what}: the upload gateway refused ({refused})") from None

    def poll(self, delivery: Delivery) -> Published | Processing:
        photo_id = delivery.progress.get("photo_id") or delivery.remote_id
        if not photo_id:
            raise Permanent(f"{self._what('poll')}: delivery {delivery.id} has no photo_id")
        return self._info(str(photo_id))

    def _info(self, photo_id: str) -> Published | Processing:
        what = self._what("photo/info")
        try:
            body = self.call("GET", "info", what=what, params={"photo_id": photo_id})
        except PhotoMissing as exc:
            raise Permanent(
                f"{what}: photo {photo_id} is not on the account any more: refused in review or"
                f" deleted ({exc})",
                code=exc.code,
            ) from None
        return self._state(photo_id, as_dict(body.get("video_info")))

    def _state(self, photo_id: str, info: dict[str, Any]) -> Published | Processing:
        if info.get("pending"):
            return Processing({"photo_id": photo_id, "pending": True}, self.settings.poll_seconds)
        created = as_int(info.get("create_time"))
        return Published(photo_id, photo_url(photo_id), _from_millis(created))

    # --- retraction -----------------------------------------------------------------------

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        """删除视频 (``photo/delete?photo_id=``). A photo already gone (作品不存在 [?]) is
        success."""
        what = self._what("retract")
        photo_id = delivery.remote_id or progress.get("photo_id")
        if not photo_id:
            raise Permanent(
                f"{what}: delivery {delivery.id} has no photo_id; delete the video in {LOOK_AT}"
                " by hand, then `kepubot delivery resolve` it"
            )
        try:
            self.call(
                "POST", "delete", what=what, publishing=True, params={"photo_id": str(photo_id)}
            )
        except PhotoMissing:
            return Retracted(how="already_gone")
        return Retracted(how="deleted")

    def find_retracted(
        self, delivery: Delivery, progress: dict[str, Any]
    ) -> Retracted | Undecided | None:
        """photo/info: 作品不存在 → retracted; the photo itself → still there."""
        photo_id = delivery.remote_id or progress.get("photo_id")
        if not photo_id:
            return Undecided(reason="no photo_id recorded", look_at=LOOK_AT)
        try:
            body = self.call(
                "GET",
                "info",
                what=self._what("retraction lookup"),
                params={"photo_id": str(photo_id)},
            )
        except PhotoMissing:
            return Retracted(how="already_gone")
        if as_dict(body.get("video_info")).get("photo_id"):
            return None
        return Undecided(reason="photo/info answered without the photo", look_at=LOOK_AT)

    # --- lookup ---------------------------------------------------------------------------

    def find(
        self, post: Post, since: datetime, progress: dict[str, Any]
    ) -> Published | Processing | Undecided | None:
        if progress.get("photo_id"):
            return Processing({"photo_id": progress["photo_id"]}, 0)
        if never_sent(progress, "upload_token", "publish_sent_at"):
            return None  # no upload_token, or uploaded but never published
        caption = self.caption(post)
        checked = ["the delivery's checkpoints: upload_token sent to photo/publish, no photo_id"]
        found = self._find_in_list(caption, since, checked)
        if found is not None:
            return found
        return Undecided(
            reason=(
                f"photo/publish may have been applied (sent {progress.get('publish_sent_at')});"
                " no photo with this caption is in the account's photo list yet, and Kuaishou"
                " may list a published photo only once it has processed it [?]"
            ),
            checked=tuple(checked),
            look_at=f"{LOOK_AT}：查找描述「{caption}」",
        )

    def _find_in_list(self, caption: str, since: datetime, checked: list[str]) -> Processing | None:
        earliest = since - FIND_CLOCK_SLACK
        cursor: str | None = None
        seen = 0
        wanted = " ".join(caption.split())
        for page in range(1, FIND_MAX_PAGES + 1):
            params: dict[str, Any] = {"count": LIST_PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            body = self.call("GET", "list", what=self._what("photo/list"), params=params)
            items = [i for i in body.get("video_list") or [] if isinstance(i, dict)]
            seen += len(items)
            older = False
            for item in items:
                created = _from_millis(as_int(item.get("create_time")))
                if created is not None and created < earliest:
                    older = True
                    continue
                if " ".join(str(item.get("caption") or "").split()) == wanted and item.get(
                    "photo_id"
                ):
                    # poll() reads photo/info for the outcome (pending or published)
                    return Processing({"photo_id": str(item["photo_id"])}, 0)
            if not items or older or len(items) < LIST_PAGE_SIZE:
                checked.append(
                    f"photo/list: {page} page(s), {seen} photos back to"
                    f" {since:%Y-%m-%d %H:%M} UTC: none with this caption"
                )
                return None
            cursor = str(items[-1].get("photo_id") or "") or None  # the oldest on the page
            if cursor is None:
                break
        checked.append(f"photo/list: the first {seen} photos, none with this caption")
        return None

    # --- figures, check -------------------------------------------------------------------

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """photo/info per photo: view_count, like_count, comment_count. The documented fields
        have no share count [src: 查询单一视频详情 lists none]; shares stay empty."""
        figures: dict[str, MetricSnapshot] = {}
        for photo_id in dict.fromkeys(d.remote_id for d in deliveries if d.remote_id):
            body = self.call(
                "GET", "info", what=self._what("photo/info"), params={"photo_id": photo_id}
            )
            info = as_dict(body.get("video_info"))
            figures[str(photo_id)] = MetricSnapshot(
                views=as_int(info.get("view_count")),
                likes=as_int(info.get("like_count")),
                comments=as_int(info.get("comment_count")),
                shares=as_int(info.get("share_count")),  # not documented [?]
                raw={
                    k: info.get(k)
                    for k in ("view_count", "like_count", "comment_count", "share_count")
                    if k in info
                },
            )
        return figures

    def account_metrics(self) -> dict[str, Any] | None:
        body = self.call("GET", "user_info", what=self._what("user_info"))
        user = as_dict(body.get("user_info"))
        followers = as_int(user.get("fan"))
        if followers is None:
            return None
        return {"followers": followers, "following": as_int(user.get("follow"))}

    def verify(self) -> str:
        what = self._what("check")
        token = self.token()
        body = self.call("GET", "list", what=what, params={"count": 1})
        videos = "has videos" if body.get("video_list") else "no videos yet"
        token = self._stored_token(token, what)
        return (
            f"app_id {self.settings.app_id} ({videos}); access token expires"
            f" {when(token.expires_at)}, refresh token expires {when(token.refresh_expires_at)}"
            " (it cannot be extended: the account must authorise again before then)"
        )

    def permissions(self) -> list[Permission]:
        stored = self._credentials().get(self.name + SCOPE_SUFFIX)
        return granted_permissions(
            stored.access_token if stored is not None else None,
            NEEDED,
            "Kuaishou reports the granted scopes with a token refresh",
        )


def _from_millis(value: int | None) -> datetime | None:
    if value is None or value <= 0:
        return None
    seconds = value / 1000 if value > 10_000_000_000 else value  # milliseconds [gk]
    return datetime.fromtimestamp(seconds, UTC)
