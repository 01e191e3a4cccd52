"""Display screens, 科普e站 and 电子画廊 (docs/platforms.md §16): a ``screen`` channel keeps a
self-contained kiosk page set in ``output_dir`` that cycles through the newest ``max_items``
posts (title, summary, first image, a QR code of the post's link).

Files: ``landscape.html`` (1920×1080) and ``portrait.html`` (1080×1920), ``screen.css``,
``screen.js``, and ``data.js`` (the slides, as ``window.KEPUBOT_SCREEN = {...}``) with
``media/``. The page loads ``data.js`` by a script tag and reloads it every
``reload_seconds`` (a fetch of JSON is blocked from file:// in browsers), so a screen picks up
new posts from a local folder or any static web server, with no other request. The QR codes
are SVG (segno) inside data.js. Like the feed, rewriting is harmless: the channel is
idempotent, and a retraction removes the slide.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from kepubot.channels.base import (
    Capabilities,
    Problem,
    Published,
    Rendered,
    Retracted,
    markdown_to_text,
)
from kepubot.channels.feed import _folder_lock, write_atomically
from kepubot.channels.outlet import OutletChannel, OutletSettings
from kepubot.errors import Transient
from kepubot.models import Delivery, Post

STATE_FILE = ".kepubot-screen.json"
SUMMARY_CHARS = 120
TITLE_CHARS = 40
_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


class ScreenSettings(OutletSettings):
    title: str = Field("科普e站", min_length=1)
    max_items: int = Field(10, ge=1, le=100)
    seconds_per_slide: int = Field(15, ge=3, le=3600)
    reload_seconds: int = Field(300, ge=10, le=86400)


class ScreenChannel(OutletChannel):
    channel_type = "screen"
    Settings = ScreenSettings
    settings: ScreenSettings
    capabilities = Capabilities(idempotent=True, verify=True, retract=True)

    def check(self, post: Post) -> list[Problem]:
        problems = super().check(post)
        post = post.for_channel(self.name)
        if len(post.title) > TITLE_CHARS:
            # readable from across a room: the title must fit two lines of large type
            problems.append(Problem("title", "too_long", TITLE_CHARS, len(post.title)))
        if not post.link:
            problems.append(Problem("link", "required", detail="屏幕上的二维码需要文章链接"))
        return problems

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        return Rendered(
            channel=self.name,
            kind="slide",
            title=post.title,
            text=self._summary(post),
            link=post.link,
            media=[m.path for m in post.images[:1]],
        )

    @staticmethod
    def _summary(post: Post) -> str:
        text = post.summary.strip() or " ".join(markdown_to_text(post.body).split())
        return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published:
        post = post.for_channel(self.name)
        folder = self.output_path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _folder_lock(folder):
                items = [i for i in self._load() if i["post_id"] != post.id]
                item = self._item(post, folder)
                items = sorted([*items, item], key=lambda i: i["published"], reverse=True)
                self._write_all(folder, items[: self.settings.max_items])
        except OSError as exc:
            raise Transient(f"screen: cannot write in {folder}: {exc.strerror or exc}") from None
        page = folder / "landscape.html"
        return Published(remote_id=f"screen-post-{post.id}", remote_url=page.resolve().as_uri())

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        folder = self.output_path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _folder_lock(folder):
                items = self._load()
                kept = [i for i in items if i["post_id"] != delivery.post_id]
                self._write_all(folder, kept)
        except OSError as exc:
            raise Transient(f"screen: cannot write in {folder}: {exc.strerror or exc}") from None
        return Retracted("removed" if len(kept) < len(items) else "already_gone")

    def _load(self) -> list[dict[str, Any]]:
        path = self.output_path / STATE_FILE
        if not path.is_file():
            return []
        return list(json.loads(path.read_text(encoding="utf-8")))

    def _item(self, post: Post, folder: Path) -> dict[str, Any]:
        import segno

        image = ""
        first = next((m for m in (*post.images, post.cover) if m and m.mime in _IMAGE_TYPES), None)
        if first is not None:
            name = Path(first.path).name
            target = folder / "media" / name
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(target, self.media_source(first).read_bytes())
            image = f"media/{name}"
        qr = segno.make(post.link, error="m").svg_data_uri(scale=8, border=2) if post.link else ""
        return {
            "post_id": post.id,
            "title": post.title,
            "summary": self._summary(post),
            "image": image,
            "qr": qr,
            "link": post.link,
            "published": self._now().isoformat(),
        }

    def _write_all(self, folder: Path, items: list[dict[str, Any]]) -> None:
        s = self.settings
        data = {
            "title": s.title,
            "seconds_per_slide": s.seconds_per_slide,
            "reload_seconds": s.reload_seconds,
            "updated": self._now().isoformat(),
            "items": [{k: v for k, v in i.items() if k != "published"} for i in items],
        }
        payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        write_atomically(folder / "data.js", f"window.KEPUBOT_SCREEN = {payload};\n".encode())
        write_atomically(folder / "screen.css", CSS.encode())
        write_atomically(folder / "screen.js", JS.encode())
        for orientation in ("landscape", "portrait"):
            write_atomically(folder / f"{orientation}.html", page(orientation, s.title).encode())
        write_atomically(
            folder / STATE_FILE, json.dumps(items, ensure_ascii=False, indent=1).encode()
        )


def page(orientation: str, title: str) -> str:
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="screen.css">
</head>
<body class="{orientation}">
<main id="stage" aria-live="polite">
  <section id="slide">
    <div class="media"><img id="image" alt=""></div>
    <div class="words">
      <h1 id="title"></h1>
      <p id="summary"></p>
      <div class="qr"><img id="qr" alt="文章二维码"><span>扫码阅读全文</span></div>
    </div>
  </section>
  <p id="empty" hidden>{html.escape(title)}：暂无内容</p>
</main>
<footer><span id="brand">{html.escape(title)}</span><span id="count"></span></footer>
<script src="data.js"></script>
<script src="screen.js"></script>
</body>
</html>
"""


CSS = """* { box-sizing: border-box; margin: 0; padding: 0; }
[hidden] { display: none !important; }
html, body { height: 100%; background: #0b2545; color: #fff; overflow: hidden;
  font-family: "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC",
    "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; }
body.landscape { width: 1920px; height: 1080px; }
body.portrait { width: 1080px; height: 1920px; }
main { height: calc(100% - 90px); padding: 60px; }
#slide { display: flex; gap: 60px; height: 100%; }
.portrait #slide { flex-direction: column; }
.media { flex: 1 1 50%; display: flex; align-items: center; justify-content: center;
  background: #13315c; border-radius: 24px; overflow: hidden; }
.media img { width: 100%; height: 100%; object-fit: contain; }
.words { flex: 1 1 50%; display: flex; flex-direction: column; gap: 40px; }
h1 { font-size: 88px; line-height: 1.2; font-weight: 700; }
#summary { font-size: 48px; line-height: 1.5; color: #dbe9ff; flex: 1; }
.qr { display: flex; align-items: center; gap: 30px; font-size: 40px; }
.qr img { width: 260px; height: 260px; background: #fff; border-radius: 12px; }
.portrait .qr img { width: 300px; height: 300px; }
#empty { font-size: 80px; text-align: center; margin-top: 30%; }
footer { height: 90px; display: flex; justify-content: space-between; align-items: center;
  padding: 0 60px; font-size: 36px; background: #134074; }
"""

JS = """(function () {
  "use strict";
  var index = 0, data = null, timer = null;
  function text(id, value) { document.getElementById(id).textContent = value || ""; }
  function show() {
    var items = (data && data.items) || [];
    var slide = document.getElementById("slide"), empty = document.getElementById("empty");
    if (!items.length) { slide.hidden = true; empty.hidden = false; text("count", ""); return; }
    slide.hidden = false; empty.hidden = true;
    index = index % items.length;
    var item = items[index];
    text("title", item.title); text("summary", item.summary);
    var image = document.getElementById("image");
    if (item.image) { image.src = item.image; image.parentNode.hidden = false; }
    else { image.parentNode.hidden = true; }  // no picture: the words take the whole slide
    var qr = document.getElementById("qr");
    if (item.qr) { qr.src = item.qr; qr.parentNode.hidden = false; } else { qr.parentNode.hidden = true; }
    text("count", (index + 1) + " / " + items.length);
  }
  function next() { index += 1; show(); }
  function start(fresh) {
    if (fresh) { data = fresh; index = 0; }  // new posts: the newest shows at once
    if (timer) { clearInterval(timer); }
    show();
    timer = setInterval(next, 1000 * ((data && data.seconds_per_slide) || 15));
  }
  function reload() {
    // the data file is a script (file:// blocks fetch): add it again, uncached
    var tag = document.createElement("script");
    tag.src = "data.js?t=" + Date.now();
    tag.onload = function () {
      var fresh = window.KEPUBOT_SCREEN;
      if (fresh && JSON.stringify(fresh) !== JSON.stringify(data)) {
        start(fresh);
      }
      tag.parentNode.removeChild(tag);
    };
    tag.onerror = function () { tag.parentNode.removeChild(tag); };
    document.body.appendChild(tag);
  }
  start(window.KEPUBOT_SCREEN || null);
  setInterval(reload, 1000 * ((data && data.reload_seconds) || 300));
})();
"""
