"""The channel contract (docs/architecture.md §5), shared rendering helpers and the registry.

Channels never import ``kepubot.queue`` or ``kepubot.bot``: what they need from the store comes
in through the small ``ChannelContext`` protocol below.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kepubot.errors import ConfigError

if TYPE_CHECKING:
    from kepubot.config import Config
    from kepubot.models import Delivery, MetricSnapshot, Post

ENTRY_POINT_GROUP = "kepubot.channels"
log = logging.getLogger("kepubot.channels")

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_rate_limit(text: str) -> tuple[int, int]:
    """``"30/hour"`` -> (30, 3600)."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(
            f"rate limit {text!r} must look like '30/hour' (count per second|minute|hour|day)"
        )
    return int(match.group(1)), _PERIOD_SECONDS[match.group(2)]


def parse_hhmm(text: str) -> tuple[int, int]:
    match = _HHMM.match(text.strip())
    if not match:
        raise ValueError(f"time of day {text!r} must be HH:MM (24-hour)")
    return int(match.group(1)), int(match.group(2))


#: Per channel type, how many minutes an uncertain outcome may stay undecided before a person is
#: asked (``settle_minutes``). Chosen from how long each platform can take to show an accepted
#: request to its own lookup interfaces:
#: - wechat 30: a freepublish job appears in freepublish/batchget only when it finishes (minutes),
#:   and a mass send under 「API群发保护」 waits up to 30 minutes for an administrator;
#: - douyin 60: an uploaded video is transcoded and reviewed before it is listed;
#: - bilibili 60, kuaishou 60: likewise, a submitted video is processed and reviewed, and no
#:   page says how soon it is listed (docs/platforms.md §12, §13);
#: - weibo 10: a status is in the author's timeline within seconds; 10 minutes covers slow indexing;
#: - webhook 10: our own receiver answers its lookup synchronously; a short window suffices;
#: - feed, wecom, dingtalk: never undecided (a feed rewrites itself; robots cannot look up and go
#:   to a person at once), so the value only matters if that changes: the general default.
#: Other (plugin) types get DEFAULT_SETTLE_MINUTES: long enough for the asynchronous jobs we
#: know of (WeChat's), short enough that a person hears of a stuck post within the hour.
SETTLE_MINUTES_DEFAULTS: dict[str, float] = {
    "wechat": 30,
    "douyin": 60,
    "bilibili": 60,
    "kuaishou": 60,
    "weibo": 10,
    "webhook": 10,
}
DEFAULT_SETTLE_MINUTES = 30.0


class ChannelSettings(BaseModel):
    """Settings every channel has. Subclasses add their own; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    type: str
    rate_limit: str | None = None
    posting_times: list[str] = Field(default_factory=list)
    # (durations are added to the current time: at most a year, so every time they produce
    # can be stored and shown)
    min_gap_minutes: int = Field(60, ge=0, le=527_040)
    blackout: list[str] = Field(default_factory=list)  # "23:00-07:00" windows, local time
    # whole days (YYYY-MM-DD, local) on which this channel publishes nothing, on top of
    # [schedule] blackout_dates (docs/delivery.md §16)
    blackout_dates: list[str] = Field(default_factory=list)
    # How long an uncertain outcome may stay undecided (find() answering Undecided or failing),
    # counted from the start of the attempt whose answer was lost; then needs_attention with an
    # alert. Unset: the channel type's default in SETTLE_MINUTES_DEFAULTS.
    settle_minutes: float | None = Field(None, gt=0, le=527_040)

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate_limit(value)
        return value

    @field_validator("posting_times")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_hhmm(item)
        return sorted(set(value))

    @field_validator("blackout_dates")
    @classmethod
    def _blackout_dates(cls, value: list[str]) -> list[str]:
        from datetime import date

        for item in value:
            try:
                date.fromisoformat(item)
            except ValueError:
                raise ValueError(f"blackout date {item!r} must be YYYY-MM-DD") from None
        return sorted(set(value))

    @field_validator("blackout")
    @classmethod
    def _blackout(cls, value: list[str]) -> list[str]:
        for item in value:
            parts = item.split("-")
            if len(parts) != 2:
                raise ValueError(f"blackout window {item!r} must be 'HH:MM-HH:MM'")
            parse_hhmm(parts[0])
            parse_hhmm(parts[1])
        return value

    def settle_window(self) -> float:
        """``settle_minutes`` as set, else the channel type's default (minutes)."""
        if self.settle_minutes is not None:
            return self.settle_minutes
        return SETTLE_MINUTES_DEFAULTS.get(self.type, DEFAULT_SETTLE_MINUTES)

    def blackout_windows(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        windows = []
        for item in self.blackout:
            start, end = item.split("-")
            windows.append((parse_hhmm(start), parse_hhmm(end)))
        return windows


class HttpChannelSettings(ChannelSettings):
    """Settings of every channel that talks HTTP."""

    api_base: str = ""
    timeout_seconds: float = Field(30.0, gt=0)

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"api_base {value!r} must be an http(s) URL")
        return value.rstrip("/")


# --- what channels return -----------------------------------------------------------------

_PROBLEM_TEXT: dict[str, tuple[str, str]] = {
    "too_long": (
        "{field} 超出长度限制：上限 {limit}，实际 {actual}",
        "{field} is too long: limit {limit}, actual {actual}",
    ),
    "required": ("缺少 {field}：{detail}", "{field} is missing: {detail}"),
    "media_type": (
        "{field} 格式不支持：允许 {limit}，实际 {actual}",
        "{field} has an unsupported type: allowed {limit}, actual {actual}",
    ),
    "media_size": (
        "{field} 文件过大：上限 {limit}，实际 {actual}",
        "{field} is too large: limit {limit}, actual {actual}",
    ),
    "sensitive_word": (
        "{field} 含敏感词“{actual}”（位置 {detail}）",
        "{field} contains the sensitive word '{actual}' (at {detail})",
    ),
    "not_allowed": ("{field} 不符合平台规则：{detail}", "{field} breaks a platform rule: {detail}"),
}

_FIELD_NAMES_ZH = {
    "title": "标题",
    "body": "正文",
    "summary": "摘要",
    "link": "链接",
    "tags": "标签",
    "image": "图片",
    "video": "视频",
    "cover": "封面",
    "text": "发布文本",
    "content": "正文 HTML",
    "author": "作者",
    "digest": "摘要",
}


@dataclass(frozen=True)
class Problem:
    """Something that would stop a post from being published on a channel."""

    field: str
    code: str
    limit: Any = None
    actual: Any = None
    detail: str = ""

    def describe(self, language: str = "zh") -> str:
        zh, en = _PROBLEM_TEXT.get(self.code, ("{field}：{detail}", "{field}: {detail}"))
        template = zh if language == "zh" else en
        name = _FIELD_NAMES_ZH.get(self.field, self.field) if language == "zh" else self.field
        return template.format(field=name, limit=self.limit, actual=self.actual, detail=self.detail)

    def __str__(self) -> str:
        return self.describe("en")


@dataclass
class Rendered:
    """Exactly what a channel would send, for previews and for publishing."""

    channel: str
    kind: str  # "status", "article", "video", "feed-item", "message", "json"
    title: str = ""
    text: str = ""
    html: str = ""
    link: str = ""
    media: list[str] = field(default_factory=list)  # media-store relative paths, in send order
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Published:
    remote_id: str
    remote_url: str | None = None
    published_at: datetime | None = None


@dataclass
class Retracted:
    """The publication is gone from the platform (deleted, or already gone when looked at), or
    for a channel that cannot delete (a group robot) the withdrawal notice went out."""

    how: str = "deleted"  # "deleted", "already_gone", "notice_sent", "event_sent", "removed"


@dataclass(frozen=True)
class Permission:
    """One permission a channel needs, as ``kepubot channels check`` reports it."""

    name: str
    needed_for: str
    held: bool | None  # None: it cannot be checked without doing the thing itself
    detail: str = ""


@dataclass
class Processing:
    """Accepted, finishing asynchronously; poll again later."""

    progress: dict[str, Any] = field(default_factory=dict)
    poll_after_seconds: float = 30.0


@dataclass(frozen=True)
class Undecided:
    """``find()`` cannot tell yet: the platform may still be working on an accepted request
    (an asynchronous publish job, a video still being processed), or the interface that could
    prove absence is unavailable. Never treated as absent: reconciliation looks again later
    with backoff, up to the channel's ``settle_minutes``, then hands the delivery to a person.

    ``reason`` says what is known in one sentence; ``checked`` lists what was looked at (for
    the alert); ``look_at`` tells a person where to check in the platform's own console.
    """

    reason: str
    checked: tuple[str, ...] = ()
    look_at: str = ""


class ChannelContext(Protocol):
    """What a channel may ask of the store and the environment."""

    def now(self) -> datetime: ...

    def media_file(self, relative: str) -> str: ...

    @property
    def credentials(self) -> Credentials: ...


def display_name(context: ChannelContext | None, login: str) -> str | None:
    """The name the public may see for the user ``login``: ``[users.LOGIN] name``, or None
    when none is configured. Public channels never show a login name (issue 11)."""
    config = getattr(context, "config", None)
    users = getattr(getattr(config, "data", None), "users", None)
    user = users.get(login) if isinstance(users, dict) else None
    name = getattr(user, "name", None)
    return name.strip() if isinstance(name, str) and name.strip() else None


# --- rendering helpers ----------------------------------------------------------------------

_ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "s",
    "blockquote",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "sup",
    "sub",
    "span",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "*": set()}


def markdown_to_html(markdown_text: str) -> str:
    """Markdown -> sanitized HTML (no scripts, no event handlers, no raw HTML escapes)."""
    from markdown_it import MarkdownIt

    html = (
        MarkdownIt("commonmark", {"html": False, "linkify": False})
        .enable("table")
        .render(markdown_text)
    )
    return sanitize_html(html)


def sanitize_html(html: str) -> str:
    """The one HTML sanitizer: feeds, article bodies and the console all pass through it."""
    import nh3

    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def markdown_to_text(markdown_text: str) -> str:
    """Plain text for channels that take text only (paragraphs kept, markup dropped)."""
    import nh3

    html = markdown_to_html(markdown_text)
    html = re.sub(r"</(p|h\d|li|blockquote|pre|tr)>", "\n", html)
    text = nh3.clean(html, tags=set())
    text = (
        text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    )
    return re.sub(r"\n{2,}", "\n", text).strip()


# --- the contract ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What a channel type can do, declared once per class as ``capabilities = Capabilities(...)``
    (docs/architecture.md §5.7). The daemon, the command line and the console read only this;
    the class is checked against it when it is defined: a capability whose method the class
    does not implement, or (for the optional methods) a method implemented but not declared, is
    a TypeError naming both."""

    #: Publishing the same post twice is harmless (feeds): an unknown outcome simply redoes.
    idempotent: bool = False
    #: ``find()`` can look for an earlier publication; otherwise unknown -> needs_attention.
    #: (A channel may narrow it per configuration: WebhookChannel without a lookup_url.)
    find: bool = False
    #: ``publish()`` may answer Processing and ``poll()`` follows the job to its outcome.
    poll: bool = False
    #: ``metrics()`` returns reach figures per published delivery.
    metrics: bool = False
    #: The platform reports metrics per day (WeChat datacube): collect once a day at first.
    daily_metrics: bool = False
    #: ``account_metrics()`` returns account-level figures (followers).
    account_metrics: bool = False
    #: ``verify()`` checks the credentials with a harmless call (``kepubot channels check``).
    verify: bool = False
    #: ``permissions()`` lists the permissions the configuration needs (after ``verify``).
    permissions: bool = False
    #: ``retract()`` can take a publication back; otherwise the daemon hands the retraction
    #: to a person (needs_attention + alert) who confirms with `kepubot delivery resolve ID
    #: --retracted` (docs/delivery.md §14).
    retract: bool = False
    #: ``find_retracted()`` can tell whether a publication is still there (gone = done).
    find_retracted: bool = False


#: capability -> the Channel method that provides it.
_CAPABILITY_METHODS: dict[str, str] = {
    "find": "find",
    "poll": "poll",
    "metrics": "metrics",
    "daily_metrics": "metrics",
    "account_metrics": "account_metrics",
    "verify": "verify",
    "permissions": "permissions",
    "retract": "retract",
    "find_retracted": "find_retracted",
}
#: Methods that must be declared when implemented (find may be narrowed per instance, and
#: retract/find_retracted are declared by the channels that really can).
_DECLARE_WHEN_IMPLEMENTED = ("poll", "metrics", "account_metrics", "verify", "permissions")
#: Class attributes of earlier versions of the contract, now fields of Capabilities.
_FORMER_ATTRIBUTES: dict[str, str] = {
    "idempotent": "idempotent",
    "can_find": "find",
    "asynchronous": "poll",
    "daily_metrics": "daily_metrics",
    "can_retract": "retract",
    "can_find_retracted": "find_retracted",
}


class Channel:
    """One configured channel instance (``[channels.NAME]``) of a channel type.

    A channel type declares (docs/architecture.md §5.7):
    - ``channel_type``: its name, equal to the name of its entry point in the
      ``kepubot.channels`` group (checked when the type is loaded);
    - ``Settings``: the pydantic model of its configuration section;
    - ``capabilities``: a ``Capabilities`` saying which optional methods it implements;
    and maps its platform's documented error codes with ``kepubot.channels.errors``.
    """

    #: The type's name, as in ``[channels.X] type = "..."`` and in pyproject.toml's entry
    #: points. Empty on abstract classes (HttpChannel, a platform's shared API class).
    channel_type: ClassVar[str] = ""
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    #: What this type can do. An instance may narrow it for its configuration by assigning
    #: ``self.capabilities`` in ``__init__`` (dataclasses.replace).
    capabilities: Capabilities = Capabilities()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        where = f"{cls.__module__}.{cls.__qualname__}"
        if "type_name" in cls.__dict__:
            raise TypeError(
                f"{where}: declare the type's name as the class attribute channel_type"
                " (the entry point's name) instead of overriding type_name()"
                " (docs/architecture.md §5.7)"
            )
        for former, field_name in _FORMER_ATTRIBUTES.items():
            if former in cls.__dict__:
                raise TypeError(
                    f"{where}: {former} is no longer a class attribute; declare"
                    f" capabilities = Capabilities({field_name}=...) (docs/architecture.md §5.7)"
                )
        declared = cls.capabilities
        if not isinstance(declared, Capabilities):
            raise TypeError(f"{where}: capabilities must be a Capabilities(...)")
        for field_name, method in _CAPABILITY_METHODS.items():
            implemented = getattr(cls, method) is not getattr(Channel, method)
            if getattr(declared, field_name) and not implemented:
                raise TypeError(
                    f"{where}: declares capabilities.{field_name} but does not implement {method}()"
                )
            if (
                field_name in _DECLARE_WHEN_IMPLEMENTED
                and implemented
                and not getattr(declared, field_name)
            ):
                raise TypeError(
                    f"{where}: implements {method}() but does not declare"
                    f" capabilities.{field_name}=True"
                )

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext | None = None):
        self.name = name
        self.settings = settings
        self.context = context
        self.log = logging.getLogger(f"kepubot.channels.{type(self).type_name()}")

    @classmethod
    def type_name(cls) -> str:
        """The declared ``channel_type`` (the class name on an abstract class without one)."""
        return cls.channel_type or cls.__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # Content rules, run at submit and at every approval.
    def check(self, post: Post) -> list[Problem]:
        return [] if post.title.strip() else [Problem("title", "required", detail="标题不能为空")]

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        return Rendered(
            channel=self.name,
            kind="article",
            title=post.title,
            text=markdown_to_text(post.body),
            html=markdown_to_html(post.body),
            link=post.link,
            media=[m.path for m in post.media],
        )

    # Remote operations; the daemon calls them, never twice for one attempt.
    def publish(self, post: Post, progress: dict[str, Any]) -> Published | Processing:
        raise NotImplementedError(
            f"channel type {self.type_name()!r} cannot publish in this version of kepubot"
        )

    def poll(self, delivery: Delivery) -> Published | Processing:
        raise NotImplementedError(f"channel type {self.type_name()!r} does not poll")

    def find(
        self, post: Post, since: datetime, progress: dict[str, Any]
    ) -> Published | Processing | Undecided | None:
        """Look for an earlier publication of ``post`` (on or after ``since``).
        ``progress`` holds the delivery's checkpoints and its ``idempotency_key``.

        Answer ``Published`` when found; ``Processing`` when the platform has the request as
        a job it is still working on (or that ended), so ``poll()`` follows it to its outcome;
        ``None`` ("absent") only with proof that the platform never applied the request and
        never will, since only ``None`` lets a new attempt be sent; ``Undecided`` otherwise.
        Raising a ChannelError means the lookup itself failed; it counts as undecided."""
        raise NotImplementedError(f"channel type {self.type_name()!r} cannot look up posts")

    # Retraction (docs/architecture.md §5.6, docs/delivery.md §14). The daemon calls
    # retract() once per attempt, with the intent committed first, exactly like publish();
    # capabilities.retract and capabilities.find_retracted say whether a type implements them.

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        """Take back the publication of ``delivery`` (its ``remote_id``, ``remote_url`` and
        the publishing checkpoints in ``progress``; ``progress["retract_key"]`` is this
        retraction's own idempotency key). A platform answer meaning "already deleted" is
        success. Errors are ChannelErrors classified as for publish(): OutcomeUnknown when
        the delete may have been applied (reconciliation then calls find_retracted())."""
        raise NotImplementedError(f"channel type {self.type_name()!r} cannot retract")

    def find_retracted(
        self, delivery: Delivery, progress: dict[str, Any]
    ) -> Retracted | Undecided | None:
        """After a delete whose answer was lost: ``Retracted`` when the publication is gone,
        ``None`` when it is provably still there (the delete is sent again), ``Undecided``
        when the platform cannot tell (a person is asked after settle_minutes)."""
        raise NotImplementedError(f"channel type {self.type_name()!r} cannot look up deletions")

    def metrics(self, deliveries: list[Delivery]) -> dict[str, MetricSnapshot]:
        """Reach figures of published deliveries, keyed by remote_id, in the batches the
        platform allows. A channel without metrics returns {} (nothing is collected)."""
        return {}

    def account_metrics(self) -> dict[str, Any] | None:
        """Account-level figures for today ({"followers": n, ...}) where the platform has them."""
        return None

    def verify(self) -> str:
        raise NotImplementedError(f"channel type {self.type_name()!r} has no credential check")

    def permissions(self) -> list[Permission]:
        """The permissions this channel's configuration needs and whether the account holds
        them, found with harmless calls (after ``verify`` succeeded). None to check: []."""
        return []


# --- registry ---------------------------------------------------------------------------------


def channel_types() -> dict[str, Any]:
    """Entry points of the ``kepubot.channels`` group by name (built-ins use the same seam)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_channel_class(type_name: str, where: str) -> type[Channel]:
    types = channel_types()
    entry = types.get(type_name)
    if entry is None:
        known = ", ".join(sorted(types)) or "none installed"
        raise ConfigError(f"{where}: unknown channel type {type_name!r} (known types: {known})")
    try:
        cls = entry.load()
    except TypeError as exc:  # the class breaks the contract (Channel.__init_subclass__)
        raise ConfigError(f"{where}: channel type {type_name!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise ConfigError(
            f"{where}: entry point {type_name!r} of group {ENTRY_POINT_GROUP} is not a Channel"
            " subclass; check the package that provides it"
        )
    if cls.channel_type != type_name:
        declared = repr(cls.channel_type) if cls.channel_type else "no channel_type"
        raise ConfigError(
            f"{where}: entry point {type_name!r} of group {ENTRY_POINT_GROUP} loads"
            f" {cls.__module__}.{cls.__qualname__}, which declares {declared}; the class's"
            f" channel_type must equal its entry point's name (fix the package that provides it)"
        )
    return cls


def load_channels(
    config: Config, context: ChannelContext | None = None, *, only: list[str] | None = None
) -> dict[str, Channel]:
    """Validate and build every configured channel (or the named ones). Called explicitly."""
    from kepubot.config import describe_validation_error

    channels: dict[str, Channel] = {}
    problems: list[str] = []  # every channel's, one line each (issue 11 item 17)
    for name, section in config.data.channels.items():
        if only is not None and name not in only:
            continue
        where = f"{config.path}: [channels.{name}]"
        try:
            cls = load_channel_class(section.type, where)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        try:
            settings = cls.Settings.model_validate(section.model_dump())
        except ValidationError as exc:
            problems.append(
                describe_validation_error(
                    exc, str(config.path), prefix=f"channels.{name}", model=cls.Settings
                )
            )
            continue
        channels[name] = cls(name, settings, context)
    if problems:
        raise ConfigError("\n".join(problems))
    return channels


# --- HTTP ---------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delay-seconds or an HTTP-date (a date in the past is 0)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    from datetime import UTC
    from datetime import datetime as _dt

    reference = now or _dt.now(UTC)
    return max(0.0, (when - reference).total_seconds())


class HttpChannel(Channel):
    """A channel that talks HTTP: one ``requests.Session``, a timeout on every call, library
    retries only for connection failures (nothing was sent), and one place mapping transport
    errors to the queue's error kinds."""

    Settings: ClassVar[type[ChannelSettings]] = HttpChannelSettings

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext | None = None):
        super().__init__(name, settings, context)
        self._session: Any = None

    @property
    def http_settings(self) -> HttpChannelSettings:
        assert isinstance(self.settings, HttpChannelSettings)
        return self.settings

    @property
    def session(self) -> Any:
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            session = requests.Session()
            # connect=2: a refused or failed connection sent nothing, so retrying is safe even
            # for a POST; read/status retries stay off (the request may have been applied).
            retry = Retry(
                total=None, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.2
            )
            adapter = HTTPAdapter(max_retries=retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = "kepubot"
            self._session = session
        return self._session

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.http_settings.api_base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """Send one request. Transport failures become ChannelErrors:

        - nothing could have reached the server (connect error/timeout) -> Transient;
        - the request may have been applied (read timeout, reset, 5xx) -> OutcomeUnknown
          for unsafe methods, Transient for GET/HEAD (reads are always safe to repeat);
        - 429 -> RateLimited with Retry-After.
        """
        import requests

        from kepubot.errors import OutcomeUnknown, RateLimited, Transient

        safe = method.upper() in ("GET", "HEAD")
        kwargs.setdefault("timeout", self.http_settings.timeout_seconds)
        try:
            response = self.session.request(method, self.url(path), **kwargs)
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            raise Transient(f"{what}: could not connect ({type(exc).__name__})") from None
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise Transient(f"{what}: could not connect ({_reason(exc)})") from None
            kind = Transient if safe else OutcomeUnknown
            raise kind(f"{what}: connection lost before an answer ({_reason(exc)})") from None
        except requests.Timeout:
            kind = Transient if safe else OutcomeUnknown
            raise kind(f"{what}: no answer within {kwargs['timeout']} s") from None
        except requests.RequestException as exc:
            kind = Transient if safe else OutcomeUnknown
            raise kind(f"{what}: {type(exc).__name__}") from None
        if response.status_code == 429:
            raise RateLimited(
                f"{what}: rate limited (HTTP 429)",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                code=429,
            )
        if response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code == 503 and retry_after is not None and safe:
                raise RateLimited(
                    f"{what}: unavailable (HTTP 503)", retry_after=retry_after, code=503
                )
            kind = Transient if safe else OutcomeUnknown
            raise kind(
                f"{what}: server error HTTP {response.status_code}", code=response.status_code
            )
        return response


def _reason(exc: BaseException) -> str:
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", inner)
    return type(reason).__name__


def _never_sent(exc: BaseException) -> bool:
    """True when the connection failed before any byte of the request was sent."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, NewConnectionError | NameResolutionError)


def json_object(response: Any) -> dict[str, Any]:
    """A response body as a JSON object, or {} when it is empty or something else."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def mask_secrets(text: str, secrets: Any) -> str:
    """Replace every secret value in ``text`` (a platform may echo a credential back)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def checkpoint(progress: dict[str, Any], **values: Any) -> None:
    """Record finished steps in ``progress`` and persist them at once (``Progress.save``); a
    plain dict (tests) has nothing to save to."""
    progress.update(values)
    save = getattr(progress, "save", None)
    if callable(save):
        save()


class Progress(dict[str, Any]):
    """A delivery's checkpoints. A multi-step channel stores each step's returned id and calls
    ``save()`` at once, so a restart resumes after the last step that succeeded."""

    def __init__(self, *args: Any, on_save: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_save = on_save

    def save(self) -> None:
        if self._on_save is not None:
            self._on_save(dict(self))


@dataclass
class Token:
    """A run-time credential (access token, optional rotating refresh token)."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None

    def expires_soon(
        self, now: datetime, margin_fraction: float = 0.2, margin_seconds: float = 300
    ) -> bool:
        if self.expires_at is None:
            return False
        from datetime import timedelta

        return self.expires_at - now <= timedelta(seconds=margin_seconds)

    def __repr__(self) -> str:  # never print a token
        return f"Token(expires_at={self.expires_at!r})"


class Credentials(Protocol):
    """Run-time tokens in the store, shared by every daemon; ``refresh`` is single-flight."""

    def get(self, channel: str) -> Token | None: ...

    def put(self, channel: str, token: Token) -> None: ...

    def refresh(self, channel: str, fetch: Any, *, stale: Token | None = None) -> Token: ...
