"""Fixed-window counters in Redis, shared by every process.

While Redis is unreachable the counting falls back to this process alone: a
limit per process is weaker than one shared by all, but a Redis outage must
not open the door to unthrottled password guessing, nor refuse every login."""

from __future__ import annotations

import logging
import time
from typing import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from .errors import RateLimited
from .keys import limiter_key, redis_key
from .redis_client import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

GIVE_BACK_LUA = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end return 0"
# Bound on the fallback's memory: past it, expired windows are dropped, then all.
LOCAL_KEYS = 10_000


class RateLimiter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._local: dict[str, tuple[int, float]] = {}  # key -> (count, window end)

    async def hit_all(self, keys: list[str], window: int) -> list[tuple[int, int]]:
        """Count one event under each key, in one transaction, so concurrent
        requests see consistent counts across the keys; (count, seconds until
        the window resets) for each."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    # SET NX EX then INCR: the window starts at the first event and the
                    # counter can never be left without an expiry (Redis 6 has no EXPIRE NX).
                    pipe.set(key, 0, ex=window, nx=True).incr(key).ttl(key)
                results = await pipe.execute()
        except UNAVAILABLE_ERRORS:
            log.warning("rate limits counted in this process only: Redis unavailable")
            return [self._hit_local(key, window) for key in keys]
        return [(int(results[i + 1]), max(int(results[i + 2]), 1)) for i in range(0, len(results), 3)]

    async def limit(self, key: str, *, allowed: int, window: int, what: str) -> None:
        """Count one event and raise 429 once more than `allowed` fell in the window."""
        [(count, ttl)] = await self.hit_all([key], window)
        if count > allowed:
            raise RateLimited(ttl, f"Too many {what}; try again in {ttl} seconds.")

    async def give_back(self, key: str) -> None:
        """Uncount one event (a login attempt that turned out to succeed)."""
        count, ends = self._local.get(key, (0, 0.0))
        if count:
            self._local[key] = (count - 1, ends)
        try:
            # Only while the window lasts: DECR on an expired key would create a
            # counter with no expiry.
            await self._redis.eval(GIVE_BACK_LUA, 1, key)
        except UNAVAILABLE_ERRORS:
            pass

    async def forget(self, key: str) -> None:
        self._local.pop(key, None)
        try:
            await self._redis.delete(key)
        except UNAVAILABLE_ERRORS:
            pass

    def _hit_local(self, key: str, window: int) -> tuple[int, int]:
        now = time.monotonic()
        count, ends = self._local.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window
            if len(self._local) >= LOCAL_KEYS:
                self._local = {k: v for k, v in self._local.items() if v[1] > now}
                if len(self._local) >= LOCAL_KEYS:
                    self._local.clear()
        self._local[key] = (count + 1, ends)
        return count + 1, max(int(ends - now), 1)


async def limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    app[limiter_key] = RateLimiter(app[redis_key])
    yield
