"""Emulated in-house CMS webhook receiver.

``POST /webhook/<name>``, JSON body, headers:

- ``Idempotency-Key`` (required, else 400);
- ``X-Kepubot-Signature: sha256=<hex>``, HMAC-SHA256 of the raw body keyed by the receiver's
  secret; required once a secret is set for ``<name>`` (missing or wrong: 401).

A new key is accepted (201 ``{"id": "<name>-<n>", "url": ...}``) and recorded in the ledger.
A key seen before is refused with 409 ``{"error": "duplicate", "id": <first id>}`` and the
attempt is recorded in the ledger's ``duplicates``, so a test can assert there were none.

A body with ``"event": "retracted"`` (a retraction, with its own key) is accepted the same
way and also recorded in the ledger's ``deleted``.
``GET /webhook/<name>/lookup?key=<key>`` answers 200 ``{"id", "url"}`` or 404: this is how a
client reconciles a send whose answer it never got. ``GET /webhook/<name>/posts[?limit=n]``
lists the receiver's recent posts, newest first.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from typing import Any

from kepubot.sandbox.base import Endpoint, Request, Response, json_response

_NAME = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")
SIGNATURE_HEADER = "X-Kepubot-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Kepubot-Signature`` value a sender must put on ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookReceiver(Endpoint):
    route = "webhook"
    prefix = "/webhook/"
    secrets_key = "webhook"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        # One lock makes "is this key new? then record it" atomic across worker threads.
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}
        # name -> idempotency key -> {"id", "url"} of the accepted post
        self._posts: dict[str, dict[str, dict[str, Any]]] = {}

    def set_secrets(self, value: Any) -> None:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError('"webhook" must map receiver names to secret strings')
        with self._lock:
            self._secrets.update(value)

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._posts.clear()

    def busy_response(self, request: Request | None = None) -> Response:
        return json_response(503, {"error": "service unavailable"})

    def handle(self, request: Request) -> Response:
        parts = request.path[len(self.prefix) :].split("/")
        name = parts[0]
        if not _NAME.match(name):
            return json_response(404, {"error": "not found"})
        rest = parts[1:]
        if not rest:
            if request.method != "POST":
                return _method_not_allowed("POST")
            return self._receive(name, request)
        if rest in (["lookup"], ["posts"]):
            if request.method != "GET":
                return _method_not_allowed("GET")
            if rest == ["lookup"]:
                return self._lookup(name, request)
            return self._recent(name, request)
        return json_response(404, {"error": "not found"})

    def _receive(self, name: str, request: Request) -> Response:
        with self._lock:
            secret = self._secrets.get(name)
        if secret is not None:
            sent = (request.headers.get(SIGNATURE_HEADER) or "").strip().lower()
            if not hmac.compare_digest(sent.encode(), sign_body(secret, request.body).encode()):
                return json_response(401, {"error": "bad signature"})
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key or not key.strip():
            return json_response(400, {"error": "missing Idempotency-Key header"})
        try:
            body = request.json()
        except ValueError:
            return json_response(400, {"error": "body is not valid JSON"})
        at = self.context.now()
        ledger = self.context.ledger
        with self._lock:
            posts = self._posts.setdefault(name, {})
            first = posts.get(key)
            if first is not None:
                ledger.duplicate(self.route, name, body, at, idempotency_key=key, id=first["id"])
                return json_response(409, {"error": "duplicate", "id": first["id"]})
            n = len(posts) + 1
            post = {
                "id": f"{name}-{n}",
                "url": f"http://{request.host}/{name}/posts/{n}",
            }
            posts[key] = {**post, "at": at}
            ledger.accept(self.route, name, body, at, idempotency_key=key, **post)
            if isinstance(body, dict) and body.get("event") == "retracted":
                # a retraction event (its own key): the receiver takes the post down
                ledger.delete(
                    self.route, name, at, idempotency_key=key, post_id=body.get("post_id")
                )
        return json_response(201, post)

    def _lookup(self, name: str, request: Request) -> Response:
        key = request.param("key")
        with self._lock:
            post = self._posts.get(name, {}).get(key or "")
        if post is None:
            return json_response(404, {"error": "not found"})
        return json_response(200, {"id": post["id"], "url": post["url"]})

    def _recent(self, name: str, request: Request) -> Response:
        limit_text = request.param("limit") or "20"
        if not (limit_text.isascii() and limit_text.isdigit()):
            return json_response(400, {"error": "limit must be a positive integer"})
        limit = int(limit_text)
        with self._lock:
            posts = [{"idempotency_key": k, **v} for k, v in self._posts.get(name, {}).items()]
        posts.reverse()
        return json_response(200, {"posts": posts[:limit]})


def _method_not_allowed(allowed: str) -> Response:
    return json_response(405, {"error": "method not allowed"}, {"Allow": allowed})
