"""Reading posts from CSV and from Markdown files with TOML front matter.

Parsing only: this module turns files into ``PostInput``s whose ``where`` names the file and
row or line of every field, so the workflow's validation errors point at the right place.
Media paths are relative to the file that names them.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import tomllib
from pathlib import Path
from typing import Any

from kepubot.errors import InvalidInput
from kepubot.services.posts import PostInput

CSV_COLUMNS = (
    "title",
    "summary",
    "body",
    "tags",
    "link",
    "channels",
    "at",
    "images",
    "video",
    "cover",
    "sources",  # "标题|https://…; 标题|doi:10.…" (kepubot.sources)
)
REQUIRED_CSV_COLUMNS = ("title", "body", "channels")
FRONT_MATTER_KEYS: dict[str, type] = {
    "title": str,
    "summary": str,
    "tags": list,
    "link": str,
    "images": list,
    "video": str,
    "cover": str,
    "channels": list,
    "at": str,
    "next_slot": bool,
    "variants": dict,
    "sources": list,  # [{title, url} | {title, doi}] (kepubot.sources)
}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


# What a CSV may be saved as. Chinese Excel's "CSV (逗号分隔)" is GB18030 (GBK); "CSV UTF-8"
# is UTF-8 with a BOM; "Unicode 文本" is UTF-16 with a BOM. A BOM decides; without one, strict
# UTF-8 first (GB18030 would also decode most UTF-8 bytes, wrongly), then GB18030, a superset
# of GBK and GB2312 that maps every Unicode character. Trying the candidates in this order is
# exact for these encodings; a statistical detector (charset-normalizer) guesses, and on short
# Chinese text it picks Big5 or a Latin code page often enough to matter.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 (BOM)"),
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 (BOM)"),  # before UTF-16 LE: the same first bytes
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 (BOM)"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 (BOM)"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 (BOM)"),
)
_CANDIDATES = (("utf-8", "UTF-8"), ("gb18030", "GB18030"))


def _row_of(text: str) -> tuple[int, int]:
    """(CSV data row, line) of the end of ``text``, the part of a file before a bad byte."""
    line = text.count("\n") + 1
    try:
        records = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return max(line - 1, 1), line
    at_line_start = text == "" or text.endswith(("\n", "\r"))
    return max(records if at_line_start else records - 1, 1), line


def _utf8_before(data: bytes, end: int) -> int:
    """How many non-ASCII characters the valid UTF-8 ``data[:end]`` holds."""
    return sum(1 for char in data[:end].decode("utf-8") if ord(char) > 127)


def decode_text(path: Path, data: bytes, *, csv_rows: bool) -> tuple[str, str]:
    """(text, the encoding's name) of a file's bytes: by BOM, else UTF-8, else GB18030.
    Raises InvalidInput naming the row (CSV) or line of the first byte no candidate reads."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            candidates: tuple[tuple[str, str], ...] = ((codec, name),)
            break
    else:
        candidates = _CANDIDATES
    furthest: tuple[int, str, str] | None = None
    for codec, name in candidates:
        try:
            return data.decode(codec), name
        except UnicodeDecodeError as error:
            if furthest is None or error.start > furthest[0]:
                furthest = (error.start, codec, name)
            if codec == "utf-8" and _utf8_before(data, error.start) >= 4:
                # several valid UTF-8 characters (Chinese) before the bad byte: a UTF-8 file
                # with a broken byte, which GB18030 would read as nonsense. (GB18030 text read
                # as UTF-8 breaks within its first non-ASCII characters.)
                break
    assert furthest is not None
    start, codec, name = furthest
    prefix = data[:start].decode(codec, errors="replace")
    row, line = _row_of(prefix)
    place = f"row {row} (line {line})" if csv_rows else f"line {line}"
    tried = " or ".join(n for _, n in candidates)
    bad = data[start : start + 4].hex(" ")
    raise InvalidInput(
        f"{path} {place}: bytes {bad} are not {tried} text (read as {name}, it breaks here);"
        " save the file as UTF-8 (Excel: 另存为「CSV UTF-8」)"
    )


def _read_text(path: Path, *, csv_rows: bool) -> tuple[str, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from None
    return decode_text(path, data, csv_rows=csv_rows)


def read_csv(
    path: Path, *, encodings: dict[Path, str] | None = None
) -> list[tuple[PostInput, str]]:
    """The posts of a CSV file; ``encodings`` (when given) learns the encoding it was read in.
    Raises InvalidInput with one line per bad row."""
    text, encoding = _read_text(path, csv_rows=True)
    if encodings is not None:
        encodings[path] = encoding
    # strict: a quote that is never closed is an error at the end of the file, not a field
    # that silently swallows every row after it
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise InvalidInput(
            f"{path} line 1: unknown column {unknown[0]!r}; the columns are {', '.join(CSV_COLUMNS)}"
        )
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if missing:
        raise InvalidInput(f"{path} line 1: required column {missing[0]!r} is missing")
    items: list[tuple[PostInput, str]] = []
    problems: list[str] = []
    row_number = 0
    start_line = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            place = f"{path} row {row_number + 1} (line {start_line})"
            if "unexpected end of data" in str(exc):
                problems.append(
                    f"{place}: a quoted field opened in this row is never closed; add the"
                    ' closing " (and write a " inside a quoted field as "")'
                )
            else:
                problems.append(f"{place}: malformed CSV ({exc}); check the quotes of this row")
            break  # the reader cannot resynchronise after broken quoting
        row_number += 1
        place = f"{path} row {row_number} (line {start_line})"
        start_line = reader.line_num + 1
        if None in row:
            problems.append(f"{place}: more fields than columns; quote fields that hold commas")
            continue
        values = {k: (v or "").strip() if k != "body" else (v or "") for k, v in row.items()}
        if not any(values.values()):
            continue
        base = path.parent
        sources = None
        if values.get("sources"):
            from kepubot.sources import parse

            sources = []
            for text in _split(values["sources"]):
                item, problem = parse(text, f"{place}, column sources")
                if problem:
                    problems.append(problem)
                elif item is not None:
                    sources.append(item)
        data = PostInput(
            sources=sources,
            title=values.get("title", ""),
            body=values.get("body", ""),
            summary=values.get("summary") or None,
            link=values.get("link") or None,
            tags=_split(values.get("tags", "")),
            images=[base / p for p in _split(values.get("images", ""))] or None,
            video=base / values["video"] if values.get("video") else None,
            cover=base / values["cover"] if values.get("cover") else None,
            channels=_split(values.get("channels", "")),
            at=values.get("at") or None,
            where={name: f"{place}, column {name}" for name in (*CSV_COLUMNS, "variants")},
        )
        items.append((data, f"{path.name} row {row_number}"))
    if problems:
        raise InvalidInput("\n".join(problems))
    if not items:
        raise InvalidInput(f"{path}: no posts found (only a header, or empty)")
    return items


_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_markdown(path: Path) -> tuple[PostInput, str]:
    text, _ = _read_text(path, csv_rows=False)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "+++":
        raise InvalidInput(
            f"{path} line 1: expected '+++' opening the TOML front matter (title, channels, ...)"
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise InvalidInput(
            f"{path} line 1: the front matter opened here is never closed with '+++'"
        ) from None
    front = "\n".join(lines[1:end])
    try:
        meta: dict[str, Any] = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_LINE.search(message)
        line = int(match.group(1)) + 1 if match else 1
        message = _TOML_LINE.sub("", message).strip()
        raise InvalidInput(f"{path} line {line}: invalid TOML front matter: {message}") from None

    def line_of(key: str) -> int:
        for index in range(1, end):
            if (
                re.match(rf"^\s*{re.escape(key)}\s*=", lines[index])
                or lines[index].strip() in (f"[{key}]", f"[[{key}]]")
                or lines[index].strip().startswith(f"[{key}.")
            ):
                return index + 1
        return 1

    problems: list[str] = []  # every problem of the front matter, one line each
    for key, value in meta.items():
        expected = FRONT_MATTER_KEYS.get(key)
        if expected is None:
            problems.append(
                f"{path} line {line_of(key)}: unknown front matter key {key!r}; known keys are"
                f" {', '.join(FRONT_MATTER_KEYS)}"
            )
        elif not isinstance(value, expected):
            problems.append(f"{path} line {line_of(key)}: {key} must be a {expected.__name__}")
        elif key == "sources":
            continue  # a list of tables, checked below
        elif isinstance(value, list) and not all(isinstance(v, str) for v in value):
            problems.append(f"{path} line {line_of(key)}: {key} must be a list of strings")
    variants = meta.get("variants")
    if isinstance(variants, dict):
        for channel, overrides in variants.items():
            if not isinstance(overrides, dict) or not all(
                k in ("title", "summary", "body", "link") and isinstance(v, str)
                for k, v in overrides.items()
            ):
                problems.append(
                    f"{path} line {line_of('variants')}: variants.{channel} may set only title,"
                    " summary, body and link (strings)"
                )
    sources = None
    if isinstance(meta.get("sources"), list):
        from kepubot.sources import from_mapping

        sources = []
        for number, value in enumerate(meta["sources"], start=1):
            item, problem = from_mapping(
                value, f"{path} line {line_of('sources')}, sources #{number}"
            )
            if problem:
                problems.append(problem)
            elif item is not None:
                sources.append(item)
    if problems:
        raise InvalidInput("\n".join(problems))
    base = path.parent
    body = "\n".join(lines[end + 1 :]).strip("\n")
    data = PostInput(
        sources=sources,
        title=meta.get("title", ""),
        body=body,
        summary=meta.get("summary"),
        link=meta.get("link"),
        tags=meta.get("tags"),
        images=[base / p for p in meta.get("images", [])] or None,
        video=base / meta["video"] if meta.get("video") else None,
        cover=base / meta["cover"] if meta.get("cover") else None,
        channels=meta.get("channels", []),
        at=meta.get("at"),
        next_slot=bool(meta.get("next_slot", False)),
        variants=variants,
        where={key: f"{path} line {line_of(key)}, {key}" for key in FRONT_MATTER_KEYS}
        | {"body": f"{path} line {end + 2}, body"},
    )
    return data, path.name


def read_posts(
    target: Path, *, encodings: dict[Path, str] | None = None
) -> list[tuple[PostInput, str]]:
    """A CSV file, a Markdown file, or a folder of them (not recursive, sorted by name).
    ``encodings`` (when given) learns the encoding each CSV file was read in."""
    if target.is_dir():
        files = sorted(
            p for p in target.iterdir() if p.suffix.lower() in (".md", ".markdown", ".csv")
        )
        if not files:
            raise InvalidInput(f"{target}: no .md or .csv files in this folder")
    elif target.is_file():
        files = [target]
    else:
        raise InvalidInput(f"{target}: no such file or folder")
    items: list[tuple[PostInput, str]] = []
    errors: list[str] = []
    for file in files:
        try:
            if file.suffix.lower() == ".csv":
                items.extend(read_csv(file, encodings=encodings))
            elif file.suffix.lower() in (".md", ".markdown"):
                items.append(read_markdown(file))
            else:
                raise InvalidInput(f"{file}: not a .csv or .md file")
        except InvalidInput as exc:
            errors.append(str(exc))
    if errors:
        raise InvalidInput("\n".join(errors))
    return items
