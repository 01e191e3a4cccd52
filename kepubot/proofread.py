"""三校: automatic proofreading checks (docs/architecture.md §13).

Every check returns warnings, never refusals: the author sees them when saving, submitting and
in the console's preview; a reviewer at the final level acknowledges each one that remains
(``posts.approve``). Each finding names the field, the line and the column (1-based, counted in
characters) and, where there is one, the suggested replacement.

Text inside Markdown code spans and fenced code blocks, bare URLs and Markdown link targets
is not checked (it is masked with spaces, so positions stay true).

Checks:
- ``script``: traditional characters in a simplified post (or simplified characters in a
  traditional one), found with OpenCC's conversion tables through the ``opencc`` package. The
  post's script is the one most of its characters agree with; OpenCC's phrase tables keep
  words such as 乾隆 or 著名 from being flagged;
- ``halfwidth``: ``, ; : ? ! ( )`` next to a CJK character;
- ``pair``: unpaired or mismatched “” ‘’ 《》 （） 【】;
- ``repeat``: the same punctuation mark twice or more in a row (。。 ，， !!);
- ``misused``: a word of the configured misused-words list (``[review] misused_words``);
- ``unit``: one quantity written with different units of the same kind (5公里 and 5 km).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kepubot.errors import ConfigError

if TYPE_CHECKING:
    from kepubot.app import App
    from kepubot.models import Post

_KIND_ZH = {
    "script": "繁简混用",
    "halfwidth": "半角标点",
    "pair": "引号括号不成对",
    "repeat": "标点重复",
    "misused": "易错词",
    "unit": "单位写法不一致",
}
_FIELD_ZH = {"title": "标题", "summary": "摘要", "body": "正文"}


@dataclass(frozen=True)
class Finding:
    kind: str  # one of _KIND_ZH
    field: str  # title, summary, body, variants.<channel>.<key>
    line: int
    column: int
    text: str  # what was found
    suggestion: str = ""  # what to write instead ("" when there is no single answer)
    note: str = ""  # English detail (the Chinese one is built from the kind)
    note_zh: str = ""

    @property
    def key(self) -> str:
        """Stable identity of this finding for an acknowledgement (the console's checkbox)."""
        raw = f"{self.kind}|{self.field}|{self.line}|{self.column}|{self.text}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]

    @property
    def place(self) -> str:
        return f"{self.field} {self.line}:{self.column}"

    def describe(self, language: str = "zh") -> str:
        if language == "en":
            text = f"{self.place}: {self.kind} {self.text!r}"
            if self.note:
                text += f" ({self.note})"
            if self.suggestion:
                text += f"; suggested: {self.suggestion!r}"
            return text
        field = _FIELD_ZH.get(self.field, self.field)
        text = f"{field} {self.line}:{self.column}：{_KIND_ZH[self.kind]}「{self.text}」"
        if self.note_zh:
            text += f"（{self.note_zh}）"
        if self.suggestion:
            text += f"，建议改为「{self.suggestion}」"
        return text


# --- masking ---------------------------------------------------------------------------------

_MASKS = [
    re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL),  # fenced code
    re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL),  # code spans
    re.compile(r"\]\([^)\n]*\)"),  # link and image targets, with their brackets
    re.compile(r"<(?:https?|mailto):[^>\s]*>", re.IGNORECASE),  # autolinks
    re.compile(r"(?:https?|ftp)://[^\s<>\"'（）【】《》，。；！？、“”‘’]+", re.IGNORECASE),
    re.compile(r"\bwww\.[^\s<>\"'（）【】《》，。；！？、“”‘’]+", re.IGNORECASE),
]


def mask(text: str) -> str:
    """``text`` with code, URLs and link targets replaced by spaces (newlines kept)."""
    chars = list(text)
    for pattern in _MASKS:
        for match in pattern.finditer("".join(chars)):
            for i in range(match.start(), match.end()):
                if chars[i] != "\n":
                    chars[i] = " "
    return "".join(chars)


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2EBEF
        or 0xF900 <= code <= 0xFAFF
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or char in "“”‘’《》【】…—"
    )


def _is_han(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2EBEF


# --- simplified / traditional ------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _converter(config: str) -> object:
    try:
        import opencc
    except ImportError as exc:  # a dependency of the package; say what is missing
        raise ConfigError(
            "the proofreading checks need the opencc package (pip install opencc)"
        ) from exc
    return opencc.OpenCC(config)


def _convert(config: str, text: str) -> str:
    converted: str = _converter(config).convert(text)  # type: ignore[attr-defined]
    if len(converted) == len(text):
        return converted
    # a phrase of another length (rare): fall back to converting character by character
    return "".join(
        c if len(x := _converter(config).convert(c)) != 1 else x  # type: ignore[attr-defined]
        for c in text
    )


def _differences(original: str, converted: str) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(original, converted, strict=True)) if a != b]


def script_of(texts: list[str]) -> str:
    """``"simplified"`` or ``"traditional"``: the script most characters of ``texts`` agree
    with (a simplified text changes under s2t, a traditional one under t2s)."""
    joined = "\n".join(texts)
    to_simplified = len(_differences(joined, _convert("t2s", joined)))
    to_traditional = len(_differences(joined, _convert("s2t", joined)))
    return "traditional" if to_simplified > to_traditional else "simplified"


def _script_findings(field: str, text: str, script: str) -> list[Finding]:
    config = "t2s" if script == "simplified" else "s2t"
    converted = _convert(config, text)
    findings = []
    for i in _differences(text, converted):
        if not _is_han(text[i]):
            continue
        line, column = _position(text, i)
        if script == "simplified":
            note, note_zh = "traditional character in a simplified text", "简体文本中的繁体字"
        else:
            note, note_zh = "simplified character in a traditional text", "繁体文本中的简体字"
        findings.append(
            Finding("script", field, line, column, text[i], converted[i], note, note_zh)
        )
    return findings


# --- punctuation -------------------------------------------------------------------------------

_FULL_WIDTH = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"}
_PAIRS = {"“": "”", "‘": "’", "《": "》", "（": "）", "【": "】"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}
_REPEATABLE = "。，、；：！？!?,;"


def _neighbour(text: str, index: int, step: int) -> str:
    i = index + step
    while 0 <= i < len(text) and text[i] in " \t":
        i += step
    return text[i] if 0 <= i < len(text) else ""


def _punctuation_findings(field: str, text: str) -> list[Finding]:
    findings: list[Finding] = []
    for i, char in enumerate(text):
        if char not in _FULL_WIDTH:
            continue
        if char == "!" and text[i + 1 : i + 2] == "[":  # a Markdown image
            continue
        if char in (text[i - 1 : i], text[i + 1 : i + 2]):
            continue  # a run such as "!!": the repeat finding below covers it
        if char == ":" and text[i - 1 : i].isdigit() and text[i + 1 : i + 2].isdigit():
            continue  # a time such as 10:30
        before, after = _neighbour(text, i, -1), _neighbour(text, i, 1)
        if (before and is_cjk(before)) or (after and is_cjk(after)):
            line, column = _position(text, i)
            findings.append(
                Finding(
                    "halfwidth",
                    field,
                    line,
                    column,
                    char,
                    _FULL_WIDTH[char],
                    "half-width punctuation in Chinese text",
                    "中文里的半角标点",
                )
            )
    # repeated punctuation: one finding per run
    for match in re.finditer(r"([" + re.escape(_REPEATABLE) + r"])\1+", text):
        line, column = _position(text, match.start())
        mark = match.group(1)
        findings.append(
            Finding(
                "repeat",
                field,
                line,
                column,
                match.group(0),
                _FULL_WIDTH.get(mark, mark),
                "repeated punctuation",
                "标点重复",
            )
        )
    # quotes and brackets
    stack: list[tuple[str, int]] = []
    for i, char in enumerate(text):
        between = text[i - 1 : i] + text[i + 1 : i + 2]
        if char == "’" and len(between) == 2 and between.isascii() and between.isalpha():
            continue  # an apostrophe in English (it’s)
        if char in _PAIRS:
            stack.append((char, i))
        elif char in _CLOSERS:
            opener = _CLOSERS[char]
            if stack and stack[-1][0] == opener:
                stack.pop()
                continue
            line, column = _position(text, i)
            if stack and stack[-1][0] in _PAIRS:
                expected = _PAIRS[stack[-1][0]]
                findings.append(
                    Finding(
                        "pair",
                        field,
                        line,
                        column,
                        char,
                        expected,
                        f"closes {stack[-1][0]} with the wrong mark",
                        f"与前面的「{stack[-1][0]}」不配对",
                    )
                )
                stack.pop()
            else:
                findings.append(
                    Finding(
                        "pair",
                        field,
                        line,
                        column,
                        char,
                        "",
                        f"{char} without an opening {opener}",
                        f"缺少前面的「{opener}」",
                    )
                )
    for opener, i in stack:
        line, column = _position(text, i)
        findings.append(
            Finding(
                "pair",
                field,
                line,
                column,
                opener,
                "",
                f"{opener} is never closed with {_PAIRS[opener]}",
                f"缺少后面的「{_PAIRS[opener]}」",
            )
        )
    return findings


# --- misused words -------------------------------------------------------------------------------


class MisusedWords:
    """``wrong → right`` pairs, one a line (``->`` or ``=`` also separate them), ``#`` starts
    a comment line."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = dict(sorted(pairs.items(), key=lambda p: (-len(p[0]), p[0])))

    @classmethod
    def load(cls, path: Path) -> MisusedWords:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(
                f"review.misused_words: file {path} not found; fix the path in the config"
                " (`kepubot init` writes a starter list)"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"review.misused_words: {path} is not UTF-8 text") from None
        pairs: dict[str, str] = {}
        problems = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = re.split(r"\s*(?:→|->|=)\s*", line, maxsplit=1)
            if len(parts) != 2 or not parts[0] or not parts[1]:
                problems.append(
                    f"review.misused_words: {path.name} line {number}: write it as"
                    " 错词 → 正词 (for example 再接再励 → 再接再厉)"
                )
                continue
            pairs[parts[0]] = parts[1]
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(pairs)

    def findings(self, field: str, text: str) -> list[Finding]:
        found: list[Finding] = []
        taken: set[int] = set()
        for wrong, right in self.pairs.items():
            start = text.find(wrong)
            while start != -1:
                span = set(range(start, start + len(wrong)))
                if not span & taken:
                    taken |= span
                    line, column = _position(text, start)
                    found.append(
                        Finding("misused", field, line, column, wrong, right, "misused word", "")
                    )
                start = text.find(wrong, start + 1)
        return found


# --- numbers and units ------------------------------------------------------------------------

# unit spellings per kind of quantity; each spelling maps to the form it is compared as
UNIT_FAMILIES: dict[str, dict[str, str]] = {
    "distance_km": {"公里": "公里", "千米": "千米", "km": "km", "KM": "km"},
    "length_m": {"米": "米", "m": "m"},
    "length_cm": {"厘米": "厘米", "cm": "cm"},
    "length_mm": {"毫米": "毫米", "mm": "mm"},
    "mass_kg": {"千克": "千克", "公斤": "公斤", "kg": "kg", "KG": "kg"},
    "mass_g": {"克": "克", "g": "g"},
    "mass_mg": {"毫克": "毫克", "mg": "mg"},
    "mass_ug": {"微克": "微克", "μg": "μg", "µg": "μg", "ug": "μg"},
    "volume_l": {"升": "升", "L": "L"},
    "volume_ml": {"毫升": "毫升", "mL": "mL", "ml": "mL"},
    "temperature_c": {"摄氏度": "摄氏度", "℃": "℃", "°C": "℃"},
    "time_h": {"小时": "小时", "h": "h"},
    "time_min": {"分钟": "分钟", "min": "min"},
    "energy_kcal": {"千卡": "千卡", "大卡": "大卡", "kcal": "kcal"},
    "pressure_mmhg": {"毫米汞柱": "毫米汞柱", "mmHg": "mmHg"},
}
_SPELLING_FAMILY = {
    spelling: family for family, spellings in UNIT_FAMILIES.items() for spelling in spellings
}
_UNIT_RE = re.compile(
    r"(?<![A-Za-z0-9_.,])(?P<number>\d+(?:[.,]\d+)*)(?P<space>[ \t]?)(?P<unit>"
    + "|".join(re.escape(s) for s in sorted(_SPELLING_FAMILY, key=len, reverse=True))
    + r")(?![A-Za-z])"
)


@dataclass(frozen=True)
class _Quantity:
    field: str
    index: int
    text: str
    line: int
    column: int
    family: str
    form: str
    number: str
    spaced: bool


def _quantities(field: str, text: str) -> list[_Quantity]:
    found = []
    for match in _UNIT_RE.finditer(text):
        unit = match.group("unit")
        if unit == "米" and text[match.end() : match.end() + 1] in ("汞",):
            continue
        family = _SPELLING_FAMILY[unit]
        line, column = _position(text, match.start())
        found.append(
            _Quantity(
                field,
                match.start(),
                match.group(0),
                line,
                column,
                family,
                UNIT_FAMILIES[family][unit],
                match.group("number"),
                bool(match.group("space")),
            )
        )
    return found


def _unit_findings(quantities: list[_Quantity]) -> list[Finding]:
    """Within one post, each kind of quantity should be written one way (the same unit, with
    or without a space before it): the way used most (the earliest on a tie) is kept and
    every other way is a finding."""
    findings: list[Finding] = []
    by_family: dict[str, list[_Quantity]] = {}
    for quantity in quantities:
        by_family.setdefault(quantity.family, []).append(quantity)
    for items in by_family.values():
        ways = [(q.form, q.spaced) for q in items]
        counts = Counter(ways)
        if len(counts) < 2:
            continue
        first = {way: i for i, way in reversed(list(enumerate(ways)))}
        kept = max(counts, key=lambda way: (counts[way], -first[way]))
        example = items[first[kept]]
        for q, way in zip(items, ways, strict=True):
            if way == kept:
                continue
            findings.append(
                Finding(
                    "unit",
                    q.field,
                    q.line,
                    q.column,
                    q.text,
                    f"{q.number}{' ' if kept[1] else ''}{kept[0]}",
                    f"the post also writes {example.text!r}",
                    f"文中另有「{example.text}」",
                )
            )
    return findings


# --- the checks together ------------------------------------------------------------------------


def post_fields(post: Post) -> dict[str, str]:
    fields = {"title": post.title, "summary": post.summary, "body": post.body}
    for channel, overrides in post.variants.items():
        for key, value in overrides.items():
            if key in ("title", "summary", "body") and isinstance(value, str):
                fields[f"variants.{channel}.{key}"] = value
    return fields


def check(fields: dict[str, str], misused: MisusedWords | None = None) -> list[Finding]:
    """Every finding in ``fields`` (name -> text), in field order, then line and column."""
    masked = {name: mask(value) for name, value in fields.items() if value}
    findings: list[Finding] = []
    if not masked:
        return findings
    script = script_of(list(masked.values()))
    quantities: list[_Quantity] = []
    for name, text in masked.items():
        findings.extend(_script_findings(name, text, script))
        findings.extend(_punctuation_findings(name, text))
        if misused is not None:
            findings.extend(misused.findings(name, text))
        quantities.extend(_quantities(name, text))
    findings.extend(_unit_findings(quantities))
    order = list(masked)
    findings.sort(key=lambda f: (order.index(f.field), f.line, f.column, f.kind))
    return findings


def check_post(post: Post, misused: MisusedWords | None = None) -> list[Finding]:
    return check(post_fields(post), misused)


def findings_for(app: App, post: Post) -> list[Finding]:
    """The findings of ``post`` with the configured misused-words list."""
    return check_post(post, app.misused_words)
