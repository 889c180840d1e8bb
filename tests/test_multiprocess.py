"""Several real server processes sharing one PostgreSQL and one Redis."""

import asyncio
import signal

import aiohttp
import pytest

from .conftest import TEST_SECRET, _clean
from .servers import ServerProcess
from .test_viewers import next_count

pytestmark = pytest.mark.multiprocess

PRESENCE_TIMEOUT = 4.0


@pytest.fixture
def servers(services, tmp_path):
    _clean(services)
    env = {
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "MINITUBE_ENV": "development",
        "MINITUBE_SECRET_KEY": TEST_SECRET,
        "MINITUBE_STORAGE_DIR": str(tmp_path / "storage"),  # shared, as on one host or a shared volume
        "MINITUBE_HEARTBEAT_SECONDS": "1",
        "MINITUBE_PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT),
        "MINITUBE_BROADCAST_INTERVAL_SECONDS": "0.1",
        "MINITUBE_VIEW_THRESHOLD_SECONDS": "0.5",
        "MINITUBE_ARGON2_MEMORY_KIB": "1024",
        "MINITUBE_ARGON2_TIME_COST": "1",
    }
    started = []

    def start():
        server = ServerProcess("serve", env, tmp_path / f"server{len(started)}.log").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def make_video(session, base, clip):
    await session.post(f"{base}/auth/register", json={"email": "ann@example.com", "password": "correct horse"})
    async with session.post(f"{base}/auth/login", json={"email": "ann@example.com", "password": "correct horse"}) as r:
        token = (await r.json())["access_token"]
    form = aiohttp.FormData()
    form.add_field("title", "shared")
    form.add_field("file", clip.read_bytes(), filename="a.mp4", content_type="video/mp4")
    async with session.post(f"{base}/videos/upload", data=form, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["video"]


def viewer():
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_counts_are_shared_and_a_killed_process_drops_out(servers, clips):
    a, b = servers(), servers()
    async with viewer() as setup, viewer() as on_a, viewer() as on_b:
        video = await make_video(setup, a.url, clips["mp4"])
        path = f"/videos/{video['id']}/active-viewers"
        ws_a = await on_a.ws_connect(a.url + path)
        await next_count(ws_a, 1)
        ws_b = await on_b.ws_connect(b.url + path)
        await next_count(ws_b, 2)
        await next_count(ws_a, 2)
        async with setup.get(f"{b.url}/videos/{video['id']}") as r:
            assert (await r.json())["video"]["active_viewers"] == 2

        b.signal(signal.SIGKILL)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await next_count(ws_a, 1, timeout=PRESENCE_TIMEOUT * 3)
        # Gone once its record expired and the next recount ran (timeout/3 later at most).
        assert loop.time() - killed_at <= PRESENCE_TIMEOUT * 4 / 3 + 1.5
        await ws_a.close()


async def test_a_graceful_stop_removes_its_viewers_at_once(servers, clips):
    a, b = servers(), servers()
    async with viewer() as setup, viewer() as on_a, viewer() as on_b:
        video = await make_video(setup, a.url, clips["mp4"])
        path = f"/videos/{video['id']}/active-viewers"
        ws_a = await on_a.ws_connect(a.url + path)
        ws_b = await on_b.ws_connect(b.url + path)
        await next_count(ws_a, 2)
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, b.signal, signal.SIGTERM)
        async with asyncio.timeout(10):
            while (await ws_b.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                pass
        assert ws_b.close_code == 1001  # GOING_AWAY
        started = loop.time()
        await next_count(ws_a, 1, timeout=PRESENCE_TIMEOUT)
        assert loop.time() - started < PRESENCE_TIMEOUT  # not by expiry: removed on the way out
        assert await stopping == 0
        await ws_a.close()


async def test_restarting_redis_loses_no_counted_view(servers, services, clips):
    if services.redis is None:
        pytest.skip("needs the embedded Redis to restart it")
    a = servers()
    async with viewer() as setup, viewer() as watcher:
        video = await make_video(setup, a.url, clips["mp4"])
        ws = await watcher.ws_connect(f"{a.url}/videos/{video['id']}/active-viewers")
        await next_count(ws, 1)
        await asyncio.sleep(0.6)
        async with watcher.post(f"{a.url}/videos/{video['id']}/views") as r:
            assert (await r.json())["counted"] is True

        services.redis.stop()
        async with setup.get(f"{a.url}/readyz") as r:
            assert r.status == 503 and (await r.json())["checks"]["redis"] == "unavailable"
        async with setup.get(f"{a.url}/videos/{video['id']}") as r:  # PostgreSQL still serves
            body = await r.json()
            assert r.status == 200 and body["video"]["views"] == 1 and body["video"]["active_viewers"] is None
        # The live socket is told the count is unknown rather than shown a stale one.
        await next_count(ws, None, timeout=PRESENCE_TIMEOUT * 2)
        services.redis.start()

        async with asyncio.timeout(15):
            while True:
                async with setup.get(f"{a.url}/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.2)
        async with setup.get(f"{a.url}/videos/{video['id']}/views") as r:
            assert (await r.json())["views"] == 1
        # The live socket's presence comes back with the next renewal.
        await next_count(ws, 1, timeout=PRESENCE_TIMEOUT * 2)
        async with setup.get(f"{a.url}/videos/{video['id']}") as r:
            assert (await r.json())["video"]["active_viewers"] == 1
        async with setup.get(f"{a.url}/videos/{video['id']}/views") as r:
            assert (await r.json())["views"] == 1
        await ws.close()
