"""Total views: counted only for real watching, once per viewer per window.

A viewer is the signed-in user, or else an anonymous id the server issues in
an HttpOnly cookie, combined with the client address. Watching starts when
the viewer's page opens the viewers WebSocket (or starts the stream); a
report counts only when the server's own clock says enough time has passed
since then. Redis does the deciding (one atomic script); PostgreSQL holds the
count itself, so a Redis restart loses no counted view. See docs/anti-fraud.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

from aiohttp import web

from . import db
from .auth import optional_user
from .errors import NotFound, ServiceUnavailable
from .httputil import client_address, dumps, int_param, json_response
from .keys import presence_key, redis_key, settings_key
from .redis_client import UNAVAILABLE_ERRORS
from .videos import SELECT_VIEWS, fetch_views

log = logging.getLogger(__name__)

VIEWER_COOKIE = "mt_viewer"
COOKIE_MAX_AGE = 365 * 24 * 3600

SELECT_DURATION = "SELECT duration_seconds FROM videos WHERE id = %(id)s"
INCREMENT_VIEWS = "UPDATE videos SET views = views + 1 WHERE id = %(id)s RETURNING views"

# KEYS: watch-start keys (user, cookie), counted key, address counter.
# ARGV: now, threshold seconds, window seconds, per-address cap.
# Returns 1 when counted, or a negative reason.
COUNT_VIEW_LUA = """
local started = nil
for i = 1, 2 do
  local value = redis.call('GET', KEYS[i])
  if value and (not started or tonumber(value) < started) then started = tonumber(value) end
end
if not started then return -1 end
if tonumber(ARGV[1]) - started < tonumber(ARGV[2]) then return -2 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -3 end
local used = tonumber(redis.call('GET', KEYS[4]) or '0')
if used >= tonumber(ARGV[4]) then return -4 end
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3])
if used == 0 then redis.call('SET', KEYS[4], 1, 'EX', ARGV[3]) else redis.call('INCR', KEYS[4]) end
return 1
"""
REASONS = {-1: "not_watching", -2: "too_early", -3: "already_counted", -4: "address_limit"}


# --- who is watching -----------------------------------------------------------


def _sign(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def anonymous_id(request: web.Request) -> str | None:
    """The anonymous id from a cookie this server signed, else None."""
    raw = request.cookies.get(VIEWER_COOKIE, "")
    value, _, signature = raw.partition(".")
    if value and hmac.compare_digest(signature, _sign(request.app[settings_key].secret_key, value)):
        return value
    return None


def ensure_anonymous_id(request: web.Request, response: web.StreamResponse) -> str:
    """The request's anonymous id, issuing a new cookie on the response if needed."""
    existing = anonymous_id(request)
    if existing is not None:
        return existing
    value = secrets.token_urlsafe(16)
    response.set_cookie(
        VIEWER_COOKIE,
        f"{value}.{_sign(request.app[settings_key].secret_key, value)}",
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )
    return value


def anonymous_viewer(request: web.Request, anon_id: str) -> str:
    # The address is part of the id: a cookie copied to other machines is
    # other viewers, each still under its own address's cap.
    return f"a:{anon_id}:{client_address(request)}"


def user_viewer(user_id: int) -> str:
    return f"u:{user_id}"


def watch_key(video_id: int, viewer: str) -> str:
    return f"watch:{video_id}:{viewer}"


async def note_watch_start(app: web.Application, video_id: int, viewer: str) -> None:
    """Record when this viewer started watching (the first time in the window)."""
    settings = app[settings_key]
    try:
        await app[redis_key].set(
            watch_key(video_id, viewer), f"{time.time():.3f}", nx=True, ex=settings.view_window_seconds
        )
    except UNAVAILABLE_ERRORS:
        log.warning("watch start not recorded: Redis unavailable")


# --- counting ----------------------------------------------------------------


def threshold_for(settings_threshold: float, duration: float | None) -> float:
    """30 s by default, or half the video when it is shorter than that."""
    if duration and duration > 0:
        return min(settings_threshold, duration / 2)
    return settings_threshold


async def report_view(request: web.Request) -> web.Response:
    app = request.app
    settings = app[settings_key]
    video_id = int_param(request, "id")
    user = await optional_user(request)
    async with db.cursor(app) as cur:
        row = await db.fetch_one(cur, SELECT_DURATION, {"id": video_id})
    if row is None:
        raise NotFound("No video with that id.", code="video_not_found")

    response = json_response({})
    anon = ensure_anonymous_id(request, response)
    cookie_viewer = anonymous_viewer(request, anon)
    viewer = user_viewer(user.id) if user else cookie_viewer
    address = client_address(request)
    now = time.time()
    keys = [
        watch_key(video_id, viewer),
        watch_key(video_id, cookie_viewer),
        f"counted:{video_id}:{viewer}",
        f"views-addr:{video_id}:{address}",
    ]
    args = [f"{now:.3f}", threshold_for(settings.view_threshold_seconds, row["duration_seconds"]),
            settings.view_window_seconds, settings.views_per_address]
    redis = app[redis_key]
    try:
        outcome = await redis.eval(COUNT_VIEW_LUA, len(keys), *keys, *args)
    except UNAVAILABLE_ERRORS:
        raise ServiceUnavailable("View counting is unavailable (Redis is down).", code="redis_unavailable") from None

    counted = outcome == 1
    try:
        async with db.cursor(app) as cur:
            result = await db.fetch_one(cur, INCREMENT_VIEWS if counted else SELECT_VIEWS, {"id": video_id})
    except BaseException:
        if counted:  # give the viewer their view back: it was not stored
            await redis.delete(keys[2])
            await redis.decr(keys[3])
        raise
    if result is None:  # deleted meanwhile
        raise NotFound("No video with that id.", code="video_not_found")
    views = result["views"]
    if counted:
        await app[presence_key].views_changed(video_id, views)
    else:
        log.info("view not counted video=%s reason=%s", video_id, REASONS.get(outcome, outcome))
    response.text = dumps({"video_id": video_id, "views": views, "counted": counted})
    return response


async def get_views(request: web.Request) -> web.Response:
    video_id = int_param(request, "id")
    return json_response({"video_id": video_id, "views": await fetch_views(request.app, video_id)})
