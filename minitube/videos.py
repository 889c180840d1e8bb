"""Video metadata: the rows, their JSON shape, and the single-video routes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from . import db
from .auth import AuthUser, required_user
from .errors import Forbidden, NotFound
from .httputil import int_param, json_response, rfc3339, small_file_response
from .keys import media_cache_key, presence_key, storage_key
from .media import CONTAINERS, MediaInfo

log = logging.getLogger(__name__)

VIDEO_COLUMNS = """
    v.id, v.title, v.description, v.content_type, v.size_bytes, v.duration_seconds,
    v.width, v.height, v.views, v.created_at, v.has_thumbnail, v.storage_key,
    v.author_id, u.display_name AS author_display_name
"""
SELECT_VIDEO = f"""
    SELECT {VIDEO_COLUMNS}
    FROM videos v JOIN users u ON u.id = v.author_id
    WHERE v.id = %(id)s
"""
INSERT_VIDEO = """
    INSERT INTO videos (author_id, title, description, storage_key, original_filename, content_type,
                        size_bytes, duration_seconds, width, height, video_codec, audio_codec, has_thumbnail)
    VALUES (%(author_id)s, %(title)s, %(description)s, %(storage_key)s, %(original_filename)s,
            %(content_type)s, %(size_bytes)s, %(duration_seconds)s, %(width)s, %(height)s,
            %(video_codec)s, %(audio_codec)s, %(has_thumbnail)s)
    RETURNING id
"""
DELETE_VIDEO = """
    DELETE FROM videos WHERE id = %(id)s AND author_id = %(author_id)s
    RETURNING storage_key, content_type
"""
SELECT_AUTHOR = "SELECT author_id FROM videos WHERE id = %(id)s"
SELECT_VIEWS = "SELECT views FROM videos WHERE id = %(id)s"


def extension_for(content_type: str) -> str:
    return next(ext for ctype, ext in CONTAINERS.values() if ctype == content_type)


def video_json(row: dict, active_viewers: int | None) -> dict:
    video_id = row["id"]
    return {
        "id": video_id,
        "title": row["title"],
        "description": row["description"],
        "author": {"id": row["author_id"], "display_name": row["author_display_name"]},
        "content_type": row["content_type"],
        "size_bytes": row["size_bytes"],
        "duration_seconds": row["duration_seconds"],
        "width": row["width"],
        "height": row["height"],
        "views": row["views"],
        # None when Redis is unreachable: "unknown" is honest, 0 would be a lie.
        "active_viewers": active_viewers,
        "created_at": rfc3339(row["created_at"]),
        "stream_url": f"/videos/{video_id}/stream",
        "thumbnail_url": f"/videos/{video_id}/thumbnail" if row["has_thumbnail"] else None,
    }


async def fetch_video(app: web.Application, video_id: int) -> dict:
    async with db.cursor(app) as cur:
        row = await db.fetch_one(cur, SELECT_VIDEO, {"id": video_id})
    if row is None:
        raise NotFound("No video with that id.", code="video_not_found")
    return row


async def fetch_views(app: web.Application, video_id: int) -> int:
    async with db.cursor(app) as cur:
        row = await db.fetch_one(cur, SELECT_VIEWS, {"id": video_id})
    if row is None:
        raise NotFound("No video with that id.", code="video_not_found")
    return row["views"]


async def create_video(
    app: web.Application, author: AuthUser, title: str, description: str, info: MediaInfo, original_filename: str | None
) -> int:
    """Store a processed upload: the row and its files appear together or not at all."""
    storage = app[storage_key]
    key = storage.new_key()
    params = {
        "author_id": author.id,
        "title": title,
        "description": description,
        "storage_key": key,
        "original_filename": original_filename,
        "content_type": info.content_type,
        "size_bytes": info.size_bytes,
        "duration_seconds": info.duration_seconds,
        "width": info.width,
        "height": info.height,
        "video_codec": info.video_codec,
        "audio_codec": info.audio_codec,
        "has_thumbnail": info.thumbnail_path is not None,
    }
    loop = asyncio.get_running_loop()
    try:
        async with db.transaction(app) as cur:
            row = await db.fetch_one(cur, INSERT_VIDEO, params)
            # The files move into place before COMMIT: once the row is visible
            # its media is there. Should the commit fail, they are removed
            # below, so neither an orphan row nor an orphan file survives.
            poster = Path(info.thumbnail_path) if info.thumbnail_path else None
            await loop.run_in_executor(None, storage.install, key, Path(info.path), info.extension, poster)
    except BaseException:
        await loop.run_in_executor(None, storage.remove, key, info.extension)
        raise
    return row["id"]


# --- handlers ---------------------------------------------------------------


async def get_video(request: web.Request) -> web.Response:
    video_id = int_param(request, "id")
    row = await fetch_video(request.app, video_id)
    counts = await request.app[presence_key].counts([video_id])
    return json_response({"video": video_json(row, counts[video_id])})


async def delete_video(request: web.Request) -> web.Response:
    user = await required_user(request)
    video_id = int_param(request, "id")
    app = request.app
    async with db.cursor(app) as cur:
        deleted = await db.fetch_one(cur, DELETE_VIDEO, {"id": video_id, "author_id": user.id})
        if deleted is None:
            owner = await db.fetch_one(cur, SELECT_AUTHOR, {"id": video_id})
            if owner is None:
                raise NotFound("No video with that id.", code="video_not_found")
            raise Forbidden("Only the author can delete this video.", code="not_author")
    await asyncio.get_running_loop().run_in_executor(
        None, app[storage_key].remove, deleted["storage_key"], extension_for(deleted["content_type"])
    )
    app[media_cache_key].evict(video_id)
    await app[presence_key].video_deleted(video_id)
    return web.Response(status=204)


async def thumbnail(request: web.Request) -> web.Response:
    """The poster frame, sent whole (posters are small)."""
    video_id = int_param(request, "id")
    row = await fetch_video(request.app, video_id)
    path = request.app[storage_key].poster_path(row["storage_key"])
    if not row["has_thumbnail"]:
        raise NotFound("This video has no poster frame.", code="thumbnail_not_found")
    etag = f'"{row["storage_key"]}-poster"'  # the key is unique and the poster never changes
    try:
        return await small_file_response(request, path, etag, "image/jpeg", "public, max-age=300")
    except FileNotFoundError:
        raise NotFound("This video has no poster frame.", code="thumbnail_not_found") from None
