"""Images in the body (issue 16 "Media", docs/architecture.md §15.2): an image the body shows
but the post does not attach is a problem before submit (command line and console); a dropped
or pasted image is uploaded through the media store's checks and its reference kept with the
post; the media page lists each image with where it is used."""

from __future__ import annotations

import io
import json
import re

from crafted_images import real_png
from test_console import Console, _console

from conftest import SAMPLES, Workspace, snapshot


def _upload(console: Console, client, data: bytes, name: str):  # type: ignore[no-untyped-def]
    return console.post(
        client,
        "/media/upload",
        {"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_an_image_the_body_shows_but_nobody_attached_refuses_the_submit(
    workspace: Workspace,
) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")  # it attaches handwashing.png
    body = "洗手七步。\n\n![七步](handwashing.png)\n\n![步骤](步骤图.png)\n"
    ws.ok("post", "edit", str(post_id), "--body", body, user="zhang")
    out = ws.refused("post", "submit", str(post_id), user="zhang")
    assert "步骤图.png" in out and "not attached" in out
    assert "'handwashing.png'" not in out  # attached: shown by its own name
    # attaching a file of that name clears it
    image = ws.root / "步骤图.png"
    image.write_bytes(real_png(41, 31))
    handwashing = str(SAMPLES / "media" / "handwashing.png")
    ws.ok("post", "edit", str(post_id), "--image", handwashing, "--image", str(image), user="zhang")
    ws.ok("post", "submit", str(post_id), user="zhang")
    # an address with a scheme is not a file of the post
    other = ws.add_post("--channel", "news-feed")
    ws.ok(
        "post",
        "edit",
        str(other),
        "--body",
        "外链 ![x](https://kepu.example.org/x.png)",
        user="zhang",
    )
    ws.ok("post", "submit", str(other), user="zhang")


def test_the_console_shows_a_missing_image_on_the_preview_and_the_post_page(
    workspace: Workspace,
) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    zhang = console.client("zhang")
    form = {"title": "t", "body": "正文\n\n![图](缺失.png)", "channels": ["news-feed"]}
    preview = console.post(zhang, "/preview", form).text
    assert 'id="missing-images"' in preview and "「缺失.png」没有附上" in preview
    # a file chosen but not saved yet, or uploaded by a drop, counts as attached
    assert (
        'id="missing-images"'
        not in console.post(zhang, "/preview", {**form, "pending": "缺失.png"}).text
    )
    assert (
        'id="missing-images"'
        not in console.post(zhang, "/preview", {**form, "uploaded": "ab/x.png|缺失.png"}).text
    )
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "edit", str(post_id), "--body", "![图](缺失.png)", user="zhang")
    page = zhang.get(f"/posts/{post_id}").text
    assert "「缺失.png」没有附上" in page
    before = snapshot(ws.db)
    response = console.post(zhang, f"/posts/{post_id}/submit", {})
    assert response.status_code == 403 and "缺失.png" in response.text
    assert snapshot(ws.db) == before


def test_a_dropped_image_uploads_checked_and_is_kept_with_the_post(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    zhang = console.client("zhang")
    answer = _upload(console, zhang, real_png(), "image.png")
    assert answer.status_code == 200, answer.text
    uploaded = answer.get_json()
    # a pasted picture's generic name becomes a unique one
    assert re.fullmatch(r"pasted-[0-9a-f]{8}\.png", uploaded["name"])
    assert uploaded["markdown"] == f"![{uploaded['name'][:-4]}]({uploaded['name']})"
    assert zhang.get(uploaded["url"]).data == real_png()
    response = console.save(
        zhang,
        "/posts/new",
        {
            "title": "贴图",
            "body": "看图：\n\n" + uploaded["markdown"],
            "channels": ["news-feed"],
            "uploaded": f"{uploaded['path']}|{uploaded['name']}",
            "submit_now": "1",
        },
    )
    assert response.status_code == 303, response.text
    post_id = int(response.headers["Location"].rsplit("/", 1)[1])
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    assert shown["state"] == "in_review"
    assert [(m["kind"], m["name"]) for m in shown["media"]] == [("image", uploaded["name"])]
    # the media page lists it with the post that uses it, in its body
    library = zhang.get("/media").text
    assert f'data-media="{uploaded["path"]}"' in library
    assert f"/posts/{post_id}" in library and "正文中引用" in library


def test_an_upload_that_is_not_an_image_or_a_forged_path_is_refused(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    zhang = console.client("zhang")
    wang = console.client("wang")  # a reviewer, not an editor
    before = snapshot(workspace.db)
    bad = _upload(console, zhang, b"<html>not a picture</html>", "x.png")
    assert bad.status_code == 400 and bad.get_json()["error"]
    assert "Traceback" not in bad.text
    # no CSRF token: refused; a reviewer without the editor role: refused
    assert (
        zhang.post("/media/upload", data={"file": (io.BytesIO(real_png()), "a.png")}).status_code
        == 400
    )
    assert _upload(console, wang, real_png(), "a.png").status_code == 403
    # a save naming a store path that was never uploaded
    response = console.save(
        zhang,
        "/posts/new",
        {
            "title": "t",
            "body": "b",
            "channels": ["news-feed"],
            "uploaded": "00/" + "0" * 64 + ".png|a.png",
        },
    )
    assert response.status_code == 400 and "a.png：上传的文件已不在，请重新上传" in response.text
    assert snapshot(workspace.db) == before


def test_the_compose_page_has_insert_buttons_and_allows_object_url_previews(
    workspace: Workspace,
) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    post_id = ws.add_post(
        "--channel", "news-feed", "--image", str(SAMPLES / "media" / "handwashing.png")
    )
    zhang = console.client("zhang")
    page = zhang.get(f"/posts/{post_id}/edit")
    assert 'data-markdown="![handwashing](handwashing.png)"' in page.text
    assert 'data-upload="/media/upload"' in page.text
    assert "blob:" in page.headers["Content-Security-Policy"]
