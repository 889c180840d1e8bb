"""Fixed-window counters in Redis, shared by every process.

Throttling fails open: when Redis is down we log and let the request through,
because refusing every login during a Redis outage would be worse than
briefly not rate limiting them."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from .errors import RateLimited
from .redis_client import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

GIVE_BACK_LUA = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end return 0"


async def current(redis: aioredis.Redis, key: str) -> tuple[int, int]:
    """(count, seconds until the window resets) without counting."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            count, ttl = await pipe.get(key).ttl(key).execute()
    except UNAVAILABLE_ERRORS:
        log.warning("rate limit check skipped: Redis unavailable")
        return 0, 0
    return int(count or 0), max(int(ttl), 0)


async def hit(redis: aioredis.Redis, key: str, window: int) -> tuple[int, int]:
    """Count one event in the window; returns (count, seconds until reset)."""
    return (await hit_all(redis, [key], window))[0]


async def hit_all(redis: aioredis.Redis, keys: list[str], window: int) -> list[tuple[int, int]]:
    """Count one event under each key, in one transaction, so that
    concurrent requests see consistent counts across the keys."""
    try:
        async with redis.pipeline(transaction=True) as pipe:
            for key in keys:
                # SET NX EX then INCR: the window starts at the first event and the
                # counter can never be left without an expiry (Redis 6 has no EXPIRE NX).
                pipe.set(key, 0, ex=window, nx=True).incr(key).ttl(key)
            results = await pipe.execute()
    except UNAVAILABLE_ERRORS:
        log.warning("rate limit not counted: Redis unavailable")
        return [(0, 0) for _ in keys]
    return [(int(results[i + 1]), max(int(results[i + 2]), 1)) for i in range(0, len(results), 3)]


async def give_back(redis: aioredis.Redis, key: str) -> None:
    """Uncount one event (a login attempt that turned out to succeed)."""
    try:
        # Only while the window lasts: DECR on an expired key would create a
        # counter with no expiry.
        await redis.eval(GIVE_BACK_LUA, 1, key)
    except UNAVAILABLE_ERRORS:
        log.warning("rate limit not adjusted: Redis unavailable")


async def forget(redis: aioredis.Redis, key: str) -> None:
    try:
        await redis.delete(key)
    except UNAVAILABLE_ERRORS:
        log.warning("rate limit not reset: Redis unavailable")


async def limit(redis: aioredis.Redis, key: str, *, allowed: int, window: int, what: str) -> None:
    """Count one event and raise 429 once more than `allowed` fell in the window."""
    count, ttl = await hit(redis, key, window)
    if count > allowed:
        raise RateLimited(ttl, f"Too many {what}; try again in {ttl} seconds.")
