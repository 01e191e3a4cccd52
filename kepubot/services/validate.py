"""The one place that decides which text and which links a post may hold (issue 11 items 7, 8).

Every entry point (``post add``/``edit``, ``post import``, the console's compose form, the
per-channel variants) builds a ``PostInput`` and goes through ``posts.prepare``, which calls
``clean_input`` first. So the rules below hold everywhere, and each refusal names the field,
the file/row or option it came from, and the position of the offending character.

Text rules:
- line ends: CRLF (Windows files) and a lone CR are normalised to LF;
- refused: NUL and every other C0 control except tab and newline, DEL, the C1 controls
  (U+0080–U+009F: terminals act on some of them, like ESC), and the bidirectional overrides and
  isolates U+202A–U+202E, U+2066–U+2069 (they make text read differently from what it is);
- zero-width characters (U+200B–U+200D, U+2060, U+FEFF) are removed from titles and tags,
  where they only hide differences; in bodies and summaries they are kept (U+200D joins emoji).

Links: an absolute http or https URL with a host, and no whitespace, quotes, angle brackets,
backslashes or control characters anywhere (they would break out of an HTML attribute or
a feed element).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kepubot.errors import InvalidInput

if TYPE_CHECKING:
    from kepubot.models import Post
    from kepubot.services.posts import PostInput

BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_ZERO_WIDTH_RE = re.compile("[" + "".join(sorted(ZERO_WIDTH)) + "]")
_ALLOWED_CONTROLS = frozenset("\t\n")
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\x07": "BEL",
    "\x08": "BS",
    "\x0b": "VT",
    "\x0c": "FF",
    "\x1b": "ESC",
    "\x7f": "DEL",
}
# characters a link may never hold (besides whitespace and controls)
_LINK_FORBIDDEN = frozenset("\"'<>\\`{}|^")


def _refused(char: str) -> bool:
    code = ord(char)
    if char in _ALLOWED_CONTROLS:
        return False
    return code < 0x20 or 0x7F <= code <= 0x9F or char in BIDI_CONTROLS


def _describe(char: str) -> str:
    name = _CONTROL_NAMES.get(char) or unicodedata.name(char, "control character")
    return f"U+{ord(char):04X} {name}"


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_problems(text: str, where: str) -> list[str]:
    """One line per refused character of ``text`` (after newline normalisation): where, the
    position (character number, and line:column when the text has several lines)."""
    problems: list[str] = []
    line, column = 1, 0
    multiline = "\n" in text
    for index, char in enumerate(text, start=1):
        if char == "\n":
            line, column = line + 1, 0
            continue
        column += 1
        if _refused(char):
            at = f"character {index}" + (f" (line {line}, column {column})" if multiline else "")
            problems.append(
                f"{where}: {_describe(char)} at {at} is not allowed; remove it"
                " (control and text-direction characters are refused)"
            )
            if len(problems) >= 5:  # a binary file pasted in: five lines say enough
                rest = sum(1 for c in text[index:] if _refused(c))
                if rest:
                    problems.append(f"{where}: {rest} more such characters")
                break
    return problems


def visible(text: str) -> str:
    """``text`` for a terminal: every character the rules above refuse (and a stray CR) shown
    as a ``\\uXXXX`` escape, so a value stored before they were refused cannot move the
    cursor, ring the bell or reverse what follows."""
    text = text.replace("\r\n", "\n")
    return "".join(f"\\u{ord(c):04x}" if c == "\r" or _refused(c) else c for c in text)


def strip_zero_width(text: str) -> str:
    return _ZERO_WIDTH_RE.sub("", text)


def link_problem(value: str, where: str) -> str | None:
    """Why ``value`` is not an acceptable link, or None. ``value`` is already stripped."""
    hint = "give a full address such as https://kepu.example.org/articles/1"
    if not re.match(r"(?i)https?://", value):
        return f"{where} {value!r}: not an http(s) URL; {hint}"
    bad = next(
        (c for c in value if c.isspace() or c in _LINK_FORBIDDEN or _refused(c) or ord(c) < 32),
        None,
    )
    if bad is not None:
        shown = _describe(bad) if not bad.isprintable() or bad.isspace() else repr(bad)
        return (
            f"{where}: a link may not hold {shown} (character {value.index(bad) + 1});"
            f" encode it or remove it; {hint}"
        )
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        return f"{where} {value!r}: not a valid URL; {hint}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{where} {value!r}: not an http(s) URL; {hint}"
    if not parts.hostname:
        return f"{where} {value!r}: the address has no host name; {hint}"
    if port == 0:
        return f"{where} {value!r}: port 0 is not a valid port; {hint}"
    return None


def check_link(value: str, where: str) -> str:
    """The link, stripped; raises InvalidInput when it is not an acceptable http(s) URL.
    An empty link is allowed (no link)."""
    value = value.strip()
    if value:
        problem = link_problem(value, where)
        if problem is not None:
            raise InvalidInput(problem)
    return value


def clean_input(data: PostInput) -> PostInput:
    """``data`` with normalised line ends and zero-width characters removed from titles and
    tags; raises InvalidInput listing every refused character and bad link (one line each)."""
    problems: list[str] = []
    changes: dict[str, object] = {}

    def text(value: str, where: str, *, title: bool = False) -> str:
        value = normalise_newlines(value)
        if title:
            value = strip_zero_width(value)
        problems.extend(text_problems(value, where))
        return value

    if data.title is not None:
        changes["title"] = text(data.title, data.place("title", "--title"), title=True)
    if data.body is not None:
        changes["body"] = text(data.body, data.place("body", "--body"))
    if data.summary is not None:
        changes["summary"] = text(data.summary, data.place("summary", "--summary"))
    if data.tags is not None:
        where = data.place("tags", "--tag")
        changes["tags"] = [text(tag, where, title=True) for tag in data.tags]
    if data.link is not None:
        link = data.link.strip()
        problem = link_problem(link, data.place("link", "--link")) if link else None
        if problem:
            problems.append(problem)
        changes["link"] = link
    if data.variants is not None:
        variants: dict[str, dict[str, str]] = {}
        for channel, overrides in data.variants.items():
            cleaned: dict[str, str] = {}
            for key, value in overrides.items():
                where = f"{data.place('variants', 'variants')} variants.{channel}.{key}"
                if not isinstance(value, str):
                    cleaned[key] = value
                elif key == "link":
                    value = value.strip()
                    problem = link_problem(value, where) if value else None
                    if problem:
                        problems.append(problem)
                    cleaned[key] = value
                else:
                    cleaned[key] = text(value, where, title=key == "title")
            variants[channel] = cleaned
        changes["variants"] = variants
    if data.sources is not None:
        from kepubot.sources import problems as source_problems

        # titles go through the text rules, URLs through link_problem (issue 13 §5)
        sources = [
            {k: normalise_newlines(v).strip() if k == "title" else v.strip() for k, v in s.items()}
            for s in data.sources
        ]
        problems.extend(source_problems(sources, data.place("sources", "--source")))
        changes["sources"] = sources
    if problems:
        raise InvalidInput("\n".join(problems))
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def stored_problems(post: Post) -> list[str]:
    """What these rules refuse, found in a post already stored (written before they existed,
    or changed in the database): submit and approval list it, so it is never published."""
    problems: list[str] = []
    texts: list[tuple[str, str]] = [("title", post.title), ("summary", post.summary)]
    texts += [("body", post.body), *(("tags", tag) for tag in post.tags)]
    links: list[tuple[str, str]] = [("link", post.link)]
    for channel, overrides in post.variants.items():
        for key, value in overrides.items():
            target = links if key == "link" else texts
            target.append((f"variants.{channel}.{key}", value))
    for where, value in texts:
        problems.extend(text_problems(normalise_newlines(value), where))
    links += [(f"sources #{n}", s.url) for n, s in enumerate(post.sources, start=1) if s.url]
    for where, value in links:
        problem = link_problem(value.strip(), where) if value.strip() else None
        if problem:
            problems.append(problem)
    return problems
