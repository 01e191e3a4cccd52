"""The command line (docs/architecture.md §6): parse, call the service layer, print.

Exit codes: 0 ok, 1 operation failed, 2 bad input or not allowed (one clear line on stderr, no
traceback). Imports are lazy so that ``kepubot --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from kepubot.queue import MAX_ROW_ID

if TYPE_CHECKING:
    from kepubot.app import App


class State:
    def __init__(self, config: str | None, user: str | None, language: str | None) -> None:
        self.config_path = Path(config or os.environ.get("KEPUBOT_CONFIG") or "kepubot.toml")
        self._user = user
        self.language = language  # --lang, or None: [kepubot] language decides
        self._app: App | None = None
        self._configured: str | None = None

    def message_language(self) -> str:
        """The language of the messages a person reads (docs/architecture.md §15.5): --lang,
        else the config's [kepubot] language, else Chinese. Read from the loaded config when
        there is one, else cheaply from the file with tomllib, so that a config that fails to
        load (the error being reported) still decides the language of its own error."""
        if self.language in ("zh", "en"):
            return self.language
        if self._app is not None:
            return self._app.config.data.kepubot.language
        if self._configured is None:
            self._configured = "zh"
            try:
                import tomllib

                with self.config_path.open("rb") as handle:
                    section = tomllib.load(handle).get("kepubot")
                if isinstance(section, dict) and section.get("language") in ("zh", "en"):
                    self._configured = section["language"]
            except (OSError, ValueError):  # missing or unreadable: Chinese, the default
                pass
        return self._configured

    @property
    def user(self) -> str:
        if self._user:
            return self._user
        env = os.environ.get("KEPUBOT_USER")
        if env:
            return env
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    @property
    def app(self) -> App:
        if self._app is None:
            from kepubot.app import App
            from kepubot.config import load_config

            app = App(load_config(self.config_path), language=self.language)
            from kepubot.logzone import use_zone

            use_zone(app.tz)  # log times in [kepubot] timezone (docs/operations.md §11.1)
            app.channels  # noqa: B018 — validate every channel section at start-up
            self._app = app
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


pass_state = click.make_pass_decorator(State)


def fail(message: str, code: int = 2) -> NoReturn:
    """One ``error:`` line (the prefix stays English: scripts look for it); the message in
    the reader's language (docs/architecture.md §15.5)."""
    context = click.get_current_context(silent=True)
    if context is not None and chinese(context.find_object(State)):
        from kepubot.web.messages import translate_line

        message = translate_line(message)
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def now_utc() -> Any:
    from kepubot.timeutil import utcnow

    return utcnow()


class KepubotGroup(click.Group):
    """Turns KepubotError into one line on stderr and its exit code, and Click's usage errors
    into the Usage line and one ``error:`` line in the reader's language (kepubot/usage.py)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        from kepubot.usage import in_language, language_of_args

        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:  # the top-level options: no State yet
            language = language_of_args(
                args, lambda config, _: State(config, None, None).message_language()
            )
            raise in_language(exc, language) from None

    def invoke(self, ctx: click.Context) -> Any:
        from kepubot.errors import KepubotError
        from kepubot.usage import in_language

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's arguments or options
            raise in_language(exc, "zh" if chinese(ctx.obj) else "en") from None
        except KepubotError as exc:
            lines = str(exc).splitlines() or [type(exc).__name__]
            if chinese(ctx.obj):
                from kepubot.web.messages import translate_line

                lines = [translate_line(line) for line in lines]
            for line in lines:
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)


def chinese(state: Any) -> bool:
    """Messages in Chinese (docs/architecture.md §15.5): --lang zh or --lang en decides; without
    it the config's [kepubot] language does (Chinese by default, and when the config cannot be
    read). Scripts that parse the English messages pass --lang en."""
    if isinstance(state, State):
        return state.message_language() == "zh"
    return getattr(state, "language", None) != "en"


def say(state: Any, english: str, chinese_text: str) -> str:
    return chinese_text if chinese(state) else english


def zh_state(name: str) -> str:
    """A post or delivery state's Chinese name (kepubot/i18n.py), the name itself if none."""
    from kepubot.i18n import LABELS

    return LABELS.get(name, (name,))[0]


def echo_error(state: Any, line: str) -> None:
    """One ``error:`` line on stderr that does not end the command (several problems are
    listed before exiting), in the reader's language like fail()."""
    if chinese(state):
        from kepubot.web.messages import translate_line

        line = translate_line(line)
    click.echo(f"error: {line}", err=True)


# a row id: what SQLite's INTEGER holds (a longer number is refused by the parser, exit 2)
ID = click.IntRange(1, MAX_ROW_ID)

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


@click.group(cls=KepubotGroup)
@click.option(
    "--config",
    "config",
    metavar="FILE",
    help="Config file (env KEPUBOT_CONFIG; default ./kepubot.toml).",
)
@click.option(
    "--as",
    "user",
    metavar="USER",
    help="Act as this user (env KEPUBOT_USER; default the OS login).",
)
@click.option(
    "--log-level",
    type=LOG_LEVELS,
    default=None,
    help="Log level (env KEPUBOT_LOG_LEVEL; default info).",
)
@click.option(
    "--lang",
    "language",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Language of messages, previews and reports (default: [kepubot] language, zh).",
)
@click.version_option(package_name="kepubot")
@click.pass_context
def cli(
    ctx: click.Context,
    config: str | None,
    user: str | None,
    log_level: str | None,
    language: str | None,
) -> None:
    """kepubot: review, schedule and publish 科普 posts to Weibo, WeChat, Douyin and feeds."""
    import logging

    ctx.obj = State(config, user, language)  # first: fail() below speaks its language

    level = (log_level or os.environ.get("KEPUBOT_LOG_LEVEL") or "info").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"KEPUBOT_LOG_LEVEL {level.lower()!r}: use debug, info, warning or error")
    from kepubot.logzone import FORMAT, ZoneFormatter

    logging.basicConfig(level=getattr(logging, level), format=FORMAT, stream=sys.stderr)
    # times in the configured zone, named (State.app switches the zone once it is read)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(ZoneFormatter(FORMAT))
    # APScheduler logs every tick at INFO; only its warnings matter to an operator
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, getattr(logging, level)))
    ctx.call_on_close(ctx.obj.close)


# --- init ----------------------------------------------------------------------------------


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@pass_state
def init(state: State, force: bool) -> None:
    """Write a starting config (kepubot.toml) and create the database here."""
    from importlib.resources import files

    from kepubot.app import App
    from kepubot.config import load_config

    target = state.config_path
    if target.exists() and not force:
        fail(f"{target} already exists; edit it, or pass --force to overwrite it")
    data = files("kepubot") / "data"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((data / "config.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    words = target.parent / "sensitive_words.txt"
    if not words.exists():
        words.write_text(
            (data / "sensitive_words.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
    misused = target.parent / "misused_words.txt"  # 三校 (docs/architecture.md §13)
    if not misused.exists():
        misused.write_text(
            (data / "misused_words.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
    app = App(load_config(target))
    app.channels  # noqa: B018
    app.store.migrate()  # creates the database
    database = app.config.database_path.name
    click.echo(
        say(
            state,
            f"wrote {target}, {words.name} and {misused.name}; database {database} is ready",
            f"已写入 {target}、{words.name} 和 {misused.name}；数据库 {database} 已就绪",
        )
    )
    next_step = "kepubot --as zhang post add --title ... --body ... --channel news-feed"
    click.echo(say(state, f"next: {next_step}", f"下一步：{next_step}"))
    click.echo(
        say(
            state,
            "console: kepubot user passwd NAME (for each user), then kepubot web",
            "网页控制台：为每个用户运行 kepubot user passwd NAME，然后运行 kepubot web",
        )
    )


# --- posts ---------------------------------------------------------------------------------


@cli.group()
def post() -> None:
    """Write, review, schedule and inspect posts."""


def post_options(new: bool) -> Any:
    def wrap(function: Any) -> Any:
        options = [
            click.option("--title", required=new, help="Title."),
            click.option("--body", help="Markdown body text."),
            click.option(
                "--body-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Read the Markdown body from a file.",
            ),
            click.option("--summary", help="Short summary (digest)."),
            click.option("--link", help="Link to the full article."),
            click.option("--tag", "tags", multiple=True, help="Tag (repeatable)."),
            click.option(
                "--image",
                "images",
                multiple=True,
                type=click.Path(path_type=Path),
                help="Image file (repeatable).",
            ),
            click.option("--video", type=click.Path(path_type=Path), help="Video file (MP4)."),
            click.option("--cover", type=click.Path(path_type=Path), help="Cover image."),
            click.option(
                "--channel",
                "channels",
                multiple=True,
                required=new,
                help="Target channel name (repeatable).",
            ),
            click.option(
                "--at",
                help='Publish time: "YYYY-MM-DD HH:MM[:SS]" in the configured zone, or ISO 8601 with offset.',
            ),
            click.option(
                "--next-slot",
                is_flag=True,
                help="Publish in each channel's next free posting slot.",
            ),
            click.option(
                "--source",
                "sources",
                multiple=True,
                help='A source, "TITLE|URL" or "TITLE|doi:DOI" (repeatable; on edit the'
                " given sources replace the old ones).",
            ),
            *(
                []
                if new
                else [click.option("--no-sources", is_flag=True, help="Remove every source.")]
            ),
            click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
        ]
        for option in reversed(options):
            function = option(function)
        return function

    return wrap


def _post_input(params: dict[str, Any], new: bool) -> Any:
    from kepubot.errors import InvalidInput
    from kepubot.services.posts import PostInput

    body = params.get("body")
    body_file = params.get("body_file")
    if body is not None and body_file is not None:
        raise InvalidInput("give either --body or --body-file, not both")
    if body_file is not None:
        try:
            body = body_file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InvalidInput(f"--body-file {body_file}: file not found; check the path") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"--body-file {body_file}: not UTF-8 text") from None
    if new and body is None:
        raise InvalidInput("the body is missing; give --body TEXT or --body-file F")
    sources = None
    if params.get("sources"):
        from kepubot import sources as source_rules

        if params.get("no_sources"):
            raise InvalidInput("give either --source or --no-sources, not both")
        sources, shape = [], []
        for text in params["sources"]:
            item, problem = source_rules.parse(text, "--source")
            if problem:
                shape.append(problem)
            elif item is not None:
                sources.append(item)
        if shape:
            raise InvalidInput("\n".join(shape))
    elif params.get("no_sources"):
        sources = []
    return PostInput(
        sources=sources,
        title=params.get("title"),
        body=body,
        summary=params.get("summary"),
        link=params.get("link"),
        tags=list(params["tags"]) if params.get("tags") else None,
        images=list(params["images"]) if params.get("images") else None,
        video=params.get("video"),
        cover=params.get("cover"),
        channels=list(params["channels"]) if params.get("channels") else None,
        at=params.get("at"),
        next_slot=bool(params.get("next_slot")),
    )


@post.command("add")
@post_options(new=True)
@pass_state
def post_add(state: State, **params: Any) -> None:
    """Write a new post (a draft); prints its id."""
    from kepubot.services.duplicates import same_posts
    from kepubot.services.posts import create_post

    app = state.app
    app.misused_words  # noqa: B018 — a broken misused-words list is an error before anything is written
    post_id = create_post(app, state.user, _post_input(params, new=True), now=now_utc())
    _proofreading_warnings(app, [post_id])
    same = same_posts(app.store, post_id)
    if same:  # written on purpose, one at a time: say so, do not refuse (import refuses)
        others = ", ".join(map(str, same))
        click.echo(
            say(
                state,
                f"warning: post {post_id} has the same title and body as post {others}",
                f"warning: 稿件 {post_id} 与稿件 {others} 的标题和正文相同",
            ),
            err=True,
        )
    if params["as_json"]:
        emit_json({"id": post_id, "state": "draft"})
    else:
        click.echo(post_id)


@post.command("edit")
@click.argument("post_id", type=ID)
@post_options(new=False)
@pass_state
def post_edit(state: State, post_id: int, **params: Any) -> None:
    """Change a post. Editing a post in review or approved sends it back to review."""
    from kepubot.services.posts import edit_post

    state.app.misused_words  # noqa: B018 — a broken misused-words list is an error before anything is written
    post = edit_post(state.app, state.user, post_id, _post_input(params, new=False), now=now_utc())
    _proofreading_warnings(state.app, [post.id])
    if params["as_json"]:
        emit_json({"id": post.id, "state": post.state, "content_hash": post.content_hash})
    else:
        click.echo(
            say(state, f"post {post.id}: {post.state}", f"稿件 {post.id}：{zh_state(post.state)}")
        )


def _proofreading_warnings(app: App, post_ids: list[int]) -> None:
    """One ``warning:`` line (stderr) per 三校 finding, with field and line:column; they never
    block saving or submitting (docs/architecture.md §13)."""
    from kepubot.proofread import findings_for
    from kepubot.services.posts import get_post
    from kepubot.services.validate import visible

    for post_id in dict.fromkeys(post_ids):
        for finding in findings_for(app, get_post(app, post_id)):
            click.echo(
                visible(f"warning: post {post_id} {finding.describe(app.language)}"), err=True
            )


@post.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="Import posts whose title and body equal an existing post's or another row's.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def post_import(state: State, source: Path, allow_duplicates: bool, as_json: bool) -> None:
    """Import posts from a CSV file or Markdown files with front matter; all or nothing.
    A CSV may be UTF-8 (with or without BOM), GB18030/GBK or UTF-16 with BOM."""
    from kepubot.files.importer import read_posts
    from kepubot.services.posts import create_posts

    app = state.app
    encodings: dict[Path, str] = {}
    items = read_posts(source, encodings=encodings)
    ids = create_posts(app, state.user, items, now=now_utc(), allow_duplicates=allow_duplicates)
    if as_json:
        emit_json({"ids": ids, "encodings": {str(p): e for p, e in encodings.items()}})
    else:
        for path, encoding in encodings.items():
            click.echo(say(state, f"{path}: read as {encoding}", f"{path}：按 {encoding} 读取"))
        listed = ", ".join(map(str, ids))
        click.echo(
            say(
                state, f"imported {len(ids)} posts: {listed}", f"已导入 {len(ids)} 篇稿件：{listed}"
            )
        )


def _post_summary(app: App, p: Any) -> dict[str, Any]:
    from kepubot.timeutil import show

    return {
        "id": p.id,
        "title": p.title,
        "state": p.state,
        "author": p.author,
        "channels": p.channels,
        "tags": p.tags,
        "review_level": p.review_level,
        "scheduled_at": show(p.scheduled_at, app.tz) or None,
        "updated_at": show(p.updated_at, app.tz),
    }


def _pause_shown(app: App, post_id: int) -> dict[str, Any] | None:
    """The post's pause as shown (docs/delivery.md §18): reason, by whom, since when (in the
    configured zone), or None."""
    from kepubot.timeutil import show

    held = app.store.post_pauses.get(post_id)
    if held is None:
        return None
    return {
        "reason": held["reason"],
        "paused_by": held["paused_by"],
        "paused_at": show(held["paused_at"], app.tz),
    }


def _post_state(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--state in English or by its Chinese name (草稿, 审核中, 已通过, 已退回, 已撤销)."""
    from kepubot.i18n import LABELS, state_name
    from kepubot.models import POST_STATES

    if value is None:
        return None
    found = state_name(value, POST_STATES)
    if found is None:
        names = ", ".join(f"{s} ({LABELS[s][0]})" for s in POST_STATES if s in LABELS)
        fail(f"--state {value!r}: use one of {names}")
    return found


@post.command("list")
@click.option(
    "--state",
    "post_state",
    callback=_post_state,
    metavar="STATE",
    help="Only posts in this state: draft, in_review, approved, rejected, cancelled, or the"
    " Chinese name (草稿, 审核中, 已通过, 已退回, 已撤销).",
)
@click.option("--channel", help="Only posts targeting this channel.")
@click.option("--author", help="Only posts by this author.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10**12), default=0)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def post_list(
    state: State,
    post_state: str | None,
    channel: str | None,
    author: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List posts, newest first."""
    from kepubot.services.posts import list_posts

    app = state.app
    posts = list_posts(
        app, state=post_state, channel=channel, author=author, limit=limit, offset=offset
    )
    held = app.store.post_pauses.among(p.id for p in posts)  # paused (docs/delivery.md §18)
    rows = [{**_post_summary(app, p), "paused": p.id in held} for p in posts]
    if as_json:
        emit_json(rows)
        return
    from kepubot.i18n import label

    headers = [label(app, k) for k in ("id", "state", "author", "scheduled", "channels", "title")]
    table = [
        [
            str(r["id"]),
            label(app, r["state"]) + (f" / {label(app, 'paused')}" if r["paused"] else ""),
            r["author"],
            r["scheduled_at"] or "-",
            ",".join(r["channels"]),
            r["title"],
        ]
        for r in rows
    ]
    from kepubot.services.validate import visible

    click.echo(visible(format_table(headers, table)))


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    widths = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = []
    for row in [headers, *rows]:
        cells = [cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@post.command("show")
@click.argument("post_id", type=ID)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def post_show(state: State, post_id: int, as_json: bool) -> None:
    """A post with its reviews and deliveries."""
    from kepubot.queue.retraction import retraction_state, shown_state
    from kepubot.services.posts import get_post, reviews_of
    from kepubot.timeutil import show

    app = state.app
    p = get_post(app, post_id)
    reviews = reviews_of(app, post_id)
    levels = app.config.review_levels
    dels = app.store.deliveries.for_post(post_id)
    data = {
        **_post_summary(app, p),
        "summary": p.summary,
        "link": p.link,
        "body": p.body,
        "media": [m.model_dump() for m in p.media],
        "sources": [s.model_dump(exclude_defaults=True) for s in p.sources],
        "next_slot": p.next_slot,
        "content_hash": p.content_hash,
        "approved_hash": p.approved_hash,
        "review_levels": levels,
        # warning words accepted at approval, every round (docs/architecture.md §4.3)
        "accepted_words": [
            {
                "round": row.detail.get("round"),
                "level_name": row.detail.get("level_name", ""),
                "reviewer": row.actor,
                "word": row.detail.get("word", ""),
                "reason": row.detail.get("reason", ""),
                "at": show(row.at, app.tz),
            }
            for row in app.store.audit.rows_for_post(post_id)
            if row.action == "post.word_accepted"
        ],
        "created_at": show(p.created_at, app.tz),
        "reviews": [
            {
                "round": r.round,
                "level": r.level,
                "level_name": levels[r.level - 1] if 0 < r.level <= len(levels) else str(r.level),
                "reviewer": r.reviewer,
                "decision": r.decision,
                "comment": r.comment,
                "at": show(r.at, app.tz),
            }
            for r in reviews
        ],
        "deliveries": [
            {
                "id": d.id,
                "channel": d.channel,
                "state": d.state,
                "due_at": show(d.due_at, app.tz),
                "attempts": d.attempts,
                "remote_id": d.remote_id,
                "remote_url": d.remote_url,
                "last_error": d.last_error,
                "published_at": show(d.published_at, app.tz) or None,
                # publish, or retract once a retraction was requested (docs/delivery.md §14)
                "kind": d.kind,
                "shown_state": shown_state(d.kind, d.state, d.progress),
                "retract_reason": d.retract_reason,
            }
            for d in dels
        ],
        "retraction": retraction_state([{"kind": d.kind, "state": d.state} for d in dels]),
        "correction_of": app.store.retraction.correction_of(post_id),
        "corrections": app.store.retraction.corrections_of(post_id),
        "paused": _pause_shown(app, post_id),
    }
    if as_json:
        emit_json(data)
        return
    from kepubot.i18n import label

    out = [
        f"#{p.id} {p.title}",
        f"{label(app, 'state')}: {label(app, p.state)}"
        + (
            f" ({levels[p.review_level - 1]})"
            if p.state == "in_review" and 0 < p.review_level <= len(levels)
            else ""
        )
        + (f" / {label(app, data['retraction'])}" if data["retraction"] else "")
        + (
            f" / {label(app, 'paused')} ({data['paused']['paused_by']}, {data['paused']['paused_at']}"
            + (f": {data['paused']['reason']}" if data["paused"]["reason"] else "")
            + ")"
            if data["paused"]
            else ""
        ),
        *(
            [f"{'correction of' if app.language == 'en' else '更正自'}: #{data['correction_of']}"]
            if data["correction_of"]
            else []
        ),
        f"{label(app, 'author')}: {p.author}",
        f"{label(app, 'channels')}: {', '.join(p.channels)}",
        f"{label(app, 'tags')}: {', '.join(p.tags) or '-'}",
        f"{label(app, 'link')}: {p.link or '-'}",
        f"{label(app, 'scheduled')}: {data['scheduled_at'] or ('next slot' if p.next_slot else '-')}",
        f"{label(app, 'media')}: {', '.join(f'{m.kind}:{m.name}' for m in p.media) or '-'}",
        f"{label(app, 'summary')}: {p.summary or '-'}",
        # what `post approve --hash H` pins (docs/architecture.md §4.6)
        f"{label(app, 'content_hash')}: {p.content_hash}",
        f"{'sources' if app.language == 'en' else '参考资料'}:"
        + ("".join(f"\n  - {s.title} {s.href}" for s in p.sources) or " -"),
        "",
        p.body,
        "",
        f"{label(app, 'reviews')}:",
    ]
    for r in data["reviews"]:
        out.append(
            f"  {r['at']}  {r['level_name']}  {r['reviewer']}  {label(app, r['decision'])}  {r['comment']}"
        )
    if not reviews:
        out.append("  -")
    if data["accepted_words"]:
        out.append(f"{label(app, 'accepted_words')}:")
        for a in data["accepted_words"]:
            out.append(
                f"  {a['at']}  {a['level_name']}  {a['reviewer']}  {a['word']}  {a['reason']}"
            )
    out.append(f"{label(app, 'deliveries')}:")
    for d in data["deliveries"]:
        remote = d["remote_url"] or d["remote_id"] or ""
        out.append(
            f"  #{d['id']} {d['channel']}  {label(app, d['shown_state'])}  {d['due_at']}  {remote}  {d['last_error'] or ''}".rstrip()
        )
    if not dels:
        out.append("  -")
    from kepubot.services.validate import visible

    # a post stored before control characters were refused must not drive the terminal
    click.echo(visible("\n".join(out)))


@post.command("submit")
@click.argument("post_ids", type=ID, nargs=-1, required=True)
@click.option("--comment", default="", help="A note for the reviewers.")
@pass_state
def post_submit(state: State, post_ids: tuple[int, ...], comment: str) -> None:
    """Send drafts (or rejected posts) to review; all or nothing."""
    from kepubot.services.posts import get_post, submit, warnings_of

    state.app.misused_words  # noqa: B018 — a broken misused-words list is an error before anything is written
    submit(state.app, state.user, list(post_ids), now=now_utc(), comment=comment)
    _proofreading_warnings(state.app, list(post_ids))
    ids = ", ".join(map(str, post_ids))
    click.echo(say(state, f"submitted: {ids}", f"已提交审核：{ids}"))
    for post_id in dict.fromkeys(post_ids):
        # warn words do not stop a submit; a reviewer accepts each with a reason
        for hit in warnings_of(state.app, get_post(state.app, post_id)):
            click.echo(
                say(
                    state,
                    f"warning: post {post_id}: {hit.describe()}; a reviewer must accept it"
                    " with a reason",
                    f"warning: 稿件 {post_id}：{hit.describe()}；需由审核员填写理由后接受",
                ),
                err=True,
            )


def _seen_at_start(
    app: App, post_ids: tuple[int, ...], level: str | None, pinned_hash: str | None
) -> dict[int, Any]:
    """What the reviewer is deciding on, read when the command starts (docs/architecture.md
    §4.6): each post's content hash (or ``--hash``) and level (or ``--level``). The decision
    commits only if both are unchanged inside its write transaction."""
    import logging

    from kepubot.errors import InvalidInput, NotFound
    from kepubot.services.posts import Seen, get_post, level_number

    if pinned_hash is not None and len(set(post_ids)) != 1:
        raise InvalidInput("--hash pins the content of one post; give exactly one post id")
    wanted = level_number(app, level) if level is not None else None
    seen = {}
    for post_id in dict.fromkeys(post_ids):
        try:
            p = get_post(app, post_id)
        except NotFound:
            continue  # the decision lists it with every other refusal
        at = wanted if wanted is not None else p.review_level if p.state == "in_review" else None
        seen[post_id] = Seen(content_hash=(pinned_hash or p.content_hash).strip(), level=at)
        logging.getLogger("kepubot.cli").debug(
            "post %d read: level %s, content hash %s", post_id, at, seen[post_id].content_hash
        )
    return seen


_LEVEL_HELP = "The review level you decide on (name or number); refused if the post is at another."
_HASH_HELP = "The content hash you reviewed (post show prints it); refused if the post changed."


@post.command("approve")
@click.argument("post_ids", type=ID, nargs=-1, required=True)
@click.option("--comment", default="", help="Review comment.")
@click.option(
    "--ack-proofreading",
    is_flag=True,
    help="At the final level: acknowledge every remaining proofreading finding (recorded in"
    " the audit); without it a post with findings is refused, listing them.",
)
@click.option("--level", metavar="LEVEL", help=_LEVEL_HELP)
@click.option("--hash", "pinned_hash", metavar="H", help=_HASH_HELP)
@click.option(
    "--accept-word",
    "accept_words",
    multiple=True,
    metavar="WORD",
    help="Accept this warning word of the post (repeatable; needs --reason).",
)
@click.option("--reason", default=None, help="Why the accepted warning words are acceptable.")
@click.option(
    "--accept-warnings",
    metavar="REASON",
    default=None,
    help="Accept every warning word of the posts, for this reason.",
)
@pass_state
def post_approve(
    state: State,
    post_ids: tuple[int, ...],
    comment: str,
    ack_proofreading: bool,
    level: str | None,
    pinned_hash: str | None,
    accept_words: tuple[str, ...],
    reason: str | None,
    accept_warnings: str | None,
) -> None:
    """Approve posts at their current review level; all or nothing."""
    from kepubot.errors import InvalidInput
    from kepubot.services.posts import Acceptance, approve, get_post

    app = state.app
    app.misused_words  # noqa: B018 — a broken misused-words list is an error before anything is written
    seen = _seen_at_start(app, post_ids, level, pinned_hash)
    if reason is not None and not accept_words:
        raise InvalidInput("--reason goes with --accept-word WORD (the warning word it accepts)")
    if accept_words and not (reason or accept_warnings or "").strip():
        raise InvalidInput("--accept-word: give --reason TEXT saying why the word is acceptable")
    accept = None
    if accept_words or accept_warnings is not None:
        accept = Acceptance(
            reason=(reason if reason is not None else accept_warnings) or "",
            words=tuple(w.strip() for w in accept_words),
            all=accept_warnings is not None,
        )
    approve(
        app,
        state.user,
        list(post_ids),
        now=now_utc(),
        comment=comment,
        ack_proofreading=ack_proofreading,
        seen=seen,
        accept=accept,
    )
    _proofreading_warnings(
        app, [i for i in dict.fromkeys(post_ids) if get_post(app, i).state == "in_review"]
    )
    for post_id in dict.fromkeys(post_ids):
        p = get_post(app, post_id)
        if p.state == "approved":
            names = ", ".join(p.channels)
            click.echo(
                say(
                    state,
                    f"post {post_id}: approved; deliveries queued for {names}",
                    f"稿件 {post_id}：审核完成，已为 {names} 排队发布",
                )
            )
        else:
            following = app.config.review_levels[p.review_level - 1]
            click.echo(
                say(
                    state,
                    f"post {post_id}: approved at this level; next level {following}",
                    f"稿件 {post_id}：本级已通过，进入{following}",
                )
            )


@post.command("reject")
@click.argument("post_ids", type=ID, nargs=-1, required=True)
@click.option("--reason", required=True, help="Why: the author reads this.")
@click.option("--level", metavar="LEVEL", help=_LEVEL_HELP)
@click.option("--hash", "pinned_hash", metavar="H", help=_HASH_HELP)
@pass_state
def post_reject(
    state: State,
    post_ids: tuple[int, ...],
    reason: str,
    level: str | None,
    pinned_hash: str | None,
) -> None:
    """Reject posts back to their authors with a reason; all or nothing."""
    from kepubot.services.posts import reject

    app = state.app
    seen = _seen_at_start(app, post_ids, level, pinned_hash)
    reject(app, state.user, list(post_ids), reason=reason, now=now_utc(), seen=seen)
    ids = ", ".join(map(str, post_ids))
    click.echo(say(state, f"rejected: {ids}", f"已退回：{ids}"))


@post.command("schedule")
@click.argument("post_id", type=ID)
@click.option(
    "--at", help='"YYYY-MM-DD HH:MM[:SS]" in the configured zone, or ISO 8601 with offset.'
)
@click.option("--next-slot", is_flag=True, help="Each channel's next free posting slot.")
@pass_state
def post_schedule(state: State, post_id: int, at: str | None, next_slot: bool) -> None:
    """Set when a post is published."""
    from kepubot.services.posts import schedule
    from kepubot.timeutil import show

    app = state.app
    result = schedule(app, state.user, post_id, at=at, next_slot=next_slot, now=now_utc())
    if result:
        for channel, due in sorted(result.items()):
            when = f"{show(due, app.tz)} ({app.tz.key})"
            click.echo(
                say(
                    state,
                    f"post {post_id} on {channel}: {when}",
                    f"稿件 {post_id} 在 {channel}：{when}",
                )
            )
    else:
        click.echo(
            say(
                state,
                f"post {post_id}: scheduled"
                + (f" at {at}" if at else " for the next free slot")
                + " (applies when approved)",
                f"稿件 {post_id}：已设定发布时间"
                + (f"为 {at}" if at else "为各渠道的下一个空闲时段")
                + "（审核通过后生效）",
            )
        )


@post.command("cancel")
@click.argument("post_id", type=ID)
@pass_state
def post_cancel(state: State, post_id: int) -> None:
    """Withdraw a post; deliveries not yet sending are cancelled."""
    from kepubot.services.posts import cancel

    count = cancel(state.app, state.user, post_id, now=now_utc())
    click.echo(
        say(
            state,
            f"post {post_id}: cancelled ({count} deliveries cancelled)",
            f"稿件 {post_id}：已撤销（取消了 {count} 个发布任务）",
        )
    )


@post.command("pause")
@click.argument("post_ids", type=ID, nargs=-1, required=True)
@click.option("--reason", default="", help="Why it is held (audit, the post page).")
@pass_state
def post_pause(state: State, post_ids: tuple[int, ...], reason: str) -> None:
    """Hold posts back: nothing more of them is sent until resumed; all or nothing."""
    from kepubot.services.postpause import pause

    done = pause(state.app, state.user, list(post_ids), reason=reason, now=now_utc())
    ids = ", ".join(map(str, done))
    click.echo(
        say(
            state,
            f"paused: {ids} (a send under way finishes; `kepubot post resume` lifts it)",
            f"已暂停：{ids}（正在发送的会完成；用 `kepubot post resume` 恢复）",
        )
    )


@post.command("resume")
@click.argument("post_ids", type=ID, nargs=-1, required=True)
@pass_state
def post_resume(state: State, post_ids: tuple[int, ...]) -> None:
    """Let paused posts be sent again (what is overdue goes at once); all or nothing."""
    from kepubot.services.postpause import resume

    done = resume(state.app, state.user, list(post_ids), now=now_utc())
    ids = ", ".join(map(str, done))
    click.echo(say(state, f"resumed: {ids}", f"已恢复：{ids}"))


@post.command("retract")
@click.argument("post_id", type=ID)
@click.option("--reason", required=True, help="Why it is taken back (audit, alerts).")
@click.option(
    "--channel", "channels", multiple=True, help="Only this channel (repeatable); default all."
)
@pass_state
def post_retract(state: State, post_id: int, reason: str, channels: tuple[str, ...]) -> None:
    """Take a published post back on every channel (final-level reviewer or admin)."""
    from kepubot.services.retraction import retract_post

    result = retract_post(
        state.app, state.user, post_id, reason=reason, now=now_utc(), channels=channels
    )
    if result["retracting"]:
        names = ", ".join(result["retracting"])
        click.echo(
            say(state, f"post {post_id}: retracting on {names}", f"稿件 {post_id}：撤回中：{names}")
        )
    if result["cancelled"]:
        names = ", ".join(result["cancelled"])
        click.echo(
            say(
                state,
                f"post {post_id}: not yet sent, cancelled on {names}",
                f"稿件 {post_id}：尚未发出，已撤销：{names}",
            )
        )
    if result["in_flight"]:
        sending = ", ".join(result["in_flight"])
        click.echo(
            say(
                state,
                f"warning: post {post_id} is still being sent on {sending};"
                f" run `kepubot post retract {post_id}` again once it has settled",
                f"warning: 稿件 {post_id} 仍在 {sending} 发送中；"
                f"发送结束后请再运行 `kepubot post retract {post_id}`",
            ),
            err=True,
        )


@post.command("correct")
@click.argument("post_id", type=ID)
@pass_state
def post_correct(state: State, post_id: int) -> None:
    """Write a correction (更正) of a post: a new draft linked to it; prints its id."""
    from kepubot.services.retraction import correct_post

    new_id = correct_post(state.app, state.user, post_id, now=now_utc())
    click.echo(new_id)


@post.command("preview")
@click.argument("post_id", type=ID)
@click.option("--channel", help="Only this channel.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def post_preview(state: State, post_id: int, channel: str | None, as_json: bool) -> None:
    """Show exactly what each channel would send, and every problem."""
    from kepubot.preview import preview_post, render_preview_text

    app = state.app
    items = preview_post(app, post_id, channel)
    if as_json:
        emit_json(items)
    else:
        click.echo(render_preview_text(app, items))


# --- deliveries ------------------------------------------------------------------------------


@cli.group()
def delivery() -> None:
    """Inspect deliveries (one post on one channel) and act on stuck ones."""


@delivery.command("list")
@click.option("--state", "delivery_state", help="Only deliveries in this state.")
@click.option("--channel", help="Only this channel.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def delivery_list(
    state: State, delivery_state: str | None, channel: str | None, limit: int, as_json: bool
) -> None:
    """List deliveries, newest first."""
    from kepubot.models import DELIVERY_STATES
    from kepubot.queue.retraction import shown_state
    from kepubot.timeutil import show

    if delivery_state and delivery_state not in DELIVERY_STATES:
        fail(f"--state {delivery_state!r}: use one of {', '.join(DELIVERY_STATES)}")
    app = state.app
    rows = app.store.deliveries.list_deliveries(state=delivery_state, channel=channel, limit=limit)
    data: list[dict[str, Any]] = [
        {
            "id": d.id,
            "post_id": d.post_id,
            "channel": d.channel,
            "state": d.state,
            "due_at": show(d.due_at, app.tz),
            "attempts": d.attempts,
            "remote_id": d.remote_id,
            "remote_url": d.remote_url,
            "error_kind": d.error_kind,
            "last_error": d.last_error,
            # publish or retract, and the state as people read it (docs/delivery.md §14.1)
            "kind": d.kind,
            "shown_state": shown_state(d.kind, d.state, d.progress),
        }
        for d in rows
    ]
    if as_json:
        emit_json(data)
        return
    from kepubot.i18n import label

    headers = [
        label(app, k) for k in ("id", "post", "channel", "state", "due", "attempts", "remote")
    ]
    click.echo(
        format_table(
            headers,
            [
                [
                    str(d["id"]),
                    str(d["post_id"]),
                    d["channel"],
                    label(app, d["shown_state"]),
                    d["due_at"],
                    str(d["attempts"]),
                    d["remote_url"] or d["remote_id"] or (d["last_error"] or "")[:60],
                ]
                for d in data
            ],
        )
    )


@delivery.command("retry")
@click.argument("delivery_id", type=ID)
@pass_state
def delivery_retry(state: State, delivery_id: int) -> None:
    """Put a failed delivery back in the queue."""
    from kepubot.services import operator

    operator.retry(state.app, state.user, delivery_id, now=now_utc())
    click.echo(say(state, f"delivery {delivery_id}: queued", f"发布任务 {delivery_id}：已重新排队"))


@delivery.command("resolve")
@click.argument("delivery_id", type=ID)
@click.option(
    "--published", "published", metavar="URL_OR_ID", help="It is on the platform: its URL or id."
)
@click.option("--not-published", is_flag=True, help="It is not on the platform: send it again.")
@click.option("--retracted", is_flag=True, help="A retraction: it is gone from the platform.")
@click.option(
    "--not-retracted", is_flag=True, help="A retraction: it is still there; retract it again."
)
@pass_state
def delivery_resolve(
    state: State,
    delivery_id: int,
    published: str | None,
    not_published: bool,
    retracted: bool,
    not_retracted: bool,
) -> None:
    """Settle a delivery that needs attention."""
    from kepubot.services import operator

    if retracted or not_retracted:
        if published or not_published or (retracted and not_retracted):
            fail("give exactly one of --retracted or --not-retracted")
        outcome = operator.resolve_retraction(
            state.app, state.user, delivery_id, now=now_utc(), retracted=retracted
        )
        click.echo(
            say(
                state,
                f"delivery {delivery_id}: {outcome}",
                f"发布任务 {delivery_id}：{zh_state(outcome)}",
            )
        )
        return
    if bool(published) == bool(not_published):
        fail("give exactly one of --published URL_OR_ID or --not-published")
    result = operator.resolve(
        state.app, state.user, delivery_id, now=now_utc(), published=published
    )
    click.echo(
        say(
            state,
            f"delivery {delivery_id}: {result}",
            f"发布任务 {delivery_id}：{zh_state(result)}",
        )
    )


@delivery.command("confirm")
@click.argument("delivery_id", type=ID)
@click.option("--url", required=True, help="Where the person published it (http(s) URL).")
@pass_state
def delivery_confirm(state: State, delivery_id: int, url: str) -> None:
    """Confirm an assisted task (待人工发布) as published at URL (docs/delivery.md §17)."""
    from kepubot.services import assisted

    try:
        done = assisted.confirm(state.app, state.user, delivery_id, url=url, now=now_utc())
    except ValueError as exc:
        fail(str(exc))
    click.echo(
        say(
            state,
            f"delivery {delivery_id}: published at {done.remote_url}",
            f"发布任务 {delivery_id}：已发布，地址 {done.remote_url}",
        )
    )


@delivery.command("decline")
@click.argument("delivery_id", type=ID)
@click.option("--reason", required=True, help="Why it could not be published.")
@pass_state
def delivery_decline(state: State, delivery_id: int, reason: str) -> None:
    """Report that an assisted task (待人工发布) could not be published (docs/delivery.md §17)."""
    from kepubot.services import assisted

    try:
        assisted.decline(state.app, state.user, delivery_id, reason=reason, now=now_utc())
    except ValueError as exc:
        fail(str(exc))
    click.echo(
        say(
            state,
            f"delivery {delivery_id}: failed (declined: {reason.strip()})",
            f"发布任务 {delivery_id}：未能发布（原因：{reason.strip()}）",
        )
    )


# --- channels ----------------------------------------------------------------------------------


@cli.group()
def channels() -> None:
    """Configured channels."""


@channels.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def channels_list(state: State, as_json: bool) -> None:
    """Configured channels with their type and schedule settings."""
    app = state.app
    data: list[dict[str, Any]] = [
        {
            "name": name,
            "type": ch.type_name(),
            "rate_limit": ch.settings.rate_limit,
            "posting_times": ch.settings.posting_times,
            "min_gap_minutes": ch.settings.min_gap_minutes,
        }
        for name, ch in app.channels.items()
    ]
    if as_json:
        emit_json(data)
        return
    click.echo(
        format_table(
            ["name", "type", "rate_limit", "posting_times"],
            [
                [d["name"], d["type"], d["rate_limit"] or "-", " ".join(d["posting_times"]) or "-"]
                for d in data
            ],
        )
    )


@channels.command("check")
@click.argument("name", required=False)
@pass_state
def channels_check(state: State, name: str | None) -> None:
    """Verify credentials with a harmless call: account, token expiry, missing permissions."""
    from kepubot.errors import ChannelError, InvalidInput

    app = state.app
    if name is not None and name not in app.channels:
        raise InvalidInput(f"no channel {name!r} (configured: {', '.join(sorted(app.channels))})")
    # the checked channels' ${ENV} secrets (and the token key), every missing one at once
    app.require_secrets(None if name is None else [name], sections=("kepubot",))
    failed = 0
    for channel_name, channel in app.channels.items():
        if name is not None and channel_name != name:
            continue
        who = f"{channel_name} ({channel.type_name()})"
        if not channel.capabilities.verify:
            kind = channel.type_name()
            click.echo(
                say(
                    state,
                    f"{who}: cannot check: channel type {kind!r} has no credential check",
                    f"{who}：无法检查：渠道类型 {kind!r} 没有凭据检查",
                )
            )
            continue
        try:
            line = channel.verify()
        except NotImplementedError as exc:
            click.echo(say(state, f"{who}: cannot check: {exc}", f"{who}：无法检查：{exc}"))
            continue
        except ChannelError as exc:
            failed += 1
            click.echo(say(state, f"{who}: FAILED: {exc}", f"{who}：失败：{exc}"))
            continue
        click.echo(say(state, f"{who}: ok: {line}", f"{who}：正常：{line}"))
        try:
            checks = channel.permissions() if channel.capabilities.permissions else []
        except ChannelError as exc:
            click.echo(
                say(state, f"{who}: permissions not checked: {exc}", f"{who}：权限未检查：{exc}")
            )
            continue
        for check in checks:
            if check.held is False:
                failed += 1
                click.echo(
                    say(
                        state,
                        f"{who}: missing permission {check.name}:"
                        f" needed for {check.needed_for} ({check.detail})",
                        f"{who}：缺少权限 {check.name}：{check.needed_for}需要它（{check.detail}）",
                    )
                )
            elif check.held is None:
                click.echo(
                    say(
                        state,
                        f"{who}: permission {check.name} not checked: {check.detail}",
                        f"{who}：权限 {check.name} 未检查：{check.detail}",
                    )
                )
    if failed:
        sys.exit(1)


# --- audit -------------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("--post", "post_id", type=ID, help="Only this post's history.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10**9),
    default=50,
    show_default=True,
    help="Rows when no --post is given.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def audit(ctx: click.Context, post_id: int | None, limit: int, as_json: bool) -> None:
    """The audit trail (a post's history with --post); `audit verify` checks the chain."""
    if ctx.invoked_subcommand is not None:
        return
    from kepubot.timeutil import show

    state: State = ctx.obj
    app = state.app
    if post_id is not None:
        from kepubot.services.posts import get_post

        get_post(app, post_id)
        rows = app.store.audit.rows_for_post(post_id)
    else:
        rows = app.store.audit.recent(limit)
    data: list[dict[str, Any]] = [
        {
            "id": r.id,
            "at": show(r.at, app.tz),
            "actor": r.actor,
            "action": r.action,
            "post_id": r.post_id,
            "delivery_id": r.delivery_id,
            "detail": r.detail,
        }
        for r in rows
    ]
    if as_json:
        emit_json(data)
        return
    for r in data:
        target = f"post {r['post_id']}" if r["post_id"] else ""
        if r["delivery_id"]:
            target += f" delivery {r['delivery_id']}"
        detail = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
        click.echo(
            f"{r['id']:>6}  {r['at']}  {r['actor']:<12} {r['action']:<26} {target:<22} {detail}"
        )


@audit.command("verify")
@pass_state
def audit_verify(state: State) -> None:
    """Walk the hash chain; names the first broken row."""
    app = state.app
    result = app.store.audit.verify()
    if not result.ok:
        echo_error(
            state,
            say(
                state,
                f"audit row {result.broken_id} is broken: {result.reason}",
                f"审计记录第 {result.broken_id} 行已损坏：{result.reason}",
            ),
        )
        sys.exit(1)
    head = app.store.audit.head_hash()
    click.echo(
        say(
            state,
            f"audit chain intact: {result.rows} rows; head hash {head or '-'}",
            f"审计链完整：共 {result.rows} 行；最新哈希 {head or '-'}",
        )
    )


@cli.group()
def db() -> None:
    """The database itself (docs/operations.md §15)."""


@db.command("copy")
@click.option(
    "--to",
    "to",
    required=True,
    help="The empty PostgreSQL database: postgresql://user:${ENV}@host:port/name.",
)
@pass_state
def db_copy(state: State, to: str) -> None:
    """Copy this (SQLite) database into an empty PostgreSQL database and verify the copy."""
    from kepubot.errors import InvalidInput
    from kepubot.queue.dbcopy import copy_store, target_url
    from kepubot.queue.store import Store

    url = target_url(to)
    source_store = state.app.store
    if source_store.dialect != "sqlite":
        raise InvalidInput(
            f"db copy: the configured database {source_store.label} is not SQLite; point"
            " [kepubot] database (or KEPUBOT_DATABASE) at the SQLite file to copy"
        )
    target_store = Store(url)
    try:
        result = copy_store(source_store, target_store)
    finally:
        target_store.close()
    for table, count in sorted(result.counts.items()):
        click.echo(f"  {table}: {count}")
    rows, tables, head = sum(result.counts.values()), len(result.counts), result.audit_head or "-"
    click.echo(
        say(
            state,
            f"copied {rows} rows in {tables} tables to {target_store.label}; row counts match;"
            f" audit chain intact on the target: {result.audit_rows} rows, head hash {head}",
            f"已复制 {rows} 行（{tables} 个表）到 {target_store.label}；行数一致；"
            f"目标库的审计链完整：{result.audit_rows} 行，最新哈希 {head}",
        )
    )


# --- the daemon ----------------------------------------------------------------------------


@cli.command()
@click.option(
    "--once",
    is_flag=True,
    help="One full pass (reconcile, publish what is due, watchdog), then exit.",
)
@pass_state
def run(state: State, once: bool) -> None:
    """The daemon: publish due deliveries on schedule, reconcile, watch."""
    from kepubot.bot.daemon import run_forever, run_once

    app = state.app
    app.store.migrate()  # before any worker thread opens the database
    if once:
        result = run_once(app)
        click.echo(
            say(
                state,
                f"one pass done: {result['claimed']} deliveries sent or attempted,"
                f" {result['alerts']} alerts",
                f"完成一轮：发送或尝试了 {result['claimed']} 个发布任务，{result['alerts']} 条告警",
            )
        )
        return
    sys.exit(run_forever(app))


@cli.group()
def metrics() -> None:
    """Reach metrics of published deliveries."""


@metrics.command("collect")
@click.option(
    "--post",
    "post_id",
    type=ID,
    help="Only this post's published deliveries, at once, without waiting for their next"
    " collection point (manager or operator).",
)
@pass_state
def metrics_collect(state: State, post_id: int | None) -> None:
    """One collection pass: every delivery whose collection point has come."""
    from kepubot.bot.collect import collect_accounts, collect_now, collect_pass
    from kepubot.bot.dispatch import Engine

    app = state.app
    if post_id is not None:
        # the console's 立即采集 on a post (docs/architecture.md §15.3)
        result = collect_now(app, state.user, now=now_utc(), post_id=post_id)
        click.echo(
            say(
                state,
                f"collected {result['collected']} snapshots of post {post_id}"
                f" ({result['deliveries']} deliveries), {result['failed']} failed",
                f"稿件 {post_id}：采集了 {result['collected']} 条数据"
                f"（{result['deliveries']} 个发布任务），{result['failed']} 个失败",
            )
        )
        return
    app.store.migrate()
    engine = Engine(app)
    try:
        result = collect_pass(engine)
        accounts = collect_accounts(engine)
    finally:
        engine.close()
    click.echo(
        say(
            state,
            f"collected {result['collected']} snapshots, {result['failed']} failed (retried at"
            f" the next point), {accounts} account figures",
            f"采集了 {result['collected']} 条数据，{result['failed']} 个失败（下个采集点重试），"
            f"{accounts} 条账号数据",
        )
    )


@metrics.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--channel", required=True, help="The assisted channel the export belongs to.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["toutiao", "generic"]),
    default=None,
    help="The export's layout (default: toutiao for a toutiao channel, else generic).",
)
@click.option(
    "--mapping",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Which column holds title/published/url/views/likes/comments/shares/favorites.",
)
@pass_state
def metrics_import(
    state: State, file: Path, channel: str, export_format: str | None, mapping: tuple[str, ...]
) -> None:
    """Import an outlet's data export (CSV or XLSX) as figures, all or nothing."""
    from kepubot.files.metricsimport import FIGURES, import_file

    app = state.app
    found = app.channels.get(channel)
    if found is None:
        fail(f"--channel {channel!r}: no such channel in {Path(app.config.path).name}")
    fields = ("title", "published", "url", *FIGURES)
    columns: dict[str, str] = {}
    problems = []
    for item in mapping:
        key, _, column = item.partition("=")
        if key.strip() not in fields or not column.strip():
            problems.append(
                f"--mapping {item!r}: write FIELD=COLUMN, FIELD one of {', '.join(fields)}"
            )
        else:
            columns[key.strip()] = column.strip()
    if problems:
        for line in problems:
            echo_error(state, line)
        sys.exit(2)
    if export_format is None:
        platform = getattr(found.settings, "platform", "")
        export_format = "toutiao" if platform == "toutiao" else "generic"
    result = import_file(
        app,
        state.user,
        file,
        channel=channel,
        export_format=export_format,
        mapping=columns,
        now=now_utc(),
    )
    if result.errors:
        for line in result.errors:
            echo_error(state, line)
        echo_error(
            state,
            say(
                state,
                f"{file.name}: nothing was imported; fix the above and run it again",
                f"{file.name}：未导入任何数据；请改正以上问题后重新运行",
            ),
        )
        sys.exit(2)
    click.echo(
        say(
            state,
            f"imported {len(result.stored)} rows into {channel} (marked imported)",
            f"已导入 {len(result.stored)} 行到 {channel}（标记为导入）",
        )
    )
    for number, title in result.unmatched:
        click.echo(
            say(
                state,
                f"unmatched: row {number}: {title} (no published delivery with that link, or"
                " that title on that day)",
                f"未匹配：第 {number} 行：{title}（没有该链接的已发布任务，当天也没有该标题的）",
            )
        )


@cli.group()
def media() -> None:
    """The media store (copies of every post's images and videos)."""


@media.command("gc")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option(
    "--min-age",
    "min_age",
    type=click.IntRange(0, 10**6),
    default=60,
    show_default=True,
    help="Keep files younger than this many minutes (a write in progress may own them).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def media_gc(state: State, dry_run: bool, min_age: int, as_json: bool) -> None:
    """Remove files of the media store that no post references (operator)."""
    import time

    from kepubot.files.media import collect_garbage

    app = state.app
    app.require_role(state.user, "operator", action="cleaning the media store")
    files = collect_garbage(
        app.media, app.store, now=time.time(), min_age_seconds=min_age * 60, dry_run=dry_run
    )
    total = sum(size for _, size in files)
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "files": [{"path": p, "size": s} for p, s in files],
                "bytes": total,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    verb_zh = "将删除" if dry_run else "已删除"
    for path, size in files:
        click.echo(say(state, f"{verb} {path} ({size} bytes)", f"{verb_zh} {path}（{size} 字节）"))
    click.echo(
        say(
            state,
            f"{verb} {len(files)} unreferenced files, {total} bytes, from {app.media.root}",
            f"{verb_zh} {app.media.root} 中无引用的文件 {len(files)} 个，共 {total} 字节",
        )
    )


@cli.command()
@click.option(
    "--since", help="First day (YYYY-MM-DD, configured zone); default 6 days before --until."
)
@click.option("--until", help="Last day (YYYY-MM-DD); default today.")
@click.option("--channel", help="Only this channel.")
@click.option("--tag", help="Only posts with this tag.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html", "xlsx"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--section",
    help="With --format csv: only this section (totals, channels, top_posts, top_engagement,"
    " tags, authors, daily); without it the CSV is a zip with one file per section.",
)
@pass_state
def report(
    state: State,
    since: str | None,
    until: str | None,
    channel: str | None,
    tag: str | None,
    fmt: str,
    out: Path | None,
    section: str | None,
) -> None:
    """Engagement report for managers: totals, channels, top posts, tags, authors, daily trend."""
    from kepubot.errors import InvalidInput
    from kepubot.reports.aggregate import build_report
    from kepubot.reports.render import render
    from kepubot.timeutil import parse_date

    if fmt == "xlsx" and out is None:
        raise InvalidInput("--format xlsx needs --out FILE (it is a binary file)")
    if section is not None:
        from kepubot.reports.formats import section_name

        if fmt != "csv":
            raise InvalidInput("--section goes with --format csv")
        section = section_name(section)
    elif fmt == "csv" and out is None:
        raise InvalidInput(
            "--format csv without --section is a zip with one file per section: give --out"
            " FILE.zip, or --section NAME for one section on standard output"
        )
    app = state.app
    # the console's rule: reports are for managers (and admins)
    app.require_role(state.user, "manager", action="reading reports")
    first = parse_date(since, "--since") if since else None
    last = parse_date(until, "--until") if until else None
    language = (
        state.language or app.config.data.reports.language or app.config.data.kepubot.language
    )
    data = build_report(
        app, since=first, until=last, channel=channel, tag=tag, now=now_utc(), language=language
    )
    payload = render(data, fmt, section)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
        click.echo(say(state, f"wrote {out}", f"已写入 {out}"))
    elif isinstance(payload, bytes):
        sys.stdout.buffer.write(payload)
    else:
        click.echo(payload, nl=not payload.endswith("\n"))


@cli.command()
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
@click.option("--reason", required=True, help="Why (shown in status, the console, alerts).")
@pass_state
def pause(state: State, channels: tuple[str, ...], reason: str) -> None:
    """Emergency stop: claim nothing more on every channel, or the named ones (operator)."""
    from kepubot.bot.stop import pause_channels

    added = pause_channels(state.app, state.user, list(channels), reason=reason, now=now_utc())
    names = ", ".join("全部渠道 (all)" if s == "*" else s for s in added) or "-"
    if added:
        click.echo(say(state, f"paused: {names}", f"已暂停：{names}"))
    else:
        click.echo(say(state, "already paused; nothing changed", "已经暂停，未做改动"))


@cli.command()
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
@pass_state
def resume(state: State, channels: tuple[str, ...]) -> None:
    """Lift an emergency stop (operator)."""
    from kepubot.bot.stop import resume_channels

    lifted = resume_channels(state.app, state.user, list(channels), now=now_utc())
    names = ", ".join("全部渠道 (all)" if s == "*" else s for s in lifted)
    click.echo(say(state, f"resumed: {names}", f"已恢复：{names}"))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Deliveries per state, the oldest overdue one, open breakers, running daemons."""
    from kepubot.bot.status import collect_status, render_status

    app = state.app
    data = collect_status(app, now_utc())
    if as_json:
        emit_json(data)
    else:
        click.echo(render_status(app, data))


# --- console users and the console ------------------------------------------------------------


@cli.group()
def user() -> None:
    """Console users (their roles come from [users] in the config)."""


@user.command("passwd")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (also when input is piped).",
)
@pass_state
def user_passwd(state: State, name: str, password_stdin: bool) -> None:
    """Set NAME's password for the browser console (stored as a scrypt hash)."""
    from kepubot.services.accounts import change_password, require_password_right, require_user

    app = state.app
    require_user(app, name)  # before asking for a password
    require_password_right(app, state.user, name)  # own password, or an admin
    if password_stdin or not sys.stdin.isatty():
        # piped in (scripts, provisioning): the first line is the password
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"new password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    change_password(app, state.user, name, password, now=now_utc())
    click.echo(say(state, f"password set for {name}", f"已为 {name} 设置密码"))


@user.command("signout")
@click.argument("name")
@pass_state
def user_signout(state: State, name: str) -> None:
    """End every console session of NAME at once (admins; anyone for themself)."""
    from kepubot.services.accounts import sign_out_everywhere

    ended = sign_out_everywhere(state.app, state.user, name, now=now_utc())
    click.echo(
        say(
            state,
            f"{name} is signed out everywhere ({ended} sessions ended)",
            f"{name} 已在所有地方退出登录（结束了 {ended} 个会话）",
        )
    )


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def user_list(state: State, as_json: bool) -> None:
    """Configured users, their roles and whether they can sign in to the console."""
    app = state.app
    data: list[dict[str, Any]] = [
        {
            "name": name,
            "display_name": section.name,
            "roles": list(section.roles),
            "password_set": app.store.accounts.has_password(name),
        }
        for name, section in app.config.data.users.items()
    ]
    if as_json:
        emit_json(data)
        return
    click.echo(
        format_table(
            ["name", "roles", "password"],
            [[d["name"], ",".join(d["roles"]), "set" if d["password_set"] else "-"] for d in data],
        )
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port (0: any free port).",
)
@pass_state
def web(state: State, host: str, port: int) -> None:
    """The browser console for editors, reviewers and managers."""
    from kepubot.web.app import serve

    app = state.app
    app.require_secrets([], sections=("web",))  # the console needs no channel's secret
    app.store.migrate()  # before the server's threads open the database
    serve(app.config, host=host, port=port, echo=click.echo)


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def sandbox(port: int, host: str) -> None:
    """A local emulator of the platform APIs (for the demo, tests and trying things out)."""
    from kepubot.sandbox.server import main as sandbox_main

    sandbox_main(port=port, host=host)


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default="kepubot-demo",
    show_default=True,
    help="Workspace folder: new, empty, or an earlier demo's (only its files are replaced).",
)
@click.pass_obj
def demo(state: State, folder: Path) -> None:
    """The whole flow end to end on the local sandbox, with no credentials."""
    from kepubot.demo import run_demo

    # the demo writes its own config: no [kepubot] language to read, so --lang or Chinese
    sys.exit(run_demo(folder.resolve(), click.echo, language=state.language or "zh"))


def main() -> None:
    cli(prog_name="kepubot")
