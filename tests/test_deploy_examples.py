"""examples/deploy/ is valid: the systemd units (``systemd-analyze verify`` where installed,
and always parsed: known sections and keys, a kepubot command that exists) and the nginx site
(``nginx -t`` where installed, and always parsed: balanced braces, known directives, the
upload limit of [web] max_upload_mb, the forwarded headers trusted_proxies relies on)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kepubot.cli import cli
from kepubot.config import WebSection

pytestmark = pytest.mark.sqlite_only  # no database involved: run once

DEPLOY = Path(__file__).resolve().parent.parent / "examples" / "deploy"
UNITS = ("kepubot-run@.service", "kepubot-web.service")
NGINX = DEPLOY / "kepubot-nginx.conf"

KNOWN_KEYS = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before"},
    "Service": {
        "Type", "User", "Group", "WorkingDirectory", "EnvironmentFile", "Environment",
        "ExecStart", "KillSignal", "TimeoutStopSec", "Restart", "RestartSec",
        "NoNewPrivileges", "PrivateTmp", "ProtectSystem", "ProtectHome", "ReadWritePaths",
    },
    "Install": {"WantedBy"},
}  # fmt: skip


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        heading = re.fullmatch(r"\[(\w+)\]", line)
        if heading:
            current = sections.setdefault(heading.group(1), {})
            continue
        assert current is not None, f"line {number}: a key before any section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z]+", key), f"line {number}: not KEY=VALUE: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("name", UNITS)
def test_unit_parses_with_known_keys_and_a_real_command(name: str) -> None:
    sections = parse_unit((DEPLOY / name).read_text(encoding="utf-8"))
    assert set(sections) == {"Unit", "Service", "Install"}
    for section, keys in sections.items():
        unknown = set(keys) - KNOWN_KEYS[section]
        assert not unknown, f"{name} [{section}]: unknown keys {unknown}"
    (command,) = sections["Service"]["ExecStart"]
    argv = command.split()
    assert argv[0].endswith("/kepubot") and argv[1] == "--config"
    # the subcommand and its options exist in this kepubot
    args = argv[3:]
    done = CliRunner().invoke(cli, [*args, "--help"])
    assert done.exit_code == 0, done.output
    assert sections["Service"]["Restart"] == ["on-failure"]
    if name.startswith("kepubot-run@"):
        assert args == ["run"] and "%i" in sections["Unit"]["Description"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    kepubot = Path(sys.executable).with_name("kepubot")
    assert kepubot.exists()
    names = []
    for name, as_name in (
        ("kepubot-run@.service", "kepubot-run@1.service"),
        ("kepubot-run@.service", "kepubot-run@2.service"),
        ("kepubot-web.service", "kepubot-web.service"),
    ):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        # the installed path of the examples, here this environment's kepubot
        text = text.replace("/opt/kepubot/venv/bin/kepubot", str(kepubot))
        (tmp_path / as_name).write_text(text, encoding="utf-8")
        names.append(str(tmp_path / as_name))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    # unknown keys are only warnings: any line naming our files is a failure too
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "kepubot" in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


NGINX_DIRECTIVES = {
    "server", "listen", "server_name", "return", "ssl_certificate", "ssl_certificate_key",
    "ssl_protocols", "client_max_body_size", "add_header", "location", "proxy_pass",
    "proxy_http_version", "proxy_set_header", "proxy_read_timeout", "proxy_request_buffering",
}  # fmt: skip


def nginx_statements(text: str) -> list[tuple[int, list[str]]]:
    """(depth, words) of every statement and block; asserts balanced braces and ; endings."""
    text = re.sub(r"#[^\n]*", "", text)
    statements: list[tuple[int, list[str]]] = []
    depth = 0
    for token in re.findall(r"[^;{}]+[;{]|}", text):
        if token == "}":
            depth -= 1
            assert depth >= 0, "a } without its {"
            continue
        words = token[:-1].split()
        assert words, f"an empty statement before {token!r}"
        statements.append((depth, words))
        if token.endswith("{"):
            depth += 1
    assert depth == 0, "a { without its }"
    leftover = re.sub(r"[^;{}]+[;{]|}", "", text).strip()
    assert not leftover, f"text outside any statement (missing ;?): {leftover[:60]!r}"
    return statements


def test_nginx_site_parses_and_matches_the_console_settings() -> None:
    statements = nginx_statements(NGINX.read_text(encoding="utf-8"))
    unknown = {words[0] for _, words in statements} - NGINX_DIRECTIVES
    assert not unknown, f"unknown nginx directives: {unknown}"
    assert all(depth > 0 for depth, words in statements if words[0] != "server")
    found = {words[0]: words[1:] for _, words in statements}
    default_mb = WebSection.model_fields["max_upload_mb"].default
    assert found["client_max_body_size"] == [f"{int(default_mb)}m"]
    headers = {tuple(w[1:]) for _, w in statements if w[0] == "proxy_set_header"}
    # one proxy (trusted_proxies = 1): it replaces the client's X-Forwarded-For
    assert ("X-Forwarded-For", "$remote_addr") in headers
    assert ("X-Forwarded-Proto", "$scheme") in headers
    assert found["proxy_pass"] == ["http://127.0.0.1:8080"]
    assert any(w[:3] == ["listen", "443", "ssl"] for _, w in statements)


def test_the_parsers_refuse_broken_files() -> None:
    with pytest.raises(AssertionError):
        nginx_statements("server { listen 80; ")
    with pytest.raises(AssertionError):
        nginx_statements("server { listen 80 }")
    with pytest.raises(AssertionError):
        parse_unit("ExecStart=/bin/true\n")


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx absent")
def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    site = NGINX.read_text(encoding="utf-8")
    # self-signed stand-ins for the certificate paths
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test",
         "-keyout", str(key), "-out", str(cert), "-days", "1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = re.sub(r"ssl_certificate \S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};", site)
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
