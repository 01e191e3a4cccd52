"""The console's pages, one module per area; each ``register(app)`` adds its routes."""

from __future__ import annotations

from flask import Flask

from kepubot.web.forms import IdConverter
from kepubot.web.pages import auth, bulk, media, operations, planning, posts, stop, tasks, users


def register(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter  # before any route uses <id:...>
    for area in (auth, posts, bulk, media, planning, operations, stop, users, tasks):
        area.register(app)
