"""POST/GET /videos/{id}/views: only real watching counts, once per window."""

import asyncio

import aiohttp
import psycopg2
import pytest

from .conftest import auth, expect
from .test_viewers import next_count, viewer_session


@pytest.fixture
async def video(register, upload, clips):
    _, token = await register()
    return await upload(token, clips["mp4"])  # 2 s long: the threshold is min(0.5 s, 1 s)


async def report(session, client, video_id, headers=None):
    async with session.post(client.make_url(f"/videos/{video_id}/views"), headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_a_view_counts_after_watching_long_enough(client, video):
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    async with viewer_session() as session:
        ws = await session.ws_connect(url)
        await next_count(ws, 1)
        early = await report(session, client, video["id"])
        assert early == {"video_id": video["id"], "views": 0, "counted": False}
        await asyncio.sleep(0.6)
        counted = await report(session, client, video["id"])
        assert counted == {"video_id": video["id"], "views": 1, "counted": True}
        async with asyncio.timeout(5):  # the socket hears about it too
            while (await ws.receive_json())["views"] != 1:
                pass
        again = await report(session, client, video["id"])
        assert again["counted"] is False and again["views"] == 1
        await ws.close()
    assert await expect(await client.get(f"/videos/{video['id']}/views"), 200) == {"video_id": video["id"], "views": 1}


async def test_a_report_without_watching_does_not_count(client, video):
    async with viewer_session() as session:
        await asyncio.sleep(0.6)
        first = await report(session, client, video["id"])  # no cookie yet: one is issued
        assert first["counted"] is False
        assert "mt_viewer" in {c.key for c in session.cookie_jar}
        second = await report(session, client, video["id"])
        assert second["counted"] is False


async def test_a_hundred_concurrent_reports_count_once(client, video):
    async with viewer_session() as session:
        ws = await session.ws_connect(client.make_url(f"/videos/{video['id']}/active-viewers"))
        await next_count(ws, 1)
        await asyncio.sleep(0.6)
        results = await asyncio.gather(*(report(session, client, video["id"]) for _ in range(100)))
        assert sum(r["counted"] for r in results) == 1
        assert max(r["views"] for r in results) == 1
        await ws.close()


async def test_signed_in_user_counts_once_across_devices(client, register, video):
    _, token = await register()
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    async with viewer_session() as phone, viewer_session() as laptop:
        ws = await phone.ws_connect(url, params={"token": token})
        await next_count(ws, 1)
        await asyncio.sleep(0.6)
        assert (await report(phone, client, video["id"], auth(token)))["counted"] is True
        assert (await report(laptop, client, video["id"], auth(token)))["counted"] is False
        await ws.close()


async def test_fresh_cookies_from_one_address_are_capped(client_with_video):
    client, video = await client_with_video(views_per_address=3)
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(5)]
    try:
        sockets = [await s.ws_connect(url) for s in sessions]
        await asyncio.sleep(0.6)
        results = [await report(s, client, video["id"]) for s in sessions]
        assert [r["counted"] for r in results] == [True, True, True, False, False]
        for ws in sockets:
            await ws.close()
    finally:
        for s in sessions:
            await s.close()


async def test_counts_live_in_postgres_and_survive_a_redis_flush(client, video, settings):
    async with viewer_session() as session:
        ws = await session.ws_connect(client.make_url(f"/videos/{video['id']}/active-viewers"))
        await next_count(ws, 1)
        await asyncio.sleep(0.6)
        assert (await report(session, client, video["id"]))["counted"] is True
        await ws.close()
    import redis

    r = redis.Redis.from_url(settings.redis_url)
    r.flushall()
    r.close()
    conn = psycopg2.connect(settings.database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT views FROM videos WHERE id = %s", (video["id"],))
        assert cur.fetchone() == (1,)
    conn.close()
    assert (await expect(await client.get(f"/videos/{video['id']}"), 200))["video"]["views"] == 1


async def test_unknown_video(client):
    body = await expect(await client.post("/videos/999/views"), 404)
    assert body["error"]["code"] == "video_not_found"


async def test_starting_the_stream_starts_the_watch_clock(client, video):
    async with viewer_session() as session:
        async with session.get(client.make_url("/")) as page:  # the page issues the viewer cookie
            assert page.status == 200
        async with session.get(client.make_url(video["stream_url"]), headers={"Range": "bytes=0-"}) as r:
            assert r.status == 206
            await r.read()
        await asyncio.sleep(0.6)
        assert (await report(session, client, video["id"]))["counted"] is True
