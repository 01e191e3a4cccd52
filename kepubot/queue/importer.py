"""Reading posts from CSV and from Markdown files with TOML front matter.

Parsing only: this module turns files into ``PostInput``s whose ``where`` names the file and
row or line of every field, so the workflow's validation errors point at the right place.
Media paths are relative to the file that names them.
"""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path
from typing import Any

from kepubot.errors import InvalidInput
from kepubot.queue.posts import PostInput

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
}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def read_csv(path: Path) -> list[tuple[PostInput, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
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
    row_number = 0
    start_line = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidInput(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
        row_number += 1
        place = f"{path} row {row_number} (line {start_line})"
        start_line = reader.line_num + 1
        if None in row:
            raise InvalidInput(f"{place}: more fields than columns; quote fields that hold commas")
        values = {k: (v or "").strip() if k != "body" else (v or "") for k, v in row.items()}
        if not any(values.values()):
            continue
        base = path.parent
        data = PostInput(
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
    if not items:
        raise InvalidInput(f"{path}: no posts found (only a header, or empty)")
    return items


_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_markdown(path: Path) -> tuple[PostInput, str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from None
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
                or lines[index].strip() == f"[{key}]"
                or lines[index].strip().startswith(f"[{key}.")
            ):
                return index + 1
        return 1

    for key, value in meta.items():
        expected = FRONT_MATTER_KEYS.get(key)
        if expected is None:
            raise InvalidInput(
                f"{path} line {line_of(key)}: unknown front matter key {key!r}; known keys are"
                f" {', '.join(FRONT_MATTER_KEYS)}"
            )
        if not isinstance(value, expected):
            raise InvalidInput(f"{path} line {line_of(key)}: {key} must be a {expected.__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{path} line {line_of(key)}: {key} must be a list of strings")
    variants = meta.get("variants")
    if variants is not None:
        for channel, overrides in variants.items():
            if not isinstance(overrides, dict) or not all(
                k in ("title", "summary", "body", "link") and isinstance(v, str)
                for k, v in overrides.items()
            ):
                raise InvalidInput(
                    f"{path} line {line_of('variants')}: variants.{channel} may set only title,"
                    " summary, body and link (strings)"
                )
    base = path.parent
    body = "\n".join(lines[end + 1 :]).strip("\n")
    data = PostInput(
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


def read_posts(target: Path) -> list[tuple[PostInput, str]]:
    """A CSV file, a Markdown file, or a folder of them (not recursive, sorted by name)."""
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
                items.extend(read_csv(file))
            elif file.suffix.lower() in (".md", ".markdown"):
                items.append(read_markdown(file))
            else:
                raise InvalidInput(f"{file}: not a .csv or .md file")
        except InvalidInput as exc:
            errors.append(str(exc))
    if errors:
        raise InvalidInput("\n".join(errors))
    return items
