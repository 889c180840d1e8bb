"""The bundled web page. One template serves every page path; the page's own
script routes on the path, so /watch/{id} can be shared and reloaded."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import db
from .errors import NotFound
from .httputil import int_param, small_file_response
from .keys import settings_key
from .views import ensure_anonymous_id

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
STATIC_PREFIX = "/static/"


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(FRONTEND_DIR / "templates"), autoescape=True)


STATIC_DIR = FRONTEND_DIR / "static"


async def static(request: web.Request) -> web.Response:
    """A file of the page's own, sent whole. Resolved and checked to stay
    inside the static folder; anything else is a 404 in the JSON envelope."""
    try:
        path = (STATIC_DIR / request.match_info["path"]).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file():
            raise NotFound("No such file.")
        stat = path.stat()
    except (ValueError, OSError):  # a NUL in the name, a name too long for the OS
        raise NotFound("No such file.") from None
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        return await small_file_response(request, path, etag, content_type, "public, max-age=300")
    except FileNotFoundError:
        raise NotFound("No such file.") from None


def wants_page(request: web.Request) -> bool:
    """A browser navigating (not a script fetching JSON)."""
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "")


async def watch_page(request: web.Request) -> web.Response:
    """The page for /watch/{id}, answered 404 when there is no such video
    (the page then shows its own "not found" view)."""
    response = await page(request)
    try:
        video_id = int_param(request, "id")
    except NotFound:
        video_id = 0  # an id too long to exist
    async with db.cursor(request.app) as cur:
        exists = await db.fetch_one(cur, "SELECT 1 AS found FROM videos WHERE id = %(id)s", {"id": video_id})
    if exists is None:
        response.set_status(404)
    return response


async def page(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    context = {
        "static_url": STATIC_PREFIX,
        # The page reports a view once it has played this long (see views.py),
        # and refuses a file over the limit before sending a byte of it.
        "view_threshold_seconds": settings.view_threshold_seconds,
        "max_upload_bytes": settings.max_upload_bytes,
    }
    response = aiohttp_jinja2.render_template("index.html", request, context)
    response.headers["Cache-Control"] = "no-cache"
    # Issue the anonymous viewer cookie up front, so the page's WebSocket and
    # view reports carry it from the first request.
    ensure_anonymous_id(request, response)
    return response
