"""Click's own usage errors in the reader's language (docs/architecture.md §15.5).

A missing argument, an unknown option or command, or a value its type refuses is reported by
Click before any of kepubot's code runs, in English and with ``Error:``. The command line's
group turns each into the project's shape instead: the ``Usage:`` line as Click writes it, the
help hint, and one ``error:`` line (the prefix stays English: scripts look for it) whose text
is Chinese unless the reader asked for English (``--lang en``, or ``[kepubot] language =
"en"``). The exit code stays 2.

The Chinese is built from the exception's kind and fields (which parameter, which option),
not by translating Click's sentence, so Click's wording can change without breaking it; the
reason a type gives for refusing a value (``'abc' is not a valid integer``) is matched by the
patterns below and shown as Click wrote it when none matches, so nothing is ever hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import IO, Any

import click
from click.exceptions import BadParameter, MissingParameter, NoArgsIsHelpError, NoSuchOption

# a value a parameter's type refused: Click's sentence -> Chinese
_VALUE_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"^(?P<v>.+) is not a valid integer(?: range)?\.?$"),
        lambda m: f"{m['v']} 不是有效的整数",
    ),
    (
        re.compile(r"^(?P<v>.+) is not a valid float(?: range)?\.?$"),
        lambda m: f"{m['v']} 不是有效的数字",
    ),
    (
        re.compile(r"^(?P<v>.+) is not a valid boolean\.?$"),
        lambda m: f"{m['v']} 不是有效的布尔值（true/false）",
    ),
    (
        re.compile(r"^(?P<v>.+) is not in the range (?P<r>.+?)\.?$"),
        lambda m: f"{m['v']} 不在允许的范围 {m['r']} 内",
    ),
    (
        re.compile(r"^(?P<v>.+) is not one of (?P<c>.+?)\.?$"),
        lambda m: f"{m['v']} 不是可选值之一（可选：{m['c']}）",
    ),
    (
        re.compile(r"^(?P<v>.+) is not (?P<c>'[^']*')\.?$"),
        lambda m: f"{m['v']} 不是可选值（只能是 {m['c']}）",
    ),
    (
        re.compile(r"^(?:File|Directory|Path) (?P<p>.+) does not exist\.?$"),
        lambda m: f"{m['p']} 不存在",
    ),
    (
        re.compile(r"^(?:File|Directory|Path) (?P<p>.+) is a directory\.?$"),
        lambda m: f"{m['p']} 是目录，这里需要文件",
    ),
    (
        re.compile(r"^(?:File|Directory|Path) (?P<p>.+) is a file\.?$"),
        lambda m: f"{m['p']} 是文件，这里需要目录",
    ),
    (
        re.compile(r"^(?:File|Directory|Path) (?P<p>.+) is not readable\.?$"),
        lambda m: f"{m['p']} 无法读取（没有权限）",
    ),
    (
        re.compile(r"^(?:File|Directory|Path) (?P<p>.+) is not writable\.?$"),
        lambda m: f"{m['p']} 无法写入（没有权限）",
    ),
]

# Click's other usage sentences (parser and group) -> Chinese
_USAGE_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^No such command (?P<c>.+?)\.?$"), lambda m: f"没有命令 {m['c']}"),
    (re.compile(r"^Missing command\.?$"), lambda m: "缺少命令"),
    (
        re.compile(r"^Got unexpected extra arguments? \((?P<a>.*)\)\.?$"),
        lambda m: f"多余的参数：{m['a']}",
    ),
    (
        re.compile(r"^Option (?P<o>.+?) requires an argument\.?$"),
        lambda m: f"选项 {m['o']} 需要一个值",
    ),
    (
        re.compile(r"^Option (?P<o>.+?) requires (?P<n>\d+) arguments\.?$"),
        lambda m: f"选项 {m['o']} 需要 {m['n']} 个值",
    ),
    (
        re.compile(r"^Option (?P<o>.+?) does not take a value\.?$"),
        lambda m: f"选项 {m['o']} 不接受值",
    ),
    (
        re.compile(r"^Argument (?P<a>.+?) takes (?P<n>\d+) values\.?$"),
        lambda m: f"参数 {m['a']} 需要 {m['n']} 个值",
    ),
    (re.compile(r"^No such option:? (?P<o>.+?)\.?$"), lambda m: f"没有选项 {m['o']}"),
]


def _apply(
    rules: Sequence[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]], text: str
) -> str:
    for pattern, render in rules:
        match = pattern.match(text)
        if match:
            return render(match)
    return text


def _one_line(text: str) -> str:
    """Click writes some messages on several lines (a Choice's list): one line, as every
    ``error:`` line is."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _hint(exc: click.UsageError) -> str:
    """The parameter's name as Click's own messages give it (``'POST_IDS...'``, ``'--at'``)."""
    hint: Any = getattr(exc, "param_hint", None)
    param = getattr(exc, "param", None)
    if hint is None and param is not None:
        hint = param.get_error_hint(exc.ctx)
    if hint is None:
        return ""
    if isinstance(hint, str):
        return hint
    return " / ".join(repr(h) for h in hint)


def chinese_message(exc: click.UsageError) -> str:
    """The usage error, in Chinese, on one line."""
    if isinstance(exc, MissingParameter):
        kind = exc.param_type or (exc.param.param_type_name if exc.param else "parameter")
        name = {"argument": "参数", "option": "选项"}.get(kind, "参数")
        text = f"缺少{name} {_hint(exc)}".rstrip()
        choices = getattr(getattr(exc.param, "type", None), "choices", None)
        if choices:
            text += f"（可选：{', '.join(map(str, choices))}）"
        return text
    if isinstance(exc, NoSuchOption):
        text = f"没有选项 {exc.option_name!r}"
        if exc.possibilities:
            text += f"（是否想用 {', '.join(exc.possibilities)}？）"
        return text
    if isinstance(exc, BadParameter):
        reason = _apply(_VALUE_RULES, _one_line(exc.message))
        hint = _hint(exc)
        return f"{hint} 的值无效：{reason}" if hint else f"值无效：{reason}"
    return _apply(_USAGE_RULES, _one_line(exc.message))


class UsageInLanguage(click.UsageError):
    """A Click usage error shown the project's way, in ``language`` (zh or en)."""

    def __init__(self, original: click.UsageError, language: str) -> None:
        super().__init__(original.message, original.ctx)
        self.original = original
        self.language = language  # exit code: UsageError's, 2, as the original's

    def format_message(self) -> str:
        if self.language == "en":
            return _one_line(self.original.format_message())
        return chinese_message(self.original)

    def show(self, file: IO[Any] | None = None) -> None:
        ctx = self.ctx
        color = ctx.color if ctx is not None else None
        if ctx is not None:
            lines = [ctx.get_usage()]
            if ctx.command.get_help_option(ctx) is not None:
                option = max(ctx.command.get_help_option_names(ctx), key=len)
                lines.append(
                    f"Try '{ctx.command_path} {option}' for help."
                    if self.language == "en"
                    else f"运行 '{ctx.command_path} {option}' 查看帮助。"
                )
            click.echo("\n".join(lines) + "\n", file=file, err=file is None, color=color)
        click.echo(f"error: {self.format_message()}", file=file, err=file is None, color=color)


def in_language(exc: click.UsageError, language: str) -> click.UsageError:
    """``exc`` to be shown the project's way; one already converted, and a group called
    without a command (Click shows its help), as they are."""
    if isinstance(exc, (UsageInLanguage, NoArgsIsHelpError)):
        return exc
    return UsageInLanguage(exc, language)


def language_of_args(
    args: Sequence[str], message_language: Callable[[str | None, str | None], str]
) -> str:
    """The reader's language when the top-level options themselves could not be parsed:
    ``--lang`` as written, else ``message_language(config, None)`` (the config's [kepubot]
    language, Chinese by default)."""
    lang: str | None = None
    config: str | None = None
    items = list(args)
    for i, item in enumerate(items):
        value = items[i + 1] if i + 1 < len(items) else None
        if item == "--lang":
            lang = value
        elif item.startswith("--lang="):
            lang = item.split("=", 1)[1]
        elif item == "--config":
            config = value
        elif item.startswith("--config="):
            config = item.split("=", 1)[1]
    if lang in ("zh", "en"):
        return lang
    return message_language(config, None)
