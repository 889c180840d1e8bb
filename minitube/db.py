"""PostgreSQL access: the aiopg pool and small helpers around cursors."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import aiopg
import psycopg2.extras
from aiohttp import web

from .keys import db_key, settings_key

# Errors that mean "the database is not reachable", not "the query is wrong".
UNAVAILABLE_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


async def db_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: an aiopg pool, created lazily so the server starts (and
    answers /readyz 503) even while PostgreSQL is still coming up."""
    settings = app[settings_key]
    pool = await aiopg.create_pool(
        settings.database_url,
        minsize=0,
        maxsize=10,
        timeout=10.0,
        pool_recycle=300,
        cursor_factory=psycopg2.extras.RealDictCursor,
    )
    app[db_key] = pool
    yield
    pool.close()
    await pool.wait_closed()


@contextlib.asynccontextmanager
async def cursor(app: web.Application) -> AsyncIterator[aiopg.Cursor]:
    """A cursor on a pooled connection (autocommit, so each statement commits)."""
    async with app[db_key].acquire() as conn:
        async with conn.cursor() as cur:
            yield cur


@contextlib.asynccontextmanager
async def transaction(app: web.Application) -> AsyncIterator[aiopg.Cursor]:
    """A cursor inside BEGIN … COMMIT; an exception rolls back."""
    async with cursor(app) as cur:
        async with cur.begin():
            yield cur


async def fetch_one(cur: aiopg.Cursor, sql: str, params: dict[str, Any] | None = None) -> dict | None:
    await cur.execute(sql, params or {})
    return await cur.fetchone()


async def fetch_all(cur: aiopg.Cursor, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
    await cur.execute(sql, params or {})
    return await cur.fetchall()
