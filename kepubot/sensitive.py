"""The sensitive-word list (docs/architecture.md §4.3).

One word or phrase per line; ``#`` starts a comment line. Each entry is of one of two classes:

- ``block`` (the default, and every entry of an old plain list): a post containing it cannot be
  submitted or approved;
- ``warn`` (written ``warn: 第一``): the author is warned; a reviewer may accept it with a
  reason at approval (recorded in the audit), otherwise the approval is refused.

``block: 词`` names the class explicitly (e.g. for a word that itself contains a colon).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kepubot.errors import ConfigError

WordClass = Literal["block", "warn"]
CLASSES: tuple[WordClass, ...] = ("block", "warn")
# "warn: 第一", "block：神药" (a full-width colon is accepted too)
_PREFIX = re.compile(r"^([A-Za-z]+)\s*[:：]\s*(.*)$")


@dataclass(frozen=True)
class Hit:
    word: str
    field: str
    line: int
    column: int
    level: WordClass = "block"

    def describe(self) -> str:
        where = f"'{self.word}' in {self.field} at line {self.line}, column {self.column}"
        if self.level == "warn":
            return f"warning word {where}"
        return where


class SensitiveWords:
    def __init__(self, words: list[str], warn: list[str] | None = None) -> None:
        classes: dict[str, WordClass] = {w: "warn" for w in warn or [] if w}
        for word in words:
            if word:
                classes[word] = "block"  # listed as both: the stricter class wins
        self.classes = classes
        # Longest first, so a phrase is reported rather than a shorter word inside it.
        self.words = sorted(classes, key=lambda w: (-len(w), w))

    @classmethod
    def load(cls, path: Path) -> SensitiveWords:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(
                f"review.sensitive_words: file {path} not found; fix the path in the config"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"review.sensitive_words: {path} is not UTF-8 text") from None
        block: list[str] = []
        warn: list[str] = []
        problems: list[str] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = _PREFIX.match(line)
            if match is None:
                block.append(line)
                continue
            name, word = match.group(1).lower(), match.group(2).strip()
            if name not in CLASSES:
                problems.append(
                    f"{path} line {number}: unknown class {match.group(1)!r}; write"
                    " 'warn: WORD' or 'block: WORD' (or the word alone, which blocks)"
                )
            elif not word:
                problems.append(f"{path} line {number}: {name}: names no word; add the word")
            else:
                (warn if name == "warn" else block).append(word)
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(block, warn)

    def level_of(self, word: str) -> WordClass | None:
        return self.classes.get(word)

    def scan(self, fields: dict[str, str]) -> list[Hit]:
        hits: list[Hit] = []
        for name, value in fields.items():
            if not value:
                continue
            lowered = value.casefold()
            taken: set[int] = set()
            for word in self.words:
                needle = word.casefold()
                start = lowered.find(needle)
                while start != -1:
                    span = set(range(start, start + len(needle)))
                    if not span & taken:
                        taken |= span
                        line = value.count("\n", 0, start) + 1
                        column = start - (value.rfind("\n", 0, start) + 1) + 1
                        hits.append(Hit(word, name, line, column, self.classes[word]))
                    start = lowered.find(needle, start + 1)
        hits.sort(key=lambda h: (list(fields).index(h.field), h.line, h.column))
        return hits
