"""A generic JSON webhook: settings, rendering, publishing and lookup.

For sites and tools without a built-in channel type: the post is POSTed as JSON to ``url``,
optionally signed with ``secret``. When the receiver offers ``lookup_url``, an earlier delivery
whose outcome is unknown can be looked up instead of being handed to a person.

The contract offered to receivers:

- ``POST url`` with the JSON document of :func:`webhook_body` plus ``"idempotency_key"``, UTF-8,
  ``Content-Type: application/json`` and the header ``Idempotency-Key: <key>`` (the same key on
  every attempt of one delivery);
- with ``secret``: ``X-Kepubot-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body bytes;
- 2xx: accepted; an optional JSON answer ``{"id": ..., "url": ...}`` names the remote copy;
- 409: the receiver already has this key (an earlier attempt got through);
- 401/403: the secret or the receiver's credentials are wrong; other 4xx: refused for good;
- ``GET lookup_url?key=<key>``: 200 ``{"id": ..., "url": ...}`` when it exists, 404 when not.

Neither the URLs nor the secret ever appear in an error message (URLs often carry tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import field_validator

from kepubot.channels.base import (
    Capabilities,
    ChannelContext,
    ChannelSettings,
    HttpChannel,
    HttpChannelSettings,
    Published,
    Rendered,
    Retracted,
    Undecided,
    display_name,
    json_object,
    markdown_to_html,
)
from kepubot.config import Secret
from kepubot.errors import AuthExpired, OutcomeUnknown, Permanent, Transient
from kepubot.models import Delivery, Post

_URL = re.compile(r"^https?://[^\s/]+")
SIGNATURE_HEADER = "X-Kepubot-Signature"
EXCERPT_CHARS = 200  # of a refusal's body, in the error message


class WebhookSettings(HttpChannelSettings):
    url: str
    secret: Secret | None = None
    lookup_url: str | None = None

    @field_validator("url", "lookup_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value.strip()):
            raise ValueError(f"{value!r} must be an http(s) URL")
        return None if value is None else value.strip()


def webhook_body(post: Post, author: str | None = None) -> dict[str, Any]:
    """The JSON document the receiver gets (post_id lets it recognise a repeated delivery).
    ``author`` is the author's display name (``[users.LOGIN] name``) or None: the receiver
    publishes it, so it is never the login name."""
    return {
        "post_id": post.id,
        "title": post.title,
        "author": author,
        "summary": post.summary,
        "body": post.body,
        "html": markdown_to_html(post.body),
        "link": post.link,
        "tags": list(post.tags),
        "media": [
            {"kind": m.kind, "sha256": m.sha256, "name": m.name, "mime": m.mime} for m in post.media
        ],
        # [{title, url, doi}] (docs/architecture.md §14)
        "sources": [{"title": s.title, "url": s.href, "doi": s.doi} for s in post.sources],
    }


class WebhookChannel(HttpChannel):
    channel_type = "webhook"
    Settings = WebhookSettings
    settings: WebhookSettings
    # find() needs a lookup_url; without one the channel cannot look (narrowed in __init__).
    capabilities = Capabilities(retract=True, find_retracted=True)

    def __init__(
        self, name: str, settings: ChannelSettings, context: ChannelContext | None = None
    ) -> None:
        super().__init__(name, settings, context)
        # Whether a lookup is possible depends on the configured receiver, not on the type.
        self.capabilities = replace(
            self.capabilities,
            find=bool(self.settings.lookup_url),
            find_retracted=bool(self.settings.lookup_url),
        )

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        body = webhook_body(post, display_name(self.context, post.author))
        return Rendered(
            channel=self.name,
            kind="json",
            title=post.title,
            text=post.summary,
            html=body["html"],
            link=post.link,
            media=[m.path for m in post.media],
            extra=body,
        )

    # --- publishing -------------------------------------------------------------------------

    def sign(self, body: bytes) -> str | None:
        """The signature header value for ``body``, or None without a secret."""
        if self.settings.secret is None:
            return None
        key = self.settings.secret.get_secret_value().encode("utf-8")
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def publish(self, post: Post, progress: dict[str, Any]) -> Published:
        key = idempotency_key(progress)
        document = dict(self.render(post).extra)
        document["idempotency_key"] = key
        if post.corrects:
            # a correction names the post it corrects (docs/delivery.md §15)
            document["correction_of"] = {
                "post_id": post.corrects.get("post_id"),
                "title": post.corrects.get("title"),
                "url": (post.corrects.get("urls") or {}).get(self.name)
                or post.corrects.get("link"),
            }
        # Serialized once: the signature covers exactly these bytes.
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        signature = self.sign(body)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        what = f"webhook {self.name}: publish"
        # No redirects: requests would turn a redirected POST into a GET and report success.
        response = self.request(
            "POST", self.settings.url, what=what, data=body, headers=headers, allow_redirects=False
        )
        status = response.status_code
        if 200 <= status < 300:
            return _published(json_object(response), key, published_at=self._now())
        if status == 409:
            # The receiver already holds this key: an earlier attempt got through. Reconciliation
            # (lookup_url) finds it; without lookup_url a person decides.
            raise OutcomeUnknown(
                f"{what}: the receiver already has this delivery (HTTP 409)", code=409
            )
        if status in (401, 403):
            raise AuthExpired(
                f"{what}: refused with HTTP {status}; check the channel's secret and the"
                f" receiver's access settings ({self._excerpt(response)})",
                code=status,
            )
        if status == 408:
            # The receiver gave up waiting for our request: it did not take the post.
            raise Transient(
                f"{what}: the receiver timed out reading the request (HTTP 408)", code=408
            )
        if 300 <= status < 400:
            raise Permanent(
                f"{what}: the receiver answered with a redirect (HTTP {status}); configure the"
                " final address as url",
                code=status,
            )
        raise Permanent(
            f"{what}: refused with HTTP {status} ({self._excerpt(response)})", code=status
        )

    # --- retraction (docs/delivery.md §14) ------------------------------------------------

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        """A signed ``retracted`` event with its own idempotency key (``retract_key``); it
        names the publication it takes back by the publishing key and the receiver's id."""
        key = progress.get("retract_key")
        if not isinstance(key, str) or not key:
            raise ValueError("progress has no retract_key; the daemon must set it before the call")
        document = {
            "event": "retracted",
            "post_id": post.id,
            "title": post.title,
            "reason": delivery.retract_reason or "",
            "retracts": {
                "idempotency_key": delivery.progress.get("idempotency_key"),
                "id": delivery.remote_id,
                "url": delivery.remote_url,
            },
            "idempotency_key": key,
        }
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        signature = self.sign(body)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        what = f"webhook {self.name}: retract"
        response = self.request(
            "POST", self.settings.url, what=what, data=body, headers=headers, allow_redirects=False
        )
        status = response.status_code
        if 200 <= status < 300:
            return Retracted(how="event_sent")
        if status == 409:
            raise OutcomeUnknown(
                f"{what}: the receiver already has this event (HTTP 409)", code=409
            )
        if status in (401, 403):
            raise AuthExpired(
                f"{what}: refused with HTTP {status}; check the channel's secret", code=status
            )
        if status == 408:
            raise Transient(f"{what}: the receiver timed out reading the request", code=408)
        raise Permanent(
            f"{what}: refused with HTTP {status} ({self._excerpt(response)})", code=status
        )

    def find_retracted(
        self, delivery: Delivery, progress: dict[str, Any]
    ) -> Retracted | Undecided | None:
        """Ask ``lookup_url`` whether the receiver has the retraction event's key."""
        key = progress.get("retract_key")
        if not self.settings.lookup_url or not isinstance(key, str):
            raise NotImplementedError(f"webhook {self.name} cannot look up retractions")
        what = f"webhook {self.name}: retraction lookup"
        response = self.request(
            "GET", self.settings.lookup_url, what=what, params={"key": key}, allow_redirects=False
        )
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            return Retracted(how="event_sent")
        raise Transient(
            f"{what}: unexpected HTTP {response.status_code}", code=response.status_code
        )

    def find(self, post: Post, since: datetime, progress: dict[str, Any]) -> Published | None:
        """Ask ``lookup_url`` whether the receiver has this delivery's key."""
        if not self.settings.lookup_url:
            raise NotImplementedError(
                f"webhook {self.name} has no lookup_url: cannot look up posts"
            )
        key = idempotency_key(progress)
        what = f"webhook {self.name}: lookup"
        response = self.request(
            "GET", self.settings.lookup_url, what=what, params={"key": key}, allow_redirects=False
        )
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            return _published(json_object(response), key)
        # Anything else cannot decide whether the post exists: ask again later.
        raise Transient(
            f"{what}: unexpected HTTP {response.status_code}, cannot tell whether the receiver"
            " has the post",
            code=response.status_code,
        )

    # --- helpers ----------------------------------------------------------------------------

    def _now(self) -> datetime | None:
        return self.context.now() if self.context is not None else None

    def _excerpt(self, response: Any) -> str:
        text = " ".join((response.text or "").split())
        if self.settings.secret is not None:
            secret = self.settings.secret.get_secret_value()
            if secret:
                text = text.replace(secret, "***")
        if len(text) > EXCERPT_CHARS:
            text = text[:EXCERPT_CHARS] + "…"
        return text or "empty body"


def idempotency_key(progress: dict[str, Any] | None) -> str:
    """The delivery's stable key, which the daemon puts in ``progress`` before each call."""
    key = (progress or {}).get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise ValueError("progress has no idempotency_key; the daemon must set it before the call")
    return key


def _published(answer: dict[str, Any], key: str, published_at: datetime | None = None) -> Published:
    """The receiver's ``{"id", "url"}`` (either may be missing: the key stands in for the id)."""
    remote_id = answer.get("id")
    remote_url = answer.get("url")
    return Published(
        remote_id=str(remote_id) if remote_id not in (None, "") else key,
        remote_url=str(remote_url) if remote_url else None,
        published_at=published_at,
    )
