"""The sensitive-word list: one word or phrase per line, ``#`` starts a comment line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kepubot.errors import ConfigError


@dataclass(frozen=True)
class Hit:
    word: str
    field: str
    line: int
    column: int

    def describe(self) -> str:
        return f"'{self.word}' in {self.field} at line {self.line}, column {self.column}"


class SensitiveWords:
    def __init__(self, words: list[str]) -> None:
        # Longest first, so a phrase is reported rather than a shorter word inside it.
        self.words = sorted({w for w in words if w}, key=lambda w: (-len(w), w))

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
        words = []
        for raw in text.splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                words.append(line)
        return cls(words)

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
                        hits.append(Hit(word, name, line, column))
                    start = lowered.find(needle, start + 1)
        hits.sort(key=lambda h: (list(fields).index(h.field), h.line, h.column))
        return hits
