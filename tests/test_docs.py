"""Docs checked by tests: every command is in the README, the example config is complete."""

from __future__ import annotations

import re
from pathlib import Path

import click

from kepubot.cli import cli

ROOT = Path(__file__).parent.parent


def command_paths(group: click.Group, prefix: str = "kepubot") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                paths.append(path)
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p for p in command_paths(cli) if not re.search(re.escape(p) + r"\b", readme)]
    assert not missing, missing


def test_example_config_is_the_one_init_writes() -> None:
    root_copy = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    packaged = (ROOT / "kepubot" / "data" / "config.example.toml").read_text(encoding="utf-8")
    assert root_copy == packaged


def test_every_channel_type_has_a_documented_section() -> None:
    from kepubot.channels.base import channel_types

    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for name in channel_types():
        assert re.search(rf'^#? ?type = "{name}"', example, re.M), name


def test_every_commented_setting_in_the_example_is_valid(tmp_path: Path, monkeypatch) -> None:
    """Uncomment every example channel and setting: the file must still load and validate."""
    from kepubot.app import App
    from kepubot.config import load_config

    lines = []
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if re.match(r"^# ?(\[channels\.|[a-z_]+ = )", stripped) and not stripped.startswith(
            ('# rate_limit = "30/hour"  ', '# api_base = "https://..."')
        ):
            line = stripped[1:].lstrip()
        lines.append(line)
    text = "\n".join(lines)
    for name in set(re.findall(r"\$\{([A-Z_]+)\}", text)):
        monkeypatch.setenv(name, "x" * 12)
    (tmp_path / "kepubot.toml").write_text(text, encoding="utf-8")
    (tmp_path / "sensitive_words.txt").write_text("最佳\n", encoding="utf-8")
    app = App(load_config(tmp_path / "kepubot.toml"))
    assert {"weibo", "wechat", "douyin", "feed", "webhook", "wecom", "dingtalk"} <= {
        c.type_name() for c in app.channels.values()
    }


def test_every_command_in_the_readme_exists() -> None:
    """The reverse check: a command documented but never registered is caught too."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    known = set(command_paths(cli))
    documented = set()
    for line in readme.splitlines():
        match = re.match(r"^kepubot ((?:[a-z]+)(?: [a-z]+)?)", line.strip())
        if match:
            words = match.group(1).split()
            documented.add("kepubot " + " ".join(words))
    missing = [
        d for d in sorted(documented) if d not in known and " ".join(d.split()[:2]) not in known
    ]
    assert not missing, missing


# --- the design documents in docs/ and the citations of them ------------------------------------

DOCS = ROOT / "docs"
#: the documents whose sections are numbered (the index, docs/README.md, is not)
NUMBERED = ("architecture", "delivery", "platforms", "operations")
#: where the code, tests and benchmarks cite the documents
CITING = ("kepubot", "tests", "bench")
CITING_FILES = ("README.md",)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".html", ".css", ".js", ".json", ".cfg", ".ini"}
_NUMBER = r"\d+(?:\.\d+)*"
#: ``docs/delivery.md §6.4``, ``docs/platforms.md §3.3-§3.4``, ``docs/delivery.md §1 and §12``
_RUN = rf"((?:(?:\s*,\s*|\s+and\s+|\s*[-–/]\s*|\s+)§{_NUMBER})*)"
CITATION = re.compile(rf"docs/([A-Za-z0-9_-]+\.md)(?!\w){_RUN}")
#: inside docs/: ``[delivery.md §6.4](delivery.md)`` and ``delivery.md §6``
DOC_CITATION = re.compile(rf"(?<![\w/-])([A-Za-z0-9_-]+\.md){_RUN}")
SECTION = re.compile(rf"§({_NUMBER})")
HEADING = re.compile(rf"^#{{1,6}}\s+§({_NUMBER})\b", re.M)
#: the developer notes the code cited before docs/ existed, which a clone does not have
OLD_NOTES = re.compile(r"(?<![\w/.-])(?:design|reliability|platforms)\.md(?!\w)")


def doc_sections() -> dict[str, set[str]]:
    return {
        path.name: set(HEADING.findall(path.read_text(encoding="utf-8")))
        for path in DOCS.glob("*.md")
    }


def citing_files() -> list[Path]:
    files = [ROOT / name for name in CITING_FILES]
    for top in CITING:
        files += [
            p
            for p in sorted((ROOT / top).rglob("*"))
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
        ]
    return files


def broken_citations(
    text: str, pattern: re.Pattern[str], sections: dict[str, set[str]]
) -> list[tuple[int, str]]:
    """(line, problem) for every citation in ``text`` naming a missing document or section.
    ``docs/<file>.md`` must exist even without a section; inside docs/ a plain ``<file>.md``
    is checked only when it names a section (it may be a file outside docs/)."""
    broken = []
    for match in pattern.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        name, numbers = match.group(1), SECTION.findall(match.group(2))
        if name not in sections:
            if pattern is CITATION or numbers:
                broken.append((line, f"docs/{name} does not exist"))
            continue
        broken += [
            (line, f"{name} has no section §{n}") for n in numbers if n not in sections[name]
        ]
    return broken


def test_docs_sections_are_numbered() -> None:
    sections = doc_sections()
    assert "README.md" in sections, "docs/README.md (the index) is missing"
    for name in (f"{stem}.md" for stem in NUMBERED):
        assert name in sections, f"docs/{name} is missing"
        numbers = sections[name]
        assert "1" in numbers, f"docs/{name}: sections are numbered from §1"
        headings = HEADING.findall((DOCS / name).read_text(encoding="utf-8"))
        twice = sorted({n for n in headings if headings.count(n) > 1})
        assert not twice, f"docs/{name}: sections numbered twice: {twice}"
        # every subsection's parent exists (no §3.2 without §3)
        orphans = [n for n in numbers if "." in n and n.rsplit(".", 1)[0] not in numbers]
        assert not orphans, f"docs/{name}: subsections without a parent: {orphans}"


def test_every_docs_citation_names_an_existing_section() -> None:
    """``docs/<file>.md §N`` anywhere in the code, tests, benchmarks and README must name a
    document and a numbered section that exist, so a reader can follow every reference."""
    sections = doc_sections()
    problems = []
    for path in citing_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for line, problem in broken_citations(text, CITATION, sections):
            problems.append(f"{path.relative_to(ROOT)}:{line}: {problem}")
    assert not problems, "\n".join(problems)


def test_docs_cite_each_other_correctly() -> None:
    """Inside docs/: ``[delivery.md §6.4](delivery.md)`` names a section of that document, and
    a bare ``§N`` names a section of the document it is in."""
    sections = doc_sections()
    problems = []
    for path in sorted(DOCS.glob("*.md")):
        own = sections[path.name]
        text = path.read_text(encoding="utf-8")
        for line, problem in broken_citations(text, DOC_CITATION, sections):
            problems.append(f"docs/{path.name}:{line}: {problem}")
        for line_number, line in enumerate(text.splitlines(), 1):
            if HEADING.match(line):
                continue
            # examples in `code spans` are not references
            rest = DOC_CITATION.sub("", CITATION.sub("", re.sub(r"`[^`]*`", "", line)))
            for number in SECTION.findall(rest):
                if number not in own:
                    problems.append(f"docs/{path.name}:{line_number}: no section §{number} here")
    assert not problems, "\n".join(problems)


def test_no_citation_of_notes_outside_the_repository() -> None:
    """The code once cited developer notes that are not in the repository; every reason it
    gives must now be in docs/ (run the citation rewrite when this fails)."""
    left = []
    for path in citing_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for line_number, line in enumerate(text.splitlines(), 1):
            if OLD_NOTES.search(line):
                left.append(f"{path.relative_to(ROOT)}:{line_number}: {line.strip()}")
    assert not left, "\n".join(left)
