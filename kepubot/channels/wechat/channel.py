"""The WeChat Official Account channel: token, uploads, draft, publish / mass send, lookup,
datacube figures (docs/platforms.md §3).

Publishing is a chain of steps, each checkpointed in the delivery's ``progress`` as soon as it
succeeds, so that a re-run after a crash or a retryable error resumes after the last finished
step and never makes a second draft or a second submission:

1. every inline image -> ``media/uploadimg`` (``progress["images"]``: media path -> URL);
2. the cover -> ``material/add_material?type=image`` (``thumb_media_id``);
3. ``draft/add`` (``draft_media_id``; ``draft_requested_at`` is saved just before, so that a
   re-run after an unanswered draft/add first looks for that draft in ``draft/batchget``);
4. by ``mode``: ``freepublish/submit`` (``publish_id``; then ``poll`` with ``freepublish/get``),
   ``message/mass/sendall`` (``msg_id``, with ``clientmsgid`` = the delivery's idempotency key;
   then ``poll`` with ``message/mass/get``, since under 「API群发保护」 an administrator must
   confirm the send) or nothing (``draft``). A mark (``submit_requested_at`` /
   ``mass_requested_at``) is saved just before either call, so that reconciliation can prove
   a call that never left; an accepted call is never repeated on a guess (``find``).

The token and the single API call are in ``api.py``; matching datacube rows in ``datacube.py``.
"""

from __future__ import annotations

import hashlib
import html as htmllib
from datetime import UTC, date, datetime, timedelta
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
from kepubot.channels.wechat.api import WechatApi, WechatSettings, as_int, errcode_of
from kepubot.channels.wechat.codes import ELIGIBILITY, PUBLISH_STATUS
from kepubot.channels.wechat.content import (
    MAX_CONTENT,
    MEDIA_PLACEHOLDER,
    article_html,
    content_problems,
    digest,
    placeholder,
    thumb,
)
from kepubot.channels.wechat.datacube import (
    ARTICLE_SOURCE,
    days_to_ask,
    followers,
    matching_row,
    snapshot,
)
from kepubot.errors import ChannelError, OutcomeUnknown, Permanent, Transient
from kepubot.models import Delivery, Media, MetricSnapshot, Post

BATCH_COUNT = 20  # batchget's maximum count [src]
BATCH_PAGES = 5  # at most 100 recent items are searched
CLIENTMSGID_BYTES = 64  # clientmsgid length limit [gk]
MASS_DEDUP_WINDOW = timedelta(hours=24)  # clientmsgid repeats are refused for 24 h [gk]
DRAFT_LOOKBACK = timedelta(minutes=10)  # clock differences when looking for our own draft
# message/mass/get msg_status values [src: developers.weixin.qq.com/doc/service/api/notify/
# message/api_massmsgget]
MASS_SENT = "SEND_SUCCESS"
MASS_SENDING = "SENDING"  # also while 「API群发保护」 waits for the administrator [gk]
MASS_FAILED = "SEND_FAIL"  # includes refused / not confirmed within 30 minutes
MASS_DELETED = "DELETE"
MASS_DEDUP_MARGIN = timedelta(hours=1)  # act on the clientmsgid window well before it ends
# Checkpoints saved *before* a creating call (seconds since the epoch): without one, that call
# was never sent. MARKS says the progress was written by a version that sets them.
SUBMIT_MARK = "submit_requested_at"
MASS_MARK = "mass_requested_at"
MASS_DRAFT_GONE = "mass_draft_gone_at"  # a repeated sendall found the draft gone (40007)
MARKS = "send_marks"


#: what a harmless read answers when the account lacks (48001) or was banned from (48004) an
#: interface [src: docs/platforms.md §3.2]
PERMISSION_ERRCODES = frozenset({48001, 48004})
INVALID_MEDIA_ID = 40007  # the media_id (here: our draft) does not exist (any more)
INVALID_ARTICLE_ID = 53600  # freepublish: no such article_id (deleted or never published)
INVALID_MSG_ID = 40059  # mass send: no such msg_id, or one that cannot be deleted


class WechatChannel(WechatApi):
    channel_type = "wechat"
    Settings = WechatSettings
    settings: WechatSettings
    capabilities = Capabilities(
        find=True,
        poll=True,
        metrics=True,
        daily_metrics=True,
        account_metrics=True,
        verify=True,
        permissions=True,
        retract=True,
        find_retracted=True,
    )

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
            return Processing(
                progress={"msg_id": progress["msg_id"]},
                poll_after_seconds=self.settings.poll_seconds,
            )
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
        checkpoint(
            progress,
            draft_requested_at=int(self._now().timestamp()),
            title=post.title,
            **{MARKS: 1},
        )
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
        # The mark is saved before the call: without it, reconciliation knows for certain that
        # no submission was ever sent for this delivery (proof of absence); with it, only the
        # platform can say (freepublish/batchget, draft/get), and the submission is never
        # repeated on a guess.
        checkpoint(progress, **{SUBMIT_MARK: int(self._now().timestamp()), MARKS: 1})
        try:
            answer = self._call(
                "POST",
                "cgi-bin/freepublish/submit",
                step="freepublish/submit",
                kind="create",
                body={"media_id": draft},
                accept=frozenset({INVALID_MEDIA_ID}),
            )
        except ChannelError as exc:
            if not isinstance(exc, OutcomeUnknown):
                # refused, or never sent: nothing was applied, so the mark must not stand
                checkpoint(progress, **{SUBMIT_MARK: None})
            raise
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

    def _mass_send(self, draft: str, progress: dict[str, Any]) -> Processing:
        """Send the draft to followers. The answer's msg_id only means the job was accepted:
        with 「API群发保护」 an administrator must confirm it within 30 minutes, so the delivery
        stays processing until ``message/mass/get`` tells (``poll``)."""
        what = self._what("message/mass/sendall")
        tag = self.settings.mass_tag_id
        body = {
            "filter": {"is_to_all": True} if tag is None else {"is_to_all": False, "tag_id": tag},
            "mpnews": {"media_id": draft},  # the draft's media_id [gk]
            "msgtype": "mpnews",
            "send_ignore_reprint": int(self.settings.send_ignore_reprint),
            "clientmsgid": clientmsgid(progress),
        }
        # Saved before the call, and kept from the first send: the clientmsgid window (in which
        # the platform refuses a repeat with 45065) is counted from the first sendall.
        first = progress.get(MASS_MARK) or int(self._now().timestamp())
        checkpoint(progress, **{MASS_MARK: first, MARKS: 1})
        answer = self._call(
            "POST",
            "cgi-bin/message/mass/sendall",
            step="message/mass/sendall",
            kind="create",
            body=body,
            accept=frozenset({45065, INVALID_MEDIA_ID}),
        )
        msg_id = answer.get("msg_id")
        code = errcode_of(answer)
        if code == INVALID_MEDIA_ID:
            # The draft left the box: an earlier send whose answer was lost took it [gk: the
            # platform may check the draft before the clientmsgid]. Never a content failure.
            # Noted, so that reconciliation does not count on the clientmsgid check again (the
            # repeat would answer 40007 again, round and round).
            checkpoint(progress, **{MASS_DRAFT_GONE: int(self._now().timestamp())})
            raise OutcomeUnknown(
                f"{what}: the saved draft is no longer in the draft box; an earlier send probably"
                " took it",
                code=code,
            )
        if code == 45065:
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
        return Processing(
            progress={"msg_id": str(msg_id)}, poll_after_seconds=self.settings.poll_seconds
        )

    def poll(self, delivery: Delivery) -> Published | Processing:
        """Follow an accepted job: a freepublish task (``freepublish/get``) or a mass send
        (``message/mass/get``)."""
        publish_id = delivery.progress.get("publish_id")
        if publish_id:
            return self._publish_outcome(str(publish_id))
        msg_id = delivery.progress.get("msg_id")
        if msg_id:
            return self._mass_outcome(str(msg_id))
        raise Permanent(
            f"{self._what('poll')}: delivery {delivery.id} has neither a publish_id nor a msg_id"
        )

    def _publish_outcome(self, publish_id: str) -> Published | Processing:
        what = self._what("freepublish/get")
        answer = self._publish_task(publish_id)
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

    def _mass_outcome(self, msg_id: str) -> Published | Processing:
        """``message/mass/get``: SEND_SUCCESS, SENDING, SEND_FAIL or DELETE [src: api_massmsgget]."""
        what = self._what("message/mass/get")
        answer = self._call(
            "POST",
            "cgi-bin/message/mass/get",
            step="message/mass/get",
            kind="read",
            body={"msg_id": msg_id},
        )
        status = str(answer.get("msg_status") or "")
        if status == MASS_SENT:
            return Published(remote_id=msg_id, remote_url=None, published_at=self._now())
        if status == MASS_SENDING:
            # With 「API群发保护」 the send waits here for an administrator (at most 30 minutes).
            return Processing(poll_after_seconds=self.settings.poll_seconds)
        if status == MASS_FAILED:
            raise Permanent(
                f"{what}: mass send {msg_id} failed ({status}): with 「API群发保护」 the"
                " administrator refused it or did not confirm it within 30 minutes; otherwise"
                " the platform refused it. Nothing was sent again; `kepubot delivery retry`"
                " sends it anew",
            )
        if status == MASS_DELETED:
            raise Permanent(
                f"{what}: mass send {msg_id} was deleted after sending ({status}); not sending"
                " it again"
            )
        raise Transient(
            f"{what}: mass send {msg_id} has an undocumented msg_status {status!r}; polling again"
            " later"
        )

    # --- retraction (docs/delivery.md §14) ------------------------------------------------
    # freepublish: freepublish/delete {article_id, index 0 = every article}; gone when
    # freepublish/getarticle answers 53600 or every news_item is_deleted. Mass send:
    # message/mass/delete {msg_id, article_idx 0}; gone when message/mass/get answers DELETE.
    # Deleting a mass send makes its article page invalid; followers keep the card they got
    # (the docs say so), which is why the post also needs a correction.

    def _retract_target(self, delivery: Delivery) -> tuple[str, str]:
        remote = delivery.remote_id or ""
        if delivery.progress.get("msg_id") and not remote.startswith("draft:"):
            return "mass", str(delivery.progress["msg_id"])
        if remote.startswith("draft:"):
            return "draft", remote.removeprefix("draft:")
        if remote:
            return "freepublish", remote
        raise Permanent(
            f"{self._what('retract')}: delivery {delivery.id} has no article_id or msg_id; delete"
            " it in the WeChat console by hand, then `kepubot delivery resolve` it"
        )

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        kind, ident = self._retract_target(delivery)
        if kind == "draft":
            answer = self._call(
                "POST",
                "cgi-bin/draft/delete",
                step="draft/delete",
                kind="create",
                body={"media_id": ident},
                accept=frozenset({INVALID_MEDIA_ID}),
            )
            gone = errcode_of(answer) == INVALID_MEDIA_ID
            return Retracted(how="already_gone" if gone else "deleted")
        if kind == "freepublish":
            answer = self._call(
                "POST",
                "cgi-bin/freepublish/delete",
                step="freepublish/delete",
                kind="create",
                body={"article_id": ident, "index": 0},
                accept=frozenset({INVALID_ARTICLE_ID}),
            )
            gone = errcode_of(answer) == INVALID_ARTICLE_ID
            return Retracted(how="already_gone" if gone else "deleted")
        msg_id = as_int(ident, -1)
        answer = self._call(
            "POST",
            "cgi-bin/message/mass/delete",
            step="message/mass/delete",
            kind="create",
            body={"msg_id": msg_id, "article_idx": 0},
            accept=frozenset({INVALID_MSG_ID}),
        )
        if errcode_of(answer) == INVALID_MSG_ID:
            # 40059 also answers a send already deleted: look before calling it a refusal
            if self._mass_status(ident) == MASS_DELETED:
                return Retracted(how="already_gone")
            raise Permanent(
                f"{self._what('message/mass/delete')}: mass send {ident} cannot be deleted"
                " (40059: only a send that succeeded can be); check the WeChat console"
            )
        return Retracted(how="deleted")

    def find_retracted(
        self, delivery: Delivery, progress: dict[str, Any]
    ) -> Retracted | Undecided | None:
        kind, ident = self._retract_target(delivery)
        if kind == "draft":
            return Retracted(how="already_gone") if not self._draft_exists(ident) else None
        if kind == "mass":
            status = self._mass_status(ident)
            if status == MASS_DELETED:
                return Retracted(how="already_gone")
            if status == MASS_SENT:
                return None
            return Undecided(
                reason=f"message/mass/get answers {status!r}",
                look_at="the WeChat console, 已群发消息",
            )
        answer = self._call(
            "POST",
            "cgi-bin/freepublish/getarticle",
            step="freepublish/getarticle",
            kind="read",
            body={"article_id": ident},
            accept=frozenset({INVALID_ARTICLE_ID}),
        )
        if errcode_of(answer) == INVALID_ARTICLE_ID:
            return Retracted(how="already_gone")
        items = answer.get("news_item")
        if (
            isinstance(items, list)
            and items
            and all(isinstance(i, dict) and i.get("is_deleted") for i in items)
        ):
            return Retracted(how="deleted")
        if isinstance(items, list) and items:
            return None
        return Undecided(
            reason="freepublish/getarticle answered without news_item",
            look_at="the WeChat console, 发表记录",
        )

    def _mass_status(self, msg_id: str) -> str:
        answer = self._call(
            "POST",
            "cgi-bin/message/mass/get",
            step="message/mass/get",
            kind="read",
            body={"msg_id": msg_id},
            accept=frozenset({INVALID_MSG_ID}),
        )
        if errcode_of(answer) == INVALID_MSG_ID:
            return "UNKNOWN_MSG_ID"
        return str(answer.get("msg_status") or "")

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
    #
    # What proves that a request whose answer was lost was never applied (so that sending it
    # again cannot publish twice), per mode; everything else is Undecided (docs/
    # proof-of-absence.md, section WeChat):
    #
    # - A job id we hold is asked directly: freepublish/get (publish_id), message/mass/get
    #   (msg_id) -> Published or Processing (polled to its outcome).
    # - No checkpointed draft media_id: no freepublish/submit or sendall was ever sent (both
    #   need it, and it is saved the moment draft/add answers) -> absent.
    # - Progress marked by this version (MARKS) but without the submit/sendall mark, which is
    #   saved before the call -> the call never left -> absent.
    # - freepublish/batchget lists our article -> Published.
    # - Mass send within the clientmsgid window: a new attempt repeats the same clientmsgid,
    #   which the platform refuses with 45065 and the first msg_id if the first send was
    #   applied -> absent is safe to act on (the repeat cannot send twice).
    # - Not proof: the draft still in the box and no article in batchget. The draft docs say a
    #   draft leaves the box once it has been published or mass-sent (上传到草稿箱中的素材被
    #   群发或发布后，该素材将从草稿箱中移除 [src: draft_add doc]); they do not say whether that
    #   happens at submit or when the job ends [gk], and a job appears in batchget only when it
    #   finishes. A draft that left the box proves a submission (or a person's deletion) but not
    #   its outcome. Both stay Undecided until settle_minutes, then a person decides.

    def find(
        self, post: Post, since: datetime, progress: dict[str, Any]
    ) -> Published | Processing | Undecided | None:
        post = post.for_channel(self.name)
        publish_id = progress.get("publish_id")
        if publish_id:
            # The task exists: poll() follows it to success or to a failure with its reason.
            # It is never submitted again.
            answer = self._publish_task(str(publish_id))
            if as_int(answer.get("publish_status"), -1) == 0:
                return self._published(answer)
            return Processing(
                progress={"publish_id": str(publish_id)},
                poll_after_seconds=self.settings.poll_seconds,
            )
        msg_id = progress.get("msg_id")
        if msg_id:
            return Processing(
                progress={"msg_id": str(msg_id)}, poll_after_seconds=self.settings.poll_seconds
            )
        draft = progress.get("draft_media_id")
        if self.settings.mode == "draft":
            if draft:
                return Published(remote_id=f"draft:{draft}", remote_url=None)
            if not progress.get("draft_requested_at"):
                return None  # draft/add was never sent
            found = self._batchget("cgi-bin/draft/batchget", post.title, since, post.link)
            if found is None:
                # draft/add is synchronous: a draft it made is in the box at once [gk], and in
                # draft mode nothing takes it out but a person
                return None
            return Published(remote_id=f"draft:{found[0].get('media_id')}", remote_url=None)
        if not draft:
            # submit and sendall need the draft's media_id, checkpointed as soon as draft/add
            # answers: without it neither was ever sent (a lost draft/add leaves at most an
            # orphan draft, which the next attempt finds and reuses)
            return None
        mark = SUBMIT_MARK if self.settings.mode == "freepublish" else MASS_MARK
        if progress.get(MARKS) and not progress.get(mark):
            return None  # marked before every send: this one never left
        if self.settings.mode == "masssend":
            return self._find_mass(post, str(draft), progress)
        return self._find_freepublish(post, since, str(draft), progress)

    def _find_freepublish(
        self, post: Post, since: datetime, draft: str, progress: dict[str, Any]
    ) -> Published | Undecided:
        found = self._batchget("cgi-bin/freepublish/batchget", post.title, since, post.link)
        if found is not None:
            item, news = found
            return Published(
                remote_id=str(item.get("article_id")),
                remote_url=str(news.get("url") or "") or None,
                published_at=datetime.fromtimestamp(as_int(item.get("update_time"), 0), UTC),
            )
        in_box = self._draft_exists(draft)
        checked = (
            f"freepublish/batchget：{since.astimezone(UTC):%Y-%m-%d %H:%M} UTC 以来没有标题为"
            f"「{post.title}」的文章",
            f"draft/get：草稿 {draft} {'仍在草稿箱' if in_box else '已不在草稿箱'}",
        )
        sent_at = progress.get(SUBMIT_MARK)
        when = (
            datetime.fromtimestamp(int(sent_at), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if sent_at
            else "时间未记录"
        )
        if in_box:
            reason = (
                f"freepublish/submit（草稿 media_id {draft}，{when} 发出）的应答丢失；草稿仍在"
                "草稿箱，但发布任务可能仍在进行（任务结束前文章不会出现在发表记录里），"
                "因此不能判定为未发布"
            )
        else:
            reason = (
                f"草稿 media_id {draft} 已离开草稿箱：freepublish/submit（{when} 发出）已被平台"
                "接受（或有人删除了草稿），但发表记录里还没有这篇文章，发布任务可能仍在进行"
            )
        return Undecided(
            reason=reason,
            checked=checked,
            look_at=(
                f"公众号后台（mp.weixin.qq.com）的「发表记录」：是否有标题为「{post.title}」的文章"
                f"（有则用其链接 resolve --published）；「草稿箱」：草稿「{post.title}」是否还在"
            ),
        )

    def _find_mass(self, post: Post, draft: str, progress: dict[str, Any]) -> Undecided | None:
        first = as_int(progress.get(MASS_MARK), 0)
        started = datetime.fromtimestamp(first, UTC) if first else None
        within = (
            started is not None and self._now() - started < MASS_DEDUP_WINDOW - MASS_DEDUP_MARGIN
        )
        if within and not progress.get(MASS_DRAFT_GONE):
            # A new attempt sends the same clientmsgid: if the first send was applied, the
            # platform refuses the repeat with 45065 and names its msg_id, so nothing is sent
            # twice. That makes "absent" safe to act on while the window lasts.
            return None
        if within:
            why = "再次发送时平台答复草稿已不在草稿箱（40007），说明之前的群发很可能已被接受"
            checked = ("message/mass/sendall 再次发送：40007，草稿已离开草稿箱",)
        else:
            why = "且已超出 clientmsgid 防重窗口，再次发送可能重复群发"
            checked = ("message/mass/sendall 的 clientmsgid 防重窗口（24 小时）已过",)
        return Undecided(
            reason=(
                f"message/mass/sendall（草稿 media_id {draft}，clientmsgid"
                f" {clientmsgid(progress)}）的应答丢失，{why}"
            ),
            checked=checked,
            look_at=(
                f"公众号后台（mp.weixin.qq.com）的「发表记录」：是否有群发「{post.title}」；"
                "若开启了「API群发保护」，管理员是否收到并确认了群发"
            ),
        )

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
        self, path: str, title: str, since: datetime, link: str = ""
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The newest item (and its article) titled ``title`` (and, where the item says,
        pointing to ``link``) updated at or after ``since``."""
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
                    if isinstance(article, dict) and _same_article(article, title, link):
                        return item, article
            offset += len(items)
            # Items come newest first [gk]: once a page is older than since, stop.
            if offset >= as_int(answer.get("total_count"), 0) or newest < cutoff:
                return None
        return None

    # --- figures ----------------------------------------------------------------------------

    def _datacube(self, name: str, begin: date, end: date) -> dict[str, Any]:
        return self._call(
            "POST",
            f"datacube/{name}",
            step=f"datacube/{name}",
            kind="read",
            body={"begin_date": begin.isoformat(), "end_date": end.isoformat()},
        )

    def account_metrics(self) -> dict[str, Any] | None:
        """Yesterday's followers (``getusercumulate``) and gain (``getusersummary``: new
        minus cancelled over every source); T+1, so the figures collected today are
        yesterday's. One call each, for one day (both allow 7 [src])."""
        yesterday = self._today() - timedelta(days=1)
        summary = self._datacube("getusersummary", yesterday, yesterday)
        cumulate = self._datacube("getusercumulate", yesterday, yesterday)
        return followers(_rows(summary), _rows(cumulate), yesterday)

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """Article totals from ``datacube/getarticletotaldetail`` (freepublish and mass send
        alike), one call per publishing day asked for (begin_date == end_date), never for
        today: the platform has data up to yesterday only (T+1). See ``datacube.py`` for the
        field mapping."""
        yesterday = self._today() - timedelta(days=1)
        measurable = [d for d in deliveries if d.remote_id and not d.remote_id.startswith("draft:")]
        by_day = days_to_ask(measurable, yesterday)
        figures: dict[str, MetricSnapshot] = {}
        for day in sorted(by_day):
            answer = self._datacube(ARTICLE_SOURCE.removeprefix("datacube/"), day, day)
            rows = _rows(answer)
            delayed = answer.get("is_delay") is True
            for delivery in by_day[day]:
                if delivery.remote_id in figures:
                    continue  # found under the other of its two possible days
                row = matching_row(rows, delivery)
                figure = snapshot(row, yesterday, is_delay=delayed) if row is not None else None
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
        account lacks it, and the detail names the cause (``codes.ELIGIBILITY``).

        freepublish and mass send are closed to unverified subscription accounts [src: the
        "仅认证" scope notes]: ``freepublish/batchget`` carries the same note, so it shows
        before the first post whether this account may publish (freepublish mode) and
        whether it is verified at all (masssend mode, where sending itself cannot be tried
        without sending)."""
        yesterday = (self._today() - timedelta(days=1)).isoformat()
        batchget = (
            "POST",
            "cgi-bin/freepublish/batchget",
            {"offset": 0, "count": 1, "no_content": 1},
        )
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
            probes.append(("freepublish (发布能力)", "publishing the article", *batchget))
        if self.settings.mode == "masssend":
            probes.append(
                ("verification (微信认证，群发需要)", "mass-sending the article", *batchget)
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
                cause = ELIGIBILITY.get(code, "")
                found.append(
                    Permission(name, needed_for, False, f"{path}: errcode {code}; {cause}")
                )
            else:
                found.append(Permission(name, needed_for, True))
        if self.settings.mode == "masssend":
            found.append(
                Permission(
                    "mass send (群发)",
                    "sending the article",
                    None,
                    "群发无法在不发送的情况下检查：群发次数（订阅号每天 1 次）、群发协议（48003）"
                    "和「API群发保护」的管理员确认都在第一次群发时才见分晓",
                )
            )
        return found


def _rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    rows = answer.get("list")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def clientmsgid(progress: dict[str, Any]) -> str:
    """The mass send's clientmsgid: the delivery's idempotency key (hashed if too long)."""
    key = progress.get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise ValueError("progress has no idempotency_key; the daemon must set it before the call")
    if len(key.encode("utf-8")) <= CLIENTMSGID_BYTES:
        return key
    return "kepubot-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:48]


def _same_article(article: dict[str, Any], title: str, link: str) -> bool:
    """A batchget article is ours: same title, not deleted, and the same 阅读原文 link when
    both sides have one (two posts may share a title)."""
    if article.get("is_deleted") or str(article.get("title") or "").strip() != title.strip():
        return False
    source, ours = _link_key(str(article.get("content_source_url") or "")), _link_key(link)
    return not (source and ours and source != ours)


def _link_key(url: str) -> str:
    """A link without scheme and trailing slash (the platform may rewrite http to https)."""
    url = htmllib.unescape(url.strip())
    return (url.split("://", 1)[1] if "://" in url else url).rstrip("/")
