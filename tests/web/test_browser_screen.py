"""The display screens' kiosk pages in headless Chromium (issue 14): both orientations load
from file:// with no outside request, show a slide with its QR code, cycle, pick up a new
post by re-reading data.js, and drop a retracted one. Screenshots of both orientations go to
``$KEPUBOT_SCREENSHOTS`` or ``test-artifacts/screenshots/``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import CHROMIUM_FLAGS
from kepubot.channels.screen import ScreenChannel
from tests.channels.test_feed import Context, make_post, store_image

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]
REPO = Path(__file__).resolve().parents[2]
SIZES = {"landscape": (1920, 1080), "portrait": (1080, 1920)}


def test_kiosk_pages_cycle_reload_and_drop_retracted(tmp_path: Path) -> None:
    base = tmp_path / "site"
    base.mkdir()
    context = Context(tmp_path / "media-store", base)
    settings = {
        "type": "screen",
        "output_dir": "kiosk",
        "seconds_per_slide": 3,
        "reload_seconds": 10,
        "title": "科普e站",
    }
    channel = ScreenChannel("kiosk", ScreenChannel.Settings.model_validate(settings), context)
    image = store_image(context)
    channel.publish(make_post(1, media=[image]), {})
    context.tick()
    channel.publish(make_post(2), {})
    folder = base / "kiosk"
    shots = Path(os.environ.get("KEPUBOT_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", *CHROMIUM_FLAGS]
        )
        try:
            for orientation, (width, height) in SIZES.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                outside: list[str] = []
                page.on(
                    "request",
                    lambda r, seen=outside: (
                        seen.append(r.url) if not r.url.startswith(("file:", "data:")) else None
                    ),
                )
                errors: list[str] = []
                page.on("pageerror", lambda e, seen=errors: seen.append(str(e)))
                page.clock.install()
                page.goto((folder / f"{orientation}.html").as_uri())
                title = page.locator("#title")
                sync_api.expect(title).to_have_text(make_post(2).title)  # the newest first
                sync_api.expect(page.locator(".media")).to_be_hidden()  # it has no picture
                assert page.locator("#qr").get_attribute("src").startswith("data:image/svg+xml")
                size = page.evaluate(
                    "() => [document.body.scrollWidth, document.body.scrollHeight]"
                )
                assert size == [width, height]
                page.screenshot(path=str(shots / f"screen-{orientation}.png"))
                page.clock.run_for(3500)  # one slide later
                sync_api.expect(title).to_have_text(make_post(1).title)
                sync_api.expect(page.locator("#image")).to_be_visible()
                box = page.locator("#image").bounding_box()
                assert box is not None and box["width"] > width / 3  # scaled up, readable
                page.screenshot(path=str(shots / f"screen-{orientation}-image.png"))

                # a new post and a retraction reach the running page through data.js
                context.tick()
                channel.publish(make_post(3), {})
                page.clock.run_for(10_500)
                sync_api.expect(page.locator("#count")).to_have_text("1 / 3")
                sync_api.expect(title).to_have_text(make_post(3).title)
                from kepubot.models import Delivery

                gone = Delivery.model_validate(
                    {
                        "id": 1,
                        "post_id": 3,
                        "channel": "kiosk",
                        "state": "published",
                        "due_at": context.clock,
                        "not_before": context.clock,
                    }
                )
                channel.retract(gone, make_post(3), {})
                page.clock.run_for(10_500)
                sync_api.expect(page.locator("#count")).to_have_text("1 / 2")
                assert make_post(3).title not in page.content()
                assert outside == [] and errors == []
                page.close()
        finally:
            browser.close()
