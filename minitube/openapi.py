"""The API's OpenAPI 3.1 document and the Swagger UI over it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from aiohttp import web

SPEC_PATH = Path(__file__).resolve().parent / "openapi.json"


@lru_cache(maxsize=1)
def spec_text() -> str:
    return json.dumps(json.loads(SPEC_PATH.read_text(encoding="utf-8")), separators=(",", ":"))


async def document(request: web.Request) -> web.Response:
    return web.Response(text=spec_text(), content_type="application/json")


async def docs(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()
