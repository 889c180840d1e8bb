"""Every typed key for app state and per-request values, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiopg
import redis.asyncio as aioredis
from aiohttp import web

from .settings import Settings
from .storage import Storage

if TYPE_CHECKING:
    from .auth import AuthUser, PasswordHasher
    from .ratelimit import RateLimiter
    from .streaming import MediaCache
    from .viewers import Presence

settings_key = web.AppKey("settings", Settings)
db_key = web.AppKey("db", aiopg.Pool)
redis_key = web.AppKey("redis", aioredis.Redis)
hasher_key = web.AppKey("hasher", "PasswordHasher")
media_cache_key = web.AppKey("media_cache", "MediaCache")
presence_key = web.AppKey("presence", "Presence")
storage_key = web.AppKey("storage", Storage)
limiter_key = web.AppKey("limiter", "RateLimiter")

user_key = web.RequestKey("user", "AuthUser | None")
request_id_key = web.RequestKey("request_id", str)
