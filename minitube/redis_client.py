"""The shared Redis client."""

from __future__ import annotations

from typing import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from .keys import redis_key, settings_key

# Errors that mean "Redis cannot serve us right now": unreachable, timed out,
# or refusing (out of memory, read-only replica, loading). redis-py wraps
# socket errors in these; a bare OSError here would also swallow disk errors.
UNAVAILABLE_ERRORS = (RedisError,)


# Connections per process. redis-py's default pool fails at once when all
# are busy (MaxConnectionsError, a ConnectionError), which a burst of viewer
# joins took for an outage; a blocking pool makes the burst wait its turn.
POOL_SIZE = 64
POOL_WAIT_SECONDS = 5.0


def connect(url: str) -> aioredis.Redis:
    # Short timeouts: a Redis outage must degrade a request, not hang it.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_SECONDS,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=15,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one Redis client (a connection pool) per process."""
    client = connect(app[settings_key].redis_url)
    app[redis_key] = client
    yield
    await client.aclose()
