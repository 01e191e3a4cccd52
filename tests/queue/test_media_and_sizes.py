"""Issue 11 items 12 and 13 outside the console: images are decoded with Pillow (format,
dimensions, a pixel limit against decompression bombs), and text has the same size limits
on the command line and in imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from crafted_images import png_header, real_png

from conftest import SAMPLES, Workspace
from kepubot.models import MAX_BODY_CHARS, MAX_SUMMARY_CHARS, MAX_TAG_CHARS, MAX_TAGS


def crafted(tmp: Path) -> dict[str, Path]:
    files = {
        "bomb.png": png_header(100_000, 100_000),
        "big.png": png_header(8000, 6000),  # 48 MP: under Pillow's own limit, over ours
        "fake.bmp": b"BM" + b"\x00" * 200,
        "cut.png": real_png(400, 300)[:120],
        "empty.png": b"",
        "text.jpg": "这不是图片".encode() * 20,
    }
    paths = {}
    for name, content in files.items():
        path = tmp / name
        path.write_bytes(content)
        paths[name] = path
    return paths


EXPECTED = {
    "bomb.png": "megapixels; scale it down",
    "big.png": "8000x6000 pixels, more than 40 megapixels",
    "fake.bmp": "the image data is broken or cut short",  # "BM" alone is no BMP
    "cut.png": "broken or cut short",
    "empty.png": "not a PNG, JPEG, GIF, WebP or BMP image",
    "text.jpg": "not a PNG, JPEG, GIF, WebP or BMP image",
}


def _media_files(ws: Workspace) -> list[Path]:
    root = ws.root / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crafted_images_are_refused_on_the_command_line(
    workspace: Workspace, tmp_path: Path, name: str
) -> None:
    path = crafted(tmp_path)[name]
    workspace.ok("post", "list")
    for option in ("--image", "--cover"):
        err = workspace.refused(
            "post",
            "add",
            *("--title", "t", "--body", "b", "--channel", "news-feed"),
            *(option, str(path)),
            user="zhang",
            contains=EXPECTED[name],
        )
        assert option in err and name in err
        assert "Traceback" not in err and "PIL" not in err
    assert _media_files(workspace) == []


def test_a_real_image_is_stored_by_its_content_not_its_name(
    workspace: Workspace, tmp_path: Path
) -> None:
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes(real_png())
    post_id = workspace.add_post("--channel", "news-feed")  # the sample PNGs still pass
    assert post_id == 1
    out = workspace.ok(
        "post",
        "add",
        *("--title", "t", "--body", "b", "--channel", "news-feed", "--json"),
        *("--image", str(disguised)),
        user="zhang",
    )
    assert '"id": 2' in out
    shown = workspace.ok("post", "show", "2", "--json")
    assert '"mime": "image/png"' in shown and '"name": "photo.jpg"' in shown
    assert any(p.suffix == ".png" for p in _media_files(workspace))
    # the sample JPEG is decoded as one too
    workspace.ok(
        "post",
        "add",
        *("--title", "JPEG", "--body", "b", "--channel", "news-feed"),
        *("--image", str(SAMPLES / "media" / "handwashing.jpg")),
        user="zhang",
    )


def test_crafted_images_are_refused_in_an_import(workspace: Workspace, tmp_path: Path) -> None:
    files = crafted(tmp_path)
    good = tmp_path / "good.png"
    good.write_bytes(real_png())
    sheet = tmp_path / "posts.csv"
    sheet.write_text(
        "title,body,channels,images\n"
        f"好的,正文,news-feed,{good.name}\n"
        f"炸弹,正文,news-feed,{files['bomb.png'].name}\n"
        f"假的,正文,news-feed,{files['fake.bmp'].name}\n",
        encoding="utf-8",
    )
    workspace.ok("post", "list")
    err = workspace.refused("post", "import", str(sheet), user="zhang")
    assert "row 2" in err and "megapixels" in err
    assert "row 3" in err and "fake.bmp" in err and "broken or cut short" in err
    assert _media_files(workspace) == []  # all or nothing, media too


# --- size limits -------------------------------------------------------------------------------


def _add(ws: Workspace, *extra: str) -> str:
    return ws.refused(
        "post",
        "add",
        *("--title", "t", "--channel", "news-feed"),
        *extra,
        user="zhang",
    )


def test_text_limits_on_the_command_line(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ok("post", "list")
    body = tmp_path / "long.md"
    body.write_text("长" * (MAX_BODY_CHARS + 1), encoding="utf-8")
    err = _add(workspace, "--body-file", str(body))
    assert f"the body has {MAX_BODY_CHARS + 1} characters, at most {MAX_BODY_CHARS}" in err
    err = _add(workspace, "--body", "b", "--summary", "摘" * (MAX_SUMMARY_CHARS + 1))
    assert f"at most {MAX_SUMMARY_CHARS} are allowed" in err and "--summary" in err
    tags = [arg for i in range(MAX_TAGS + 1) for arg in ("--tag", f"标签{i}")]
    err = _add(workspace, "--body", "b", *tags)
    assert f"{MAX_TAGS + 1} tags, at most {MAX_TAGS} are allowed" in err
    err = _add(workspace, "--body", "b", "--tag", "长" * (MAX_TAG_CHARS + 1))
    assert f"the tag has {MAX_TAG_CHARS + 1} characters" in err
    # every problem at once, one line each
    err = _add(
        workspace,
        *("--body", "b", "--summary", "摘" * 400, "--tag", "x" * 31),
        *("--title", "标" * 201),
    )
    assert len(err.strip().splitlines()) == 3, err
    # at the limits exactly: accepted
    workspace.ok(
        "post",
        "add",
        *("--title", "标" * 200, "--channel", "news-feed"),
        *("--body", "b" * MAX_BODY_CHARS, "--summary", "摘" * MAX_SUMMARY_CHARS),
        *[arg for i in range(MAX_TAGS) for arg in ("--tag", f"{i:02d}" + "签" * 28)],
        user="zhang",
    )


def test_text_limits_apply_to_edits_and_imports(workspace: Workspace, tmp_path: Path) -> None:
    post_id = workspace.add_post("--channel", "news-feed")
    workspace.refused(
        "post",
        "edit",
        str(post_id),
        *[arg for i in range(25) for arg in ("--tag", f"t{i}")],
        user="zhang",
        contains="25 tags, at most 20",
    )
    sheet = tmp_path / "posts.csv"
    tags = ";".join(f"t{i}" for i in range(30))
    sheet.write_text(
        f"title,body,channels,tags\n好的,正文,news-feed,a;b\n太多标签,正文,news-feed,{tags}\n",
        encoding="utf-8",
    )
    err = workspace.refused("post", "import", str(sheet), user="zhang")
    assert "row 2" in err and "column tags" in err and "30 tags, at most 20" in err
