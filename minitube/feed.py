"""The feed: newest first, paged with keyset cursors for infinite scroll.

A cursor names the last item of a page by (created_at, id); the next page is
everything strictly before it in that order. Unlike OFFSET, a video uploaded
between two page requests cannot shift the pages, so walking them yields
every older video exactly once."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone

from aiohttp import web

from . import db
from .errors import BadRequest, Invalid
from .httputil import json_response
from .keys import presence_key
from .videos import VIDEO_COLUMNS, video_json

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
CURSOR_RE = re.compile(r"v1:([0-9]{1,17}):([1-9][0-9]{0,17})", re.ASCII)
LIMIT_RE = re.compile(r"[0-9]{1,3}", re.ASCII)

FEED_FIRST_PAGE = f"""
    SELECT {VIDEO_COLUMNS}
    FROM videos v JOIN users u ON u.id = v.author_id
    ORDER BY v.created_at DESC, v.id DESC
    LIMIT %(limit)s
"""
FEED_NEXT_PAGE = f"""
    SELECT {VIDEO_COLUMNS}
    FROM videos v JOIN users u ON u.id = v.author_id
    WHERE (v.created_at, v.id) < (%(created_at)s, %(id)s)
    ORDER BY v.created_at DESC, v.id DESC
    LIMIT %(limit)s
"""


def encode_cursor(created_at: datetime, video_id: int) -> str:
    # Integer microseconds: exactly the timestamp PostgreSQL stores, no float drift.
    micros = (created_at - EPOCH) // MICROSECOND
    return base64.urlsafe_b64encode(f"v1:{micros}:{video_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        match = CURSOR_RE.fullmatch(raw)
        if match is None:
            raise ValueError(raw)
        created_at = EPOCH + int(match.group(1)) * MICROSECOND
        return created_at, int(match.group(2))
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise BadRequest("The cursor is not one this server issued.", code="invalid_cursor") from None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not LIMIT_RE.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise Invalid({"limit": f"must be an integer from 1 to {MAX_LIMIT}"})
    return int(raw)


async def feed(request: web.Request) -> web.Response:
    limit = parse_limit(request.query.get("limit"))
    cursor = request.query.get("cursor")
    params: dict = {"limit": limit + 1}  # one extra row tells whether a next page exists
    if cursor:
        params["created_at"], params["id"] = decode_cursor(cursor)
    async with db.cursor(request.app) as cur:
        rows = await db.fetch_all(cur, FEED_NEXT_PAGE if cursor else FEED_FIRST_PAGE, params)
    has_more = len(rows) > limit
    rows = rows[:limit]
    counts = await request.app[presence_key].counts([row["id"] for row in rows])
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if has_more else None
    return json_response({"items": [video_json(row, counts[row["id"]]) for row in rows], "next_cursor": next_cursor})
