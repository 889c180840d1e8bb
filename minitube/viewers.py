""""Watching now": live viewer counts shared by every process through Redis.

Two sorted sets per video, both scored with the time an entry expires:

    presence:<video>            viewer -> latest expiry of any of its sockets
    presence:<video>:<viewer>   that viewer's sockets -> their expiry

A process renews the scores of its own sockets while they live, so a process
killed with SIGKILL drops out once its entries expire, and nothing has to
clean up after it. The count of distinct viewers is then one ZCOUNT of the
unexpired viewers: O(log n), however many watch. A socket that closes is
removed from its viewer's set, and the viewer's score falls back to its
latest remaining socket (or the viewer goes), in one script.

Every change is published on one channel; each process marks that video dirty
and, at most every `broadcast_interval_seconds`, recounts each dirty video
once and sends the result to its own sockets. A burst of a thousand joins
therefore costs each socket a few messages, and a broadcast costs one Redis
round trip per process, never one per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import secrets
import time
import weakref
from typing import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web

from . import db
from .auth import user_from_token
from .errors import Forbidden, RateLimited
from .httputil import client_address, int_param
from .keys import media_cache_key, presence_key, redis_key, settings_key
from .redis_client import UNAVAILABLE_ERRORS
from .settings import Settings
from .videos import SELECT_VIEWS
from .views import anonymous_viewer, ensure_anonymous_id, note_watch_start, user_viewer

log = logging.getLogger(__name__)

CHANNEL = "minitube:presence"
CLOSE_VIDEO_NOT_FOUND = 4404

# KEYS: the viewer's sockets, the video's viewers. ARGV: socket id, viewer, now.
LEAVE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #latest == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], 'XX', latest[2], ARGV[2])
end
return #latest
"""


def _message(video_id: int, active_viewers: int | None, views: int) -> str:
    return json.dumps({"video_id": video_id, "active_viewers": active_viewers, "views": views})


@contextlib.contextmanager
def _survive(what: str):
    """Background loops must outlive any one failure (Redis refusing a
    command, say): log it and go on with the next round."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except UNAVAILABLE_ERRORS as exc:
        log.warning("%s failed: Redis unavailable (%s)", what, exc)
    except Exception:
        log.exception("%s failed", what)


def viewers_set(video_id: int) -> str:
    return f"presence:{video_id}"


def sockets_set(video_id: int, viewer: str) -> str:
    return f"presence:{video_id}:{viewer}"


def address_set(address: str) -> str:
    return f"presence-addr:{address}"


@dataclasses.dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    video_id: int
    viewer: str
    address: str
    socket_id: str  # "<process>:<n>", unique across processes
    last_message: str = ""  # what this socket was last told, so it is not told twice

    async def send(self, message: str) -> None:
        if self.ws.closed or message == self.last_message:
            return
        self.last_message = message
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(message)


class Presence:
    """This process's side of the shared viewer counts."""

    def __init__(self, settings: Settings, redis: aioredis.Redis, app: web.Application) -> None:
        self._settings = settings
        self._redis = redis
        self._app = app
        self._process = secrets.token_hex(6)
        self._ids = itertools.count(1)
        self._by_video: dict[int, set[Connection]] = {}
        self._dirty: set[int] = set()
        self._views: dict[int, int] = {}
        self._sent: dict[int, tuple[int | None, int]] = {}
        self._wake = asyncio.Event()
        self._leaving: list[Connection] = []
        self._leave_wake = asyncio.Event()
        self._ttl = int(settings.presence_timeout_seconds) + 1
        # Subscribing blocks on a read for as long as the channel is quiet, so
        # it gets a client of its own without the short socket timeout.
        self._pubsub_client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True, health_check_interval=15)
        self._pubsub = None
        self._stopping = False
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    # --- joining and leaving -------------------------------------------------

    async def join(
        self, ws: web.WebSocketResponse, video_id: int, viewer: str, address: str, socket_id: str, views: int
    ) -> Connection:
        conn = Connection(ws, video_id, viewer, address, socket_id)
        self._by_video.setdefault(video_id, set()).add(conn)
        # Views only grow: a count read before a concurrent view must not win.
        self._views[video_id] = max(self._views.get(video_id, 0), views)
        self.sockets.add(ws)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._record(pipe, [conn], time.time() + self._settings.presence_timeout_seconds)
                pipe.publish(CHANNEL, json.dumps({"video": video_id}))
                await pipe.execute()
        except UNAVAILABLE_ERRORS:
            log.warning("presence not recorded: Redis unavailable (renewal retries)")
        self._mark(video_id)
        return conn

    def _record(self, pipe, conns: list[Connection], expires: float) -> None:
        """Queue the commands that (re)record these sockets as alive until
        `expires`: one ZADD per key, however many sockets share it."""
        sockets: dict[str, dict[str, float]] = {}
        viewers: dict[str, dict[str, float]] = {}
        addresses: dict[str, dict[str, float]] = {}
        for conn in conns:
            sockets.setdefault(sockets_set(conn.video_id, conn.viewer), {})[conn.socket_id] = expires
            viewers.setdefault(viewers_set(conn.video_id), {})[conn.viewer] = expires
            addresses.setdefault(address_set(conn.address), {})[conn.socket_id] = expires
        for key, members in sockets.items():
            pipe.zadd(key, members)
        for key, members in viewers.items():
            # GT: a later expiry recorded by another process for the same viewer stands.
            pipe.zadd(key, members, gt=True)
        for key, members in addresses.items():
            pipe.zadd(key, members)
        for key in (*sockets, *viewers, *addresses):
            pipe.expire(key, self._ttl)

    def leave(self, conn: Connection) -> None:
        """Forget a closed socket here at once, and in Redis with the next batch."""
        self.sockets.discard(conn.ws)
        conns = self._by_video.get(conn.video_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_video[conn.video_id]
                self._views.pop(conn.video_id, None)
                self._sent.pop(conn.video_id, None)
        self._leaving.append(conn)
        self._leave_wake.set()

    async def leave_forever(self) -> None:
        """Remove closed sockets from Redis in batches. When a crowd leaves at
        once (a stream ends, a server drains) this is one pipeline for all of
        them instead of one round trip, and one pooled connection, each."""
        while True:
            await self._leave_wake.wait()
            self._leave_wake.clear()
            with _survive("presence leave"):
                await self._flush_leaves()

    async def _flush_leaves(self) -> None:
        batch, self._leaving = self._leaving, []
        if not batch:
            return
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for conn in batch:
                    pipe.eval(LEAVE_LUA, 2, sockets_set(conn.video_id, conn.viewer), viewers_set(conn.video_id),
                              conn.socket_id, conn.viewer, now)
                    pipe.zrem(address_set(conn.address), conn.socket_id)
                for video_id in {conn.video_id for conn in batch}:
                    pipe.publish(CHANNEL, json.dumps({"video": video_id}))
                await pipe.execute()
        except UNAVAILABLE_ERRORS:
            log.warning("presence of %d closed socket(s) not removed: Redis unavailable (it expires)", len(batch))

    def new_socket_id(self) -> str:
        return f"{self._process}:{next(self._ids)}"

    async def reserve(self, address: str, socket_id: str) -> bool:
        """Claim one of an address's live-socket slots, across every process,
        before the handshake. The claim is added first and counted after, in
        one transaction, so concurrent handshakes cannot all slip past the cap."""
        cap = self._settings.sockets_per_address
        key, now = address_set(address), time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {socket_id: now + self._settings.presence_timeout_seconds})
                pipe.expire(key, self._ttl)
                pipe.zcard(key)
                *_, count = await pipe.execute()
        except UNAVAILABLE_ERRORS:
            # This process's own sockets are all it can see now.
            return sum(c.address == address for conns in self._by_video.values() for c in conns) < cap
        if count > cap:
            await self.release(address, socket_id)
            return False
        return True

    async def release(self, address: str, socket_id: str) -> None:
        """Give back a claimed slot whose socket never joined."""
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            await self._redis.zrem(address_set(address), socket_id)

    # --- counts ------------------------------------------------------------------

    async def counts(self, video_ids: list[int]) -> dict[int, int | None]:
        """Distinct live viewers per video; None for each when Redis is down."""
        if not video_ids:
            return {}
        alive = f"({time.time()}"  # expiry strictly after now
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for video_id in video_ids:
                    pipe.zcount(viewers_set(video_id), alive, "+inf")
                results = await pipe.execute()
        except UNAVAILABLE_ERRORS:
            return {video_id: None for video_id in video_ids}
        return {video_id: int(n) for video_id, n in zip(video_ids, results)}

    async def views_changed(self, video_id: int, views: int) -> None:
        self._note_views(video_id, views)
        try:
            await self._redis.publish(CHANNEL, json.dumps({"video": video_id, "views": views}))
        except UNAVAILABLE_ERRORS:
            pass

    async def video_deleted(self, video_id: int) -> None:
        try:
            await self._redis.publish(CHANNEL, json.dumps({"video": video_id, "deleted": True}))
        except UNAVAILABLE_ERRORS:
            await self._close_video(video_id)

    async def current_message(self, video_id: int) -> str:
        """The counts a new socket is greeted with (its own join included)."""
        count = (await self.counts([video_id]))[video_id]
        return _message(video_id, count, self._views.get(video_id, 0))

    def _note_views(self, video_id: int, views: int) -> None:
        if video_id in self._views:
            self._views[video_id] = max(self._views[video_id], views)
            self._mark(video_id)

    def _mark(self, video_id: int) -> None:
        if video_id in self._by_video:
            self._dirty.add(video_id)
            self._wake.set()

    async def _close_video(self, video_id: int) -> None:
        for conn in list(self._by_video.get(video_id, ())):
            await conn.ws.close(code=CLOSE_VIDEO_NOT_FOUND, message=b"video deleted")

    # --- background tasks ----------------------------------------------------------

    async def broadcast_forever(self) -> None:
        """Recount dirty videos and push the counts to local sockets, coalesced."""
        interval = self._settings.broadcast_interval_seconds
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            with _survive("presence broadcast"):
                await self._broadcast([v for v in dirty if v in self._by_video])
            await asyncio.sleep(interval)

    async def _broadcast(self, videos: list[int]) -> None:
        counts = await self.counts(videos)
        for video_id, count in counts.items():
            conns = self._by_video.get(video_id)
            if not conns:
                continue
            state = (count, self._views.get(video_id, 0))
            if self._sent.get(video_id) == state:
                continue
            self._sent[video_id] = state
            message = _message(video_id, *state)
            for conn in list(conns):
                await conn.send(message)

    async def renew_forever(self) -> None:
        """Keep this process's sockets alive, and notice others' expiring."""
        period = self._settings.presence_timeout_seconds / 3
        while True:
            await asyncio.sleep(period)
            now = time.time()
            with _survive("presence renewal"):
                async with self._redis.pipeline(transaction=False) as pipe:
                    self._record(pipe, [c for conns in self._by_video.values() for c in conns],
                                 now + self._settings.presence_timeout_seconds)
                    for video_id in self._by_video:  # forget viewers whose sockets all died
                        pipe.zremrangebyscore(viewers_set(video_id), "-inf", now)
                    await pipe.execute()
            # A dead process's viewers expire without any event: recount.
            for video_id in self._by_video:
                self._mark(video_id)

    async def listen_forever(self) -> None:
        """Follow the shared channel, reconnecting after a Redis outage."""
        backoff = 0.5
        while not self._stopping:
            self._pubsub = pubsub = self._pubsub_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                backoff = 0.5
                # Counts may have changed while we were not listening.
                for video_id in self._by_video:
                    self._mark(video_id)
                while not self._stopping:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        with _survive("presence message"):
                            await self._on_message(message)
            except UNAVAILABLE_ERRORS:
                if self._stopping:
                    return
                log.warning("presence channel lost; retrying in %.1fs", backoff)
                for video_id in self._by_video:
                    self._mark(video_id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(*UNAVAILABLE_ERRORS):
                    await pubsub.aclose()

    async def stop(self, tasks: list[asyncio.Task]) -> None:
        self._stopping = True
        await self._flush_leaves()  # the sockets closed on shutdown leave the count now
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=0.1)
        if pending and self._pubsub is not None:
            # redis-py's blocking pub/sub read can swallow a cancellation
            # (seen with redis 8.1); closing its connection ends the read.
            with contextlib.suppress(*UNAVAILABLE_ERRORS):
                await self._pubsub.aclose()
            await asyncio.wait(pending, timeout=5)
        await self._pubsub_client.aclose()

    async def _on_message(self, message: dict) -> None:
        if message.get("type") != "message":
            return
        try:
            event = json.loads(message["data"])
            video_id = int(event["video"])
        except (ValueError, KeyError, TypeError):
            return
        if event.get("deleted"):
            self._app[media_cache_key].evict(video_id)
            await self._close_video(video_id)
        elif "views" in event:
            self._note_views(video_id, int(event["views"]))
        else:
            self._mark(video_id)

    async def close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


async def presence_ctx(app: web.Application) -> AsyncIterator[None]:
    presence = Presence(app[settings_key], app[redis_key], app)
    app[presence_key] = presence
    tasks = [
        asyncio.create_task(presence.broadcast_forever(), name="presence-broadcast"),
        asyncio.create_task(presence.renew_forever(), name="presence-renew"),
        asyncio.create_task(presence.listen_forever(), name="presence-listen"),
        asyncio.create_task(presence.leave_forever(), name="presence-leave"),
    ]
    yield
    await presence.stop(tasks)


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: say GOING_AWAY to every open socket; their handlers then
    remove this process's presence before the Redis client closes."""
    await app[presence_key].close_all()


# --- the WebSocket handler ----------------------------------------------------------


def _origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: Origin protects browser users from other sites
    allowed = request.app[settings_key].allowed_origins
    if allowed:
        return origin in allowed
    own = f"{request.scheme}://{request.host}"
    return origin == own


def _token(request: web.Request) -> tuple[str | None, tuple[str, ...]]:
    """The token from ?token= or `Sec-WebSocket-Protocol: bearer, <token>`."""
    if "token" in request.query:
        return request.query["token"], ()
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if len(offered) >= 2 and offered[0].lower() == "bearer":
        return offered[1], ("bearer",)
    return None, ()


async def active_viewers(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    settings = app[settings_key]
    video_id = int_param(request, "id")
    if not _origin_allowed(request):
        raise Forbidden("This origin may not open viewer sockets.", code="origin_not_allowed")
    token, protocols = _token(request)
    user = await user_from_token(app, token) if token else None
    address = client_address(request)
    presence = app[presence_key]
    socket_id = presence.new_socket_id()
    if not await presence.reserve(address, socket_id):
        raise RateLimited(int(settings.presence_timeout_seconds), "Too many live sockets from this address.")
    conn = None
    try:
        async with db.cursor(app) as cur:
            row = await db.fetch_one(cur, SELECT_VIEWS, {"id": video_id})
        # compress=False: deflate state costs ~100 KiB per socket for ~60-byte messages.
        ws = web.WebSocketResponse(
            heartbeat=settings.heartbeat_seconds, protocols=protocols, max_msg_size=4096, compress=False
        )
        anon = ensure_anonymous_id(request, ws)
        await ws.prepare(request)
        if row is None:
            await ws.close(code=CLOSE_VIDEO_NOT_FOUND, message=b"video not found")
            return ws

        viewer = user_viewer(user.id) if user else anonymous_viewer(request, anon)
        await note_watch_start(app, video_id, viewer)
        conn = await presence.join(ws, video_id, viewer, address, socket_id, row["views"])
        await conn.send(await presence.current_message(video_id))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str("pong")
        return ws
    finally:
        if conn is not None:
            presence.leave(conn)
        else:
            await presence.release(address, socket_id)
