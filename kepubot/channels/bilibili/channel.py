"""The ``bilibili`` channel: content rules, rendering, the upload and submission flow, review
polling, lookup, figures and the credential check (docs/platforms.md §12).

Checkpoints in the delivery's progress, each saved at once:
``upload_token``/``video_sha256`` after 文件上传预处理 (with ``submit_sent_at: null``),
``uploaded_parts`` after each part, ``merged`` after 合片, ``cover_url``/``cover_sha256``
after the cover upload, ``submit_sent_at`` (the time) just before 视频稿件提交 is sent, and
``resource_id`` (the BV id) after it. Submission is never sent twice for one delivery.

An archive is reviewed after submission ("稿件提交之后会存在审核过程，期间不对外开放" [src]):
``publish`` answers Processing with the resource_id and ``poll`` reads 查询单一视频稿件详情
until the archive is open (published) or refused (Permanent with the state and the
reject_reason).

Lookup (``find``; docs/proof-of-absence.md, section Bilibili): published or processing when the resource_id
is checkpointed or the account's archive list shows an archive with this title submitted on or
after the attempt; absent only when our checkpoints prove the submission was never sent (no
upload_token, or ``submit_sent_at`` still null); otherwise undecided.

Facts marked [gk] come from general knowledge and [?] are uncertain (docs/platforms.md §1.1).
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
    markdown_to_text,
)
from kepubot.channels.bilibili.api import BilibiliApi
from kepubot.channels.bilibili.codes import (
    COVER_TYPES,
    GONE_CODE,
    MAX_COVER_BYTES,
    MAX_DESC,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE,
    MAX_VIDEO_BYTES,
    NEEDED_FOR,
    STATE_DELETED,
    STATE_OPEN,
    STATES_REFUSED,
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
from kepubot.channels.usertoken import SCOPE_SUFFIX, when
from kepubot.errors import OutcomeUnknown, Permanent, Transient
from kepubot.models import Delivery, Media, MetricSnapshot, Post

LIST_PAGE_SIZE = 20  # archives per viewlist page [gk]
FIND_MAX_PAGES = 10
FIND_CLOCK_SLACK = timedelta(minutes=5)
LOOK_AT = "哔哩哔哩创作中心（member.bilibili.com）→ 内容管理 → 稿件管理"
_UPLOAD_KEYS = ("upload_token", "uploaded_parts", "merged", "upload_started_at")
#: permissions the channel needs and what for (English, for `channels check`)
NEEDED = (
    ("ARC_BASE", frozenset({"ARC_BASE"}), "submitting and looking up archives"),
    ("DATA", frozenset({"DATA"}), "reach figures"),
)


class BilibiliChannel(BilibiliApi):
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

    def tags(self, post: Post) -> list[str]:
        return [t for t in dict.fromkeys(topic(tag) for tag in post.tags) if t]

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        video, cover = post.video, post.cover
        return Rendered(
            channel=self.name,
            kind="video",
            title=post.title.strip(),
            text=markdown_to_text(post.summary or post.body),
            link=post.link,
            media=[m.path for m in (video, cover) if m is not None],
            extra={
                "tid": self.settings.tid,
                "tag": ",".join(self.tags(post)),
                "copyright": self.settings.copyright,
                "source": self.settings.source if self.settings.copyright == 2 else "",
                "no_reprint": self.settings.no_reprint if self.settings.copyright == 1 else 0,
            },
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        rendered = self.render(post)
        if len(rendered.title) > MAX_TITLE:
            problems.append(
                Problem("title", "too_long", limit=MAX_TITLE, actual=len(rendered.title))
            )
        if len(rendered.text) > MAX_DESC:
            problems.append(
                Problem("summary", "too_long", limit=MAX_DESC, actual=len(rendered.text))
            )
        tags = self.tags(post)
        if not tags:
            problems.append(Problem("tags", "required", detail="哔哩哔哩投稿至少需要一个标签"))
        if len(tags) > MAX_TAGS:
            problems.append(Problem("tags", "too_long", limit=MAX_TAGS, actual=len(tags)))
        for tag in tags:
            if len(tag) > MAX_TAG_CHARS:
                problems.append(Problem("tags", "too_long", limit=MAX_TAG_CHARS, actual=len(tag)))
        problems += video_problems(
            post.video, VIDEO_TYPES, MAX_VIDEO_BYTES, "哔哩哔哩只发布视频，请添加 --video"
        )
        problems += cover_problems(post.cover, MAX_COVER_BYTES, "哔哩哔哩", COVER_TYPES)
        return problems

    # --- publishing -----------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published | Processing:
        what = self._what("submit")
        if progress.get("resource_id"):
            # submitted on an earlier run: never submit twice for one delivery
            return Processing({"resource_id": progress["resource_id"]}, self.settings.poll_seconds)
        post = post.for_channel(self.name)
        video, cover = post.video, post.cover
        if video is None or cover is None:
            raise Permanent(f"{what}: the post needs a video and a cover for Bilibili")
        rendered = self.render(post)
        upload_token = self._upload(video, progress)
        cover_url = self._cover(cover, progress)
        body = {
            "title": rendered.title,
            "cover": cover_url,
            "tid": rendered.extra["tid"],
            "no_reprint": rendered.extra["no_reprint"],
            "desc": rendered.text,
            "tag": rendered.extra["tag"],
            "copyright": rendered.extra["copyright"],
            "source": rendered.extra["source"],
        }
        # From here on the submission may reach Bilibili: find() can no longer prove it absent.
        checkpoint(progress, submit_sent_at=self._now().isoformat())
        data = self.call(
            "POST",
            "submit",
            what=what,
            publishing=True,
            params={"upload_token": upload_token},
            json_body=body,
        )
        resource_id = data.get("resource_id")
        if not resource_id:
            raise OutcomeUnknown(
                f"{what}: Bilibili answered success without a resource_id; cannot tell whether"
                " the archive was submitted"
            )
        checkpoint(progress, resource_id=str(resource_id), submitted_at=self._now().isoformat())
        return Processing({"resource_id": str(resource_id)}, self.settings.poll_seconds)

    def _upload(self, video: Media, progress: dict[str, Any]) -> str:
        """Pre-process, upload the parts, merge; each step checkpointed. Returns the
        upload_token the submission names."""
        forget_changed_video(progress, video, ("video_sha256", *_UPLOAD_KEYS))
        path = media_path(self, video)
        token = progress.get("upload_token")
        if not token:
            data = self.call(
                "POST",
                "init",
                what=self._what("video init"),
                json_body={"name": os.path.basename(video.name or path), "utype": "0"},
            )
            token = data.get("upload_token")
            if not token:
                raise Transient(f"{self._what('video init')}: answered without an upload_token")
            checkpoint(
                progress,
                upload_token=str(token),
                video_sha256=video.sha256,
                uploaded_parts=[],
                merged=False,
                submit_sent_at=None,  # this upload_token has not been submitted
            )
        if progress.get("merged"):
            return str(token)
        # e.g. an upload_token that expired or a merge the platform will not repeat [?]:
        # nothing was submitted (submit_sent_at is still null), so start a new upload next time
        # rather than fail for good
        with restart_upload_on_refusal(progress, _UPLOAD_KEYS):
            self._parts(path, str(token), progress)
        checkpoint(progress, merged=True)
        return str(token)

    def _parts(self, path: str, token: str, progress: dict[str, Any]) -> None:
        def send(number: int, parts: int, content: bytes) -> None:
            self.call(
                "POST",
                "part_upload",
                what=self._what(f"part {number}/{parts}"),
                params={"upload_token": token, "part_number": number},
                data=content,
            )

        # part_number from 1 [src]; always in parts, however small the file
        chunk = self.settings.chunk_size_mb * PART_UNIT
        upload_parts(progress, "uploaded_parts", path, chunk, send, first=1)
        self.call("POST", "complete", what=self._what("merge"), params={"upload_token": token})

    def _cover(self, cover: Media, progress: dict[str, Any]) -> str:
        if progress.get("cover_url") and progress.get("cover_sha256") == cover.sha256:
            return str(progress["cover_url"])
        path = media_path(self, cover)
        with open(path, "rb") as file:
            content = file.read()
        data = self.call(
            "POST",
            "cover",
            what=self._what("cover upload"),
            files={"file": (os.path.basename(path), content, cover.mime)},
        )
        url = data.get("url")
        if not url:
            raise Transient(f"{self._what('cover upload')}: answered without a url")
        checkpoint(progress, cover_url=str(url), cover_sha256=cover.sha256)
        return str(url)

    def poll(self, delivery: Delivery) -> Published | Processing:
        """The archive's review state: open → published; refused → Permanent with the reason."""
        resource_id = delivery.progress.get("resource_id") or delivery.remote_id
        if not resource_id:
            raise Permanent(f"{self._what('poll')}: delivery {delivery.id} has no resource_id")
        return self._outcome(str(resource_id))

    def _outcome(self, resource_id: str) -> Published | Processing:
        what = self._what("archive view")
        data = self.call("GET", "view", what=what, params={"resource_id": resource_id})
        return self._state(resource_id, data, what)

    def _state(self, resource_id: str, item: dict[str, Any], what: str) -> Published | Processing:
        info = as_dict(item.get("addit_info"))
        state = as_int(info.get("state"))
        if state == STATE_OPEN:
            video = as_dict(item.get("video_info"))
            url = video.get("share_url") or f"https://www.bilibili.com/video/{resource_id}"
            ptime = as_int(item.get("ptime"))
            return Published(
                resource_id, str(url), datetime.fromtimestamp(ptime, UTC) if ptime else None
            )
        if state in STATES_REFUSED:
            reason = str(info.get("reject_reason") or info.get("state_desc") or "no reason given")
            raise Permanent(
                f"{what}: archive {resource_id} was refused: {STATES_REFUSED[state]}"
                f" (state {state}); reason: {reason}",
                code=state,
            )
        return Processing(
            {
                "resource_id": resource_id,
                "review_state": state,
                "state_desc": info.get("state_desc"),
            },
            self.settings.poll_seconds,
        )

    # --- retraction -----------------------------------------------------------------------

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        """视频稿件删除 with the archive's resource_id. An archive already gone (-404 [?]) is
        success: a redo after a lost answer must not fail the retraction."""
        what = self._what("retract")
        resource_id = delivery.remote_id or progress.get("resource_id")
        if not resource_id:
            raise Permanent(
                f"{what}: delivery {delivery.id} has no resource_id; delete the archive in"
                f" {LOOK_AT} by hand, then `kepubot delivery resolve` it"
            )
        try:
            self.call(
                "POST",
                "delete",
                what=what,
                publishing=True,
                json_body={"resource_id": str(resource_id)},
            )
        except Permanent as exc:
            if exc.code == GONE_CODE:
                return Retracted(how="already_gone")
            raise
        return Retracted(how="deleted")

    def find_retracted(
        self, delivery: Delivery, progress: dict[str, Any]
    ) -> Retracted | Undecided | None:
        """查询单一视频稿件详情: gone (-404 [?]) or state -100 (用户删除) → retracted; the
        archive itself → still there."""
        what = self._what("retraction lookup")
        resource_id = delivery.remote_id or progress.get("resource_id")
        if not resource_id:
            return Undecided(reason="no resource_id recorded", look_at=LOOK_AT)
        try:
            item = self.call("GET", "view", what=what, params={"resource_id": str(resource_id)})
        except Permanent as exc:
            if exc.code == GONE_CODE:
                return Retracted(how="already_gone")
            raise
        state = as_int(as_dict(item.get("addit_info")).get("state"))
        if state == STATE_DELETED:
            return Retracted(how="deleted")
        if item.get("resource_id") or state is not None:
            return None
        return Undecided(
            reason=f"{what}: archive/view answered without the archive", look_at=LOOK_AT
        )

    # --- lookup ---------------------------------------------------------------------------

    def find(
        self, post: Post, since: datetime, progress: dict[str, Any]
    ) -> Published | Processing | Undecided | None:
        if progress.get("resource_id"):
            return self._outcome_or_processing(str(progress["resource_id"]))
        if never_sent(progress, "upload_token", "submit_sent_at"):
            return None  # no upload_token, or uploaded but never submitted
        title = self.render(post).title
        checked = ["the delivery's checkpoints: upload_token sent, no resource_id"]
        found = self._find_in_list(title, since, checked)
        if found is not None:
            return found
        return Undecided(
            reason=(
                f"视频稿件提交 may have been applied (sent {progress.get('submit_sent_at')});"
                " no archive with this title is in the account's archive list yet, and Bilibili"
                " may list a submitted archive only once it has processed it [?]"
            ),
            checked=tuple(checked),
            look_at=f"{LOOK_AT}：查找标题「{title}」",
        )

    def _outcome_or_processing(self, resource_id: str) -> Published | Processing:
        try:
            return self._outcome(resource_id)
        except Permanent:
            # refused: the archive exists; poll() records the refusal
            return Processing({"resource_id": resource_id}, 0)

    def _find_in_list(
        self, title: str, since: datetime, checked: list[str]
    ) -> Published | Processing | None:
        earliest = since - FIND_CLOCK_SLACK
        seen = 0
        for page in range(1, FIND_MAX_PAGES + 1):
            data = self.call(
                "GET",
                "list",
                what=self._what("archive list"),
                params={"pn": page, "ps": LIST_PAGE_SIZE},
            )
            items = [i for i in data.get("list") or [] if isinstance(i, dict)]
            seen += len(items)
            older = False
            for item in items:
                ctime = as_int(item.get("ctime"))
                created = datetime.fromtimestamp(ctime, UTC) if ctime else None
                if created is not None and created < earliest:
                    older = True
                    continue
                if " ".join(str(item.get("title") or "").split()) == " ".join(title.split()):
                    resource_id = str(item.get("resource_id") or "")
                    if resource_id:
                        try:
                            return self._state(resource_id, item, self._what("archive list"))
                        except Permanent:
                            return Processing({"resource_id": resource_id}, 0)
            total = as_int(as_dict(data.get("page")).get("total")) or 0
            if not items or older or seen >= total:
                checked.append(
                    f"archive list: {page} page(s), {seen} archives back to"
                    f" {since:%Y-%m-%d %H:%M} UTC: none with this title"
                )
                return None
        checked.append(f"archive list: the first {seen} archives, none with this title")
        return None

    # --- figures, check -------------------------------------------------------------------

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """获取单个稿件数据 per archive: view, like, reply, share, favorite; coin and danmaku
        kept in raw."""
        figures: dict[str, MetricSnapshot] = {}
        for resource_id in dict.fromkeys(d.remote_id for d in deliveries if d.remote_id):
            data = self.call(
                "GET",
                "arc_stat",
                what=self._what("archive data"),
                params={"resource_id": resource_id},
            )
            figures[str(resource_id)] = MetricSnapshot(
                views=as_int(data.get("view")),
                likes=as_int(data.get("like")),
                comments=as_int(data.get("reply")),
                shares=as_int(data.get("share")),
                favorites=as_int(data.get("favorite")),
                raw={
                    k: data.get(k)
                    for k in ("view", "like", "reply", "share", "favorite", "coin", "danmaku")
                    if k in data
                },
            )
        return figures

    def account_metrics(self) -> dict[str, Any] | None:
        data = self.call("GET", "user_stat", what=self._what("user data"))
        followers = as_int(data.get("follower"))
        if followers is None:
            return None
        return {
            "followers": followers,
            "following": as_int(data.get("following")),
            "archives_passed": as_int(data.get("arc_passed_total")),
        }

    def verify(self) -> str:
        what = self._what("check")
        token = self.token()
        data = self.call("GET", "scopes", what=what)
        scopes = data.get("scopes")
        if isinstance(scopes, list):
            granted = ",".join(str(s) for s in scopes)
            self._credentials().put(self.name + SCOPE_SUFFIX, type(token)(access_token=granted))
        token = self._stored_token(token, what)
        return (
            f"openid {data.get('openid') or '?'}; access token expires {when(token.expires_at)},"
            f" refresh token expires {when(token.refresh_expires_at)} (estimated [?]); tid"
            f" {self.settings.tid}"
        )

    def permissions(self) -> list[Permission]:
        stored = self._credentials().get(self.name + SCOPE_SUFFIX)
        return granted_permissions(
            stored.access_token if stored is not None else None,
            NEEDED,
            "Bilibili has not reported the granted scopes yet",
        )


__all__ = ["NEEDED_FOR", "BilibiliChannel", "cover_problems"]
