"""The API's OpenAPI 3.1 document and the Swagger UI over it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from .pages import STATIC_PREFIX

SPEC_PATH = Path(__file__).resolve().parent / "openapi.json"


@lru_cache(maxsize=1)
def spec_text() -> str:
    return json.dumps(json.loads(SPEC_PATH.read_text(encoding="utf-8")), separators=(",", ":"))


async def document(request: web.Request) -> web.Response:
    return web.Response(text=spec_text(), content_type="application/json")


async def docs(request: web.Request) -> web.Response:
    """Swagger UI, served from the vendored copy in frontend/static/swagger/."""
    context = {"static_url": STATIC_PREFIX, "spec_url": request.app.router["openapi"].url_for()}
    response = aiohttp_jinja2.render_template("swagger.html", request, context)
    response.headers["Cache-Control"] = "no-cache"
    return response
