"""Refusing duplicate posts (issue 11 item 15).

A post whose title and body equal those of an existing post that is not cancelled, or of an
earlier post of the same import, is refused unless the caller allows duplicates
(``--allow-duplicates``). Titles and bodies are compared after the validator's normalisation
(line ends, zero-width characters, surrounding blank lines), so a CRLF copy of a file is the
same post. The check runs inside the writing transaction, so two imports at once cannot both
slip the same post in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kepubot.errors import InvalidInput

if TYPE_CHECKING:
    from kepubot.queue.store import Store

HINT = "pass --allow-duplicates to write it anyway"


def _place(where: str) -> str:
    """ "data.csv row 3 (line 4), column title" -> "data.csv row 3 (line 4)"."""
    return where.rsplit(", ", 1)[0] if ", " in where else where


def duplicate_problems(store: Store, items: list[tuple[dict[str, Any], str]]) -> list[str]:
    """One line per item of ``items`` ((fields with title and body, where it came from)) that
    repeats an existing post that is not cancelled or an earlier item."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    existing = store.posts.by_titles(fields["title"] for fields, _ in items)
    for fields, where in items:
        key = (fields["title"], fields["body"])
        place = _place(where)
        if key in existing:
            post_id, state, author = existing[key]
            problems.append(
                f"{place}: the same title and body as post {post_id} ({state}, by {author});"
                f" see `kepubot post show {post_id}`, or {HINT}"
            )
        elif key in seen:
            problems.append(
                f"{place}: the same title and body as {seen[key]} of this import; remove one,"
                f" or {HINT}"
            )
        else:
            seen[key] = place
    return problems


def same_posts(store: Store, post_id: int) -> list[int]:
    """Other posts, not cancelled, with the title and body of post ``post_id``."""
    return store.posts.same_title_and_body(post_id)


def refuse_duplicates(store: Store, items: list[tuple[dict[str, Any], str]]) -> None:
    problems = duplicate_problems(store, items)
    if problems:
        raise InvalidInput("\n".join(problems))
