"""The WeChat Official Account channel: token, uploads, draft, publish / mass send, lookup,
datacube figures (platforms.md §2).

Publishing is a chain of steps, each checkpointed in the delivery's ``progress`` as soon as it
succeeds, so that a re-run after a crash or a retryable error resumes after the last finished
step and never makes a second draft or a second submission:

1. every inline image -> ``media/uploadimg`` (``progress["images"]``: media path -> URL);
2. the cover -> ``material/add_material?type=image`` (``thumb_media_id``);
3. ``draft/add`` (``draft_media_id``; ``draft_requested_at`` is saved just before, so that a
   re-run after an unanswered draft/add first looks for that draft in ``draft/batchget``);
4. by ``mode``: ``freepublish/submit`` (``publish_id``; then ``poll``), ``message/mass/sendall``
   (``msg_id``, with ``clientmsgid`` = the delivery's idempotency key) or nothing (``draft``).

The token and the single API call are in ``api.py``; matching datacube rows in ``datacube.py``.
"""

from __future__ import annotations

import hashlib
import html as htmllib
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from kepubot.channels.base import (
    Permission,
    Problem,
    Processing,
    Published,
    Rendered,
    checkpoint,
    markdown_to_text,
)
from kepubot.channels.wechat.api import WechatApi, WechatSettings, as_int, errcode_of
from kepubot.channels.wechat.codes import PUBLISH_STATUS
from kepubot.channels.wechat.content import (
    MAX_CONTENT,
    MEDIA_PLACEHOLDER,
    article_html,
    content_problems,
    digest,
    placeholder,
    thumb,
)
from kepubot.channels.wechat.datacube import matching_row, sent_on, snapshot
from kepubot.errors import OutcomeUnknown, Permanent, Transient
from kepubot.models import Delivery, Media, MetricSnapshot, Post

BATCH_COUNT = 20  # batchget's maximum count [src]
BATCH_PAGES = 5  # at most 100 recent items are searched
CLIENTMSGID_BYTES = 64  # clientmsgid length limit [gk]
MASS_DEDUP_WINDOW = timedelta(hours=24)  # clientmsgid repeats are refused for 24 h [gk]
DRAFT_LOOKBACK = timedelta(minutes=10)  # clock differences when looking for our own draft
MASS_FAILED = "SEND_FAIL"  # message/mass/get msg_status of a failed send [gk]


#: what a harmless read answers when the account lacks (48001) or was banned from (48004) an
#: interface [src: platforms.md §2 errors]
PERMISSION_ERRCODES = frozenset({48001, 48004})
INVALID_MEDIA_ID = 40007  # the media_id (here: our draft) does not exist (any more)


class WechatChannel(WechatApi):
    Settings = WechatSettings
    settings: WechatSettings
    can_find: ClassVar[bool] = True
    asynchronous: ClassVar[bool] = True
    daily_metrics: ClassVar[bool] = True

    @classmethod
    def type_name(cls) -> str:
        return "wechat"

    # --- content ----------------------------------------------------------------------------

    def thumb(self, post: Post) -> Media | None:
        return thumb(post)

    def digest(self, post: Post) -> str:
        return digest(post)

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        html, inline = article_html(post)
        cover = thumb(post)
        media = ([cover.path] if cover else []) + [
            p for p in inline if not cover or p != cover.path
        ]
        return Rendered(
            channel=self.name,
            kind="article",
            title=post.title,
            text=markdown_to_text(post.body),
            html=html,
            link=post.link,
            media=media,
            extra={
                "digest": digest(post),
                "author": self.settings.author,
                "content_source_url": post.link,
                "thumb": cover.path if cover else None,
            },
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        return super().check(post) + content_problems(post, self.settings.author)

    # --- publishing -------------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published | Processing:
        what = self._what("publish")
        # A submitted publish task or a mass send is never repeated: poll / report it.
        if progress.get("publish_id"):
            return Processing(
                progress={"publish_id": progress["publish_id"]},
                poll_after_seconds=self.settings.poll_seconds,
            )
        if progress.get("msg_id"):
            return Published(remote_id=str(progress["msg_id"]), published_at=self._now())
        post = post.for_channel(self.name)
        problems = self.check(post)
        if problems:
            raise Permanent(
                f"{what}: the post breaks the platform's rules: "
                + "; ".join(p.describe("en") for p in problems)
            )
        draft = (
            progress.get("draft_media_id")
            or self._earlier_draft(post, progress)
            or self._add_draft(post, progress)
        )
        if self.settings.mode == "draft":
            # Left in the draft box for a person: the remote id says so.
            return Published(remote_id=f"draft:{draft}", remote_url=None, published_at=self._now())
        if self.settings.mode == "masssend":
            return self._mass_send(draft, progress)
        return self._submit(draft, progress)

    def _add_draft(self, post: Post, progress: dict[str, Any]) -> str:
        what = self._what("draft/add")
        html, inline = article_html(post)
        by_path = {m.path: m for m in post.media}
        images: dict[str, str] = dict(progress.get("images") or {})
        for path in dict.fromkeys(inline):
            if path in images:
                continue
            answer = self._call(
                "POST",
                "cgi-bin/media/uploadimg",
                step=f"media/uploadimg {path}",
                kind="upload",
                upload=by_path[path],
            )
            images[path] = self._field(answer, "url", f"media/uploadimg {path}", "upload")
            checkpoint(progress, images=dict(images))
        thumb_media_id = progress.get("thumb_media_id")
        if not thumb_media_id:
            cover = thumb(post)
            assert cover is not None  # check() requires one
            answer = self._call(
                "POST",
                "cgi-bin/material/add_material",
                step="material/add_material",
                kind="upload",
                params={"type": "image"},
                upload=cover,
            )
            thumb_media_id = self._field(answer, "media_id", "material/add_material", "upload")
            checkpoint(progress, thumb_media_id=thumb_media_id)
        content = html
        for path, url in images.items():
            content = content.replace(placeholder(path), htmllib.escape(url))
        if MEDIA_PLACEHOLDER in content:
            raise Permanent(f"{what}: an image of the article was not uploaded")
        if len(content) > MAX_CONTENT:
            # The image URLs are longer than the placeholders check() measured.
            raise Permanent(
                f"{what}: the article HTML has {len(content)} characters with the image URLs;"
                f" the limit is {MAX_CONTENT}"
            )
        article = {
            "article_type": "news",
            "title": post.title,
            "author": self.settings.author,
            "digest": digest(post),
            "content": content,
            "content_source_url": post.link,
            "thumb_media_id": thumb_media_id,
            "need_open_comment": int(self.settings.need_open_comment),
            "only_fans_can_comment": int(self.settings.only_fans_can_comment),
        }
        # Saved before the call: if its answer is lost, the re-run looks for this draft first.
        checkpoint(progress, draft_requested_at=int(self._now().timestamp()), title=post.title)
        answer = self._call(
            "POST",
            "cgi-bin/draft/add",
            step="draft/add",
            kind="create",
            body={"articles": [article]},
        )
        media_id = self._field(answer, "media_id", "draft/add", "create")
        checkpoint(progress, draft_media_id=media_id)
        self.log.info("%s: draft %s created", what, media_id)
        return media_id

    def _earlier_draft(self, post: Post, progress: dict[str, Any]) -> str | None:
        """The draft an earlier, unanswered draft/add made, if the draft box has it."""
        requested = progress.get("draft_requested_at")
        if not requested:
            return None
        since = datetime.fromtimestamp(int(requested), UTC) - DRAFT_LOOKBACK
        found = self._batchget("cgi-bin/draft/batchget", post.title, since)
        if found is None:
            return None
        media_id = str(found[0].get("media_id") or "")
        if not media_id:
            return None
        checkpoint(progress, draft_media_id=media_id)
        self.log.info(
            "%s: reusing draft %s made by an earlier attempt", self._what("publish"), media_id
        )
        return media_id

    def _submit(self, draft: str, progress: dict[str, Any]) -> Processing:
        answer = self._call(
            "POST",
            "cgi-bin/freepublish/submit",
            step="freepublish/submit",
            kind="create",
            body={"media_id": draft},
            accept=frozenset({INVALID_MEDIA_ID}),
        )
        if errcode_of(answer) == INVALID_MEDIA_ID:
            # Our own draft is gone: a draft leaves the box when it is submitted, so an earlier
            # submission whose answer was lost probably took it. Never a content failure.
            raise OutcomeUnknown(
                f"{self._what('freepublish/submit')}: the saved draft is no longer in the draft"
                " box; an earlier submission probably took it"
            )
        # errcode 0 only means the task was accepted; the result comes from freepublish/get.
        publish_id = self._field(answer, "publish_id", "freepublish/submit", "create")
        values = {"publish_id": publish_id, "sent_on": self._today().isoformat()}
        if answer.get("msg_data_id") not in (None, ""):
            values["msg_data_id"] = str(answer["msg_data_id"])
        checkpoint(progress, **values)
        return Processing(
            progress={"publish_id": publish_id}, poll_after_seconds=self.settings.poll_seconds
        )

    def _mass_send(self, draft: str, progress: dict[str, Any]) -> Published:
        what = self._what("message/mass/sendall")
        tag = self.settings.mass_tag_id
        body = {
            "filter": {"is_to_all": True} if tag is None else {"is_to_all": False, "tag_id": tag},
            "mpnews": {"media_id": draft},  # the draft's media_id [gk]
            "msgtype": "mpnews",
            "send_ignore_reprint": int(self.settings.send_ignore_reprint),
            "clientmsgid": clientmsgid(progress),
        }
        answer = self._call(
            "POST",
            "cgi-bin/message/mass/sendall",
            step="message/mass/sendall",
            kind="create",
            body=body,
            accept=frozenset({45065}),
        )
        msg_id = answer.get("msg_id")
        if errcode_of(answer) == 45065:
            # The same clientmsgid was sent before: that earlier send is this delivery.
            if msg_id in (None, ""):
                raise OutcomeUnknown(
                    f"{what}: the platform already has a mass send with this clientmsgid but did"
                    " not say which (errcode 45065)",
                    code=45065,
                )
            self.log.warning(
                "%s: already sent earlier as msg_id %s (errcode 45065); not sending again",
                what,
                msg_id,
            )
        elif msg_id in (None, ""):
            raise OutcomeUnknown(f"{what}: accepted without a msg_id")
        values = {"msg_id": str(msg_id)}
        if answer.get("msg_data_id") not in (None, ""):
            values["msg_data_id"] = str(answer["msg_data_id"])
        if not progress.get("sent_on"):
            values["sent_on"] = self._today().isoformat()
        checkpoint(progress, **values)
        return Published(remote_id=str(msg_id), remote_url=None, published_at=self._now())

    def poll(self, delivery: Delivery) -> Published | Processing:
        what = self._what("freepublish/get")
        publish_id = delivery.progress.get("publish_id")
        if not publish_id:
            raise Permanent(f"{what}: delivery {delivery.id} has no publish_id to poll")
        answer = self._publish_task(str(publish_id))
        status = as_int(answer.get("publish_status"), -1)
        if status == 0:
            return self._published(answer)
        if status == 1:
            return Processing(poll_after_seconds=self.settings.poll_seconds)
        if status in PUBLISH_STATUS:
            message = f"{what}: publish task {publish_id} {PUBLISH_STATUS[status]}"
            failed = answer.get("fail_idx")
            # fail_idx (1-based) is meaningful for statuses 2 and 4 only [src].
            if status in (2, 4) and isinstance(failed, list) and failed:
                message += f"; failing article index {', '.join(str(i) for i in failed)}"
            raise Permanent(f"{message} (publish_status {status})", code=status)
        raise Transient(
            f"{what}: publish task {publish_id} has an undocumented publish_status"
            f" {answer.get('publish_status')!r}; polling again later"
        )

    def _publish_task(self, publish_id: str) -> dict[str, Any]:
        return self._call(
            "POST",
            "cgi-bin/freepublish/get",
            step="freepublish/get",
            kind="read",
            body={"publish_id": publish_id},
        )

    def _published(self, answer: dict[str, Any]) -> Published:
        article_id = answer.get("article_id")
        if article_id in (None, ""):
            raise Transient(f"{self._what('freepublish/get')}: success without an article_id")
        detail = answer.get("article_detail")
        items = detail.get("item") if isinstance(detail, dict) else None
        urls = sorted(
            (as_int(item.get("idx"), 0), str(item.get("article_url") or ""))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        )
        url = next((u for _, u in urls if u), None)
        return Published(remote_id=str(article_id), remote_url=url, published_at=self._now())

    # --- reconciliation ---------------------------------------------------------------------

    def find(self, post: Post, since: datetime, progress: dict[str, Any]) -> Published | None:
        what = self._what("find")
        post = post.for_channel(self.name)
        publish_id = progress.get("publish_id")
        if publish_id:
            answer = self._publish_task(str(publish_id))
            if as_int(answer.get("publish_status"), -1) == 0:
                return self._published(answer)
            # Not (yet) published: a new attempt resumes from publish_id, polls, and reports
            # the failure if there is one. It never submits again.
            return None
        msg_id = progress.get("msg_id")
        if msg_id:
            answer = self._call(
                "POST",
                "cgi-bin/message/mass/get",
                step="message/mass/get",
                kind="read",
                body={"msg_id": as_int(msg_id, 0) or msg_id},
            )
            status = str(answer.get("msg_status") or "")
            if status == MASS_FAILED:
                raise Permanent(
                    f"{what}: mass send {msg_id} failed on the platform ({status}); a person must"
                    " decide whether to send it again"
                )
            return Published(remote_id=str(msg_id), remote_url=None)
        if self.settings.mode == "draft":
            draft = progress.get("draft_media_id")
            if draft:
                return Published(remote_id=f"draft:{draft}", remote_url=None)
            found = self._batchget("cgi-bin/draft/batchget", post.title, since)
            if found is None:
                return None
            return Published(remote_id=f"draft:{found[0].get('media_id')}", remote_url=None)
        found = self._batchget("cgi-bin/freepublish/batchget", post.title, since)
        if found is not None:
            item, news = found
            return Published(
                remote_id=str(item.get("article_id")),
                remote_url=str(news.get("url") or "") or None,
                published_at=datetime.fromtimestamp(as_int(item.get("update_time"), 0), UTC),
            )
        draft = progress.get("draft_media_id")
        if self.settings.mode == "freepublish" and draft and not self._draft_exists(str(draft)):
            # The draft left the box, so a submission was accepted, but its article is not
            # listed yet (publishing takes a while): undecided for now, ask again later.
            raise Transient(
                f"{what}: the draft was submitted but its article is not listed yet; looking again"
                " later"
            )
        if self.settings.mode == "masssend" and self._now() - since > MASS_DEDUP_WINDOW:
            # A new attempt is safe only while the platform still refuses a repeated
            # clientmsgid (45065); after that, a person decides.
            raise OutcomeUnknown(
                f"{what}: cannot tell whether the mass send went out, and a new attempt would no"
                " longer be recognised as a repeat"
            )
        return None

    def _draft_exists(self, media_id: str) -> bool:
        answer = self._call(
            "POST",
            "cgi-bin/draft/get",
            step="draft/get",
            kind="read",
            body={"media_id": media_id},
            accept=frozenset({INVALID_MEDIA_ID}),
        )
        return errcode_of(answer) != INVALID_MEDIA_ID

    def _batchget(
        self, path: str, title: str, since: datetime
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The newest item (and its article) titled ``title`` updated at or after ``since``."""
        step = path.removeprefix("cgi-bin/")
        cutoff = since.timestamp()
        offset = 0
        for _ in range(BATCH_PAGES):
            answer = self._call(
                "POST",
                path,
                step=step,
                kind="read",
                body={"offset": offset, "count": BATCH_COUNT, "no_content": 0},
            )
            items = answer.get("item")
            if not isinstance(items, list) or not items:
                return None
            newest = 0
            for item in items:
                if not isinstance(item, dict):
                    continue
                updated = as_int(item.get("update_time"), 0)
                newest = max(newest, updated)
                if updated < cutoff:
                    continue
                content = item.get("content")
                news = content.get("news_item") if isinstance(content, dict) else None
                for article in news if isinstance(news, list) else []:
                    if (
                        isinstance(article, dict)
                        and str(article.get("title") or "").strip() == title.strip()
                        and not article.get("is_deleted")
                    ):
                        return item, article
            offset += len(items)
            # Items come newest first [gk]: once a page is older than since, stop.
            if offset >= as_int(answer.get("total_count"), 0) or newest < cutoff:
                return None
        return None

    # --- figures ----------------------------------------------------------------------------

    def account_metrics(self) -> dict[str, Any] | None:
        """Followers gained yesterday (``datacube/getusersummary``: new minus cancelled, over
        every source; T+1, so the figure collected today is yesterday's)."""
        yesterday = (self._today() - timedelta(days=1)).isoformat()
        answer = self._call(
            "POST",
            "datacube/getusersummary",
            step="datacube/getusersummary",
            kind="read",
            body={"begin_date": yesterday, "end_date": yesterday},
        )
        rows = [r for r in answer.get("list") or [] if isinstance(r, dict)]
        gained = sum(as_int(r.get("new_user"), 0) - as_int(r.get("cancel_user"), 0) for r in rows)
        return {"followers_gained": gained, "ref_date": yesterday}

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """Totals from ``datacube/getarticletotal``, one call per sending day (begin_date ==
        end_date), never for today: the platform has data up to yesterday only (T+1)."""
        yesterday = self._today() - timedelta(days=1)
        by_day: dict[date, list[Delivery]] = {}
        for delivery in deliveries:
            if not delivery.remote_id or delivery.remote_id.startswith("draft:"):
                continue
            day = sent_on(delivery)
            if day is None or day > yesterday:
                continue
            by_day.setdefault(day, []).append(delivery)
        figures: dict[str, MetricSnapshot] = {}
        for day in sorted(by_day):
            answer = self._call(
                "POST",
                "datacube/getarticletotal",
                step="datacube/getarticletotal",
                kind="read",
                body={"begin_date": day.isoformat(), "end_date": day.isoformat()},
            )
            rows = [r for r in answer.get("list") or [] if isinstance(r, dict)]
            for delivery in by_day[day]:
                row = matching_row(rows, delivery.progress)
                figure = snapshot(row, yesterday) if row is not None else None
                if figure is not None and delivery.remote_id:
                    figures[delivery.remote_id] = figure
        return figures

    # --- credentials ------------------------------------------------------------------------

    def verify(self) -> str:
        """Fetch (or refresh) the token through the store, then make one harmless call."""
        if self.settings.token_endpoint == "stable_token":
            # Normal-mode stable_token hands back the current token, so asking again is
            # harmless and proves the app secret.
            token = self._refresh(self._context().credentials.get(self.name))
        else:
            # cgi-bin/token: a fetch would replace the token the daemons use, so only an
            # expiring token is renewed; the draft/count call below still proves the token.
            token = self._token()
        answer = self._call(
            "GET",
            "cgi-bin/draft/count",
            step="draft/count",
            kind="read",
            accept=PERMISSION_ERRCODES,  # the token works; the missing permission is listed
        )
        drafts = (
            "no draft-box permission"
            if errcode_of(answer) in PERMISSION_ERRCODES
            else f"{as_int(answer.get('total_count'), 0)} drafts in the box"
        )
        expires = (
            token.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if token.expires_at
            else "unknown"
        )
        return (
            f"app {self.settings.app_id}: access token valid until {expires}"
            f" ({self.settings.token_endpoint}, shared through the credentials store);"
            f" mode {self.settings.mode}; {drafts}"
        )

    def permissions(self) -> list[Permission]:
        """One harmless read per interface the configured mode uses; 48001/48004 means the
        account lacks it. Mass sending cannot be probed without sending."""
        yesterday = (self._today() - timedelta(days=1)).isoformat()
        probes: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
            ("draft (草稿箱)", "writing the article draft", "GET", "cgi-bin/draft/count", None),
            (
                "material (永久素材)",
                "uploading the cover image",
                "GET",
                "cgi-bin/material/get_materialcount",
                None,
            ),
        ]
        if self.settings.mode == "freepublish":
            probes.append(
                (
                    "freepublish (发布能力)",
                    "publishing the article",
                    "POST",
                    "cgi-bin/freepublish/batchget",
                    {"offset": 0, "count": 1, "no_content": 1},
                )
            )
        probes.append(
            (
                "datacube (数据统计)",
                "collecting reach figures",
                "POST",
                "datacube/getusersummary",
                {"begin_date": yesterday, "end_date": yesterday},
            )
        )
        found: list[Permission] = []
        for name, needed_for, method, path, body in probes:
            step = path.removeprefix("cgi-bin/")
            try:
                answer = self._call(
                    method, path, step=step, kind="read", body=body, accept=PERMISSION_ERRCODES
                )
            except (Transient, Permanent) as exc:
                found.append(Permission(name, needed_for, None, f"not checked: {exc}"))
                continue
            code = errcode_of(answer)
            if code in PERMISSION_ERRCODES:
                found.append(Permission(name, needed_for, False, f"{path}: errcode {code}"))
            else:
                found.append(Permission(name, needed_for, True))
        if self.settings.mode == "masssend":
            found.append(
                Permission(
                    "mass send (群发)",
                    "sending the article",
                    None,
                    "cannot be checked without sending; 48001/48003 at the first send say so",
                )
            )
        return found


def clientmsgid(progress: dict[str, Any]) -> str:
    """The mass send's clientmsgid: the delivery's idempotency key (hashed if too long)."""
    key = progress.get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise ValueError("progress has no idempotency_key; the daemon must set it before the call")
    if len(key.encode("utf-8")) <= CLIENTMSGID_BYTES:
        return key
    return "kepubot-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:48]
