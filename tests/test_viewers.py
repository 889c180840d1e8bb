"""WS /videos/{id}/active-viewers on one process (the multi-process
behaviour is in test_multiprocess.py)."""

import asyncio
import contextlib

import aiohttp
import pytest

from .conftest import auth, expect


@pytest.fixture
async def video(register, upload, clips):
    _, token = await register()
    return await upload(token, clips["mp4"])


@contextlib.asynccontextmanager
async def viewer_session():
    """A browser-like client with its own cookie jar: a distinct anonymous viewer."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def next_count(ws, wanted, timeout=5.0):
    """Read messages until active_viewers == wanted; returns that message."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if message["active_viewers"] == wanted:
                return message


async def test_first_message_and_live_updates(client, video):
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    async with viewer_session() as one, viewer_session() as two:
        ws1 = await one.ws_connect(url)
        first = await ws1.receive_json()
        assert first == {"video_id": video["id"], "active_viewers": 1, "views": 0}
        ws2 = await two.ws_connect(url)
        await next_count(ws2, 2)
        await next_count(ws1, 2)
        await ws2.close()
        await next_count(ws1, 1)
        await ws1.close()
    body = await expect(await client.get(f"/videos/{video['id']}"), 200)
    assert body["video"]["active_viewers"] == 0


async def test_one_user_in_three_tabs_is_one_viewer(client, register, video):
    _, token = await register()
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    sockets = []
    async with viewer_session() as a, viewer_session() as b, viewer_session() as c, viewer_session() as other:
        for session in (a, b, c):
            sockets.append(await session.ws_connect(url, params={"token": token}))
        for ws in sockets:
            await next_count(ws, 1)
        # The token may also come as a subprotocol, as browsers cannot set headers.
        ws = await other.ws_connect(url, protocols=("bearer", token))
        assert ws.protocol == "bearer"
        await next_count(ws, 1)
        anonymous = await other.ws_connect(url.with_query({}))
        await next_count(anonymous, 2)
        for s in sockets + [ws, anonymous]:
            await s.close()


async def test_unknown_video_closes_with_4404(client):
    ws = await client.ws_connect("/videos/999/active-viewers")
    message = await ws.receive()
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 4404


async def test_bad_token_and_foreign_origin_are_refused(client, video):
    url = f"/videos/{video['id']}/active-viewers"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(url, params={"token": "forged"})
    assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(url, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    ws = await client.ws_connect(url, headers={"Origin": f"http://{client.host}:{client.port}"})
    await next_count(ws, 1)
    await ws.close()


async def test_sockets_per_address_are_capped(client_with_video):
    client, video = await client_with_video(sockets_per_address=2)
    url = f"/videos/{video['id']}/active-viewers"
    open_ = [await client.ws_connect(url) for _ in range(2)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(url)
    assert refused.value.status == 429
    await open_[0].close()
    await asyncio.sleep(0.1)
    again = await client.ws_connect(url)
    for ws in (open_[1], again):
        await ws.close()


async def test_burst_of_joins_is_coalesced(client_with_video):
    client, video = await client_with_video(broadcast_interval_seconds=0.25)
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    async with viewer_session() as watcher:
        ws = await watcher.ws_connect(url)
        await next_count(ws, 1)
        sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(40)]
        try:
            joined = await asyncio.gather(*(s.ws_connect(url) for s in sessions))
            message = await next_count(ws, 41)
            # 40 joins within well under a second reached the watcher as a
            # handful of coalesced updates, not 40.
            received = 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.6):
                    while True:
                        await ws.receive_json()
                        received += 1
            assert message["active_viewers"] == 41
            assert received <= 8, received
            for j in joined:
                await j.close()
        finally:
            for s in sessions:
                await s.close()
        await ws.close()


async def test_deleting_a_video_closes_its_sockets(client, register, upload, clips):
    _, token = await register()
    video = await upload(token, clips["mp4"])
    ws = await client.ws_connect(f"/videos/{video['id']}/active-viewers")
    await next_count(ws, 1)
    await expect(await client.delete(f"/videos/{video['id']}", headers=auth(token)), 204)
    async with asyncio.timeout(5):
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass
    assert ws.close_code == 4404


async def test_a_viewer_stays_while_any_of_their_tabs_is_open(client, register, video):
    _, token = await register()
    url = f"/videos/{video['id']}/active-viewers"

    async def count():
        return (await expect(await client.get(f"/videos/{video['id']}"), 200))["video"]["active_viewers"]

    tabs = [await client.ws_connect(url, params={"token": token}) for _ in range(3)]
    assert await count() == 1
    await tabs[0].close()
    await tabs[1].close()
    await asyncio.sleep(0.1)
    assert await count() == 1
    await tabs[2].close()
    await asyncio.sleep(0.1)
    assert await count() == 0


async def test_concurrent_handshakes_cannot_pass_the_address_cap(client_with_video):
    client, video = await client_with_video(sockets_per_address=5)
    url = f"/videos/{video['id']}/active-viewers"
    results = await asyncio.gather(*(client.ws_connect(url) for _ in range(20)), return_exceptions=True)
    opened = [r for r in results if isinstance(r, aiohttp.ClientWebSocketResponse)]
    refused = [r for r in results if isinstance(r, aiohttp.WSServerHandshakeError)]
    assert len(opened) == 5 and len(refused) == 15
    assert all(r.status == 429 for r in refused)
    for ws in opened:
        await ws.close()


async def test_a_new_socket_is_told_its_count_once(client, video):
    url = client.make_url(f"/videos/{video['id']}/active-viewers")
    async with viewer_session() as one, viewer_session() as two:
        ws1 = await one.ws_connect(url)
        await next_count(ws1, 1)
        ws2 = await two.ws_connect(url)
        assert (await ws2.receive_json())["active_viewers"] == 2
        await next_count(ws1, 2)
        with pytest.raises(TimeoutError):  # nothing changed: nothing more is sent
            async with asyncio.timeout(0.5):
                await ws2.receive_json()
        await ws1.close()
        await ws2.close()
