"""The configuration file: TOML, validated by pydantic once at start-up. Imports nothing of ours
except the error types.

Secrets appear in the file only as ``${ENV_NAME}`` references. Their form is checked at
start-up; their values are read from the environment only when a command uses them (a channel's
token when that channel publishes or is checked, the console's key for ``web``), so a command
never needs a variable it does not use. No error message ever prints a secret's value.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from kepubot.errors import ConfigError

ROLES = ("editor", "reviewer", "manager", "operator", "admin")
Role = Literal["editor", "reviewer", "manager", "operator", "admin"]

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _resolve_secret(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string of the form ${ENV_NAME}")
    match = _ENV_REF.match(value.strip())
    if match is None:
        raise ValueError(
            "secrets are given only as ${ENV_NAME} references, never literally;"
            " put the value in an environment variable and reference it"
        )
    # resolved only when used: a command that does not use this channel (or the console's
    # key) does not need its variable (see App.require_secrets)
    return EnvSecret(match.group(1))


class EnvSecret(SecretStr):
    """A ``${ENV_NAME}`` reference, read from the environment when its value is needed.

    Commands check the references they are about to use first (``missing_env``) and name
    every missing variable at once; reading a missing one here is a ConfigError naming it."""

    def __init__(self, env_name: str) -> None:
        super().__init__("")
        self.env_name = env_name

    def is_set(self) -> bool:
        return bool(os.environ.get(self.env_name))

    def get_secret_value(self) -> str:
        value = os.environ.get(self.env_name)
        if not value:
            raise ConfigError(
                f"environment variable {self.env_name} is not set; export it before starting"
            )
        return value

    def _display(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnvSecret) and other.env_name == self.env_name

    def __hash__(self) -> int:
        return hash(("EnvSecret", self.env_name))

    def __len__(self) -> int:
        return len(os.environ.get(self.env_name) or "")


def env_references(obj: Any, where: str = "") -> list[tuple[str, str]]:
    """Every ``${ENV}`` reference inside a settings model: (location, variable name)."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, loc: str) -> None:
        if isinstance(value, EnvSecret):
            found.append((loc, value.env_name))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{loc}.{name}" if loc else name)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{loc}.{key}" if loc else str(key))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{loc}[{index}]")

    walk(obj, where)
    return found


def missing_env(references: list[tuple[str, str]]) -> list[str]:
    """One line per reference whose variable is not set (empty counts as not set)."""
    return [
        f"{loc}: environment variable {name} is not set; export it before starting"
        for loc, name in references
        if not os.environ.get(name)
    ]


Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]
"""A setting that must be a ``${ENV_NAME}`` reference; its value is read from the environment
when it is used (``EnvSecret``)."""


class Strict(BaseModel):
    """Unknown keys are errors (typos must not pass silently); inputs never echo in errors."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class KepubotSection(Strict):
    # a SQLite file, or postgresql://user:${ENV}@host:port/db (docs/architecture.md §11)
    database: str = "kepubot.db"
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    media_dir: str = "media"
    # encrypts tokens obtained at run time in the database; default: token.key beside it
    token_key: Secret | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai")
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        from kepubot.queue.store import check_url, is_url

        problem = check_url(value) if is_url(value) else None
        if problem is not None:
            raise ValueError(problem)
        return value


# Durations in the config end up added to the current time: bounded so that every time they
# produce stays far inside what can be stored and shown (issue 11: far-future times).
DAY_SECONDS = 86_400
YEAR_SECONDS = 366 * DAY_SECONDS
YEAR_MINUTES = YEAR_SECONDS // 60
YEAR_HOURS = YEAR_SECONDS // 3600
MAX_CADENCE_SECONDS = 3 * YEAR_SECONDS


class DaemonSection(Strict):
    poll_seconds: float = Field(1.0, gt=0, le=DAY_SECONDS)
    workers: int = Field(8, ge=1, le=256)
    lease_seconds: float = Field(300, ge=1, le=DAY_SECONDS)
    max_attempts: int = Field(8, ge=1)
    # retry of a send that definitely did not go through: full jitter in [0, base * 2^n], capped
    backoff_base_seconds: float = Field(30.0, ge=0, le=DAY_SECONDS)
    backoff_cap_seconds: float = Field(3600.0, ge=0, le=YEAR_SECONDS)
    # an unknown outcome is looked up on the platform only after this long (slow indexing)
    reconcile_after_seconds: float = Field(30.0, ge=0, le=YEAR_SECONDS)
    reconcile_max_tries: int = Field(10, ge=1)
    # circuit breaker: opens after this many ambiguous/transient failures in a row, for
    # breaker_open_seconds (doubling each time it reopens, at most 30 minutes)
    breaker_failures: int = Field(3, ge=1)
    breaker_open_seconds: float = Field(30.0, gt=0, le=YEAR_SECONDS)
    # SIGTERM: stop claiming, give in-flight sends this long, then exit
    shutdown_seconds: float = Field(30.0, ge=0, le=DAY_SECONDS)
    # watchdog: alert on deliveries overdue or stuck in a non-terminal state this long
    overdue_minutes: float = Field(15.0, gt=0, le=YEAR_MINUTES)
    stuck_minutes: float = Field(60.0, gt=0, le=YEAR_MINUTES)
    watchdog_seconds: float = Field(60.0, gt=0, le=DAY_SECONDS)


def _resolve_maybe_secret(value: Any) -> Any:
    """Alert URLs often carry tokens: a ${ENV} reference is resolved, a literal is kept; both
    are held as secrets (masked in logs)."""
    if isinstance(value, str) and _ENV_REF.match(value.strip()):
        return _resolve_secret(value)
    if isinstance(value, str):
        return SecretStr(value)
    return value


MaybeSecret = Annotated[SecretStr, BeforeValidator(_resolve_maybe_secret)]


class AlertsSection(Strict):
    # apprise URLs: dingtalk://, wecombot://, feishu://, mailto://, json://, ...
    urls: list[MaybeSecret] = Field(default_factory=list)
    # the same alert repeats at most once per this many minutes
    repeat_minutes: float = Field(60.0, gt=0, le=YEAR_MINUTES)
    # also tell reviewers (their `notify` URLs) when a post reaches their level
    notify_reviewers: bool = False


# a custom role (e.g. "expert" for a 科学性审核 level): a short lowercase identifier
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ReviewLevel(Strict):
    """One review level: its name and the role that may review it (docs/architecture.md §4.2):
    ``reviewer`` or a custom role (e.g. ``expert``) that users hold in ``[users] roles``."""

    name: str
    role: str = "reviewer"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a review level's name must not be empty")
        return value.strip()

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not _ROLE_NAME.match(value):
            raise ValueError(
                f"role {value!r} must be a lowercase identifier such as reviewer or expert"
            )
        if value in ("editor", "operator", "manager", "admin"):
            raise ValueError(
                f"role {value!r} cannot review a level; use reviewer or a custom role such as"
                " expert"
            )
        return value


def _level_entry(value: Any) -> Any:
    """``"初审"`` is ``{ name = "初审" }`` (role reviewer): a plain list of names keeps working."""
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict | ReviewLevel):
        raise ValueError(
            'a review level is a name such as "初审" or a table such as'
            ' { name = "科学性审核", role = "expert" }'
        )
    return value


class ReviewSection(Strict):
    # each entry a name or a table { name = "科学性审核", role = "expert" }
    levels: list[Annotated[ReviewLevel, BeforeValidator(_level_entry)]] = Field(
        default_factory=lambda: [ReviewLevel(name="审核")], min_length=1
    )
    sensitive_words: str | None = None
    # 三校: common misused words, one "错词 → 正词" a line (docs/architecture.md §13)
    misused_words: str | None = None
    # a post with one of these tags needs a source from authoritative_domains at submit
    # (docs/architecture.md §14); a DOI counts as authoritative
    sources_required_for_tags: list[str] = Field(default_factory=list)
    authoritative_domains: list[str] = Field(default_factory=list)

    @field_validator("authoritative_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        cleaned = []
        for domain in value:
            name = domain.strip().lower().strip(".")
            if not name or "/" in name or " " in name or "." not in name:
                raise ValueError(
                    f"authoritative_domains: {domain!r} is not a host name such as who.int"
                )
            cleaned.append(name)
        return cleaned

    @field_validator("levels")
    @classmethod
    def _distinct_levels(cls, value: list[ReviewLevel]) -> list[ReviewLevel]:
        names = [level.name for level in value]
        if len(set(names)) != len(names):
            raise ValueError("review level names must be distinct")
        return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"90m"``, ``"6h"``, ``"3d"`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} must look like 90m, 6h or 3d")
    return float(match.group(1)) * _DURATION_SECONDS[match.group(2)]


class MetricsSection(Strict):
    # collection points after publishing, then stop
    cadence: list[str] = Field(
        default_factory=lambda: ["1h", "6h", "24h", "3d", "7d", "30d"], min_length=1
    )
    # platforms with daily data (WeChat datacube) collect once a day for this many days
    daily_days: int = Field(7, ge=0, le=60)
    collect_seconds: float = Field(60.0, gt=0, le=DAY_SECONDS)  # how often to look for due points
    batch_limit: int = Field(2000, ge=1)  # deliveries per channel per pass

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: list[str]) -> list[str]:
        seconds = [parse_duration(v) for v in value]
        for text, amount in zip(value, seconds, strict=True):
            if amount > MAX_CADENCE_SECONDS:
                raise ValueError(f"cadence point {text!r} is too far; at most {3 * 366}d")
        if seconds != sorted(seconds) or len(set(seconds)) != len(seconds):
            raise ValueError("cadence points must be distinct and in increasing order")
        return value

    def cadence_seconds(self) -> list[float]:
        return [parse_duration(v) for v in self.cadence]


_WEEKLY = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN)\s+([01]\d|2[0-3]):([0-5]\d)$")


class ReportsSection(Strict):
    language: Literal["zh", "en"] | None = None  # default: [kepubot] language
    # the daemon writes last week's HTML and XLSX report at this local time, e.g. "MON 09:00"
    weekly: str | None = None
    output_dir: str = "reports"
    # robot channels (wecom/dingtalk) that get a short summary with the file path
    channels: list[str] = Field(default_factory=list)

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: str | None) -> str | None:
        if value is not None and not _WEEKLY.match(value.strip().upper()):
            raise ValueError(f"weekly {value!r} must look like 'MON 09:00'")
        return value.strip().upper() if value else value


class WebSection(Strict):
    # signs the session cookies; without it a random key is kept in web_secret.key beside the
    # database (0600), so sessions survive a restart
    secret_key: MaybeSecret | None = None
    session_hours: float = Field(12.0, gt=0, le=YEAR_HOURS)
    # mark cookies Secure (set when the console is served over HTTPS behind a proxy)
    secure_cookies: bool = False
    # the console's address as people reach it ("https://kepubot.example.org"); links in
    # notifications (an assisted task's page) are built from it; unset: the task's id only
    base_url: str | None = None
    # failed sign-ins allowed per user name (and 4x that per client address) in the window
    sign_in_attempts: int = Field(5, ge=1)
    sign_in_window_minutes: float = Field(15.0, gt=0, le=YEAR_MINUTES)
    # waitress worker threads
    threads: int = Field(4, ge=1, le=64)
    # reverse proxies in front of the console whose X-Forwarded-For/-Proto to trust (0: none);
    # sign-in limits then count the client's address, not the proxy's
    trusted_proxies: int = Field(0, ge=0, le=5)
    # request size limits in MB: any request but a signed-in editor's compose form (sign-in,
    # actions, the live preview: 2 MB holds a 200,000-character body); each uploaded image
    # or cover (WeChat's image limit is 10 MB); the video (Douyin's whole-file upload limit
    # is 128 MB); and the whole compose form with its files (the server refuses a bigger
    # body before reading it)
    max_form_mb: float = Field(2.0, ge=1, le=100)
    max_image_mb: float = Field(10.0, gt=0, le=1024)
    max_video_mb: float = Field(128.0, gt=0, le=4096)
    max_upload_mb: float = Field(160.0, gt=0, le=8192)


class UserSection(Strict):
    # built-in roles (ROLES) and the custom roles of [review] levels (checked in load_config)
    roles: list[str] = Field(min_length=1)
    name: str | None = None
    notify: list[MaybeSecret] = Field(default_factory=list)  # apprise URLs for this person


class ChannelSection(BaseModel):
    """Only ``type`` is checked here; the channel type's own Settings model checks the rest."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)
    type: str


class ScheduleSection(Strict):
    """``[schedule]``: whole days (YYYY-MM-DD, in the configured zone) on which nothing is
    published on any channel (docs/delivery.md §16); channels add their own
    ``blackout_dates``."""

    blackout_dates: list[str] = Field(default_factory=list)

    @field_validator("blackout_dates")
    @classmethod
    def _dates(cls, value: list[str]) -> list[str]:
        from datetime import date

        for item in value:
            try:
                date.fromisoformat(item)
            except ValueError:
                raise ValueError(f"blackout date {item!r} must be YYYY-MM-DD") from None
        return sorted(set(value))


class ConfigFile(Strict):
    kepubot: KepubotSection = KepubotSection()
    schedule: ScheduleSection = ScheduleSection()
    daemon: DaemonSection = DaemonSection()
    alerts: AlertsSection = AlertsSection()
    metrics: MetricsSection = MetricsSection()
    reports: ReportsSection = ReportsSection()
    review: ReviewSection = ReviewSection()
    web: WebSection = WebSection()
    users: dict[str, UserSection] = Field(default_factory=dict)
    channels: dict[str, ChannelSection] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, ChannelSection]) -> dict[str, ChannelSection]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
                raise ValueError(
                    f"channel name {name!r} may hold only letters, digits, '-', '_' and '.'"
                )
        return value


class Config:
    """The validated file plus where it lives (relative paths are relative to the file)."""

    def __init__(self, data: ConfigFile, path: Path) -> None:
        self.data = data
        self.path = path
        self.base_dir = path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def database_path(self) -> Path:
        """The SQLite file; for a PostgreSQL database a name in the config's folder, so that
        the key files kept "beside the database" (token.key, web_secret.key) go there."""
        from kepubot.queue.store import is_url

        if is_url(self.data.kepubot.database):
            return self.base_dir / "postgresql"
        return self.resolve(self.data.kepubot.database)

    @property
    def media_path(self) -> Path:
        return self.resolve(self.data.kepubot.media_dir)

    @property
    def timezone(self) -> str:
        return self.data.kepubot.timezone

    @property
    def review_levels(self) -> list[str]:
        """The level names, level 1 first."""
        return [level.name for level in self.data.review.levels]

    def level_role(self, level: int) -> str:
        """The role that may review ``level`` (1-based); ``reviewer`` outside the list."""
        levels = self.data.review.levels
        return levels[level - 1].role if 1 <= level <= len(levels) else "reviewer"

    @property
    def review_roles(self) -> set[str]:
        """Every role that reviews some level."""
        return {level.role for level in self.data.review.levels}

    def roles_of(self, user: str) -> set[str] | None:
        section = self.data.users.get(user)
        return None if section is None else set(section.roles)


def format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _known_keys(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The keys a model accepts at ``loc`` (names inside dict sections already dropped)."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list of tables ([review] levels): its type is below
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = field.annotation
        if typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
            if typing.get_origin(current) is Annotated:
                current = typing.get_args(current)[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def describe_validation_error(
    exc: ValidationError, source: str, prefix: str = "", model: type[BaseModel] | None = None
) -> str:
    """One line per problem, each naming the file and the key; never the value (it may be a
    secret). A typo shows up as an unknown key plus a missing one: the unknown key's line says
    "did you mean", and the missing key it explains gets no line of its own."""
    import difflib

    errors = exc.errors(include_input=False, include_url=False)
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")  # typos first
    lines: list[str] = []
    explained: set[str] = set()
    for error in errors:
        loc = tuple(error["loc"])
        key = format_location(((prefix,) if prefix else ()) + loc)
        if error["type"] == "extra_forbidden":
            parent = key.rsplit(".", 1)[0] if "." in key else ""
            where = f"[{parent}]" if parent else "the top level"
            known = [k for k in _known_keys(model, _model_path(loc[:-1])) if k != "type"]
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            if guess:
                explained.add(f"{parent}.{guess[0]}" if parent else guess[0])
            hint = (
                f"did you mean {guess[0]!r}?"
                if guess
                else "check the spelling (see config.example.toml)"
            )
            text = f"unknown key {str(loc[-1])!r} in {where}; {hint}"
        elif error["type"] == "missing":
            if key in explained:
                continue
            text = f"{key}: required setting is missing"
        else:
            message = re.sub(r"^Value error, ", "", error["msg"])
            text = f"{key}: {message}"
        line = f"{source}: {text}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _model_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the user/channel names from a location inside ``users`` or ``channels``."""
    out: list[int | str] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        out.append(part)
        if part in ("users", "channels"):
            skip = True
    return tuple(out)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; run `kepubot init` here or pass --config FILE"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        # utf-8-sig: Windows Notepad and some editors start the file with a BOM
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def role_problems(parsed: ConfigFile) -> list[str]:
    """Roles that only make sense together: each user's roles are built-in ones or the
    custom roles of review levels (a typo must not pass silently), and once users are
    configured each level's custom role is held by someone (or an admin)."""
    return _role_problems(parsed.review, parsed.users, all_users=True)


def _partial_role_problems(data: dict[str, Any]) -> list[str]:
    """The role problems of a file that failed validation elsewhere, so that each problem
    still gets its own line at once: checked only on the sections that validate by
    themselves. Without a valid [review] the custom roles are unknown, so nothing is said;
    a user whose own section is invalid already has its line and is left out, and then
    "no user holds role" is not judged (the missing holder may be that user)."""
    try:
        review = ReviewSection.model_validate(data.get("review", {}))
    except ValidationError:
        return []
    raw_users = data.get("users", {})
    if not isinstance(raw_users, dict):
        return []
    users: dict[str, UserSection] = {}
    for name, section in raw_users.items():
        try:
            users[str(name)] = UserSection.model_validate(section)
        except ValidationError:
            continue
    return _role_problems(review, users, all_users=len(users) == len(raw_users))


def _role_problems(
    review: ReviewSection, users: dict[str, UserSection], *, all_users: bool
) -> list[str]:
    custom = {level.role for level in review.levels} - set(ROLES)
    hint = (
        f"; custom roles are those of [review] levels ({', '.join(sorted(custom))})"
        if custom
        else "; a custom role must be the role of a [review] levels entry"
    )
    problems = []
    for name, user in users.items():
        for role in user.roles:
            if role not in ROLES and role not in custom:
                problems.append(
                    f"users.{name}.roles: unknown role {role!r}; built-in roles are"
                    f" {', '.join(ROLES)}{hint}"
                )
    if users and all_users:
        for index, level in enumerate(review.levels, start=1):
            if level.role in ROLES:
                continue  # a custom role no one holds is surely a mistake; reviewer may wait
            if not any(level.role in u.roles or "admin" in u.roles for u in users.values()):
                problems.append(
                    f"review.levels entry {index} ({level.name}): no user holds role"
                    f" {level.role!r} (nor admin), so no one could review it; give the role to"
                    " a user in [users]"
                )
    return problems


def load_config(path: Path) -> Config:
    data = read_toml(path)
    try:
        parsed = ConfigFile.model_validate(data)
    except ValidationError as exc:
        # one line per problem: the role checks below must not wait for the rest to be fixed
        lines = [describe_validation_error(exc, str(path), model=ConfigFile)]
        lines += [f"{path}: {line}" for line in _partial_role_problems(data)]
        raise ConfigError("\n".join(lines)) from None
    problems = role_problems(parsed)
    if problems:
        raise ConfigError("\n".join(f"{path}: {line}" for line in problems))
    return Config(parsed, path.resolve())
