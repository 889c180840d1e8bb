"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import db, redis_client
from .httputil import json_response
from .keys import redis_key
from .middlewares import error_response

CHECK_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _postgres_ok(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with db.cursor(app) as cur:
                await cur.execute("SELECT 1")
        return True
    except (*db.UNAVAILABLE_ERRORS, TimeoutError, OSError):
        return False


async def _redis_ok(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return bool(await app[redis_key].ping())
    except (*redis_client.UNAVAILABLE_ERRORS, TimeoutError):
        return False


async def readyz(request: web.Request) -> web.Response:
    postgres, redis = await asyncio.gather(_postgres_ok(request.app), _redis_ok(request.app))
    checks = {"postgres": "ok" if postgres else "unavailable", "redis": "ok" if redis else "unavailable"}
    if postgres and redis:
        return json_response({"status": "ready", "checks": checks})
    down = " and ".join(name for name, ok in (("PostgreSQL", postgres), ("Redis", redis)) if not ok)
    return error_response(503, "not_ready", f"Not ready: {down} unavailable.", extra={"checks": checks})
