"""Sina Weibo via ``statuses/share.json`` (docs/platforms.md §2): settings, content rules, rendering,
publishing, lookup, counts and the credential check.

A status is ``【title】summary link``: at most 140 units, no ``#topic#``, and it must carry a
URL on the app's bound safe domain, so the link is chosen and the text shortened here, where
the editor can see the result in ``post preview`` before anything is sent.

Calls (paths relative to ``api_base``, ``https://api.weibo.com`` by default):

- publish: ``POST 2/statuses/share.json`` with ``access_token``, ``status``, ``rip`` (the
  operator's real public IP: a required setting, or ``"auto"``) and, when the post has an image,
  its first image as the multipart part ``pic`` (§2.2), where ``status`` is URL-encoded as the
  doc asks (§1.3);
- find / poll: ``GET 2/statuses/user_timeline.json`` (the authorizing account's recent statuses),
  matched on the sent text with every URL removed, since Weibo shortens links to t.cn. share is
  synchronous, so the timeline read back past the first attempt proves absence once the last
  send has settled (``timeline_settle_seconds``); before that find() answers Undecided;
- metrics: ``GET 2/statuses/count.json`` with up to 100 comma-separated ``ids`` per call (§2.5);
- verify: ``POST oauth2/get_token_info`` (§2.1) and, for the screen name, ``GET 2/users/show.json``.

Errors come back as HTTP 400/403 with ``{"request", "error_code", "error"}`` (``error_code`` often a
string) or, from the OAuth endpoints, ``{"error", "error_code", "error_description"}`` (§2.4).
The JSON code decides, through the data table ``ERRORS``. The token travels as the
``access_token`` form/query parameter; neither it nor any URL ever appears in an error message.
"""

from __future__ import annotations

import functools
import html
import ipaddress
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from kepubot.channels.base import (
    Capabilities,
    HttpChannel,
    HttpChannelSettings,
    Problem,
    Processing,
    Published,
    Rendered,
    Retracted,
    Undecided,
    checkpoint,
    markdown_to_text,
    parse_retry_after,
)
from kepubot.channels.errors import ErrorRule, check_rules, raise_for_code
from kepubot.config import Secret
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    Permanent,
    RateLimited,
    Transient,
)
from kepubot.models import Delivery, Media, MetricSnapshot, Post

MAX_UNITS = 140
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif")
# share.json takes the picture as one multipart part that must be smaller than 5 MB [src].
MAX_IMAGE_BYTES = 5 * 1024 * 1024
ELLIPSIS = "…"
# Both the ASCII and the full-width number sign: removing them all guarantees no #topic#.
_HASHES = str.maketrans("", "", "#＃")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")

# --- calls (docs/platforms.md §2) -----------------------------------------------------------------

SHARE_PATH = "2/statuses/share.json"  # [src] §2.2
TIMELINE_PATH = "2/statuses/user_timeline.json"  # named in §2.4/§11.1; parameters below are [gk]
DESTROY_PATH = "2/statuses/destroy.json"  # POST id=… (statuses/destroy doc); retraction
SHOW_PATH = "2/statuses/show.json"  # GET id=…; 20101 once the status is gone
GONE_CODE = 20101  # "Target weibo does not exist!"
COUNT_PATH = "2/statuses/count.json"  # [src] for the fields; the v2 path is [gk] (§2.5)
TOKEN_INFO_PATH = "oauth2/get_token_info"  # [src] §2.1; POST is [gk] (the doc revision we saw
# names the fields, not the method; public clients POST it)
USERS_SHOW_PATH = "2/users/show.json"  # [gk] §2.5 (followers_count); screen_name is [gk]

# statuses/count.json takes at most 100 ids per call ([gk] for v2: from the v1 doc, §2.5).
COUNT_BATCH = 100
# user_timeline: ``count`` (at most 100) and ``page`` are [gk] (the v2 user_timeline/ids and the
# commercial timeline docs list them; §2 does not). Without ``uid`` it is the authorizing
# account's own timeline [gk]. The answer is ``{"statuses": [status, ...], "total_number": N}``
# [gk], newest first; the order is not relied on.
TIMELINE_COUNT = 100
# How far find() pages back (each page is one call of the account's small daily budget, §2.3).
FIND_MAX_PAGES = 3

# Rate limits: the error body carries no reset time (§2.4) and the limits are per hour (and per
# day, §2.3), so a rate-limited call waits a full hour unless a Retry-After header says otherwise.
# An hour can be longer than needed, never shorter than an hourly window.
RATE_LIMIT_WAIT = 3600.0

# 20032 "succeeded but the server is slow; wait 1-2 minutes" (§2.4): success, never a retry.
# The status has no id in that answer, so the delivery becomes Processing and poll() looks for it
# in the timeline: first after 2 minutes, then at longer intervals (each look costs calls), and
# after a day it fails with a message telling a person to look before requeueing.
ACCEPTED_POLL_SECONDS = 120.0
ACCEPTED_POLL_MAX_SECONDS = 3600.0
ACCEPTED_GIVE_UP = timedelta(hours=24)
# Clock skew between us and Weibo when looking for a status accepted at a known time.
LOOKUP_MARGIN = timedelta(minutes=10)

ERROR_TEXT_CHARS = 200  # of Weibo's error text, in an error message
REAUTHORIZE = (
    "re-authorize the account in the Weibo app (such a token has no refresh) and put the new"
    " token in the environment variable that access_token names"
)

#: Weibo ``error_code`` -> what the queue should do (docs/platforms.md §2.4). Kinds:
#: ``rate_limited``: wait RATE_LIMIT_WAIT (or Retry-After), then retry;
#: ``auth``: the token or the account is refused; the channel stops until a person
#: re-authorizes (no refresh exists for it, §2.1);
#: ``permanent``: the content or request is refused for good (a person edits and requeues);
#: ``unknown``: duplicate content, evidence that an earlier attempt got through: reconcile;
#: ``accepted``: 20032, the status was taken (see ACCEPTED_POLL_SECONDS).
#: Codes not listed are Permanent, with Weibo's text. On reads (find, metrics, verify) a
#: ``unknown``/``accepted`` code is Transient: reading again is always safe.
ERRORS: dict[int, str] = {
    # Token and authorization.
    21327: "auth",  # expired_token (OAuth-shaped body)
    21314: "auth",  # token used
    21315: "auth",  # token expired
    21316: "auth",  # token revoked
    21317: "auth",  # token rejected
    21319: "auth",  # accessor was revoked (authorization removed)
    21325: "auth",  # invalid_grant
    21301: "auth",  # auth failed
    21332: "auth",  # invalid access_token [gk] (commonly cited, not in the source table)
    10013: "auth",  # invalid weibo user: the account itself is unusable; a person must act
    10014: "auth",  # insufficient app permissions: a person must grant them
    # Rate limits.
    10022: "rate_limited",  # IP requests out of rate limit
    10023: "rate_limited",  # user requests out of rate limit
    10024: "rate_limited",  # user requests to a special endpoint out of rate limit
    20016: "rate_limited",  # out of limit (posting too often)
    10004: "rate_limited",  # "Rate limit" in an older table (Error_code oldid=5237)
    # Duplicates: Weibo already has this text, most likely from an earlier attempt.
    20017: "unknown",  # repeat content (similar text)
    20019: "unknown",  # repeat content (identical text)
    20111: "unknown",  # repeated weibo text
    # Content.
    20018: "permanent",  # contains an illegal website
    20020: "permanent",  # contains advertising
    20021: "permanent",  # content is illegal
    21602: "permanent",  # contains forbidden words
    20012: "permanent",  # text too long (>140)
    20008: "permanent",  # content is null
    20031: "permanent",  # captcha needed (a person must post once by hand)
    # Images.
    20005: "permanent",  # unsupported image type
    20006: "permanent",  # image too large
    20007: "permanent",  # multipart without an image
    # Parameters.
    10008: "permanent",  # param error
    10016: "permanent",  # missing required param
    10017: "permanent",  # invalid param value (also what a fake uses for a link off the safe
    # domain, §11.1 [?])
    # Success, slowly.
    20032: "accepted",  # the post succeeded but the server is slow; wait 1-2 minutes
}

#: What each kind becomes (kepubot/channels/errors.py); ``detail`` is "Weibo error N: text".
RULES: dict[str, ErrorRule] = {
    "rate_limited": ErrorRule(RateLimited, "{what}: rate limited ({detail})"),
    "auth": ErrorRule(
        AuthExpired, "{what}: the access token was refused ({detail}); {reauthorize}"
    ),
    "unknown": ErrorRule(
        OutcomeUnknown,
        "{what}: Weibo already has this text ({detail}); an earlier attempt probably got"
        " through, so it is looked up instead of being sent again",
    ),
    "accepted": ErrorRule(OutcomeUnknown, "{what}: accepted, but Weibo is slow ({detail})"),
    "permanent": ErrorRule(Permanent, "{what}: refused ({detail})"),
}
#: On reads (find, metrics, verify) a duplicate or slow answer is Transient: reading again is safe.
READ_RULES: dict[str, ErrorRule] = {
    **RULES,
    "unknown": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
    "accepted": ErrorRule(Transient, "{what}: temporarily refused ({detail})"),
}
check_rules(ERRORS, RULES)

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_CREATED_AT = re.compile(
    r"^\s*[A-Za-z]{3} ([A-Za-z]{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})\s*$"
)
# A URL as Weibo may write it (ours, or its t.cn short form): ASCII URL characters only, so the
# match stops at the CJK text that may follow without a space.
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def parse_created_at(value: Any) -> datetime | None:
    """Weibo's ``created_at`` ("Tue May 31 17:46:55 +0800 2011") as an aware datetime.

    Parsed by hand: strptime's %a/%b depend on the process locale."""
    if not isinstance(value, str):
        return None
    match = _CREATED_AT.match(value)
    if match is None or match.group(1) not in _MONTHS:
        return None
    month = _MONTHS[match.group(1)]
    day, hour, minute, second = (int(match.group(i)) for i in (2, 3, 4, 5))
    offset = timedelta(hours=int(match.group(7)), minutes=int(match.group(8)))
    if match.group(6) == "-":
        offset = -offset
    try:
        local = datetime(int(match.group(9)), month, day, hour, minute, second)
    except ValueError:
        return None
    return (local - offset).replace(tzinfo=UTC)


def match_key(text: str) -> str:
    """The text as compared by find(): every URL removed (Weibo shortens links to t.cn) and
    all whitespace dropped."""
    return "".join(_URL.sub("", text).split())


def _same_text(candidate: Any, wanted: str) -> bool:
    if not isinstance(candidate, str):
        return False
    # Weibo may return the text HTML-escaped (&amp;, &lt;) [gk]; accept either form.
    return wanted in (match_key(candidate), match_key(html.unescape(candidate)))


def weibo_length(text: str) -> int:
    """Weibo's length: a CJK/full-width character is 1 unit, an ASCII character ½; round up.

    Every non-ASCII character counts a whole unit. Weibo's own counter is said to count Latin-1
    characters as ½ too; counting them as 1 can only over-estimate, which is the safe side.
    """
    halves = sum(1 if ord(ch) < 0x80 else 2 for ch in text)
    return (halves + 1) // 2


RIP_AUTO = "auto"
# Where the UDP socket of outward_address() is pointed: public resolvers (AliDNS). connect() on
# a UDP socket only picks the route and the local address; no packet is sent.
_PROBE_TARGETS = (("223.5.5.5", 53, socket.AF_INET), ("2400:3200::1", 53, socket.AF_INET6))
# Addresses that cannot be an operator's public IP: Weibo would see a different one (or none).
# Listed by hand: ipaddress's is_private also covers the documentation ranges (203.0.113.0/24
# and friends), which the demo and the tests use as stand-ins for a public address.
_NOT_PUBLIC: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "an unspecified address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private (RFC 1918) address"),
    ("172.16.0.0/12", "a private (RFC 1918) address"),
    ("192.168.0.0/16", "a private (RFC 1918) address"),
    ("100.64.0.0/10", "a carrier-grade NAT (RFC 6598) address"),
    ("169.254.0.0/16", "a link-local address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("ff00::/8", "a multicast address"),
)
_NOT_PUBLIC_NETS = tuple((ipaddress.ip_network(net), reason) for net, reason in _NOT_PUBLIC)


def non_public_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why ``address`` cannot be an operator's public IP ("a loopback address", ...), or ""."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network, reason in _NOT_PUBLIC_NETS:
        if address.version == network.version and address in network:
            return reason
    return ""


def probe_outward_address() -> str:
    """The local address this host would use toward the public internet (IPv4 first).

    A UDP socket is connected to a public resolver's address: that only chooses the route,
    nothing is sent. Raises ValueError when the host has no route out."""
    for host, port, family in _PROBE_TARGETS:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((host, port))
                return str(probe.getsockname()[0])
        except OSError:
            continue
    raise ValueError(
        'rip = "auto": this host has no route to the internet, so its outward-facing address'
        " cannot be read; set rip to the public IP address your Weibo traffic comes from"
    )


@functools.cache
def outward_address() -> str:
    """``rip = "auto"``: the host's outward-facing address, read once per process."""
    return checked_outward_address(probe_outward_address())


def checked_outward_address(found: str) -> str:
    """``found`` (what the probe read) unless it is loopback or private: behind NAT, Weibo
    sees another address."""
    reason = non_public_reason(ipaddress.ip_address(found.split("%", 1)[0]))
    if reason:
        raise ValueError(
            f'rip = "auto": this host\'s outward-facing address {found} is {reason}, not the'
            " public IP Weibo sees (the host is behind NAT or a proxy); set rip to the public"
            " IP address your traffic leaves from"
        )
    return found


def _on_domain(url: str, domain: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and (host == domain or host.endswith("." + domain))


class WeiboSettings(HttpChannelSettings):
    access_token: Secret
    # The app's bound safe domain (安全域名); every status must link to it or a subdomain.
    link_domain: str
    # Used when a post has no link on link_domain (e.g. the site's home page).
    default_link: str | None = None
    api_base: str = "https://api.weibo.com"
    rate_limit: str | None = "30/hour"
    # share.json requires the operating user's real, valid IP (请传操作用户的真实有效IP, §1.3/§2.2):
    # the public address the operator's traffic leaves from, or "auto" to read this host's
    # outward-facing address once when the settings are loaded. Required: there is no honest
    # default (127.0.0.1 may be refused).
    rip: str = Field("", validate_default=True)
    # find() trusts "not in the timeline" as absence only this long after the last send
    # (20032 "succeeded, server slow" asks for 1-2 minutes; the margin is [gk]).
    timeline_settle_seconds: float = Field(180.0, ge=0)

    @field_validator("link_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().lower().strip(".")
        if not _HOST.match(domain):
            raise ValueError(
                f"link_domain {value!r} must be a bare host name such as 'kepu.example.org'"
                " (no scheme, port or path)"
            )
        return domain

    @field_validator("rip")
    @classmethod
    def _ip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(
                "required: set rip to the public IP address your Weibo traffic comes from"
                ' (share.json asks for the real IP), or to "auto" to read this host\'s'
                " outward-facing address at start"
            )
        if value.lower() == RIP_AUTO:
            return outward_address()
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f'rip {value!r} must be a public IP address such as 203.0.113.7, or "auto"'
            ) from None
        reason = non_public_reason(address)
        if reason:
            raise ValueError(
                f"rip {value} is {reason}; Weibo asks for the operator's real public IP:"
                ' set the address your traffic leaves from, or "auto"'
            )
        return str(address)

    @model_validator(mode="after")
    def _default_on_domain(self) -> WeiboSettings:
        # A default link off the safe domain would be rejected by Weibo on every post.
        if self.default_link is not None and not _on_domain(self.default_link, self.link_domain):
            raise ValueError(
                f"default_link must be an http(s) URL on link_domain {self.link_domain!r}"
            )
        return self


class WeiboChannel(HttpChannel):
    channel_type = "weibo"
    Settings = WeiboSettings
    settings: WeiboSettings
    # An unknown outcome is settled by looking in the account's own timeline (find()); an
    # accepted-but-slow status (20032) is polled until it shows.
    capabilities = Capabilities(
        find=True,
        poll=True,
        metrics=True,
        account_metrics=True,
        verify=True,
        retract=True,
        find_retracted=True,
    )

    def choose_link(self, post: Post) -> str:
        """The post's link if Weibo will accept it, else default_link, else ""."""
        if post.link and _on_domain(post.link.strip(), self.settings.link_domain):
            link = post.link.strip()
        else:
            link = self.settings.default_link or ""
        # A fragment only matters in the browser, and its '#' could pair up into a #topic#.
        return urlunsplit(urlsplit(link)._replace(fragment="")) if link else ""

    @staticmethod
    def _clean(text: str) -> str:
        return " ".join(text.translate(_HASHES).split())

    @staticmethod
    def _compose(title: str, summary: str, link: str) -> str:
        text = f"【{title}】{summary}" if title else summary
        return f"{text} {link}" if link else text

    @staticmethod
    def _longest_prefix(text: str, fits: Callable[[str], bool]) -> str:
        """The longest ``prefix + …`` of text that fits (binary search: length is monotonic)."""
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            if fits(text[:middle].rstrip() + ELLIPSIS):
                low = middle
            else:
                high = middle - 1
        return text[:low].rstrip() + ELLIPSIS if low else ""

    def _parts(self, post: Post) -> tuple[str, str, str]:
        title = self._clean(post.title)
        # Without a summary the status is still worth reading with the start of the body.
        summary = self._clean(post.summary or markdown_to_text(post.body))
        return title, summary, self.choose_link(post)

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        title, summary, link = self._parts(post)

        def fits(candidate_title: str, candidate_summary: str) -> bool:
            return (
                weibo_length(self._compose(candidate_title, candidate_summary, link)) <= MAX_UNITS
            )

        if not fits(title, summary):
            # The summary gives way first; the title is cut only when it alone is too long
            # (check() reports that case, so it is never published cut).
            summary = self._longest_prefix(summary, lambda s: fits(title, s))
            if not fits(title, summary):
                title = self._longest_prefix(title, lambda t: fits(t, ""))
        images = post.images
        return Rendered(
            channel=self.name,
            kind="status",
            title=title,
            text=self._compose(title, summary, link),
            link=link,
            media=[images[0].path] if images else [],
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        title, _, link = self._parts(post)
        if not link:
            problems.append(
                Problem(
                    "link",
                    "required",
                    detail=f"微博要求正文含安全域名 {self.settings.link_domain} 下的链接；"
                    "请填写该域名的链接，或在配置中设置 default_link",
                )
            )
        bare = weibo_length(self._compose(title, "", link))
        if bare > MAX_UNITS:
            problems.append(Problem("text", "too_long", limit=MAX_UNITS, actual=bare))
        if post.images:
            problems.extend(_image_problems(post.images[0]))
        return problems

    # --- publishing ------------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published | Processing:
        what = f"weibo {self.name}: publish"
        problems = self.check(post)
        if problems:
            # check() ran at approval; this is the last guard before anything is sent.
            raise Permanent(
                f"{what}: the post breaks Weibo's rules: "
                + "; ".join(problem.describe("en") for problem in problems)
            )
        rendered = self.render(post)
        # Saved before the request: if its answer is lost, find() knows which text to look for
        # and how long ago it was sent (absence is trusted only once the send has settled).
        checkpoint(progress, weibo_text=rendered.text, weibo_sent_at=self._now().isoformat())
        data = {"access_token": self._token(), "status": rendered.text, "rip": self.settings.rip}
        images = post.for_channel(self.name).images
        files = None
        if images:
            # With a picture the request is multipart/form-data and the part is named "pic".
            # The doc still asks for ``status`` URL-encoded there (必须做URLencode, §1.3), and a
            # multipart part is not decoded by the form layer, so the text is percent-encoded
            # here: every byte but unreserved ASCII, so "+", "%", "&" and "#" cannot be read as
            # a space, an escape or a separator. The other fields are plain parts. Without a
            # picture it is a plain form post, where the form encoding is that URL-encoding.
            data["status"] = quote(rendered.text, safe="")
            content, mime = self._image(images[0], what)
            files = {"pic": (f"pic.{mime.rsplit('/', 1)[-1]}", content, mime)}
        response, answer = self._send(
            "POST", SHARE_PATH, what=what, reading=False, data=data, files=files
        )
        if isinstance(answer, dict) and ERRORS.get(_error_code(answer) or 0) == "accepted":
            if _status_id(answer):
                return self._published(answer)
            self.log.info("%s: accepted, Weibo is slow (20032); looking for it later", what)
            return Processing(
                progress={
                    "weibo_accepted_at": self._now().isoformat(),
                    "weibo_text": rendered.text,
                },
                poll_after_seconds=ACCEPTED_POLL_SECONDS,
            )
        status = self._checked(response, answer, what, reading=False)
        if not isinstance(status, dict) or not _status_id(status):
            # Something answered 2xx, but not with a status object: it may have been posted.
            raise OutcomeUnknown(
                f"{what}: HTTP {response.status_code} without a status id; cannot tell whether"
                " the status was posted",
                code=response.status_code,
            )
        return self._published(status)

    def poll(self, delivery: Delivery) -> Published | Processing:
        """Only a status accepted with 20032 is polled: look for it in the timeline."""
        what = f"weibo {self.name}: poll"
        text = delivery.progress.get("weibo_text")
        accepted = delivery.progress.get("weibo_accepted_at")
        try:
            accepted_at = _aware(datetime.fromisoformat(str(accepted)))
        except ValueError:
            accepted_at = None
        if not isinstance(text, str) or not text or accepted_at is None:
            raise Permanent(
                f"{what}: delivery {delivery.id} has no record of an accepted status to look for;"
                " check the Weibo account by hand before requeueing"
            )
        try:
            found = self._look_up(text, accepted_at - LOOKUP_MARGIN, what)
        except _TimelineTooLong as exc:
            raise OutcomeUnknown(str(exc)) from None
        if found is not None:
            return found
        waited = self._now() - accepted_at
        if waited > ACCEPTED_GIVE_UP:
            raise Permanent(
                f"{what}: Weibo accepted this status (20032, slow server) at"
                f" {accepted_at:%Y-%m-%d %H:%M} UTC, but it is still not in the account's"
                " timeline; it may be held for review. Look at the account before requeueing:"
                " requeueing may post it twice"
            )
        wait = min(
            ACCEPTED_POLL_MAX_SECONDS, max(ACCEPTED_POLL_SECONDS, waited.total_seconds() / 2)
        )
        return Processing(poll_after_seconds=wait)

    # --- retraction (docs/delivery.md §14) ------------------------------------------------

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        """``POST 2/statuses/destroy.json id=…`` (only one's own statuses). A status already
        gone (20101) is success: a redo after a lost answer must not fail the retraction."""
        what = f"weibo {self.name}: retract"
        status_id = delivery.remote_id
        if not status_id or not status_id.isdigit():
            raise Permanent(
                f"{what}: delivery {delivery.id} has no Weibo status id; delete it on the"
                " account's page by hand, then `kepubot delivery resolve` it"
            )
        data = {"access_token": self._token(), "id": status_id}
        response, answer = self._send("POST", DESTROY_PATH, what=what, reading=False, data=data)
        if isinstance(answer, dict) and _error_code(answer) == GONE_CODE:
            return Retracted(how="already_gone")
        status = self._checked(response, answer, what, reading=False)
        if not isinstance(status, dict) or not _status_id(status):
            raise OutcomeUnknown(
                f"{what}: HTTP {response.status_code} without the deleted status; cannot tell"
                " whether it was deleted",
                code=response.status_code,
            )
        return Retracted(how="deleted")

    def find_retracted(
        self, delivery: Delivery, progress: dict[str, Any]
    ) -> Retracted | Undecided | None:
        """``statuses/show.json``: 20101 means gone; the status itself means still there."""
        what = f"weibo {self.name}: retraction lookup"
        if not delivery.remote_id:
            return Undecided(reason="no status id recorded", look_at="the account's Weibo page")
        params = {"access_token": self._token(), "id": delivery.remote_id}
        response, answer = self._send("GET", SHOW_PATH, what=what, reading=True, params=params)
        if isinstance(answer, dict) and _error_code(answer) == GONE_CODE:
            return Retracted(how="already_gone")
        status = self._checked(response, answer, what, reading=True)
        if isinstance(status, dict) and _status_id(status):
            return None
        return Undecided(
            reason=f"statuses/show answered HTTP {response.status_code} without a status",
            look_at=delivery.remote_url or "the account's Weibo page",
        )

    # --- lookup, counts, credentials -------------------------------------------------------

    def find(
        self, post: Post, since: datetime, progress: dict[str, Any]
    ) -> Published | Undecided | None:
        """The account's status carrying this post's text, created at or after ``since``.

        ``statuses/share`` is synchronous: a request Weibo applied is a status from that
        moment on. So absence (None) is proven by the account's own timeline read back past
        ``since`` without the text, but only once the last send is ``timeline_settle_seconds``
        old (a slow write, 20032, shows up within 1-2 minutes). Before that, or when the
        timeline holds too many newer statuses to reach back, the answer is Undecided."""
        what = f"weibo {self.name}: lookup"
        text = progress.get("weibo_text")
        if not isinstance(text, str) or not text:
            text = self.render(post).text
        since = _aware(since)
        sent_at = _parse_time(progress.get("weibo_sent_at"))
        # Deliveries sent before the checkpoint existed: the first attempt (``since``) is the
        # best known send time.
        last_send = max(sent_at, since) if sent_at is not None else since
        checked = (
            f"statuses/user_timeline.json back to {since:%Y-%m-%d %H:%M} UTC,"
            " matched on the status text without links",
        )
        look_at = (
            "the account's own Weibo page (including posts under review), for a status"
            f" starting {text[:30]!r}"
        )
        try:
            found = self._look_up(text, since, what)
        except _TimelineTooLong as exc:
            return Undecided(reason=str(exc), checked=checked, look_at=look_at)
        if found is not None:
            return found
        settle = timedelta(seconds=self.settings.timeline_settle_seconds)
        waited = self._now() - last_send
        if waited < settle:
            return Undecided(
                reason=(
                    f"not in the timeline yet, but the last send was only"
                    f" {int(waited.total_seconds())} s ago; Weibo may still be writing it"
                    f" (looked again after {int(settle.total_seconds())} s)"
                ),
                checked=checked,
                look_at=look_at,
            )
        return None

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """Live counters from ``statuses/count.json``, at most COUNT_BATCH ids per call.

        Weibo silently drops deleted or unknown ids (§2.5); those are simply absent here.
        Read counts are not in the standard API (§9), so ``views`` stays None."""
        what = f"weibo {self.name}: metrics"
        # count.json takes numeric status ids; anything else (e.g. a URL an operator resolved
        # a delivery with) would spoil the whole batch.
        ids = list(
            dict.fromkeys(d.remote_id for d in deliveries if d.remote_id and d.remote_id.isdigit())
        )
        snapshots: dict[str, MetricSnapshot] = {}
        for start in range(0, len(ids), COUNT_BATCH):
            batch = ids[start : start + COUNT_BATCH]
            params = {"access_token": self._token(), "ids": ",".join(batch)}
            answer = self._read("GET", COUNT_PATH, what=what, params=params)
            if not isinstance(answer, list):
                raise Transient(f"{what}: statuses/count.json did not answer with a list")
            wanted = set(batch)
            for item in answer:
                if not isinstance(item, dict) or str(item.get("id")) not in wanted:
                    continue
                snapshots[str(item["id"])] = MetricSnapshot(
                    views=None,
                    likes=_count(item.get("attitudes")),
                    comments=_count(item.get("comments")),
                    shares=_count(item.get("reposts")),
                    raw=item,
                )
        return snapshots

    def verify(self) -> str:
        """``oauth2/get_token_info`` (uid, remaining lifetime), then the screen name."""
        what = f"weibo {self.name}: credential check"
        info = self._read("POST", TOKEN_INFO_PATH, what=what, data={"access_token": self._token()})
        if not isinstance(info, dict) or info.get("uid") in (None, ""):
            raise Transient(f"{what}: oauth2/get_token_info answered without a uid")
        uid = str(info["uid"])
        # "expire_in" in the later doc revision, "expires_in" in the earlier one; a number or a
        # string of seconds (§2.1).
        remaining = _count(info.get("expire_in", info.get("expires_in")))
        if remaining is not None and remaining <= 0:
            raise AuthExpired(f"{what}: the access token has expired; {REAUTHORIZE}")
        account = f"uid {uid}"
        try:
            user = self._read(
                "GET",
                USERS_SHOW_PATH,
                what=what,
                params={"access_token": self._token(), "uid": uid},
            )
        except ChannelError as exc:
            # The token itself is fine (get_token_info said so); the name is only a courtesy.
            self.log.info("%s: no screen name (%s)", what, exc)
            user = None
        if isinstance(user, dict) and user.get("screen_name"):
            account = f"@{user['screen_name']} (uid {uid})"
        if remaining is None:
            expiry = "token expiry not reported"
        else:
            until = self._now() + timedelta(seconds=remaining)
            expiry = (
                f"token valid for {_duration(remaining)} more, until {until:%Y-%m-%d %H:%M} UTC"
            )
        return f"account {account}; {expiry}"

    def account_metrics(self) -> dict[str, Any] | None:
        """Today's ``followers_count`` (users/show.json); the collector turns the day-to-day
        difference into followers gained."""
        what = f"weibo {self.name}: account figures"
        info = self._read("POST", TOKEN_INFO_PATH, what=what, data={"access_token": self._token()})
        uid = str(info.get("uid", "")) if isinstance(info, dict) else ""
        if not uid:
            raise Transient(f"{what}: oauth2/get_token_info answered without a uid")
        user = self._read(
            "GET", USERS_SHOW_PATH, what=what, params={"access_token": self._token(), "uid": uid}
        )
        followers = _count(user.get("followers_count")) if isinstance(user, dict) else None
        if followers is None:
            return None
        return {"followers": followers, "uid": uid}

    # --- helpers -----------------------------------------------------------------------------

    def _token(self) -> str:
        return self.settings.access_token.get_secret_value()

    def _now(self) -> datetime:
        now = self.context.now() if self.context is not None else datetime.now(UTC)
        return _aware(now).astimezone(UTC)

    def _mask(self, text: str) -> str:
        token = self._token()
        if token:
            for form in sorted(
                {token, quote(token, safe=""), quote_plus(token)}, key=len, reverse=True
            ):
                text = text.replace(form, "***")
        return text

    def _image(self, image: Media, what: str) -> tuple[bytes, str]:
        """The image's bytes and their real type, re-checked against share.json's rules."""
        path = image.file
        if not path and self.context is not None:
            path = self.context.media_file(image.path)
        if not path:
            raise Permanent(f"{what}: the image {image.name!r} has no file in the media store")
        try:
            content = Path(path).read_bytes()
        except OSError as exc:
            raise Permanent(
                f"{what}: cannot read the image {image.name!r} from the media store"
                f" ({exc.strerror or type(exc).__name__})"
            ) from None
        if len(content) >= MAX_IMAGE_BYTES:
            raise Permanent(
                f"{what}: the image {image.name!r} is {_megabytes(len(content))}; Weibo takes"
                " images under 5 MB"
            )
        mime = _sniff(content)
        if mime not in IMAGE_TYPES:
            raise Permanent(
                f"{what}: the image {image.name!r} is not JPEG, PNG or GIF; Weibo takes only those"
            )
        return content, mime

    def _send(
        self, method: str, path: str, *, what: str, reading: bool, **kwargs: Any
    ) -> tuple[Any, Any]:
        """One call through HttpChannel.request; returns (response, parsed JSON or None).

        Reads (``reading``) are safe to repeat, so a lost answer is Transient for them even
        when the method is POST (get_token_info)."""
        try:
            # No redirects: requests would turn a redirected POST into a GET.
            response = self.request(method, path, what=what, allow_redirects=False, **kwargs)
        except OutcomeUnknown as exc:
            if reading:
                raise Transient(str(exc), code=exc.code) from None
            raise
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return response, answer

    def _read(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        response, answer = self._send(method, path, what=what, reading=True, **kwargs)
        return self._checked(response, answer, what, reading=True)

    def _checked(self, response: Any, answer: Any, what: str, *, reading: bool) -> Any:
        """The JSON answer of a successful call; every failure raised as a ChannelError.

        Weibo answers errors with HTTP 400/403 and an error body (§2.4): the body's code decides,
        whatever the HTTP status."""
        if isinstance(answer, dict) and ("error_code" in answer or "error" in answer):
            self._raise_error(response, answer, what, reading=reading)
        status = response.status_code
        if 200 <= status < 300 and answer is not None:
            return answer
        if status in (401, 403):
            raise AuthExpired(
                f"{what}: refused with HTTP {status} without a Weibo error code; {REAUTHORIZE}",
                code=status,
            )
        if 300 <= status < 400:
            raise Permanent(
                f"{what}: answered with a redirect (HTTP {status}); check api_base", code=status
            )
        if status >= 400:
            raise Permanent(
                f"{what}: refused with HTTP {status} without a Weibo error code", code=status
            )
        if reading:
            raise Transient(f"{what}: HTTP {status} without a JSON answer", code=status)
        raise OutcomeUnknown(
            f"{what}: HTTP {status} without a JSON answer; cannot tell whether it was applied",
            code=status,
        )

    def _raise_error(
        self, response: Any, answer: dict[str, Any], what: str, *, reading: bool
    ) -> NoReturn:
        code = _error_code(answer)
        text = self._mask(_error_text(answer)) or "no error text"
        if len(text) > ERROR_TEXT_CHARS:
            text = text[:ERROR_TEXT_CHARS] + "…"
        wait = parse_retry_after(response.headers.get("Retry-After"))
        raise_for_code(
            code,
            ERRORS,
            READ_RULES if reading else RULES,
            what=what,
            detail=f"Weibo error {code if code is not None else '(no code)'}: {text}",
            retry_after=wait if wait is not None else RATE_LIMIT_WAIT,
            reauthorize=REAUTHORIZE,
        )

    def _look_up(self, text: str, since: datetime, what: str) -> Published | None:
        """Page through the account's timeline back to ``since`` looking for ``text``."""
        wanted = match_key(text)
        if not wanted:
            raise Permanent(f"{what}: the rendered status has no text besides its link to match on")
        for page in range(1, FIND_MAX_PAGES + 1):
            params = {"access_token": self._token(), "count": TIMELINE_COUNT, "page": page}
            answer = self._read("GET", TIMELINE_PATH, what=what, params=params)
            statuses = answer.get("statuses") if isinstance(answer, dict) else None
            if not isinstance(statuses, list):
                raise Transient(f"{what}: statuses/user_timeline.json answered without statuses")
            oldest: datetime | None = None
            for status in statuses:
                if not isinstance(status, dict):
                    continue
                created = parse_created_at(status.get("created_at"))
                if created is None:
                    continue
                oldest = created if oldest is None else min(oldest, created)
                if (
                    created >= since
                    and _same_text(status.get("text"), wanted)
                    and _status_id(status)
                ):
                    return self._published(status)
            total = _count(answer.get("total_number"))
            if (
                not statuses
                or (oldest is not None and oldest < since)
                or (total is not None and page * TIMELINE_COUNT >= total)
            ):
                return None
        # Every status on every page is newer than `since`: absence cannot be confirmed.
        raise _TimelineTooLong(
            f"{what}: more than {FIND_MAX_PAGES * TIMELINE_COUNT} statuses since"
            f" {since:%Y-%m-%d %H:%M} UTC; cannot tell whether the post is among them"
        )

    def _published(self, status: dict[str, Any]) -> Published:
        remote_id = _status_id(status)
        user = status.get("user")
        uid = None
        if isinstance(user, dict):
            uid = user.get("idstr") or user.get("id")
        mid = status.get("mid") or remote_id
        # weibo.com/<uid>/<mid> is how status pages are addressed [gk] (not in docs/platforms.md).
        url = f"https://weibo.com/{uid}/{mid}" if uid not in (None, "") else None
        return Published(
            remote_id=remote_id,
            remote_url=url,
            published_at=parse_created_at(status.get("created_at")) or self._now(),
        )


class _TimelineTooLong(Exception):
    """The timeline holds more statuses since ``since`` than find() pages through."""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _image_problems(image: Media) -> list[Problem]:
    problems = []
    if image.mime not in IMAGE_TYPES:
        problems.append(
            Problem("image", "media_type", limit=", ".join(IMAGE_TYPES), actual=image.mime)
        )
    if image.size >= MAX_IMAGE_BYTES:
        problems.append(
            Problem("image", "media_size", limit="5 MB（不含）", actual=_megabytes(image.size))
        )
    return problems


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _sniff(content: bytes) -> str:
    """The image type from its first bytes (the declared type may be wrong)."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return "application/octet-stream"


def _status_id(status: dict[str, Any]) -> str:
    value = status.get("idstr") or status.get("id")
    return "" if value in (None, "") or isinstance(value, bool) else str(value)


def _error_code(answer: dict[str, Any]) -> int | None:
    """``error_code`` as an int; Weibo often sends it as a string (§2.4)."""
    code = answer.get("error_code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None


def _error_text(answer: dict[str, Any]) -> str:
    """``error`` and, in OAuth-shaped bodies, ``error_description``."""
    parts = [
        " ".join(str(answer[key]).split())
        for key in ("error", "error_description")
        if answer.get(key) not in (None, "")
    ]
    return ": ".join(dict.fromkeys(parts))


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _duration(seconds: int) -> str:
    if seconds >= 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds // 3600} hours"
    return f"{max(1, seconds // 60)} minutes"
