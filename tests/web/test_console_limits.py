"""Issue 11 items 12 and 13 in the console: request size limits (small for everything but a
signed-in editor's uploads, per file and per request for those), the same text limits as the
command line, images decoded with Pillow, and error pages that name the uploaded file, never
its temporary path."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from crafted_images import noise_png, png_header, real_png
from test_console import Console, _console

from conftest import Workspace, snapshot
from kepubot.config import load_config
from kepubot.web.app import create_app

MB = 1024 * 1024


@pytest.fixture(name="console")
def console_fixture(workspace: Workspace) -> Console:
    return _console(workspace)


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that counts how many of them were read."""

    def __init__(self, size: int) -> None:
        self.size, self.position, self.read_bytes = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset if whence == 0 else self.size + offset if whence == 2 else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = b"a" * n
        self.position += n
        self.read_bytes += n
        return n


def _media_files(ws: Workspace) -> list[Path]:
    root = ws.root / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _compose(console: Console, client, fields: dict, **files) -> object:  # type: ignore[no-untyped-def]
    return console.save(
        client,
        "/posts/new",
        {"title": "上传测试", "body": "正文", "channels": ["news-feed"], **fields, **files},
    )


# --- item 12: request size limits --------------------------------------------------------------


def test_a_huge_unauthenticated_body_to_login_is_refused_unread(console: Console) -> None:
    stream = CountingStream(200 * MB)
    client = console.client()
    response = client.post(
        "/login",
        input_stream=stream,
        content_length=200 * MB,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "提交的内容太大" in response.text and "2 MB" in response.text
    assert stream.read_bytes == 0
    # nor does anyone but a signed-in editor get the upload limit
    stream = CountingStream(5 * MB)
    response = console.client("li").post(
        "/posts/new",
        input_stream=stream,
        content_length=5 * MB,
        content_type="multipart/form-data; boundary=x",
    )
    assert response.status_code == 413 and stream.read_bytes == 0


def test_a_big_form_without_files_is_413_and_changes_nothing(console: Console) -> None:
    client = console.client("zhang")
    before = snapshot(console.workspace.db)
    response = console.post(client, "/posts/new", {"title": "大", "body": "x" * (3 * MB)})
    assert response.status_code == 413
    assert "内容太大" in response.text
    response = console.post(client, "/preview", {"title": "大", "body": "x" * (3 * MB)})
    assert response.status_code == 413
    assert snapshot(console.workspace.db) == before


def test_an_editor_uploads_more_than_the_small_limit(console: Console) -> None:
    client = console.client("zhang")
    photo = noise_png(3)
    assert len(photo) > 2 * MB
    response = _compose(console, client, {}, images=(io.BytesIO(photo), "大照片.png"))
    assert response.status_code == 303, response.text
    assert len(_media_files(console.workspace)) == 1


def test_per_file_upload_limits_name_the_file(workspace: Workspace) -> None:
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8")
        + "\n[web]\nmax_image_mb = 1\nmax_video_mb = 1\nmax_upload_mb = 5\n",
        encoding="utf-8",
    )
    console = _console(workspace)
    client = console.client("zhang")
    before = snapshot(workspace.db)
    response = _compose(console, client, {}, images=(io.BytesIO(noise_png(1.5)), "大照片.png"))
    assert response.status_code == 413
    assert "大照片.png" in response.text and "超过上限 1 MB" in response.text
    assert "kepubot-upload-" not in response.text
    assert 'value="上传测试"' in response.text  # what was typed is kept
    video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (MB + 10)
    response = _compose(console, client, {}, video=(io.BytesIO(video), "片子.mp4"))
    assert response.status_code == 413 and "片子.mp4" in response.text
    # the whole form over max_upload_mb: the console's 413 page, nothing read into a post
    many = {"images": [(io.BytesIO(noise_png(0.9)), f"p{i}.png") for i in range(7)]}
    response = _compose(console, client, {}, **many)
    assert response.status_code == 413 and "整个表单不超过 5 MB" in response.text
    assert snapshot(workspace.db) == before
    assert _media_files(workspace) == []


def test_text_limits_in_the_console(console: Console) -> None:
    client = console.client("zhang")
    before = snapshot(console.workspace.db)
    response = _compose(
        console,
        client,
        {"body": "长" * 200_001, "tags": " ".join(f"t{i}" for i in range(25))},
    )
    assert response.status_code == 400
    assert "正文：正文有 200001 个字符，最多 200000 个" in response.text or (
        "正文有 200001 个字符，最多 200000 个" in response.text
    )
    assert "共 25 个标签，最多 20 个" in response.text
    assert snapshot(console.workspace.db) == before


def test_the_waitress_server_refuses_a_huge_body_from_its_length(workspace: Workspace) -> None:
    workspace.ok("post", "list")
    process = subprocess.Popen(
        [sys.executable, "-m", "kepubot", "--config", str(workspace.config), "web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=10) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                + f"Content-Length: {200 * MB}\r\n\r\n".encode()
                + b"username=a&password=b"
            )
            answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 413"), answer
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- item 13: uploaded images are decoded; errors name the upload ------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("炸弹.png", png_header(100_000, 100_000), "百万像素"),
        ("evil.bmp", b"BM" + b"\x00" * 500, "图片数据损坏或不完整"),
        ("文本.jpg", "不是图片".encode() * 50, "不是 PNG、JPEG、GIF、WebP 或 BMP 图片"),
    ],
)
def test_a_bad_image_upload_names_the_file_not_the_temporary_path(
    console: Console, name: str, content: bytes, message: str
) -> None:
    client = console.client("zhang")
    before = snapshot(console.workspace.db)
    for field in ("images", "cover"):
        response = _compose(console, client, {}, **{field: (io.BytesIO(content), name)})
        assert response.status_code == 400, response.text
        assert name in response.text and message in response.text
        assert "kepubot-upload-" not in response.text and "/tmp" not in response.text
    assert snapshot(console.workspace.db) == before
    assert _media_files(console.workspace) == []


def test_a_real_image_upload_is_stored_by_its_decoded_format(console: Console) -> None:
    client = console.client("zhang")
    response = _compose(console, client, {}, images=(io.BytesIO(real_png()), "photo.bmp"))
    assert response.status_code == 303, response.text
    files = _media_files(console.workspace)
    assert len(files) == 1 and files[0].suffix == ".png"


def test_an_app_made_for_other_limits_reads_them_from_the_config(workspace: Workspace) -> None:
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8") + "\n[web]\nmax_form_mb = 1\n",
        encoding="utf-8",
    )
    flask = create_app(load_config(workspace.config))
    assert flask.config["MAX_CONTENT_LENGTH"] == MB
    response = flask.test_client().post(
        "/login", data={"username": "a", "password": "x" * (MB + 10)}
    )
    assert response.status_code == 413 and "1 MB" in response.text


def test_every_size_and_image_refusal_reads_in_chinese(workspace: Workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kepubot.web.messages import translate

    workspace.ok("post", "list")
    files = {
        "bomb.png": png_header(100_000, 100_000),
        "big.png": png_header(8000, 6000),
        "fake.bmp": b"BM" + b"\x00" * 200,
        "text.jpg": "不是图片".encode() * 20,
        "zero.png": png_header(0, 0),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not a video at all")
    runs = [
        (
            "--title",
            "标" * 201,
            "--summary",
            "摘" * 301,
            "--link",
            "https://a.example/" + "x" * 2000,
        ),
        ("--body", "b", *[a for i in range(21) for a in ("--tag", f"t{i}")]),
        ("--tag", "x" * 31),
        *[("--image", str(tmp_path / name)) for name in files],
        ("--video", str(video)),
    ]
    messages = []
    for extra in runs:
        args = {"--title": "t", "--body": "b"}
        err = workspace.refused(
            "post",
            "add",
            *[a for k, v in args.items() if k not in extra for a in (k, v)],
            *("--channel", "news-feed", *extra),
            user="zhang",
        )
        messages += [line.removeprefix("error: ") for line in err.strip().splitlines()]
    assert len(messages) == 3 + 1 + 1 + len(files) + 1, messages
    for message in messages:
        chinese = translate(message, "zh")
        leftover = re.findall(r"[a-z]+(?: [a-z]+){2,}", chinese)
        assert chinese != message and not leftover, (message, chinese)
